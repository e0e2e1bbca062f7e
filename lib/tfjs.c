/* TensorFlow.js weights: manifest + .bin reader, and the converter of the
 * five face-api networks into neuralcl models (YAML graph + safetensors).
 *
 * The graphs follow ../shared/specs/face-models.md; docs/faces-models.md
 * describes what the converter does to the weights. */
#include <neuralcl/tfjs.h>
#include <neuralcl/face.h>
#include <neuralcl/model.h>
#include <neuralcl/safetensors.h>
#include <neuralcl/error.h>

#include <json-glib/json-glib.h>
#include <errno.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

struct _NclTfjsWeights
{
  gchar *path;
  GPtrArray *tensors;           /* NclTfjsTensor *, manifest order */
  GHashTable *index;            /* name -> NclTfjsTensor * (borrowed) */
  GPtrArray *files;             /* gchar *: first shard of each group */
  gsize n_bytes;
};

static void
tensor_free (gpointer p)
{
  NclTfjsTensor *t = p;

  g_free (t->name);
  g_free (t->data);
  g_free (t->ints);
  g_free (t);
}

void
ncl_tfjs_weights_free (NclTfjsWeights * w)
{
  if (w == NULL)
    return;
  g_clear_pointer (&w->index, g_hash_table_unref);
  g_clear_pointer (&w->tensors, g_ptr_array_unref);
  g_clear_pointer (&w->files, g_ptr_array_unref);
  g_free (w->path);
  g_free (w);
}

const gchar *
ncl_tfjs_weights_get_path (const NclTfjsWeights * w)
{
  return w->path;
}

guint
ncl_tfjs_weights_get_n_tensors (const NclTfjsWeights * w)
{
  return w->tensors->len;
}

const NclTfjsTensor *
ncl_tfjs_weights_get_nth (const NclTfjsWeights * w, guint i)
{
  g_return_val_if_fail (i < w->tensors->len, NULL);
  return g_ptr_array_index (w->tensors, i);
}

const NclTfjsTensor *
ncl_tfjs_weights_lookup (const NclTfjsWeights * w, const gchar * name)
{
  return g_hash_table_lookup (w->index, name);
}

gsize
ncl_tfjs_weights_get_n_bytes (const NclTfjsWeights * w)
{
  return w->n_bytes;
}

/* ---- manifest parsing --------------------------------------------------- */

static const gchar *
json_kind (JsonNode * node)
{
  if (node == NULL)
    return "missing";
  switch (json_node_get_node_type (node)) {
    case JSON_NODE_OBJECT:
      return "an object";
    case JSON_NODE_ARRAY:
      return "an array";
    case JSON_NODE_NULL:
      return "null";
    default:
      break;
  }
  switch (json_node_get_value_type (node)) {
    case G_TYPE_STRING:
      return "a string";
    case G_TYPE_BOOLEAN:
      return "a boolean";
    default:
      return "a number";
  }
}

static gboolean
json_is_number (JsonNode * node)
{
  GType t;

  if (node == NULL || json_node_get_node_type (node) != JSON_NODE_VALUE)
    return FALSE;
  t = json_node_get_value_type (node);
  return t == G_TYPE_INT64 || t == G_TYPE_DOUBLE;
}

static const gchar *
json_string_member (JsonObject * o, const gchar * key)
{
  JsonNode *n = json_object_get_member (o, key);

  if (n == NULL || json_node_get_node_type (n) != JSON_NODE_VALUE ||
      json_node_get_value_type (n) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (n);
}

/* Fills everything but the data from one manifest entry. */
static gboolean
parse_entry (const gchar * mpath, JsonNode * node, guint group, guint idx,
    NclTfjsTensor * t, GError ** error)
{
  JsonObject *o;
  JsonNode *shape, *quant;
  const gchar *dtype;
  JsonArray *dims;

  if (json_node_get_node_type (node) != JSON_NODE_OBJECT) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
        "%s: group %u, weights[%u]: %s, expected an object", mpath, group,
        idx, json_kind (node));
    return FALSE;
  }
  o = json_node_get_object (node);
  if (json_string_member (o, "name") == NULL) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
        "%s: group %u, weights[%u]: 'name' is %s, expected a string", mpath,
        group, idx, json_kind (json_object_get_member (o, "name")));
    return FALSE;
  }
  t->name = g_strdup (json_string_member (o, "name"));

  shape = json_object_get_member (o, "shape");
  if (shape == NULL || json_node_get_node_type (shape) != JSON_NODE_ARRAY) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
        "%s: tensor '%s': 'shape' is %s, expected an array", mpath, t->name,
        json_kind (shape));
    return FALSE;
  }
  dims = json_node_get_array (shape);
  if (json_array_get_length (dims) > NCL_TFJS_MAX_DIMS) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
        "%s: tensor '%s': %u dims, at most %d supported", mpath, t->name,
        json_array_get_length (dims), NCL_TFJS_MAX_DIMS);
    return FALSE;
  }
  t->ndim = json_array_get_length (dims);
  t->n_elements = 1;
  for (gint i = 0; i < t->ndim; i++) {
    JsonNode *d = json_array_get_element (dims, i);
    gint64 v;

    if (d == NULL || json_node_get_node_type (d) != JSON_NODE_VALUE ||
        json_node_get_value_type (d) != G_TYPE_INT64 ||
        (v = json_node_get_int (d)) < 0 || v > G_MAXINT32) {
      g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
          "%s: tensor '%s': shape[%d] is not a size", mpath, t->name, i);
      return FALSE;
    }
    t->shape[i] = v;
    if (v != 0 && t->n_elements > G_MAXSIZE / 8 / (gsize) v) {
      g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
          "%s: tensor '%s': shape too large", mpath, t->name);
      return FALSE;
    }
    t->n_elements *= v;
  }

  dtype = json_string_member (o, "dtype");
  if (dtype == NULL) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
        "%s: tensor '%s': no dtype", mpath, t->name);
    return FALSE;
  }
  if (strcmp (dtype, "float32") == 0) {
    t->dtype = NCL_TFJS_FLOAT32;
  } else if (strcmp (dtype, "int32") == 0) {
    t->dtype = NCL_TFJS_INT32;
  } else {
    g_set_error (error, NCL_ERROR, NCL_ERROR_UNSUPPORTED,
        "%s: tensor '%s': unsupported dtype '%s' (float32 and int32 only)",
        mpath, t->name, dtype);
    return FALSE;
  }

  quant = json_object_get_member (o, "quantization");
  if (quant != NULL && json_node_get_node_type (quant) != JSON_NODE_NULL) {
    JsonObject *q;
    const gchar *qd;
    JsonNode *scale, *min;

    if (json_node_get_node_type (quant) != JSON_NODE_OBJECT) {
      g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
          "%s: tensor '%s': 'quantization' is %s, expected an object", mpath,
          t->name, json_kind (quant));
      return FALSE;
    }
    q = json_node_get_object (quant);
    qd = json_string_member (q, "dtype");
    if (qd == NULL || strcmp (qd, "uint8") != 0) {
      g_set_error (error, NCL_ERROR, NCL_ERROR_UNSUPPORTED,
          "%s: tensor '%s': unsupported quantization dtype '%s' (uint8 only)",
          mpath, t->name, qd ? qd : "(none)");
      return FALSE;
    }
    scale = json_object_get_member (q, "scale");
    min = json_object_get_member (q, "min");
    if (!json_is_number (scale) || !json_is_number (min)) {
      g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
          "%s: tensor '%s': quantization 'scale' is %s and 'min' is %s, "
          "expected two numbers", mpath, t->name, json_kind (scale),
          json_kind (min));
      return FALSE;
    }
    t->quantized = TRUE;
    t->scale = json_node_get_double (scale);
    t->min = json_node_get_double (min);
  }
  t->nbytes = t->n_elements * (t->quantized ? 1 : 4);
  return TRUE;
}

