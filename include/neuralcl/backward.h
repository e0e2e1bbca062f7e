/* Backward passes for training, and the Adam optimiser.
 *
 * Every layer here has an OpenCL backward (ncl_<layer>_backward*) and a
 * plain-C reference beside it (..._backward_ref, on host arrays) that
 * defines what it computes; tests/train/test-gradients.c checks each
 * reference against finite differences of the forward reference in
 * layers.h and each device path against its reference.
 *
 * Conventions:
 *  - A gradient dX has the shape of the forward tensor X (NCHW float32).
 *  - Gradients of layer *inputs* (din, da, dresidual, ...) are
 *    OVERWRITTEN.  Device functions reshape them when the shape follows
 *    from the arguments; where it does not (conv, global average pool),
 *    the tensor must already have the forward input's shape, which is
 *    checked.  Use ncl_grad_add() to sum gradients arriving from several
 *    consumers (a tensor used twice, the skip path of a residual block).
 *  - Gradients of *parameters* (dweight, dbias, dgamma, dbeta) are
 *    ACCUMULATED (+=), so a batch may be processed in several chunks;
 *    clear them with ncl_buffer_zero() before each step.  Any of them may
 *    be NULL (frozen parameter: nothing is computed for it).
 *  - Activations fused into a forward layer: ncl_activation_backward()
 *    turns dL/d(output) into dL/d(pre-activation) using the forward
 *    *output* (every NclActivation can be differentiated from its output;
 *    leaky ReLU needs alpha > 0).  The conv and fully connected backwards
 *    take dL/d(pre-activation) and ignore the layer's act: call
 *    ncl_activation_backward() first (in place is fine).  Instance norm
 *    and add take dL/d(output) and the forward output and do it
 *    themselves.
 *  - Parameter buffers are plain cl_mem in the forward layouts of
 *    layers.h (e.g. conv weights (cout, cin / groups, kh, kw)).  Adam
 *    writes them, so create them with ncl_buffer_new_rw(), not with the
 *    read-only ncl_buffer_from_host().
 */
#pragma once

#include <neuralcl/layers.h>

G_BEGIN_DECLS

/* ---- buffers and gradient helpers --------------------------------------- */

/* Creates a read-write device buffer of @n floats (plus NCL_TENSOR_SLACK),
 * holding @data, or zeros when @data is NULL. */
cl_mem ncl_buffer_new_rw (NclContext * ctx, const gfloat * data, gsize n,
    GError ** error);
/* Checks that @buf holds at least @floats floats; the error names it as
 * @what ("conv backward: dweight"). */
gboolean ncl_buffer_check (cl_mem buf, gsize floats, const gchar * what,
    GError ** error);
/* Sets the first @n floats of @buf to zero. */
gboolean ncl_buffer_zero (NclContext * ctx, cl_mem buf, gsize n,
    GError ** error);

/* dst += src (same number of elements) */
void ncl_grad_add_ref (const gfloat * src, gsize n, gfloat * dst);
gboolean ncl_grad_add (NclContext * ctx, const NclTensor * src,
    NclTensor * dst, GError ** error);

/* ---- element-wise ------------------------------------------------------- */
/* din = dout * act'(.), computed from the forward output @out.  In place
 * (din == dout) is allowed.  @out may be NULL for NCL_ACT_NONE. */
void ncl_activation_backward_ref (const gfloat * out, const gfloat * dout,
    gsize n, NclActivation act, gfloat alpha, gfloat * din);
gboolean ncl_activation_backward (NclContext * ctx, const NclTensor * out,
    const NclTensor * dout, NclActivation act, gfloat alpha, NclTensor * din,
    GError ** error);

/* out = act(a + b): da = db = dout * act'(out).  @db may be NULL (then use
 * @da for both); either may be @dout. */
void ncl_add_backward_ref (const gfloat * out, const gfloat * dout, gsize n,
    NclActivation act, gfloat alpha, gfloat * da, gfloat * db);
gboolean ncl_add_backward (NclContext * ctx, const NclTensor * out,
    const NclTensor * dout, NclActivation act, gfloat alpha, NclTensor * da,
    NclTensor * db, GError ** error);

/* channel concat out (n, ca + cb, h, w): da, db are its two slices.  @db
 * may be NULL. */
