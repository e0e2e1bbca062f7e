/* Face gallery: YAML parsing, enrolment through the face engine, the
 * descriptor cache, and matching.
 *
 * A gallery is a list of identities, each with photos (images) and
 * optionally extra descriptors added in code.  Parsing only checks the
 * file and that the photos exist; enrolment turns each photo into one
 * descriptor with ncl_face_engine_analyze(), the same call live frames go
 * through.  The cache is a safetensors file:
 *   __metadata__: format "neuralcl-gallery-cache", version, fingerprint
 *                 (the engine's), and "stamp:KEY" -> "size=N mtime=S.NS"
 *   "image:KEY":  F32 [128], the descriptor
 * where KEY is the image path relative to the gallery's directory.  An
 * entry is used only when the fingerprint, the version and the image's
 * stamp all match. */
#include <neuralcl/gallery.h>
#include <neuralcl/config.h>
#include <neuralcl/error.h>
#include <neuralcl/safetensors.h>
#include <neuralcl/metric.h>

#include <gio/gio.h>
#include <errno.h>
#include <math.h>
#include <string.h>

#define CACHE_FORMAT "neuralcl-gallery-cache"
#define DESC_LEN NCL_FACE_DESCRIPTOR_LEN

typedef struct
{
  gchar *path;                  /* resolved */
  gchar *key;                   /* cache key: relative to the gallery dir */
  guint line, column;           /* position in the YAML */
  gboolean enrolled;
  gfloat desc[DESC_LEN];
} GalleryImage;

typedef struct
{
  gchar *name;
  gdouble threshold;            /* < 0: the gallery's */
  GPtrArray *images;            /* GalleryImage */
  GArray *extra;                /* gfloat, DESC_LEN per added descriptor */
} Identity;

struct _NclGallery
{
  gint ref_count;
  gchar *path;                  /* as given; NULL when built in code */
  gchar *dir;                   /* absolute directory of the file */
  gdouble threshold;
  gdouble margin;
  NclGalleryVerifier verifier;
  NclVerifier *head;            /* classifier only */
  gboolean use_cache;
  GPtrArray *identities;        /* Identity */
};

static void
gallery_image_free (gpointer p)
{
  GalleryImage *im = p;

  g_free (im->path);
  g_free (im->key);
  g_free (im);
}

static void
identity_free (gpointer p)
{
  Identity *id = p;

  g_free (id->name);
  g_ptr_array_unref (id->images);
  g_array_unref (id->extra);
  g_free (id);
}

const gchar *
ncl_gallery_verifier_to_string (NclGalleryVerifier v)
{
  switch (v) {
    case NCL_GALLERY_VERIFIER_DISTANCE:
      return "distance";
    case NCL_GALLERY_VERIFIER_CLASSIFIER:
      return "classifier";
  }
  return "invalid";
}

NclGallery *
ncl_gallery_new (void)
{
  NclGallery *g = g_new0 (NclGallery, 1);

  g->ref_count = 1;
  g->threshold = NCL_GALLERY_DEFAULT_THRESHOLD;
  g->margin = NCL_GALLERY_DEFAULT_MARGIN;
  g->verifier = NCL_GALLERY_VERIFIER_DISTANCE;
  g->use_cache = TRUE;
  g->identities = g_ptr_array_new_with_free_func (identity_free);
  return g;
}

NclGallery *
ncl_gallery_ref (NclGallery * g)
{
  g_return_val_if_fail (g != NULL, NULL);
  g_atomic_int_inc (&g->ref_count);
  return g;
}

void
ncl_gallery_unref (NclGallery * g)
{
  if (g == NULL || !g_atomic_int_dec_and_test (&g->ref_count))
    return;
  g_ptr_array_unref (g->identities);
  ncl_verifier_free (g->head);
  g_free (g->dir);
  g_free (g->path);
  g_free (g);
}

static Identity *
get_identity (const NclGallery * g, gint identity)
{
  if (identity < 0 || (guint) identity >= g->identities->len)
    return NULL;
  return g->identities->pdata[identity];
}

static GalleryImage *
get_image (const NclGallery * g, gint identity, guint image)
{
  Identity *id = get_identity (g, identity);

  if (id == NULL || image >= id->images->len)
    return NULL;
  return id->images->pdata[image];
}

/* ---- building ----------------------------------------------------------- */