static void
decode (NclTfjsTensor * t, const guint8 * p)
{
  gsize n = t->n_elements;

  t->data = g_new (gfloat, MAX (n, 1));
  if (t->dtype == NCL_TFJS_INT32)
    t->ints = g_new (gint32, MAX (n, 1));
  for (gsize i = 0; i < n; i++) {
    if (t->quantized) {
      /* tfjs: q * scale + min in double (JS numbers), then stored in a
       * Float32Array, or Math.round()ed into an Int32Array */
      gdouble v = (gdouble) p[i] * t->scale + t->min;

      if (t->dtype == NCL_TFJS_INT32) {
        t->ints[i] = (gint32) floor (v + 0.5);
        t->data[i] = (gfloat) t->ints[i];
      } else {
        t->data[i] = (gfloat) v;
      }
    } else {
      guint32 u;

      memcpy (&u, p + 4 * i, 4);
      u = GUINT32_FROM_LE (u);
      if (t->dtype == NCL_TFJS_INT32) {
        t->ints[i] = (gint32) u;
        t->data[i] = (gfloat) t->ints[i];
      } else {
        memcpy (&t->data[i], &u, 4);
      }
    }
  }
}

/* Reads a group's shards (paths relative to the manifest) as one stream. */
static GBytes *
read_group (const gchar * mpath, JsonObject * g, guint group,
    gchar ** label, GError ** error)
{
  g_autofree gchar *dir = g_path_get_dirname (mpath);
  g_autoptr (GByteArray) all = g_byte_array_new ();
  g_autoptr (GString) names = g_string_new (NULL);
  JsonNode *pn = json_object_get_member (g, "paths");
  JsonArray *paths;

  if (pn == NULL || json_node_get_node_type (pn) != JSON_NODE_ARRAY ||
      json_array_get_length (json_node_get_array (pn)) == 0) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
        "%s: group %u: 'paths' is %s, expected a list of .bin files", mpath,
        group, json_kind (pn));
    return NULL;
  }
  paths = json_node_get_array (pn);
  for (guint i = 0; i < json_array_get_length (paths); i++) {
    JsonNode *e = json_array_get_element (paths, i);
    g_autofree gchar *file = NULL;
    g_autofree gchar *data = NULL;
    g_autoptr (GError) local = NULL;
    gsize len;

    if (json_node_get_node_type (e) != JSON_NODE_VALUE ||
        json_node_get_value_type (e) != G_TYPE_STRING) {
      g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
          "%s: group %u: paths[%u] is %s, expected a file name", mpath,
          group, i, json_kind (e));
      return NULL;
    }
    file = g_build_filename (dir, json_node_get_string (e), NULL);
    if (!g_file_get_contents (file, &data, &len, &local)) {
      g_set_error (error, NCL_ERROR, g_error_matches (local, G_FILE_ERROR,
              G_FILE_ERROR_NOENT) ? NCL_ERROR_NOT_FOUND : NCL_ERROR_IO,
          "%s: %s (listed in %s)", file, local->message, mpath);
      return NULL;
    }
    g_byte_array_append (all, (const guint8 *) data, len);
    g_string_append_printf (names, "%s%s", i ? "+" : "", file);
  }
  *label = g_string_free (g_steal_pointer (&names), FALSE);
  return g_byte_array_free_to_bytes (g_steal_pointer (&all));
}

NclTfjsWeights *
ncl_tfjs_weights_load (const gchar * manifest_path, GError ** error)
{
  g_autoptr (NclTfjsWeights) w = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) local = NULL;
  g_autofree gchar *text = NULL;
  gsize text_len;
  JsonNode *root;
  JsonArray *groups;

  g_return_val_if_fail (manifest_path != NULL, NULL);
  if (!g_file_get_contents (manifest_path, &text, &text_len, &local)) {
    g_set_error (error, NCL_ERROR, g_error_matches (local, G_FILE_ERROR,
            G_FILE_ERROR_NOENT) ? NCL_ERROR_NOT_FOUND : NCL_ERROR_IO,
        "%s: %s", manifest_path, local->message);
    return NULL;
  }
  if (!json_parser_load_from_data (parser, text, text_len, &local)) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
        "%s: not a weights manifest: %s", manifest_path, local->message);
    return NULL;
  }
  root = json_parser_get_root (parser);
  if (root == NULL || json_node_get_node_type (root) != JSON_NODE_ARRAY) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
        "%s: not a weights manifest (expected an array of groups, found %s)",
        manifest_path, json_kind (root));
    return NULL;
  }

  w = g_new0 (NclTfjsWeights, 1);
  w->path = g_strdup (manifest_path);
  w->tensors = g_ptr_array_new_with_free_func (tensor_free);
  w->index = g_hash_table_new (g_str_hash, g_str_equal);
  w->files = g_ptr_array_new_with_free_func (g_free);

  groups = json_node_get_array (root);
  for (guint gi = 0; gi < json_array_get_length (groups); gi++) {
    JsonNode *gn = json_array_get_element (groups, gi);
    JsonNode *wn;
    JsonArray *entries;
    g_autoptr (GBytes) bytes = NULL;
    g_autofree gchar *label = NULL;
    const guint8 *data;
    gsize size, off = 0;
    const gchar *first;
    const NclTfjsTensor *last = NULL;

    if (json_node_get_node_type (gn) != JSON_NODE_OBJECT) {
      g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
          "%s: group %u is %s, expected an object with 'paths' and "
          "'weights'", manifest_path, gi, json_kind (gn));
      return NULL;
    }
    wn = json_object_get_member (json_node_get_object (gn), "weights");
    if (wn == NULL || json_node_get_node_type (wn) != JSON_NODE_ARRAY) {
      g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
          "%s: group %u: 'weights' is %s, expected an array", manifest_path,
          gi, json_kind (wn));
      return NULL;
    }
    bytes = read_group (manifest_path, json_node_get_object (gn), gi, &label,
        error);
    if (bytes == NULL)
      return NULL;
    data = g_bytes_get_data (bytes, &size);
    g_ptr_array_add (w->files, g_strdup (label));
    first = g_ptr_array_index (w->files, w->files->len - 1);

    entries = json_node_get_array (wn);
    for (guint i = 0; i < json_array_get_length (entries); i++) {
      NclTfjsTensor *t = g_new0 (NclTfjsTensor, 1);

      g_ptr_array_add (w->tensors, t);
      if (!parse_entry (manifest_path, json_array_get_element (entries, i),
              gi, i, t, error))
        return NULL;
      if (!g_hash_table_insert (w->index, t->name, t)) {
        g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
            "%s: tensor '%s': listed twice", manifest_path, t->name);
        return NULL;
      }
      t->file = first;
      t->offset = off;
      if (t->nbytes > size - off) {
        g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
            "%s: tensor '%s': needs %" G_GSIZE_FORMAT " bytes at offset %"
            G_GSIZE_FORMAT " but the file has %" G_GSIZE_FORMAT
            " (truncated, or %s does not match it)", label, t->name,
            t->nbytes, off, size, manifest_path);
        return NULL;
      }
      decode (t, data + off);
      off += t->nbytes;
      last = t;
    }
    if (off != size) {
      g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
          "%s: %" G_GSIZE_FORMAT " bytes left after the last tensor%s%s%s: "
          "%s accounts for %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT
          " bytes", label, size - off, last ? " '" : "",
          last ? last->name : "", last ? "'" : "", manifest_path, off, size);
      return NULL;
    }
    w->n_bytes += size;
  }
  return g_steal_pointer (&w);
}

