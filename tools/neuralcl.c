/* neuralcl: command-line front end of the neuralcl library.
 *
 *   neuralcl SUBCOMMAND [ACTION] [OPTIONS]
 *
 * This file holds the dispatcher, the helpers shared by the subcommands
 * (error lines, option parsing, machine description) and the small
 * `devices` subcommand. */
#include "config.h"

#include "neuralcl-cli.h"

#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const NclCliCommand subcommands[] = {
  {"devices", "List the OpenCL devices", ncl_cli_devices},
  {"style", "Style transfer: list styles, stylise images and videos",
      ncl_cli_style},
  {"bench", "Time a model layer by layer on random input", ncl_cli_bench},
  {"models", "List bundled models with their paths and fingerprints",
      ncl_cli_models},
  {"faces", "Faces: detect, describe, verify, identify, evaluate",
      ncl_cli_faces},
  {NULL, NULL, NULL},
};

static void
print_one_line (const gchar * prefix, const gchar * message)
{
  g_autofree gchar *line = g_strdup (message);

  g_strstrip (line);
  for (gchar * p = line; *p != '\0'; p++) {
    if (*p == '\n' || *p == '\r' || *p == '\t')
      *p = ' ';
  }
  fprintf (stderr, "%s%s\n", prefix, line);
  fflush (stderr);
}

gint
ncl_cli_fail (const gchar * format, ...)
{
  va_list args;
  g_autofree gchar *message = NULL;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  print_one_line ("neuralcl: ", message);
  return NCL_CLI_EXIT_FAILURE;
}

gint
ncl_cli_fail_error (const GError * error)
{
  return ncl_cli_fail ("%s", error != NULL ? error->message : "unknown error");
}

static void
print_commands (FILE * out, const gchar * program, const gchar * summary,
    const NclCliCommand * actions, gboolean top_level)
{
  gsize width = 0;

  for (const NclCliCommand * c = actions; c->name != NULL; c++)
    width = MAX (width, strlen (c->name));

  fprintf (out, "Usage:\n  %s %s [OPTION…]\n\n%s\n\n%s:\n", program,
      top_level ? "SUBCOMMAND [ACTION]" : "ACTION", summary,
      top_level ? "Subcommands" : "Actions");
  for (const NclCliCommand * c = actions; c->name != NULL; c++)
    fprintf (out, "  %-*s  %s\n", (gint) width, c->name, c->summary);
  fprintf (out, "\nRun \"%s %s --help\" for the options of each.\n",
      program, top_level ? "SUBCOMMAND [ACTION]" : "ACTION");
}

gint
ncl_cli_dispatch (const gchar * program, const gchar * summary,
    const NclCliCommand * actions, gint argc, gchar ** argv)
{
  g_autoptr (GString) names = g_string_new (NULL);
  g_autofree gchar **sub_argv = NULL;
  g_autofree gchar *sub_name = NULL;
  gboolean top_level = strchr (program, ' ') == NULL;
  const gchar *what = top_level ? "subcommand" : "action";
  /* messages already start with "neuralcl: " */
  g_autofree gchar *where = top_level ? g_strdup ("") :
      g_strdup_printf ("%s: ", strchr (program, ' ') + 1);

  for (const NclCliCommand * c = actions; c->name != NULL; c++)
    g_string_append_printf (names, "%s%s", names->len > 0 ? ", " : "",
        c->name);

  if (argc < 2)
    return ncl_cli_fail ("%smissing %s (one of: %s); see \"%s --help\"",
        where, what, names->str, program);

  if (g_str_equal (argv[1], "--help") || g_str_equal (argv[1], "-h")
      || g_str_equal (argv[1], "help") || g_str_equal (argv[1], "-?")) {
    print_commands (stdout, program, summary, actions, top_level);
    return NCL_CLI_EXIT_OK;
  }

  for (const NclCliCommand * c = actions; c->name != NULL; c++) {
    if (!g_str_equal (c->name, argv[1]))
      continue;

    /* argv[0] becomes "PROGRAM NAME"; the rest follows unchanged */
    sub_name = g_strdup_printf ("%s %s", program, c->name);
    sub_argv = g_new0 (gchar *, argc);
    sub_argv[0] = sub_name;
    for (gint i = 2; i < argc; i++)
      sub_argv[i - 1] = argv[i];
    return c->run (argc - 1, sub_argv);
  }

  if (argv[1][0] == '-')
    return ncl_cli_fail ("%sexpected a %s before option '%s' (one of: %s)",
        where, what, argv[1], names->str);
  return ncl_cli_fail ("%sunknown %s '%s' (one of: %s)", where, what,
      argv[1], names->str);
}

