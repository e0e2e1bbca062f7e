/* backward-conv.c: conv2d backward (data and weights): the plain-C
 * reference and the device path (kernels/backward.cl).
 *
 * Device variants:
 *   dX "transposed"  3x3 stride 1, groups 1, 16..256 output channels, CPU
 *                 devices: the forward conv (NclConv, Winograd there) of
 *                 dout with flipped, transposed weights (read back from the
 *                 device; the host copy in the params is not trusted).
 *   dX "direct"   groups 1, dilation 1, stride 1 or 2, kw <= 17: a register
 *                 tile of CI_TILE input channels x 16 * stride * PXV input
 *                 pixels of a row, reading a zero-padded copy of dout so
 *                 that the inner loop has no bounds checks
 *                 (conv_bwd_data_direct).
 *   dX "generic"  anything else: one work-item per input pixel.
 *   dW "direct"   stride 1 or 2, dilation 1: each work-item accumulates a
 *                 (CO_T output channels) x (CI_T input channels x KW taps)
 *                 tile of float16 products over a chunk of output rows
 *                 (lanes = 16 output pixels), reduced across lanes at the
 *                 end; partial sums per row chunk are then added into
 *                 dweight (conv_bwd_weights + conv_bwd_reduce).
 *   dW "generic"  anything else: one work-item per weight, looping over the
 *                 batch and all output pixels.
 * Reflect / edge padding: the weight kernels read a padded copy of the
 * input (as the forward conv does); the data kernels write the gradient of
 * the padded input into a scratch, folded back with ncl_pad_backward().
 * Zero padding is folded into the data kernels.  Scratch buffers are
 * allocated per call without a fill (only their slack is zeroed).
 * NEURALCL_CONV_BWD_VARIANT=direct or =generic forces those variants where
 * they apply (tests use it).
 */
#include <neuralcl/backward.h>
#include <neuralcl/error.h>

#include <math.h>
#include <stdarg.h>
#include <string.h>

/* ---- reference ---------------------------------------------------------- */

/* Maps coordinate @i into [0, n) for reflect / edge; -1 for zero padding
 * (the forward conv's mapping). */
static gint
pad_index (gint i, gint n, NclPadMode mode)
{
  gint period, m;

  if (i >= 0 && i < n)
    return i;
  if (mode == NCL_PAD_ZERO)
    return -1;
  if (mode == NCL_PAD_EDGE || n == 1)
    return CLAMP (i, 0, n - 1);
  period = 2 * (n - 1);
  m = i % period;
  if (m < 0)
    m += period;
  return m < n ? m : period - m;
}

void
ncl_conv2d_backward_ref (const NclConvParams * p, const gfloat * in, gint n,
    gint h, gint w, const gfloat * dout, gfloat * din, gfloat * dweight,
    gfloat * dbias)
{
  gint d = MAX (p->dilation, 1);
  gint cin_g = p->cin / p->groups;
  gint cout_g = p->cout / p->groups;
  gsize per_out = (gsize) cin_g * p->kh * p->kw;
  gsize in_numel = (gsize) n * p->cin * h * w;
  g_autofree gdouble *dx = NULL;        /* (n, cin, h, w) */
  g_autofree gdouble *dw = NULL;        /* (cout, cin_g, kh, kw) */
  g_autofree gdouble *db = NULL;        /* (cout) */
  gint oh, ow;

  ncl_conv2d_out_size (p, h, w, &oh, &ow);
  if (din != NULL)
    dx = g_new0 (gdouble, in_numel);
  if (dweight != NULL)
    dw = g_new0 (gdouble, p->cout * per_out);
  if (dbias != NULL)
    db = g_new0 (gdouble, p->cout);

  for (gint b = 0; b < n; b++) {
    for (gint co = 0; co < p->cout; co++) {
      gint g = co / cout_g;
      const gfloat *wc = p->weight ? p->weight + co * per_out : NULL;
      gdouble *dwc = dw ? dw + co * per_out : NULL;

      for (gint oy = 0; oy < oh; oy++) {
        for (gint ox = 0; ox < ow; ox++) {
          gdouble gr = dout[(((gsize) b * p->cout + co) * oh + oy) * ow + ox];

          if (db != NULL)
            db[co] += gr;
          for (gint ci = 0; ci < cin_g; ci++) {
            gsize plane = ((gsize) b * p->cin + g * cin_g + ci) * h * w;

            for (gint ky = 0; ky < p->kh; ky++) {
              gint iy = pad_index (oy * p->stride_h + ky * d - p->pad.top, h,
                  p->pad.mode);

              if (iy < 0)
                continue;
              for (gint kx = 0; kx < p->kw; kx++) {
                gint ix = pad_index (ox * p->stride_w + kx * d - p->pad.left,
                    w, p->pad.mode);
                gsize tap = (ci * p->kh + ky) * p->kw + kx;

                if (ix < 0)
                  continue;
                if (dx != NULL)
                  dx[plane + (gsize) iy * w + ix] += wc[tap] * gr;
                if (dwc != NULL)
                  dwc[tap] += in[plane + (gsize) iy * w + ix] * gr;
              }
            }
          }
        }
      }
    }
  }

  if (din != NULL)
    for (gsize i = 0; i < in_numel; i++)
      din[i] = dx[i];
  if (dweight != NULL)
    for (gsize i = 0; i < p->cout * per_out; i++)
      dweight[i] += dw[i];
  if (dbias != NULL)
    for (gint co = 0; co < p->cout; co++)
      dbias[co] += db[co];
}