/* ---- conversion: common parts ------------------------------------------- */

#define FACE_API_INPUT_MEAN "[122.782, 117.001, 104.298]"

static const gchar *const face_model_names[] = {
  NCL_FACE_MODEL_RECOGNITION,
  NCL_FACE_MODEL_TINY_DETECTOR,
  NCL_FACE_MODEL_SSD,
  NCL_FACE_MODEL_LANDMARKS,
  NCL_FACE_MODEL_LANDMARKS_TINY,
  NULL
};

const gchar *const *
ncl_tfjs_face_model_names (void)
{
  return face_model_names;
}

gchar *
ncl_tfjs_face_manifest_path (const gchar * model_dir, const gchar * name)
{
  g_autofree gchar *base = g_strdup_printf ("%s_model-weights_manifest.json",
      name);

  return g_build_filename (model_dir, base, NULL);
}

typedef struct
{
  const gchar *name;            /* network, e.g. "face_recognition" */
  NclTfjsWeights *w;
  GHashTable *used;             /* tfjs names consumed */
  const gchar *const *dropped;  /* glob patterns of tensors left out */
  NclSafetensorsWriter *st;
  GString *layers;              /* the YAML 'layers:' body */
  GPtrArray *strings;           /* names built with S() */
  gint64 n_params;              /* elements written as layer weights */
  gchar *top;                   /* extra top-level YAML (outputs, ...) */
} Builder;

static void
builder_clear (Builder * b)
{
  g_clear_pointer (&b->used, g_hash_table_unref);
  g_clear_pointer (&b->st, ncl_safetensors_writer_free);
  if (b->layers)
    g_string_free (b->layers, TRUE);
  b->layers = NULL;
  g_clear_pointer (&b->strings, g_ptr_array_unref);
  g_clear_pointer (&b->top, g_free);
}

/* A formatted string that lives as long as the builder. */
static const gchar *
S (Builder * b, const gchar * format, ...) G_GNUC_PRINTF (2, 3);

static const gchar *
S (Builder * b, const gchar * format, ...)
{
  va_list ap;
  gchar *s;

  va_start (ap, format);
  s = g_strdup_vprintf (format, ap);
  va_end (ap);
  g_ptr_array_add (b->strings, s);
  return s;
}

static gchar *
shape_string (gint ndim, const gint64 * shape)
{
  GString *s = g_string_new ("[");

  for (gint i = 0; i < ndim; i++) {
    if (shape[i] < 0)
      g_string_append_printf (s, "%s?", i ? ", " : "");
    else
      g_string_append_printf (s, "%s%" G_GINT64_FORMAT, i ? ", " : "",
          shape[i]);
  }
  g_string_append_c (s, ']');
  return g_string_free (s, FALSE);
}

/* Consumes tfjs tensor @name, which must have @shape (-1: any). */
static const NclTfjsTensor *
take (Builder * b, const gchar * name, gint ndim, const gint64 * shape,
    GError ** error)
{
  const NclTfjsTensor *t = ncl_tfjs_weights_lookup (b->w, name);
  gboolean ok;

  if (t == NULL) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
        "%s: tensor '%s': missing (the %s network needs it)",
        ncl_tfjs_weights_get_path (b->w), name, b->name);
    return NULL;
  }
  ok = t->ndim == ndim && t->dtype == NCL_TFJS_FLOAT32;
  for (gint i = 0; ok && i < ndim; i++)
    ok = shape[i] < 0 || shape[i] == t->shape[i];
  if (!ok) {
    g_autofree gchar *got = shape_string (t->ndim, t->shape);
    g_autofree gchar *want = shape_string (ndim, shape);

    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
        "%s: tensor '%s': %s %s, expected float32 %s",
        ncl_tfjs_weights_get_path (b->w), name,
        t->dtype == NCL_TFJS_INT32 ? "int32" : "float32", got, want);
    return NULL;
  }
  if (!g_hash_table_add (b->used, t->name)) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_FAILED,
        "%s: tensor '%s': used twice by the %s converter",
        ncl_tfjs_weights_get_path (b->w), name, b->name);
    return NULL;
  }
  return t;
}

static const NclTfjsTensor *
take_vec (Builder * b, const gchar * name, gint64 n, GError ** error)
{
  gint64 shape[1] = { n };

  return take (b, name, 1, shape, error);
}

static void
put (Builder * b, const gchar * name, gint ndim, const gint64 * shape,
    const gfloat * data, gboolean is_param)
{
  gint64 n = 1;

  for (gint i = 0; i < ndim; i++)
    n *= shape[i];
  ncl_safetensors_writer_add (b->st, name, NCL_DTYPE_F32, ndim, shape, data);
  if (is_param)
    b->n_params += n;
}

/* TF conv filter HWIO [kh, kw, ci, co] -> OIHW (co, ci, kh, kw), output
 * channel o multiplied by @scale[o] (in double) when @scale is given. */
static void
put_conv_weight (Builder * b, const gchar * name, const NclTfjsTensor * t,
    const gdouble * scale)
{
  gint64 kh = t->shape[0], kw = t->shape[1], ci = t->shape[2],
      co = t->shape[3];
  gint64 shape[4] = { co, ci, kh, kw };
  g_autofree gfloat *out = g_new (gfloat, t->n_elements);

  for (gint64 o = 0; o < co; o++)
    for (gint64 i = 0; i < ci; i++)
      for (gint64 y = 0; y < kh; y++)
        for (gint64 x = 0; x < kw; x++) {
          gfloat v = t->data[((y * kw + x) * ci + i) * co + o];

          out[((o * ci + i) * kh + y) * kw + x] =
              scale ? (gfloat) ((gdouble) v * scale[o]) : v;
        }
  put (b, name, 4, shape, out, TRUE);
}

/* TF depthwise filter [kh, kw, C, 1] -> (C, 1, kh, kw), channel c times
 * @scale[c] when given. */
static void
put_depthwise_weight (Builder * b, const gchar * name,
    const NclTfjsTensor * t, const gdouble * scale)
{
  gint64 kh = t->shape[0], kw = t->shape[1], c = t->shape[2];
  gint64 shape[4] = { c, 1, kh, kw };
  g_autofree gfloat *out = g_new (gfloat, t->n_elements);

  for (gint64 ch = 0; ch < c; ch++)
    for (gint64 y = 0; y < kh; y++)
      for (gint64 x = 0; x < kw; x++) {
        gfloat v = t->data[(y * kw + x) * c + ch];

        out[(ch * kh + y) * kw + x] =
            scale ? (gfloat) ((gdouble) v * scale[ch]) : v;
      }
  put (b, name, 4, shape, out, TRUE);
}

