/* Style transfer on frames: settings, bundled style lookup, and the
 * stylizer that runs upload -> resize -> pad -> network -> crop -> resize ->
 * blend -> download.
 *
 * Size rule: the network runs at the inference size (the frame size by
 * default).  When that size is not a multiple of the model's size multiple
 * (4 for TransformerNet), the input is reflect-padded at the bottom and
 * right up to the next multiple and the output is cropped back, so the
 * output always has exactly the frame's size. */
#include <neuralcl/style.h>
#include <neuralcl/config.h>
#include <neuralcl/error.h>

#include "config.h"

#include <string.h>

void
ncl_style_settings_init (NclStyleSettings * s)
{
  memset (s, 0, sizeof (*s));
  s->model = g_strdup ("mosaic");
  s->strength = 1.0;
}

void
ncl_style_settings_clear (NclStyleSettings * s)
{
  g_clear_pointer (&s->model, g_free);
  g_clear_pointer (&s->device, g_free);
}

gboolean
ncl_style_settings_load (NclStyleSettings * s, const gchar * path,
    GError ** error)
{
  static const gchar *const keys[] = { "model", "device", "inference-width",
    "inference-height", "strength", "preserve-colors", NULL
  };
  g_autoptr (NclYamlDoc) doc = ncl_yaml_load_file (path, error);
  const NclYamlNode *root;
  g_autofree gchar *model = NULL;
  gint iw = s->inference_width, ih = s->inference_height;
  gdouble strength = s->strength;
  gboolean preserve = s->preserve_colors;

  if (doc == NULL)
    return FALSE;
  root = ncl_yaml_doc_get_root (doc);
  if (root == NULL)
    return TRUE;
  if (ncl_yaml_node_get_type (root) != NCL_YAML_MAPPING)
    return ncl_yaml_set_error (doc, root, error,
        "expected a mapping of style settings");
  if (!ncl_yaml_check_keys (doc, root, keys, error) ||
      !ncl_yaml_get_string (doc, root, "model", &model, error) ||
      !ncl_yaml_get_string (doc, root, "device", &s->device, error) ||
      !ncl_yaml_get_int (doc, root, "inference-width", 0, 16384, &iw, error)
      || !ncl_yaml_get_int (doc, root, "inference-height", 0, 16384, &ih,
          error)
      || !ncl_yaml_get_double (doc, root, "strength", 0, 1, &strength, error)
      || !ncl_yaml_get_bool (doc, root, "preserve-colors", &preserve, error))
    return FALSE;
  if (model != NULL) {
    g_free (s->model);
    /* a path relative to the config file, or a bundled name */
    if (strchr (model, '/') || g_str_has_suffix (model, ".yaml") ||
        g_str_has_suffix (model, ".safetensors"))
      s->model = ncl_yaml_doc_resolve_path (doc, model);
    else
      s->model = g_steal_pointer (&model);
  }
  s->inference_width = iw;
  s->inference_height = ih;
  s->strength = strength;
  s->preserve_colors = preserve;
  return TRUE;
}

gchar **
ncl_style_get_search_path (void)
{
  GPtrArray *dirs = g_ptr_array_new ();
  const gchar *env = g_getenv ("NEURALCL_STYLE_PATH");

  if (env != NULL && *env != '\0') {
    gchar **parts = g_strsplit (env, G_SEARCHPATH_SEPARATOR_S, -1);
    for (guint i = 0; parts[i]; i++)
      if (*parts[i])
        g_ptr_array_add (dirs, g_strdup (parts[i]));
    g_strfreev (parts);
  }
  g_ptr_array_add (dirs, g_build_filename (g_get_user_data_dir (), "neuralcl",
          "styles", NULL));
  g_ptr_array_add (dirs, g_build_filename (NCL_DATADIR, "styles", NULL));
  g_ptr_array_add (dirs, g_build_filename (NCL_SOURCE_DATADIR, "styles",
          NULL));
  g_ptr_array_add (dirs, NULL);
  return (gchar **) g_ptr_array_free (dirs, FALSE);
}

static gint
compare_str (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(const gchar * const *) a, *(const gchar * const *) b);
}

