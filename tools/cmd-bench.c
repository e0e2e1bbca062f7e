/* neuralcl bench: times a model through NclRunner on random input, per
 * frame size, with an optional per-layer table.
 *
 *   neuralcl bench [--model NAME] [--sizes 256x256,640x480] [--runs N]
 *                  [--warmup N] [--device D] [--layers] [--json]
 *   neuralcl bench --faces [--image FILE]... [--sizes 640x480]
 *                  [--batch 1,8] [--detectors tiny416,ssd] [--runs N] ...
 *
 * --faces times the face recognition net alone (descriptors/s per batch,
 * random chips), then whole frames through NclFaceEngine as the
 * facerecognize element runs them: set_image + detect, with and without
 * landmarks + descriptors for every face found.
 *
 * --json prints one line per size in the shape of ../shared/bench/run_ort.sh
 * (median_ms, throughput, res as HxW) so the two can be compared. */
#include "config.h"

#include "neuralcl-cli.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MODEL "mosaic"
#define DEFAULT_SIZES "256x256,640x480,1280x720"
#define DEFAULT_RUNS 5
#define DEFAULT_WARMUP 1
/* profiled runs per size for the layer table (median per layer) */
#define PROFILE_RUNS 3

typedef struct
{
  gint width, height;           /* rounded up to the model's multiple */
  gdouble median_s, min_s, max_s;
  gint runs;
  gdouble macs;                 /* whole network, one frame */
} BenchResult;

static gint
compare_double (gconstpointer a, gconstpointer b)
{
  gdouble x = *(const gdouble *) a, y = *(const gdouble *) b;

  return x < y ? -1 : (x > y ? 1 : 0);
}

