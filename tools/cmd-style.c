/* neuralcl style: list the bundled styles, stylise an image or a video file
 * through the styletransfer element, or run a style network alone on a
 * tensor file.
 *
 *   neuralcl style list
 *   neuralcl style apply --model NAME|PATH [OPTIONS] INPUT OUTPUT
 *   neuralcl style tensor --model NAME|PATH IN.safetensors OUT.safetensors
 */
#include "config.h"

#include "neuralcl-cli.h"

#include <glib/gstdio.h>
#include <glib-unix.h>
#include <gst/gst.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* ---- style list --------------------------------------------------------- */

static gchar *
search_path_string (void)
{
  g_auto (GStrv) dirs = ncl_style_get_search_path ();

  return g_strjoinv (":", dirs);
}

static gint
style_list (gint argc, gchar ** argv)
{
  g_auto (GStrv) names = NULL;
  g_autofree gchar *search = search_path_string ();
  g_autofree gchar *description = NULL;
  GOptionContext *octx = g_option_context_new ("- list the bundled styles");
  gint status = NCL_CLI_EXIT_OK;

  description = g_strdup_printf ("Prints one line per style: "
      "NAME<TAB>ARCHITECTURE<TAB>ORIGIN.\n"
      "Styles are searched in $NEURALCL_STYLE_PATH, then:\n  %s", search);
  g_option_context_set_description (octx, description);
  if (!ncl_cli_parse (octx, &argc, &argv, 0))
    return NCL_CLI_EXIT_FAILURE;

  names = ncl_style_list ();
  if (names == NULL || names[0] == NULL)
    return ncl_cli_fail ("no bundled styles found (searched %s)", search);

  for (guint i = 0; names[i] != NULL; i++) {
    g_autoptr (GError) error = NULL;
    g_autoptr (NclModel) model = NULL;
    g_autofree gchar *path = ncl_style_resolve (names[i], &error);

    if (path != NULL)
      model = ncl_model_load (path, &error);
    if (model == NULL) {
      /* keep listing the others; the exit status reports the failure */
      status = ncl_cli_fail ("style '%s': %s", names[i], error->message);
      continue;
    }
    printf ("%s\t%s\t%s\n", names[i], ncl_model_get_architecture (model),
        ncl_model_get_origin (model));
  }
  return status;
}

/* ---- shared: model loading ---------------------------------------------- */

/* Resolves @name_or_path and loads it; errors name the style or file. */
static NclModel *
load_style_model (const gchar * name_or_path, GError ** error)
{
  g_autoptr (GError) local = NULL;
  g_autofree gchar *path = ncl_style_resolve (name_or_path, &local);
  NclModel *model = NULL;

  if (path != NULL)
    model = ncl_model_load (path, &local);
  if (model != NULL)
    return model;

  if (strstr (local->message, name_or_path) == NULL)
    g_prefix_error (&local, "%s: ", name_or_path);
  g_propagate_error (error, g_steal_pointer (&local));
  return NULL;
}

/* ---- style tensor ------------------------------------------------------- */

/* "[1, 3, 120, 160]" (transfer full) */
static gchar *
format_shape (const NclSafetensor * t)
{
  GString *s = g_string_new ("[");

  for (gint i = 0; i < t->ndim; i++)
    g_string_append_printf (s, "%s%" G_GINT64_FORMAT, i > 0 ? ", " : "",
        t->shape[i]);
  g_string_append_c (s, ']');
  return g_string_free (s, FALSE);
}

