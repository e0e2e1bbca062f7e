/* neuralcl style train / style optimize: train a fast style network
 * (Johnson et al.) on a painting and a directory of photos, or stylise one
 * image by optimising its pixels (Gatys et al.).
 *
 *   neuralcl style train --style PAINTING --content DIR --output M.yaml ...
 *   neuralcl style train --config config/style-train.yaml [--resume]
 *   neuralcl style optimize --content C --style S --out G.png
 */
#include "neuralcl-cli.h"

#include <neuralcl/train.h>

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

gint ncl_cli_style_train (gint argc, gchar ** argv);
gint ncl_cli_style_optimize (gint argc, gchar ** argv);

static volatile gint stop_requested;

static void
signal_handler (int sig)
{
  stop_requested++;
}

/* "1:02:03" / "2:03" (transfer full) */
static gchar *
format_duration (gdouble s)
{
  gint t = isfinite (s) && s > 0 ? (gint) (s + 0.5) : 0;

  if (t >= 3600)
    return g_strdup_printf ("%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
  return g_strdup_printf ("%d:%02d", t / 60, t % 60);
}

typedef struct
{
  const gchar *program;
  gboolean tty;
  gboolean line_open;
  gint64 last_print;
} Bar;

static void
bar_line (Bar * b, gint done, gint total, gint start, const gchar * terms,
    const gchar * rate, gdouble eta, gboolean force)
{
  gint64 now = g_get_monotonic_time ();
  const gint width = 24;
  gint fill = total > 0 ? (gint) ((gint64) width * done / total) : width;
  gchar bar[32];
  g_autofree gchar *eta_s = format_duration (eta);

  /* on a terminal: redraw at most 5 times a second; in a log: a line every
   * 10 s */
  if (!force && now - b->last_print < (b->tty ? 200000 : 10000000))
    return;
  b->last_print = now;
  for (gint i = 0; i < width; i++)
    bar[i] = i < fill ? '#' : '.';
  bar[width] = '\0';
  fprintf (stderr, "%s%s: [%s] %d/%d %3.0f%% | %s | %s | ETA %s%s",
      b->tty ? "\r\033[K" : "", b->program, bar, done, total,
      total > 0 ? 100.0 * done / total : 100.0, terms, rate, eta_s,
      b->tty ? "" : "\n");
  fflush (stderr);
  b->line_open = b->tty;
}

static void
bar_message (Bar * b, const gchar * text)
{
  if (b->line_open)
    fputc ('\n', stderr);
  b->line_open = FALSE;
  fprintf (stderr, "%s: %s\n", b->program, text);
}

static gboolean
train_progress (const NclStyleTrainProgress * p, gpointer user_data)
{
  Bar *b = user_data;
  g_autofree gchar *terms = NULL;
  g_autofree gchar *rate = NULL;

  if (p->message != NULL) {
    bar_message (b, p->message);
    return stop_requested == 0;
  }
  terms = g_strdup_printf ("content %.3g  style %.3g  tv %.3g  total %.3g",
      p->loss.content, p->loss.style, p->loss.tv, p->loss.total);
  rate = g_strdup_printf ("%.2f img/s", p->images_per_s);
  bar_line (b, p->iteration, p->iterations, p->start_iteration, terms, rate,
      p->eta_s, p->iteration == p->iterations);
  if (stop_requested) {
    bar_message (b, "interrupted: writing a checkpoint (resume with "
        "--resume)");
    return FALSE;
  }
  return TRUE;
}

static gboolean
parse_layers (const gchar * spec, NclStyleLossSettings * l, GError ** error)
{
  g_auto (GStrv) parts = g_strsplit (spec, ",", -1);
  guint n = g_strv_length (parts);

  if (n == 0 || n > NCL_STYLE_MAX_LAYERS) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_CONFIG,
        "--style-layers: expected 1 to %d layers", NCL_STYLE_MAX_LAYERS);
    return FALSE;
  }
  for (gint i = 0; i < NCL_STYLE_MAX_LAYERS; i++)
    g_clear_pointer (&l->style_layers[i], g_free);
  for (guint i = 0; i < n; i++) {
    gchar *eq = strchr (parts[i], '=');

    l->style_layer_weights[i] = 1.0;
    if (eq != NULL) {
      *eq = '\0';
      l->style_layer_weights[i] = g_ascii_strtod (eq + 1, NULL);
    }
    l->style_layers[i] = g_strdup (g_strstrip (parts[i]));
  }
  l->n_style_layers = n;
  return TRUE;
}

