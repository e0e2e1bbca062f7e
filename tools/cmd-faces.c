/* neuralcl faces: face detection, descriptors, verification, identification
 * and their evaluation on labelled photo sets.
 *
 *   neuralcl faces detect [--landmarks] IMAGE...
 *   neuralcl faces embed [--all] IMAGE...
 *   neuralcl faces verify [--json] IMAGE_A IMAGE_B
 *   neuralcl faces identify --gallery G.yaml [--max-frames N] INPUT...
 *   neuralcl faces eval --pairs PAIRS.tsv --root DIR [--json]
 *                       [--scores OUT.tsv] [--far F]
 *   neuralcl faces eval-identify --labels LABELS.tsv --root DIR [--json]
 *
 * Every action takes --config FACES.yaml (ncl_face_config_load) and the
 * overrides --detector, --detector-size, --align, --border, --device and
 * --threshold.  Images go through NclFaceEngine here; identify runs videos
 * through the facerecognize element and prints its per-frame bus messages.
 * Machine output is one JSON object per line, built with json-glib
 * (docs/face-eval.md).  The metric maths is in face-eval.c. */
#include "config.h"

#include "neuralcl-cli.h"
#include "face-eval.h"
#include "cmd-faces-train.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <gst/gst.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* ---- JSON output -------------------------------------------------------- */

/* json-glib builds the objects and escapes the strings; numbers are written
 * here, at float precision (the shortest text that reads back as the same
 * float: descriptors, boxes and distances are floats), since the generator
 * prints every double with 17 digits.  Infinities and NaN become null. */
static void write_json (GString * out, JsonNode * node);

static void
write_json_string (GString * out, const gchar * s)
{
  g_autoptr (JsonNode) node = json_node_init_string (json_node_alloc (), s);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autofree gchar *text = NULL;

  json_generator_set_root (gen, node);
  text = json_generator_to_data (gen, NULL);
  g_string_append (out, text);
}

static void
write_json_double (GString * out, gdouble v)
{
  gchar buf[G_ASCII_DTOSTR_BUF_SIZE];

  if (!isfinite (v)) {
    g_string_append (out, "null");
    return;
  }
  /* whole numbers in full ("140", not "1.4e+02") */
  if (v == floor (v) && fabs (v) < 1e15) {
    g_string_append_printf (out, "%" G_GINT64_FORMAT, (gint64) v);
    return;
  }
  for (gint digits = 1; digits <= 9; digits++) {
    gchar format[8];

    g_snprintf (format, sizeof (format), "%%.%dg", digits);
    g_ascii_formatd (buf, sizeof (buf), format, v);
    if ((gfloat) g_ascii_strtod (buf, NULL) == (gfloat) v)
      break;
  }
  g_string_append (out, buf);
}

static void
write_json (GString * out, JsonNode * node)
{
  switch (json_node_get_node_type (node)) {
    case JSON_NODE_OBJECT:{
      JsonObject *obj = json_node_get_object (node);
      g_autoptr (GList) members = json_object_get_members (obj);

      g_string_append_c (out, '{');
      for (GList * l = members; l != NULL; l = l->next) {
        if (l != members)
          g_string_append (out, ", ");
        write_json_string (out, l->data);
        g_string_append (out, ": ");
        write_json (out, json_object_get_member (obj, l->data));
      }
      g_string_append_c (out, '}');
      break;
    }
    case JSON_NODE_ARRAY:{
      JsonArray *arr = json_node_get_array (node);

      g_string_append_c (out, '[');
      for (guint i = 0; i < json_array_get_length (arr); i++) {
        if (i > 0)
          g_string_append (out, ", ");
        write_json (out, json_array_get_element (arr, i));
      }
      g_string_append_c (out, ']');
      break;
    }
    case JSON_NODE_NULL:
      g_string_append (out, "null");
      break;
    case JSON_NODE_VALUE:
      if (json_node_get_value_type (node) == G_TYPE_STRING)
        write_json_string (out, json_node_get_string (node));
      else if (json_node_get_value_type (node) == G_TYPE_DOUBLE)
        write_json_double (out, json_node_get_double (node));
      else if (json_node_get_value_type (node) == G_TYPE_BOOLEAN)
        g_string_append (out, json_node_get_boolean (node) ? "true" :
            "false");
      else
        g_string_append_printf (out, "%" G_GINT64_FORMAT,
            json_node_get_int (node));
      break;
  }
}

/* Prints the builder's object as one line on stdout. */
static void
print_json (JsonBuilder * b)
{
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  g_autoptr (GString) out = g_string_new (NULL);

  write_json (out, root);
  g_string_append_c (out, '\n');
  fputs (out->str, stdout);
  fflush (stdout);
}

static void
add_box (JsonBuilder * b, const NclBox * box)
{
  json_builder_set_member_name (b, "box");
  json_builder_begin_array (b);
  json_builder_add_double_value (b, box->x);
  json_builder_add_double_value (b, box->y);
  json_builder_add_double_value (b, box->w);
  json_builder_add_double_value (b, box->h);
  json_builder_end_array (b);
}

static void
add_descriptor (JsonBuilder * b, const gfloat * d)
{
  json_builder_set_member_name (b, "descriptor");
  json_builder_begin_array (b);
  for (guint i = 0; i < NCL_FACE_DESCRIPTOR_LEN; i++)
    json_builder_add_double_value (b, d[i]);
  json_builder_end_array (b);
}

/* ---- options shared by every action -------------------------------------- */

typedef struct
{
  gchar *config;
  gchar *detector;
  gint detector_size;           /* 0: not given */
  gchar *align;
  gdouble border;               /* < 0: not given */
  gchar *device;
  gdouble threshold;            /* < 0: not given */
  gchar *help[4];               /* texts naming the library's defaults */
} FaceOptions;