void ncl_concat_backward_ref (const gfloat * dout, gint n, gint ca, gint cb,
    gint hw, gfloat * da, gfloat * db);
gboolean ncl_concat_backward (NclContext * ctx, const NclTensor * dout,
    gint ca, NclTensor * da, NclTensor * db, GError ** error);

/* channel zero padding: din (n, c, h, w) is channels [before, before + c)
 * of dout. */
void ncl_pad_channels_backward_ref (const gfloat * dout, gint n, gint c,
    gint hw, gint before, gint after, gfloat * din);
gboolean ncl_pad_channels_backward (NclContext * ctx, const NclTensor * dout,
    gint before, gint after, NclTensor * din, GError ** error);

/* per-sample L2 normalisation out = x / max(||x||, eps): needs the forward
 * input @in (n, len). */
void ncl_l2norm_backward_ref (const gfloat * in, const gfloat * dout, gint n,
    gsize len, gfloat eps, gfloat * din);
gboolean ncl_l2norm_backward (NclContext * ctx, const NclTensor * in,
    const NclTensor * dout, gfloat eps, NclTensor * din, GError ** error);

/* ---- pad / nearest upsample / crop -------------------------------------- */
/* Backward of ncl_pad_forward: every output pixel's gradient is added to
 * the input pixel it was read from (reflect and edge padding add mirrored
 * or edge gradients to interior pixels; an upsample sums its scale^2
 * children; cropped pixels get zero).  din becomes (n, c, h, w) with
 * h = (dout->h - top - bottom) / scale (likewise w). */
void ncl_pad_backward_ref (const gfloat * dout, gint n, gint c, gint h,
    gint w, gint scale, const NclPadding * pad, gfloat * din);
gboolean ncl_pad_backward (NclContext * ctx, const NclTensor * dout,
    gint scale, const NclPadding * pad, NclTensor * din, GError ** error);

/* ---- conv2d ------------------------------------------------------------- */
/* @dout is dL/d(pre-activation) (n, cout, oh, ow); p->act is ignored.
 * din (n, cin, h, w) is overwritten, dweight (cout, cin / groups, kh, kw)
 * and dbias (cout) accumulate; each may be NULL.  @in is only read for
 * dweight; p->weight only for din.  All padding modes and dilation. */
void ncl_conv2d_backward_ref (const NclConvParams * p, const gfloat * in,
    gint n, gint h, gint w, const gfloat * dout, gfloat * din,
    gfloat * dweight, gfloat * dbias);

/* din = dL/d(input); @din must already be shaped (n, cin, h, w) like the
 * forward input.  @weight: (cout, cin / groups, kh, kw) on the device (the
 * host pointers in @p are not used).  Zero padding is folded into the
 * kernel; reflect/edge padding goes through a padded scratch and
 * ncl_pad_backward(). */
gboolean ncl_conv2d_backward_data (NclContext * ctx, const NclConvParams * p,
    cl_mem weight, const NclTensor * dout, NclTensor * din, GError ** error);
/* dweight += dL/dW, dbias += dL/db (either may be NULL); @in is the
 * forward input. */
gboolean ncl_conv2d_backward_weights (NclContext * ctx,
    const NclConvParams * p, const NclTensor * in, const NclTensor * dout,
    cl_mem dweight, cl_mem dbias, GError ** error);

/* Name of the variant the data (@weights FALSE) or weight gradient would
 * use for @p: "transposed" (data of 3x3 stride-1 convs on CPU devices: the
 * forward Winograd conv of dout with flipped, transposed weights),
 * "direct" (register-tiled kernels) or "generic".
 * NEURALCL_CONV_BWD_VARIANT=direct or =generic forces those where they
 * apply (lib/backward-conv.c lists the conditions). */
const gchar *ncl_conv2d_backward_variant (NclContext * ctx,
    const NclConvParams * p, gboolean weights);

/* ---- instance norm (affine) + residual + activation --------------------- */
/* Forward: out = act(gamma * xhat + beta [+ residual]), xhat = (x - mean)
 * / sqrt(var + eps) per (n, c) plane.  Given dout = dL/d(out), the forward
 * input @in (so not a forward run in place) and the forward output @out
 * (NULL allowed for NCL_ACT_NONE):
 *   dz = dout * act'(out);  dresidual = dz;  dbeta += sum dz;
 *   dgamma += sum dz * xhat;
 *   din = gamma / sqrt(var + eps) * (dz - mean(dz) - xhat * mean(dz xhat)).
 * @gamma NULL means 1 (non-affine).  @dresidual, @dgamma, @dbeta may be
 * NULL.  din may be dout (in place). */
