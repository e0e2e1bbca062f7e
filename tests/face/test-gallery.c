/* Gallery without OpenCL: a table of YAML snippets (each written as
 * gallery.yaml in a temporary directory with dummy photos) with the error
 * code and "gallery.yaml:LINE:COL" each must give; the minimal form
 * and a full form parsed exactly; matching with hand-made descriptors
 * (threshold, per-identity threshold, margin, several descriptors, empty
 * galleries); the descriptor cache used only with the same fingerprint and
 * untouched photos. */

#include "common.h"

#include <math.h>
#include <string.h>

#include <glib/gstdio.h>
#include <utime.h>

#define OK -1
#define BAD NCL_ERROR_INVALID_CONFIG
#define MISSING NCL_ERROR_NOT_FOUND
#define UNSUPPORTED NCL_ERROR_UNSUPPORTED

typedef struct
{
  const gchar *label;
  const gchar *yaml;
  gint code;
  const gchar *where;           /* "LINE:COL", or NULL for none */
  const gchar *expect;          /* substring of the message */
} GalleryCase;

/* Every snippet sees obama.jpg, biden.jpg, photos/a.jpg and a directory
 * photos/sub/. */
static const GalleryCase cases[] = {
  {"empty file", "", BAD, NULL, "the file is empty"},
  {"root is a list", "- name: A\n", BAD, "1:1", "expected a gallery"},
  {"missing identities", "threshold: 0.5\n", BAD, "1:1",
      "missing 'identities'"},
  {"identities a mapping", "identities:\n  name: A\n", BAD, "2:3",
      "expected a list of identities, found a mapping"},
  {"identities empty", "identities: []\n", BAD, "1:13",
      "list of identities is empty"},
  {"identity a scalar", "identities:\n  - Barack Obama\n", BAD, "2:5",
      "expected an identity"},
  {"identity without name", "identities:\n  - images: [obama.jpg]\n", BAD,
      "2:5", "identity without a 'name' (at identities[0])"},
  {"empty name", "identities:\n  - name: ''\n    images: [obama.jpg]\n",
      BAD, "2:11", "the name is empty"},
  {"name a list", "identities:\n  - name: [a]\n    images: [obama.jpg]\n",
      BAD, "2:11", "expected a string"},
  {"duplicate name",
        "identities:\n  - name: Joe\n    images: [obama.jpg]\n"
        "  - name: Joe\n    images: [biden.jpg]\n", BAD, "4:11",
      "duplicate identity 'Joe' (first defined at line 2)"},
  {"identity without images", "identities:\n  - name: A\n", BAD, "2:5",
      "identity 'A' has no 'images'"},
  {"images a scalar", "identities:\n  - name: A\n    images: obama.jpg\n",
      BAD, "3:13", "expected a list of image files, found a scalar"},
  {"images empty", "identities:\n  - name: A\n    images: []\n", BAD, "3:13",
      "the list of images is empty"},
  {"image empty value", "identities:\n  - name: A\n    images:\n      -\n",
      BAD, "4:8", "expected an image file name"},
  {"image a mapping", "identities:\n  - name: A\n    images: [{a: 1}]\n",
      BAD, "3:14", "expected an image file name, found a mapping"},
  {"missing image",
        "identities:\n  - name: A\n    images: [obama.jpg, nope.jpg]\n",
      MISSING, "3:25", "nope.jpg: no such file (at identities[0].images[1])"},
  {"image is a directory",
        "identities:\n  - name: A\n    images: [photos/sub]\n", MISSING,
      "3:14", "photos/sub: not a regular file"},
  {"missing image, second identity",
        "identities:\n  - name: A\n    images: [obama.jpg]\n"
        "  - name: B\n    images:\n      - photos/b.jpg\n", MISSING, "6:9",
      "photos/b.jpg: no such file"},
  {"threshold not a number",
        "threshold: high\nidentities:\n  - name: A\n    images: [obama.jpg]\n",
      BAD, "1:12", "expected a number, found 'high'"},
  {"threshold out of range",
        "threshold: 5\nidentities:\n  - name: A\n    images: [obama.jpg]\n",
      BAD, "1:12", "threshold: 5 is out of range [0, 4]"},
  {"threshold negative",
        "threshold: -0.1\nidentities:\n  - name: A\n    images: [obama.jpg]\n",
      BAD, "1:12", "out of range"},
  {"identity threshold out of range",
        "identities:\n  - name: A\n    threshold: 4.5\n"
        "    images: [obama.jpg]\n", BAD, "3:16",
      "threshold: 4.5 is out of range [0, 4] (at identities[0].threshold)"},
  {"margin not a number",
        "margin: [0.1]\nidentities:\n  - name: A\n    images: [obama.jpg]\n",
      BAD, "1:9", "expected a number, found a sequence"},
  {"cache not a boolean",
        "cache: maybe\nidentities:\n  - name: A\n    images: [obama.jpg]\n",
      BAD, "1:8", "expected a boolean"},
  {"unknown key with hint",
        "treshold: 0.5\nidentities:\n  - name: A\n    images: [obama.jpg]\n",
      BAD, "1:1", "unknown key 'treshold' (did you mean 'threshold'?)"},
  {"unknown key without hint",
        "identities:\n  - name: A\n    images: [obama.jpg]\ncolour: red\n",
      BAD, "4:1", "unknown key 'colour' (expected one of: threshold, margin, "
        "verifier, cache, identities)"},
  {"unknown identity key",
        "identities:\n  - name: A\n    image: [obama.jpg]\n", BAD, "3:5",
      "unknown key 'image' (did you mean 'images'?)"},
  {"verifier classifier",
        "verifier: classifier\nidentities:\n  - name: A\n"
        "    images: [obama.jpg]\n", UNSUPPORTED, "1:11",
      "verifier 'classifier' is not supported yet (supported: distance)"},
  {"verifier unknown",
        "verifier: cosine\nidentities:\n  - name: A\n"
        "    images: [obama.jpg]\n", BAD, "1:11", "unknown verifier 'cosine'"},
  {"verifier a list",
        "verifier: [distance]\nidentities:\n  - name: A\n"
        "    images: [obama.jpg]\n", BAD, "1:11", "expected a string"},
  {"syntax error", "identities: [\n", BAD, "2:1", "did not find expected"},
  {"tab indentation",
        "identities:\n\t- name: A\n", BAD, "2:1",
      "tabs are not allowed for indentation"},
  /* valid ones, for contrast with the above */
  {"minimal", "identities:\n  - name: A\n    images: [obama.jpg]\n", OK,
      NULL, NULL},
  {"everything",
        "threshold: 0.5\nmargin: 0\nverifier: distance\ncache: false\n"
        "identities:\n  - name: A\n    threshold: 0.4\n"
        "    images: [obama.jpg, photos/a.jpg]\n", OK, NULL, NULL},
};