/* ---- device ------------------------------------------------------------- */

static gboolean
forced (const gchar * variant)
{
  const gchar *v = g_getenv ("NEURALCL_CONV_BWD_VARIANT");

  return v != NULL && g_str_equal (v, variant);
}

static gboolean
direct_applies (const NclConvParams * p, gboolean weights)
{
  if (forced ("generic") || MAX (p->dilation, 1) != 1 || p->kw > 17
      || (p->stride_w != 1 && p->stride_w != 2))
    return FALSE;
  /* the data kernel tiles input channels across the whole cout */
  return weights || p->groups == 1;
}

/* The data gradient of a stride-1 conv is the forward conv of dout with
 * flipped, transposed weights: worth it where the forward conv has
 * Winograd (3x3, CPU devices, 16 <= channels; at most 256 output channels:
 * beyond, the Winograd transforms cost more than they save). */
static gboolean
transposed_applies (NclContext * ctx, const NclConvParams * p)
{
  if (forced ("generic") || forced ("direct"))
    return FALSE;
  return p->groups == 1 && MAX (p->dilation, 1) == 1 && p->kh == 3
      && p->kw == 3 && p->stride_h == 1 && p->stride_w == 1
      && p->pad.top <= 2 && p->pad.bottom <= 2 && p->pad.left <= 2
      && p->pad.right <= 2 && p->cin >= 16 && p->cout >= 16
      && p->cout <= 256 && ncl_context_is_cpu (ctx);
}

const gchar *
ncl_conv2d_backward_variant (NclContext * ctx, const NclConvParams * p,
    gboolean weights)
{
  if (!weights && transposed_applies (ctx, p))
    return "transposed";
  return direct_applies (p, weights) ? "direct" : "generic";
}

static gboolean
check_params (const NclConvParams * p, GError ** error)
{
  if (p->cin <= 0 || p->cout <= 0 || p->kh <= 0 || p->kw <= 0
      || p->stride_h <= 0 || p->stride_w <= 0 || p->groups <= 0
      || p->cin % p->groups != 0 || p->cout % p->groups != 0
      || p->pad.top < 0 || p->pad.bottom < 0 || p->pad.left < 0
      || p->pad.right < 0) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "conv backward: invalid parameters (cin %d, cout %d, kernel %dx%d, "
        "stride %dx%d, groups %d)", p->cin, p->cout, p->kh, p->kw,
        p->stride_h, p->stride_w, p->groups);
    return FALSE;
  }
  return TRUE;
}