void ncl_instnorm_backward_ref (const gfloat * in, const gfloat * out,
    const gfloat * dout, gint n, gint c, gint hw, const gfloat * gamma,
    gfloat eps, NclActivation act, gfloat alpha, gfloat * din,
    gfloat * dresidual, gfloat * dgamma, gfloat * dbeta);
gboolean ncl_instnorm_backward (NclContext * ctx, const NclTensor * in,
    const NclTensor * out, const NclTensor * dout, cl_mem gamma, gfloat eps,
    NclActivation act, gfloat alpha, NclTensor * din, NclTensor * dresidual,
    cl_mem dgamma, cl_mem dbeta, GError ** error);

/* ---- pooling ------------------------------------------------------------ */
/* Max: each window's gradient goes to its maximum, recomputed from the
 * forward input @in (the first maximum in row-major order on ties).
 * Average: spread evenly over the window's real pixels.  din becomes
 * (n, c, h, w) like @in. */
void ncl_pool_backward_ref (const NclPoolParams * p, const gfloat * in,
    gint n, gint c, gint h, gint w, const gfloat * dout, gfloat * din);
gboolean ncl_pool_backward (NclContext * ctx, const NclPoolParams * p,
    const NclTensor * in, const NclTensor * dout, NclTensor * din,
    GError ** error);

/* din (n, c, h, w) = dout (n, c) / (h w); @din must already have the
 * forward input's shape. */
void ncl_global_avgpool_backward_ref (const gfloat * dout, gint n, gint c,
    gint hw, gfloat * din);
gboolean ncl_global_avgpool_backward (NclContext * ctx,
    const NclTensor * dout, NclTensor * din, GError ** error);

/* ---- fully connected ---------------------------------------------------- */
/* @dout: dL/d(pre-activation) (n, out_f).  din (n, in_f) is overwritten;
 * dweight (out_f, in_f) and dbias (out_f) accumulate; any may be NULL. */
void ncl_fc_backward_ref (const gfloat * in, gint n, gint in_f, gint out_f,
    const gfloat * weight, const gfloat * dout, gfloat * din,
    gfloat * dweight, gfloat * dbias);
/* @in: the forward input, any shape with n rows of in_f values; din is
 * reshaped like it. */
gboolean ncl_fc_backward (NclContext * ctx, const NclTensor * in,
    cl_mem weight, gint out_f, const NclTensor * dout, NclTensor * din,
    cl_mem dweight, cl_mem dbias, GError ** error);

/* ---- Adam --------------------------------------------------------------- */
typedef struct
{
  gfloat lr;                    /* 1e-3 */
  gfloat beta1, beta2;          /* 0.9, 0.999 */
  gfloat eps;                   /* 1e-8 */
  gfloat weight_decay;          /* 0: none */
  gboolean decoupled;           /* TRUE: AdamW, p -= lr * wd * p; FALSE:
                                 * L2, g += wd * p (torch.optim.Adam) */
  gfloat grad_scale;            /* 1: g = grad * grad_scale, e.g. 1 / chunks */
} NclAdamParams;

/* Fills @p with the defaults above. */
void ncl_adam_params_init (NclAdamParams * p);

/* One Adam step over @n parameters; @step counts from 1 (bias correction
 * 1 - beta^step).  m and v start at zero.
 *   g = grad * grad_scale [+ wd * param];
 *   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2;
 *   param -= lr * (m / (1 - beta1^step)) / (sqrt (v / (1 - beta2^step))
 *       + eps) [+ lr * wd * param (decoupled, before the update)]. */
void ncl_adam_step_ref (const NclAdamParams * p, gint step, gsize n,
    gfloat * param, const gfloat * grad, gfloat * m, gfloat * v);
gboolean ncl_adam_step (NclContext * ctx, const NclAdamParams * p, gint step,
    gsize n, cl_mem param, cl_mem grad, cl_mem m, cl_mem v, GError ** error);

G_END_DECLS