gchar **
ncl_style_list (void)
{
  g_auto (GStrv) dirs = ncl_style_get_search_path ();
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  GPtrArray *names = g_ptr_array_new ();

  for (guint i = 0; dirs[i]; i++) {
    g_autoptr (GDir) dir = g_dir_open (dirs[i], 0, NULL);
    const gchar *f;

    while (dir && (f = g_dir_read_name (dir))) {
      gchar *name;
      if (!g_str_has_suffix (f, ".yaml"))
        continue;
      name = g_strndup (f, strlen (f) - 5);
      if (g_hash_table_contains (seen, name)) {
        g_free (name);
        continue;
      }
      g_hash_table_add (seen, name);
      g_ptr_array_add (names, name);
    }
  }
  g_ptr_array_sort (names, compare_str);
  g_ptr_array_add (names, NULL);
  return (gchar **) g_ptr_array_free (names, FALSE);
}

gchar *
ncl_style_resolve (const gchar * name_or_path, GError ** error)
{
  g_auto (GStrv) dirs = NULL;
  g_auto (GStrv) names = NULL;
  g_autofree gchar *joined = NULL;

  if (name_or_path == NULL || *name_or_path == '\0') {
    g_set_error (error, NCL_ERROR, NCL_ERROR_NOT_FOUND,
        "no model given (a model YAML, a .safetensors file or a style name)");
    return NULL;
  }
  if (strchr (name_or_path, '/') || g_str_has_suffix (name_or_path, ".yaml")
      || g_str_has_suffix (name_or_path, ".safetensors") ||
      g_file_test (name_or_path, G_FILE_TEST_IS_REGULAR)) {
    if (!g_file_test (name_or_path, G_FILE_TEST_EXISTS)) {
      g_set_error (error, NCL_ERROR, NCL_ERROR_NOT_FOUND,
          "%s: no such model file", name_or_path);
      return NULL;
    }
    return g_strdup (name_or_path);
  }

  dirs = ncl_style_get_search_path ();
  for (guint i = 0; dirs[i]; i++) {
    g_autofree gchar *file = g_strconcat (name_or_path, ".yaml", NULL);
    gchar *path = g_build_filename (dirs[i], file, NULL);

    if (g_file_test (path, G_FILE_TEST_IS_REGULAR))
      return path;
    g_free (path);
  }
  names = ncl_style_list ();
  joined = g_strjoinv (", ", names);
  g_set_error (error, NCL_ERROR, NCL_ERROR_NOT_FOUND,
      "no style named '%s' and no such file (bundled styles: %s)",
      name_or_path, *joined ? joined : "none found");
  return NULL;
}

/* ---- stylizer ----------------------------------------------------------- */

struct _NclStylizer
{
  NclContext *ctx;
  NclModel *model;
  NclRunner *runner;
  NclFrameIO *io;
  NclTensor *rgb;               /* (1, 3, H, W) the frame */
  NclTensor *small;             /* the frame at the inference size */
  NclTensor *padded;            /* network input, padded to the multiple */
  NclTensor *cropped;           /* network output cropped (resize path) */
  NclTensor *back;              /* network output at the frame size */
};

void
ncl_stylizer_free (NclStylizer * st)
{
  if (st == NULL)
    return;
  ncl_tensor_free (st->back);
  ncl_tensor_free (st->cropped);
  ncl_tensor_free (st->padded);
  ncl_tensor_free (st->small);
  ncl_tensor_free (st->rgb);
  ncl_frame_io_free (st->io);
  ncl_runner_free (st->runner);
  ncl_model_unref (st->model);
  ncl_context_unref (st->ctx);
  g_free (st);
}

NclStylizer *
ncl_stylizer_new (NclContext * ctx, NclModel * model, GError ** error)
{
  g_autoptr (NclStylizer) st = g_new0 (NclStylizer, 1);

  if (ncl_model_get_input_channels (model) != 3) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
        "%s: a style model takes 3 input channels, this one takes %d",
        ncl_model_get_path (model), ncl_model_get_input_channels (model));
    return NULL;
  }
  st->ctx = ncl_context_ref (ctx);
  st->model = ncl_model_ref (model);
  st->runner = ncl_runner_new (model, ctx, error);
  if (st->runner == NULL)
    return NULL;
  st->io = ncl_frame_io_new (ctx);
  if (!(st->rgb = ncl_tensor_new (ctx, 1, 3, 1, 1, error)) ||
      !(st->small = ncl_tensor_new (ctx, 1, 3, 1, 1, error)) ||
      !(st->padded = ncl_tensor_new (ctx, 1, 3, 1, 1, error)) ||
      !(st->cropped = ncl_tensor_new (ctx, 1, 3, 1, 1, error)) ||
      !(st->back = ncl_tensor_new (ctx, 1, 3, 1, 1, error)))
    return NULL;
  return g_steal_pointer (&st);
}

