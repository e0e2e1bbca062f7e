/* TensorFlow.js weights (a weights manifest and its .bin shards) and their
 * conversion into neuralcl models (docs/faces-models.md). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define NCL_TFJS_MAX_DIMS 8

typedef enum
{
  NCL_TFJS_FLOAT32,
  NCL_TFJS_INT32,
} NclTfjsDType;

/* One manifest entry, decoded. */
typedef struct
{
  gchar *name;
  NclTfjsDType dtype;
  gint ndim;
  gint64 shape[NCL_TFJS_MAX_DIMS];
  gsize n_elements;
  gboolean quantized;           /* stored as uint8: value = q * scale + min */
  gdouble scale, min;
  const gchar *file;            /* the .bin (first shard of its group) */
  gsize offset, nbytes;         /* where it lies in its group's data */
  gfloat *data;                 /* every dtype, as float32 */
  gint32 *ints;                 /* NCL_TFJS_INT32 only, else NULL */
} NclTfjsTensor;

typedef struct _NclTfjsWeights NclTfjsWeights;

/**
 * ncl_tfjs_weights_load:
 * @manifest_path: a `*-weights_manifest.json`; its shards are read from the
 *   same directory.
 *
 * Reads a manifest (a JSON array of groups {paths, weights}) and decodes
 * every tensor: float32 and int32 little-endian, or uint8-quantised
 * (computed in double, then rounded to float32, or to the nearest integer
 * for int32).  Each group's shards are one byte stream holding its tensors
 * back to back in manifest order; their sizes must add up exactly to it.
 * Returns: (transfer full): the weights, or NULL with @error naming the
 *   file and, where one is at fault, the tensor.
 */
NclTfjsWeights *ncl_tfjs_weights_load (const gchar * manifest_path,
    GError ** error);
void ncl_tfjs_weights_free (NclTfjsWeights * w);

const gchar *ncl_tfjs_weights_get_path (const NclTfjsWeights * w);
/* Tensors in manifest order. */
guint ncl_tfjs_weights_get_n_tensors (const NclTfjsWeights * w);
const NclTfjsTensor *ncl_tfjs_weights_get_nth (const NclTfjsWeights * w,
    guint i);
const NclTfjsTensor *ncl_tfjs_weights_lookup (const NclTfjsWeights * w,
    const gchar * name);
/* Total bytes of the shards. */
gsize ncl_tfjs_weights_get_n_bytes (const NclTfjsWeights * w);

/* The face-api networks the converter knows, NULL-terminated: the names of
 * include/neuralcl/face.h (face_recognition, tiny_face_detector,
 * ssd_mobilenetv1, face_landmark_68, face_landmark_68_tiny). */
const gchar *const *ncl_tfjs_face_model_names (void);

/* Path of @name's manifest in a face-api `model/` directory:
 * DIR/NAME_model-weights_manifest.json (transfer full). */
gchar *ncl_tfjs_face_manifest_path (const gchar * model_dir,
    const gchar * name);

/**
 * ncl_tfjs_convert_face_model:
 * @model_dir: face-api's `model/` directory (manifests and .bin files)
 * @name: one of ncl_tfjs_face_model_names()
 * @dest_dir: where NAME.safetensors and NAME.yaml are written (created)
 * @source: (nullable): where the weights came from, recorded in the files
 *   ("@vladmandic/face-api@1.7.15")
 *
 * Converts one network: layouts to NCHW/OIHW, scale layers folded into the
 * convs, every manifest tensor either used or listed as dropped.  The
 * result is loaded once with ncl_model_load() before returning.
 * Returns: FALSE with @error on any problem (nothing is left half-written:
 *   each file is replaced atomically, the graph last).
 */
gboolean ncl_tfjs_convert_face_model (const gchar * model_dir,
    const gchar * name, const gchar * dest_dir, const gchar * source,
    GError ** error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (NclTfjsWeights, ncl_tfjs_weights_free)

G_END_DECLS