/* TF dense weight [in, out] -> (out, in).  The FC layers here all read a
 * 1x1 map (after a global or full-size pool), where TF's NHWC flattening
 * and our NCHW one give the same order; the callers check that. */
static void
put_fc_weight (Builder * b, const gchar * name, const NclTfjsTensor * t)
{
  gint64 in = t->shape[0], units = t->shape[1];
  gint64 shape[2] = { units, in };
  g_autofree gfloat *out = g_new (gfloat, t->n_elements);

  for (gint64 o = 0; o < units; o++)
    for (gint64 i = 0; i < in; i++)
      out[o * in + i] = t->data[i * units + o];
  put (b, name, 2, shape, out, TRUE);
}

static void
put_vec (Builder * b, const gchar * name, const gfloat * data, gint64 n)
{
  put (b, name, 1, &n, data, TRUE);
}

/* ---- YAML emitters ------------------------------------------------------ */

static void
emit_head (Builder * b, const gchar * name, const gchar * op,
    const gchar * input)
{
  g_string_append_printf (b->layers, "  - name: %s\n    op: %s\n", name, op);
  if (input)
    g_string_append_printf (b->layers, "    input: %s\n", input);
}

/* conv NAME reading NAME.weight (and NAME.bias) */
static void
emit_conv (Builder * b, const gchar * name, const gchar * input, gint kernel,
    gint stride, const gchar * padding, gint groups, const gchar * act,
    gboolean bias)
{
  emit_head (b, name, "conv", input);
  g_string_append_printf (b->layers, "    kernel: %d\n    stride: %d\n"
      "    padding: %s\n", kernel, stride, padding);
  if (groups > 1)
    g_string_append_printf (b->layers, "    groups: %d\n", groups);
  if (act) {
    g_string_append_printf (b->layers, "    activation: %s\n", act);
    if (strcmp (act, "leaky_relu") == 0)
      g_string_append (b->layers, "    alpha: 0.1\n");
  }
  g_string_append_printf (b->layers, "    weight: %s.weight\n", name);
  if (bias)
    g_string_append_printf (b->layers, "    bias: %s.bias\n", name);
}

static void
emit_add (Builder * b, const gchar * name, const gchar * x, const gchar * y,
    gboolean relu)
{
  emit_head (b, name, "add", NULL);
  g_string_append_printf (b->layers, "    inputs: [%s, %s]\n", x, y);
  if (relu)
    g_string_append (b->layers, "    activation: relu\n");
}

static void
emit_pool (Builder * b, const gchar * name, const gchar * op,
    const gchar * input, gint kernel, gint stride, const gchar * padding)
{
  emit_head (b, name, op, input);
  g_string_append_printf (b->layers, "    kernel: %d\n    stride: %d\n"
      "    padding: %s\n", kernel, stride, padding);
}

/* A conv layer straight from TF filters [k, k, ci, co] and a bias [co]
 * (bias_name NULL: none). */
static gboolean
plain_conv (Builder * b, const gchar * layer, const gchar * input,
    const gchar * filters, const gchar * bias_name, gint k, gint64 ci,
    gint64 co, gint stride, const gchar * padding, const gchar * act,
    GError ** error)
{
  gint64 fshape[4] = { k, k, ci, co };
  const NclTfjsTensor *f, *bias = NULL;

  if (!(f = take (b, filters, 4, fshape, error)) ||
      (bias_name && !(bias = take_vec (b, bias_name, co, error))))
    return FALSE;
  put_conv_weight (b, S (b, "%s.weight", layer), f, NULL);
  if (bias)
    put_vec (b, S (b, "%s.bias", layer), bias->data, co);
  emit_conv (b, layer, input, k, stride, padding, 1, act, bias != NULL);
  return TRUE;
}

/* face-api's depthwiseSeparableConv: depthwise 3x3 (stride, same) then
 * pointwise 1x1 plus the one bias: layers LAYER.dw and LAYER. */
static gboolean
separable_conv (Builder * b, const gchar * prefix, const gchar * layer,
    const gchar * input, gint64 ci, gint64 co, gint stride,
    const gchar * act, GError ** error)
{
  gint64 dshape[4] = { 3, 3, ci, 1 };
  gint64 pshape[4] = { 1, 1, ci, co };
  const NclTfjsTensor *dw, *pw, *bias;
  const gchar *dname = S (b, "%s.dw", layer);

  if (!(dw = take (b, S (b, "%s/depthwise_filter", prefix), 4, dshape,
              error)) ||
      !(pw = take (b, S (b, "%s/pointwise_filter", prefix), 4, pshape,
              error)) ||
      !(bias = take_vec (b, S (b, "%s/bias", prefix), co, error)))
    return FALSE;
  put_depthwise_weight (b, S (b, "%s.weight", dname), dw, NULL);
  emit_conv (b, dname, input, 3, stride, "same", ci, NULL, FALSE);
  put_conv_weight (b, S (b, "%s.weight", layer), pw, NULL);
  put_vec (b, S (b, "%s.bias", layer), bias->data, co);
  emit_conv (b, layer, NULL, 1, 1, "valid", 1, act, TRUE);
  return TRUE;
}

static gint
out_valid (gint in, gint k, gint s)
{
  return in < k ? 0 : (in - k) / s + 1;
}

static gint
out_same (gint in, gint s)
{
  return (in + s - 1) / s;
}

/* ---- face_recognition: dlib ResNet-29 ----------------------------------- */

/* ConvLayer: conv + bias, then dlib's scale layer y * gamma + beta folded
 * in: W' = W * gamma, b' = b * gamma + beta (double, then float32). */
static gboolean
rec_conv (Builder * b, const gchar * prefix, const gchar * layer,
    const gchar * input, gint k, gint64 ci, gint64 co, gint stride,
    const gchar * padding, gboolean relu, GError ** error)
{
  gint64 fshape[4] = { k, k, ci, co };
  const NclTfjsTensor *f, *bias, *gamma, *beta;
  g_autofree gdouble *scale = g_new (gdouble, co);
  g_autofree gfloat *b2 = g_new (gfloat, co);

  if (!(f = take (b, S (b, "%s/conv/filters", prefix), 4, fshape, error)) ||
      !(bias = take_vec (b, S (b, "%s/conv/bias", prefix), co, error)) ||
      !(gamma = take_vec (b, S (b, "%s/scale/weights", prefix), co, error))
      || !(beta = take_vec (b, S (b, "%s/scale/biases", prefix), co, error)))
    return FALSE;
  for (gint64 o = 0; o < co; o++) {
    scale[o] = gamma->data[o];
    b2[o] = (gfloat) ((gdouble) bias->data[o] * gamma->data[o] +
        beta->data[o]);
  }
  put_conv_weight (b, S (b, "%s.weight", layer), f, scale);
  put_vec (b, S (b, "%s.bias", layer), b2, co);
  emit_conv (b, layer, input, k, stride, padding, 1, relu ? "relu" : NULL,
      TRUE);
  return TRUE;
}

