/* neuralcl command-line tool: declarations shared by its subcommands.
 *
 * Each subcommand is a function taking the arguments that follow its name
 * (argv[0] is "neuralcl SUBCOMMAND [ACTION]", for messages and --help) and
 * returning the process exit status.  Errors are printed as one line,
 * "neuralcl: MESSAGE", on stderr, and give exit status 1. */
#pragma once

#include <neuralcl/neuralcl.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

#define NCL_CLI_EXIT_OK 0
#define NCL_CLI_EXIT_FAILURE 1

typedef gint (*NclCliFunc) (gint argc, gchar ** argv);

/* One entry of a subcommand or action table (ended by a NULL name). */
typedef struct
{
  const gchar *name;
  const gchar *summary;
  NclCliFunc run;
} NclCliCommand;

/* Subcommands (neuralcl.c dispatches to these). */
gint ncl_cli_devices (gint argc, gchar ** argv);
gint ncl_cli_style (gint argc, gchar ** argv);
gint ncl_cli_bench (gint argc, gchar ** argv);
gint ncl_cli_models (gint argc, gchar ** argv);
gint ncl_cli_faces (gint argc, gchar ** argv);

/* Prints "neuralcl: MESSAGE" on one line (newlines in MESSAGE become
 * spaces) and returns NCL_CLI_EXIT_FAILURE. */
gint ncl_cli_fail (const gchar * format, ...) G_GNUC_PRINTF (1, 2);
/* Same, with the message of @error (which may be NULL: "unknown error"). */
gint ncl_cli_fail_error (const GError * error);

/* Dispatches argv[1] to the matching entry of @actions, passing the
 * arguments after it with argv[0] set to "PROGRAM ACTION".  No action, or
 * an unknown one, is an error listing the actions; "--help", "-h" and
 * "help" print them on stdout and return 0. */
gint ncl_cli_dispatch (const gchar * program, const gchar * summary,
    const NclCliCommand * actions, gint argc, gchar ** argv);

/* Parses the options of @octx (which is freed), leaving the positional
 * arguments in @argc/@argv.  Exactly @n_args positional arguments are
 * required (-1: any number); a parse error or a wrong count prints one
 * error line.  Returns FALSE on error. */
gboolean ncl_cli_parse (GOptionContext * octx, gint * argc, gchar *** argv,
    gint n_args);

/* "neuralcl style apply" -> "style apply": the command named in messages
 * (which ncl_cli_fail() already starts with "neuralcl: "). */
const gchar *ncl_cli_name (const gchar * argv0);

/* Parses "WxH" (both > 0).  Returns FALSE with @error set otherwise. */
gboolean ncl_cli_parse_size (const gchar * s, gint * width, gint * height,
    GError ** error);

/* "2 x Intel(R) Xeon(R) ... (nproc 2)": CPU model from /proc/cpuinfo and
 * the processor count (transfer full). */
gchar *ncl_cli_describe_machine (void);

/* JSON object members: a number (null when not finite), an integer, a
 * string (null when NULL). */
void ncl_cli_json_add_double (JsonBuilder * b, const gchar * name,
    gdouble v);
void ncl_cli_json_add_int (JsonBuilder * b, const gchar * name, gint64 v);
void ncl_cli_json_add_string (JsonBuilder * b, const gchar * name,
    const gchar * v);

/* Directory holding the running executable, or NULL (transfer full). */
gchar *ncl_cli_get_exe_dir (void);

G_END_DECLS