gint
ncl_gallery_add_identity (NclGallery * g, const gchar * name,
    gdouble threshold)
{
  Identity *id;

  g_return_val_if_fail (g != NULL, -1);
  g_return_val_if_fail (name != NULL, -1);

  id = g_new0 (Identity, 1);
  id->name = g_strdup (name);
  id->threshold = threshold;
  id->images = g_ptr_array_new_with_free_func (gallery_image_free);
  id->extra = g_array_new (FALSE, FALSE, sizeof (gfloat));
  g_ptr_array_add (g->identities, id);
  return g->identities->len - 1;
}

void
ncl_gallery_add_descriptor (NclGallery * g, gint identity,
    const gfloat * desc)
{
  Identity *id;

  g_return_if_fail (g != NULL);
  g_return_if_fail (desc != NULL);
  id = get_identity (g, identity);
  g_return_if_fail (id != NULL);
  g_array_append_vals (id->extra, desc, DESC_LEN);
}

void
ncl_gallery_set_image_descriptor (NclGallery * g, gint identity,
    guint image, const gfloat * desc)
{
  GalleryImage *im;

  g_return_if_fail (g != NULL);
  g_return_if_fail (desc != NULL);
  im = get_image (g, identity, image);
  g_return_if_fail (im != NULL);
  memcpy (im->desc, desc, sizeof (im->desc));
  im->enrolled = TRUE;
}

void
ncl_gallery_set_threshold (NclGallery * g, gdouble threshold)
{
  g_return_if_fail (g != NULL);
  g->threshold = threshold;
}

void
ncl_gallery_set_margin (NclGallery * g, gdouble margin)
{
  g_return_if_fail (g != NULL);
  g->margin = margin;
}

/* ---- parsing ------------------------------------------------------------ */

static const gchar *
node_kind (const NclYamlNode * node)
{
  switch (ncl_yaml_node_get_type (node)) {
    case NCL_YAML_MAPPING:
      return "a mapping";
    case NCL_YAML_SEQUENCE:
      return "a sequence";
    case NCL_YAML_SCALAR:
      break;
  }
  return *ncl_yaml_node_get_scalar (node) ? "a scalar" : "an empty value";
}

/* Same message as ncl_yaml_set_error(), another error code. */
static gboolean
set_error_code (const NclYamlDoc * doc, const NclYamlNode * node, gint code,
    GError ** error, const gchar * format, ...) G_GNUC_PRINTF (5, 6);

static gboolean
set_error_code (const NclYamlDoc * doc, const NclYamlNode * node, gint code,
    GError ** error, const gchar * format, ...)
{
  g_autofree gchar *msg = NULL;
  GError *tmp = NULL;
  va_list args;

  va_start (args, format);
  msg = g_strdup_vprintf (format, args);
  va_end (args);
  ncl_yaml_set_error (doc, node, &tmp, "%s", msg);
  tmp->code = code;
  g_propagate_error (error, tmp);
  return FALSE;
}

/* The key under which the cache stores @path: relative to the gallery's
 * directory when inside it, else absolute. */
static gchar *
cache_key (const gchar * dir, const gchar * path)
{
  g_autoptr (GFile) d = g_file_new_for_path (dir);
  g_autoptr (GFile) f = g_file_new_for_path (path);
  gchar *rel = g_file_get_relative_path (d, f);

  return rel != NULL ? rel : g_file_get_path (f);
}

static gboolean
parse_images (NclGallery * g, const NclYamlDoc * doc, Identity * id,
    const NclYamlNode * map, GError ** error)
{
  const NclYamlNode *list = ncl_yaml_mapping_lookup (map, "images");
  guint n;

  if (list == NULL)
    return ncl_yaml_set_error (doc, map, error, "identity '%s' has no "
        "'images' (a list of photos of the person)", id->name);
  if (ncl_yaml_node_get_type (list) != NCL_YAML_SEQUENCE)
    return ncl_yaml_set_error (doc, list, error, "expected a list of image "
        "files, found %s (write images: [photo.jpg])", node_kind (list));
  n = ncl_yaml_node_get_n_children (list);
  if (n == 0)
    return ncl_yaml_set_error (doc, list, error, "the list of images is "
        "empty: give at least one photo of '%s'", id->name);

  for (guint i = 0; i < n; i++) {
    const NclYamlNode *item = ncl_yaml_node_get_nth (list, i);
    const gchar *rel = ncl_yaml_node_get_scalar (item);
    g_autofree gchar *path = NULL;
    GalleryImage *im;

    if (rel == NULL || *rel == '\0')
      return ncl_yaml_set_error (doc, item, error, "expected an image file "
          "name, found %s", node_kind (item));
    path = ncl_yaml_doc_resolve_path (doc, rel);
    if (!g_file_test (path, G_FILE_TEST_EXISTS))
      return set_error_code (doc, item, NCL_ERROR_NOT_FOUND, error,
          "%s: no such file", path);
    if (!g_file_test (path, G_FILE_TEST_IS_REGULAR))
      return set_error_code (doc, item, NCL_ERROR_NOT_FOUND, error,
          "%s: not a regular file", path);

    im = g_new0 (GalleryImage, 1);
    im->key = cache_key (g->dir, path);
    im->path = g_steal_pointer (&path);
    im->line = ncl_yaml_node_get_line (item);
    im->column = ncl_yaml_node_get_column (item);
    g_ptr_array_add (id->images, im);
  }
  return TRUE;
}

