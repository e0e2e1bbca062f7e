/* pad: padding + nearest upsampling + cropping (kernels/pad.cl). */
#include <neuralcl/layers.h>
#include <neuralcl/error.h>

#include <stdlib.h>

static gint
pad_map (gint i, gint size, NclPadMode mode)
{
  gint period;

  if (i >= 0 && i < size)
    return i;
  if (mode == NCL_PAD_ZERO)
    return -1;
  if (mode == NCL_PAD_EDGE || size == 1)
    return CLAMP (i, 0, size - 1);
  period = 2 * (size - 1);
  i = abs (i) % period;
  return i < size ? i : period - i;
}

void
ncl_pad_forward_ref (const gfloat * in, gint n, gint c, gint h, gint w,
    gint scale, const NclPadding * pad, gfloat * out)
{
  gint oh = h * scale + pad->top + pad->bottom;
  gint ow = w * scale + pad->left + pad->right;

  for (gint p = 0; p < n * c; p++)
    for (gint y = 0; y < oh; y++) {
      gint sy = pad_map (y - pad->top, h * scale, pad->mode);
      for (gint x = 0; x < ow; x++) {
        gint sx = pad_map (x - pad->left, w * scale, pad->mode);
        gfloat v = 0.0f;

        if (sy >= 0 && sx >= 0)
          v = in[((gsize) p * h + sy / scale) * w + sx / scale];
        out[((gsize) p * oh + y) * ow + x] = v;
      }
    }
}

gboolean
ncl_pad_forward (NclContext * ctx, const NclTensor * in, gint scale,
    const NclPadding * pad, NclTensor * out, GError ** error)
{
  gint oh = in->h * scale + pad->top + pad->bottom;
  gint ow = in->w * scale + pad->left + pad->right;
  gint planes = in->n * in->c;
  gint mode = pad->mode;
  /* the rows of all planes in 64 work-items (fewer on tiny tensors) */
  gint total = MAX (planes * oh, 1);
  gint rows = MAX ((total + 63) / 64, 1);
  gsize global[1], local[1] = { 1 };
  cl_kernel k;
  gboolean ok;

  if (scale < 1 || oh <= 0 || ow <= 0) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "pad: (%d, %d) x%d with pads %d/%d/%d/%d gives an empty output",
        in->h, in->w, scale, pad->top, pad->bottom, pad->left, pad->right);
    return FALSE;
  }
  if (in->buf == out->buf) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "pad: cannot run in place");
    return FALSE;
  }
  if (!ncl_tensor_reshape (out, in->n, in->c, oh, ow, error))
    return FALSE;
  k = ncl_context_get_kernel (ctx, "pad", "pad_nchw", NULL, error);
  if (k == NULL)
    return FALSE;

  global[0] = (total + rows - 1) / rows;
  ncl_context_lock (ctx);
  ok = ncl_kernel_set_args (k, error,
      sizeof (cl_mem), &in->buf, sizeof (cl_mem), &out->buf,
      sizeof (gint), &planes, sizeof (gint), &in->h, sizeof (gint), &in->w,
      sizeof (gint), &oh, sizeof (gint), &ow, sizeof (gint), &pad->top,
      sizeof (gint), &pad->left, sizeof (gint), &scale, sizeof (gint), &mode,
      sizeof (gint), &rows, 0)
      && ncl_context_run (ctx, k, 1, global, local, error);
  ncl_context_unlock (ctx);
  return ok;
}

void
ncl_pad_channels_forward_ref (const gfloat * in, gint n, gint c, gint hw,
    gint before, gint after, gfloat * out)
{
  gint ctot = before + c + after;

  for (gint b = 0; b < n; b++)
    for (gint oc = 0; oc < ctot; oc++) {
      gint ic = oc - before;
      gfloat *dst = out + ((gsize) b * ctot + oc) * hw;

      for (gint i = 0; i < hw; i++)
        dst[i] = ic >= 0 && ic < c ? in[((gsize) b * c + ic) * hw + i] : 0.0f;
    }
}

gboolean
ncl_pad_channels_forward (NclContext * ctx, const NclTensor * in, gint before,
    gint after, NclTensor * out, GError ** error)
{
  gint hw = in->h * in->w;
  gsize global[3];
  cl_kernel k;
  gboolean ok;

  if (before < 0 || after < 0 || in->buf == out->buf) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "pad channels: invalid padding %d/%d or in-place call", before,
        after);
    return FALSE;
  }
  if (!ncl_tensor_reshape (out, in->n, before + in->c + after, in->h, in->w,
          error))
    return FALSE;
  k = ncl_context_get_kernel (ctx, "pad", "pad_channels", NULL, error);
  if (k == NULL)
    return FALSE;
  global[0] = (hw + 15) / 16;
  global[1] = out->c;
  global[2] = in->n;
  ncl_context_lock (ctx);
  ok = ncl_kernel_set_args (k, error,
      sizeof (cl_mem), &in->buf, sizeof (cl_mem), &out->buf,
      sizeof (gint), &in->n, sizeof (gint), &in->c, sizeof (gint), &hw,
      sizeof (gint), &before, sizeof (gint), &after, 0)
      && ncl_context_run (ctx, k, 3, global, NULL, error);
  ncl_context_unlock (ctx);
  return ok;
}