static gchar *tmpdir;

static void
write_file (const gchar * rel, const gchar * text)
{
  g_autofree gchar *path = g_build_filename (tmpdir, rel, NULL);
  g_autofree gchar *dir = g_path_get_dirname (path);
  g_autoptr (GError) err = NULL;

  g_mkdir_with_parents (dir, 0755);
  if (!g_file_set_contents (path, text, -1, &err))
    g_error ("%s", err->message);
}

static gchar *
tmp_path (const gchar * rel)
{
  return g_build_filename (tmpdir, rel, NULL);
}

static void
rm_rf (const gchar * path)
{
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  const gchar *name;

  while (dir && (name = g_dir_read_name (dir))) {
    g_autofree gchar *child = g_build_filename (path, name, NULL);

    if (g_file_test (child, G_FILE_TEST_IS_DIR))
      rm_rf (child);
    else
      g_unlink (child);
  }
  g_rmdir (path);
}

static void
test_cases (void)
{
  g_autofree gchar *gallery = tmp_path ("gallery.yaml");
  g_autofree gchar *sub = tmp_path ("photos/sub");

  write_file ("obama.jpg", "not really a jpeg");
  write_file ("biden.jpg", "not really a jpeg either");
  write_file ("photos/a.jpg", "a");
  g_mkdir_with_parents (sub, 0755);

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    const GalleryCase *c = &cases[i];
    g_autoptr (GError) err = NULL;
    g_autoptr (NclGallery) g = NULL;
    g_autofree gchar *where = NULL;
    gboolean ok = TRUE;

    write_file ("gallery.yaml", c->yaml);
    g = ncl_gallery_parse (gallery, &err);
    if (c->code == OK) {
      if (g == NULL) {
        g_printerr ("%s: unexpected error: %s\n", c->label, err->message);
        ok = FALSE;
      }
    } else if (g != NULL || err == NULL) {
      g_printerr ("%s: parsed, expected an error\n", c->label);
      ok = FALSE;
    } else {
      if (!g_error_matches (err, NCL_ERROR, c->code)) {
        g_printerr ("%s: error code %d, expected %d\n", c->label, err->code,
            c->code);
        ok = FALSE;
      }
      where = c->where ? g_strdup_printf ("%s:%s: ", gallery, c->where) :
          g_strdup_printf ("%s: ", gallery);
      if (!g_str_has_prefix (err->message, where)) {
        g_printerr ("%s: message does not start with '%s'\n", c->label,
            where);
        ok = FALSE;
      }
      if (strstr (err->message, c->expect) == NULL) {
        g_printerr ("%s: message lacks '%s'\n", c->label, c->expect);
        ok = FALSE;
      }
      if (!ok)
        g_printerr ("  message: %s\n", err->message);
    }
    NCL_CHECK (ok);
  }
}

/* The minimal form, as written: one identity, one photo resolved
 * beside the file, every default. */