static gboolean
parse_identity (NclGallery * g, const NclYamlDoc * doc,
    const NclYamlNode * map, GHashTable * names, GError ** error)
{
  static const gchar *const keys[] = { "name", "images", "threshold", NULL };
  const NclYamlNode *name_node;
  g_autofree gchar *name = NULL;
  gdouble threshold = -1;
  const NclYamlNode *first;
  gint index;

  if (ncl_yaml_node_get_type (map) != NCL_YAML_MAPPING)
    return ncl_yaml_set_error (doc, map, error, "expected an identity (a "
        "mapping with 'name' and 'images'), found %s", node_kind (map));
  if (!ncl_yaml_check_keys (doc, map, keys, error))
    return FALSE;

  name_node = ncl_yaml_mapping_lookup (map, "name");
  if (name_node == NULL)
    return ncl_yaml_set_error (doc, map, error, "identity without a 'name'");
  if (!ncl_yaml_get_string (doc, map, "name", &name, error))
    return FALSE;
  if (*name == '\0')
    return ncl_yaml_set_error (doc, name_node, error, "the name is empty");
  first = g_hash_table_lookup (names, name);
  if (first != NULL)
    return ncl_yaml_set_error (doc, name_node, error, "duplicate identity "
        "'%s' (first defined at line %u); give each person one entry with "
        "all their photos", name, ncl_yaml_node_get_line (first));
  g_hash_table_insert (names, g_strdup (name), (gpointer) name_node);

  if (!ncl_yaml_get_double (doc, map, "threshold", 0,
          NCL_GALLERY_MAX_DISTANCE, &threshold, error))
    return FALSE;

  index = ncl_gallery_add_identity (g, name, threshold);
  return parse_images (g, doc, g->identities->pdata[index], map, error);
}

static gboolean
parse_verifier (NclGallery * g, const NclYamlDoc * doc,
    const NclYamlNode * root, GError ** error)
{
  const NclYamlNode *node = ncl_yaml_mapping_lookup (root, "verifier");
  g_autofree gchar *value = NULL;

  if (node == NULL)
    return TRUE;
  if (!ncl_yaml_get_string (doc, root, "verifier", &value, error))
    return FALSE;
  if (strcmp (value, "distance") == 0) {
    g->verifier = NCL_GALLERY_VERIFIER_DISTANCE;
    return TRUE;
  }
  if (strcmp (value, "classifier") == 0)
    return set_error_code (doc, node, NCL_ERROR_UNSUPPORTED, error,
        "verifier 'classifier' is not supported yet (supported: distance)");
  return ncl_yaml_set_error (doc, node, error, "unknown verifier '%s' "
      "(supported: distance)", value);
}