static void
face_options_clear (FaceOptions * o)
{
  g_clear_pointer (&o->config, g_free);
  g_clear_pointer (&o->detector, g_free);
  g_clear_pointer (&o->align, g_free);
  g_clear_pointer (&o->device, g_free);
  for (guint i = 0; i < G_N_ELEMENTS (o->help); i++)
    g_clear_pointer (&o->help[i], g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (FaceOptions, face_options_clear)

/* Adds the shared options to @octx's main group, storing into @o (which
 * must outlive @octx). */
static void
add_face_options (GOptionContext * octx, FaceOptions * o)
{
  NclFaceSettings d;

  ncl_face_settings_init (&d);
  o->help[0] = g_strdup_printf ("Face detector: tiny or ssd (default %s)",
      ncl_face_detector_to_string (d.detector));
  o->help[1] = g_strdup_printf ("Tiny detector input size, a multiple of "
      "32 (default %d)", d.detector_size);
  o->help[2] = g_strdup_printf ("Face alignment before recognition: warp "
      "or crop (default %s)", ncl_face_align_to_string (d.align));
  o->help[3] = g_strdup_printf ("Border added around the image before "
      "detection, as a fraction of its larger side (default %g)", d.border);
  {
    GOptionEntry entries[] = {
      {"config", 'c', 0, G_OPTION_ARG_FILENAME, &o->config,
          "Face settings YAML (config/faces.yaml); options override it",
            "YAML"},
      {"detector", 0, 0, G_OPTION_ARG_STRING, &o->detector, o->help[0],
          "tiny|ssd"},
      {"detector-size", 0, 0, G_OPTION_ARG_INT, &o->detector_size,
          o->help[1], "N"},
      {"align", 0, 0, G_OPTION_ARG_STRING, &o->align, o->help[2],
          "warp|crop"},
      {"border", 0, 0, G_OPTION_ARG_DOUBLE, &o->border, o->help[3], "F"},
      {"device", 'd', 0, G_OPTION_ARG_STRING, &o->device,
          "OpenCL device: index, type or part of the name", "D"},
      {"threshold", 't', 0, G_OPTION_ARG_DOUBLE, &o->threshold,
          "Distances below T are the same person (default 0.6, or the "
            "gallery's)", "T"},
      {NULL}
    };

    o->border = -1;
    o->threshold = -1;
    g_option_context_add_main_entries (octx, entries, NULL);
  }
}

/* The settings: defaults, then --config, then the options. */
static gboolean
resolve_config (const FaceOptions * o, NclFaceConfig * c, GError ** error)
{
  ncl_face_config_init (c);
  if (o->config != NULL && !ncl_face_config_load (c, o->config, error))
    return FALSE;
  if (o->detector != NULL && !ncl_face_detector_from_string (o->detector,
          &c->face.detector)) {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
        "--detector: '%s' is not one of tiny, ssd", o->detector);
    return FALSE;
  }
  if (o->align != NULL && !ncl_face_align_from_string (o->align,
          &c->face.align)) {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
        "--align: '%s' is not one of warp, crop", o->align);
    return FALSE;
  }
  if (o->detector_size != 0) {
    if (o->detector_size < 32 || o->detector_size > 2048
        || o->detector_size % 32 != 0) {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
          "--detector-size: %d is not a multiple of 32 in 32..2048",
          o->detector_size);
      return FALSE;
    }
    c->face.detector_size = o->detector_size;
  }
  if (o->border != -1) {
    if (!(o->border >= 0 && o->border <= 2)) {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
          "--border: %g is out of range 0..2", o->border);
      return FALSE;
    }
    c->face.border = o->border;
  }
  if (o->threshold != -1) {
    if (!(o->threshold >= 0 && o->threshold <= NCL_GALLERY_MAX_DISTANCE)) {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
          "--threshold: %g is out of range 0..%g", o->threshold,
          NCL_GALLERY_MAX_DISTANCE);
      return FALSE;
    }
    c->threshold = o->threshold;
  }
  if (o->device != NULL) {
    g_free (c->device);
    c->device = g_strdup (o->device);
  }
  return TRUE;
}

/* The threshold for verification: the configured one, else the default. */
static gdouble
verify_threshold (const NclFaceConfig * c)
{
  return c->threshold >= 0 ? c->threshold : NCL_GALLERY_DEFAULT_THRESHOLD;
}

/* One run of an action: its name for messages, the settings and, once
 * opened, the engine. */
typedef struct
{
  const gchar *name;
  NclFaceConfig config;
  NclContext *ctx;
  NclFaceEngine *engine;
} FaceRun;

static void
face_run_clear (FaceRun * r)
{
  g_clear_pointer (&r->engine, ncl_face_engine_free);
  g_clear_pointer (&r->ctx, ncl_context_unref);
  ncl_face_config_clear (&r->config);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (FaceRun, face_run_clear)

/* Parses the options (freeing @octx) and the settings.  Prints the error. */
static gboolean
face_run_init (FaceRun * r, GOptionContext * octx, FaceOptions * o,
    gint * argc, gchar *** argv, gint n_args)
{
  g_autoptr (GError) error = NULL;

  r->name = ncl_cli_name ((*argv)[0]);
  ncl_face_config_init (&r->config);
  if (!ncl_cli_parse (octx, argc, argv, n_args))
    return FALSE;
  ncl_face_config_clear (&r->config);
  if (!resolve_config (o, &r->config, &error)) {
    if (error->domain == G_OPTION_ERROR)
      ncl_cli_fail ("%s: %s", r->name, error->message);
    else
      ncl_cli_fail_error (error);
    return FALSE;
  }
  return TRUE;
}

static gboolean
face_run_open (FaceRun * r, GError ** error)
{
  if (r->engine != NULL)
    return TRUE;
  r->ctx = ncl_context_new (r->config.device, error);
  if (r->ctx == NULL)
    return FALSE;
  r->engine = ncl_face_engine_new (r->ctx, &r->config.face, error);
  return r->engine != NULL;
}

/* Loads @path and runs @what: 0 detection only, 1 + landmarks, 2 + the
 * descriptors.  Fills @faces (cleared first) and the image size. */
static gboolean
face_run_image (FaceRun * r, const gchar * path, gint what, GArray * faces,
    gint * width, gint * height, GError ** error)
{
  g_autoptr (NclImage) img = NULL;

  g_array_set_size (faces, 0);
  if (!g_file_test (path, G_FILE_TEST_EXISTS)) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_NOT_FOUND, "%s: no such file",
        path);
    return FALSE;
  }
  img = ncl_image_load (path, error);
  if (img == NULL || !face_run_open (r, error))
    return FALSE;
  if (width != NULL)
    *width = img->width;
  if (height != NULL)
    *height = img->height;

  if (what == 2)
    return ncl_face_engine_analyze (r->engine, img, faces, error);
  if (!ncl_face_engine_set_image (r->engine, img, error)
      || !ncl_face_engine_detect (r->engine, faces, error))
    return FALSE;
  if (what == 1 && faces->len > 0)
    return ncl_face_engine_landmarks (r->engine, (NclFace *) faces->data,
        faces->len, error);
  return TRUE;
}

/* The descriptor of @path's main face (ncl_face_pick_main).  Returns FALSE
 * with @error on failure, TRUE with *@found FALSE when there is no face. */
static gboolean
face_run_describe_main (FaceRun * r, const gchar * path, gfloat * descriptor,
    gboolean * found, GError ** error)
{
  g_autoptr (GArray) faces = g_array_new (FALSE, TRUE, sizeof (NclFace));
  gint width = 0, height = 0, main_face;

  *found = FALSE;
  if (!face_run_image (r, path, 2, faces, &width, &height, error))
    return FALSE;
  main_face = ncl_face_pick_main ((NclFace *) faces->data, faces->len,
      width, height);
  if (main_face < 0)
    return TRUE;
  memcpy (descriptor, g_array_index (faces, NclFace, main_face).descriptor,
      sizeof (gfloat) * NCL_FACE_DESCRIPTOR_LEN);
  *found = TRUE;
  return TRUE;
}

/* Prints progress on stderr when it is a terminal. */
static void
progress (const gchar * name, guint done, guint total, const gchar * what)
{
  static gint tty = -1;

  if (tty < 0)
    tty = isatty (fileno (stderr));
  if (!tty)
    return;
  fprintf (stderr, "\r\033[K%s: %u/%u %s", name, done, total, what);
  if (done == total)
    fputc ('\n', stderr);
  fflush (stderr);
}

/* ---- faces detect / embed ----------------------------------------------- */