static gdouble
median (gdouble * values, guint n)
{
  qsort (values, n, sizeof (gdouble), compare_double);
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

/* Uniform values in [lo, lo + range). */
static void
fill_random_range (gfloat * data, gsize n, guint32 seed, gfloat lo,
    gfloat range)
{
  guint32 s = seed * 2654435761u + 1u;

  for (gsize i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    data[i] = lo + range * ((s >> 8) / 16777216.0f);
  }
}

static void
fill_random (gfloat * data, gsize n, guint32 seed)
{
  fill_random_range (data, n, seed, 0.0f, 255.0f);
}

static gboolean
run_once (NclRunner * runner, NclContext * ctx, const NclTensor * input,
    gdouble * seconds, GError ** error)
{
  NclTensor *output = NULL;
  gint64 t0 = g_get_monotonic_time ();

  if (!ncl_runner_run (runner, input, &output, error)
      || !ncl_context_finish (ctx, error))
    return FALSE;
  *seconds = (g_get_monotonic_time () - t0) / 1e6;
  return TRUE;
}

/* Per-layer table from PROFILE_RUNS profiled runs (median per layer). */
static gboolean
print_layer_table (FILE * out, NclRunner * runner, NclContext * ctx,
    const NclTensor * input, GError ** error)
{
  guint n_layers = ncl_runner_get_n_layers (runner);
  g_autofree gdouble *samples = g_new0 (gdouble, n_layers * PROFILE_RUNS);
  g_autofree gdouble *layer_s = g_new0 (gdouble, n_layers);
  gdouble total_s = 0.0, total_macs = 0.0, wall;
  gsize name_w = 4, op_w = 2, variant_w = 7;
  gboolean ok = TRUE;

  ncl_runner_set_profiling (runner, TRUE);
  for (guint r = 0; r < PROFILE_RUNS && ok; r++) {
    ok = run_once (runner, ctx, input, &wall, error);
    for (guint i = 0; i < n_layers && ok; i++) {
      NclLayerInfo info;

      ncl_runner_get_layer_info (runner, i, &info);
      samples[i * PROFILE_RUNS + r] = info.seconds;
    }
  }
  ncl_runner_set_profiling (runner, FALSE);
  if (!ok)
    return FALSE;

  for (guint i = 0; i < n_layers; i++) {
    NclLayerInfo info;

    ncl_runner_get_layer_info (runner, i, &info);
    layer_s[i] = median (samples + i * PROFILE_RUNS, PROFILE_RUNS);
    total_s += layer_s[i];
    total_macs += info.macs;
    name_w = MAX (name_w, strlen (info.name));
    op_w = MAX (op_w, strlen (info.op));
    variant_w = MAX (variant_w, strlen (info.variant ? info.variant : ""));
  }

  fprintf (out, "  %-*s  %-*s  %-*s  %-16s %9s %9s %6s\n", (gint) name_w,
      "name", (gint) op_w, "op", (gint) variant_w, "variant", "output",
      "ms", "GFLOP/s", "%");
  for (guint i = 0; i < n_layers; i++) {
    NclLayerInfo info;
    g_autofree gchar *shape = NULL;
    g_autofree gchar *gflops = NULL;

    ncl_runner_get_layer_info (runner, i, &info);
    shape = g_strdup_printf ("%dx%dx%d", info.out_c, info.out_h, info.out_w);
    gflops = info.macs > 0.0 && layer_s[i] > 0.0 ?
        g_strdup_printf ("%9.1f", 2.0 * info.macs / layer_s[i] / 1e9) :
        g_strdup ("        -");
    fprintf (out, "  %-*s  %-*s  %-*s  %-16s %9.2f %s %5.1f%%\n",
        (gint) name_w, info.name, (gint) op_w, info.op, (gint) variant_w,
        info.variant != NULL && *info.variant ? info.variant : "-", shape,
        layer_s[i] * 1e3, gflops,
        total_s > 0.0 ? 100.0 * layer_s[i] / total_s : 0.0);
  }
  fprintf (out, "  %-*s  %-*s  %-*s  %-16s %9.2f %9.1f %5.1f%%\n",
      (gint) name_w, "total", (gint) op_w, "", (gint) variant_w, "",
      "(profiled)", total_s * 1e3,
      total_s > 0.0 ? 2.0 * total_macs / total_s / 1e9 : 0.0, 100.0);
  return TRUE;
}

static gboolean
bench_size (NclModel * model, NclContext * ctx, gint width, gint height,
    gint runs, gint warmup, gboolean layers, FILE * out, BenchResult * res,
    GError ** error)
{
  g_autoptr (NclRunner) runner = NULL;
  g_autoptr (NclTensor) input = NULL;
  g_autofree gfloat *data = NULL;
  g_autofree gdouble *times = NULL;
  gint multiple = MAX (1, ncl_model_get_size_multiple (model));
  gint channels = ncl_model_get_input_channels (model);
  gdouble t;
  gsize n;

  res->width = (width + multiple - 1) / multiple * multiple;
  res->height = (height + multiple - 1) / multiple * multiple;
  res->runs = runs;

  runner = ncl_runner_new (model, ctx, error);
  if (runner == NULL)
    return FALSE;
  input = ncl_tensor_new (ctx, 1, channels, res->height, res->width, error);
  if (input == NULL)
    return FALSE;
  n = ncl_tensor_numel (input);
  data = g_new (gfloat, n);
  fill_random (data, n, (guint32) (res->width * 7919 + res->height));
  if (!ncl_tensor_upload (input, data, error))
    return FALSE;

  /* the first run builds the kernels: always warm up at least once when
   * there is more than one timed run, so the median is not skewed */
  for (gint i = 0; i < warmup; i++) {
    if (!run_once (runner, ctx, input, &t, error))
      return FALSE;
  }
  times = g_new (gdouble, runs);
  for (gint i = 0; i < runs; i++) {
    if (!run_once (runner, ctx, input, &times[i], error))
      return FALSE;
  }
  res->min_s = res->max_s = times[0];
  for (gint i = 1; i < runs; i++) {
    res->min_s = MIN (res->min_s, times[i]);
    res->max_s = MAX (res->max_s, times[i]);
  }
  res->median_s = median (times, runs);
  res->macs = ncl_model_get_macs_per_pixel (model, res->height, res->width)
      * res->width * res->height;

  fprintf (out, "%dx%d%s: median %.1f ms (min %.1f, max %.1f, %d run%s), "
      "%.2f fps, %.1f GFLOP/s (%.2f GMAC/frame)\n", res->width, res->height,
      res->width != width || res->height != height ? " (rounded up)" : "",
      res->median_s * 1e3, res->min_s * 1e3, res->max_s * 1e3, runs,
      runs == 1 ? "" : "s", 1.0 / res->median_s,
      2.0 * res->macs / res->median_s / 1e9, res->macs / 1e9);
  fflush (out);

  if (layers && !print_layer_table (out, runner, ctx, input, error))
    return FALSE;
  return TRUE;
}

static void
json_add_common (JsonBuilder * b, NclContext * ctx, const gchar * workload,
    const gchar * model)
{
  json_builder_set_member_name (b, "peer");
  json_builder_add_string_value (b, "neuralcl " VERSION);
  json_builder_set_member_name (b, "device");
  json_builder_add_string_value (b, ncl_context_get_device_name (ctx));
  json_builder_set_member_name (b, "threads");
  json_builder_add_int_value (b, g_get_num_processors ());
  json_builder_set_member_name (b, "workload");
  json_builder_add_string_value (b, workload);
  json_builder_set_member_name (b, "model");
  json_builder_add_string_value (b, model);
}

static void
json_print (JsonBuilder * b)
{
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  g_autofree gchar *line = NULL;

  json_generator_set_root (gen, root);
  line = json_generator_to_data (gen, NULL);
  printf ("%s\n", line);
  fflush (stdout);
}

static void
print_json (NclModel * model, NclContext * ctx, const BenchResult * r)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autofree gchar *res = g_strdup_printf ("%dx%d", r->height, r->width);
  g_autofree gchar *net = g_strdup_printf ("johnson%s", res);

  json_builder_begin_object (b);
  json_add_common (b, ctx, "style", ncl_model_get_name (model));
  ncl_cli_json_add_string (b, "architecture",
      ncl_model_get_architecture (model));
  ncl_cli_json_add_string (b, "net", net);
  ncl_cli_json_add_string (b, "res", res);
  ncl_cli_json_add_int (b, "width", r->width);
  ncl_cli_json_add_int (b, "height", r->height);
  ncl_cli_json_add_int (b, "batch", 1);
  ncl_cli_json_add_double (b, "median_ms", r->median_s * 1e3);
  ncl_cli_json_add_double (b, "min_ms", r->min_s * 1e3);
  ncl_cli_json_add_double (b, "max_ms", r->max_s * 1e3);
  ncl_cli_json_add_int (b, "runs", r->runs);
  ncl_cli_json_add_double (b, "throughput", 1.0 / r->median_s);
  ncl_cli_json_add_string (b, "unit", "frames/s");
  ncl_cli_json_add_double (b, "gmacs", r->macs / 1e9);
  ncl_cli_json_add_double (b, "gflops_per_s",
      2.0 * r->macs / r->median_s / 1e9);
  json_builder_end_object (b);
  json_print (b);
}