static gboolean
parse_root (NclGallery * g, const NclYamlDoc * doc, GError ** error)
{
  static const gchar *const keys[] = { "threshold", "margin", "verifier",
    "cache", "identities", NULL
  };
  const NclYamlNode *root = ncl_yaml_doc_get_root (doc);
  const NclYamlNode *list;
  g_autoptr (GHashTable) names = NULL;
  guint n;

  if (root == NULL) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_CONFIG, "%s: the file "
        "is empty; a gallery needs 'identities' (see docs/gallery.md)",
        ncl_yaml_doc_get_path (doc));
    return FALSE;
  }
  if (ncl_yaml_node_get_type (root) != NCL_YAML_MAPPING)
    return ncl_yaml_set_error (doc, root, error, "expected a gallery (a "
        "mapping with 'identities'), found %s", node_kind (root));
  if (!ncl_yaml_check_keys (doc, root, keys, error) ||
      !ncl_yaml_get_double (doc, root, "threshold", 0,
          NCL_GALLERY_MAX_DISTANCE, &g->threshold, error) ||
      !ncl_yaml_get_double (doc, root, "margin", 0,
          NCL_GALLERY_MAX_DISTANCE, &g->margin, error) ||
      !ncl_yaml_get_bool (doc, root, "cache", &g->use_cache, error) ||
      !parse_verifier (g, doc, root, error))
    return FALSE;

  list = ncl_yaml_mapping_lookup (root, "identities");
  if (list == NULL)
    return ncl_yaml_set_error (doc, root, error, "missing 'identities' (a "
        "list of people, each with a name and images)");
  if (ncl_yaml_node_get_type (list) != NCL_YAML_SEQUENCE)
    return ncl_yaml_set_error (doc, list, error, "expected a list of "
        "identities, found %s", node_kind (list));
  n = ncl_yaml_node_get_n_children (list);
  if (n == 0)
    return ncl_yaml_set_error (doc, list, error, "the list of identities "
        "is empty");

  names = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; i < n; i++)
    if (!parse_identity (g, doc, ncl_yaml_node_get_nth (list, i), names,
            error))
      return FALSE;
  return TRUE;
}

NclGallery *
ncl_gallery_parse (const gchar * path, GError ** error)
{
  g_autoptr (NclYamlDoc) doc = NULL;
  g_autoptr (NclGallery) g = NULL;
  g_autofree gchar *dir = NULL;

  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  doc = ncl_yaml_load_file (path, error);
  if (doc == NULL)
    return NULL;
  g = ncl_gallery_new ();
  g->path = g_strdup (path);
  dir = g_path_get_dirname (path);
  g->dir = g_canonicalize_filename (dir, NULL);
  if (!parse_root (g, doc, error))
    return NULL;
  return g_steal_pointer (&g);
}

/* ---- cache -------------------------------------------------------------- */

gchar *
ncl_gallery_get_cache_path (const NclGallery * g)
{
  g_return_val_if_fail (g != NULL, NULL);
  if (g->path == NULL)
    return NULL;
  return g_strconcat (g->path, ".cache.safetensors", NULL);
}

gchar *
ncl_gallery_get_fallback_cache_path (const NclGallery * g)
{
  g_autofree gchar *abs = NULL;
  g_autofree gchar *hash = NULL;
  g_autofree gchar *file = NULL;

  g_return_val_if_fail (g != NULL, NULL);
  if (g->path == NULL)
    return NULL;
  abs = g_canonicalize_filename (g->path, NULL);
  hash = g_compute_checksum_for_string (G_CHECKSUM_SHA256, abs, -1);
  file = g_strconcat (hash, ".safetensors", NULL);
  return g_build_filename (g_get_user_cache_dir (), "neuralcl", "galleries",
      file, NULL);
}

gchar *
ncl_gallery_image_stamp (const gchar * path, GError ** error)
{
  g_autoptr (GFile) f = NULL;
  g_autoptr (GFileInfo) info = NULL;
  g_autoptr (GError) io_error = NULL;

  g_return_val_if_fail (path != NULL, NULL);
  f = g_file_new_for_path (path);
  info = g_file_query_info (f, G_FILE_ATTRIBUTE_STANDARD_SIZE ","
      G_FILE_ATTRIBUTE_TIME_MODIFIED "," G_FILE_ATTRIBUTE_TIME_MODIFIED_NSEC,
      G_FILE_QUERY_INFO_NONE, NULL, &io_error);
  if (info == NULL) {
    g_set_error (error, NCL_ERROR,
        g_error_matches (io_error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND) ?
        NCL_ERROR_NOT_FOUND : NCL_ERROR_IO, "%s: %s", path,
        io_error->message);
    return NULL;
  }
  return g_strdup_printf ("size=%" G_GOFFSET_FORMAT " mtime=%" G_GUINT64_FORMAT
      ".%09u", g_file_info_get_size (info),
      g_file_info_get_attribute_uint64 (info, G_FILE_ATTRIBUTE_TIME_MODIFIED),
      g_file_info_get_attribute_uint32 (info,
          G_FILE_ATTRIBUTE_TIME_MODIFIED_NSEC));
}

typedef struct
{
  GalleryImage *image;
  gfloat *desc;                 /* g_malloc'd */
} CacheHit;

static void
cache_hit_clear (gpointer p)
{
  g_free (((CacheHit *) p)->desc);
}