/* out = ReLU(conv2(conv1(x)) + x); the block's output layer is BLOCK. */
static gboolean
rec_residual (Builder * b, const gchar * block, const gchar * input,
    gint64 c, GError ** error)
{
  const gchar *c1 = S (b, "%s.conv1", block), *c2 = S (b, "%s.conv2", block);

  if (!rec_conv (b, S (b, "%s/conv1", block), c1, input, 3, c, c, 1, "same",
          TRUE, error) ||
      !rec_conv (b, S (b, "%s/conv2", block), c2, NULL, 3, c, c, 1, "same",
          FALSE, error))
    return FALSE;
  emit_add (b, block, c2, input, TRUE);
  return TRUE;
}

/* out = ReLU(pool(x) (+ zero channels) + conv2(conv1 s2 valid (x)) (+ one
 * zero row and column when smaller)); @h: spatial size in and out. */
static gboolean
rec_residual_down (Builder * b, const gchar * block, const gchar * input,
    gint64 ci, gint64 co, gint * h, GError ** error)
{
  const gchar *c1 = S (b, "%s.conv1", block), *c2 = S (b, "%s.conv2", block);
  const gchar *conv_out = c2, *pool_out = S (b, "%s.pool", block);
  gint hc = out_valid (*h, 3, 2), hp = out_valid (*h, 2, 2);

  if (!rec_conv (b, S (b, "%s/conv1", block), c1, input, 3, ci, co, 2,
          "valid", TRUE, error) ||
      !rec_conv (b, S (b, "%s/conv2", block), c2, NULL, 3, co, co, 1, "same",
          FALSE, error))
    return FALSE;
  if (hc != hp && hc + 1 != hp) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "%s: block %s: conv branch %dx%d and pool branch %dx%d cannot be "
        "added", b->name, block, hc, hc, hp, hp);
    return FALSE;
  }
  if (hc < hp) {
    conv_out = S (b, "%s.conv2_pad", block);
    emit_head (b, conv_out, "pad", c2);
    g_string_append (b->layers, "    padding: [0, 1, 0, 1]\n");
  }
  emit_pool (b, pool_out, "avg_pool", input, 2, 2, "valid");
  if (co > ci) {
    const gchar *padded = S (b, "%s.pool_pad", block);

    emit_head (b, padded, "pad", pool_out);
    g_string_append_printf (b->layers, "    channels: [0, %" G_GINT64_FORMAT
        "]\n", co - ci);
    pool_out = padded;
  }
  emit_add (b, block, pool_out, conv_out, TRUE);
  *h = hp;
  return TRUE;
}

static gboolean
build_recognition (Builder * b, GString * desc, GError ** error)
{
  static const struct
  {
    const gchar *block;
    gint64 c;
    gboolean down;
  } blocks[] = {
    {"conv32_1", 32, FALSE}, {"conv32_2", 32, FALSE}, {"conv32_3", 32, FALSE},
    {"conv64_down", 64, TRUE}, {"conv64_1", 64, FALSE},
    {"conv64_2", 64, FALSE}, {"conv64_3", 64, FALSE},
    {"conv128_down", 128, TRUE}, {"conv128_1", 128, FALSE},
    {"conv128_2", 128, FALSE},
    {"conv256_down", 256, TRUE}, {"conv256_1", 256, FALSE},
    {"conv256_2", 256, FALSE},
    {"conv256_down_out", 256, TRUE},
  };
  gint64 fshape[2] = { 256, 128 };
  const NclTfjsTensor *fc;
  const gchar *prev = "pool";
  gint64 c = 32;
  gint h = 150;

  if (!rec_conv (b, "conv32_down", "conv32_down", "input", 7, 3, 32, 2,
          "valid", TRUE, error))
    return FALSE;
  h = out_valid (h, 7, 2);
  emit_pool (b, "pool", "max_pool", NULL, 3, 2, "valid");
  h = out_valid (h, 3, 2);
  for (guint i = 0; i < G_N_ELEMENTS (blocks); i++) {
    if (blocks[i].down ?
        !rec_residual_down (b, blocks[i].block, prev, c, blocks[i].c, &h,
            error) : !rec_residual (b, blocks[i].block, prev, c, error))
      return FALSE;
    c = blocks[i].c;
    prev = blocks[i].block;
  }
  emit_head (b, "mean", "global_avg_pool", NULL);
  if (!(fc = take (b, "fc", 2, fshape, error)))
    return FALSE;
  put_fc_weight (b, "fc.weight", fc);
  emit_head (b, "fc", "fc", NULL);
  g_string_append (b->layers, "    units: 128\n    weight: fc.weight\n");
  g_assert (h == 2);

  g_string_append (desc,
      "dlib ResNet-29 face descriptor (face-api face_recognition_model).\n"
      "Input: exactly 150x150 RGB (the zero-padding of conv256_down and\n"
      "conv256_down_out is computed for it); output: 128 floats, not\n"
      "L2-normalised (Euclidean match threshold 0.6).\n"
      "Preprocessing (the face engine's job, not in this graph): pad the\n"
      "crop to a square, centred (odd pixel after); TF legacy bilinear\n"
      "resize to 150x150 (align_corners=false, half_pixel_centers=false);\n"
      "x = (RGB - " FACE_API_INPUT_MEAN ") / 255, NCHW.\n"
      "Conversion: dlib scale layers folded into the convs (W * gamma,\n"
      "b * gamma + beta); filters HWIO -> OIHW; fc [256, 128] -> (128, 256),\n"
      "no bias; residual_down pads its conv branch by one row and column\n"
      "when smaller than the 2x2 s2 average pool, and the pool branch with\n"
      "zero channels.\n");
  return TRUE;
}

/* ---- face_landmark_68 and _tiny: dense blocks --------------------------- */

/* Additions in face-api's order (right-nested, as denseBlock3/4 write
 * them): in3 = relu(o1 + o2), in4 = relu(o1 + (o2 + o3)),
 * out = relu(o1 + (o2 + (o3 + o4))), tiny: relu(o1 + (o2 + o3)). */
static gboolean
dense_block (Builder * b, gint idx, const gchar * input, gint64 ci,
    gint64 co, gint n_convs, GError ** error)
{
  const gchar *d = S (b, "dense%d", idx);
  const gchar *o1 = S (b, "%s.conv0", d), *o2 = S (b, "%s.conv1", d);
  const gchar *o3 = S (b, "%s.conv2", d), *o4 = S (b, "%s.conv3", d);
  const gchar *in3 = S (b, "%s.in3", d), *s23 = S (b, "%s.sum23", d);

  if (idx == 0) {
    if (!plain_conv (b, o1, input, S (b, "%s/conv0/filters", d),
            S (b, "%s/conv0/bias", d), 3, ci, co, 2, "same", "relu", error))
      return FALSE;
  } else if (!separable_conv (b, S (b, "%s/conv0", d), o1, input, ci, co, 2,
          "relu", error)) {
    return FALSE;
  }
  if (!separable_conv (b, S (b, "%s/conv1", d), o2, o1, co, co, 1, NULL,
          error))
    return FALSE;
  emit_add (b, in3, o1, o2, TRUE);
  if (!separable_conv (b, S (b, "%s/conv2", d), o3, in3, co, co, 1, NULL,
          error))
    return FALSE;
  emit_add (b, s23, o2, o3, FALSE);
  if (n_convs == 3) {
    emit_add (b, d, o1, s23, TRUE);
    return TRUE;
  }
  emit_add (b, S (b, "%s.in4", d), o1, s23, TRUE);
  if (!separable_conv (b, S (b, "%s/conv3", d), o4, S (b, "%s.in4", d), co,
          co, 1, NULL, error))
    return FALSE;
  emit_add (b, S (b, "%s.sum34", d), o3, o4, FALSE);
  emit_add (b, S (b, "%s.sum234", d), o2, S (b, "%s.sum34", d), FALSE);
  emit_add (b, d, o1, S (b, "%s.sum234", d), TRUE);
  return TRUE;
}

