/* neuralcl bench: times a model through NclRunner on random input, per
 * frame size, with an optional per-layer table.
 *
 *   neuralcl bench [--model NAME] [--sizes 256x256,640x480] [--runs N]
 *                  [--warmup N] [--device D] [--layers] [--json]
 *
 * --json prints one line per size in the shape of ../shared/bench/run_ort.sh
 * (median_ms, throughput, res as HxW) so the two can be compared. */
#include "config.h"

#include "neuralcl-cli.h"

#include <json-glib/json-glib.h>
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

static void
fill_random (gfloat * data, gsize n, guint32 seed)
{
  guint32 s = seed * 2654435761u + 1u;

  for (gsize i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    data[i] = 255.0f * ((s >> 8) / 16777216.0f);
  }
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
print_json (NclModel * model, NclContext * ctx, const BenchResult * r)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = NULL;
  g_autofree gchar *res = g_strdup_printf ("%dx%d", r->height, r->width);
  g_autofree gchar *net = g_strdup_printf ("johnson%s", res);
  g_autofree gchar *line = NULL;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "peer");
  json_builder_add_string_value (b, "neuralcl " VERSION);
  json_builder_set_member_name (b, "device");
  json_builder_add_string_value (b, ncl_context_get_device_name (ctx));
  json_builder_set_member_name (b, "threads");
  json_builder_add_int_value (b, g_get_num_processors ());
  json_builder_set_member_name (b, "workload");
  json_builder_add_string_value (b, "style");
  json_builder_set_member_name (b, "model");
  json_builder_add_string_value (b, ncl_model_get_name (model));
  json_builder_set_member_name (b, "architecture");
  json_builder_add_string_value (b, ncl_model_get_architecture (model));
  json_builder_set_member_name (b, "net");
  json_builder_add_string_value (b, net);
  json_builder_set_member_name (b, "res");
  json_builder_add_string_value (b, res);
  json_builder_set_member_name (b, "width");
  json_builder_add_int_value (b, r->width);
  json_builder_set_member_name (b, "height");
  json_builder_add_int_value (b, r->height);
  json_builder_set_member_name (b, "batch");
  json_builder_add_int_value (b, 1);
  json_builder_set_member_name (b, "median_ms");
  json_builder_add_double_value (b, r->median_s * 1e3);
  json_builder_set_member_name (b, "min_ms");
  json_builder_add_double_value (b, r->min_s * 1e3);
  json_builder_set_member_name (b, "max_ms");
  json_builder_add_double_value (b, r->max_s * 1e3);
  json_builder_set_member_name (b, "runs");
  json_builder_add_int_value (b, r->runs);
  json_builder_set_member_name (b, "throughput");
  json_builder_add_double_value (b, 1.0 / r->median_s);
  json_builder_set_member_name (b, "unit");
  json_builder_add_string_value (b, "frames/s");
  json_builder_set_member_name (b, "gmacs");
  json_builder_add_double_value (b, r->macs / 1e9);
  json_builder_set_member_name (b, "gflops_per_s");
  json_builder_add_double_value (b, 2.0 * r->macs / r->median_s / 1e9);
  json_builder_end_object (b);

  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  line = json_generator_to_data (gen, NULL);
  printf ("%s\n", line);
  fflush (stdout);
}

gint
ncl_cli_bench (gint argc, gchar ** argv)
{
  g_autofree gchar *model_name = NULL;
  g_autofree gchar *sizes = NULL;
  g_autofree gchar *device = NULL;
  gint runs = DEFAULT_RUNS, warmup = DEFAULT_WARMUP;
  gboolean layers = FALSE, no_layers = FALSE, json = FALSE;
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
    {NULL}
  };
  GOptionContext *octx = g_option_context_new (NULL);
  const gchar *name = ncl_cli_name (argv[0]);
  g_autoptr (GError) error = NULL;
  g_autoptr (NclModel) model = NULL;
  g_autoptr (NclContext) ctx = NULL;
  g_autofree gchar *path = NULL;
  g_autofree gchar *machine = NULL;
  g_auto (GStrv) size_list = NULL;
  g_autofree gint *widths = NULL;
  g_autofree gint *heights = NULL;
  guint n_sizes;
  FILE *out;

  g_option_context_set_summary (octx,
      "Times a model through the runner on a random input tensor: median\n"
      "ms per frame, fps and GFLOP/s (2 x multiply-accumulates) per size,\n"
      "and a per-layer table (kernel variant, ms, GFLOP/s, share).");
  g_option_context_set_description (octx,
      "Compare with ONNX Runtime on the same machine, in the same hour:\n"
      "  neuralcl bench --json\n  bash ../shared/bench/run_ort.sh\n");
  g_option_context_add_main_entries (octx, entries, NULL);
  if (!ncl_cli_parse (octx, &argc, &argv, 0))
    return NCL_CLI_EXIT_FAILURE;

  if (runs < 1)
    return ncl_cli_fail ("%s: --runs must be at least 1, got %d", name,
        runs);
  if (warmup < 0)
    return ncl_cli_fail ("%s: --warmup must be 0 or more, got %d", name,
        warmup);
  if (layers && no_layers)
    return ncl_cli_fail ("%s: --layers and --no-layers exclude each other",
        name);

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
  machine = ncl_cli_describe_machine ();
  fprintf (out, "machine: %s\n", machine);
  fprintf (out, "device: %s (%s)\n", ncl_context_get_device_name (ctx),
      ncl_context_get_platform_name (ctx));
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