gboolean
ncl_gallery_cache_load (NclGallery * g, const gchar * path,
    const gchar * fingerprint, guint * n_loaded, GError ** error)
{
  static const gint64 shape[] = { DESC_LEN };
  g_autoptr (NclSafetensors) st = NULL;
  g_autoptr (GArray) hits = NULL;
  const gchar *format, *version, *stamped;

  g_return_val_if_fail (g != NULL, FALSE);
  g_return_val_if_fail (path != NULL, FALSE);
  g_return_val_if_fail (fingerprint != NULL, FALSE);

  if (n_loaded)
    *n_loaded = 0;
  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    return TRUE;
  st = ncl_safetensors_load (path, error);
  if (st == NULL)
    return FALSE;
  format = ncl_safetensors_get_metadata (st, "format");
  if (g_strcmp0 (format, CACHE_FORMAT) != 0) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL, "%s: not a "
        "gallery cache (format '%s', expected '%s')", path,
        format ? format : "(none)", CACHE_FORMAT);
    return FALSE;
  }
  version = ncl_safetensors_get_metadata (st, "version");
  stamped = ncl_safetensors_get_metadata (st, "fingerprint");
  if (g_strcmp0 (version, NCL_GALLERY_CACHE_VERSION) != 0 ||
      g_strcmp0 (stamped, fingerprint) != 0) {
    g_debug ("%s: made by another model, settings or version; not used",
        path);
    return TRUE;
  }

  hits = g_array_new (FALSE, FALSE, sizeof (CacheHit));
  g_array_set_clear_func (hits, cache_hit_clear);
  for (guint i = 0; i < g->identities->len; i++) {
    Identity *id = g->identities->pdata[i];

    for (guint j = 0; j < id->images->len; j++) {
      GalleryImage *im = id->images->pdata[j];
      g_autofree gchar *meta_key = NULL;
      g_autofree gchar *name = NULL;
      g_autofree gchar *stamp = NULL;
      CacheHit hit = { im, NULL };

      if (im->enrolled)
        continue;
      meta_key = g_strconcat ("stamp:", im->key, NULL);
      stamped = ncl_safetensors_get_metadata (st, meta_key);
      stamp = ncl_gallery_image_stamp (im->path, NULL);
      if (stamped == NULL || stamp == NULL || strcmp (stamped, stamp) != 0) {
        g_debug ("%s: entry for %s is %s", path, im->key,
            stamped ? "stale" : "missing");
        continue;
      }
      name = g_strconcat ("image:", im->key, NULL);
      hit.desc = ncl_safetensors_read_f32 (st, name, 1, shape, error);
      if (hit.desc == NULL)
        return FALSE;
      for (guint k = 0; k < DESC_LEN; k++) {
        if (!isfinite (hit.desc[k])) {
          g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
              "%s: tensor '%s': element %u is not finite", path, name, k);
          g_free (hit.desc);
          return FALSE;
        }
      }
      g_array_append_val (hits, hit);
    }
  }

  /* all or nothing: a malformed file fills no image */
  for (guint i = 0; i < hits->len; i++) {
    CacheHit *hit = &g_array_index (hits, CacheHit, i);

    memcpy (hit->image->desc, hit->desc, sizeof (hit->image->desc));
    hit->image->enrolled = TRUE;
  }
  if (n_loaded)
    *n_loaded = hits->len;
  g_debug ("%s: %u descriptors from the cache", path, hits->len);
  return TRUE;
}

gboolean
ncl_gallery_cache_save (const NclGallery * g, const gchar * path,
    const gchar * fingerprint, GError ** error)
{
  static const gint64 shape[] = { DESC_LEN };
  g_autoptr (NclSafetensorsWriter) w = NULL;
  g_autoptr (GHashTable) written = NULL;
  g_autofree gchar *dir = NULL;

  g_return_val_if_fail (g != NULL, FALSE);
  g_return_val_if_fail (path != NULL, FALSE);
  g_return_val_if_fail (fingerprint != NULL, FALSE);

  w = ncl_safetensors_writer_new ();
  ncl_safetensors_writer_add_metadata (w, "format", CACHE_FORMAT);
  ncl_safetensors_writer_add_metadata (w, "version",
      NCL_GALLERY_CACHE_VERSION);
  ncl_safetensors_writer_add_metadata (w, "fingerprint", fingerprint);
  written = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < g->identities->len; i++) {
    Identity *id = g->identities->pdata[i];

    for (guint j = 0; j < id->images->len; j++) {
      GalleryImage *im = id->images->pdata[j];
      g_autofree gchar *stamp = NULL;
      g_autofree gchar *meta_key = NULL;
      g_autofree gchar *name = NULL;

      /* the same photo listed twice is stored once */
      if (!im->enrolled || !g_hash_table_add (written, im->key))
        continue;
      stamp = ncl_gallery_image_stamp (im->path, NULL);
      if (stamp == NULL)
        continue;
      meta_key = g_strconcat ("stamp:", im->key, NULL);
      name = g_strconcat ("image:", im->key, NULL);
      ncl_safetensors_writer_add_metadata (w, meta_key, stamp);
      ncl_safetensors_writer_add (w, name, NCL_DTYPE_F32, 1, shape,
          im->desc);
    }
  }

  dir = g_path_get_dirname (path);
  if (g_mkdir_with_parents (dir, 0755) != 0) {
    gint e = errno;

    g_set_error (error, NCL_ERROR, NCL_ERROR_IO, "%s: cannot create the "
        "directory: %s", dir, g_strerror (e));
    return FALSE;
  }
  return ncl_safetensors_writer_write (w, path, error);
}