static gboolean
build_landmarks (Builder * b, gboolean tiny, GString * desc, GError ** error)
{
  static const gint64 channels[] = { 3, 32, 64, 128, 256 };
  gint n_blocks = tiny ? 3 : 4;
  gint h = 112;
  gint64 c = channels[n_blocks];
  gint64 wshape[2] = { c, 136 };
  const NclTfjsTensor *fw, *fb;
  const gchar *prev = "input";

  for (gint i = 0; i < n_blocks; i++) {
    if (!dense_block (b, i, prev, channels[i], channels[i + 1],
            tiny ? 3 : 4, error))
      return FALSE;
    prev = S (b, "dense%d", i);
    h = out_same (h, 2);
  }
  /* 7x7 (14x14) s2 valid on a 7x7 (14x14) map: 1x1, so the FC input order
   * is the same in NHWC and NCHW */
  emit_pool (b, "pool", "avg_pool", NULL, tiny ? 14 : 7, 2, "valid");
  g_assert (h == (tiny ? 14 : 7) && out_valid (h, h, 2) == 1);
  if (!(fw = take (b, "fc/weights", 2, wshape, error)) ||
      !(fb = take_vec (b, "fc/bias", 136, error)))
    return FALSE;
  put_fc_weight (b, "fc.weight", fw);
  put_vec (b, "fc.bias", fb->data, 136);
  emit_head (b, "fc", "fc", NULL);
  g_string_append (b->layers, "    units: 136\n    weight: fc.weight\n"
      "    bias: fc.bias\n");

  g_string_append_printf (desc,
      "68-point face landmarks (face-api %s_model).\n"
      "Input: 112x112 RGB; output: 136 floats x0, y0, x1, y1, ... in units\n"
      "of the 112 px padded square (decode per face-models.md section 3).\n"
      "Preprocessing (the face engine's job, not in this graph): crop the\n"
      "detection box, pad to a square, centred (odd pixel after); TF legacy\n"
      "bilinear resize to 112x112; x = (RGB - " FACE_API_INPUT_MEAN ") / 255,\n"
      "NCHW.\n"
      "Conversion: %d dense blocks of separable convs (depthwise 3x3,\n"
      "groups = C, then pointwise 1x1 with the bias), additions in\n"
      "face-api's order; avg_pool %dx%d s2 valid to 1x1; fc [%" G_GINT64_FORMAT
      ", 136] -> (136, %" G_GINT64_FORMAT ").\n", b->name, n_blocks,
      tiny ? 14 : 7, tiny ? 14 : 7, c, c);
  if (tiny)
    g_string_append (desc, "dense0/conv2's depthwise and pointwise filters "
        "are all zeros in the\nfile (scale 1, min 0): that sub-layer outputs "
        "its bias.\n");
  return TRUE;
}

/* ---- tiny_face_detector: Tiny-YOLOv2 with separable convs --------------- */

static gboolean
build_tiny_detector (Builder * b, GString * desc, GError ** error)
{
  static const gint64 channels[] = { 16, 32, 64, 128, 256, 512 };

  if (!plain_conv (b, "conv0", "input", "conv0/filters", "conv0/bias", 3, 3,
          16, 1, "valid", "leaky_relu", error))
    return FALSE;
  emit_pool (b, "pool0", "max_pool", NULL, 2, 2, "same");
  for (gint i = 1; i <= 5; i++) {
    if (!separable_conv (b, S (b, "conv%d", i), S (b, "conv%d", i), NULL,
            channels[i - 1], channels[i], 1, "leaky_relu", error))
      return FALSE;
    emit_pool (b, S (b, "pool%d", i), "max_pool", NULL, 2, i < 5 ? 2 : 1,
        "same");
  }
  if (!plain_conv (b, "conv8", NULL, "conv8/filters", "conv8/bias", 1, 512,
          25, 1, "valid", NULL, error))
    return FALSE;

  g_string_append (desc,
      "Tiny-YOLOv2 face detector with separable convs (face-api\n"
      "tiny_face_detector_model).\n"
      "Input: SxS RGB, S a multiple of 32 (default 416); output: 25\n"
      "channels on an S/32 grid, NCHW: channel a * 5 + k at (r, c) is t_k\n"
      "of anchor a (decode per face-models.md section 4).\n"
      "Preprocessing (the face engine's job, not in this graph): pad to a\n"
      "square at the bottom/right (not centred); TF legacy bilinear resize\n"
      "to SxS; x = (RGB - [117.001, 114.697, 97.404]) / 255, NCHW.\n"
      "Conversion: conv0 3x3 valid + leaky 0.1; max_pool 2x2 s2 same after\n"
      "conv0..conv4 and 2x2 s1 same after conv5 (pads the bottom/right\n"
      "with -inf); separable convs = depthwise 3x3 (groups = C) + pointwise\n"
      "1x1 with the bias; conv8 1x1 linear.\n");
  return TRUE;
}

/* ---- ssd_mobilenetv1 ---------------------------------------------------- */

/* tfjs's batchNorm epsilon, float32 0.001 read as a JS number */
#define SSD_BN_EPS 0.0010000000474974513

static gboolean
ssd_pointwise (Builder * b, const gchar * prefix, const gchar * layer,
    const gchar * input, gint k, gint64 ci, gint64 co, gint stride,
    GError ** error)
{
  return plain_conv (b, layer, input, S (b, "%s/weights", prefix),
      S (b, "%s/convolution_bn_offset", prefix), k, ci, co, stride, "same",
      "relu6", error);
}

/* depthwise 3x3 + batch norm (folded here, in double: s = gamma /
 * sqrt(var + eps), W' = W * s, b' = beta - mean * s) + relu6 */
static gboolean
ssd_depthwise (Builder * b, gint i, gint64 c, gint stride, GError ** error)
{
  const gchar *p = S (b, "MobilenetV1/Conv2d_%d_depthwise", i);
  const gchar *layer = S (b, "conv_%d.dw", i);
  gint64 dshape[4] = { 3, 3, c, 1 };
  const NclTfjsTensor *f, *gamma, *beta, *mean, *var;
  g_autofree gdouble *scale = g_new (gdouble, c);
  g_autofree gfloat *bias = g_new (gfloat, c);

  if (!(f = take (b, S (b, "%s/depthwise_weights", p), 4, dshape, error)) ||
      !(gamma = take_vec (b, S (b, "%s/BatchNorm/gamma", p), c, error)) ||
      !(beta = take_vec (b, S (b, "%s/BatchNorm/beta", p), c, error)) ||
      !(mean = take_vec (b, S (b, "%s/BatchNorm/moving_mean", p), c, error))
      || !(var = take_vec (b, S (b, "%s/BatchNorm/moving_variance", p), c,
              error)))
    return FALSE;
  for (gint64 ch = 0; ch < c; ch++) {
    scale[ch] = gamma->data[ch] / sqrt ((gdouble) var->data[ch] +
        SSD_BN_EPS);
    bias[ch] = (gfloat) (beta->data[ch] - mean->data[ch] * scale[ch]);
  }
  put_depthwise_weight (b, S (b, "%s.weight", layer), f, scale);
  put_vec (b, S (b, "%s.bias", layer), bias, c);
  emit_conv (b, layer, NULL, 3, stride, "same", c, "relu6", TRUE);
  return TRUE;
}