gboolean
ncl_cli_parse (GOptionContext * octx, gint * argc, gchar *** argv,
    gint n_args)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *program = g_strdup ((*argv)[0]);
  const gchar *cmd = ncl_cli_name (program);
  gboolean ok;

  if (g_get_prgname () == NULL)
    g_set_prgname (program);

  ok = g_option_context_parse (octx, argc, argv, &error);
  g_option_context_free (octx);
  if (!ok) {
    ncl_cli_fail ("%s: %s", cmd, error->message);
    return FALSE;
  }

  /* a lone "--" is left in place by GLib; drop it */
  for (gint i = 1; i < *argc; i++) {
    if (g_str_equal ((*argv)[i], "--")) {
      for (gint j = i; j + 1 < *argc; j++)
        (*argv)[j] = (*argv)[j + 1];
      (*argc)--;
      break;
    }
  }

  for (gint i = 1; i < *argc; i++) {
    if ((*argv)[i][0] == '-' && (*argv)[i][1] != '\0') {
      ncl_cli_fail ("%s: unknown option '%s'", cmd, (*argv)[i]);
      return FALSE;
    }
  }

  if (n_args >= 0 && *argc - 1 != n_args) {
    if (*argc - 1 < n_args)
      ncl_cli_fail ("%s: expected %d argument%s, got %d; see \"%s --help\"",
          cmd, n_args, n_args == 1 ? "" : "s", *argc - 1, program);
    else
      ncl_cli_fail ("%s: unexpected argument '%s'; see \"%s --help\"",
          cmd, (*argv)[n_args + 1], program);
    return FALSE;
  }
  return TRUE;
}

const gchar *
ncl_cli_name (const gchar * argv0)
{
  return g_str_has_prefix (argv0, "neuralcl ") ?
      argv0 + strlen ("neuralcl ") : argv0;
}

gboolean
ncl_cli_parse_size (const gchar * s, gint * width, gint * height,
    GError ** error)
{
  const gchar *p = s;
  gchar *end = NULL;
  gint64 w, h;

  w = g_ascii_strtoll (p, &end, 10);
  if (end == p || (*end != 'x' && *end != 'X'))
    goto bad;
  p = end + 1;
  h = g_ascii_strtoll (p, &end, 10);
  if (end == p || *end != '\0')
    goto bad;
  if (w <= 0 || h <= 0 || w > 16384 || h > 16384)
    goto bad;

  *width = (gint) w;
  *height = (gint) h;
  return TRUE;

bad:
  g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
      "bad size '%s', expected WIDTHxHEIGHT such as 640x480 (1..16384)", s);
  return FALSE;
}

gchar *
ncl_cli_describe_machine (void)
{
  g_autofree gchar *cpuinfo = NULL;
  g_autofree gchar *model = NULL;

  if (g_file_get_contents ("/proc/cpuinfo", &cpuinfo, NULL, NULL)) {
    g_auto (GStrv) lines = g_strsplit (cpuinfo, "\n", -1);

    for (guint i = 0; lines[i] != NULL && model == NULL; i++) {
      gchar *colon;

      if (!g_str_has_prefix (lines[i], "model name")
          && !g_str_has_prefix (lines[i], "Model")
          && !g_str_has_prefix (lines[i], "cpu model"))
        continue;
      colon = strchr (lines[i], ':');
      if (colon != NULL)
        model = g_strstrip (g_strdup (colon + 1));
    }
  }

  return g_strdup_printf ("%s, nproc %u, %s",
      model != NULL && *model != '\0' ? model : "unknown CPU",
      g_get_num_processors (), g_get_os_info (G_OS_INFO_KEY_PRETTY_NAME) ?
      g_get_os_info (G_OS_INFO_KEY_PRETTY_NAME) : "unknown OS");
}

void
ncl_cli_json_add_double (JsonBuilder * b, const gchar * name, gdouble v)
{
  json_builder_set_member_name (b, name);
  if (isfinite (v))
    json_builder_add_double_value (b, v);
  else
    json_builder_add_null_value (b);
}

void
ncl_cli_json_add_int (JsonBuilder * b, const gchar * name, gint64 v)
{
  json_builder_set_member_name (b, name);
  json_builder_add_int_value (b, v);
}

void
ncl_cli_json_add_string (JsonBuilder * b, const gchar * name,
    const gchar * v)
{
  json_builder_set_member_name (b, name);
  if (v != NULL)
    json_builder_add_string_value (b, v);
  else
    json_builder_add_null_value (b);
}

gchar *
ncl_cli_get_exe_dir (void)
{
  g_autofree gchar *exe = g_file_read_link ("/proc/self/exe", NULL);

  if (exe == NULL)
    return NULL;
  return g_path_get_dirname (exe);
}

gint
ncl_cli_devices (gint argc, gchar ** argv)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *list = NULL;
  GOptionContext *octx = g_option_context_new ("- list OpenCL devices");

  g_option_context_set_description (octx,
      "Prints one line per device: INDEX: DEVICE (PLATFORM, TYPE).\n"
      "The index, type or a part of the name selects a device in the\n"
      "--device option of other subcommands and in $NEURALCL_DEVICE.");
  if (!ncl_cli_parse (octx, &argc, &argv, 0))
    return NCL_CLI_EXIT_FAILURE;

  list = ncl_context_list_devices (&error);
  if (list == NULL)
    return ncl_cli_fail_error (error);

  fputs (list, stdout);
  if (*list != '\0' && !g_str_has_suffix (list, "\n"))
    fputc ('\n', stdout);
  return NCL_CLI_EXIT_OK;
}

static gint
print_version (void)
{
  printf ("neuralcl %s\n", VERSION);
  return NCL_CLI_EXIT_OK;
}

int
main (int argc, char **argv)
{
  setlocale (LC_ALL, "");
  if (argc >= 2 && g_str_equal (argv[1], "--version"))
    return print_version ();

  return ncl_cli_dispatch ("neuralcl",
      "OpenCL neural networks for video: style transfer and benchmarks.",
      subcommands, argc, argv);
}