static gint
faces_detect (gint argc, gchar ** argv)
{
  g_auto (FaceOptions) o = { 0 };
  g_auto (FaceRun) r = { 0 };
  gboolean landmarks = FALSE;
  GOptionEntry entries[] = {
    {"landmarks", 'l', 0, G_OPTION_ARG_NONE, &landmarks,
        "Add the 68 landmarks of each face", NULL},
    {NULL}
  };
  GOptionContext *octx = g_option_context_new ("IMAGE...");
  g_autoptr (GArray) faces = g_array_new (FALSE, TRUE, sizeof (NclFace));
  g_autoptr (GError) open_error = NULL;
  gint status = NCL_CLI_EXIT_OK;

  g_option_context_set_summary (octx,
      "Detects the faces of each image and prints one JSON line per image:\n"
      "  {\"file\": F, \"width\": W, \"height\": H, \"faces\": [{\"box\": "
      "[x, y, w, h],\n   \"score\": S, \"landmarks\": [[x, y], ...]}]}\n"
      "best score first; landmarks only with --landmarks.");
  g_option_context_add_main_entries (octx, entries, NULL);
  add_face_options (octx, &o);
  if (!face_run_init (&r, octx, &o, &argc, &argv, -1))
    return NCL_CLI_EXIT_FAILURE;
  if (argc < 2)
    return ncl_cli_fail ("%s: no image given; see \"%s --help\"", r.name,
        argv[0]);
  /* no model or device: nothing would work */
  if (!face_run_open (&r, &open_error))
    return ncl_cli_fail_error (open_error);

  for (gint i = 1; i < argc; i++) {
    g_autoptr (GError) error = NULL;
    g_autoptr (JsonBuilder) b = NULL;
    gint width, height;

    if (!face_run_image (&r, argv[i], landmarks ? 1 : 0, faces, &width,
            &height, &error)) {
      status = ncl_cli_fail_error (error);
      continue;
    }
    b = json_builder_new ();
    json_builder_begin_object (b);
    ncl_cli_json_add_string (b, "file", argv[i]);
    ncl_cli_json_add_int (b, "width", width);
    ncl_cli_json_add_int (b, "height", height);
    json_builder_set_member_name (b, "faces");
    json_builder_begin_array (b);
    for (guint f = 0; f < faces->len; f++) {
      const NclFace *face = &g_array_index (faces, NclFace, f);

      json_builder_begin_object (b);
      add_box (b, &face->box);
      ncl_cli_json_add_double (b, "score", face->score);
      if (landmarks && face->has_landmarks) {
        json_builder_set_member_name (b, "landmarks");
        json_builder_begin_array (b);
        for (guint k = 0; k < NCL_FACE_N_LANDMARKS; k++) {
          json_builder_begin_array (b);
          json_builder_add_double_value (b, face->landmarks[k].x);
          json_builder_add_double_value (b, face->landmarks[k].y);
          json_builder_end_array (b);
        }
        json_builder_end_array (b);
      }
      json_builder_end_object (b);
    }
    json_builder_end_array (b);
    json_builder_end_object (b);
    print_json (b);
  }
  return status;
}

static gint
faces_embed (gint argc, gchar ** argv)
{
  g_auto (FaceOptions) o = { 0 };
  g_auto (FaceRun) r = { 0 };
  gboolean all = FALSE;
  GOptionEntry entries[] = {
    {"all", 'a', 0, G_OPTION_ARG_NONE, &all,
        "Describe every face, not only the main one", NULL},
    {NULL}
  };
  GOptionContext *octx = g_option_context_new ("IMAGE...");
  g_autoptr (GArray) faces = g_array_new (FALSE, TRUE, sizeof (NclFace));
  g_autoptr (GError) open_error = NULL;
  gint status = NCL_CLI_EXIT_OK;

  g_option_context_set_summary (octx,
      "Prints the 128-D descriptor of the main face of each image (the\n"
      "largest, ties to the most central; the face a gallery enrols), one\n"
      "JSON line per image:\n"
      "  {\"file\": F, \"n_faces\": N, \"box\": [x, y, w, h], \"score\": S,"
      " \"descriptor\": [...]}\n"
      "An image without a face is an error.  With --all:\n"
      "  {\"file\": F, \"faces\": [{\"box\": ..., \"score\": ..., "
      "\"descriptor\": ...}]}");
  g_option_context_add_main_entries (octx, entries, NULL);
  add_face_options (octx, &o);
  if (!face_run_init (&r, octx, &o, &argc, &argv, -1))
    return NCL_CLI_EXIT_FAILURE;
  if (argc < 2)
    return ncl_cli_fail ("%s: no image given; see \"%s --help\"", r.name,
        argv[0]);
  /* no model or device: nothing would work */
  if (!face_run_open (&r, &open_error))
    return ncl_cli_fail_error (open_error);

  for (gint i = 1; i < argc; i++) {
    g_autoptr (GError) error = NULL;
    g_autoptr (JsonBuilder) b = NULL;
    gint width, height, main_face;

    if (!face_run_image (&r, argv[i], 2, faces, &width, &height, &error)) {
      status = ncl_cli_fail_error (error);
      continue;
    }
    b = json_builder_new ();
    json_builder_begin_object (b);
    ncl_cli_json_add_string (b, "file", argv[i]);
    if (all) {
      json_builder_set_member_name (b, "faces");
      json_builder_begin_array (b);
      for (guint f = 0; f < faces->len; f++) {
        const NclFace *face = &g_array_index (faces, NclFace, f);

        json_builder_begin_object (b);
        add_box (b, &face->box);
        ncl_cli_json_add_double (b, "score", face->score);
        add_descriptor (b, face->descriptor);
        json_builder_end_object (b);
      }
      json_builder_end_array (b);
    } else {
      const NclFace *face;

      main_face = ncl_face_pick_main ((NclFace *) faces->data, faces->len,
          width, height);
      if (main_face < 0) {
        status = ncl_cli_fail ("%s: no face found", argv[i]);
        continue;
      }
      face = &g_array_index (faces, NclFace, main_face);
      ncl_cli_json_add_int (b, "n_faces", faces->len);
      add_box (b, &face->box);
      ncl_cli_json_add_double (b, "score", face->score);
      add_descriptor (b, face->descriptor);
    }
    json_builder_end_object (b);
    print_json (b);
  }
  return status;
}

/* ---- faces verify -------------------------------------------------------- */

static gint
faces_verify (gint argc, gchar ** argv)
{
  g_auto (FaceOptions) o = { 0 };
  g_auto (FaceRun) r = { 0 };
  gboolean json = FALSE;
  GOptionEntry entries[] = {
    {"json", 'j', 0, G_OPTION_ARG_NONE, &json,
        "Print a JSON object: {\"file_a\", \"file_b\", \"distance\", "
          "\"threshold\", \"same\"}", NULL},
    {NULL}
  };
  GOptionContext *octx = g_option_context_new ("IMAGE_A IMAGE_B");
  gfloat desc[2][NCL_FACE_DESCRIPTOR_LEN];
  g_autoptr (NclVerifier) head = NULL;
  gdouble distance, threshold, probability = 0.0;
  gboolean same;

  g_option_context_set_summary (octx,
      "Compares the main faces of two photos: prints their descriptor\n"
      "distance and whether it is below the threshold (\"same person\")\n"
      "or not (\"different people\").  Exits 0 either way; 1 when a photo\n"
      "cannot be read or has no face.");
  g_option_context_add_main_entries (octx, entries, NULL);
  add_face_options (octx, &o);
  if (!face_run_init (&r, octx, &o, &argc, &argv, 2))
    return NCL_CLI_EXIT_FAILURE;

  for (gint i = 0; i < 2; i++) {
    g_autoptr (GError) error = NULL;
    gboolean found;

    if (!face_run_describe_main (&r, argv[i + 1], desc[i], &found, &error))
      return ncl_cli_fail_error (error);
    if (!found)
      return ncl_cli_fail ("%s: no face found", argv[i + 1]);
  }

  distance = ncl_face_distance (desc[0], desc[1]);
  threshold = verify_threshold (&r.config);
  same = distance < threshold;
  /* verifier: classifier decides with the learned head instead */
  {
    g_autoptr (GError) error = NULL;

    head = ncl_verifier_from_config (&r.config, &error);
    if (error != NULL)
      return ncl_cli_fail_error (error);
  }
  if (head != NULL) {
    probability = ncl_verifier_probability (head, desc[0], desc[1]);
    same = probability > 0.5;
  }
  if (json) {
    g_autoptr (JsonBuilder) b = json_builder_new ();

    json_builder_begin_object (b);
    ncl_cli_json_add_string (b, "file_a", argv[1]);
    ncl_cli_json_add_string (b, "file_b", argv[2]);
    ncl_cli_json_add_double (b, "distance", distance);
    if (head != NULL) {
      ncl_cli_json_add_string (b, "verifier", "classifier");
      ncl_cli_json_add_double (b, "probability", probability);
    } else {
      ncl_cli_json_add_double (b, "threshold", threshold);
    }
    json_builder_set_member_name (b, "same");
    json_builder_add_boolean_value (b, same);
    json_builder_end_object (b);
    print_json (b);
  } else if (head != NULL) {
    printf ("distance %.4f, p(same) %.4f: %s (classifier)\n", distance,
        probability, same ? "same person" : "different people");
  } else {
    printf ("distance %.4f: %s (threshold %g)\n", distance,
        same ? "same person" : "different people", threshold);
  }
  return NCL_CLI_EXIT_OK;
}