/* ---- enrolment ---------------------------------------------------------- */

static void
add_warning (GPtrArray * warnings, const gchar * format, ...)
    G_GNUC_PRINTF (2, 3);

static void
add_warning (GPtrArray * warnings, const gchar * format, ...)
{
  gchar *msg;
  va_list args;

  va_start (args, format);
  msg = g_strdup_vprintf (format, args);
  va_end (args);
  g_debug ("%s", msg);
  if (warnings != NULL)
    g_ptr_array_add (warnings, msg);
  else
    g_free (msg);
}

static gboolean
enrol_image (NclGallery * g, GalleryImage * im, NclFaceEngine * engine,
    GPtrArray * warnings, GError ** error)
{
  g_autoptr (NclImage) img = NULL;
  g_autoptr (GArray) faces = NULL;
  const NclFace *face;
  gint pick;

  img = ncl_image_load (im->path, error);
  if (img == NULL)
    return FALSE;
  faces = g_array_new (FALSE, TRUE, sizeof (NclFace));
  if (!ncl_face_engine_analyze (engine, img, faces, error)) {
    g_prefix_error (error, "%s: ", im->path);
    return FALSE;
  }
  pick = ncl_face_pick_main ((const NclFace *) faces->data, faces->len,
      img->width, img->height);
  if (pick < 0) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_CONFIG,
        "%s: no face found (listed at %s:%u:%u)", im->path, g->path,
        im->line, im->column);
    return FALSE;
  }
  face = &g_array_index (faces, NclFace, pick);
  if (!face->has_descriptor) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_FAILED,
        "%s: the face engine returned no descriptor", im->path);
    return FALSE;
  }
  if (faces->len > 1)
    add_warning (warnings, "%s: %u faces found, using the largest",
        im->path, faces->len);
  memcpy (im->desc, face->descriptor, sizeof (im->desc));
  im->enrolled = TRUE;
  return TRUE;
}

/* Reads what the cache files hold; returns how many files contributed. */
static guint
load_caches (NclGallery * g, const gchar * const *paths,
    const gchar * fingerprint, GPtrArray * warnings)
{
  guint n_sources = 0;

  for (guint i = 0; paths[i] && !ncl_gallery_is_enrolled (g); i++) {
    g_autoptr (GError) err = NULL;
    guint n = 0;

    if (!ncl_gallery_cache_load (g, paths[i], fingerprint, &n, &err))
      add_warning (warnings, "%s: cache ignored: %s", g->path,
          err->message);
    if (n > 0)
      n_sources++;
  }
  return n_sources;
}

static void
save_cache (NclGallery * g, const gchar * beside, const gchar * fallback,
    const gchar * fingerprint, GPtrArray * warnings)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (GError) err2 = NULL;

  if (ncl_gallery_cache_save (g, beside, fingerprint, &err))
    return;
  if (ncl_gallery_cache_save (g, fallback, fingerprint, &err2)) {
    add_warning (warnings, "%s; caching the gallery's descriptors in %s "
        "instead", err->message, fallback);
    return;
  }
  add_warning (warnings, "%s: descriptors not cached: %s; %s", g->path,
      err->message, err2->message);
}