/* ---- faces ------------------------------------------------------------- */

#define DEFAULT_FACE_SIZE "640x480"
/* the recognition net's chip and the SSD's input (docs/faces.md) */
#define FACE_CHIP_SIZE 150
#define FACE_SSD_SIZE 512
#define DEFAULT_FACE_BATCHES "1,8"
#define DEFAULT_FACE_DETECTORS "tiny416,tiny320,tiny224,ssd"
/* --min-time: run_ort.sh times each batch for at least 2 s */
#define DEFAULT_MIN_TIME 2.0
#define MAX_TIMED_RUNS 500
/* face-api's demo photos (MIT), in the package `neuralcl models fetch`
 * caches: 2 and 4 faces found with tiny416 in a 640x480 letterbox, so
 * the 3-face case lies between them */
#define FACE_API_TARBALL "vladmandic-face-api-1.7.15.tgz"
static const gchar *const default_face_images[] = {
  "sample1.jpg", "sample3.jpg", NULL
};

/* One timed stage of the per-frame path. */
enum
{
  STAGE_UPLOAD,
  STAGE_DETECT,
  STAGE_LANDMARKS,
  STAGE_DESCRIBE,
  N_STAGES
};

static const gchar *const stage_names[N_STAGES] = {
  "upload", "detect", "landmarks", "describe"
};

typedef struct
{
  const gchar *label;           /* "tiny416", "ssd" */
  NclFaceDetector detector;
  gint size;
} FaceDetectorChoice;

static gboolean
parse_detector (const gchar * s, FaceDetectorChoice * d, GError ** error)
{
  gchar *end = NULL;
  gint64 v;

  d->label = s;
  if (g_strcmp0 (s, "ssd") == 0) {
    d->detector = NCL_FACE_DETECTOR_SSD;
    d->size = FACE_SSD_SIZE;
    return TRUE;
  }
  if (g_str_has_prefix (s, "tiny")) {
    d->detector = NCL_FACE_DETECTOR_TINY;
    v = g_ascii_strtoll (s + 4, &end, 10);
    if (end != s + 4 && *end == '\0' && v >= 32 && v <= 2048 && v % 32 == 0) {
      d->size = (gint) v;
      return TRUE;
    }
  }
  g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_CONFIG,
      "detector '%s': expected ssd or tinyN (N a multiple of 32, 32..2048)",
      s);
  return FALSE;
}

static gboolean
parse_int_list (const gchar * s, const gchar * what, gint min, GArray * out,
    GError ** error)
{
  g_auto (GStrv) parts = g_strsplit (s, ",", -1);

  for (guint i = 0; parts[i] != NULL; i++) {
    gchar *end = NULL;
    const gchar *p = g_strstrip (parts[i]);
    gint64 v = g_ascii_strtoll (p, &end, 10);

    if (end == p || *end != '\0' || v < min || v > 4096) {
      g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_CONFIG,
          "%s: '%s' is not a whole number in %d..4096", what, p, min);
      return FALSE;
    }
    g_array_append_vals (out, &(gint) { (gint) v }, 1);
  }
  if (out->len == 0) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_CONFIG, "%s is empty",
        what);
    return FALSE;
  }
  return TRUE;
}

/* The demo photos of the cached face-api package, extracted from its
 * tarball when only the models were; NULL when the package is not cached
 * (transfer full). */
static gchar **
find_default_face_images (void)
{
  g_autofree gchar *work = g_build_filename (g_get_user_cache_dir (),
      "neuralcl", "face-api", NULL);
  g_autofree gchar *demo = g_build_filename (work, "package", "demo", NULL);
  g_autofree gchar *tgz = g_build_filename (work, FACE_API_TARBALL, NULL);
  GPtrArray *paths = g_ptr_array_new ();
  gboolean missing = FALSE;

  for (guint i = 0; default_face_images[i] != NULL; i++) {
    g_autofree gchar *path = g_build_filename (demo, default_face_images[i],
        NULL);

    missing |= !g_file_test (path, G_FILE_TEST_EXISTS);
  }
  if (missing && g_file_test (tgz, G_FILE_TEST_IS_REGULAR)) {
    GPtrArray *argv = g_ptr_array_new_with_free_func (g_free);
    gint status = 0;

    g_ptr_array_add (argv, g_strdup ("tar"));
    g_ptr_array_add (argv, g_strdup ("--no-same-owner"));
    g_ptr_array_add (argv, g_strdup ("-xzf"));
    g_ptr_array_add (argv, g_strdup (FACE_API_TARBALL));
    for (guint i = 0; default_face_images[i] != NULL; i++)
      g_ptr_array_add (argv, g_strconcat ("package/demo/",
              default_face_images[i], NULL));
    g_ptr_array_add (argv, NULL);
    /* a failure leaves the files missing, which the caller reports */
    g_spawn_sync (work, (gchar **) argv->pdata, NULL, G_SPAWN_SEARCH_PATH |
        G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL,
        NULL, NULL, &status, NULL);
    g_ptr_array_unref (argv);
  }
  for (guint i = 0; default_face_images[i] != NULL; i++) {
    gchar *path = g_build_filename (demo, default_face_images[i], NULL);

    if (g_file_test (path, G_FILE_TEST_IS_REGULAR))
      g_ptr_array_add (paths, path);
    else
      g_free (path);
  }
  if (paths->len == 0) {
    g_ptr_array_unref (paths);
    return NULL;
  }
  g_ptr_array_add (paths, NULL);
  return (gchar **) g_ptr_array_free (paths, FALSE);
}