/* Checks that @dout is what the conv makes of an (n, cin, h, w) input. */
static gboolean
check_shapes (const NclConvParams * p, gint n, gint c, gint h, gint w,
    const NclTensor * dout, GError ** error)
{
  gint oh, ow;

  ncl_conv2d_out_size (p, h, w, &oh, &ow);
  if (c != p->cin || dout->n != n || dout->c != p->cout || dout->h != oh
      || dout->w != ow || oh <= 0 || ow <= 0) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "conv backward: dout (%d, %d, %d, %d) does not match input (%d, %d, "
        "%d, %d) -> (%d, %d, %d, %d)", dout->n, dout->c, dout->h, dout->w, n,
        c, h, w, n, p->cout, oh, ow);
    return FALSE;
  }
  if ((gdouble) n * MAX (p->cin, p->cout) * (h + p->pad.top + p->pad.bottom)
      * (w + p->pad.left + p->pad.right + 64) > G_MAXINT / 2) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_UNSUPPORTED,
        "conv backward: input (%d, %d, %d, %d) too large", n, c, h, w);
    return FALSE;
  }
  return TRUE;
}

/* A read-write scratch buffer of @floats, contents undefined, plus
 * NCL_TENSOR_SLACK zeros. */
static cl_mem
scratch_buffer (NclContext * ctx, gsize floats, GError ** error)
{
  const gfloat zero = 0.0f;
  cl_int st;
  cl_mem buf = clCreateBuffer (ncl_context_get_cl_context (ctx),
      CL_MEM_READ_WRITE, (floats + NCL_TENSOR_SLACK) * sizeof (gfloat), NULL,
      &st);

  /* vector kernels may over-read into the slack: keep it finite */
  if (st == CL_SUCCESS) {
    st = clEnqueueFillBuffer (ncl_context_get_queue (ctx), buf, &zero,
        sizeof (zero), floats * sizeof (gfloat),
        NCL_TENSOR_SLACK * sizeof (gfloat), 0, NULL, NULL);
    if (st != CL_SUCCESS)
      clReleaseMemObject (buf);
  }
  if (st != CL_SUCCESS) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_OPENCL,
        "conv backward: cannot allocate %" G_GSIZE_FORMAT " floats: %s",
        floats, ncl_cl_status_name (st));
    return NULL;
  }
  return buf;
}

/* A new (n, c, h, w) tensor whose contents are undefined: no fill pass
 * over memory that is about to be overwritten anyway. */
static NclTensor *
scratch_tensor (NclContext * ctx, gint n, gint c, gint h, gint w,
    GError ** error)
{
  NclTensor *t;
  cl_mem buf = scratch_buffer (ctx, (gsize) n * c * h * w, error);

  if (buf == NULL)
    return NULL;
  t = g_new0 (NclTensor, 1);
  t->ctx = ncl_context_ref (ctx);
  t->buf = buf;
  t->n = n;
  t->c = c;
  t->h = h;
  t->w = w;
  t->capacity = (gsize) n * c * h * w;
  return t;
}

/* Pads @in (scale 1, negative pads crop) into a new tensor: the pad
 * layer's forward, one row per work-item with vector copies. */
static NclTensor *
padded_copy (NclContext * ctx, const NclTensor * in, const NclPadding * pad,
    GError ** error)
{
  gint oh = in->h + pad->top + pad->bottom, ow = in->w + pad->left
      + pad->right, planes = in->n * in->c, mode = pad->mode;
  g_autoptr (NclTensor) t = NULL;
  gsize global[2];
  cl_kernel k;
  gboolean ok;

  k = ncl_context_get_kernel (ctx, "backward", "pad_fwd_row", NULL, error);
  if (k == NULL)
    return NULL;
  t = scratch_tensor (ctx, in->n, in->c, oh, ow, error);
  if (t == NULL)
    return NULL;
  global[0] = oh;
  global[1] = planes;
  ncl_context_lock (ctx);
  ok = ncl_kernel_set_args (k, error, sizeof (cl_mem), &in->buf,
      sizeof (cl_mem), &t->buf, sizeof (gint), &planes, sizeof (gint),
      &in->h, sizeof (gint), &in->w, sizeof (gint), &oh, sizeof (gint), &ow,
      sizeof (gint), &pad->top, sizeof (gint), &pad->left, sizeof (gint),
      &mode, 0)
      && ncl_context_run (ctx, k, 2, global, NULL, error);
  ncl_context_unlock (ctx);
  if (!ok)
    return NULL;
  return g_steal_pointer (&t);
}