/* ---- faces identify: images ---------------------------------------------- */

/* TRUE when @path looks like a still image (by content and name). */
static gboolean
is_image_file (const gchar * path)
{
  guchar head[4096];
  gsize n = 0;
  FILE *f = g_fopen (path, "rb");
  g_autofree gchar *type = NULL;
  g_autofree gchar *mime = NULL;
  gboolean uncertain = FALSE;

  if (f != NULL) {
    n = fread (head, 1, sizeof (head), f);
    fclose (f);
  }
  type = g_content_type_guess (path, n > 0 ? head : NULL, n, &uncertain);
  mime = g_content_type_get_mime_type (type);
  return mime != NULL && g_str_has_prefix (mime, "image/");
}

static void
add_identify_face (JsonBuilder * b, const NclBox * box,
    const gchar * identity, gdouble distance, gint64 track)
{
  json_builder_begin_object (b);
  add_box (b, box);
  ncl_cli_json_add_string (b, "identity", identity);
  ncl_cli_json_add_double (b, "distance", distance);
  json_builder_set_member_name (b, "track");
  if (track >= 0)
    json_builder_add_int_value (b, track);
  else
    json_builder_add_null_value (b);
  json_builder_end_object (b);
}

static gboolean
identify_image (FaceRun * r, NclGallery * gallery, const gchar * path,
    GError ** error)
{
  g_autoptr (GArray) faces = g_array_new (FALSE, TRUE, sizeof (NclFace));
  g_autoptr (JsonBuilder) b = json_builder_new ();

  if (!face_run_image (r, path, 2, faces, NULL, NULL, error))
    return FALSE;

  json_builder_begin_object (b);
  ncl_cli_json_add_string (b, "file", path);
  ncl_cli_json_add_int (b, "frame", 0);
  json_builder_set_member_name (b, "pts");
  json_builder_add_null_value (b);
  json_builder_set_member_name (b, "faces");
  json_builder_begin_array (b);
  for (guint f = 0; f < faces->len; f++) {
    const NclFace *face = &g_array_index (faces, NclFace, f);
    NclMatch m;

    ncl_gallery_match (gallery, face->descriptor, &m);
    add_identify_face (b, &face->box, m.identity >= 0 ?
        ncl_gallery_get_name (gallery, m.identity) : NULL, m.distance, -1);
  }
  json_builder_end_array (b);
  json_builder_end_object (b);
  print_json (b);
  return TRUE;
}

/* ---- faces identify: videos through facerecognize ------------------------ */

#define FACERECOGNIZE "facerecognize"

/* Makes sure the facerecognize element can be found: when it is not in the
 * registry, the plugin directory of the build tree beside this executable
 * (BUILD/tools/neuralcl -> BUILD/gst-plugin) is scanned. */
static gboolean
ensure_element (const gchar * element, GError ** error)
{
  g_autoptr (GstElementFactory) factory = gst_element_factory_find (element);
  g_autofree gchar *exe_dir = NULL;

  if (factory != NULL)
    return TRUE;
  exe_dir = ncl_cli_get_exe_dir ();
  if (exe_dir != NULL) {
    g_autofree gchar *dir = g_build_filename (exe_dir, "..", "gst-plugin",
        NULL);

    if (g_file_test (dir, G_FILE_TEST_IS_DIR))
      gst_registry_scan_path (gst_registry_get (), dir);
    factory = gst_element_factory_find (element);
    if (factory != NULL)
      return TRUE;
  }
  g_set_error (error, NCL_ERROR, NCL_ERROR_NOT_FOUND,
      "GStreamer element '%s' not found; install gst-neuralcl or set "
      "GST_PLUGIN_PATH to the directory holding libgstneuralcl.so", element);
  return FALSE;
}

/* "a\"b" for YAML (transfer full) */
static gchar *
yaml_quote (const gchar * s)
{
  GString *out = g_string_new ("\"");

  for (const gchar * p = s; *p != '\0'; p++) {
    if (*p == '"' || *p == '\\')
      g_string_append_c (out, '\\');
    g_string_append_c (out, *p);
  }
  g_string_append_c (out, '"');
  return g_string_free (out, FALSE);
}

static void
yaml_double (GString * out, const gchar * indent, const gchar * key,
    gdouble v)
{
  gchar buf[G_ASCII_DTOSTR_BUF_SIZE];

  g_string_append_printf (out, "%s%s: %s\n", indent, key,
      g_ascii_dtostr (buf, sizeof (buf), v));
}

/* The resolved settings as a face config YAML, so that the element runs
 * exactly what the options and --config say (transfer full). */
static gchar *
config_to_yaml (const NclFaceConfig * c)
{
  GString *y = g_string_new ("# written by neuralcl faces identify\n");

  if (c->device != NULL) {
    g_autofree gchar *q = yaml_quote (c->device);

    g_string_append_printf (y, "device: %s\n", q);
  }
  g_string_append_printf (y, "detector: %s\n",
      ncl_face_detector_to_string (c->face.detector));
  g_string_append_printf (y, "detector-size: %d\n", c->face.detector_size);
  yaml_double (y, "", "min-score", c->face.min_score);
  yaml_double (y, "", "border", c->face.border);
  g_string_append_printf (y, "landmarks: %s\n",
      c->face.tiny_landmarks ? "tiny" : "full");
  g_string_append_printf (y, "align: %s\n",
      ncl_face_align_to_string (c->face.align));
  g_string_append_printf (y, "max-faces: %d\n", c->face.max_faces);
  if (c->threshold >= 0)
    yaml_double (y, "", "threshold", c->threshold);
  if (c->margin >= 0)
    yaml_double (y, "", "margin", c->margin);
  if (c->verifier != NULL)
    g_string_append_printf (y, "verifier: %s\n", c->verifier);
  if (c->verifier_model != NULL) {
    g_autofree gchar *q = yaml_quote (c->verifier_model);

    g_string_append_printf (y, "verifier-model: %s\n", q);
  }
  g_string_append (y, "overlay: false\ntracker:\n");
  yaml_double (y, "  ", "iou-threshold", c->tracker.iou_threshold);
  g_string_append_printf (y, "  max-missed: %u\n", c->tracker.max_missed);
  if (c->tracker.recognize_interval > 0)
    g_string_append_printf (y, "  recognize-interval: %u\n",
        c->tracker.recognize_interval);
  if (c->tracker.grow_factor >= 1)
    yaml_double (y, "  ", "grow-factor", c->tracker.grow_factor);
  yaml_double (y, "  ", "score-gain", c->tracker.score_gain);
  g_string_append_printf (y, "  vote-window: %u\n", c->tracker.vote_window);
  return g_string_free (y, FALSE);
}

typedef struct
{
  GMainLoop *loop;
  const gchar *file;            /* as given on the command line */
  const gchar *name;
  gint max_frames;              /* 0: all */
  gint frames;                  /* lines printed */
  gboolean failed;
} VideoRun;

