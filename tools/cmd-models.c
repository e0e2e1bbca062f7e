/* neuralcl models: the models this installation can find, and the face
 * models' download.
 *
 *   neuralcl models list
 *   neuralcl models fetch [--dest DIR] [--package-dir DIR] [--force]
 *
 * fetch gets face-api's TF.js weights from npm (`npm pack`, pinned version,
 * checked against the registry's SHA-512 integrity and SHA-1), extracts
 * package/model/ with tar and converts the five networks into our format
 * (lib/tfjs.c; docs/faces-models.md). */
#include "config.h"

#include "neuralcl-cli.h"

#include <glib/gstdio.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#define FACE_API_PACKAGE "@vladmandic/face-api"
#define FACE_API_VERSION "1.7.15"
#define FACE_API_SPEC FACE_API_PACKAGE "@" FACE_API_VERSION
#define FACE_API_TARBALL "vladmandic-face-api-" FACE_API_VERSION ".tgz"
/* `npm view @vladmandic/face-api@1.7.15 dist.integrity dist.shasum` */
#define FACE_API_INTEGRITY "sha512-WDMmK3CfNLo8jylWqMoQgf4nIst3M0fzx1dnac96" \
  "wv/dvMTN4DxC/Pq1DGtduDk1lktCamQ3MIDXFnvrdHTXDw=="
#define FACE_API_SHASUM "10cddf5c405f6f52f37605c9ee28c91ac6a23ead"

static gint
models_list (gint argc, gchar ** argv)
{
  g_auto (GStrv) names = NULL;
  GOptionContext *octx = g_option_context_new ("- list the installed models");
  const gchar *const *faces = ncl_tfjs_face_model_names ();
  gint status = NCL_CLI_EXIT_OK;

  g_option_context_set_description (octx,
      "Prints one line per model: KIND<TAB>NAME<TAB>FINGERPRINT<TAB>PATH.\n"
      "KIND is \"style\" for the bundled styles, \"face\" for the face "
      "models found in the model path (installed by \"neuralcl models "
      "fetch\"); FINGERPRINT is the SHA-256 over graph and weights.");
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

  /* face models: only those installed; a missing one is not an error */
  for (guint i = 0; faces[i] != NULL; i++) {
    g_autoptr (GError) error = NULL;
    g_autoptr (NclModel) model = NULL;
    g_autofree gchar *path = ncl_face_find_model (faces[i], &error);

    if (path == NULL) {
      if (!g_error_matches (error, NCL_ERROR, NCL_ERROR_NOT_FOUND))
        status = ncl_cli_fail ("face model '%s': %s", faces[i],
            error->message);
      continue;
    }
    model = ncl_model_load (path, &error);
    if (model == NULL) {
      status = ncl_cli_fail ("face model '%s': %s", faces[i], error->message);
      continue;
    }
    printf ("face\t%s\t%s\t%s\n", faces[i],
        ncl_model_get_fingerprint (model), ncl_model_get_path (model));
  }
  return status;
}

/* ---- fetch -------------------------------------------------------------- */

/* Runs @argv in @cwd; on failure, @error has one line: what ran, and the
 * last line it printed. */