gint
ncl_cli_style_train (gint argc, gchar ** argv)
{
  g_autofree gchar *config = NULL, *style = NULL, *content = NULL;
  g_autofree gchar *output = NULL, *preset = NULL, *device = NULL;
  g_autofree gchar *checkpoint_dir = NULL, *loss_net = NULL;
  g_autofree gchar *style_layers = NULL, *content_layer = NULL;
  g_auto (GStrv) samples = NULL;
  gint image_size = 0, batch = 0, iterations = -1, seed = -1, every = 0;
  gint style_size = -1, sample_size = 0;
  gdouble lr = 0, cw = -1, sw = -1, tw = -1;
  gboolean resume = FALSE, print_config = FALSE;
  GOptionEntry entries[] = {
    {"config", 'c', 0, G_OPTION_ARG_FILENAME, &config,
        "Training YAML (see config/style-train.yaml); options override it",
          "YAML"},
    {"style", 's', 0, G_OPTION_ARG_FILENAME, &style, "The painting",
          "IMAGE"},
    {"content", 0, 0, G_OPTION_ARG_FILENAME, &content,
        "Directory of training photos (searched recursively)", "DIR"},
    {"output", 'o', 0, G_OPTION_ARG_FILENAME, &output,
        "Model graph to write (.yaml; weights beside it)", "MODEL.yaml"},
    {"preset", 'p', 0, G_OPTION_ARG_STRING, &preset,
        "johnson (32/64/128, 5 blocks) or small (16/32/64, 3 blocks)",
          "NAME"},
    {"image-size", 0, 0, G_OPTION_ARG_INT, &image_size,
        "Training crop size (default 256)", "N"},
    {"style-size", 0, 0, G_OPTION_ARG_INT, &style_size,
        "Longest side of the style image, 0 = as is (default 512)", "N"},
    {"batch-size", 'b', 0, G_OPTION_ARG_INT, &batch,
        "Images per step (default 4)", "N"},
    {"iterations", 'n', 0, G_OPTION_ARG_INT, &iterations,
        "Training steps (default 2000)", "N"},
    {"learning-rate", 0, 0, G_OPTION_ARG_DOUBLE, &lr,
        "Adam learning rate (default 1e-3)", "LR"},
    {"seed", 0, 0, G_OPTION_ARG_INT, &seed, "Random seed (default 1)", "N"},
    {"content-weight", 0, 0, G_OPTION_ARG_DOUBLE, &cw, "alpha", "W"},
    {"style-weight", 0, 0, G_OPTION_ARG_DOUBLE, &sw, "beta", "W"},
    {"tv-weight", 0, 0, G_OPTION_ARG_DOUBLE, &tw, "total variation weight",
          "W"},
    {"content-layer", 0, 0, G_OPTION_ARG_STRING, &content_layer,
        "Content layer (default relu2_2)", "LAYER"},
    {"style-layers", 0, 0, G_OPTION_ARG_STRING, &style_layers,
          "Style layers with optional weights "
          "(default relu1_2,relu2_2,relu3_3)", "L[=W],..."},
    {"checkpoint-every", 0, 0, G_OPTION_ARG_INT, &every,
        "Checkpoint interval in iterations (default 100)", "N"},
    {"checkpoint-dir", 0, 0, G_OPTION_ARG_FILENAME, &checkpoint_dir,
        "Checkpoints, loss curve, samples (default MODEL.train)", "DIR"},
    {"resume", 'r', 0, G_OPTION_ARG_NONE, &resume,
        "Continue from the last checkpoint", NULL},
    {"sample", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &samples,
        "Sample image for the grid (repeatable; 'synthetic' = a generated "
          "test card)", "IMAGE"},
    {"sample-size", 0, 0, G_OPTION_ARG_INT, &sample_size,
        "Longest side of the samples (default 256)", "N"},
    {"loss-network", 0, 0, G_OPTION_ARG_FILENAME, &loss_net,
        "VGG-19 block 1-3 safetensors", "FILE"},
    {"device", 'd', 0, G_OPTION_ARG_STRING, &device,
        "OpenCL device: index, type or part of the name", "D"},
    {"print-config", 0, 0, G_OPTION_ARG_NONE, &print_config,
        "Print the resulting settings as YAML and exit", NULL},
    {NULL}
  };
  GOptionContext *octx = g_option_context_new (NULL);
  const gchar *name = ncl_cli_name (argv[0]);
  g_autoptr (GError) error = NULL;
  NclStyleTrainSettings s;
  Bar bar = { 0 };
  gboolean ok;

  g_option_context_set_summary (octx,
      "Trains a fast style network (Johnson et al. 2016) on a painting and\n"
      "a directory of photos.  Writes MODEL.yaml + MODEL.safetensors (load\n"
      "them with --model in \"neuralcl style apply\" or the styletransfer\n"
      "element) and, at each checkpoint, the training state, losses.csv,\n"
      "loss-curve.png and samples.png in the checkpoint directory.\n"
      "Ctrl-C writes a checkpoint and stops; --resume continues.");
  g_option_context_add_main_entries (octx, entries, NULL);
  if (!ncl_cli_parse (octx, &argc, &argv, 0))
    return NCL_CLI_EXIT_FAILURE;

  ncl_style_train_settings_init (&s);
  if (config != NULL && !ncl_style_train_settings_load (&s, config, &error)) {
    ncl_style_train_settings_clear (&s);
    return ncl_cli_fail_error (error);
  }
#define SET_STR(field, v) \
  if (v != NULL) { g_free (s.field); s.field = g_strdup (v); }
  SET_STR (style, style);
  SET_STR (content, content);
  SET_STR (output, output);
  SET_STR (preset, preset);
  SET_STR (device, device);
  SET_STR (checkpoint_dir, checkpoint_dir);
  SET_STR (loss_network, loss_net);
  SET_STR (loss.content_layer, content_layer);
#undef SET_STR
  if (samples != NULL) {
    g_strfreev (s.samples);
    s.samples = g_strdupv (samples);
  }
  if (image_size > 0)
    s.image_size = image_size;
  if (style_size >= 0)
    s.style_size = style_size;
  if (sample_size > 0)
    s.sample_size = sample_size;
  if (batch > 0)
    s.batch_size = batch;
  if (iterations >= 0)
    s.iterations = iterations;
  if (seed >= 0)
    s.seed = seed;
  if (every > 0)
    s.checkpoint_every = every;
  if (lr > 0)
    s.learning_rate = lr;
  if (cw >= 0)
    s.loss.content_weight = cw;
  if (sw >= 0)
    s.loss.style_weight = sw;
  if (tw >= 0)
    s.loss.tv_weight = tw;
  if (resume)
    s.resume = TRUE;
  if (style_layers != NULL && !parse_layers (style_layers, &s.loss, &error)) {
    ncl_style_train_settings_clear (&s);
    return ncl_cli_fail ("%s: %s", name, error->message);
  }
  if (s.samples == NULL) {
    g_autofree gchar *exe = ncl_cli_get_exe_dir ();
    g_autofree gchar *sample = exe ? g_build_filename (exe, "..", "..",
        "media", "sample.jpg", NULL) : NULL;
    GPtrArray *list = g_ptr_array_new ();

    if (sample && g_file_test (sample, G_FILE_TEST_EXISTS))
      g_ptr_array_add (list, g_steal_pointer (&sample));
    g_ptr_array_add (list, g_strdup ("synthetic"));
    g_ptr_array_add (list, NULL);
    s.samples = (gchar **) g_ptr_array_free (list, FALSE);
  }

  if (print_config) {
    g_autofree gchar *yaml = ncl_style_train_settings_to_yaml (&s);

    fputs (yaml, stdout);
    ncl_style_train_settings_clear (&s);
    return NCL_CLI_EXIT_OK;
  }
  if (s.style == NULL || s.content == NULL || s.output == NULL) {
    ncl_style_train_settings_clear (&s);
    return ncl_cli_fail ("%s: --style, --content and --output are required "
        "(or set them in --config)", name);
  }

  bar.program = name;
  bar.tty = isatty (fileno (stderr));
  /* no main loop runs during training: catch the signals directly */
  signal (SIGINT, signal_handler);
  signal (SIGTERM, signal_handler);
  ok = ncl_style_train (&s, train_progress, &bar, &error);
  if (bar.line_open)
    fputc ('\n', stderr);
  ncl_style_train_settings_clear (&s);
  if (!ok)
    return ncl_cli_fail_error (error);
  return NCL_CLI_EXIT_OK;
}