static gint
style_tensor (gint argc, gchar ** argv)
{
  g_autofree gchar *model_name = NULL;
  g_autofree gchar *device = NULL;
  GOptionEntry entries[] = {
    {"model", 'm', 0, G_OPTION_ARG_STRING, &model_name,
        "Style name or model file (required)", "NAME|PATH"},
    {"device", 'd', 0, G_OPTION_ARG_STRING, &device,
        "OpenCL device: index, type or part of the name", "D"},
    {NULL}
  };
  GOptionContext *octx =
      g_option_context_new ("INPUT.safetensors OUTPUT.safetensors");
  const gchar *name = ncl_cli_name (argv[0]);
  g_autoptr (GError) error = NULL;
  g_autoptr (NclSafetensors) in_file = NULL;
  g_autoptr (NclModel) model = NULL;
  g_autoptr (NclContext) ctx = NULL;
  g_autoptr (NclStylizer) stylizer = NULL;
  g_autoptr (NclSafetensorsWriter) writer = NULL;
  g_autofree gfloat *in = NULL;
  g_autofree gfloat *out = NULL;
  g_autofree gchar *shape_str = NULL;
  const NclSafetensor *t;
  gint64 shape[4];
  const gchar *in_path, *out_path;

  g_option_context_set_summary (octx,
      "Runs the style network alone (no clamping, no colour handling) on\n"
      "tensor 'input' (n, 3, h, w), RGB 0..255, of INPUT and writes the\n"
      "result as tensor 'output' (F32, same shape) to OUTPUT.");
  g_option_context_add_main_entries (octx, entries, NULL);
  if (!ncl_cli_parse (octx, &argc, &argv, 2))
    return NCL_CLI_EXIT_FAILURE;
  in_path = argv[1];
  out_path = argv[2];
  if (model_name == NULL)
    return ncl_cli_fail ("%s: --model is required", name);

  in_file = ncl_safetensors_load (in_path, &error);
  if (in_file == NULL)
    return ncl_cli_fail_error (error);
  t = ncl_safetensors_lookup (in_file, "input");
  if (t == NULL)
    return ncl_cli_fail ("%s: tensor 'input': missing", in_path);
  if (t->ndim != 4 || t->shape[1] != 3 || t->shape[0] < 1 || t->shape[2] < 1
      || t->shape[3] < 1 || t->shape[2] > 16384 || t->shape[3] > 16384
      || t->shape[0] > 1024)
    return ncl_cli_fail ("%s: tensor 'input': shape %s, expected "
        "[n, 3, h, w]", in_path, shape_str = format_shape (t));
  memcpy (shape, t->shape, sizeof (shape));
  in = ncl_safetensors_read_f32 (in_file, "input", 4, shape, &error);
  if (in == NULL)
    return ncl_cli_fail_error (error);

  model = load_style_model (model_name, &error);
  if (model == NULL)
    return ncl_cli_fail_error (error);
  ctx = ncl_context_new (device, &error);
  if (ctx == NULL)
    return ncl_cli_fail_error (error);
  stylizer = ncl_stylizer_new (ctx, model, &error);
  if (stylizer == NULL)
    return ncl_cli_fail_error (error);

  out = g_new (gfloat, shape[0] * shape[1] * shape[2] * shape[3]);
  if (!ncl_stylizer_run_tensor (stylizer, in, (gint) shape[0],
          (gint) shape[2], (gint) shape[3], out, &error))
    return ncl_cli_fail_error (error);

  writer = ncl_safetensors_writer_new ();
  ncl_safetensors_writer_add_metadata (writer, "model",
      ncl_model_get_name (model));
  ncl_safetensors_writer_add_metadata (writer, "model_fingerprint",
      ncl_model_get_fingerprint (model));
  ncl_safetensors_writer_add_metadata (writer, "device",
      ncl_context_get_device_name (ctx));
  ncl_safetensors_writer_add (writer, "output", NCL_DTYPE_F32, 4, shape, out);
  if (!ncl_safetensors_writer_write (writer, out_path, &error))
    return ncl_cli_fail_error (error);

  g_printerr ("style tensor: %s (%" G_GINT64_FORMAT "x3x%" G_GINT64_FORMAT
      "x%" G_GINT64_FORMAT ") -> %s, model %s on %s\n", in_path, shape[0],
      shape[2], shape[3], out_path, ncl_model_get_name (model),
      ncl_context_get_device_name (ctx));
  return NCL_CLI_EXIT_OK;
}

/* ---- style apply -------------------------------------------------------- */

typedef struct
{
  const gchar *extensions[3];
  const gchar *encoder;         /* launch fragment after the last convert */
  gboolean is_image;
} OutputKind;

/* Encoders from gst-plugins-good (png, jpeg, vp8, matroska), -base (theora,
 * ogg) and gst-libav (mpeg4). */