/* Sets the arguments of @k from (gsize size, pointer) pairs ended by 0, as
 * ncl_kernel_set_args() does, and enqueues it, under the context lock. */
static gboolean
run_locked (NclContext * ctx, cl_kernel k, guint dims, const gsize * global,
    GError ** error, ...)
{
  va_list ap;
  gboolean ok = TRUE;
  guint i = 0;

  va_start (ap, error);
  ncl_context_lock (ctx);
  for (;;) {
    gsize size = va_arg (ap, gsize);
    const void *ptr;
    cl_int st;

    if (size == 0)
      break;
    ptr = va_arg (ap, const void *);
    st = clSetKernelArg (k, i++, size, ptr);
    if (st != CL_SUCCESS) {
      g_set_error (error, NCL_ERROR, NCL_ERROR_OPENCL,
          "conv backward: argument %u: %s", i - 1, ncl_cl_status_name (st));
      ok = FALSE;
      break;
    }
  }
  va_end (ap);
  if (ok)
    ok = ncl_context_run (ctx, k, dims, global, NULL, error);
  ncl_context_unlock (ctx);
  return ok;
}

#define ARG(x) (gsize) sizeof (x), (const void *) &(x)

/* dL/d(input) of the valid part: target (n, cin, ht, wt), with the conv's
 * top/left offsets @pt, @pl (zero padding elsewhere). */
static gboolean
data_direct (NclContext * ctx, const NclConvParams * p, cl_mem weight,
    const NclTensor * dout, NclTensor * target, gint pt, gint pl,
    GError ** error)
{
  gint sh = p->stride_h, sw = p->stride_w, kh = p->kh, kw = p->kw;
  gint cin = p->cin, cout = p->cout, n = dout->n;
  gint ht = target->h, wt = target->w;
  gint ci_tile = sw == 1 ? 16 : 8, pxv = 1, span;
  gint cin_p, total, mt, ml, hp, wpd;
  g_autofree gchar *options = NULL;
  g_autoptr (NclTensor) dzp = NULL;
  NclPadding zp;
  cl_kernel kpack, k;
  cl_mem wp;
  gsize global[3];
  gboolean ok;

  /* few input channels: fewer channels, more pixel vectors per tile */
  while (ci_tile > 4 && ci_tile / 2 >= cin) {
    ci_tile /= 2;
    pxv *= 2;
  }
  span = 16 * sw * pxv;
  cin_p = (cin + ci_tile - 1) / ci_tile * ci_tile;
  options = g_strdup_printf ("-DBWD_TILED -DCI_TILE=%d -DKW=%d -DSW=%d "
      "-DPLM=%d -DPXV=%d", ci_tile, kw, sw, pl % sw, pxv);
  kpack = ncl_context_get_kernel (ctx, "backward", "conv_bwd_pack_w",
      options, error);
  if (kpack == NULL)
    return FALSE;
  k = ncl_context_get_kernel (ctx, "backward", "conv_bwd_data_direct",
      options, error);
  if (k == NULL)
    return FALSE;

  /* dout, zero-padded so that every tap of every tile reads inside it */
  mt = kh - 1 - pt > 0 ? (kh - 1 - pt + sh - 1) / sh : 0;
  ml = kw - 1 - pl > 0 ? (kw - 1 - pl + sw - 1) / sw : 0;
  hp = mt + (ht - 1 + pt) / sh + 1;
  wpd = ml + (wt + span - 1) / span * span / sw + (sw - 1 + pl) / sw;
  zp.top = mt;
  zp.bottom = hp - mt - dout->h;
  zp.left = ml;
  zp.right = wpd - ml - dout->w;
  zp.mode = NCL_PAD_ZERO;
  dzp = padded_copy (ctx, dout, &zp, error);
  if (dzp == NULL)
    return FALSE;

  total = cin_p * cout * kh * kw;
  wp = scratch_buffer (ctx, total, error);
  if (wp == NULL)
    return FALSE;
  global[0] = total;
  ok = run_locked (ctx, kpack, 1, global, error, ARG (weight), ARG (wp),
      ARG (cin), ARG (cout), ARG (kh), ARG (total), (gsize) 0);

  global[0] = cin_p / ci_tile;
  global[1] = (wt + span - 1) / span;
  global[2] = (gsize) n * ht;
  ok = ok && run_locked (ctx, k, 3, global, error, ARG (dzp->buf), ARG (wp),
      ARG (target->buf), ARG (n), ARG (cin), ARG (ht), ARG (wt), ARG (cout),
      ARG (kh), ARG (sh), ARG (pt), ARG (pl), ARG (hp), ARG (wpd), ARG (mt),
      ARG (ml), (gsize) 0);
  clReleaseMemObject (wp);
  return ok;
}