static void
test_minimal_form (void)
{
  static const gchar *const text =
      "threshold: 0.6\n"
      "identities:\n"
      "  - name: Barack Obama\n"
      "    images: [obama.jpg]    # relative to this file; one photo is "
      "enough\n";
  g_autofree gchar *path = tmp_path ("obama/gallery.yaml");
  g_autofree gchar *photo = tmp_path ("obama/obama.jpg");
  g_autofree gchar *cache = NULL;
  g_autofree gchar *expect_cache =
      tmp_path ("obama/gallery.yaml.cache.safetensors");
  g_autoptr (GError) err = NULL;
  g_autoptr (NclGallery) g = NULL;

  write_file ("obama/gallery.yaml", text);
  write_file ("obama/obama.jpg", "jpeg");
  g = ncl_gallery_parse (path, &err);
  NCL_CHECK_NO_ERROR (err);
  NCL_CHECK (g != NULL);
  if (g == NULL)
    return;
  NCL_CHECK (g_strcmp0 (ncl_gallery_get_path (g), path) == 0);
  NCL_CHECK (ncl_gallery_get_n_identities (g) == 1);
  NCL_CHECK (g_strcmp0 (ncl_gallery_get_name (g, 0), "Barack Obama") == 0);
  NCL_CHECK (ncl_gallery_lookup (g, "Barack Obama") == 0);
  NCL_CHECK (ncl_gallery_lookup (g, "Joe") == -1);
  NCL_CHECK (ncl_gallery_get_n_images (g, 0) == 1);
  NCL_CHECK (g_strcmp0 (ncl_gallery_get_image_path (g, 0, 0), photo) == 0);
  NCL_CHECK (ncl_gallery_get_image_descriptor (g, 0, 0) == NULL);
  NCL_CHECK (ncl_gallery_get_n_descriptors (g, 0) == 0);
  NCL_CHECK (!ncl_gallery_is_enrolled (g));
  NCL_CHECK (ncl_gallery_get_threshold (g) == 0.6);
  NCL_CHECK (ncl_gallery_get_identity_threshold (g, 0) == 0.6);
  NCL_CHECK (ncl_gallery_get_margin (g) == NCL_GALLERY_DEFAULT_MARGIN);
  NCL_CHECK (ncl_gallery_get_verifier (g) == NCL_GALLERY_VERIFIER_DISTANCE);
  NCL_CHECK (ncl_gallery_get_use_cache (g));
  cache = ncl_gallery_get_cache_path (g);
  NCL_CHECK (g_strcmp0 (cache, expect_cache) == 0);
  NCL_CHECK (ncl_gallery_get_name (g, 1) == NULL);
  NCL_CHECK (ncl_gallery_get_n_images (g, -1) == 0);
}

/* Every key, per-identity thresholds, paths in a subdirectory and
 * absolute; a relative gallery path resolves against the current
 * directory. */
static void
test_full_form (void)
{
  g_autofree gchar *abs_photo = tmp_path ("elsewhere/x.png");
  g_autofree gchar *text = NULL;
  g_autofree gchar *cwd = g_get_current_dir ();
  g_autoptr (GError) err = NULL;
  g_autoptr (NclGallery) g = NULL;
  g_autoptr (NclGallery) g2 = NULL;
  g_autofree gchar *expect = tmp_path ("full/people/a1.jpg");
  g_autofree gchar *abs_gallery = tmp_path ("full/gallery.yaml");

  write_file ("full/people/a1.jpg", "1");
  write_file ("full/people/a2.jpg", "2");
  write_file ("full/b.jpg", "3");
  write_file ("elsewhere/x.png", "4");
  text = g_strdup_printf ("# people at the door\n"
      "threshold: 0.5\n"
      "margin: 0.1\n"
      "verifier: distance\n"
      "cache: no\n"
      "identities:\n"
      "  - name: Ada Lovelace\n"
      "    threshold: 0.45\n"
      "    images:\n"
      "      - people/a1.jpg\n"
      "      - people/a2.jpg\n"
      "  - name: \"Bob\"\n"
      "    images: [b.jpg, '%s']\n", abs_photo);
  write_file ("full/gallery.yaml", text);

  g_chdir (tmpdir);
  g = ncl_gallery_parse ("full/gallery.yaml", &err);
  g_chdir (cwd);
  NCL_CHECK_NO_ERROR (err);
  NCL_CHECK (g != NULL);
  if (g == NULL)
    return;
  NCL_CHECK (ncl_gallery_get_n_identities (g) == 2);
  NCL_CHECK (g_strcmp0 (ncl_gallery_get_name (g, 1), "Bob") == 0);
  NCL_CHECK (ncl_gallery_get_threshold (g) == 0.5);
  NCL_CHECK (ncl_gallery_get_identity_threshold (g, 0) == 0.45);
  NCL_CHECK (ncl_gallery_get_identity_threshold (g, 1) == 0.5);
  NCL_CHECK (ncl_gallery_get_margin (g) == 0.1);
  NCL_CHECK (!ncl_gallery_get_use_cache (g));
  NCL_CHECK (ncl_gallery_get_n_images (g, 0) == 2);
  NCL_CHECK (ncl_gallery_get_n_images (g, 1) == 2);
  NCL_CHECK (g_strcmp0 (ncl_gallery_get_image_path (g, 0, 1),
          "full/people/a2.jpg") == 0);
  NCL_CHECK (g_strcmp0 (ncl_gallery_get_image_path (g, 1, 1),
          abs_photo) == 0);

  /* from another directory, the same file by absolute path */
  g2 = ncl_gallery_parse (abs_gallery, &err);
  NCL_CHECK_NO_ERROR (err);
  if (g2)
    NCL_CHECK (g_strcmp0 (ncl_gallery_get_image_path (g2, 0, 0),
            expect) == 0);
}