/* Number field @name of @s, whatever its integer or float type. */
static gboolean
get_number (const GstStructure * s, const gchar * name, gdouble * out)
{
  const GValue *v = gst_structure_get_value (s, name);
  GValue d = G_VALUE_INIT;

  if (v == NULL || !g_value_type_transformable (G_VALUE_TYPE (v),
          G_TYPE_DOUBLE))
    return FALSE;
  g_value_init (&d, G_TYPE_DOUBLE);
  g_value_transform (v, &d);
  *out = g_value_get_double (&d);
  return TRUE;
}

/* A "face" structure of the message (gstfacerecognize.c): "x", "y",
 * "width", "height", "identity" (absent when unknown or not recognised
 * yet), "distance" (+inf before the first recognition), "track-id". */
static void
add_message_face (JsonBuilder * b, const GstStructure * f)
{
  NclBox box = { 0, 0, 0, 0 };
  gdouble distance = NAN, track = -1;

  get_number (f, "x", &box.x);
  get_number (f, "y", &box.y);
  get_number (f, "width", &box.w);
  get_number (f, "height", &box.h);
  get_number (f, "distance", &distance);
  get_number (f, "track-id", &track);
  add_identify_face (b, &box, gst_structure_get_string (f, "identity"),
      distance, (gint64) track);
}

/* Prints one "facerecognize" frame message as a JSON line: its "frame"
 * (counted from 0), "timestamp" and "faces" (a list of structures). */
static void
print_frame (VideoRun * run, const GstStructure * s)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  const GValue *faces = gst_structure_get_value (s, "faces");
  gdouble frame = run->frames;
  GstClockTime pts = GST_CLOCK_TIME_NONE;
  guint n = 0;

  get_number (s, "frame", &frame);
  json_builder_begin_object (b);
  ncl_cli_json_add_string (b, "file", run->file);
  ncl_cli_json_add_int (b, "frame", (gint64) frame);
  json_builder_set_member_name (b, "pts");
  if (gst_structure_get_clock_time (s, "timestamp", &pts)
      && GST_CLOCK_TIME_IS_VALID (pts))
    json_builder_add_int_value (b, (gint64) pts);
  else
    json_builder_add_null_value (b);

  json_builder_set_member_name (b, "faces");
  json_builder_begin_array (b);
  if (faces != NULL && GST_VALUE_HOLDS_LIST (faces))
    n = gst_value_list_get_size (faces);
  for (guint i = 0; i < n; i++) {
    const GValue *item = gst_value_list_get_value (faces, i);

    if (GST_VALUE_HOLDS_STRUCTURE (item))
      add_message_face (b, gst_value_get_structure (item));
  }
  json_builder_end_array (b);
  json_builder_end_object (b);
  print_json (b);
  run->frames++;
}

static gboolean
on_video_message (GstBus * bus, GstMessage * msg, gpointer user_data)
{
  VideoRun *run = user_data;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *debug = NULL;
  const GstStructure *s;

  switch (GST_MESSAGE_TYPE (msg)) {
    case GST_MESSAGE_ELEMENT:
      s = gst_message_get_structure (msg);
      if (s == NULL || !gst_structure_has_name (s, FACERECOGNIZE))
        break;
      if (run->max_frames > 0 && run->frames >= run->max_frames)
        break;
      print_frame (run, s);
      if (run->max_frames > 0 && run->frames >= run->max_frames)
        g_main_loop_quit (run->loop);
      break;
    case GST_MESSAGE_ERROR:
      gst_message_parse_error (msg, &error, &debug);
      ncl_cli_fail ("%s: %s: %s%s%s%s", run->file,
          GST_OBJECT_NAME (GST_MESSAGE_SRC (msg)), error->message,
          debug != NULL ? " (" : "", debug != NULL ? debug : "",
          debug != NULL ? ")" : "");
      run->failed = TRUE;
      g_main_loop_quit (run->loop);
      break;
    case GST_MESSAGE_WARNING:
      gst_message_parse_warning (msg, &error, &debug);
      g_printerr ("%s: warning: %s: %s\n", run->name, run->file,
          error->message);
      break;
    case GST_MESSAGE_EOS:
      g_main_loop_quit (run->loop);
      break;
    default:
      break;
  }
  return G_SOURCE_CONTINUE;
}

/* Runs @path through facerecognize; prints its frames.  Errors are
 * printed; returns FALSE on one. */
static gboolean
identify_video (FaceRun * r, const gchar * gallery_path,
    const gchar * config_path, const gchar * path, gint max_frames)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GstElement) pipeline = NULL;
  g_autoptr (GstElement) src = NULL;
  g_autoptr (GstElement) fr = NULL;
  g_autoptr (GstBus) bus = NULL;
  VideoRun run = { 0 };
  guint watch;
  const gchar *launch = "filesrc name=source ! decodebin ! videoconvert "
      "! " FACERECOGNIZE " name=fr overlay=false ! fakesink sync=false";

  pipeline = gst_parse_launch (launch, &error);
  if (pipeline != NULL)
    gst_object_ref_sink (pipeline);
  if (pipeline == NULL || error != NULL) {
    ncl_cli_fail ("cannot build the pipeline '%s': %s", launch,
        error != NULL ? error->message : "unknown error");
    return FALSE;
  }
  src = gst_bin_get_by_name (GST_BIN (pipeline), "source");
  fr = gst_bin_get_by_name (GST_BIN (pipeline), "fr");
  g_object_set (src, "location", path, NULL);
  g_object_set (fr, "config", config_path, "gallery", gallery_path, NULL);

  run.loop = g_main_loop_new (NULL, FALSE);
  run.file = path;
  run.name = r->name;
  run.max_frames = max_frames;
  bus = gst_element_get_bus (pipeline);
  watch = gst_bus_add_watch (bus, on_video_message, &run);

  if (gst_element_set_state (pipeline, GST_STATE_PLAYING) ==
      GST_STATE_CHANGE_FAILURE) {
    g_autoptr (GstMessage) msg = gst_bus_pop_filtered (bus,
        GST_MESSAGE_ERROR);

    if (msg != NULL)
      on_video_message (bus, msg, &run);
    else
      ncl_cli_fail ("%s: the pipeline failed to start", path);
    run.failed = TRUE;
  } else {
    g_main_loop_run (run.loop);
  }
  gst_element_set_state (pipeline, GST_STATE_NULL);
  g_source_remove (watch);
  g_main_loop_unref (run.loop);

  if (!run.failed && run.frames == 0) {
    ncl_cli_fail ("%s: no video frames decoded", path);
    return FALSE;
  }
  return !run.failed;
}