static gboolean
data_generic (NclContext * ctx, const NclConvParams * p, cl_mem weight,
    const NclTensor * dout, NclTensor * target, gint pt, gint pl,
    GError ** error)
{
  gint dil = MAX (p->dilation, 1), n = dout->n;
  cl_kernel k;
  gsize global[3];

  k = ncl_context_get_kernel (ctx, "backward", "conv_bwd_data_generic", NULL,
      error);
  if (k == NULL)
    return FALSE;
  global[0] = target->w;
  global[1] = target->h;
  global[2] = (gsize) n * p->cin;
  return run_locked (ctx, k, 3, global, error, ARG (dout->buf),
      ARG (weight), ARG (target->buf), ARG (n), ARG (p->cin),
      ARG (target->h), ARG (target->w), ARG (p->cout), ARG (dout->h),
      ARG (dout->w), ARG (p->kh), ARG (p->kw), ARG (p->stride_h),
      ARG (p->stride_w), ARG (dil), ARG (pt), ARG (pl), ARG (p->groups),
      (gsize) 0);
}

/* target (n, cin, ht, wt): the forward conv of dout, zero-padded by
 * k - 1 - pad on each side, with w'[ci][co][ky][kx] =
 * w[co][ci][kh - 1 - ky][kw - 1 - kx]. */
static gboolean
data_transposed (NclContext * ctx, const NclConvParams * p, cl_mem weight,
    const NclTensor * dout, NclTensor * target, const NclPadding * pad,
    GError ** error)
{
  gint kh = p->kh, kw = p->kw, cin = p->cin, cout = p->cout;
  gsize nw = (gsize) cout * cin * kh * kw;
  g_autofree gfloat *w = g_new (gfloat, nw);
  g_autofree gfloat *wt = g_new (gfloat, nw);
  g_autoptr (NclConv) conv = NULL;
  NclConvParams q = { 0 };
  cl_int st;

  st = clEnqueueReadBuffer (ncl_context_get_queue (ctx), weight, CL_TRUE, 0,
      nw * sizeof (gfloat), w, 0, NULL, NULL);
  if (st != CL_SUCCESS) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_OPENCL,
        "conv backward: cannot read the weights: %s",
        ncl_cl_status_name (st));
    return FALSE;
  }
  for (gint co = 0; co < cout; co++)
    for (gint ci = 0; ci < cin; ci++)
      for (gint ky = 0; ky < kh; ky++)
        for (gint kx = 0; kx < kw; kx++)
          wt[(((gsize) ci * cout + co) * kh + ky) * kw + kx] =
              w[(((gsize) co * cin + ci) * kh + kh - 1 - ky) * kw + kw - 1
              - kx];

  q.cin = cout;
  q.cout = cin;
  q.kh = kh;
  q.kw = kw;
  q.stride_h = q.stride_w = 1;
  q.dilation = 1;
  q.groups = 1;
  q.pad.top = kh - 1 - pad->top;
  q.pad.bottom = kh - 1 - pad->bottom;
  q.pad.left = kw - 1 - pad->left;
  q.pad.right = kw - 1 - pad->right;
  q.pad.mode = NCL_PAD_ZERO;
  q.act = NCL_ACT_NONE;
  q.weight = wt;
  conv = ncl_conv_new (ctx, &q, error);
  if (conv == NULL)
    return FALSE;
  return ncl_conv_forward (conv, dout, target, error);
}

