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
ncl_buffer_check (cl_mem buf, gsize floats, const gchar * what,
    GError ** error)
{
  gsize size = 0;
  cl_int st;

  if (buf == NULL) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_FAILED, "%s: no buffer", what);
    return FALSE;
  }
  st = clGetMemObjectInfo (buf, CL_MEM_SIZE, sizeof (size), &size, NULL);
  if (st != CL_SUCCESS) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_OPENCL,
        "%s: cannot query the buffer: %s", what, ncl_cl_status_name (st));
    return FALSE;
  }
  if (size < floats * sizeof (gfloat)) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "%s: buffer holds %" G_GSIZE_FORMAT " floats, expected %"
        G_GSIZE_FORMAT, what, size / sizeof (gfloat), floats);
    return FALSE;
  }
  return TRUE;
}

gboolean
ncl_buffer_zero (NclContext * ctx, cl_mem buf, gsize n, GError ** error)
{
  const gfloat zero = 0.0f;
  cl_int st;

  if (n == 0)
    return TRUE;
  if (!ncl_buffer_check (buf, n, "buffer zero", error))
    return FALSE;
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

/* ---- device: layers ----------------------------------------------------- */

static gboolean
same_shape (const gchar * what, const NclTensor * a, const NclTensor * b,
    GError ** error)
{
  if (a->n == b->n && a->c == b->c && a->h == b->h && a->w == b->w)
    return TRUE;
  g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
      "%s: shapes (%d, %d, %d, %d) and (%d, %d, %d, %d) differ", what, a->n,
      a->c, a->h, a->w, b->n, b->c, b->h, b->w);
  return FALSE;
}

/* Kernels index with int. */
static gboolean
check_numel (const gchar * what, gsize numel, GError ** error)
{
  if (numel > (gsize) G_MAXINT - 64) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_UNSUPPORTED,
        "%s: %" G_GSIZE_FORMAT " values, at most %d supported", what, numel,
        G_MAXINT - 64);
    return FALSE;
  }
  return TRUE;
}

gboolean
ncl_grad_add (NclContext * ctx, const NclTensor * src, NclTensor * dst,
    GError ** error)
{
  gint n = (gint) ncl_tensor_numel (src);
  gsize global;
  cl_kernel k;
  gboolean ok;

  if (ncl_tensor_numel (dst) != ncl_tensor_numel (src)) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "grad add: %" G_GSIZE_FORMAT " values added to %" G_GSIZE_FORMAT,
        ncl_tensor_numel (src), ncl_tensor_numel (dst));
    return FALSE;
  }
  if (!check_numel ("grad add", ncl_tensor_numel (src), error))
    return FALSE;
  k = ncl_context_get_kernel (ctx, "backward", "grad_add_16", NULL, error);
  if (k == NULL)
    return FALSE;
  global = (n + 15) / 16;
  ncl_context_lock (ctx);
  ok = ncl_kernel_set_args (k, error, sizeof (cl_mem), &src->buf,
      sizeof (cl_mem), &dst->buf, sizeof (gint), &n, 0)
      && ncl_context_run (ctx, k, 1, &global, NULL, error);
  ncl_context_unlock (ctx);
  return ok;
}