/* ---- style optimize ----------------------------------------------------- */

static gboolean
gatys_progress (const NclGatysProgress * p, gpointer user_data)
{
  Bar *b = user_data;
  g_autofree gchar *terms = g_strdup_printf ("content %.3g  style %.3g  "
      "tv %.3g  total %.3g", p->loss.content, p->loss.style, p->loss.tv,
      p->loss.total);
  g_autofree gchar *rate = g_strdup_printf ("%.2f s/it",
      p->iteration > 0 ? p->elapsed_s / p->iteration : 0.0);

  bar_line (b, p->iteration, p->iterations, 0, terms, rate, p->eta_s,
      p->iteration == p->iterations);
  if (stop_requested) {
    bar_message (b, "interrupted: writing the image so far");
    return FALSE;
  }
  return TRUE;
}

gint
ncl_cli_style_optimize (gint argc, gchar ** argv)
{
  g_autofree gchar *content = NULL, *style = NULL, *out = NULL;
  g_autofree gchar *optimizer = NULL, *init = NULL, *device = NULL;
  g_autofree gchar *loss_net = NULL, *style_layers = NULL;
  g_autofree gchar *content_layer = NULL;
  gint size = 0, style_size = -1, iterations = 0, seed = -1;
  gdouble lr = 0, cw = -1, sw = -1, tw = -1;
  GOptionEntry entries[] = {
    {"content", 0, 0, G_OPTION_ARG_FILENAME, &content, "Content image",
          "IMAGE"},
    {"style", 's', 0, G_OPTION_ARG_FILENAME, &style, "The painting",
          "IMAGE"},
    {"out", 'o', 0, G_OPTION_ARG_FILENAME, &out, "Result (PNG)", "G.png"},
    {"size", 0, 0, G_OPTION_ARG_INT, &size,
        "Longest side of the result (default 384)", "N"},
    {"style-size", 0, 0, G_OPTION_ARG_INT, &style_size,
        "Longest side of the style image, 0 = as is (default 512)", "N"},
    {"iterations", 'n', 0, G_OPTION_ARG_INT, &iterations,
        "Optimisation steps (default 300)", "N"},
    {"optimizer", 0, 0, G_OPTION_ARG_STRING, &optimizer,
        "adam or lbfgs (default adam)", "NAME"},
    {"learning-rate", 0, 0, G_OPTION_ARG_DOUBLE, &lr,
        "Adam step in 0..255 pixel units (default 2)", "LR"},
    {"init", 0, 0, G_OPTION_ARG_STRING, &init,
        "Start from 'content' (default) or 'noise'", "FROM"},
    {"seed", 0, 0, G_OPTION_ARG_INT, &seed, "Random seed (noise init)", "N"},
    {"content-weight", 0, 0, G_OPTION_ARG_DOUBLE, &cw, "alpha", "W"},
    {"style-weight", 0, 0, G_OPTION_ARG_DOUBLE, &sw, "beta", "W"},
    {"tv-weight", 0, 0, G_OPTION_ARG_DOUBLE, &tw, "total variation weight",
          "W"},
    {"content-layer", 0, 0, G_OPTION_ARG_STRING, &content_layer,
        "Content layer (default relu2_2)", "LAYER"},
    {"style-layers", 0, 0, G_OPTION_ARG_STRING, &style_layers,
          "Style layers with optional weights "
          "(default relu1_2,relu2_2,relu3_3)", "L[=W],..."},
    {"loss-network", 0, 0, G_OPTION_ARG_FILENAME, &loss_net,
        "VGG-19 block 1-3 safetensors", "FILE"},
    {"device", 'd', 0, G_OPTION_ARG_STRING, &device,
        "OpenCL device: index, type or part of the name", "D"},
    {NULL}
  };
  GOptionContext *octx = g_option_context_new (NULL);
  const gchar *name = ncl_cli_name (argv[0]);
  g_autoptr (GError) error = NULL;
  NclGatysSettings s;
  Bar bar = { 0 };
  gdouble ratio = 0;
  gboolean ok;

  g_option_context_set_summary (octx,
      "Stylises one image by optimising its pixels directly (Gatys et al.\n"
      "2016) against the same content, style and TV loss as \"style "
      "train\".");
  g_option_context_add_main_entries (octx, entries, NULL);
  if (!ncl_cli_parse (octx, &argc, &argv, 0))
    return NCL_CLI_EXIT_FAILURE;
  if (content == NULL || style == NULL || out == NULL)
    return ncl_cli_fail ("%s: --content, --style and --out are required",
        name);

  ncl_gatys_settings_init (&s);
#define SET_STR(field, v) \
  if (v != NULL) { g_free (s.field); s.field = g_strdup (v); }
  SET_STR (content, content);
  SET_STR (style, style);
  SET_STR (output, out);
  SET_STR (optimizer, optimizer);
  SET_STR (init, init);
  SET_STR (device, device);
  SET_STR (loss_network, loss_net);
  SET_STR (loss.content_layer, content_layer);
#undef SET_STR
  if (size > 0)
    s.size = size;
  if (style_size >= 0)
    s.style_size = style_size;
  if (iterations > 0)
    s.iterations = iterations;
  if (seed >= 0)
    s.seed = seed;
  if (lr > 0)
    s.learning_rate = lr;
  if (cw >= 0)
    s.loss.content_weight = cw;
  if (sw >= 0)
    s.loss.style_weight = sw;
  if (tw >= 0)
    s.loss.tv_weight = tw;
  if (style_layers != NULL && !parse_layers (style_layers, &s.loss, &error)) {
    ncl_gatys_settings_clear (&s);
    return ncl_cli_fail ("%s: %s", name, error->message);
  }

  bar.program = name;
  bar.tty = isatty (fileno (stderr));
  signal (SIGINT, signal_handler);
  ok = ncl_gatys_run (&s, gatys_progress, &bar, &ratio, &error);
  if (bar.line_open)
    fputc ('\n', stderr);
  if (ok)
    g_printerr ("%s: wrote %s (style-loss ratio result/content %.3f)\n",
        name, s.output, ratio);
  ncl_gatys_settings_clear (&s);
  if (!ok)
    return ncl_cli_fail_error (error);
  return NCL_CLI_EXIT_OK;
}