/* @src letterboxed into a new @width x @height RGB image: scaled by the
 * same factor in both directions to fit, centred, black bars; bilinear
 * with half-pixel centres.  The video frame a camera would give. */
static NclImage *
letterbox (const NclImage * src, gint width, gint height, gdouble * scale)
{
  NclImage *dst = ncl_image_new_rgb (width, height);
  gdouble k = MIN ((gdouble) width / src->width,
      (gdouble) height / src->height);
  gint w = MAX (1, (gint) floor (src->width * k + 0.5));
  gint h = MAX (1, (gint) floor (src->height * k + 0.5));
  gint x0 = (width - w) / 2, y0 = (height - h) / 2;
  const guint8 *sp = src->planes[0];

  for (gint y = 0; y < height; y++)
    memset (dst->planes[0] + (gsize) y * dst->strides[0], 0, 3 * width);
  for (gint y = 0; y < h; y++) {
    gdouble fy = CLAMP ((y + 0.5) / k - 0.5, 0.0, src->height - 1.0);
    gint sy0 = (gint) fy, sy1 = MIN (sy0 + 1, src->height - 1);
    gdouble a = fy - sy0;
    guint8 *row = dst->planes[0] + (gsize) (y0 + y) * dst->strides[0];

    for (gint x = 0; x < w; x++) {
      gdouble fx = CLAMP ((x + 0.5) / k - 0.5, 0.0, src->width - 1.0);
      gint sx0 = (gint) fx, sx1 = MIN (sx0 + 1, src->width - 1);
      gdouble b = fx - sx0;

      for (gint c = 0; c < 3; c++) {
        gdouble p00 = sp[(gsize) sy0 * src->strides[0] + 3 * sx0 + c];
        gdouble p01 = sp[(gsize) sy0 * src->strides[0] + 3 * sx1 + c];
        gdouble p10 = sp[(gsize) sy1 * src->strides[0] + 3 * sx0 + c];
        gdouble p11 = sp[(gsize) sy1 * src->strides[0] + 3 * sx1 + c];
        gdouble v = (1 - a) * ((1 - b) * p00 + b * p01) +
            a * ((1 - b) * p10 + b * p11);

        row[3 * (x0 + x) + c] = (guint8) CLAMP (floor (v + 0.5), 0, 255);
      }
    }
  }
  *scale = k;
  return dst;
}

typedef struct
{
  gint batch;
  gdouble median_s, min_s, max_s;
  gint runs;
  gdouble macs;                 /* whole batch */
} DescriptorResult;

/* (a) The recognition net alone on random (batch, 3, 150, 150) chips. */
static gboolean
bench_descriptors (NclModel * model, NclContext * ctx, gint batch, gint runs,
    gint warmup, gdouble min_time, gboolean layers, FILE * out,
    DescriptorResult * res, GError ** error)
{
  g_autoptr (NclRunner) runner = NULL;
  g_autoptr (NclTensor) input = NULL;
  g_autofree gfloat *data = NULL;
  g_autofree gdouble *times = NULL;
  gdouble t, total = 0.0;
  gsize n;
  gint cap;

  res->batch = batch;
  res->runs = runs;
  runner = ncl_runner_new (model, ctx, error);
  if (runner == NULL)
    return FALSE;
  input = ncl_tensor_new (ctx, batch, 3, FACE_CHIP_SIZE,
      FACE_CHIP_SIZE, error);
  if (input == NULL)
    return FALSE;
  n = ncl_tensor_numel (input);
  data = g_new (gfloat, n);
  /* the range of a normalised chip: (pixel - mean) / 255 */
  fill_random_range (data, n, (guint32) batch, -0.5f, 1.0f);
  if (!ncl_tensor_upload (input, data, error))
    return FALSE;
  for (gint i = 0; i < MAX (warmup, 1); i++) {
    if (!run_once (runner, ctx, input, &t, error))
      return FALSE;
  }
  /* at least @runs, and on until @min_time seconds have been timed (as
   * run_ort.sh does), at most MAX_TIMED_RUNS */
  cap = MAX (runs, MAX_TIMED_RUNS);
  times = g_new (gdouble, cap);
  runs = 0;
  while (runs < cap && (runs < res->runs || total < min_time)) {
    if (!run_once (runner, ctx, input, &times[runs], error))
      return FALSE;
    total += times[runs++];
  }
  res->runs = runs;
  res->min_s = res->max_s = times[0];
  for (gint i = 1; i < runs; i++) {
    res->min_s = MIN (res->min_s, times[i]);
    res->max_s = MAX (res->max_s, times[i]);
  }
  res->median_s = median (times, runs);
  res->macs = 0.0;
  for (guint i = 0; i < ncl_runner_get_n_layers (runner); i++) {
    NclLayerInfo info;

    ncl_runner_get_layer_info (runner, i, &info);
    res->macs += info.macs;
  }
  fprintf (out, "recognition batch %d: median %.2f ms (min %.2f, max %.2f, "
      "%d runs), %.1f descriptors/s, %.1f GFLOP/s (%.2f GMAC/face)\n",
      batch, res->median_s * 1e3, res->min_s * 1e3, res->max_s * 1e3, runs,
      batch / res->median_s, 2.0 * res->macs / res->median_s / 1e9,
      res->macs / batch / 1e9);
  fflush (out);
  if (layers && !print_layer_table (out, runner, ctx, input, error))
    return FALSE;
  return TRUE;
}