/* da = dout * act'(out), and db = da when @db is given. */
static gboolean
act_backward (NclContext * ctx, const gchar * what, const NclTensor * out,
    const NclTensor * dout, NclActivation act, gfloat alpha, NclTensor * da,
    NclTensor * db, GError ** error)
{
  gint n = (gint) ncl_tensor_numel (dout), a = act, has_db = db != NULL;
  cl_mem obuf, dbbuf;
  gsize global;
  cl_kernel k;
  gboolean ok;

  if (act != NCL_ACT_NONE && out == NULL) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_FAILED,
        "%s: activation %s needs the forward output", what,
        ncl_activation_to_string (act));
    return FALSE;
  }
  if (out != NULL && !same_shape (what, out, dout, error))
    return FALSE;
  if (!check_numel (what, ncl_tensor_numel (dout), error))
    return FALSE;
  if (da != dout && !ncl_tensor_reshape (da, dout->n, dout->c, dout->h,
          dout->w, error))
    return FALSE;
  if (db != NULL && db != dout && !ncl_tensor_reshape (db, dout->n, dout->c,
          dout->h, dout->w, error))
    return FALSE;
  k = ncl_context_get_kernel (ctx, "backward", "act_bwd_16", NULL, error);
  if (k == NULL)
    return FALSE;
  obuf = out != NULL ? out->buf : dout->buf;
  dbbuf = db != NULL ? db->buf : da->buf;
  global = (n + 15) / 16;
  ncl_context_lock (ctx);
  ok = ncl_kernel_set_args (k, error, sizeof (cl_mem), &obuf,
      sizeof (cl_mem), &dout->buf, sizeof (cl_mem), &da->buf,
      sizeof (cl_mem), &dbbuf, sizeof (gint), &n, sizeof (gint), &a,
      sizeof (gfloat), &alpha, sizeof (gint), &has_db, 0)
      && ncl_context_run (ctx, k, 1, &global, NULL, error);
  ncl_context_unlock (ctx);
  return ok;
}

gboolean
ncl_activation_backward (NclContext * ctx, const NclTensor * out,
    const NclTensor * dout, NclActivation act, gfloat alpha, NclTensor * din,
    GError ** error)
{
  return act_backward (ctx, "activation backward", out, dout, act, alpha,
      din, NULL, error);
}

gboolean
ncl_add_backward (NclContext * ctx, const NclTensor * out,
    const NclTensor * dout, NclActivation act, gfloat alpha, NclTensor * da,
    NclTensor * db, GError ** error)
{
  return act_backward (ctx, "add backward", out, dout, act, alpha, da, db,
      error);
}

/* dst (n, c, h, w) = channels [c0, c0 + c) of src. */
static gboolean
channel_slice (NclContext * ctx, const NclTensor * src, gint c0, gint c,
    NclTensor * dst, GError ** error)
{
  gint hw = src->h * src->w;
  gsize global[3];
  cl_kernel k;
  gboolean ok;

  if (!ncl_tensor_reshape (dst, src->n, c, src->h, src->w, error))
    return FALSE;
  k = ncl_context_get_kernel (ctx, "backward", "channel_slice", NULL, error);
  if (k == NULL)
    return FALSE;
  global[0] = (hw + 15) / 16;
  global[1] = c;
  global[2] = src->n;
  ncl_context_lock (ctx);
  ok = ncl_kernel_set_args (k, error, sizeof (cl_mem), &src->buf,
      sizeof (cl_mem), &dst->buf, sizeof (gint), &src->n, sizeof (gint),
      &src->c, sizeof (gint), &c0, sizeof (gint), &c, sizeof (gint), &hw, 0)
      && ncl_context_run (ctx, k, 3, global, NULL, error);
  ncl_context_unlock (ctx);
  return ok;
}

gboolean
ncl_concat_backward (NclContext * ctx, const NclTensor * dout, gint ca,
    NclTensor * da, NclTensor * db, GError ** error)
{
  if (ca < 1 || ca >= dout->c || da == dout || db == dout) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "concat backward: cannot split %d channels at %d (or in place)",
        dout->c, ca);
    return FALSE;
  }
  return channel_slice (ctx, dout, 0, ca, da, error)
      && (db == NULL || channel_slice (ctx, dout, ca, dout->c - ca, db,
          error));
}

gboolean
ncl_pad_channels_backward (NclContext * ctx, const NclTensor * dout,
    gint before, gint after, NclTensor * din, GError ** error)
{
  gint c = dout->c - before - after;

  if (before < 0 || after < 0 || c < 1 || din == dout) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "pad channels backward: %d channels less %d/%d padding (or in "
        "place)", dout->c, before, after);
    return FALSE;
  }
  return channel_slice (ctx, dout, before, c, din, error);
}

