/* Face gallery: the people to recognise, read from a YAML file with one or
 * more photos each, enrolled with the face engine (descriptors cached
 * beside the file) and matched by Euclidean distance (docs/gallery.md). */
#pragma once

#include <neuralcl/face.h>

G_BEGIN_DECLS

/* Identity index of a face that matches nobody. */
#define NCL_IDENTITY_UNKNOWN (-1)

#define NCL_GALLERY_DEFAULT_THRESHOLD 0.6
#define NCL_GALLERY_DEFAULT_MARGIN 0.05
/* Upper bound of threshold and margin in the YAML. */
#define NCL_GALLERY_MAX_DISTANCE 4.0

/* Bumped whenever enrolment would compute other descriptors from the same
 * engine (it is part of every cache's stamp). */
#define NCL_GALLERY_CACHE_VERSION "1"

/**
 * NclGalleryVerifier:
 * @NCL_GALLERY_VERIFIER_DISTANCE: accept the nearest identity when its
 *   distance is below the threshold and beats the second by the margin
 *
 * @NCL_GALLERY_VERIFIER_CLASSIFIER: accept the nearest identity when the
 *   learned head (metric.h) gives p(same) > 0.5 against one of its
 *   descriptors and it beats the second by the margin; set with
 *   ncl_gallery_set_classifier() ("verifier: classifier" in a face config)
 *
 * How a nearest identity is accepted ("verifier:" in the YAML).
 */
typedef enum
{
  NCL_GALLERY_VERIFIER_DISTANCE,
  NCL_GALLERY_VERIFIER_CLASSIFIER,
} NclGalleryVerifier;

typedef struct _NclVerifier NclVerifier;

const gchar *ncl_gallery_verifier_to_string (NclGalleryVerifier v);

/**
 * NclMatch:
 * @identity: the accepted identity, or %NCL_IDENTITY_UNKNOWN
 * @nearest: the nearest identity whether accepted or not (-1 when the
 *   gallery has no descriptor at all)
 * @distance: distance to @nearest (+infinity when there is none)
 * @second: the second nearest identity, or -1
 * @second_distance: distance to @second (+infinity when there is none)
 *
 * The distance to an identity is the smallest distance to any of its
 * descriptors.
 */
typedef struct
{
  gint identity;
  gint nearest;
  gfloat distance;
  gint second;
  gfloat second_distance;
} NclMatch;

/* Refcounted; after enrolment a gallery is only read, so one thread can
 * swap in a new one while others still match against the old. */
typedef struct _NclGallery NclGallery;

/* An empty gallery without a file (no cache): for tools and tests, filled
 * with ncl_gallery_add_identity() and ncl_gallery_add_descriptor().
 * (transfer full) */
NclGallery *ncl_gallery_new (void);
NclGallery *ncl_gallery_ref (NclGallery * g);
void ncl_gallery_unref (NclGallery * g);

/**
 * ncl_gallery_parse:
 *
 * Reads a gallery YAML without enrolling anything (no OpenCL needed):
 * keys threshold, margin, verifier, cache, identities (a list of name,
 * images, threshold).  Image paths resolve against the file's directory
 * and must exist.  Errors are "FILE:LINE:COL: message (at key.path)":
 * NCL_ERROR_INVALID_CONFIG for a malformed file or value,
 * NCL_ERROR_NOT_FOUND for a missing gallery or image file,
 * NCL_ERROR_UNSUPPORTED for a verifier this build does not have.
 * Returns: (transfer full): the gallery, or NULL with @error set.
 */
NclGallery *ncl_gallery_parse (const gchar * path, GError ** error);

/**
 * ncl_gallery_enrol:
 * @warnings: (element-type utf8) (nullable): messages appended (g_strdup'd;
 *   make the array with g_free as its free function)
 *
 * Computes a descriptor for every image that has none, with the same
 * ncl_face_engine_analyze() as live matching, and picks the face
 * ncl_face_pick_main() picks.  An image without a face is an error
 * "IMAGE: no face found (listed at GALLERY:LINE:COL)"; several faces add a
 * warning "IMAGE: N faces found, using the largest".  With "cache: true"
 * (the default), descriptors are first read from the cache
 * (ncl_gallery_get_cache_path(), then ncl_gallery_get_fallback_cache_path())
 * where its fingerprint and the image's size and mtime still match, and the
 * cache is rewritten when anything was computed; a cache that cannot be
 * read or written is a warning.  Uses @engine: call it from the thread
 * that owns the engine.
 */
gboolean ncl_gallery_enrol (NclGallery * g, NclFaceEngine * engine,
    GPtrArray * warnings, GError ** error);

/* ncl_gallery_parse() + ncl_gallery_enrol(). (transfer full) */
NclGallery *ncl_gallery_load (const gchar * path, NclFaceEngine * engine,
    GPtrArray * warnings, GError ** error);