static gboolean
build_ssd (Builder * b, GString * desc, GError ** error)
{
  static const gint64 pw_out[14] = { 32, 64, 128, 128, 256, 256, 512, 512,
    512, 512, 512, 512, 1024, 1024
  };
  static const struct
  {
    gint k, stride;
    gint64 ci, co;
  } extras[8] = {
    {1, 1, 1024, 256}, {3, 2, 256, 512}, {1, 1, 512, 128}, {3, 2, 128, 256},
    {1, 1, 256, 128}, {3, 2, 128, 256}, {1, 1, 256, 64}, {3, 2, 64, 128},
  };
  static const struct
  {
    const gchar *feature;
    gint64 c;
    gint anchors;
  } heads[6] = {
    {"conv_11", 512, 3}, {"conv_13", 1024, 6}, {"extra_1", 512, 6},
    {"extra_3", 256, 6}, {"extra_5", 256, 6}, {"extra_7", 128, 6},
  };
  gint64 ashape[3] = { 1, 5118, 4 };
  const NclTfjsTensor *anchors;
  g_autoptr (GString) outputs = g_string_new (NULL);
  gint h = 512, n_boxes = 0;

  if (!ssd_pointwise (b, "MobilenetV1/Conv2d_0_pointwise", "conv_0", "input",
          3, 3, 32, 2, error))
    return FALSE;
  h = out_same (h, 2);
  for (gint i = 1; i <= 13; i++) {
    gint stride = (i == 2 || i == 4 || i == 6 || i == 12) ? 2 : 1;

    if (!ssd_depthwise (b, i, pw_out[i - 1], stride, error) ||
        !ssd_pointwise (b, S (b, "MobilenetV1/Conv2d_%d_pointwise", i),
            S (b, "conv_%d", i), NULL, 1, pw_out[i - 1], pw_out[i], 1, error))
      return FALSE;
    h = out_same (h, stride);
    if (i == 11)
      n_boxes += h * h * heads[0].anchors;
  }
  n_boxes += h * h * heads[1].anchors;
  for (gint j = 0; j < 8; j++) {
    if (!ssd_pointwise (b, S (b, "Prediction/Conv2d_%d_pointwise", j),
            S (b, "extra_%d", j), j == 0 ? "conv_13" : NULL, extras[j].k,
            extras[j].ci, extras[j].co, extras[j].stride, error))
      return FALSE;
    h = out_same (h, extras[j].stride);
    if (j % 2 == 1)
      n_boxes += h * h * heads[2 + j / 2].anchors;
  }
  for (gint k = 0; k < 6; k++) {
    const gchar *p = S (b, "Prediction/BoxPredictor_%d", k);
    gint a = heads[k].anchors;

    if (!plain_conv (b, S (b, "box_%d", k), heads[k].feature,
            S (b, "%s/BoxEncodingPredictor/weights", p),
            S (b, "%s/BoxEncodingPredictor/biases", p), 1, heads[k].c, 4 * a,
            1, "valid", NULL, error) ||
        !plain_conv (b, S (b, "cls_%d", k), heads[k].feature,
            S (b, "%s/ClassPredictor/weights", p),
            S (b, "%s/ClassPredictor/biases", p), 1, heads[k].c, 3 * a, 1,
            "valid", NULL, error))
      return FALSE;
    g_string_append_printf (outputs, "%sbox_%d, cls_%d", k ? ", " : "", k, k);
  }
  g_assert (n_boxes == 5118);

  /* the anchors: a constant, not a layer weight */
  if (!(anchors = take (b, "Output/extra_dim", 3, ashape, error)))
    return FALSE;
  put (b, "anchors", 2, ashape + 1, anchors->data, FALSE);

  g_string_append (desc,
      "SSD face detector with a MobileNetV1 backbone (face-api\n"
      "ssd_mobilenetv1_model).\n"
      "Input: 512x512 RGB. Outputs, in this order: box_k (4 per anchor:\n"
      "ty, tx, th, tw) and cls_k (3 logits per anchor; score =\n"
      "sigmoid(logit 1)) for k = 0..5, on 32x32 (3 anchors per cell), 16x16,\n"
      "8x8, 4x4, 2x2 and 1x1 maps (6 anchors), NCHW: channel a * 4 + i\n"
      "(a * 3 + i) at (y, x). Flattened in (y, x, anchor) order and\n"
      "concatenated they give 5118 boxes, in the order of the constant\n"
      "'anchors' [5118, 4] (ymin, xmin, ymax, xmax, normalised; from\n"
      "Output/extra_dim). Decode per face-models.md section 5.\n"
      "Preprocessing (the face engine's job, not in this graph): pad to a\n"
      "square at the bottom/right (not centred); TF legacy bilinear resize\n"
      "to 512x512; x = RGB / 127.5 - 1, NCHW.\n"
      "Conversion: every conv is 'same' with relu6 except the predictors\n"
      "(1x1, linear); the depthwise batch norms (eps 0.0010000000474974513)\n"
      "are folded into the depthwise convs here, in double: s = gamma /\n"
      "sqrt(var + eps), W' = W * s, b' = beta - mean * s.\n");
  b->top = g_strdup_printf ("outputs: [%s]\nconstants: [anchors]\n",
      outputs->str);
  return TRUE;
}

/* Postprocessing and preprocessing constants of the TF graph: face-api
 * hard-codes what they say. */
static const gchar *const ssd_dropped[] = {
  "Preprocessor/*",
  "Postprocessor/*",
  "Prediction/BoxPredictor_*/stack/*",
  "Prediction/BoxPredictor_*/stack_1/*",
  "Prediction/BoxPredictor_*/strided_slice/*",
  "concat_1/axis",
  NULL
};

static gboolean
is_dropped (const Builder * b, const gchar * name)
{
  for (guint i = 0; b->dropped && b->dropped[i]; i++)
    if (g_pattern_match_simple (b->dropped[i], name))
      return TRUE;
  return FALSE;
}

/* "name = [v, ...]" for a small dropped tensor */
static void
describe_dropped (GString * s, const NclTfjsTensor * t)
{
  g_string_append_printf (s, "  %s = ", t->name);
  if (t->ndim > 0)
    g_string_append_c (s, '[');
  for (gsize i = 0; i < t->n_elements && i < 4; i++) {
    if (t->ints)
      g_string_append_printf (s, "%s%d", i ? ", " : "", t->ints[i]);
    else
      g_string_append_printf (s, "%s%.9g", i ? ", " : "", t->data[i]);
  }
  if (t->n_elements > 4)
    g_string_append (s, ", ...");
  if (t->ndim > 0)
    g_string_append_c (s, ']');
  g_string_append_c (s, '\n');
}