gboolean
ncl_l2norm_backward (NclContext * ctx, const NclTensor * in,
    const NclTensor * dout, gfloat eps, NclTensor * din, GError ** error)
{
  gint len = in->c * in->h * in->w;
  gsize global = in->n;
  cl_kernel k;
  gboolean ok;

  if (!same_shape ("l2norm backward", in, dout, error))
    return FALSE;
  if (din == in || din == dout) {
    g_set_error_literal (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "l2norm backward: cannot run in place");
    return FALSE;
  }
  if (!ncl_tensor_reshape (din, in->n, in->c, in->h, in->w, error))
    return FALSE;
  k = ncl_context_get_kernel (ctx, "backward", "l2norm_bwd", NULL, error);
  if (k == NULL)
    return FALSE;
  ncl_context_lock (ctx);
  ok = ncl_kernel_set_args (k, error, sizeof (cl_mem), &in->buf,
      sizeof (cl_mem), &dout->buf, sizeof (cl_mem), &din->buf,
      sizeof (gint), &in->n, sizeof (gint), &len, sizeof (gfloat), &eps, 0)
      && ncl_context_run (ctx, k, 1, &global, NULL, error);
  ncl_context_unlock (ctx);
  return ok;
}

gboolean
ncl_pad_backward (NclContext * ctx, const NclTensor * dout, gint scale,
    const NclPadding * pad, NclTensor * din, GError ** error)
{
  gint eh = dout->h - pad->top - pad->bottom;
  gint ew = dout->w - pad->left - pad->right;
  gint h, w, planes = dout->n * dout->c, mode = pad->mode;
  gsize global[2];
  cl_kernel k;
  gboolean ok;

  if (scale < 1 || eh <= 0 || ew <= 0 || eh % scale || ew % scale) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "pad backward: (%d, %d) less pads %d/%d/%d/%d is not an input "
        "upsampled x%d", dout->h, dout->w, pad->top, pad->bottom, pad->left,
        pad->right, scale);
    return FALSE;
  }
  if (din == dout) {
    g_set_error_literal (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "pad backward: cannot run in place");
    return FALSE;
  }
  h = eh / scale;
  w = ew / scale;
  if (!ncl_tensor_reshape (din, dout->n, dout->c, h, w, error))
    return FALSE;
  k = ncl_context_get_kernel (ctx, "backward", "pad_bwd_row", NULL, error);
  if (k == NULL)
    return FALSE;
  global[0] = h;
  global[1] = planes;
  ncl_context_lock (ctx);
  ok = ncl_kernel_set_args (k, error, sizeof (cl_mem), &dout->buf,
      sizeof (cl_mem), &din->buf, sizeof (gint), &planes, sizeof (gint), &h,
      sizeof (gint), &w, sizeof (gint), &dout->h, sizeof (gint), &dout->w,
      sizeof (gint), &pad->top, sizeof (gint), &pad->left, sizeof (gint),
      &scale, sizeof (gint), &mode, 0)
      && ncl_context_run (ctx, k, 2, global, NULL, error);
  ncl_context_unlock (ctx);
  return ok;
}