/* config/gallery.yaml, the commented example, parses once its photos
 * exist, with the values it documents. */
static void
test_example (void)
{
  g_autofree gchar *src = g_build_filename (g_getenv ("NCL_SOURCE_DIR"),
      "config", "gallery.yaml", NULL);
  g_autofree gchar *text = NULL;
  g_autofree gchar *path = tmp_path ("example/gallery.yaml");
  g_autoptr (GError) err = NULL;
  g_autoptr (NclGallery) g = NULL;

  if (!g_file_get_contents (src, &text, NULL, &err)) {
    g_printerr ("%s\n", err->message);
    NCL_CHECK (FALSE);
    return;
  }
  write_file ("example/gallery.yaml", text);
  g = ncl_gallery_parse (path, &err);
  /* the photos are the user's: without them, the first is reported */
  NCL_CHECK (g_error_matches (err, NCL_ERROR, NCL_ERROR_NOT_FOUND));
  NCL_CHECK (err && strstr (err->message, "obama.jpg: no such file"));
  g_clear_error (&err);
  write_file ("example/obama.jpg", "x");
  write_file ("example/obama2.jpg", "x");
  write_file ("example/photos/biden.jpg", "x");
  g = ncl_gallery_parse (path, &err);
  NCL_CHECK_NO_ERROR (err);
  if (g == NULL)
    return;
  NCL_CHECK (ncl_gallery_get_n_identities (g) == 2);
  NCL_CHECK (ncl_gallery_get_threshold (g) == NCL_GALLERY_DEFAULT_THRESHOLD);
  NCL_CHECK (ncl_gallery_get_margin (g) == NCL_GALLERY_DEFAULT_MARGIN);
  NCL_CHECK (ncl_gallery_get_use_cache (g));
  NCL_CHECK (ncl_gallery_get_n_images (g, 0) == 2);
  NCL_CHECK (ncl_gallery_get_identity_threshold (g, 1) == 0.55);
}

/* A missing gallery file is NOT_FOUND naming it. */
static void
test_missing_file (void)
{
  g_autofree gchar *path = tmp_path ("no-such-gallery.yaml");
  g_autoptr (GError) err = NULL;
  g_autoptr (NclGallery) g = ncl_gallery_parse (path, &err);

  NCL_CHECK (g == NULL);
  NCL_CHECK (g_error_matches (err, NCL_ERROR, NCL_ERROR_NOT_FOUND));
  NCL_CHECK (err && strstr (err->message, path) != NULL);
}

/* ---- matching ----------------------------------------------------------- */

/* A descriptor with the first three components set. */
static const gfloat *
desc3 (gfloat *buf, gfloat a, gfloat b, gfloat c)
{
  memset (buf, 0, NCL_FACE_DESCRIPTOR_LEN * sizeof (gfloat));
  buf[0] = a;
  buf[1] = b;
  buf[2] = c;
  /* the rest is common to all, so it never changes a distance */
  for (guint i = 3; i < NCL_FACE_DESCRIPTOR_LEN; i++)
    buf[i] = 0.01f * (i % 7);
  return buf;
}

static gboolean
near (gfloat a, gfloat b)
{
  return fabsf (a - b) < 1e-5f;
}