static const OutputKind output_kinds[] = {
  {{".png", NULL}, "pngenc snapshot=true", TRUE},
  {{".jpg", ".jpeg", NULL}, "jpegenc snapshot=true quality=92", TRUE},
  {{".webm", NULL}, "vp8enc deadline=1 cpu-used=4 end-usage=cq cq-level=8 "
        "target-bitrate=4000000 ! webmmux", FALSE},
  {{".mkv", NULL}, "vp8enc deadline=1 cpu-used=4 end-usage=cq cq-level=8 "
        "target-bitrate=4000000 ! matroskamux", FALSE},
  {{".ogv", ".ogg", NULL}, "theoraenc quality=48 ! oggmux", FALSE},
  {{".mp4", NULL}, "avenc_mpeg4 bitrate=4000000 ! mp4mux", FALSE},
};

static const OutputKind *
find_output_kind (const gchar * path)
{
  g_autofree gchar *lower = g_ascii_strdown (path, -1);

  for (guint i = 0; i < G_N_ELEMENTS (output_kinds); i++) {
    for (guint j = 0; output_kinds[i].extensions[j] != NULL; j++) {
      if (g_str_has_suffix (lower, output_kinds[i].extensions[j]))
        return &output_kinds[i];
    }
  }
  return NULL;
}

/* Makes sure the styletransfer element can be found: when it is not in the
 * registry, the plugin directory of a build tree beside this executable
 * (BUILD/tools/neuralcl -> BUILD/gst-plugin) is scanned. */
static gboolean
ensure_styletransfer (GError ** error)
{
  g_autoptr (GstElementFactory) factory =
      gst_element_factory_find ("styletransfer");
  g_autofree gchar *exe_dir = NULL;
  g_autofree gchar *plugin_dir = NULL;

  if (factory != NULL)
    return TRUE;

  exe_dir = ncl_cli_get_exe_dir ();
  if (exe_dir != NULL) {
    plugin_dir = g_build_filename (exe_dir, "..", "gst-plugin", NULL);
    if (g_file_test (plugin_dir, G_FILE_TEST_IS_DIR))
      gst_registry_scan_path (gst_registry_get (), plugin_dir);
    factory = gst_element_factory_find ("styletransfer");
    if (factory != NULL)
      return TRUE;
  }

  g_set_error (error, NCL_ERROR, NCL_ERROR_NOT_FOUND,
      "GStreamer element 'styletransfer' not found; install gst-neuralcl or "
      "set GST_PLUGIN_PATH to the directory holding libgstneuralcl.so");
  return FALSE;
}

/* Sets the first of @names that @element has to @value (converted to the
 * property's type).  A missing property is an error only if @required. */
static gboolean
set_first_property (GstElement * element, const gchar * const *names,
    const GValue * value, gboolean required, GError ** error)
{
  GObjectClass *klass = G_OBJECT_GET_CLASS (element);

  for (guint i = 0; names[i] != NULL; i++) {
    GParamSpec *pspec = g_object_class_find_property (klass, names[i]);

    if (pspec == NULL)
      continue;
    if (!g_value_type_transformable (G_VALUE_TYPE (value),
            pspec->value_type)) {
      g_set_error (error, NCL_ERROR, NCL_ERROR_UNSUPPORTED,
          "styletransfer property '%s' has type %s, expected %s", names[i],
          g_type_name (pspec->value_type),
          g_type_name (G_VALUE_TYPE (value)));
      return FALSE;
    }
    g_object_set_property (G_OBJECT (element), names[i], value);
    return TRUE;
  }

  if (required) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_UNSUPPORTED,
        "this styletransfer element has no property '%s'", names[0]);
    return FALSE;
  }
  return TRUE;
}