gboolean
ncl_instnorm_backward (NclContext * ctx, const NclTensor * in,
    const NclTensor * out, const NclTensor * dout, cl_mem gamma, gfloat eps,
    NclActivation act, gfloat alpha, NclTensor * din, NclTensor * dresidual,
    cl_mem dgamma, cl_mem dbeta, GError ** error)
{
  gint hw = in->h * in->w, planes = in->n * in->c, a = act, flags = 0;
  gint which = (dgamma != NULL ? 1 : 0) | (dbeta != NULL ? 2 : 0);
  cl_mem obuf, gbuf, dinbuf, dresbuf, partial, dg, dbt;
  gsize global;
  cl_kernel k, kp;
  cl_int st;
  gboolean ok;

  if (!same_shape ("instance norm backward", in, dout, error)
      || (out != NULL && !same_shape ("instance norm backward", in, out,
              error)))
    return FALSE;
  if (act != NCL_ACT_NONE && out == NULL) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_FAILED,
        "instance norm backward: activation %s needs the forward output",
        ncl_activation_to_string (act));
    return FALSE;
  }
  if (din == in || din == out || dresidual == dout || (dresidual != NULL
          && (dresidual == din || dresidual == in || dresidual == out))) {
    g_set_error_literal (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "instance norm backward: only din may share dout's buffer");
    return FALSE;
  }
  if (!check_numel ("instance norm backward", ncl_tensor_numel (in), error)
      || (gamma != NULL && !ncl_buffer_check (gamma, in->c,
              "instance norm backward: gamma", error))
      || (dgamma != NULL && !ncl_buffer_check (dgamma, in->c,
              "instance norm backward: dgamma", error))
      || (dbeta != NULL && !ncl_buffer_check (dbeta, in->c,
              "instance norm backward: dbeta", error)))
    return FALSE;
  if (din != NULL && din != dout && !ncl_tensor_reshape (din, in->n, in->c,
          in->h, in->w, error))
    return FALSE;
  if (dresidual != NULL && !ncl_tensor_reshape (dresidual, in->n, in->c,
          in->h, in->w, error))
    return FALSE;

  flags = (gamma != NULL ? 1 : 0) | (din != NULL ? 2 : 0)
      | (dresidual != NULL ? 4 : 0);
  k = ncl_context_get_kernel (ctx, "backward", "instnorm_bwd_plane", NULL,
      error);
  if (k == NULL)
    return FALSE;
  kp = ncl_context_get_kernel (ctx, "backward", "instnorm_bwd_params", NULL,
      error);
  if (kp == NULL)
    return FALSE;
  partial = clCreateBuffer (ncl_context_get_cl_context (ctx),
      CL_MEM_READ_WRITE, 2 * planes * sizeof (gfloat), NULL, &st);
  if (st != CL_SUCCESS) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_OPENCL,
        "instance norm backward: cannot allocate scratch: %s",
        ncl_cl_status_name (st));
    return FALSE;
  }
  /* unused buffer arguments still need a valid handle */
  obuf = out != NULL ? out->buf : in->buf;
  gbuf = gamma != NULL ? gamma : in->buf;
  dinbuf = din != NULL ? din->buf : partial;
  dresbuf = dresidual != NULL ? dresidual->buf : partial;
  dg = dgamma != NULL ? dgamma : partial;
  dbt = dbeta != NULL ? dbeta : partial;

  ncl_context_lock (ctx);
  global = planes;
  ok = ncl_kernel_set_args (k, error, sizeof (cl_mem), &in->buf,
      sizeof (cl_mem), &obuf, sizeof (cl_mem), &dout->buf, sizeof (cl_mem),
      &dinbuf, sizeof (cl_mem), &dresbuf, sizeof (cl_mem), &gbuf,
      sizeof (cl_mem), &partial, sizeof (gint), &in->c, sizeof (gint), &hw,
      sizeof (gfloat), &eps, sizeof (gint), &a, sizeof (gfloat), &alpha,
      sizeof (gint), &planes, sizeof (gint), &flags, 0)
      && ncl_context_run (ctx, k, 1, &global, NULL, error);
  if (ok && which != 0) {
    global = in->c;
    ok = ncl_kernel_set_args (kp, error, sizeof (cl_mem), &partial,
        sizeof (cl_mem), &dg, sizeof (cl_mem), &dbt, sizeof (gint), &in->n,
        sizeof (gint), &in->c, sizeof (gint), &which, 0)
        && ncl_context_run (ctx, kp, 1, &global, NULL, error);
  }
  ncl_context_unlock (ctx);
  /* released once the queued kernels are done with it */
  clReleaseMemObject (partial);
  return ok;
}

