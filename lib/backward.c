/* backward.c: backward passes of the element-wise, padding, instance norm,
 * pooling and fully connected layers (kernels/backward.cl), with their
 * plain-C references, and the gradient buffer helpers.  Conventions are in
 * include/neuralcl/backward.h. */
#include <neuralcl/backward.h>
#include <neuralcl/error.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- references --------------------------------------------------------- */

/* act'(.) expressed with the forward output @y. */
static inline gfloat
act_grad (NclActivation act, gfloat alpha, gfloat y)
{
  switch (act) {
    case NCL_ACT_RELU:
      return y > 0.0f ? 1.0f : 0.0f;
    case NCL_ACT_LEAKY_RELU:
      return y > 0.0f ? 1.0f : alpha;
    case NCL_ACT_SIGMOID:
      return y * (1.0f - y);
    case NCL_ACT_TANH:
      return 1.0f - y * y;
    case NCL_ACT_RELU6:
      return y > 0.0f && y < 6.0f ? 1.0f : 0.0f;
    default:
      return 1.0f;
  }
}

void
ncl_grad_add_ref (const gfloat * src, gsize n, gfloat * dst)
{
  for (gsize i = 0; i < n; i++)
    dst[i] += src[i];
}

void
ncl_activation_backward_ref (const gfloat * out, const gfloat * dout, gsize n,
    NclActivation act, gfloat alpha, gfloat * din)
{
  for (gsize i = 0; i < n; i++)
    din[i] = act == NCL_ACT_NONE ? dout[i]
        : dout[i] * act_grad (act, alpha, out[i]);
}

void
ncl_add_backward_ref (const gfloat * out, const gfloat * dout, gsize n,
    NclActivation act, gfloat alpha, gfloat * da, gfloat * db)
{
  for (gsize i = 0; i < n; i++) {
    gfloat g = act == NCL_ACT_NONE ? dout[i]
        : dout[i] * act_grad (act, alpha, out[i]);

    da[i] = g;
    if (db != NULL)
      db[i] = g;
  }
}

void
ncl_concat_backward_ref (const gfloat * dout, gint n, gint ca, gint cb,
    gint hw, gfloat * da, gfloat * db)
{
  gsize sa = (gsize) ca * hw, sb = (gsize) cb * hw;

  for (gint b = 0; b < n; b++) {
    memcpy (da + b * sa, dout + b * (sa + sb), sa * sizeof (gfloat));
    if (db != NULL)
      memcpy (db + b * sb, dout + b * (sa + sb) + sa, sb * sizeof (gfloat));
  }
}

void
ncl_pad_channels_backward_ref (const gfloat * dout, gint n, gint c, gint hw,
    gint before, gint after, gfloat * din)
{
  gint ctot = before + c + after;

  for (gint b = 0; b < n; b++)
    memcpy (din + (gsize) b * c * hw, dout + ((gsize) b * ctot + before) * hw,
        (gsize) c * hw * sizeof (gfloat));
}

void
ncl_l2norm_backward_ref (const gfloat * in, const gfloat * dout, gint n,
    gsize len, gfloat eps, gfloat * din)
{
  for (gint s = 0; s < n; s++) {
    const gfloat *x = in + s * len;
    const gfloat *dy = dout + s * len;
    gfloat *dx = din + s * len;
    gdouble sum = 0.0, dot = 0.0;
    gfloat norm;

    for (gsize i = 0; i < len; i++)
      sum += (gdouble) x[i] * x[i];
    norm = (gfloat) sqrt (sum);
    if (norm > eps) {
      for (gsize i = 0; i < len; i++)
        dot += (gdouble) x[i] * dy[i];
      /* (dy - y (y . dy)) / norm with y = x / norm */
      for (gsize i = 0; i < len; i++)
        dx[i] = (gfloat) ((dy[i] - x[i] * dot / sum) / norm);
    } else {
      for (gsize i = 0; i < len; i++)
        dx[i] = dy[i] / eps;
    }
  }
}