gboolean
ncl_conv2d_backward_data (NclContext * ctx, const NclConvParams * p,
    cl_mem weight, const NclTensor * dout, NclTensor * din, GError ** error)
{
  const NclPadding *pad = &p->pad;
  gboolean folded = pad->mode == NCL_PAD_ZERO
      || (pad->top == 0 && pad->bottom == 0 && pad->left == 0
      && pad->right == 0);
  static const NclPadding no_pad = { 0, 0, 0, 0, NCL_PAD_ZERO };
  g_autoptr (NclTensor) scratch = NULL;
  NclTensor *target = din;
  gint pt = pad->top, pl = pad->left;
  gboolean ok;

  if (!check_params (p, error)
      || !check_shapes (p, din->n, din->c, din->h, din->w, dout, error))
    return FALSE;
  if (din == dout) {
    g_set_error_literal (error, NCL_ERROR, NCL_ERROR_FAILED,
        "conv backward: cannot run in place");
    return FALSE;
  }
  if (!ncl_buffer_check (weight, (gsize) p->cout * (p->cin / p->groups)
          * p->kh * p->kw, "conv backward: weight", error))
    return FALSE;
  if (!folded) {
    /* the gradient of the padded input, folded back by the pad backward */
    scratch = scratch_tensor (ctx, din->n, din->c,
        din->h + pad->top + pad->bottom, din->w + pad->left + pad->right,
        error);
    if (scratch == NULL)
      return FALSE;
    target = scratch;
    pt = pl = 0;
  }
  if (transposed_applies (ctx, p))
    ok = data_transposed (ctx, p, weight, dout, target, folded ? pad
        : &no_pad, error);
  else if (direct_applies (p, FALSE))
    ok = data_direct (ctx, p, weight, dout, target, pt, pl, error);
  else
    ok = data_generic (ctx, p, weight, dout, target, pt, pl, error);
  if (ok && !folded)
    ok = ncl_pad_backward (ctx, scratch, 1, pad, din, error);
  return ok;
}

/* Register tile of conv_bwd_weights for a kernel width. */
static void
weights_tile (const NclConvParams * p, gint * co_t, gint * ci_t)
{
  gint kw = p->kw;

  *co_t = kw <= 5 ? 4 : (kw <= 8 ? 3 : 2);
  *ci_t = kw == 1 ? 4 : (kw <= 3 ? 2 : 1);
  *co_t = MIN (*co_t, p->cout / p->groups);
  *ci_t = MIN (*ci_t, p->cin / p->groups);
}

static gboolean
weights_direct (NclContext * ctx, const NclConvParams * p,
    const NclTensor * x, const NclTensor * dout, cl_mem dweight,
    GError ** error)
{
  gint co_t, ci_t, n = dout->n, oh = dout->h, ow = dout->w;
  gint cin_g = p->cin / p->groups, cout_g = p->cout / p->groups;
  gint rows = n * oh, rows_per_chunk, chunks, count;
  gsize global[3];
  g_autofree gchar *options = NULL;
  cl_kernel k, kr;
  cl_mem partial;
  gboolean ok;

  weights_tile (p, &co_t, &ci_t);
  options = g_strdup_printf ("-DBWD_TILED -DCO_T=%d -DCI_T=%d -DKW=%d "
      "-DSW=%d", co_t, ci_t, p->kw, p->stride_w);
  k = ncl_context_get_kernel (ctx, "backward", "conv_bwd_weights", options,
      error);
  if (k == NULL)
    return FALSE;
  kr = ncl_context_get_kernel (ctx, "backward", "conv_bwd_reduce", NULL,
      error);
  if (kr == NULL)
    return FALSE;

  /* row chunks: about 128 vector steps per work-item (fewer items pay
   * more for their final sums), but no more than 64 chunks */
  rows_per_chunk = CLAMP (128 / ((ow + 15) / 16), 1, rows);
  chunks = (rows + rows_per_chunk - 1) / rows_per_chunk;
  if (chunks > 64) {
    chunks = 64;
    rows_per_chunk = (rows + chunks - 1) / chunks;
    chunks = (rows + rows_per_chunk - 1) / rows_per_chunk;
  }
  count = p->cout * cin_g * p->kh * p->kw;
  partial = scratch_buffer (ctx, (gsize) chunks * count, error);
  if (partial == NULL)
    return FALSE;

  global[0] = (gsize) p->groups * ((cout_g + co_t - 1) / co_t);
  global[1] = (gsize) ((cin_g + ci_t - 1) / ci_t) * p->kh;
  global[2] = chunks;
  ok = run_locked (ctx, k, 3, global, error, ARG (x->buf), ARG (dout->buf),
      ARG (partial), ARG (n), ARG (p->cin), ARG (x->h), ARG (x->w),
      ARG (p->cout), ARG (oh), ARG (ow), ARG (p->kh), ARG (p->stride_h),
      ARG (p->groups), ARG (rows_per_chunk), (gsize) 0);
  global[0] = count;
  ok = ok && run_locked (ctx, kr, 1, global, error, ARG (partial),
      ARG (dweight), ARG (count), ARG (chunks), (gsize) 0);
  clReleaseMemObject (partial);
  return ok;
}