/* A at the origin, B at distance 1 along x, C without descriptors. */
static void
test_match (void)
{
  g_autoptr (NclGallery) g = ncl_gallery_new ();
  gfloat d[NCL_FACE_DESCRIPTOR_LEN];
  NclMatch m;
  gint a, b, c;

  /* empty: nobody, no distance */
  NCL_CHECK (!ncl_gallery_match (g, desc3 (d, 0, 0, 0), &m));
  NCL_CHECK (m.identity == NCL_IDENTITY_UNKNOWN && m.nearest == -1);
  NCL_CHECK (m.second == -1 && isinf (m.distance) &&
      isinf (m.second_distance));

  a = ncl_gallery_add_identity (g, "A", -1);
  b = ncl_gallery_add_identity (g, "B", -1);
  c = ncl_gallery_add_identity (g, "C", -1);
  NCL_CHECK (a == 0 && b == 1 && c == 2);
  /* identities without descriptors are never matched */
  NCL_CHECK (!ncl_gallery_match (g, desc3 (d, 0, 0, 0), &m));
  NCL_CHECK (m.nearest == -1);

  ncl_gallery_add_descriptor (g, a, desc3 (d, 0, 0, 0));
  /* one identity: no second, accepted below the threshold */
  NCL_CHECK (ncl_gallery_match (g, desc3 (d, 0.3f, 0, 0), &m));
  NCL_CHECK (m.identity == a && m.nearest == a && near (m.distance, 0.3f));
  NCL_CHECK (m.second == -1 && isinf (m.second_distance));

  ncl_gallery_add_descriptor (g, b, desc3 (d, 1, 0, 0));
  NCL_CHECK (ncl_gallery_get_n_descriptors (g, a) == 1);
  NCL_CHECK (ncl_gallery_get_n_descriptors (g, c) == 0);

  /* clear winner */
  NCL_CHECK (ncl_gallery_match (g, desc3 (d, 0.3f, 0, 0), &m));
  NCL_CHECK (m.identity == a && near (m.distance, 0.3f));
  NCL_CHECK (m.second == b && near (m.second_distance, 0.7f));
  NCL_CHECK (ncl_gallery_match (g, desc3 (d, 0.8f, 0, 0), &m));
  NCL_CHECK (m.identity == b && m.second == a);

  /* beyond the threshold (0.6): unknown, nearest still reported */
  NCL_CHECK (!ncl_gallery_match (g, desc3 (d, 0, 0.65f, 0), &m));
  NCL_CHECK (m.identity == NCL_IDENTITY_UNKNOWN && m.nearest == a);
  NCL_CHECK (near (m.distance, 0.65f));
  /* exactly at the threshold is not below it */
  ncl_gallery_set_threshold (g, 0.5);
  NCL_CHECK (!ncl_gallery_match (g, desc3 (d, 0, 0.5f, 0), &m));
  NCL_CHECK (ncl_gallery_match (g, desc3 (d, 0, 0.49f, 0), &m));
  ncl_gallery_set_threshold (g, NCL_GALLERY_DEFAULT_THRESHOLD);

  /* margin: 0.45 vs 0.55 is 0.1 apart */
  NCL_CHECK (ncl_gallery_match (g, desc3 (d, 0.45f, 0, 0), &m));
  NCL_CHECK (m.identity == a);
  ncl_gallery_set_margin (g, 0.15);
  NCL_CHECK (!ncl_gallery_match (g, desc3 (d, 0.45f, 0, 0), &m));
  NCL_CHECK (m.identity == NCL_IDENTITY_UNKNOWN && m.nearest == a);
  NCL_CHECK (near (m.second_distance - m.distance, 0.1f));
  /* 0.3 vs 0.7 still passes */
  NCL_CHECK (ncl_gallery_match (g, desc3 (d, 0.3f, 0, 0), &m));
  ncl_gallery_set_margin (g, 0);
  /* a tie passes a zero margin, to the first identity */
  NCL_CHECK (ncl_gallery_match (g, desc3 (d, 0.5f, 0.2f, 0), &m));
  NCL_CHECK (m.identity == a && near (m.distance, m.second_distance));
  ncl_gallery_set_margin (g, NCL_GALLERY_DEFAULT_MARGIN);
  NCL_CHECK (!ncl_gallery_match (g, desc3 (d, 0.5f, 0.2f, 0), &m));

  /* an identity's distance is its nearest descriptor */
  ncl_gallery_add_descriptor (g, a, desc3 (d, 0, 0, 2));
  NCL_CHECK (ncl_gallery_get_n_descriptors (g, a) == 2);
  NCL_CHECK (ncl_gallery_match (g, desc3 (d, 0, 0, 1.8f), &m));
  NCL_CHECK (m.identity == a && near (m.distance, 0.2f));
}

/* Per-identity thresholds, looser and stricter than the gallery's. */
static void
test_match_identity_threshold (void)
{
  g_autoptr (NclGallery) g = ncl_gallery_new ();
  gfloat d[NCL_FACE_DESCRIPTOR_LEN];
  NclMatch m;
  gint loose = ncl_gallery_add_identity (g, "loose", 0.7);
  gint strict = ncl_gallery_add_identity (g, "strict", 0.2);

  ncl_gallery_add_descriptor (g, loose, desc3 (d, 0, 0, 0));
  ncl_gallery_add_descriptor (g, strict, desc3 (d, 2, 0, 0));
  NCL_CHECK (ncl_gallery_get_identity_threshold (g, loose) == 0.7);
  NCL_CHECK (ncl_gallery_get_identity_threshold (g, strict) == 0.2);

  /* 0.65 from loose: above the global 0.6, below its own 0.7 */
  NCL_CHECK (ncl_gallery_match (g, desc3 (d, 0, 0.65f, 0), &m));
  NCL_CHECK (m.identity == loose);
  NCL_CHECK (!ncl_gallery_match (g, desc3 (d, 0, 0.75f, 0), &m));
  /* 0.25 from strict: below the global, above its own */
  NCL_CHECK (!ncl_gallery_match (g, desc3 (d, 2, 0.25f, 0), &m));
  NCL_CHECK (m.nearest == strict && m.identity == NCL_IDENTITY_UNKNOWN);
  NCL_CHECK (ncl_gallery_match (g, desc3 (d, 2, 0.15f, 0), &m));
  NCL_CHECK (m.identity == strict);
}