static gboolean
run_tool (const gchar * cwd, const gchar * const *argv, GError ** error)
{
  g_autofree gchar *out = NULL, *err = NULL;
  g_autoptr (GError) local = NULL;
  gint status;

  if (!g_spawn_sync (cwd, (gchar **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL,
          NULL, &out, &err, &status, &local)) {
    if (g_error_matches (local, G_SPAWN_ERROR, G_SPAWN_ERROR_NOENT))
      g_set_error (error, NCL_ERROR, NCL_ERROR_NOT_FOUND,
          "'%s' not found: install it (npm comes with Node.js), or convert "
          "an extracted package with --package-dir", argv[0]);
    else
      g_set_error (error, NCL_ERROR, NCL_ERROR_FAILED, "cannot run '%s': %s",
          argv[0], local->message);
    return FALSE;
  }
  if (!g_spawn_check_wait_status (status, &local)) {
    g_autofree gchar *cmd = g_strjoinv (" ", (gchar **) argv);
    g_auto (GStrv) lines = g_strsplit (g_strstrip (err), "\n", -1);
    guint n = g_strv_length (lines);
    const gchar *last = n > 0 ? lines[n - 1] : "";
    g_autofree gchar *cause = NULL;

    /* npm: "npm error code E...", then the message, a stack trace and
     * "A complete log ...": keep the code and the first message line */
    for (guint i = 0; i < n; i++) {
      const gchar *l = lines[i];

      if (!g_str_has_prefix (l, "npm error "))
        continue;
      l += strlen ("npm error ");
      if (g_str_has_prefix (l, "code ") && cause == NULL)
        cause = g_strdup (l + 5);
      else if (!g_str_has_prefix (l, "code ") &&
          !g_str_has_prefix (l, "syscall ") &&
          !g_str_has_prefix (l, "errno ") && l[0] != '\0' && l[0] != ' ') {
        gchar *c = g_strdup_printf ("%s%s%s", cause ? cause : "",
            cause ? ": " : "", l);
        g_free (cause);
        cause = c;
        break;
      }
    }
    if (cause != NULL)
      last = cause;
    g_set_error (error, NCL_ERROR, NCL_ERROR_FAILED, "'%s' failed (%s)%s%s",
        cmd, local->message, last[0] ? ": " : "", last);
    return FALSE;
  }
  return TRUE;
}

/* Checks @path against the pinned SHA-512 integrity and SHA-1. */
static gboolean
verify_tarball (const gchar * path, GError ** error)
{
  g_autoptr (GMappedFile) map = NULL;
  g_autoptr (GChecksum) sha512 = g_checksum_new (G_CHECKSUM_SHA512);
  g_autoptr (GChecksum) sha1 = g_checksum_new (G_CHECKSUM_SHA1);
  g_autoptr (GError) local = NULL;
  g_autofree gchar *b64 = NULL, *integrity = NULL;
  guint8 digest[64];
  gsize len = sizeof (digest);

  map = g_mapped_file_new (path, FALSE, &local);
  if (map == NULL) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_IO, "%s: %s", path,
        local->message);
    return FALSE;
  }
  g_checksum_update (sha512, (const guchar *) g_mapped_file_get_contents (map),
      g_mapped_file_get_length (map));
  g_checksum_update (sha1, (const guchar *) g_mapped_file_get_contents (map),
      g_mapped_file_get_length (map));
  g_checksum_get_digest (sha512, digest, &len);
  b64 = g_base64_encode (digest, len);
  integrity = g_strconcat ("sha512-", b64, NULL);
  if (strcmp (integrity, FACE_API_INTEGRITY) != 0) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
        "%s: integrity %s, expected %s (" FACE_API_SPEC ")", path, integrity,
        FACE_API_INTEGRITY);
    return FALSE;
  }
  if (strcmp (g_checksum_get_string (sha1), FACE_API_SHASUM) != 0) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
        "%s: SHA-1 %s, expected %s (" FACE_API_SPEC ")", path,
        g_checksum_get_string (sha1), FACE_API_SHASUM);
    return FALSE;
  }
  return TRUE;
}

/* The cached, verified tarball in @work (npm pack when missing or bad);
 * transfer full. */
static gchar *
get_tarball (const gchar * work, const gchar * npm_cache, GError ** error)
{
  g_autofree gchar *tgz = g_build_filename (work, FACE_API_TARBALL, NULL);
  const gchar *argv[] = { "npm", "pack", FACE_API_SPEC, "--cache", npm_cache,
    "--loglevel", "error", NULL
  };
  g_autoptr (GError) local = NULL;

  if (g_file_test (tgz, G_FILE_TEST_IS_REGULAR)) {
    if (verify_tarball (tgz, &local))
      return g_steal_pointer (&tgz);
    g_printerr ("neuralcl: %s: downloading it again\n", local->message);
    g_unlink (tgz);
  }
  if (g_mkdir_with_parents (work, 0755) != 0 ||
      g_mkdir_with_parents (npm_cache, 0755) != 0) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_IO, "%s: cannot create: %s",
        work, g_strerror (errno));
    return NULL;
  }
  g_printerr ("Downloading " FACE_API_SPEC " with npm...\n");
  if (!run_tool (work, argv, error))
    return NULL;
  if (!g_file_test (tgz, G_FILE_TEST_IS_REGULAR)) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_NOT_FOUND,
        "npm pack did not write %s", tgz);
    return NULL;
  }
  if (!verify_tarball (tgz, error))
    return NULL;
  return g_steal_pointer (&tgz);
}

static gint64
mtime_of (const gchar * path)
{
  GStatBuf st;

  if (g_stat (path, &st) != 0)
    return -1;
  return (gint64) st.st_mtime;
}

/* NAME.yaml and NAME.safetensors exist in @dest and neither is older than
 * the network's manifest and .bin in @model_dir (when given). */
static gboolean
is_up_to_date (const gchar * dest, const gchar * name,
    const gchar * model_dir)
{
  g_autofree gchar *yaml_base = g_strconcat (name, ".yaml", NULL);
  g_autofree gchar *st_base = g_strconcat (name, ".safetensors", NULL);
  g_autofree gchar *yaml = g_build_filename (dest, yaml_base, NULL);
  g_autofree gchar *st = g_build_filename (dest, st_base, NULL);
  gint64 out = MIN (mtime_of (yaml), mtime_of (st));

  if (out < 0)
    return FALSE;
  if (model_dir != NULL) {
    g_autofree gchar *manifest = ncl_tfjs_face_manifest_path (model_dir,
        name);
    g_autofree gchar *bin_base = g_strconcat (name, "_model.bin", NULL);
    g_autofree gchar *bin = g_build_filename (model_dir, bin_base, NULL);

    if (mtime_of (manifest) > out || mtime_of (bin) > out)
      return FALSE;
  }
  return TRUE;
}

