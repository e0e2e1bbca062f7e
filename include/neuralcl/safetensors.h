/* safetensors reader (validating) and writer. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum
{
  NCL_DTYPE_F32,
  NCL_DTYPE_F16,
  NCL_DTYPE_U8,
  NCL_DTYPE_I32,
  NCL_DTYPE_I64,
} NclDType;

#define NCL_SAFETENSOR_MAX_DIMS 8

typedef struct
{
  gchar *name;
  NclDType dtype;
  gint ndim;
  gint64 shape[NCL_SAFETENSOR_MAX_DIMS];
  gsize offset;                 /* from the start of the data section */
  gsize nbytes;
} NclSafetensor;

typedef struct _NclSafetensors NclSafetensors;

const gchar *ncl_dtype_to_string (NclDType dtype);
gsize ncl_dtype_size (NclDType dtype);

/**
 * ncl_safetensors_load:
 *
 * Maps @path and validates it completely: header length against the file
 * size, JSON syntax, every dtype, shape and data_offsets pair (in range, not
 * overlapping, matching dtype size x element count).
 * Returns: (transfer full): the file, or NULL with @error naming the file
 *   and, where one is at fault, the tensor (NCL_ERROR_INVALID_MODEL,
 *   NCL_ERROR_NOT_FOUND or NCL_ERROR_IO).
 */
NclSafetensors *ncl_safetensors_load (const gchar * path, GError ** error);
void ncl_safetensors_free (NclSafetensors * st);

const gchar *ncl_safetensors_get_path (const NclSafetensors * st);
guint ncl_safetensors_get_n_tensors (const NclSafetensors * st);
/* Tensors in file order (by offset). */
const NclSafetensor *ncl_safetensors_get_nth (const NclSafetensors * st,
    guint i);
const NclSafetensor *ncl_safetensors_lookup (const NclSafetensors * st,
    const gchar * name);
/* Value of a __metadata__ entry, or NULL. */
const gchar *ncl_safetensors_get_metadata (const NclSafetensors * st,
    const gchar * key);
const guint8 *ncl_safetensors_get_data (const NclSafetensors * st,
    const NclSafetensor * t);
/* SHA-256 of the whole file, hex. */
const gchar *ncl_safetensors_get_checksum (const NclSafetensors * st);

/**
 * ncl_safetensors_read_f32:
 * @shape: (nullable): expected shape, or NULL to accept any
 *
 * Reads tensor @name as float32 (F16 is widened).
 * Returns: (transfer full): g_malloc'd array of the element count, or NULL
 *   with @error ("FILE: tensor 'NAME': missing", "... shape [3, 4], expected
 *   [3, 5]", "... dtype I64, expected F32 or F16").
 */
gfloat *ncl_safetensors_read_f32 (const NclSafetensors * st,
    const gchar * name, gint ndim, const gint64 * shape, GError ** error);

/* Writer: collects tensors in memory, writes the file at once. */
typedef struct _NclSafetensorsWriter NclSafetensorsWriter;
NclSafetensorsWriter *ncl_safetensors_writer_new (void);
void ncl_safetensors_writer_free (NclSafetensorsWriter * w);
void ncl_safetensors_writer_add_metadata (NclSafetensorsWriter * w,
    const gchar * key, const gchar * value);
/* Copies @data; @dtype F16 converts from the float data given. */
void ncl_safetensors_writer_add (NclSafetensorsWriter * w, const gchar * name,
    NclDType dtype, gint ndim, const gint64 * shape, const gfloat * data);
gboolean ncl_safetensors_writer_write (NclSafetensorsWriter * w,
    const gchar * path, GError ** error);

/* IEEE half <-> float */
gfloat ncl_half_to_float (guint16 h);
guint16 ncl_float_to_half (gfloat f);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (NclSafetensors, ncl_safetensors_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (NclSafetensorsWriter, ncl_safetensors_writer_free)

G_END_DECLS