static gboolean
configure_styletransfer (GstElement * st, const NclStyleSettings * s,
    const gchar * model_path, GError ** error)
{
  static const gchar *const model_names[] = { "model", "model-file", NULL };
  static const gchar *const device_names[] = { "device", NULL };
  static const gchar *const strength_names[] = { "strength", NULL };
  static const gchar *const preserve_names[] = { "preserve-colors", NULL };
  static const gchar *const width_names[] = { "inference-width", NULL };
  static const gchar *const height_names[] = { "inference-height", NULL };
  g_auto (GValue) v = G_VALUE_INIT;
  gboolean sized = s->inference_width > 0 || s->inference_height > 0;

  g_value_init (&v, G_TYPE_STRING);
  g_value_set_string (&v, model_path);
  if (!set_first_property (st, model_names, &v, TRUE, error))
    return FALSE;
  if (s->device != NULL && *s->device != '\0') {
    g_value_set_string (&v, s->device);
    if (!set_first_property (st, device_names, &v, TRUE, error))
      return FALSE;
  }
  g_value_unset (&v);

  g_value_init (&v, G_TYPE_DOUBLE);
  g_value_set_double (&v, s->strength);
  if (!set_first_property (st, strength_names, &v, s->strength != 1.0, error))
    return FALSE;
  g_value_unset (&v);

  g_value_init (&v, G_TYPE_BOOLEAN);
  g_value_set_boolean (&v, s->preserve_colors);
  if (!set_first_property (st, preserve_names, &v, s->preserve_colors, error))
    return FALSE;
  g_value_unset (&v);

  g_value_init (&v, G_TYPE_INT);
  g_value_set_int (&v, s->inference_width);
  if (!set_first_property (st, width_names, &v, sized, error))
    return FALSE;
  g_value_set_int (&v, s->inference_height);
  return set_first_property (st, height_names, &v, sized, error);
}

typedef struct
{
  GMainLoop *loop;
  GstElement *pipeline;
  const gchar *program;
  gint frames;                  /* atomic: buffers out of styletransfer */
  gint64 start_us;
  gint64 first_us;              /* when the first frame came out */
  gboolean failed;
  gboolean interrupted;
  gboolean tty;
  gboolean progress_shown;
} ApplyRun;

static GstPadProbeReturn
count_frame (GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  ApplyRun *run = user_data;

  /* written before the first increment, read after it (a full barrier) */
  if (g_atomic_int_get (&run->frames) == 0)
    run->first_us = g_get_monotonic_time ();
  g_atomic_int_inc (&run->frames);
  return GST_PAD_PROBE_OK;
}

/* Image output: only the first frame is styled; later ones are refused with
 * EOS so that upstream stops (the encoder ends the stream after one frame
 * anyway, with snapshot=true). */
static GstPadProbeReturn
first_frame_only (GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  gint *seen = user_data;

  if (g_atomic_int_add (seen, 1) == 0)
    return GST_PAD_PROBE_OK;
  gst_buffer_unref (GST_PAD_PROBE_INFO_BUFFER (info));
  GST_PAD_PROBE_INFO_FLOW_RETURN (info) = GST_FLOW_EOS;
  return GST_PAD_PROBE_HANDLED;
}

static void
print_progress (ApplyRun * run, gboolean final)
{
  gint frames = g_atomic_int_get (&run->frames);
  gdouble elapsed = (g_get_monotonic_time () - run->start_us) / 1e6;
  gint64 pos = -1, dur = -1;
  g_autofree gchar *percent = NULL;
  g_autofree gchar *rate = NULL;

  if (!final && gst_element_query_position (run->pipeline, GST_FORMAT_TIME,
          &pos) && gst_element_query_duration (run->pipeline,
          GST_FORMAT_TIME, &dur) && dur > 0 && pos >= 0)
    percent = g_strdup_printf (", %.0f%%", MIN (100.0, 100.0 * pos / dur));
  /* steady state: the first frame also pays for start-up */
  if (frames > 1)
    rate = g_strdup_printf (" (%.2f s/frame)",
        (g_get_monotonic_time () - run->first_us) / 1e6 / (frames - 1));

  if (frames == 0 && !final)
    fprintf (stderr, "%s%s: starting (model, kernels) for %.1f s%s",
        run->tty ? "\r\033[K" : "", run->program, elapsed,
        run->tty ? "" : "\n");
  else
    fprintf (stderr, "%s%s: %d frame%s in %.1f s%s%s%s",
        run->tty ? "\r\033[K" : "", run->program, frames,
        frames == 1 ? "" : "s", elapsed, rate != NULL ? rate : "",
        percent != NULL ? percent : "", run->tty && !final ? "" : "\n");
  fflush (stderr);
  run->progress_shown = TRUE;
}

