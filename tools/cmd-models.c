/* neuralcl models: the models this installation can find.
 *
 *   neuralcl models list
 *
 * Only the bundled style models for now; face models join this list when
 * the face recognition part lands. */
#include "config.h"

#include "neuralcl-cli.h"

#include <stdio.h>

static gint
models_list (gint argc, gchar ** argv)
{
  g_auto (GStrv) names = NULL;
  GOptionContext *octx = g_option_context_new ("- list the bundled models");
  gint status = NCL_CLI_EXIT_OK;

  g_option_context_set_description (octx,
      "Prints one line per model: KIND<TAB>NAME<TAB>FINGERPRINT<TAB>PATH.\n"
      "KIND is \"style\"; FINGERPRINT is the SHA-256 over graph and "
      "weights.");
  if (!ncl_cli_parse (octx, &argc, &argv, 0))
    return NCL_CLI_EXIT_FAILURE;

  names = ncl_style_list ();
  for (guint i = 0; names != NULL && names[i] != NULL; i++) {
    g_autoptr (GError) error = NULL;
    g_autoptr (NclModel) model = NULL;
    g_autofree gchar *path = ncl_style_resolve (names[i], &error);

    if (path != NULL)
      model = ncl_model_load (path, &error);
    if (model == NULL) {
      status = ncl_cli_fail ("style '%s': %s", names[i], error->message);
      continue;
    }
    printf ("style\t%s\t%s\t%s\n", names[i],
        ncl_model_get_fingerprint (model), ncl_model_get_path (model));
  }
  return status;
}

static const NclCliCommand models_actions[] = {
  {"list", "List the bundled models with their paths and fingerprints",
      models_list},
  {NULL, NULL, NULL},
};

gint
ncl_cli_models (gint argc, gchar ** argv)
{
  return ncl_cli_dispatch (argv[0], "Bundled models.", models_actions, argc,
      argv);
}