NclModel *
ncl_stylizer_get_model (const NclStylizer * st)
{
  return st->model;
}

NclRunner *
ncl_stylizer_get_runner (const NclStylizer * st)
{
  return st->runner;
}

static gint
round_up (gint v, gint m)
{
  return (v + m - 1) / m * m;
}

/* Runs the network on @in, padded to the size multiple; the result may be
 * larger than @in (its top-left corner is the answer). */
static gboolean
run_padded (NclStylizer * st, NclTensor * in, NclTensor ** out,
    GError ** error)
{
  gint m = ncl_model_get_size_multiple (st->model);
  NclPadding pad = { 0, round_up (in->h, m) - in->h, 0,
    round_up (in->w, m) - in->w, NCL_PAD_REFLECT
  };

  if (pad.bottom || pad.right) {
    if (!ncl_pad_forward (st->ctx, in, 1, &pad, st->padded, error))
      return FALSE;
    in = st->padded;
  }
  return ncl_runner_run (st->runner, in, out, error);
}

gboolean
ncl_stylizer_process (NclStylizer * st, const NclStyleSettings * s,
    NclImage * img, GError ** error)
{
  NclTensor *net_in, *net_out, *styl;
  gint iw = s->inference_width > 0 ? s->inference_width : img->width;
  gint ih = s->inference_height > 0 ? s->inference_height : img->height;
  gboolean resize = iw != img->width || ih != img->height;

  if (s->strength <= 0.0)
    return TRUE;                /* the input, untouched */
  if (!ncl_frame_io_upload (st->io, img, st->rgb, error))
    return FALSE;
  net_in = st->rgb;
  if (resize) {
    if (!ncl_tensor_reshape (st->small, 1, 3, ih, iw, error) ||
        !ncl_resize_bilinear (st->ctx, st->rgb, st->small, error))
      return FALSE;
    net_in = st->small;
  }
  if (!run_padded (st, net_in, &net_out, error))
    return FALSE;
  styl = net_out;
  if (resize) {
    if (net_out->h != ih || net_out->w != iw) {
      NclPadding crop = { 0, ih - net_out->h, 0, iw - net_out->w,
        NCL_PAD_ZERO
      };
      if (!ncl_pad_forward (st->ctx, net_out, 1, &crop, st->cropped, error))
        return FALSE;
      styl = st->cropped;
    }
    if (!ncl_tensor_reshape (st->back, 1, 3, img->height, img->width, error)
        || !ncl_resize_bilinear (st->ctx, styl, st->back, error))
      return FALSE;
    styl = st->back;
  }
  return ncl_frame_io_download (st->io, styl,
      s->strength < 1.0 || s->preserve_colors ? st->rgb : NULL, s->strength,
      s->preserve_colors, img, error);
}

gboolean
ncl_stylizer_run_tensor (NclStylizer * st, const gfloat * in, gint n, gint h,
    gint w, gfloat * out, GError ** error)
{
  g_autoptr (NclTensor) t = NULL;
  g_autofree gfloat *full = NULL;
  NclTensor *res;

  t = ncl_tensor_new (st->ctx, n, 3, h, w, error);
  if (t == NULL || !ncl_tensor_upload (t, in, error) ||
      !run_padded (st, t, &res, error))
    return FALSE;
  if (res->n != n || res->c != 3 || res->h < h || res->w < w) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "%s: output (%d, %d, %d, %d) does not cover the input (%d, 3, %d, %d)",
        ncl_model_get_path (st->model), res->n, res->c, res->h, res->w, n, h,
        w);
    return FALSE;
  }
  full = g_new (gfloat, ncl_tensor_numel (res));
  if (!ncl_tensor_download (res, full, error))
    return FALSE;
  for (gint p = 0; p < n * 3; p++)
    for (gint y = 0; y < h; y++)
      memcpy (out + ((gsize) p * h + y) * w,
          full + ((gsize) p * res->h + y) * res->w, w * sizeof (gfloat));
  return TRUE;
}