typedef struct
{
  const gchar *image;           /* basename */
  const gchar *detector;        /* label */
  gint width, height;
  guint faces;                  /* found in the timed frame */
  gint runs;
  gdouble full_s, full_min_s, full_max_s;       /* medians, per frame */
  gdouble detect_s, detect_min_s, detect_max_s;
  gdouble stage_s[N_STAGES];    /* medians of the full path's stages */
} FrameResult;

/* One frame through the engine as the element runs it; @full adds
 * landmarks and descriptors for every face.  @stage_s: seconds per stage
 * (landmarks and describe are 0 for detection only). */
static gboolean
run_frame (NclFaceEngine * e, const NclImage * img, gboolean full,
    GArray * faces, gdouble * stage_s, GError ** error)
{
  gint64 t0 = g_get_monotonic_time (), t1, t2, t3, t4;

  g_array_set_size (faces, 0);
  if (!ncl_face_engine_set_image (e, img, error))
    return FALSE;
  t1 = g_get_monotonic_time ();
  if (!ncl_face_engine_detect (e, faces, error))
    return FALSE;
  t2 = t3 = t4 = g_get_monotonic_time ();
  if (full && faces->len > 0) {
    if (!ncl_face_engine_landmarks (e, (NclFace *) faces->data, faces->len,
            error))
      return FALSE;
    t3 = g_get_monotonic_time ();
    if (!ncl_face_engine_describe (e, (NclFace *) faces->data, faces->len,
            error))
      return FALSE;
    t4 = g_get_monotonic_time ();
  }
  stage_s[STAGE_UPLOAD] = (t1 - t0) / 1e6;
  stage_s[STAGE_DETECT] = (t2 - t1) / 1e6;
  stage_s[STAGE_LANDMARKS] = (t3 - t2) / 1e6;
  stage_s[STAGE_DESCRIBE] = (t4 - t3) / 1e6;
  return TRUE;
}

/* (b) End to end on one frame with one detector. */
static gboolean
bench_frame (NclContext * ctx, const NclImage * img,
    const FaceDetectorChoice * d, gint runs, gint warmup, FILE * out,
    FrameResult * res, GError ** error)
{
  g_autoptr (NclFaceEngine) engine = NULL;
  g_autoptr (GArray) faces = g_array_new (FALSE, TRUE, sizeof (NclFace));
  g_autofree gdouble *full = g_new (gdouble, runs);
  g_autofree gdouble *det = g_new (gdouble, runs);
  g_autofree gdouble *stages = g_new (gdouble, (gsize) N_STAGES * runs);
  NclFaceSettings s;
  gdouble st[N_STAGES];
  guint n_described = 0;

  ncl_face_settings_init (&s);
  s.detector = d->detector;
  if (d->detector == NCL_FACE_DETECTOR_TINY)
    s.detector_size = d->size;
  engine = ncl_face_engine_new (ctx, &s, error);
  if (engine == NULL)
    return FALSE;
  for (gint i = 0; i < MAX (warmup, 1); i++) {
    if (!run_frame (engine, img, TRUE, faces, st, error))
      return FALSE;
  }
  /* alternate the two paths so that drift on a shared machine hits both */
  for (gint i = 0; i < runs; i++) {
    if (!run_frame (engine, img, FALSE, faces, st, error))
      return FALSE;
    det[i] = st[STAGE_UPLOAD] + st[STAGE_DETECT];
    if (!run_frame (engine, img, TRUE, faces, st, error))
      return FALSE;
    full[i] = 0.0;
    for (gint k = 0; k < N_STAGES; k++) {
      stages[(gsize) k * runs + i] = st[k];
      full[i] += st[k];
    }
  }
  res->detector = d->label;
  res->width = img->width;
  res->height = img->height;
  res->runs = runs;
  res->faces = faces->len;
  for (guint i = 0; i < faces->len; i++)
    n_described += g_array_index (faces, NclFace, i).has_descriptor ? 1 : 0;
  res->full_min_s = res->full_max_s = full[0];
  res->detect_min_s = res->detect_max_s = det[0];
  for (gint i = 1; i < runs; i++) {
    res->full_min_s = MIN (res->full_min_s, full[i]);
    res->full_max_s = MAX (res->full_max_s, full[i]);
    res->detect_min_s = MIN (res->detect_min_s, det[i]);
    res->detect_max_s = MAX (res->detect_max_s, det[i]);
  }
  res->full_s = median (full, runs);
  res->detect_s = median (det, runs);
  for (gint k = 0; k < N_STAGES; k++)
    res->stage_s[k] = median (stages + (gsize) k * runs, runs);

  fprintf (out, "  %-8s %u face%s (%u described): all faces %.1f ms "
      "(%.1f fps; min %.1f, max %.1f), detection only %.1f ms (%.1f fps); "
      "stages", d->label, res->faces, res->faces == 1 ? "" : "s",
      n_described, res->full_s * 1e3, 1.0 / res->full_s,
      res->full_min_s * 1e3, res->full_max_s * 1e3, res->detect_s * 1e3,
      1.0 / res->detect_s);
  for (gint k = 0; k < N_STAGES; k++)
    fprintf (out, " %s %.1f", stage_names[k], res->stage_s[k] * 1e3);
  fprintf (out, " ms\n");
  fflush (out);
  return TRUE;
}