/* Descriptors on a parsed gallery's images count for matching. */
static void
test_match_parsed (void)
{
  g_autofree gchar *path = tmp_path ("obama/gallery.yaml");
  g_autoptr (GError) err = NULL;
  g_autoptr (NclGallery) g = ncl_gallery_parse (path, &err);
  gfloat d[NCL_FACE_DESCRIPTOR_LEN];
  NclMatch m;

  NCL_CHECK_NO_ERROR (err);
  if (g == NULL)
    return;
  NCL_CHECK (!ncl_gallery_match (g, desc3 (d, 0, 0, 0), &m));
  ncl_gallery_set_image_descriptor (g, 0, 0, desc3 (d, 1, 1, 0));
  NCL_CHECK (ncl_gallery_is_enrolled (g));
  NCL_CHECK (ncl_gallery_match (g, desc3 (d, 1, 1, 0.1f), &m));
  NCL_CHECK (m.identity == 0 && near (m.distance, 0.1f));
  NCL_CHECK (near (ncl_gallery_get_image_descriptor (g, 0, 0)[1], 1));
}

/* ---- cache -------------------------------------------------------------- */

static void
fill_descriptors (NclGallery * g)
{
  for (guint i = 0; i < ncl_gallery_get_n_identities (g); i++) {
    for (guint j = 0; j < ncl_gallery_get_n_images (g, i); j++) {
      gfloat d[NCL_FACE_DESCRIPTOR_LEN];

      /* one photo, one descriptor, wherever it is listed */
      ncl_test_fill_random (d, NCL_FACE_DESCRIPTOR_LEN,
          g_str_hash (ncl_gallery_get_image_path (g, i, j)), -0.2f, 0.2f);
      ncl_gallery_set_image_descriptor (g, i, j, d);
    }
  }
}

/* How many images of a fresh parse the cache fills; -1 on error. */
static gint
load_count (const gchar * gallery, const gchar * cache, const gchar * fp,
    NclGallery ** out)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (NclGallery) g = ncl_gallery_parse (gallery, &err);
  guint n = 12345;

  NCL_CHECK_NO_ERROR (err);
  if (g == NULL)
    return -1;
  if (!ncl_gallery_cache_load (g, cache, fp, &n, &err)) {
    NCL_CHECK (n == 0);
    g_printerr ("(expected) cache error: %s\n", err->message);
    return -1;
  }
  if (out)
    *out = g_steal_pointer (&g);
  return n;
}