gboolean
ncl_gallery_enrol (NclGallery * g, NclFaceEngine * engine,
    GPtrArray * warnings, GError ** error)
{
  g_autoptr (GHashTable) done = NULL;
  g_autofree gchar *beside = NULL;
  g_autofree gchar *fallback = NULL;
  const gchar *fingerprint;
  guint n_sources = 0, n_images = 0, computed = 0;
  gboolean cached;

  g_return_val_if_fail (g != NULL, FALSE);
  g_return_val_if_fail (engine != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  fingerprint = ncl_face_engine_get_fingerprint (engine);
  cached = g->use_cache && g->path != NULL && fingerprint != NULL;
  if (cached) {
    const gchar *paths[3];

    beside = ncl_gallery_get_cache_path (g);
    fallback = ncl_gallery_get_fallback_cache_path (g);
    paths[0] = beside;
    paths[1] = fallback;
    paths[2] = NULL;
    n_sources = load_caches (g, paths, fingerprint, warnings);
  }

  /* path -> the image holding its descriptor */
  done = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < g->identities->len; i++) {
    Identity *id = g->identities->pdata[i];

    for (guint j = 0; j < id->images->len; j++) {
      GalleryImage *im = id->images->pdata[j];
      GalleryImage *same = g_hash_table_lookup (done, im->path);

      n_images++;
      if (!im->enrolled && same != NULL) {
        memcpy (im->desc, same->desc, sizeof (im->desc));
        im->enrolled = TRUE;
      }
      if (!im->enrolled) {
        if (!enrol_image (g, im, engine, warnings, error))
          return FALSE;
        computed++;
      }
      g_hash_table_insert (done, im->path, im);
    }
  }

  /* rewrite unless one file already held everything */
  if (cached && (computed > 0 || n_sources > 1))
    save_cache (g, beside, fallback, fingerprint, warnings);
  g_debug ("%s: %u images, %u computed", g->path ? g->path : "gallery",
      n_images, computed);
  return TRUE;
}

NclGallery *
ncl_gallery_load (const gchar * path, NclFaceEngine * engine,
    GPtrArray * warnings, GError ** error)
{
  g_autoptr (NclGallery) g = ncl_gallery_parse (path, error);

  if (g == NULL || !ncl_gallery_enrol (g, engine, warnings, error))
    return NULL;
  return g_steal_pointer (&g);
}

/* ---- matching ----------------------------------------------------------- */

/* Smallest distance from @desc to the identity's descriptors, or
 * +infinity when it has none. */
static gfloat
identity_distance (const Identity * id, const gfloat * desc)
{
  gfloat best = INFINITY;
  guint n_extra = id->extra->len / DESC_LEN;

  for (guint j = 0; j < id->images->len; j++) {
    const GalleryImage *im = id->images->pdata[j];

    if (im->enrolled)
      best = MIN (best, ncl_face_distance (im->desc, desc));
  }
  for (guint j = 0; j < n_extra; j++)
    best = MIN (best, ncl_face_distance (&g_array_index (id->extra, gfloat,
                j * DESC_LEN), desc));
  return best;
}

/* The head's highest p(same) against any descriptor of @id. */
static gdouble
identity_probability (const NclGallery * g, const Identity * id,
    const gfloat * desc)
{
  gdouble best = 0;
  guint n_extra = id->extra->len / DESC_LEN;

  for (guint j = 0; j < id->images->len; j++) {
    const GalleryImage *im = id->images->pdata[j];

    if (im->enrolled)
      best = MAX (best, ncl_verifier_probability (g->head, im->desc, desc));
  }
  for (guint j = 0; j < n_extra; j++)
    best = MAX (best, ncl_verifier_probability (g->head,
            &g_array_index (id->extra, gfloat, j * DESC_LEN), desc));
  return best;
}

void
ncl_gallery_set_classifier (NclGallery * g, NclVerifier * head)
{
  g_return_if_fail (g != NULL);
  ncl_verifier_free (g->head);
  g->head = head;
  g->verifier = head ? NCL_GALLERY_VERIFIER_CLASSIFIER :
      NCL_GALLERY_VERIFIER_DISTANCE;
}