static gint
faces_identify (gint argc, gchar ** argv)
{
  g_auto (FaceOptions) o = { 0 };
  g_auto (FaceRun) r = { 0 };
  g_autofree gchar *gallery_path = NULL;
  gint max_frames = 0;
  GOptionEntry entries[] = {
    {"gallery", 'g', 0, G_OPTION_ARG_FILENAME, &gallery_path,
        "Gallery YAML: the people to recognise (default: the config's)",
          "YAML"},
    {"max-frames", 'n', 0, G_OPTION_ARG_INT, &max_frames,
        "Stop each video after N frames (default: all)", "N"},
    {NULL}
  };
  GOptionContext *octx = g_option_context_new ("INPUT...");
  g_autoptr (GError) error = NULL;
  g_autoptr (NclGallery) gallery = NULL;
  g_autoptr (GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  g_autofree gchar *tmp_dir = NULL;
  g_autofree gchar *config_path = NULL;
  g_autofree gchar *abs_gallery = NULL;
  g_autofree gboolean *image = NULL;
  gint status = NCL_CLI_EXIT_OK;
  guint n_images = 0;

  g_option_context_set_summary (octx,
      "Recognises the people of a gallery in photos and video files; one\n"
      "JSON line per image or video frame:\n"
      "  {\"file\": F, \"frame\": N, \"pts\": NS, \"faces\": [{\"box\": "
      "[x, y, w, h],\n   \"identity\": NAME|null, \"distance\": D, "
      "\"track\": ID}]}\n"
      "Images: frame 0, pts and track null.  Videos run through the\n"
      "facerecognize element (its tracker and identity vote); pts is in\n"
      "nanoseconds.  \"distance\" is to the nearest identity, also when\n"
      "the face is unknown (identity null).");
  g_option_context_add_main_entries (octx, entries, NULL);
  add_face_options (octx, &o);
  if (!face_run_init (&r, octx, &o, &argc, &argv, -1))
    return NCL_CLI_EXIT_FAILURE;
  if (argc < 2)
    return ncl_cli_fail ("%s: no input given; see \"%s --help\"", r.name,
        argv[0]);
  if (max_frames < 0)
    return ncl_cli_fail ("%s: --max-frames: %d is negative", r.name,
        max_frames);
  if (gallery_path == NULL && r.config.gallery != NULL)
    gallery_path = g_strdup (r.config.gallery);
  if (gallery_path == NULL)
    return ncl_cli_fail ("%s: --gallery is required (or gallery: in the "
        "config)", r.name);

  /* the gallery is checked before anything runs */
  gallery = ncl_gallery_parse (gallery_path, &error);
  if (gallery == NULL)
    return ncl_cli_fail_error (error);
  image = g_new0 (gboolean, argc);
  for (gint i = 1; i < argc; i++) {
    if (!g_file_test (argv[i], G_FILE_TEST_EXISTS))
      return ncl_cli_fail ("%s: no such file", argv[i]);
    if (!g_file_test (argv[i], G_FILE_TEST_IS_REGULAR))
      return ncl_cli_fail ("%s: not a regular file", argv[i]);
    image[i] = is_image_file (argv[i]);
    n_images += image[i];
  }

  if (n_images > 0) {
    if (!face_run_open (&r, &error)
        || !ncl_gallery_enrol (gallery, r.engine, warnings, &error))
      return ncl_cli_fail_error (error);
    for (guint i = 0; i < warnings->len; i++)
      g_printerr ("%s: warning: %s\n", r.name,
          (const gchar *) g_ptr_array_index (warnings, i));
    if (r.config.threshold >= 0)
      ncl_gallery_set_threshold (gallery, r.config.threshold);
    if (r.config.margin >= 0)
      ncl_gallery_set_margin (gallery, r.config.margin);
  }
  if (n_images < (guint) argc - 1) {
    g_autofree gchar *yaml = config_to_yaml (&r.config);

    gst_init (NULL, NULL);
    if (!ensure_element (FACERECOGNIZE, &error))
      return ncl_cli_fail_error (error);
    tmp_dir = g_dir_make_tmp ("neuralcl-faces-XXXXXX", &error);
    if (tmp_dir == NULL)
      return ncl_cli_fail ("%s: temporary directory: %s", r.name,
          error->message);
    config_path = g_build_filename (tmp_dir, "faces.yaml", NULL);
    if (!g_file_set_contents (config_path, yaml, -1, &error)) {
      g_rmdir (tmp_dir);
      return ncl_cli_fail ("%s: %s", config_path, error->message);
    }
    abs_gallery = g_canonicalize_filename (gallery_path, NULL);
  }

  for (gint i = 1; i < argc; i++) {
    g_autoptr (GError) local = NULL;

    if (image[i]) {
      if (!identify_image (&r, gallery, argv[i], &local))
        status = ncl_cli_fail_error (local);
    } else if (!identify_video (&r, abs_gallery, config_path, argv[i],
            max_frames)) {
      status = NCL_CLI_EXIT_FAILURE;
    }
  }

  if (config_path != NULL)
    g_unlink (config_path);
  if (tmp_dir != NULL)
    g_rmdir (tmp_dir);
  return status;
}

/* ---- faces eval ----------------------------------------------------------- */

typedef struct
{
  gboolean found;
  gfloat descriptor[NCL_FACE_DESCRIPTOR_LEN];
} CachedDescriptor;

/* The main-face descriptor of ROOT/@file, computed once per run.  Returns
 * NULL with @error when the image cannot be read. */
static const CachedDescriptor *
cached_descriptor (FaceRun * r, GHashTable * cache, const gchar * root,
    const gchar * file, GError ** error)
{
  CachedDescriptor *c = g_hash_table_lookup (cache, file);
  g_autofree gchar *path = NULL;

  if (c != NULL)
    return c;
  path = g_build_filename (root, file, NULL);
  c = g_new0 (CachedDescriptor, 1);
  if (!face_run_describe_main (r, path, c->descriptor, &c->found, error)) {
    g_free (c);
    return NULL;
  }
  g_hash_table_insert (cache, g_strdup (file), c);
  return c;
}

static gint
compare_strings (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(const gchar * const *) a, *(const gchar * const *) b);
}

/* "no_face_files": the photos without a face, sorted. */
static void
add_no_face_files (JsonBuilder * b, GHashTable * cache)
{
  g_autoptr (GPtrArray) files = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer key, value;

  g_hash_table_iter_init (&iter, cache);
  while (g_hash_table_iter_next (&iter, &key, &value)) {
    if (!((CachedDescriptor *) value)->found)
      g_ptr_array_add (files, key);
  }
  g_ptr_array_sort (files, compare_strings);
  json_builder_set_member_name (b, "no_face_files");
  json_builder_begin_array (b);
  for (guint i = 0; i < files->len; i++)
    json_builder_add_string_value (b, g_ptr_array_index (files, i));
  json_builder_end_array (b);
}

static void
add_settings (JsonBuilder * b, const FaceRun * r)
{
  ncl_cli_json_add_string (b, "detector",
      ncl_face_detector_to_string (r->config.face.detector));
  ncl_cli_json_add_int (b, "detector_size", r->config.face.detector_size);
  ncl_cli_json_add_string (b, "align", ncl_face_align_to_string (r->config.face.align));
  ncl_cli_json_add_double (b, "border", r->config.face.border);
  ncl_cli_json_add_string (b, "device", r->ctx != NULL ?
      ncl_context_get_device_name (r->ctx) : NULL);
}