static void
test_cache (void)
{
  g_autofree gchar *gallery = tmp_path ("cached/gallery.yaml");
  g_autofree gchar *cache = NULL;
  g_autofree gchar *fallback = NULL;
  g_autofree gchar *b_path = tmp_path ("cached/b.jpg");
  g_autofree gchar *c_path = tmp_path ("cached/people/c.jpg");
  g_autofree gchar *stamp0 = NULL;
  g_autofree gchar *stamp1 = NULL;
  g_autofree gchar *xdg = NULL;
  g_autoptr (GError) err = NULL;
  g_autoptr (NclGallery) g = NULL;
  NclGallery *g2 = NULL;
  GStatBuf st;

  write_file ("cached/a.jpg", "aaaa");
  write_file ("cached/b.jpg", "bbbb");
  write_file ("cached/people/c.jpg", "cccc");
  /* a.jpg listed twice: stored once, loaded for both */
  write_file ("cached/gallery.yaml", "identities:\n"
      "  - name: A\n    images: [a.jpg, b.jpg]\n"
      "  - name: C\n    images: [people/c.jpg, a.jpg]\n");

  g = ncl_gallery_parse (gallery, &err);
  NCL_CHECK_NO_ERROR (err);
  if (g == NULL)
    return;
  cache = ncl_gallery_get_cache_path (g);
  fallback = ncl_gallery_get_fallback_cache_path (g);
  xdg = g_build_filename (g_get_user_cache_dir (), "neuralcl", "galleries",
      NULL);
  NCL_CHECK (g_str_has_prefix (fallback, xdg));
  NCL_CHECK (g_str_has_suffix (fallback, ".safetensors"));

  /* nothing there yet */
  NCL_CHECK (load_count (gallery, cache, "fp1", NULL) == 0);

  fill_descriptors (g);
  NCL_CHECK (ncl_gallery_cache_save (g, cache, "fp1", &err));
  NCL_CHECK_NO_ERROR (err);

  /* same fingerprint, untouched photos: every image, same values */
  NCL_CHECK (load_count (gallery, cache, "fp1", &g2) == 4);
  if (g2) {
    NCL_CHECK (ncl_gallery_is_enrolled (g2));
    for (guint i = 0; i < 2; i++)
      for (guint j = 0; j < 2; j++)
        NCL_CHECK (ncl_test_compare ("cached descriptor",
                ncl_gallery_get_image_descriptor (g2, i, j),
                ncl_gallery_get_image_descriptor (g, i, j),
                NCL_FACE_DESCRIPTOR_LEN, 0, 0));
    g_clear_pointer (&g2, ncl_gallery_unref);
  }

  /* another model or settings: nothing */
  NCL_CHECK (load_count (gallery, cache, "fp2", &g2) == 0);
  if (g2) {
    NCL_CHECK (!ncl_gallery_is_enrolled (g2));
    g_clear_pointer (&g2, ncl_gallery_unref);
  }

  /* b.jpg touched (same size, other mtime): it alone is recomputed */
  stamp0 = ncl_gallery_image_stamp (b_path, &err);
  NCL_CHECK_NO_ERROR (err);
  NCL_CHECK (stamp0 && g_str_has_prefix (stamp0, "size=4 mtime="));
  NCL_CHECK (g_stat (b_path, &st) == 0);
  {
    struct utimbuf times = { st.st_atime, st.st_mtime - 100 };

    NCL_CHECK (g_utime (b_path, &times) == 0);
  }
  stamp1 = ncl_gallery_image_stamp (b_path, NULL);
  NCL_CHECK (g_strcmp0 (stamp0, stamp1) != 0);
  NCL_CHECK (load_count (gallery, cache, "fp1", &g2) == 3);
  if (g2) {
    NCL_CHECK (ncl_gallery_get_image_descriptor (g2, 0, 1) == NULL);
    NCL_CHECK (ncl_gallery_get_image_descriptor (g2, 0, 0) != NULL);
    NCL_CHECK (ncl_gallery_get_image_descriptor (g2, 1, 1) != NULL);
    g_clear_pointer (&g2, ncl_gallery_unref);
  }

  /* c.jpg rewritten with another size: recomputed too */
  write_file ("cached/people/c.jpg", "ccccc");
  NCL_CHECK (load_count (gallery, cache, "fp1", NULL) == 2);

  /* rewritten after recomputation: everything again */
  NCL_CHECK (ncl_gallery_cache_save (g, cache, "fp1", &err));
  NCL_CHECK (load_count (gallery, cache, "fp1", NULL) == 4);

  /* images that have a descriptor are left alone */
  g2 = ncl_gallery_parse (gallery, &err);
  if (g2) {
    guint n = 99;
    gfloat d[NCL_FACE_DESCRIPTOR_LEN];

    ncl_gallery_set_image_descriptor (g2, 1, 0, desc3 (d, 5, 5, 5));
    NCL_CHECK (ncl_gallery_cache_load (g2, cache, "fp1", &n, &err));
    NCL_CHECK (n == 3);
    NCL_CHECK (ncl_gallery_get_image_descriptor (g2, 1, 0)[0] == 5);
    g_clear_pointer (&g2, ncl_gallery_unref);
  }

  /* a cache in a new directory (the XDG fallback) */
  NCL_CHECK (ncl_gallery_cache_save (g, fallback, "fp1", &err));
  NCL_CHECK_NO_ERROR (err);
  NCL_CHECK (load_count (gallery, fallback, "fp1", NULL) == 4);
  g_unlink (fallback);
}

/* Caches that are not ours or are broken: errors naming the file; an old
 * cache version: not used. */