/* In the shape of run_ort.sh's face-embed lines. */
static void
print_descriptor_json (NclContext * ctx, const DescriptorResult * r)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_add_common (b, ctx, "face-embed", NCL_FACE_MODEL_RECOGNITION);
  ncl_cli_json_add_string (b, "net", "facerec150");
  ncl_cli_json_add_string (b, "res", "150x150");
  ncl_cli_json_add_int (b, "batch", r->batch);
  ncl_cli_json_add_double (b, "median_ms", r->median_s * 1e3);
  ncl_cli_json_add_double (b, "min_ms", r->min_s * 1e3);
  ncl_cli_json_add_double (b, "max_ms", r->max_s * 1e3);
  ncl_cli_json_add_int (b, "runs", r->runs);
  ncl_cli_json_add_double (b, "throughput", r->batch / r->median_s);
  ncl_cli_json_add_string (b, "unit", "desc/s");
  ncl_cli_json_add_double (b, "gmacs", r->macs / 1e9);
  ncl_cli_json_add_double (b, "gflops_per_s", 2.0 * r->macs / r->median_s / 1e9);
  json_builder_end_object (b);
  json_print (b);
}

/* Two lines: every face described, and detection only. */
static void
print_frame_json (NclContext * ctx, const FrameResult * r)
{
  g_autofree gchar *res = g_strdup_printf ("%dx%d", r->height, r->width);

  for (gint path = 0; path < 2; path++) {
    g_autoptr (JsonBuilder) b = json_builder_new ();
    gdouble med = path == 0 ? r->full_s : r->detect_s;

    json_builder_begin_object (b);
    json_add_common (b, ctx, "face-frame", r->detector);
    ncl_cli_json_add_string (b, "path", path == 0 ? "all-faces" : "detect-only");
    ncl_cli_json_add_string (b, "image", r->image);
    ncl_cli_json_add_string (b, "res", res);
    ncl_cli_json_add_int (b, "width", r->width);
    ncl_cli_json_add_int (b, "height", r->height);
    ncl_cli_json_add_int (b, "faces", r->faces);
    ncl_cli_json_add_double (b, "median_ms", med * 1e3);
    ncl_cli_json_add_double (b, "min_ms", (path == 0 ? r->full_min_s :
            r->detect_min_s) * 1e3);
    ncl_cli_json_add_double (b, "max_ms", (path == 0 ? r->full_max_s :
            r->detect_max_s) * 1e3);
    ncl_cli_json_add_int (b, "runs", r->runs);
    ncl_cli_json_add_double (b, "throughput", 1.0 / med);
    ncl_cli_json_add_string (b, "unit", "frames/s");
    if (path == 0) {
      for (gint k = 0; k < N_STAGES; k++) {
        g_autofree gchar *key = g_strdup_printf ("%s_ms", stage_names[k]);

        ncl_cli_json_add_double (b, key, r->stage_s[k] * 1e3);
      }
    }
    json_builder_end_object (b);
    json_print (b);
  }
}