/* Building and filling (only before the gallery is shared). */
/* Appends an identity (threshold < 0: the gallery's); returns its index. */
gint ncl_gallery_add_identity (NclGallery * g, const gchar * name,
    gdouble threshold);
/* Adds one more descriptor (NCL_FACE_DESCRIPTOR_LEN floats, copied) to
 * identity @identity; not written to the cache. */
void ncl_gallery_add_descriptor (NclGallery * g, gint identity,
    const gfloat * desc);
/* Sets the descriptor of image @image of identity @identity, as enrolment
 * does. */
void ncl_gallery_set_image_descriptor (NclGallery * g, gint identity,
    guint image, const gfloat * desc);
void ncl_gallery_set_threshold (NclGallery * g, gdouble threshold);
/* Decides with @head (transfer full) instead of the threshold; NULL goes
 * back to the distance rule. */
void ncl_gallery_set_classifier (NclGallery * g, NclVerifier * head);
void ncl_gallery_set_margin (NclGallery * g, gdouble margin);

/**
 * ncl_gallery_match:
 * @desc: a descriptor (NCL_FACE_DESCRIPTOR_LEN floats)
 *
 * Finds the nearest and second nearest identities.  The nearest is
 * accepted when its distance is below its threshold (its own, else the
 * gallery's) and the second nearest is at least the margin further away
 * (or there is no second).
 * Returns: TRUE when an identity was accepted (@m->identity >= 0).
 */
gboolean ncl_gallery_match (const NclGallery * g, const gfloat * desc,
    NclMatch * m);

/* Getters (borrowed). */
/* The YAML file as given to ncl_gallery_parse(), or NULL. */
const gchar *ncl_gallery_get_path (const NclGallery * g);
guint ncl_gallery_get_n_identities (const NclGallery * g);
const gchar *ncl_gallery_get_name (const NclGallery * g, gint identity);
/* Index of the identity called @name, or -1. */
gint ncl_gallery_lookup (const NclGallery * g, const gchar * name);
/* The global threshold, and the one that applies to @identity. */
gdouble ncl_gallery_get_threshold (const NclGallery * g);
gdouble ncl_gallery_get_identity_threshold (const NclGallery * g,
    gint identity);
gdouble ncl_gallery_get_margin (const NclGallery * g);
NclGalleryVerifier ncl_gallery_get_verifier (const NclGallery * g);
gboolean ncl_gallery_get_use_cache (const NclGallery * g);
guint ncl_gallery_get_n_images (const NclGallery * g, gint identity);
/* Resolved path of an image (relative paths resolved against the
 * gallery's directory). */
const gchar *ncl_gallery_get_image_path (const NclGallery * g,
    gint identity, guint image);
/* The image's descriptor, or NULL while it is not enrolled. */
const gfloat *ncl_gallery_get_image_descriptor (const NclGallery * g,
    gint identity, guint image);
/* Enrolled images plus added descriptors. */
guint ncl_gallery_get_n_descriptors (const NclGallery * g, gint identity);
/* TRUE when every image has a descriptor. */
gboolean ncl_gallery_is_enrolled (const NclGallery * g);

/* The descriptor cache (see docs/gallery.md for the file layout). */
/* GALLERY.cache.safetensors beside the YAML file. (transfer full) */
gchar *ncl_gallery_get_cache_path (const NclGallery * g);
/* $XDG_CACHE_HOME/neuralcl/galleries/SHA256-OF-THE-PATH.safetensors, used
 * when the gallery's directory is not writable. (transfer full) */
gchar *ncl_gallery_get_fallback_cache_path (const NclGallery * g);
/* What the cache records about an image file: "size=N mtime=SEC.NSEC".
 * (transfer full) */
gchar *ncl_gallery_image_stamp (const gchar * path, GError ** error);

/**
 * ncl_gallery_cache_load:
 * @n_loaded: (out) (optional): how many images got their descriptor
 *
 * Fills the images that have no descriptor from the cache file @path when
 * it was written with @fingerprint and this cache version, and only those
 * whose stamp (ncl_gallery_image_stamp()) still matches.  A missing file
 * or another fingerprint loads nothing and is no error.
 * Returns: FALSE with @error when the file exists but is unreadable or
 *   malformed.
 */
gboolean ncl_gallery_cache_load (NclGallery * g, const gchar * path,
    const gchar * fingerprint, guint * n_loaded, GError ** error);
/* Writes the descriptors of all enrolled images to @path, stamped with
 * @fingerprint (creating the directory). */
gboolean ncl_gallery_cache_save (const NclGallery * g, const gchar * path,
    const gchar * fingerprint, GError ** error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (NclGallery, ncl_gallery_unref)

G_END_DECLS