static gboolean
progress_tick (gpointer user_data)
{
  print_progress (user_data, FALSE);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_interrupt (gpointer user_data)
{
  ApplyRun *run = user_data;

  if (run->interrupted) {
    /* second Ctrl-C: stop without finishing the file */
    run->failed = TRUE;
    g_main_loop_quit (run->loop);
    return G_SOURCE_REMOVE;
  }
  g_printerr ("\n%s: interrupted, finishing the output file "
      "(Ctrl-C again to abort)\n", run->program);
  run->interrupted = TRUE;
  gst_element_send_event (run->pipeline, gst_event_new_eos ());
  return G_SOURCE_CONTINUE;
}

static gboolean
on_bus_message (GstBus * bus, GstMessage * msg, gpointer user_data)
{
  ApplyRun *run = user_data;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *debug = NULL;

  switch (GST_MESSAGE_TYPE (msg)) {
    case GST_MESSAGE_ERROR:
      gst_message_parse_error (msg, &error, &debug);
      if (run->tty && run->progress_shown)
        fputc ('\n', stderr);
      ncl_cli_fail ("%s: %s%s%s%s", GST_OBJECT_NAME (GST_MESSAGE_SRC (msg)),
          error->message, debug != NULL ? " (" : "", debug ? debug : "",
          debug != NULL ? ")" : "");
      run->failed = TRUE;
      g_main_loop_quit (run->loop);
      break;
    case GST_MESSAGE_WARNING:
      gst_message_parse_warning (msg, &error, &debug);
      g_printerr ("%s: warning: %s\n", run->program, error->message);
      break;
    case GST_MESSAGE_EOS:
      g_main_loop_quit (run->loop);
      break;
    default:
      break;
  }
  return G_SOURCE_CONTINUE;
}

/* Runs @pipeline to EOS or error, printing progress.  Returns the number
 * of frames styled, or -1 on error (already printed). */
static gint
run_pipeline (GstElement * pipeline, GstElement * st, gboolean one_frame,
    const gchar * program)
{
  ApplyRun run = { 0 };
  g_autoptr (GstBus) bus = gst_element_get_bus (pipeline);
  g_autoptr (GstPad) src = gst_element_get_static_pad (st, "src");
  g_autoptr (GstPad) sink = gst_element_get_static_pad (st, "sink");
  gint seen = 0;
  guint bus_watch, tick, sigint;

  run.loop = g_main_loop_new (NULL, FALSE);
  run.pipeline = pipeline;
  run.program = program;
  run.tty = isatty (fileno (stderr));
  run.start_us = g_get_monotonic_time ();

  if (src != NULL)
    gst_pad_add_probe (src, GST_PAD_PROBE_TYPE_BUFFER, count_frame, &run,
        NULL);
  if (one_frame && sink != NULL)
    gst_pad_add_probe (sink, GST_PAD_PROBE_TYPE_BUFFER, first_frame_only,
        &seen, NULL);
  bus_watch = gst_bus_add_watch (bus, on_bus_message, &run);
  tick = g_timeout_add_seconds (run.tty ? 1 : 5, progress_tick, &run);
  sigint = g_unix_signal_add (SIGINT, on_interrupt, &run);

  if (gst_element_set_state (pipeline, GST_STATE_PLAYING) ==
      GST_STATE_CHANGE_FAILURE) {
    /* the error message on the bus says why; collect it */
    g_autoptr (GstMessage) msg = gst_bus_pop_filtered (bus,
        GST_MESSAGE_ERROR);

    if (msg != NULL)
      on_bus_message (bus, msg, &run);
    else
      ncl_cli_fail ("%s: the pipeline failed to start", program);
    run.failed = TRUE;
  } else {
    g_main_loop_run (run.loop);
  }

  gst_element_set_state (pipeline, GST_STATE_NULL);
  g_source_remove (sigint);
  g_source_remove (tick);
  g_source_remove (bus_watch);
  g_main_loop_unref (run.loop);

  if (run.failed)
    return -1;
  print_progress (&run, TRUE);
  return g_atomic_int_get (&run.frames);
}

/* Stylises @in_path into @out_path with @s; prints errors itself. */
static gint
apply_file (const gchar * name, const NclStyleSettings * s,
    const gchar * in_path, const gchar * out_path)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (NclModel) model = NULL;
  g_autoptr (GstElement) pipeline = NULL;
  g_autoptr (GstElement) st = NULL;
  g_autoptr (GstElement) src = NULL;
  g_autoptr (GstElement) sink = NULL;
  g_autofree gchar *launch = NULL;
  const OutputKind *kind;
  gint frames;
  GStatBuf sb;

  if (s->strength < 0.0 || s->strength > 1.0)
    return ncl_cli_fail ("%s: strength %g out of range 0..1", name,
        s->strength);
  if (!g_file_test (in_path, G_FILE_TEST_IS_REGULAR))
    return ncl_cli_fail ("%s: no such file", in_path);
  if (g_str_equal (in_path, out_path))
    return ncl_cli_fail ("%s: %s is both input and output", name, in_path);
  kind = find_output_kind (out_path);
  if (kind == NULL)
    return ncl_cli_fail ("%s: unknown output type; use .png, .jpg, .webm, "
        ".mkv, .ogv or .mp4", out_path);

  /* load the model here as well, so a bad one fails with its own message
   * before any pipeline starts */
  model = load_style_model (s->model, &error);
  if (model == NULL)
    return ncl_cli_fail_error (error);

  gst_init (NULL, NULL);
  if (!ensure_styletransfer (&error))
    return ncl_cli_fail_error (error);

  launch = g_strdup_printf ("filesrc name=source ! decodebin ! queue "
      "! videoconvert ! styletransfer name=styletransfer ! queue "
      "! videoconvert ! %s ! filesink name=sink", kind->encoder);
  pipeline = gst_parse_launch (launch, &error);
  if (pipeline != NULL)
    gst_object_ref_sink (pipeline);
  if (pipeline == NULL || error != NULL)
    return ncl_cli_fail ("cannot build the pipeline '%s': %s%s", launch,
        error != NULL ? error->message : "unknown error",
        g_error_matches (error, GST_PARSE_ERROR,
            GST_PARSE_ERROR_NO_SUCH_ELEMENT) ? " (install "
        "gstreamer1.0-plugins-good, -base and gstreamer1.0-libav)" : "");
  st = gst_bin_get_by_name (GST_BIN (pipeline), "styletransfer");
  src = gst_bin_get_by_name (GST_BIN (pipeline), "source");
  sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  g_object_set (src, "location", in_path, NULL);
  g_object_set (sink, "location", out_path, NULL);
  if (!configure_styletransfer (st, s, ncl_model_get_path (model), &error))
    return ncl_cli_fail_error (error);

  g_printerr ("%s: %s -> %s, model %s, strength %g%s%s%s\n", name, in_path,
      out_path, ncl_model_get_name (model), s->strength,
      s->preserve_colors ? ", preserving colours" : "",
      s->device != NULL ? ", device " : "",
      s->device != NULL ? s->device : "");

  frames = run_pipeline (pipeline, st, kind->is_image, name);
  if (frames < 0) {
    g_unlink (out_path);
    return NCL_CLI_EXIT_FAILURE;
  }
  if (frames == 0) {
    g_unlink (out_path);
    return ncl_cli_fail ("%s: no video frames decoded", in_path);
  }
  if (g_stat (out_path, &sb) != 0 || sb.st_size == 0)
    return ncl_cli_fail ("%s: nothing was written", out_path);

  if (kind->is_image)
    g_printerr ("%s: wrote %s\n", name, out_path);
  else
    g_printerr ("%s: wrote %s (%d frame%s)\n", name, out_path, frames,
        frames == 1 ? "" : "s");
  return NCL_CLI_EXIT_OK;
}