/* YAML double-quoted scalar */
static gchar *
yaml_quote (const gchar * s)
{
  GString *q = g_string_new ("\"");

  for (const gchar * p = s; *p; p++) {
    if (*p == '"' || *p == '\\')
      g_string_append_c (q, '\\');
    g_string_append_c (q, *p);
  }
  g_string_append_c (q, '"');
  return g_string_free (q, FALSE);
}

static const gchar *
architecture_of (const gchar * name)
{
  if (strcmp (name, NCL_FACE_MODEL_RECOGNITION) == 0)
    return "dlib_resnet29";
  if (strcmp (name, NCL_FACE_MODEL_TINY_DETECTOR) == 0)
    return "tiny_yolov2_separable";
  if (strcmp (name, NCL_FACE_MODEL_SSD) == 0)
    return "ssd_mobilenetv1";
  return "face_landmark_dense";
}

/* Writes @path atomically; removes nothing on failure. */
static gboolean
write_text (const gchar * path, const gchar * text, GError ** error)
{
  g_autoptr (GError) local = NULL;

  if (!g_file_set_contents (path, text, -1, &local)) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_IO, "%s: cannot write: %s",
        path, local->message);
    return FALSE;
  }
  return TRUE;
}

gboolean
ncl_tfjs_convert_face_model (const gchar * model_dir, const gchar * name,
    const gchar * dest_dir, const gchar * source, GError ** error)
{
  g_autoptr (NclTfjsWeights) w = NULL;
  g_autoptr (GString) desc = g_string_new (NULL);
  g_autoptr (GString) dropped = g_string_new (NULL);
  g_autoptr (GString) yaml = g_string_new (NULL);
  g_autoptr (NclModel) check = NULL;
  g_autofree gchar *manifest = NULL;
  g_autofree gchar *st_base = NULL, *st_path = NULL, *yaml_path = NULL;
  g_autofree gchar *origin = NULL, *qorigin = NULL, *params = NULL;
  g_autofree gchar *manifest_base = NULL;
  Builder b = { 0 };
  gboolean ok = FALSE;
  guint n_dropped = 0;

  g_return_val_if_fail (model_dir != NULL && name != NULL, FALSE);
  g_return_val_if_fail (dest_dir != NULL, FALSE);
  if (!g_strv_contains (face_model_names, name)) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_NOT_FOUND,
        "unknown face model '%s' (expected face_recognition, "
        "tiny_face_detector, ssd_mobilenetv1, face_landmark_68 or "
        "face_landmark_68_tiny)", name);
    return FALSE;
  }
  if (source == NULL)
    source = "face-api";
  manifest = ncl_tfjs_face_manifest_path (model_dir, name);
  manifest_base = g_path_get_basename (manifest);
  w = ncl_tfjs_weights_load (manifest, error);
  if (w == NULL)
    return FALSE;

  b.name = name;
  b.w = w;
  b.used = g_hash_table_new (g_str_hash, g_str_equal);
  b.st = ncl_safetensors_writer_new ();
  b.layers = g_string_new (NULL);
  b.strings = g_ptr_array_new_with_free_func (g_free);
  if (strcmp (name, NCL_FACE_MODEL_SSD) == 0)
    b.dropped = ssd_dropped;

  if (strcmp (name, NCL_FACE_MODEL_RECOGNITION) == 0)
    ok = build_recognition (&b, desc, error);
  else if (strcmp (name, NCL_FACE_MODEL_TINY_DETECTOR) == 0)
    ok = build_tiny_detector (&b, desc, error);
  else if (strcmp (name, NCL_FACE_MODEL_SSD) == 0)
    ok = build_ssd (&b, desc, error);
  else
    ok = build_landmarks (&b, strcmp (name, NCL_FACE_MODEL_LANDMARKS_TINY)
        == 0, desc, error);
  if (!ok)
    goto out;
  ok = FALSE;

  /* every tensor of the manifest: used, or deliberately dropped */
  for (guint i = 0; i < ncl_tfjs_weights_get_n_tensors (w); i++) {
    const NclTfjsTensor *t = ncl_tfjs_weights_get_nth (w, i);

    if (g_hash_table_contains (b.used, t->name))
      continue;
    if (!is_dropped (&b, t->name)) {
      g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
          "%s: tensor '%s': not used by the %s converter (unexpected file "
          "version?)", manifest, t->name, name);
      goto out;
    }
    describe_dropped (dropped, t);
    n_dropped++;
  }
  if (n_dropped > 0)
    g_string_append_printf (desc, "Dropped %u tensors of the TF graph's "
        "pre/postprocessing (face-api\nhard-codes what they say):\n%s",
        n_dropped, dropped->str);
  else
    g_string_append (desc, "Every tensor of the manifest is used.\n");
  params = g_strdup_printf ("%" G_GINT64_FORMAT, b.n_params);
  g_string_append_printf (desc, "Parameters after conversion: %s.\n", params);

  origin = g_strdup_printf ("%s model/%s, converted by neuralcl", source,
      manifest_base);
  ncl_safetensors_writer_add_metadata (b.st, "format", "neuralcl face model");
  ncl_safetensors_writer_add_metadata (b.st, "network", name);
  ncl_safetensors_writer_add_metadata (b.st, "origin", origin);
  ncl_safetensors_writer_add_metadata (b.st, "params", params);
  ncl_safetensors_writer_add_metadata (b.st, "description", desc->str);

  if (g_mkdir_with_parents (dest_dir, 0755) != 0) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_IO, "%s: cannot create: %s",
        dest_dir, g_strerror (errno));
    goto out;
  }
  st_base = g_strdup_printf ("%s.safetensors", name);
  st_path = g_build_filename (dest_dir, st_base, NULL);
  yaml_path = g_strdup_printf ("%s%s%s.yaml", dest_dir, G_DIR_SEPARATOR_S,
      name);

  qorigin = yaml_quote (origin);
  g_string_append_printf (yaml, "# face-api network '%s', converted from its "
      "TF.js weights by\n# `neuralcl models fetch` (docs/faces-models.md). "
      "Licence: MIT.\nneuralcl-model: 1\nname: %s\narchitecture: %s\n"
      "origin: %s\nweights: %s\ndescription: |\n", name, name,
      architecture_of (name), qorigin, st_base);
  {
    g_auto (GStrv) lines = g_strsplit (desc->str, "\n", -1);

    for (guint i = 0; lines[i]; i++)
      if (lines[i][0] != '\0')
        g_string_append_printf (yaml, "  %s\n", lines[i]);
  }
  g_string_append (yaml, "input:\n  channels: 3\n");
  if (strcmp (name, NCL_FACE_MODEL_TINY_DETECTOR) == 0)
    g_string_append (yaml, "  size-multiple: 32\n");
  if (b.top)
    g_string_append (yaml, b.top);
  g_string_append (yaml, "layers:\n");
  g_string_append (yaml, b.layers->str);

  if (!ncl_safetensors_writer_write (b.st, st_path, error) ||
      !write_text (yaml_path, yaml->str, error))
    goto out;

  /* load it back: the graph must parse and use every weight */
  check = ncl_model_load (yaml_path, error);
  if (check == NULL) {
    g_unlink (yaml_path);
    g_unlink (st_path);
    goto out;
  }
  ok = TRUE;

out:
  builder_clear (&b);
  return ok;
}