static gint
bench_faces (const gchar * name, NclContext * ctx, gchar ** images,
    const gchar * sizes, const gchar * batches, const gchar * detectors,
    gint runs, gint warmup, gdouble min_time, gboolean layers,
    gboolean no_layers, gboolean no_frames, gboolean json, FILE * out)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GArray) batch_list = g_array_new (FALSE, FALSE, sizeof (gint));
  g_autoptr (GArray) det_list = g_array_new (FALSE, FALSE,
      sizeof (FaceDetectorChoice));
  g_auto (GStrv) det_names = g_strsplit (detectors ? detectors :
      DEFAULT_FACE_DETECTORS, ",", -1);
  g_auto (GStrv) size_list = g_strsplit (sizes ? sizes : DEFAULT_FACE_SIZE,
      ",", -1);
  g_auto (GStrv) found = NULL;
  g_autofree gchar *rec_path = NULL;
  g_autoptr (NclModel) rec = NULL;

  if (!parse_int_list (batches ? batches : DEFAULT_FACE_BATCHES, "--batch",
          1, batch_list, &error))
    return ncl_cli_fail ("%s: %s", name, error->message);
  for (guint i = 0; det_names[i] != NULL; i++) {
    FaceDetectorChoice d;

    if (!parse_detector (g_strstrip (det_names[i]), &d, &error))
      return ncl_cli_fail ("%s: --detectors: %s", name, error->message);
    g_array_append_val (det_list, d);
  }
  if (g_strv_length (size_list) == 0)
    return ncl_cli_fail ("%s: --sizes is empty", name);
  if (!no_frames && (images == NULL || images[0] == NULL)) {
    images = found = find_default_face_images ();
    if (images == NULL)
      return ncl_cli_fail ("%s: no face photo: pass --image FILE (face-api's "
          "demo photos are used when `neuralcl models fetch` has cached "
          "its package)", name);
  }

  rec_path = ncl_face_find_model (NCL_FACE_MODEL_RECOGNITION, &error);
  if (rec_path != NULL)
    rec = ncl_model_load (rec_path, &error);
  if (rec == NULL)
    return ncl_cli_fail_error (error);
  fprintf (out, "recognition net: %s, random %dx%d chips, %d warm-up + "
      "at least %d timed runs and %.1f s per batch\n", rec_path,
      FACE_CHIP_SIZE, FACE_CHIP_SIZE, MAX (warmup, 1), runs, min_time);
  fflush (out);
  for (guint i = 0; i < batch_list->len; i++) {
    DescriptorResult r = { 0 };
    gint batch = g_array_index (batch_list, gint, i);

    if (!bench_descriptors (rec, ctx, batch, runs, warmup, min_time,
            !no_layers && (layers || i == 0), out, &r, &error))
      return ncl_cli_fail ("recognition batch %d: %s", batch,
          error->message);
    if (json)
      print_descriptor_json (ctx, &r);
  }

  for (guint si = 0; size_list[si] != NULL && !no_frames; si++) {
    gint width, height;

    if (!ncl_cli_parse_size (g_strstrip (size_list[si]), &width, &height,
            &error))
      return ncl_cli_fail ("%s: --sizes: %s", name, error->message);
    for (guint ii = 0; images[ii] != NULL; ii++) {
      g_autoptr (NclImage) photo = ncl_image_load (images[ii], &error);
      g_autoptr (NclImage) frame = NULL;
      g_autofree gchar *base = NULL;
      gdouble k;

      if (photo == NULL)
        return ncl_cli_fail_error (error);
      frame = letterbox (photo, width, height, &k);
      base = g_path_get_basename (images[ii]);
      fprintf (out, "%dx%d frame: %s (%dx%d) letterboxed (scale %.3f), "
          "%d warm-up + %d timed runs of each path; per frame: set_image + "
          "detect [+ landmarks + describe every face]\n", width, height,
          images[ii], photo->width, photo->height, k, MAX (warmup, 1), runs);
      fflush (out);
      for (guint di = 0; di < det_list->len; di++) {
        FrameResult r = { 0 };
        const FaceDetectorChoice *d = &g_array_index (det_list,
            FaceDetectorChoice, di);

        r.image = base;
        if (!bench_frame (ctx, frame, d, runs, warmup, out, &r, &error))
          return ncl_cli_fail ("%s, %s: %s", base, d->label, error->message);
        if (json)
          print_frame_json (ctx, &r);
      }
    }
  }
  return NCL_CLI_EXIT_OK;
}

/* The "machine:" and "device:" lines every report starts with. */
static void
print_machine (FILE * out, NclContext * ctx)
{
  g_autofree gchar *machine = ncl_cli_describe_machine ();

  fprintf (out, "machine: %s\n", machine);
  fprintf (out, "device: %s (%s)\n", ncl_context_get_device_name (ctx),
      ncl_context_get_platform_name (ctx));
}