static gint
faces_eval (gint argc, gchar ** argv)
{
  g_auto (FaceOptions) o = { 0 };
  g_auto (FaceRun) r = { 0 };
  g_autoptr (NclVerifier) head = NULL;
  g_autofree gchar *pairs_path = NULL;
  g_autofree gchar *root = NULL;
  g_autofree gchar *scores_path = NULL;
  gdouble far_target = -1;
  gboolean json = FALSE;
  GOptionEntry entries[] = {
    {"pairs", 'p', 0, G_OPTION_ARG_FILENAME, &pairs_path,
        "Pairs list: a header, then FILE_A<TAB>FILE_B<TAB>SAME (required)",
          "TSV"},
    {"root", 'r', 0, G_OPTION_ARG_FILENAME, &root,
        "Directory the files of the list are relative to (default: the "
          "list's)", "DIR"},
    {"json", 'j', 0, G_OPTION_ARG_NONE, &json,
        "Print one JSON object instead of text", NULL},
    {"scores", 's', 0, G_OPTION_ARG_FILENAME, &scores_path,
        "Write FILE_A<TAB>FILE_B<TAB>SAME<TAB>DISTANCE per pair (distance "
          "empty when a photo has no face)", "TSV"},
    {"far", 'f', 0, G_OPTION_ARG_DOUBLE, &far_target,
        "Also calibrate: the largest threshold whose false accept rate is "
          "at most F", "F"},
    {NULL}
  };
  GOptionContext *octx = g_option_context_new ("");
  g_autoptr (GError) error = NULL;
  g_autoptr (GArray) pairs = NULL;
  g_autoptr (GHashTable) cache = NULL;
  g_autoptr (GString) scores_text = NULL;
  g_autofree FaceEvalScore *scores = NULL;
  FaceEvalSummary sum;
  guint n_scored = 0, failed = 0, correct, no_face = 0;
  gdouble threshold, accuracy, far_threshold = NAN;
  gint64 start = g_get_monotonic_time ();
  GHashTableIter iter;
  gpointer value;

  g_option_context_set_summary (octx,
      "Face verification on a list of labelled pairs: the main-face\n"
      "descriptor of every photo (once per photo), the distance of each\n"
      "pair, and accuracy at the threshold, best accuracy over all\n"
      "thresholds, ROC AUC and equal error rate.  A pair with a photo\n"
      "without a face counts as an error in the accuracies and is left out\n"
      "of AUC and EER.  docs/face-eval.md has the definitions.");
  g_option_context_add_main_entries (octx, entries, NULL);
  add_face_options (octx, &o);
  if (!face_run_init (&r, octx, &o, &argc, &argv, 0))
    return NCL_CLI_EXIT_FAILURE;
  if (pairs_path == NULL)
    return ncl_cli_fail ("%s: --pairs is required", r.name);
  if (far_target != -1 && !(far_target >= 0 && far_target <= 1))
    return ncl_cli_fail ("%s: --far: %g is out of range 0..1", r.name,
        far_target);
  if (root == NULL)
    root = g_path_get_dirname (pairs_path);

  pairs = face_eval_read_pairs (pairs_path, &error);
  if (pairs == NULL)
    return ncl_cli_fail_error (error);
  cache = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  scores = g_new (FaceEvalScore, pairs->len);
  scores_text = g_string_new ("file_a\tfile_b\tsame\tdistance\n");
  threshold = verify_threshold (&r.config);
  correct = 0;
  /* verifier: classifier: the score is 1 - p(same), accepted below 0.5 */
  head = ncl_verifier_from_config (&r.config, &error);
  if (error != NULL)
    return ncl_cli_fail_error (error);
  if (head != NULL)
    threshold = 0.5;

  for (guint i = 0; i < pairs->len; i++) {
    const FaceEvalPair *p = &g_array_index (pairs, FaceEvalPair, i);
    const CachedDescriptor *a, *b;
    gchar buf[G_ASCII_DTOSTR_BUF_SIZE];

    if (!(a = cached_descriptor (&r, cache, root, p->file_a, &error))
        || !(b = cached_descriptor (&r, cache, root, p->file_b, &error)))
      return ncl_cli_fail ("%s: %s", pairs_path, error->message);
    progress (r.name, i + 1, pairs->len, "pairs");
    g_string_append_printf (scores_text, "%s\t%s\t%d\t", p->file_a,
        p->file_b, p->same ? 1 : 0);
    if (!a->found || !b->found) {
      failed++;
      g_string_append_c (scores_text, '\n');
      continue;
    }
    scores[n_scored].distance = head != NULL ? 1.0 -
        ncl_verifier_probability (head, a->descriptor, b->descriptor) :
        ncl_face_distance (a->descriptor, b->descriptor);
    scores[n_scored].same = p->same;
    g_string_append_printf (scores_text, "%s\n", g_ascii_formatd (buf,
            sizeof (buf), "%.6f", scores[n_scored].distance));
    n_scored++;
  }
  g_hash_table_iter_init (&iter, cache);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    no_face += !((CachedDescriptor *) value)->found;

  if (scores_path != NULL && !g_file_set_contents (scores_path,
          scores_text->str, -1, &error))
    return ncl_cli_fail ("%s: %s", scores_path, error->message);

  face_eval_summarize (scores, n_scored, &sum);
  correct = face_eval_count_correct (scores, n_scored, threshold);
  accuracy = (gdouble) correct / pairs->len;
  if (far_target >= 0)
    far_threshold = face_eval_threshold_at_far (scores, n_scored,
        far_target);

  if (json) {
    g_autoptr (JsonBuilder) b = json_builder_new ();

    json_builder_begin_object (b);
    ncl_cli_json_add_string (b, "pairs_file", pairs_path);
    ncl_cli_json_add_int (b, "pairs", pairs->len);
    ncl_cli_json_add_int (b, "same", sum.n_same);
    ncl_cli_json_add_int (b, "different", sum.n_different);
    ncl_cli_json_add_int (b, "failed", failed);
    ncl_cli_json_add_int (b, "images", g_hash_table_size (cache));
    ncl_cli_json_add_int (b, "no_face", no_face);
    add_no_face_files (b, cache);
    ncl_cli_json_add_double (b, "threshold", threshold);
    ncl_cli_json_add_double (b, "accuracy", accuracy);
    ncl_cli_json_add_double (b, "far", face_eval_far (scores, n_scored, threshold));
    ncl_cli_json_add_double (b, "frr", face_eval_frr (scores, n_scored, threshold));
    ncl_cli_json_add_double (b, "best_accuracy", (gdouble) sum.best_correct / pairs->len);
    ncl_cli_json_add_double (b, "best_threshold", sum.best_threshold);
    ncl_cli_json_add_double (b, "auc", sum.auc);
    ncl_cli_json_add_double (b, "eer", sum.eer);
    ncl_cli_json_add_double (b, "eer_threshold", sum.eer_threshold);
    if (far_target >= 0) {
      ncl_cli_json_add_double (b, "far_target", far_target);
      ncl_cli_json_add_double (b, "far_threshold", far_threshold);
      ncl_cli_json_add_double (b, "frr_at_far_threshold", face_eval_frr (scores,
              n_scored, far_threshold));
    }
    add_settings (b, &r);
    ncl_cli_json_add_double (b, "seconds", (g_get_monotonic_time () - start) / 1e6);
    json_builder_end_object (b);
    print_json (b);
  } else {
    printf ("pairs: %u (%u same, %u different), %u failed (%u of %u "
        "photos without a face)\n", pairs->len, sum.n_same, sum.n_different,
        failed, no_face, g_hash_table_size (cache));
    printf ("accuracy at %g: %.4f (FAR %.4f, FRR %.4f)\n", threshold,
        accuracy, face_eval_far (scores, n_scored, threshold),
        face_eval_frr (scores, n_scored, threshold));
    printf ("best accuracy: %.4f at %.4f\n",
        (gdouble) sum.best_correct / pairs->len, sum.best_threshold);
    printf ("AUC: %.4f\nEER: %.4f at %.4f\n", sum.auc, sum.eer,
        sum.eer_threshold);
    if (far_target >= 0)
      printf ("threshold for FAR <= %g: %.4f (FRR %.4f)\n", far_target,
          far_threshold, face_eval_frr (scores, n_scored, far_threshold));
  }
  return NCL_CLI_EXIT_OK;
}

/* ---- faces eval-identify -------------------------------------------------- */