gboolean
ncl_pool_backward (NclContext * ctx, const NclPoolParams * p,
    const NclTensor * in, const NclTensor * dout, NclTensor * din,
    GError ** error)
{
  gint planes = in->n * in->c, oh, ow, is_max = p->type == NCL_POOL_MAX;
  gsize global[3];
  cl_kernel k;
  gboolean ok;

  ncl_pool_out_size (p, in->h, in->w, &oh, &ow);
  if (oh < 1 || ow < 1 || p->pad.top < 0 || p->pad.left < 0
      || dout->n != in->n || dout->c != in->c || dout->h != oh
      || dout->w != ow) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "pool backward: dout (%d, %d, %d, %d) does not match input (%d, %d, "
        "%d, %d) pooled to %dx%d", dout->n, dout->c, dout->h, dout->w, in->n,
        in->c, in->h, in->w, oh, ow);
    return FALSE;
  }
  if (din == in || din == dout) {
    g_set_error_literal (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "pool backward: cannot run in place");
    return FALSE;
  }
  if (!ncl_tensor_reshape (din, in->n, in->c, in->h, in->w, error))
    return FALSE;
  if (is_max && p->kh == p->kw && p->stride_h == p->kh
      && p->stride_w == p->kw && p->pad.top == 0 && p->pad.left == 0
      && p->pad.bottom == 0 && p->pad.right == 0) {
    /* the windows tile the image: one work-item per row of windows */
    k = ncl_context_get_kernel (ctx, "backward", "pool_max_bwd_tiled", NULL,
        error);
    if (k == NULL)
      return FALSE;
    global[0] = oh;
    global[1] = planes;
    ncl_context_lock (ctx);
    ok = ncl_kernel_set_args (k, error, sizeof (cl_mem), &in->buf,
        sizeof (cl_mem), &dout->buf, sizeof (cl_mem), &din->buf,
        sizeof (gint), &planes, sizeof (gint), &in->h, sizeof (gint),
        &in->w, sizeof (gint), &oh, sizeof (gint), &ow, sizeof (gint),
        &p->kh, 0)
        && ncl_context_run (ctx, k, 2, global, NULL, error);
    ncl_context_unlock (ctx);
    return ok;
  }
  k = ncl_context_get_kernel (ctx, "backward", "pool_bwd", NULL, error);
  if (k == NULL)
    return FALSE;
  global[0] = in->w;
  global[1] = in->h;
  global[2] = planes;
  ncl_context_lock (ctx);
  ok = ncl_kernel_set_args (k, error, sizeof (cl_mem), &in->buf,
      sizeof (cl_mem), &dout->buf, sizeof (cl_mem), &din->buf,
      sizeof (gint), &planes, sizeof (gint), &in->h, sizeof (gint), &in->w,
      sizeof (gint), &oh, sizeof (gint), &ow, sizeof (gint), &p->kh,
      sizeof (gint), &p->kw, sizeof (gint), &p->stride_h, sizeof (gint),
      &p->stride_w, sizeof (gint), &p->pad.top, sizeof (gint), &p->pad.left,
      sizeof (gint), &is_max, 0)
      && ncl_context_run (ctx, k, 3, global, NULL, error);
  ncl_context_unlock (ctx);
  return ok;
}