gint
ncl_cli_bench (gint argc, gchar ** argv)
{
  g_autofree gchar *model_name = NULL;
  g_autofree gchar *sizes = NULL;
  g_autofree gchar *device = NULL;
  gint runs = DEFAULT_RUNS, warmup = DEFAULT_WARMUP;
  gboolean layers = FALSE, no_layers = FALSE, json = FALSE, faces = FALSE;
  gboolean no_frames = FALSE;
  gdouble min_time = DEFAULT_MIN_TIME;
  g_auto (GStrv) images = NULL;
  g_autofree gchar *batches = NULL;
  g_autofree gchar *detectors = NULL;
  GOptionEntry entries[] = {
    {"model", 'm', 0, G_OPTION_ARG_STRING, &model_name,
        "Style name or model file (default " DEFAULT_MODEL ")", "NAME|PATH"},
    {"sizes", 's', 0, G_OPTION_ARG_STRING, &sizes,
        "Comma-separated frame sizes (default " DEFAULT_SIZES ")",
          "WxH,..."},
    {"runs", 'r', 0, G_OPTION_ARG_INT, &runs,
        "Timed runs per size (default 5)", "N"},
    {"warmup", 'w', 0, G_OPTION_ARG_INT, &warmup,
        "Untimed runs before timing (default 1)", "N"},
    {"device", 'd', 0, G_OPTION_ARG_STRING, &device,
        "OpenCL device: index, type or part of the name", "D"},
    {"layers", 'l', 0, G_OPTION_ARG_NONE, &layers,
        "Per-layer table for every size (default: first size only)", NULL},
    {"no-layers", 0, 0, G_OPTION_ARG_NONE, &no_layers,
        "No per-layer table", NULL},
    {"json", 'j', 0, G_OPTION_ARG_NONE, &json,
        "One JSON line per size on stdout (as ../shared/bench/run_ort.sh); "
          "the rest goes to stderr", NULL},
    {"faces", 0, 0, G_OPTION_ARG_NONE, &faces,
        "Face networks instead of a style: descriptors/s of the recognition "
          "net, then ms per frame through the face engine", NULL},
    {"image", 'i', 0, G_OPTION_ARG_FILENAME_ARRAY, &images,
        "--faces: photo letterboxed into each frame size (repeatable; "
          "default: face-api's demo sample1.jpg and sample3.jpg)", "FILE"},
    {"batch", 'b', 0, G_OPTION_ARG_STRING, &batches,
        "--faces: recognition batch sizes (default " DEFAULT_FACE_BATCHES
          ")", "N,..."},
    {"detectors", 0, 0, G_OPTION_ARG_STRING, &detectors,
        "--faces: detectors for the frame timings (default "
          DEFAULT_FACE_DETECTORS ")", "tinyN|ssd,..."},
    {"no-frames", 0, 0, G_OPTION_ARG_NONE, &no_frames,
        "--faces: the recognition net only", NULL},
    {"min-time", 0, 0, G_OPTION_ARG_DOUBLE, &min_time,
        "--faces: time each batch for at least S seconds, like run_ort.sh "
          "(default 2; at most 500 runs)", "S"},
    {NULL}
  };
  GOptionContext *octx = g_option_context_new (NULL);
  const gchar *name = ncl_cli_name (argv[0]);
  g_autoptr (GError) error = NULL;
  g_autoptr (NclModel) model = NULL;
  g_autoptr (NclContext) ctx = NULL;
  g_autofree gchar *path = NULL;
  g_auto (GStrv) size_list = NULL;
  g_autofree gint *widths = NULL;
  g_autofree gint *heights = NULL;
  guint n_sizes;
  FILE *out;

  g_option_context_set_summary (octx,
      "Times a model through the runner on a random input tensor: median\n"
      "ms per frame, fps and GFLOP/s (2 x multiply-accumulates) per size,\n"
      "and a per-layer table (kernel variant, ms, GFLOP/s, share).\n"
      "With --faces: descriptors/s of the face recognition net per batch,\n"
      "then ms per frame through the face engine on photos letterboxed\n"
      "into each size (default 640x480), per detector.");
  g_option_context_set_description (octx,
      "Compare with ONNX Runtime on the same machine, in the same hour:\n"
      "  neuralcl bench --json\n  bash ../shared/bench/run_ort.sh\n"
      "  neuralcl bench --faces --json\n"
      "  bash ../shared/bench/run_ort.sh --only facerec\n");
  g_option_context_add_main_entries (octx, entries, NULL);
  if (!ncl_cli_parse (octx, &argc, &argv, 0))
    return NCL_CLI_EXIT_FAILURE;

  if (!(min_time >= 0.0 && min_time <= 600.0))
    return ncl_cli_fail ("%s: --min-time must be 0..600 s, got %g", name,
        min_time);
  if (runs < 1)
    return ncl_cli_fail ("%s: --runs must be at least 1, got %d", name,
        runs);
  if (warmup < 0)
    return ncl_cli_fail ("%s: --warmup must be 0 or more, got %d", name,
        warmup);
  if (layers && no_layers)
    return ncl_cli_fail ("%s: --layers and --no-layers exclude each other",
        name);

  if (faces) {
    if (model_name != NULL)
      return ncl_cli_fail ("%s: --model and --faces exclude each other",
          name);
    ctx = ncl_context_new (device, &error);
    if (ctx == NULL)
      return ncl_cli_fail_error (error);
    out = json ? stderr : stdout;
    print_machine (out, ctx);
    return bench_faces (name, ctx, images, sizes, batches, detectors, runs,
        warmup, min_time, layers, no_layers, no_frames, json, out);
  }
  if (images != NULL || batches != NULL || detectors != NULL || no_frames
      || min_time != DEFAULT_MIN_TIME)
    return ncl_cli_fail ("%s: --image, --batch, --detectors, --no-frames "
        "and --min-time need --faces", name);

  size_list = g_strsplit (sizes != NULL ? sizes : DEFAULT_SIZES, ",", -1);
  n_sizes = g_strv_length (size_list);
  if (n_sizes == 0)
    return ncl_cli_fail ("%s: --sizes is empty", name);
  widths = g_new (gint, n_sizes);
  heights = g_new (gint, n_sizes);
  for (guint i = 0; i < n_sizes; i++) {
    if (!ncl_cli_parse_size (g_strstrip (size_list[i]), &widths[i],
            &heights[i], &error))
      return ncl_cli_fail ("%s: --sizes: %s", name, error->message);
  }

  path = ncl_style_resolve (model_name != NULL ? model_name : DEFAULT_MODEL,
      &error);
  if (path != NULL)
    model = ncl_model_load (path, &error);
  if (model == NULL)
    return ncl_cli_fail_error (error);
  ctx = ncl_context_new (device, &error);
  if (ctx == NULL)
    return ncl_cli_fail_error (error);

  out = json ? stderr : stdout;
  print_machine (out, ctx);
  fprintf (out, "model: %s (%s, %s), %d warm-up + %d timed run%s per size\n",
      ncl_model_get_name (model), ncl_model_get_architecture (model), path,
      warmup, runs, runs == 1 ? "" : "s");
  fflush (out);

  for (guint i = 0; i < n_sizes; i++) {
    BenchResult r = { 0 };
    gboolean table = !no_layers && (layers || i == 0);

    if (!bench_size (model, ctx, widths[i], heights[i], runs, warmup, table,
            out, &r, &error))
      return ncl_cli_fail ("%dx%d: %s", widths[i], heights[i],
          error->message);
    if (json)
      print_json (model, ctx, &r);
  }
  return NCL_CLI_EXIT_OK;
}