static gint
faces_eval_identify (gint argc, gchar ** argv)
{
  g_auto (FaceOptions) o = { 0 };
  g_auto (FaceRun) r = { 0 };
  g_autofree gchar *labels_path = NULL;
  g_autofree gchar *root = NULL;
  gboolean json = FALSE;
  GOptionEntry entries[] = {
    {"labels", 'l', 0, G_OPTION_ARG_FILENAME, &labels_path,
        "Labels list: a header, then FILE<TAB>IDENTITY (required)", "TSV"},
    {"root", 'r', 0, G_OPTION_ARG_FILENAME, &root,
        "Directory the files of the list are relative to (default: the "
          "list's)", "DIR"},
    {"json", 'j', 0, G_OPTION_ARG_NONE, &json,
        "Print one JSON object instead of text", NULL},
    {NULL}
  };
  GOptionContext *octx = g_option_context_new ("");
  g_autoptr (GError) error = NULL;
  g_autoptr (GArray) labels = NULL;
  g_autoptr (GHashTable) cache = NULL;
  g_autoptr (NclGallery) gallery = ncl_gallery_new ();
  g_autofree gboolean *enrolled = NULL;
  guint n_probes = 0, probe_no_face = 0, top1 = 0, accepted_right = 0;
  guint accepted_wrong = 0, rejected = 0, no_photo = 0, n_identities = 0;
  gint64 start = g_get_monotonic_time ();

  g_option_context_set_summary (octx,
      "Face identification with one enrolled photo per person: the first\n"
      "photo of each identity in the list that has a face is enrolled, and\n"
      "every other photo is matched against all enrolled identities.\n"
      "top1: the nearest identity is right; accepted_correct: the match\n"
      "accepted at the threshold and margin is right; rejected: the match\n"
      "was refused (unknown).  All are fractions of the probes; a probe\n"
      "without a face counts as wrong and rejected.");
  g_option_context_add_main_entries (octx, entries, NULL);
  add_face_options (octx, &o);
  if (!face_run_init (&r, octx, &o, &argc, &argv, 0))
    return NCL_CLI_EXIT_FAILURE;
  if (labels_path == NULL)
    return ncl_cli_fail ("%s: --labels is required", r.name);
  if (root == NULL)
    root = g_path_get_dirname (labels_path);

  labels = face_eval_read_labels (labels_path, &error);
  if (labels == NULL)
    return ncl_cli_fail_error (error);
  cache = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  ncl_gallery_set_threshold (gallery, verify_threshold (&r.config));
  ncl_gallery_set_margin (gallery, r.config.margin >= 0 ? r.config.margin :
      NCL_GALLERY_DEFAULT_MARGIN);

  /* enrolment: every identity first (so that all are in the gallery
   * before any probe), its first photo with a face */
  enrolled = g_new0 (gboolean, labels->len);
  for (guint i = 0; i < labels->len; i++) {
    const FaceEvalLabel *l = &g_array_index (labels, FaceEvalLabel, i);
    gint id = ncl_gallery_lookup (gallery, l->identity);
    const CachedDescriptor *c;

    if (id < 0) {
      id = ncl_gallery_add_identity (gallery, l->identity, -1);
      n_identities++;
    }
    if (ncl_gallery_get_n_descriptors (gallery, id) > 0)
      continue;
    c = cached_descriptor (&r, cache, root, l->file, &error);
    if (c == NULL)
      return ncl_cli_fail ("%s: %s", labels_path, error->message);
    progress (r.name, i + 1, labels->len, "photos (enrolment)");
    if (c->found) {
      ncl_gallery_add_descriptor (gallery, id, c->descriptor);
      enrolled[i] = TRUE;
    }
  }
  for (guint id = 0; id < n_identities; id++)
    no_photo += ncl_gallery_get_n_descriptors (gallery, id) == 0;

  for (guint i = 0; i < labels->len; i++) {
    const FaceEvalLabel *l = &g_array_index (labels, FaceEvalLabel, i);
    gint truth = ncl_gallery_lookup (gallery, l->identity);
    const CachedDescriptor *c;
    NclMatch m;

    if (enrolled[i])
      continue;
    c = cached_descriptor (&r, cache, root, l->file, &error);
    if (c == NULL)
      return ncl_cli_fail ("%s: %s", labels_path, error->message);
    progress (r.name, i + 1, labels->len, "photos");
    n_probes++;
    if (!c->found) {
      probe_no_face++;
      rejected++;
      continue;
    }
    ncl_gallery_match (gallery, c->descriptor, &m);
    top1 += m.nearest == truth;
    if (m.identity == NCL_IDENTITY_UNKNOWN)
      rejected++;
    else if (m.identity == truth)
      accepted_right++;
    else
      accepted_wrong++;
  }
  if (n_probes == 0)
    return ncl_cli_fail ("%s: no identity has a second photo to identify",
        labels_path);

  if (json) {
    g_autoptr (JsonBuilder) b = json_builder_new ();

    json_builder_begin_object (b);
    ncl_cli_json_add_string (b, "labels_file", labels_path);
    ncl_cli_json_add_int (b, "identities", n_identities);
    ncl_cli_json_add_int (b, "identities_without_face", no_photo);
    ncl_cli_json_add_int (b, "probes", n_probes);
    ncl_cli_json_add_int (b, "probes_without_face", probe_no_face);
    add_no_face_files (b, cache);
    ncl_cli_json_add_double (b, "threshold", ncl_gallery_get_threshold (gallery));
    ncl_cli_json_add_double (b, "margin", ncl_gallery_get_margin (gallery));
    ncl_cli_json_add_double (b, "top1", (gdouble) top1 / n_probes);
    ncl_cli_json_add_double (b, "accepted_correct", (gdouble) accepted_right / n_probes);
    ncl_cli_json_add_double (b, "accepted_wrong", (gdouble) accepted_wrong / n_probes);
    ncl_cli_json_add_double (b, "rejected", (gdouble) rejected / n_probes);
    add_settings (b, &r);
    ncl_cli_json_add_double (b, "seconds", (g_get_monotonic_time () - start) / 1e6);
    json_builder_end_object (b);
    print_json (b);
  } else {
    printf ("identities: %u (%u without a photo with a face), probes: %u "
        "(%u without a face)\n", n_identities, no_photo, n_probes,
        probe_no_face);
    printf ("top-1: %.4f\n", (gdouble) top1 / n_probes);
    printf ("at threshold %g, margin %g: %.4f right, %.4f wrong, %.4f "
        "rejected as unknown\n", ncl_gallery_get_threshold (gallery),
        ncl_gallery_get_margin (gallery), (gdouble) accepted_right /
        n_probes, (gdouble) accepted_wrong / n_probes,
        (gdouble) rejected / n_probes);
  }
  return NCL_CLI_EXIT_OK;
}

/* ---- dispatch ------------------------------------------------------------- */

static gint
faces_selftest_metrics (gint argc, gchar ** argv)
{
  guint failures = face_eval_selftest ();

  printf ("metrics self-test: %u failure%s\n", failures,
      failures == 1 ? "" : "s");
  return failures == 0 ? NCL_CLI_EXIT_OK : NCL_CLI_EXIT_FAILURE;
}

static const NclCliCommand faces_actions[] = {
  {"detect", "Face boxes, scores and landmarks of images (JSON lines)",
      faces_detect},
  {"embed", "Face descriptors of images (JSON lines)", faces_embed},
  {"verify", "Same person or not: the distance between two photos",
      faces_verify},
  {"identify", "Recognise gallery people in images and videos (JSON lines)",
      faces_identify},
  {"eval", "Verification accuracy, AUC and EER on a list of pairs",
      faces_eval},
  {"eval-identify", "Identification top-1 with one enrolled photo each",
      faces_eval_identify},
  {"train", "Train a face embedding with the triplet loss",
      ncl_cli_faces_train},
  {"train-verifier", "Learn the verification head from labelled photos",
      ncl_cli_faces_train_verifier},
  {NULL, NULL, NULL},
};

gint
ncl_cli_faces (gint argc, gchar ** argv)
{
  /* hidden: the metric checks of face-eval.c, run by the tests */
  if (argc >= 2 && g_str_equal (argv[1], "selftest-metrics"))
    return faces_selftest_metrics (argc - 1, argv + 1);
  return ncl_cli_dispatch (argv[0], "Faces: detection, descriptors, "
      "verification and identification (face-api networks).", faces_actions,
      argc, argv);
}