/* The pad layer's index map (lib/pad.c): -1 for zero padding. */
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
ncl_pad_backward_ref (const gfloat * dout, gint n, gint c, gint h, gint w,
    gint scale, const NclPadding * pad, gfloat * din)
{
  gint oh = h * scale + pad->top + pad->bottom;
  gint ow = w * scale + pad->left + pad->right;

  memset (din, 0, (gsize) n * c * h * w * sizeof (gfloat));
  for (gint p = 0; p < n * c; p++) {
    for (gint y = 0; y < oh; y++) {
      gint sy = pad_map (y - pad->top, h * scale, pad->mode);

      if (sy < 0)
        continue;
      for (gint x = 0; x < ow; x++) {
        gint sx = pad_map (x - pad->left, w * scale, pad->mode);

        if (sx >= 0)
          din[((gsize) p * h + sy / scale) * w + sx / scale] +=
              dout[((gsize) p * oh + y) * ow + x];
      }
    }
  }
}

void
ncl_instnorm_backward_ref (const gfloat * in, const gfloat * out,
    const gfloat * dout, gint n, gint c, gint hw, const gfloat * gamma,
    gfloat eps, NclActivation act, gfloat alpha, gfloat * din,
    gfloat * dresidual, gfloat * dgamma, gfloat * dbeta)
{
  g_autofree gdouble *dz = g_new (gdouble, hw);

  for (gint p = 0; p < n * c; p++) {
    gsize off = (gsize) p * hw;
    const gfloat *x = in + off;
    gint ch = p % c;
    gdouble mean = 0.0, var = 0.0, inv, s1 = 0.0, s2 = 0.0, k;

    for (gint i = 0; i < hw; i++)
      mean += x[i];
    mean /= hw;
    for (gint i = 0; i < hw; i++)
      var += (x[i] - mean) * (x[i] - mean);
    var /= hw;
    inv = 1.0 / sqrt (var + eps);

    for (gint i = 0; i < hw; i++) {
      dz[i] = act == NCL_ACT_NONE ? dout[off + i]
          : dout[off + i] * act_grad (act, alpha, out[off + i]);
      s1 += dz[i];
      s2 += dz[i] * (x[i] - mean) * inv;
    }
    if (dbeta != NULL)
      dbeta[ch] += s1;
    if (dgamma != NULL)
      dgamma[ch] += s2;

    k = (gamma != NULL ? gamma[ch] : 1.0) * inv;
    s1 /= hw;
    s2 /= hw;
    for (gint i = 0; i < hw; i++) {
      if (dresidual != NULL)
        dresidual[off + i] = dz[i];
      if (din != NULL)
        din[off + i] = k * (dz[i] - s1 - (x[i] - mean) * inv * s2);
    }
  }
}

/* The window of output (oy, ox) clipped to the image: [y0, y1) x [x0, x1). */
static void
pool_window (const NclPoolParams * p, gint h, gint w, gint oy, gint ox,
    gint * y0, gint * y1, gint * x0, gint * x1)
{
  gint ys = oy * p->stride_h - p->pad.top;
  gint xs = ox * p->stride_w - p->pad.left;

  *y0 = MAX (ys, 0);
  *x0 = MAX (xs, 0);
  *y1 = MIN (ys + p->kh, h);
  *x1 = MIN (xs + p->kw, w);
}

void
ncl_pool_backward_ref (const NclPoolParams * p, const gfloat * in, gint n,
    gint c, gint h, gint w, const gfloat * dout, gfloat * din)
{
  gint oh, ow;

  ncl_pool_out_size (p, h, w, &oh, &ow);
  memset (din, 0, (gsize) n * c * h * w * sizeof (gfloat));
  for (gint plane = 0; plane < n * c; plane++) {
    const gfloat *src = in + (gsize) plane * h * w;
    const gfloat *dy = dout + (gsize) plane * oh * ow;
    gfloat *dx = din + (gsize) plane * h * w;

    for (gint oy = 0; oy < oh; oy++) {
      for (gint ox = 0; ox < ow; ox++) {
        gint y0, y1, x0, x1;

        pool_window (p, h, w, oy, ox, &y0, &y1, &x0, &x1);
        if (y0 >= y1 || x0 >= x1)
          continue;
        if (p->type == NCL_POOL_MAX) {
          gint arg = -1;
          gfloat m = -INFINITY;

          for (gint y = y0; y < y1; y++)
            for (gint x = x0; x < x1; x++)
              if (src[y * w + x] > m) {
                m = src[y * w + x];
                arg = y * w + x;
              }
          if (arg >= 0)
            dx[arg] += dy[oy * ow + ox];
        } else {
          gfloat g = dy[oy * ow + ox] / ((y1 - y0) * (x1 - x0));

          for (gint y = y0; y < y1; y++)
            for (gint x = x0; x < x1; x++)
              dx[y * w + x] += g;
        }
      }
    }
  }
}