gboolean
ncl_gallery_match (const NclGallery * g, const gfloat * desc, NclMatch * m)
{
  g_return_val_if_fail (g != NULL, FALSE);
  g_return_val_if_fail (desc != NULL, FALSE);
  g_return_val_if_fail (m != NULL, FALSE);

  m->identity = NCL_IDENTITY_UNKNOWN;
  m->nearest = -1;
  m->distance = INFINITY;
  m->second = -1;
  m->second_distance = INFINITY;
  for (guint i = 0; i < g->identities->len; i++) {
    gfloat d = identity_distance (g->identities->pdata[i], desc);

    if (d < m->distance) {
      m->second = m->nearest;
      m->second_distance = m->distance;
      m->nearest = i;
      m->distance = d;
    } else if (d < m->second_distance) {
      m->second = i;
      m->second_distance = d;
    }
  }
  if (m->nearest < 0)
    return FALSE;

  switch (g->verifier) {
    case NCL_GALLERY_VERIFIER_DISTANCE:
      if (m->distance < ncl_gallery_get_identity_threshold (g, m->nearest) &&
          (m->second < 0 || m->second_distance - m->distance >= g->margin))
        m->identity = m->nearest;
      break;
    case NCL_GALLERY_VERIFIER_CLASSIFIER:
      if (identity_probability (g, g->identities->pdata[m->nearest], desc) >
          0.5 && (m->second < 0 ||
              m->second_distance - m->distance >= g->margin))
        m->identity = m->nearest;
      break;
  }
  return m->identity >= 0;
}

/* ---- getters ------------------------------------------------------------ */

const gchar *
ncl_gallery_get_path (const NclGallery * g)
{
  g_return_val_if_fail (g != NULL, NULL);
  return g->path;
}

guint
ncl_gallery_get_n_identities (const NclGallery * g)
{
  g_return_val_if_fail (g != NULL, 0);
  return g->identities->len;
}

const gchar *
ncl_gallery_get_name (const NclGallery * g, gint identity)
{
  Identity *id;

  g_return_val_if_fail (g != NULL, NULL);
  id = get_identity (g, identity);
  return id ? id->name : NULL;
}

gint
ncl_gallery_lookup (const NclGallery * g, const gchar * name)
{
  g_return_val_if_fail (g != NULL, -1);
  g_return_val_if_fail (name != NULL, -1);
  for (guint i = 0; i < g->identities->len; i++) {
    Identity *id = g->identities->pdata[i];

    if (strcmp (id->name, name) == 0)
      return i;
  }
  return -1;
}

gdouble
ncl_gallery_get_threshold (const NclGallery * g)
{
  g_return_val_if_fail (g != NULL, 0);
  return g->threshold;
}

gdouble
ncl_gallery_get_identity_threshold (const NclGallery * g, gint identity)
{
  Identity *id;

  g_return_val_if_fail (g != NULL, 0);
  id = get_identity (g, identity);
  if (id == NULL || id->threshold < 0)
    return g->threshold;
  return id->threshold;
}

gdouble
ncl_gallery_get_margin (const NclGallery * g)
{
  g_return_val_if_fail (g != NULL, 0);
  return g->margin;
}

NclGalleryVerifier
ncl_gallery_get_verifier (const NclGallery * g)
{
  g_return_val_if_fail (g != NULL, NCL_GALLERY_VERIFIER_DISTANCE);
  return g->verifier;
}

gboolean
ncl_gallery_get_use_cache (const NclGallery * g)
{
  g_return_val_if_fail (g != NULL, FALSE);
  return g->use_cache;
}

guint
ncl_gallery_get_n_images (const NclGallery * g, gint identity)
{
  Identity *id;

  g_return_val_if_fail (g != NULL, 0);
  id = get_identity (g, identity);
  return id ? id->images->len : 0;
}

const gchar *
ncl_gallery_get_image_path (const NclGallery * g, gint identity,
    guint image)
{
  GalleryImage *im;

  g_return_val_if_fail (g != NULL, NULL);
  im = get_image (g, identity, image);
  return im ? im->path : NULL;
}

const gfloat *
ncl_gallery_get_image_descriptor (const NclGallery * g, gint identity,
    guint image)
{
  GalleryImage *im;

  g_return_val_if_fail (g != NULL, NULL);
  im = get_image (g, identity, image);
  return im && im->enrolled ? im->desc : NULL;
}

guint
ncl_gallery_get_n_descriptors (const NclGallery * g, gint identity)
{
  Identity *id;
  guint n;

  g_return_val_if_fail (g != NULL, 0);
  id = get_identity (g, identity);
  if (id == NULL)
    return 0;
  n = id->extra->len / DESC_LEN;
  for (guint j = 0; j < id->images->len; j++)
    n += ((GalleryImage *) id->images->pdata[j])->enrolled;
  return n;
}

gboolean
ncl_gallery_is_enrolled (const NclGallery * g)
{
  g_return_val_if_fail (g != NULL, FALSE);
  for (guint i = 0; i < g->identities->len; i++) {
    Identity *id = g->identities->pdata[i];

    for (guint j = 0; j < id->images->len; j++)
      if (!((GalleryImage *) id->images->pdata[j])->enrolled)
        return FALSE;
  }
  return TRUE;
}
