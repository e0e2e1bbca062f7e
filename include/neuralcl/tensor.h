/* Tensors: NCHW float32 buffers on the device. */
#pragma once

#include <neuralcl/context.h>

G_BEGIN_DECLS

/* Every device buffer is allocated this many floats larger than it needs
 * and zero-filled, so vector kernels may over-read the last row. */
#define NCL_TENSOR_SLACK 64

typedef struct
{
  NclContext *ctx;              /* owned reference */
  cl_mem buf;                   /* (n, c, h, w) float32, plus slack */
  gint n, c, h, w;
  gsize capacity;               /* floats allocated, without the slack */
} NclTensor;

/* Allocates an (n, c, h, w) tensor, zero-filled. */
NclTensor *ncl_tensor_new (NclContext * ctx, gint n, gint c, gint h, gint w,
    GError ** error);
void ncl_tensor_free (NclTensor * t);

/* Changes the shape; reallocates only when the buffer is too small. */
gboolean ncl_tensor_reshape (NclTensor * t, gint n, gint c, gint h, gint w,
    GError ** error);

static inline gsize
ncl_tensor_numel (const NclTensor * t)
{
  return (gsize) t->n * t->c * t->h * t->w;
}

/* Host <-> device copies of ncl_tensor_numel() floats (blocking). */
/* Sets every value of @t (its current shape) to zero, on the queue. */
gboolean ncl_tensor_zero (NclTensor * t, GError ** error);
gboolean ncl_tensor_upload (NclTensor * t, const gfloat * data,
    GError ** error);
gboolean ncl_tensor_download (const NclTensor * t, gfloat * data,
    GError ** error);

/* Creates a read-only device buffer holding @n floats from @data. */
cl_mem ncl_buffer_from_host (NclContext * ctx, const gfloat * data, gsize n,
    GError ** error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (NclTensor, ncl_tensor_free)

G_END_DECLS