void
ncl_global_avgpool_backward_ref (const gfloat * dout, gint n, gint c,
    gint hw, gfloat * din)
{
  for (gint p = 0; p < n * c; p++)
    for (gint i = 0; i < hw; i++)
      din[(gsize) p * hw + i] = dout[p] / hw;
}

void
ncl_fc_backward_ref (const gfloat * in, gint n, gint in_f, gint out_f,
    const gfloat * weight, const gfloat * dout, gfloat * din,
    gfloat * dweight, gfloat * dbias)
{
  for (gint b = 0; b < n && din != NULL; b++) {
    for (gint i = 0; i < in_f; i++) {
      gdouble s = 0.0;

      for (gint o = 0; o < out_f; o++)
        s += (gdouble) dout[b * out_f + o] * weight[(gsize) o * in_f + i];
      din[(gsize) b * in_f + i] = s;
    }
  }
  for (gint o = 0; o < out_f; o++) {
    for (gint i = 0; i < in_f && dweight != NULL; i++) {
      gdouble s = 0.0;

      for (gint b = 0; b < n; b++)
        s += (gdouble) dout[b * out_f + o] * in[(gsize) b * in_f + i];
      dweight[(gsize) o * in_f + i] += s;
    }
    if (dbias != NULL) {
      gdouble s = 0.0;

      for (gint b = 0; b < n; b++)
        s += dout[b * out_f + o];
      dbias[o] += s;
    }
  }
}

/* ---- device: buffers ---------------------------------------------------- */

cl_mem
ncl_buffer_new_rw (NclContext * ctx, const gfloat * data, gsize n,
    GError ** error)
{
  gsize bytes = (n + NCL_TENSOR_SLACK) * sizeof (gfloat);
  const gfloat zero = 0.0f;
  cl_int st;
  cl_mem buf;

  buf = clCreateBuffer (ncl_context_get_cl_context (ctx), CL_MEM_READ_WRITE,
      bytes, NULL, &st);
  if (st != CL_SUCCESS) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_OPENCL,
        "cannot allocate %" G_GSIZE_FORMAT " bytes on the device: %s", bytes,
        ncl_cl_status_name (st));
    return NULL;
  }
  st = clEnqueueFillBuffer (ncl_context_get_queue (ctx), buf, &zero,
      sizeof (zero), 0, bytes, 0, NULL, NULL);
  if (st == CL_SUCCESS && data != NULL && n > 0)
    st = clEnqueueWriteBuffer (ncl_context_get_queue (ctx), buf, CL_TRUE, 0,
        n * sizeof (gfloat), data, 0, NULL, NULL);
  if (st != CL_SUCCESS) {
    clReleaseMemObject (buf);
    g_set_error (error, NCL_ERROR, NCL_ERROR_OPENCL,
        "cannot initialise a device buffer: %s", ncl_cl_status_name (st));
    return NULL;
  }
  return buf;
}

gboolean
ncl_buffer_zero (NclContext * ctx, cl_mem buf, gsize n, GError ** error)
{
  const gfloat zero = 0.0f;
  cl_int st;

  if (n == 0)
    return TRUE;
  st = clEnqueueFillBuffer (ncl_context_get_queue (ctx), buf, &zero,
      sizeof (zero), 0, n * sizeof (gfloat), 0, NULL, NULL);
  if (st != CL_SUCCESS) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_OPENCL,
        "cannot clear %" G_GSIZE_FORMAT " floats: %s", n,
        ncl_cl_status_name (st));
    return FALSE;
  }
  return TRUE;
}