static gint
style_apply (gint argc, gchar ** argv)
{
  g_autofree gchar *model_name = NULL;
  g_autofree gchar *device = NULL;
  g_autofree gchar *config = NULL;
  g_autofree gchar *size = NULL;
  gdouble strength = -1.0;
  gboolean preserve_colors = FALSE;
  GOptionEntry entries[] = {
    {"model", 'm', 0, G_OPTION_ARG_STRING, &model_name,
        "Style name (see \"neuralcl style list\") or model file "
          "(default: mosaic)", "NAME|PATH"},
    {"strength", 's', 0, G_OPTION_ARG_DOUBLE, &strength,
        "Blend with the original frame, 0..1 (default 1)", "S"},
    {"preserve-colors", 'p', 0, G_OPTION_ARG_NONE, &preserve_colors,
        "Keep the colours of the input, take only the luma of the style",
          NULL},
    {"inference-size", 'i', 0, G_OPTION_ARG_STRING, &size,
        "Run the network at this size and scale back (default: frame size)",
          "WxH"},
    {"device", 'd', 0, G_OPTION_ARG_STRING, &device,
        "OpenCL device: index, type or part of the name", "D"},
    {"config", 'c', 0, G_OPTION_ARG_FILENAME, &config,
        "Style YAML (model, device, strength, ...); options override it",
          "YAML"},
    {NULL}
  };
  GOptionContext *octx = g_option_context_new ("INPUT OUTPUT");
  const gchar *name = ncl_cli_name (argv[0]);
  g_autoptr (GError) error = NULL;
  NclStyleSettings settings;
  const gchar *in_path, *out_path;
  gint status;

  g_option_context_set_summary (octx,
      "Stylises an image or a video file with the styletransfer element.\n"
      "The output type follows OUTPUT's extension: .png, .jpg (the first\n"
      "frame), .webm, .mkv (VP8), .ogv (Theora), .mp4 (MPEG-4 part 2).\n"
      "Audio is dropped.");
  g_option_context_add_main_entries (octx, entries, NULL);
  if (!ncl_cli_parse (octx, &argc, &argv, 2))
    return NCL_CLI_EXIT_FAILURE;
  in_path = argv[1];
  out_path = argv[2];

  ncl_style_settings_init (&settings);
  if (config != NULL && !ncl_style_settings_load (&settings, config, &error)) {
    ncl_style_settings_clear (&settings);
    return ncl_cli_fail_error (error);
  }
  if (model_name != NULL) {
    g_free (settings.model);
    settings.model = g_strdup (model_name);
  }
  if (device != NULL) {
    g_free (settings.device);
    settings.device = g_strdup (device);
  }
  if (strength != -1.0)       /* -1: not given */
    settings.strength = strength;
  if (preserve_colors)
    settings.preserve_colors = TRUE;
  if (size != NULL && !ncl_cli_parse_size (size, &settings.inference_width,
          &settings.inference_height, &error)) {
    ncl_style_settings_clear (&settings);
    return ncl_cli_fail ("%s: --inference-size: %s", name, error->message);
  }

  status = apply_file (name, &settings, in_path, out_path);
  ncl_style_settings_clear (&settings);
  return status;
}

/* ---- dispatch ----------------------------------------------------------- */

/* cmd-style-train.c */
gint ncl_cli_style_train (gint argc, gchar ** argv);
gint ncl_cli_style_optimize (gint argc, gchar ** argv);

static const NclCliCommand style_actions[] = {
  {"list", "List the bundled styles: name, architecture, origin",
      style_list},
  {"apply", "Stylise an image or a video file", style_apply},
  {"tensor", "Run a style network alone on a safetensors tensor",
      style_tensor},
  {"train", "Train a style network on a painting and a photo directory",
      ncl_cli_style_train},
  {"optimize", "Stylise one image by optimising its pixels (Gatys)",
      ncl_cli_style_optimize},
  {NULL, NULL, NULL},
};

gint
ncl_cli_style (gint argc, gchar ** argv)
{
  return ncl_cli_dispatch (argv[0], "Fast neural style transfer (Johnson et "
      "al. 2016 TransformerNet) on images and videos.", style_actions, argc,
      argv);
}