gboolean
ncl_global_avgpool_backward (NclContext * ctx, const NclTensor * dout,
    NclTensor * din, GError ** error)
{
  gint planes = din->n * din->c, hw = din->h * din->w;
  gsize global[2];
  cl_kernel k;
  gboolean ok;

  if (dout->n != din->n || dout->c != din->c || dout->h * dout->w != 1
      || din == dout) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "global avgpool backward: dout (%d, %d, %d, %d) is not (%d, %d, 1, "
        "1), or in place", dout->n, dout->c, dout->h, dout->w, din->n,
        din->c);
    return FALSE;
  }
  k = ncl_context_get_kernel (ctx, "backward", "gap_bwd_16", NULL, error);
  if (k == NULL)
    return FALSE;
  global[0] = (hw + 15) / 16;
  global[1] = planes;
  ncl_context_lock (ctx);
  ok = ncl_kernel_set_args (k, error, sizeof (cl_mem), &dout->buf,
      sizeof (cl_mem), &din->buf, sizeof (gint), &planes, sizeof (gint), &hw,
      0)
      && ncl_context_run (ctx, k, 2, global, NULL, error);
  ncl_context_unlock (ctx);
  return ok;
}

gboolean
ncl_fc_backward (NclContext * ctx, const NclTensor * in, cl_mem weight,
    gint out_f, const NclTensor * dout, NclTensor * din, cl_mem dweight,
    cl_mem dbias, GError ** error)
{
  gsize in_f = (gsize) in->c * in->h * in->w;
  gint n = in->n, inf = (gint) in_f;
  gint has = (dweight != NULL ? 1 : 0) | (dbias != NULL ? 2 : 0);
  gsize global[2];
  cl_kernel k;
  gboolean ok = TRUE;

  if (out_f < 1 || in_f > G_MAXINT / 2 || dout->n != n
      || (gsize) dout->c * dout->h * dout->w != (gsize) out_f) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "fc backward: dout (%d, %d, %d, %d) is not (%d, %d)", dout->n,
        dout->c, dout->h, dout->w, n, out_f);
    return FALSE;
  }
  if (din == in || din == dout) {
    g_set_error_literal (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "fc backward: cannot run in place");
    return FALSE;
  }
  if ((dweight != NULL && !ncl_buffer_check (dweight, in_f * out_f,
              "fc backward: dweight", error))
      || (dbias != NULL && !ncl_buffer_check (dbias, out_f,
              "fc backward: dbias", error)))
    return FALSE;
  if (din != NULL) {
    if (!ncl_buffer_check (weight, in_f * out_f, "fc backward: weight",
            error))
      return FALSE;
    if (!ncl_tensor_reshape (din, in->n, in->c, in->h, in->w, error))
      return FALSE;
    k = ncl_context_get_kernel (ctx, "backward", "fc_bwd_data", NULL, error);
    if (k == NULL)
      return FALSE;
    global[0] = (in_f + 15) / 16;
    global[1] = n;
    ncl_context_lock (ctx);
    ok = ncl_kernel_set_args (k, error, sizeof (cl_mem), &dout->buf,
        sizeof (cl_mem), &weight, sizeof (cl_mem), &din->buf, sizeof (gint),
        &n, sizeof (gint), &inf, sizeof (gint), &out_f, 0)
        && ncl_context_run (ctx, k, 2, global, NULL, error);
    ncl_context_unlock (ctx);
  }
  if (ok && has != 0) {
    cl_mem dw = dweight != NULL ? dweight : dbias;
    cl_mem db = dbias != NULL ? dbias : dweight;

    k = ncl_context_get_kernel (ctx, "backward", "fc_bwd_weights", NULL,
        error);
    if (k == NULL)
      return FALSE;
    global[0] = (in_f + 15) / 16;
    global[1] = out_f;
    ncl_context_lock (ctx);
    ok = ncl_kernel_set_args (k, error, sizeof (cl_mem), &in->buf,
        sizeof (cl_mem), &dout->buf, sizeof (cl_mem), &dw, sizeof (cl_mem),
        &db, sizeof (gint), &n, sizeof (gint), &inf, sizeof (gint), &out_f,
        sizeof (gint), &has, 0)
        && ncl_context_run (ctx, k, 2, global, NULL, error);
    ncl_context_unlock (ctx);
  }
  return ok;
}