static gboolean
weights_generic (NclContext * ctx, const NclConvParams * p,
    const NclTensor * x, const NclTensor * dout, cl_mem dweight,
    GError ** error)
{
  gint dil = MAX (p->dilation, 1), n = dout->n;
  gsize global[3];
  cl_kernel k;

  k = ncl_context_get_kernel (ctx, "backward", "conv_bwd_weights_generic",
      NULL, error);
  if (k == NULL)
    return FALSE;
  global[0] = (gsize) p->kh * p->kw;
  global[1] = p->cin / p->groups;
  global[2] = p->cout;
  return run_locked (ctx, k, 3, global, error, ARG (x->buf),
      ARG (dout->buf), ARG (dweight), ARG (n), ARG (p->cin), ARG (x->h),
      ARG (x->w), ARG (p->cout), ARG (dout->h), ARG (dout->w), ARG (p->kh),
      ARG (p->kw), ARG (p->stride_h), ARG (p->stride_w), ARG (dil),
      ARG (p->groups), (gsize) 0);
}

gboolean
ncl_conv2d_backward_weights (NclContext * ctx, const NclConvParams * p,
    const NclTensor * in, const NclTensor * dout, cl_mem dweight,
    cl_mem dbias, GError ** error)
{
  const NclPadding *pad = &p->pad;
  g_autoptr (NclTensor) padded = NULL;
  const NclTensor *x = in;
  gboolean ok = TRUE;

  if (!check_params (p, error)
      || !check_shapes (p, in->n, in->c, in->h, in->w, dout, error))
    return FALSE;
  if ((dweight != NULL && !ncl_buffer_check (dweight, (gsize) p->cout
              * (p->cin / p->groups) * p->kh * p->kw,
              "conv backward: dweight", error))
      || (dbias != NULL && !ncl_buffer_check (dbias, p->cout,
              "conv backward: dbias", error)))
    return FALSE;

  if (dbias != NULL) {
    gint hw = dout->h * dout->w;
    gsize global = p->cout;
    cl_kernel k = ncl_context_get_kernel (ctx, "backward", "conv_bwd_bias",
        NULL, error);

    if (k == NULL)
      return FALSE;
    ok = run_locked (ctx, k, 1, &global, error, ARG (dout->buf),
        ARG (dbias), ARG (dout->n), ARG (p->cout), ARG (hw), (gsize) 0);
  }
  if (!ok || dweight == NULL)
    return ok;

  if (pad->top || pad->bottom || pad->left || pad->right) {
    padded = padded_copy (ctx, in, pad, error);
    if (padded == NULL)
      return FALSE;
    x = padded;
  }
  if (direct_applies (p, TRUE))
    return weights_direct (ctx, p, x, dout, dweight, error);
  return weights_generic (ctx, p, x, dout, dweight, error);
}