static void
test_cache_errors (void)
{
  static const gint64 shape[] = { NCL_FACE_DESCRIPTOR_LEN };
  g_autofree gchar *gallery = tmp_path ("cached/gallery.yaml");
  g_autofree gchar *cache = tmp_path ("cached/other.safetensors");
  gfloat d[NCL_FACE_DESCRIPTOR_LEN];
  g_autoptr (GError) err = NULL;
  g_autoptr (NclGallery) g = ncl_gallery_parse (gallery, &err);
  g_autofree gchar *stamp = NULL;
  NclSafetensorsWriter *w;
  guint n = 7;

  NCL_CHECK_NO_ERROR (err);
  if (g == NULL)
    return;

  write_file ("cached/other.safetensors", "garbage, not safetensors");
  NCL_CHECK (!ncl_gallery_cache_load (g, cache, "fp1", &n, &err));
  NCL_CHECK (n == 0);
  NCL_CHECK (err && strstr (err->message, cache) != NULL);
  g_clear_error (&err);

  /* a valid safetensors file without our format */
  w = ncl_safetensors_writer_new ();
  ncl_safetensors_writer_add (w, "x", NCL_DTYPE_F32, 1, shape,
      desc3 (d, 0, 0, 0));
  NCL_CHECK (ncl_safetensors_writer_write (w, cache, NULL));
  ncl_safetensors_writer_free (w);
  NCL_CHECK (!ncl_gallery_cache_load (g, cache, "fp1", &n, &err));
  NCL_CHECK (err && strstr (err->message, "not a gallery cache") != NULL);
  g_clear_error (&err);

  /* another cache version, otherwise matching: not used */
  stamp = ncl_gallery_image_stamp (ncl_gallery_get_image_path (g, 0, 0),
      NULL);
  w = ncl_safetensors_writer_new ();
  ncl_safetensors_writer_add_metadata (w, "format", "neuralcl-gallery-cache");
  ncl_safetensors_writer_add_metadata (w, "version", "0");
  ncl_safetensors_writer_add_metadata (w, "fingerprint", "fp1");
  ncl_safetensors_writer_add_metadata (w, "stamp:a.jpg", stamp);
  ncl_safetensors_writer_add (w, "image:a.jpg", NCL_DTYPE_F32, 1, shape,
      desc3 (d, 0, 0, 0));
  NCL_CHECK (ncl_safetensors_writer_write (w, cache, NULL));
  ncl_safetensors_writer_free (w);
  NCL_CHECK (ncl_gallery_cache_load (g, cache, "fp1", &n, &err));
  NCL_CHECK_NO_ERROR (err);
  NCL_CHECK (n == 0);

  /* the right version: the same entry is used (proves the layout) */
  w = ncl_safetensors_writer_new ();
  ncl_safetensors_writer_add_metadata (w, "format", "neuralcl-gallery-cache");
  ncl_safetensors_writer_add_metadata (w, "version",
      NCL_GALLERY_CACHE_VERSION);
  ncl_safetensors_writer_add_metadata (w, "fingerprint", "fp1");
  ncl_safetensors_writer_add_metadata (w, "stamp:a.jpg", stamp);
  ncl_safetensors_writer_add (w, "image:a.jpg", NCL_DTYPE_F32, 1, shape,
      desc3 (d, 0, 0, 0));
  NCL_CHECK (ncl_safetensors_writer_write (w, cache, NULL));
  ncl_safetensors_writer_free (w);
  NCL_CHECK (ncl_gallery_cache_load (g, cache, "fp1", &n, &err));
  NCL_CHECK (n == 2);

  /* a wrong shape is an error naming the tensor; nothing is filled */
  g_clear_pointer (&g, ncl_gallery_unref);
  g = ncl_gallery_parse (gallery, NULL);
  w = ncl_safetensors_writer_new ();
  ncl_safetensors_writer_add_metadata (w, "format", "neuralcl-gallery-cache");
  ncl_safetensors_writer_add_metadata (w, "version",
      NCL_GALLERY_CACHE_VERSION);
  ncl_safetensors_writer_add_metadata (w, "fingerprint", "fp1");
  ncl_safetensors_writer_add_metadata (w, "stamp:a.jpg", stamp);
  {
    static const gint64 short_shape[] = { 64 };

    ncl_safetensors_writer_add (w, "image:a.jpg", NCL_DTYPE_F32, 1,
        short_shape, desc3 (d, 0, 0, 0));
  }
  NCL_CHECK (ncl_safetensors_writer_write (w, cache, NULL));
  ncl_safetensors_writer_free (w);
  NCL_CHECK (g != NULL);
  if (g) {
    NCL_CHECK (!ncl_gallery_cache_load (g, cache, "fp1", &n, &err));
    NCL_CHECK (err && strstr (err->message, "image:a.jpg") != NULL);
    NCL_CHECK (ncl_gallery_get_n_descriptors (g, 0) == 0);
  }
}

/* Refcounting: the last unref frees (run under valgrind/ASan to see). */
static void
test_ref (void)
{
  NclGallery *g = ncl_gallery_new ();

  NCL_CHECK (ncl_gallery_ref (g) == g);
  ncl_gallery_unref (g);
  NCL_CHECK (ncl_gallery_get_n_identities (g) == 0);
  ncl_gallery_unref (g);
  ncl_gallery_unref (NULL);
}

int
main (void)
{
  g_autoptr (GError) err = NULL;

  tmpdir = g_dir_make_tmp ("ncl-gallery-XXXXXX", &err);
  g_assert_no_error (err);

  test_cases ();
  test_minimal_form ();
  test_full_form ();
  test_example ();
  test_missing_file ();
  test_match ();
  test_match_identity_threshold ();
  test_match_parsed ();
  test_cache ();
  test_cache_errors ();
  test_ref ();

  rm_rf (tmpdir);
  g_free (tmpdir);
  return ncl_test_finish ();
}
