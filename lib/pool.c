/* Pooling layers: max / average over windows, and global average. */
#include <neuralcl/error.h>
#include <neuralcl/layers.h>

#include <math.h>

/* Output length of one axis in floor mode; 0 when the window does not fit
 * even once (or the parameters are invalid). */
static gint
pool_axis (gint in, gint before, gint after, gint k, gint s)
{
  gint span = in + before + after;

  if (k < 1 || s < 1 || in < 1 || span < k)
    return 0;
  return (span - k) / s + 1;
}

/**
 * ncl_pool_out_size:
 *
 * Computes the pooled size in floor mode: (h + top + bottom - kh) / sh + 1,
 * and likewise for the width; 0 for an axis the window does not fit.
 */
void
ncl_pool_out_size (const NclPoolParams * p, gint h, gint w, gint * oh,
    gint * ow)
{
  *oh = pool_axis (h, p->pad.top, p->pad.bottom, p->kh, p->stride_h);
  *ow = pool_axis (w, p->pad.left, p->pad.right, p->kw, p->stride_w);
}

void
ncl_pool_forward_ref (const NclPoolParams * p, const gfloat * in, gint n,
    gint c, gint h, gint w, gfloat * out)
{
  gint oh, ow;

  ncl_pool_out_size (p, h, w, &oh, &ow);
  for (gint plane = 0; plane < n * c; plane++) {
    const gfloat *src = in + (gsize) plane * h * w;    /* (h, w) */
    gfloat *dst = out + (gsize) plane * oh * ow;       /* (oh, ow) */

    for (gint oy = 0; oy < oh; oy++) {
      for (gint ox = 0; ox < ow; ox++) {
        gint y0 = oy * p->stride_h - p->pad.top;
        gint x0 = ox * p->stride_w - p->pad.left;
        gint y1 = MIN (y0 + p->kh, h), x1 = MIN (x0 + p->kw, w);
        gfloat m = -INFINITY, sum = 0.0f;
        gint count = 0;

        y0 = MAX (y0, 0);
        x0 = MAX (x0, 0);
        for (gint y = y0; y < y1; y++) {
          for (gint x = x0; x < x1; x++) {
            m = fmaxf (m, src[y * w + x]);
            sum += src[y * w + x];
            count++;
          }
        }
        if (p->type == NCL_POOL_MAX)
          dst[oy * ow + ox] = m;
        else
          dst[oy * ow + ox] = count > 0 ? sum / count : 0.0f;
      }
    }
  }
}

void
ncl_global_avgpool_forward_ref (const gfloat * in, gint n, gint c, gint hw,
    gfloat * out)
{
  for (gint plane = 0; plane < n * c; plane++) {
    const gfloat *src = in + (gsize) plane * hw;
    gdouble sum = 0.0;

    for (gint i = 0; i < hw; i++)
      sum += src[i];
    out[plane] = hw > 0 ? (gfloat) (sum / hw) : 0.0f;
  }
}

/**
 * ncl_pool_forward:
 * @out: reshaped to (n, c, oh, ow) as given by ncl_pool_out_size(); must
 *   not be @in
 *
 * Max or average pooling on the device (see NclPoolParams).
 * Returns: FALSE with @error set: NCL_ERROR_FAILED for a non-positive
 *   window or stride or a negative padding, NCL_ERROR_SHAPE when the
 *   output would be empty or @out is @in.
 */
gboolean
ncl_pool_forward (NclContext * ctx, const NclPoolParams * p,
    const NclTensor * in, NclTensor * out, GError ** error)
{
  gint planes = in->n * in->c, oh, ow;
  gint kh = p->kh, kw = p->kw, sh = p->stride_h, sw = p->stride_w;
  gint pt = p->pad.top, pl = p->pad.left;
  gint rows;
  gsize global[1], local[1] = { 1 };
  cl_kernel k;
  gboolean ok;

  if (kh < 1 || kw < 1 || sh < 1 || sw < 1 || pt < 0 || pl < 0
      || p->pad.bottom < 0 || p->pad.right < 0) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_FAILED,
        "pool: invalid window %dx%d, stride %dx%d or padding %d/%d/%d/%d "
        "(top/bottom/left/right)", kh, kw, sh, sw, pt, p->pad.bottom, pl,
        p->pad.right);
    return FALSE;
  }
  ncl_pool_out_size (p, in->h, in->w, &oh, &ow);
  if (oh < 1 || ow < 1) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "pool: input (%d, %d, %d, %d) is smaller than the %dx%d window "
        "with padding %d/%d/%d/%d", in->n, in->c, in->h, in->w, kh, kw, pt,
        p->pad.bottom, pl, p->pad.right);
    return FALSE;
  }
  if (out == in) {
    g_set_error_literal (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "pool: the output cannot be the input");
    return FALSE;
  }
  if (!ncl_tensor_reshape (out, in->n, in->c, oh, ow, error))
    return FALSE;
  if (planes == 0)
    return TRUE;
  k = ncl_context_get_kernel (ctx, "pool",
      p->type == NCL_POOL_MAX ? "pool_max" : "pool_avg", NULL, error);
  if (k == NULL)
    return FALSE;
  /* the output rows of all planes in 64 work-items (fewer when small) */
  rows = (planes * oh + 63) / 64;
  global[0] = (planes * oh + rows - 1) / rows;

  ncl_context_lock (ctx);
  ok = ncl_kernel_set_args (k, error, sizeof (cl_mem), &in->buf,
      sizeof (cl_mem), &out->buf, sizeof (gint), &planes, sizeof (gint),
      &in->h, sizeof (gint), &in->w, sizeof (gint), &oh, sizeof (gint), &ow,
      sizeof (gint), &kh, sizeof (gint), &kw, sizeof (gint), &sh,
      sizeof (gint), &sw, sizeof (gint), &pt, sizeof (gint), &pl,
      sizeof (gint), &rows, 0)
      && ncl_context_run (ctx, k, 1, global, local, error);
  ncl_context_unlock (ctx);
  return ok;
}

/**
 * ncl_global_avgpool_forward:
 * @out: reshaped to (n, c, 1, 1); must not be @in
 *
 * Averages each (n, c) plane of @in on the device.
 * Returns: FALSE with @error set on failure.
 */
gboolean
ncl_global_avgpool_forward (NclContext * ctx, const NclTensor * in,
    NclTensor * out, GError ** error)
{
  gint planes = in->n * in->c, hw = in->h * in->w;
  gsize global = planes;
  cl_kernel k;
  gboolean ok;

  if (hw < 1) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "global_avgpool: input (%d, %d, %d, %d) has no pixels", in->n,
        in->c, in->h, in->w);
    return FALSE;
  }
  if (out == in) {
    g_set_error_literal (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "global_avgpool: the output cannot be the input");
    return FALSE;
  }
  if (!ncl_tensor_reshape (out, in->n, in->c, 1, 1, error))
    return FALSE;
  if (planes == 0)
    return TRUE;
  k = ncl_context_get_kernel (ctx, "pool", "global_avgpool_16", NULL, error);
  if (k == NULL)
    return FALSE;

  ncl_context_lock (ctx);
  ok = ncl_kernel_set_args (k, error, sizeof (cl_mem), &in->buf,
      sizeof (cl_mem), &out->buf, sizeof (gint), &planes, sizeof (gint), &hw,
      0)
      && ncl_context_run (ctx, k, 1, &global, NULL, error);
  ncl_context_unlock (ctx);
  return ok;
}