/* DIR/model if it exists, else DIR (a package dir or its model/ dir). */
static gchar *
package_model_dir (const gchar * dir)
{
  g_autofree gchar *sub = g_build_filename (dir, "model", NULL);

  if (g_file_test (sub, G_FILE_TEST_IS_DIR))
    return g_steal_pointer (&sub);
  return g_strdup (dir);
}

static gint
models_fetch (gint argc, gchar ** argv)
{
  g_autofree gchar *dest = NULL, *package_dir = NULL;
  g_autofree gchar *model_dir = NULL, *source = NULL;
  g_autoptr (GError) error = NULL;
  gboolean force = FALSE;
  const gchar *const *names = ncl_tfjs_face_model_names ();
  GOptionEntry entries[] = {
    {"dest", 0, 0, G_OPTION_ARG_FILENAME, &dest,
        "Write the models into DIR (default: $XDG_DATA_HOME/neuralcl/models)",
        "DIR"},
    {"package-dir", 0, 0, G_OPTION_ARG_FILENAME, &package_dir,
          "Convert an extracted face-api package (DIR/model/*) instead of "
        "downloading it", "DIR"},
    {"force", 0, 0, G_OPTION_ARG_NONE, &force,
        "Convert again even if the models are up to date", NULL},
    {NULL},
  };
  GOptionContext *octx = g_option_context_new ("- download and convert the "
      "face models");
  guint n_done = 0;

  g_option_context_add_main_entries (octx, entries, NULL);
  g_option_context_set_description (octx,
      "Downloads " FACE_API_SPEC " with \"npm pack\" (cached in "
      "$XDG_CACHE_HOME/neuralcl/face-api), checks it against the pinned "
      "SHA-512 integrity and SHA-1, extracts package/model/ with tar and "
      "converts its five networks (face_recognition, tiny_face_detector, "
      "ssd_mobilenetv1, face_landmark_68, face_landmark_68_tiny) into "
      "NAME.yaml + NAME.safetensors.  Models already converted are kept "
      "unless --force.  See docs/faces-models.md.");
  if (!ncl_cli_parse (octx, &argc, &argv, 0))
    return NCL_CLI_EXIT_FAILURE;

  if (dest == NULL)
    dest = g_build_filename (g_get_user_data_dir (), "neuralcl", "models",
        NULL);

  if (package_dir != NULL) {
    if (!g_file_test (package_dir, G_FILE_TEST_IS_DIR))
      return ncl_cli_fail ("%s: no such directory", package_dir);
    model_dir = package_model_dir (package_dir);
    source = g_strdup_printf ("face-api package at %s", package_dir);
  } else {
    g_autofree gchar *root = g_build_filename (g_get_user_cache_dir (),
        "neuralcl", NULL);
    g_autofree gchar *work = g_build_filename (root, "face-api", NULL);
    g_autofree gchar *npm_cache = g_build_filename (root, "npm", NULL);
    g_autofree gchar *tgz = NULL;
    gboolean all = TRUE;
      const gchar *tar_argv[] = { "tar", "--no-same-owner", "-xzf",
      FACE_API_TARBALL, "package/model", NULL
    };

    for (guint i = 0; names[i] != NULL; i++)
      all = all && is_up_to_date (dest, names[i], NULL);
    if (all && !force) {
      printf ("face models up to date in %s (use --force to convert them "
          "again)\n", dest);
      return NCL_CLI_EXIT_OK;
    }
    tgz = get_tarball (work, npm_cache, &error);
    if (tgz == NULL)
      return ncl_cli_fail_error (error);
    if (!run_tool (work, tar_argv, &error))
      return ncl_cli_fail_error (error);
    model_dir = g_build_filename (work, "package", "model", NULL);
    source = g_strdup (FACE_API_SPEC);
  }

  for (guint i = 0; names[i] != NULL; i++) {
    g_autofree gchar *yaml_base = g_strconcat (names[i], ".yaml", NULL);
    g_autofree gchar *yaml = g_build_filename (dest, yaml_base, NULL);

    if (!force && is_up_to_date (dest, names[i], model_dir)) {
      printf ("%s: up to date (%s)\n", names[i], yaml);
      continue;
    }
    if (!ncl_tfjs_convert_face_model (model_dir, names[i], dest, source,
            &error))
      return ncl_cli_fail_error (error);
    printf ("%s: converted (%s)\n", names[i], yaml);
    n_done++;
  }
  if (n_done > 0)
    printf ("%u face model%s written to %s\n", n_done, n_done > 1 ? "s" : "",
        dest);
  return NCL_CLI_EXIT_OK;
}

static const NclCliCommand models_actions[] = {
  {"list", "List the installed models with their paths and fingerprints",
      models_list},
  {"fetch", "Download face-api's weights and convert the face models",
      models_fetch},
  {NULL, NULL, NULL},
};

gint
ncl_cli_models (gint argc, gchar ** argv)
{
  return ncl_cli_dispatch (argv[0], "Bundled and installed models.",
      models_actions, argc, argv);
}
