/* Layers: each has an OpenCL forward and a plain-C reference beside it.
 *
 * All activations are NCHW float32.  A *_ref function works on host arrays
 * and is the definition of what the layer computes; the OpenCL path must
 * match it (tests/kernels/ checks that on random and odd shapes). */
#pragma once

#include <neuralcl/tensor.h>

G_BEGIN_DECLS

typedef enum
{
  NCL_ACT_NONE,
  NCL_ACT_RELU,
  NCL_ACT_LEAKY_RELU,           /* x < 0 ? alpha * x : x */
  NCL_ACT_SIGMOID,
  NCL_ACT_TANH,
  NCL_ACT_RELU6,                /* min(max(x, 0), 6) */
} NclActivation;

typedef enum
{
  NCL_PAD_ZERO,
  NCL_PAD_REFLECT,              /* mirror without repeating the edge */
  NCL_PAD_EDGE,                 /* replicate the edge */
} NclPadMode;

typedef struct
{
  gint top, bottom, left, right;
  NclPadMode mode;
} NclPadding;

/* Parses "none", "relu", "leaky_relu", "sigmoid", "tanh", "relu6". */
gboolean ncl_activation_from_string (const gchar * s, NclActivation * act);
const gchar *ncl_activation_to_string (NclActivation act);
gboolean ncl_pad_mode_from_string (const gchar * s, NclPadMode * mode);

static inline gfloat
ncl_activate (NclActivation act, gfloat alpha, gfloat x)
{
  switch (act) {
    case NCL_ACT_RELU:
      return x > 0.0f ? x : 0.0f;
    case NCL_ACT_LEAKY_RELU:
      return x > 0.0f ? x : alpha * x;
    case NCL_ACT_SIGMOID:
      return 1.0f / (1.0f + __builtin_expf (-x));
    case NCL_ACT_TANH:
      return __builtin_tanhf (x);
    case NCL_ACT_RELU6:
      return x < 0.0f ? 0.0f : (x > 6.0f ? 6.0f : x);
    default:
      return x;
  }
}

/* TensorFlow "same" padding for one axis: total = max((ceil(in/s)-1)*s + k
 * - in, 0); the extra pixel of an odd total goes to the end (bottom/right). */
void ncl_padding_tf_same (gint in_h, gint in_w, gint kh, gint kw, gint sh,
    gint sw, NclPadding * pad);

/* ---- pad (optionally after a nearest upsample by @scale) ---------------- */
/* out: (n, c, h*scale + top + bottom, w*scale + left + right) */
void ncl_pad_forward_ref (const gfloat * in, gint n, gint c, gint h, gint w,
    gint scale, const NclPadding * pad, gfloat * out);
gboolean ncl_pad_forward (NclContext * ctx, const NclTensor * in, gint scale,
    const NclPadding * pad, NclTensor * out, GError ** error);

/* nearest upsample x@scale: ncl_pad_forward with zero padding */

/* channel padding with zeros: out (n, before + c + after, h, w) */
void ncl_pad_channels_forward_ref (const gfloat * in, gint n, gint c, gint hw,
    gint before, gint after, gfloat * out);
gboolean ncl_pad_channels_forward (NclContext * ctx, const NclTensor * in,
    gint before, gint after, NclTensor * out, GError ** error);

/* ---- conv2d ------------------------------------------------------------- */
typedef struct
{
  gint cin, cout;
  gint kh, kw;
  gint stride_h, stride_w;
  gint dilation;                /* 1 only, for now */
  gint groups;                  /* cin and cout divisible by groups */
  NclPadding pad;
  NclActivation act;
  gfloat alpha;                 /* leaky slope */
  const gfloat *weight;         /* (cout, cin / groups, kh, kw) */
  const gfloat *bias;           /* (cout) or NULL */
} NclConvParams;

void ncl_conv2d_out_size (const NclConvParams * p, gint h, gint w,
    gint * oh, gint * ow);
/* out: (n, cout, oh, ow) */
void ncl_conv2d_forward_ref (const NclConvParams * p, const gfloat * in,
    gint n, gint h, gint w, gfloat * out);

/* Folds an inference batch norm y = (x - mean) / sqrt(var + eps) * gamma +
 * beta that follows a conv into the conv's weights and bias (in place;
 * @bias must have room for cout values even if the conv had none). */
void ncl_conv2d_fold_batchnorm (gint cout, gint per_out, gfloat * weight,
    gfloat * bias, const gfloat * gamma, const gfloat * beta,
    const gfloat * mean, const gfloat * var, gfloat eps);

/* A conv prepared for the device: packed weights, chosen kernel variant,
 * its own padding scratch.  Not thread-safe: one per runner. */
typedef struct _NclConv NclConv;
NclConv *ncl_conv_new (NclContext * ctx, const NclConvParams * p,
    GError ** error);
void ncl_conv_free (NclConv * conv);
const NclConvParams *ncl_conv_get_params (const NclConv * conv);
/* Name of the kernel variant used ("direct3x3_s1", "generic", ...). */
const gchar *ncl_conv_get_variant (const NclConv * conv);
gboolean ncl_conv_forward (NclConv * conv, const NclTensor * in,
    NclTensor * out, GError ** error);
/* out = act (conv (in) + res): a ResNet block's last conv and its "add +
 * activation" in one (the conv's own activation must be none; @res has the
 * output's shape and is not @out).  One kernel where the variant allows
 * it (channel-vector), else the conv and an in-place add. */
gboolean ncl_conv_forward_residual (NclConv * conv, const NclTensor * in,
    const NclTensor * res, NclActivation act, gfloat alpha, NclTensor * out,
    GError ** error);
/* Writing straight into the next conv's padded input.  Whether
 * ncl_conv_forward_padded_out can run this conv on @n images of @h x @w
 * (it can where the channel-vector block kernel runs the shape). */
gboolean ncl_conv_can_pad_output (NclConv * conv, gint n, gint h, gint w);
/* act (conv (in) [+ res]) written into the interior of @padded, which is
 * reshaped to (n, cout, oh + pad->top + pad->bottom, ow + pad->left +
 * pad->right) and whose border is left as it is (the caller keeps it zero:
 * a zero-padded input for a conv that then needs no padding pass), and
 * into @out (nullable: not written) as ncl_conv_forward would.  @res
 * (nullable) has the unpadded output shape; with @res the conv's own
 * activation must be none and @act, @alpha apply, without it the conv's.
 * Fails where ncl_conv_can_pad_output says no. */
gboolean ncl_conv_forward_padded_out (NclConv * conv, const NclTensor * in,
    const NclTensor * res, NclActivation act, gfloat alpha,
    const NclPadding * pad, NclTensor * padded, NclTensor * out,
    GError ** error);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (NclConv, ncl_conv_free)

/* ---- instance norm (affine), + optional residual, + activation ---------- */
/* out = act(gamma * (x - mean) / sqrt(var + eps) + beta [+ residual])
 * statistics per (n, c) over h*w, biased variance; gamma/beta may be NULL
 * (1 and 0); residual may be NULL.  In place (out == in) is allowed. */
void ncl_instnorm_forward_ref (const gfloat * in, gint n, gint c, gint hw,
    const gfloat * gamma, const gfloat * beta, gfloat eps,
    const gfloat * residual, NclActivation act, gfloat alpha, gfloat * out);
gboolean ncl_instnorm_forward (NclContext * ctx, const NclTensor * in,
    cl_mem gamma, cl_mem beta, gfloat eps, const NclTensor * residual,
    NclActivation act, gfloat alpha, NclTensor * out, GError ** error);

/* ---- element-wise ------------------------------------------------------- */
void ncl_activation_forward_ref (const gfloat * in, gsize n,
    NclActivation act, gfloat alpha, gfloat * out);
gboolean ncl_activation_forward (NclContext * ctx, const NclTensor * in,
    NclActivation act, gfloat alpha, NclTensor * out, GError ** error);

/* out = act(a + b), same shapes */
void ncl_add_forward_ref (const gfloat * a, const gfloat * b, gsize n,
    NclActivation act, gfloat alpha, gfloat * out);
gboolean ncl_add_forward (NclContext * ctx, const NclTensor * a,
    const NclTensor * b, NclActivation act, gfloat alpha, NclTensor * out,
    GError ** error);

void ncl_clamp_forward_ref (const gfloat * in, gsize n, gfloat lo, gfloat hi,
    gfloat * out);
gboolean ncl_clamp_forward (NclContext * ctx, const NclTensor * in, gfloat lo,
    gfloat hi, NclTensor * out, GError ** error);

/* channel concat: out (n, ca + cb, h, w) */
void ncl_concat_forward_ref (const gfloat * a, gint ca, const gfloat * b,
    gint cb, gint n, gint hw, gfloat * out);
gboolean ncl_concat_forward (NclContext * ctx, const NclTensor * a,
    const NclTensor * b, NclTensor * out, GError ** error);

/* per-sample L2 normalisation over c*h*w: out = x / max(||x||, eps) */
void ncl_l2norm_forward_ref (const gfloat * in, gint n, gsize len,
    gfloat eps, gfloat * out);
gboolean ncl_l2norm_forward (NclContext * ctx, const NclTensor * in,
    gfloat eps, NclTensor * out, GError ** error);

/* ---- pooling ------------------------------------------------------------ */
typedef enum
{
  NCL_POOL_MAX,
  NCL_POOL_AVG,                 /* padding excluded from the average */
} NclPoolType;

typedef struct
{
  NclPoolType type;
  gint kh, kw, stride_h, stride_w;
  NclPadding pad;               /* mode ignored: max pads -inf, avg excludes */
} NclPoolParams;

void ncl_pool_out_size (const NclPoolParams * p, gint h, gint w, gint * oh,
    gint * ow);
void ncl_pool_forward_ref (const NclPoolParams * p, const gfloat * in, gint n,
    gint c, gint h, gint w, gfloat * out);
gboolean ncl_pool_forward (NclContext * ctx, const NclPoolParams * p,
    const NclTensor * in, NclTensor * out, GError ** error);

/* global average pool: out (n, c, 1, 1) */
void ncl_global_avgpool_forward_ref (const gfloat * in, gint n, gint c,
    gint hw, gfloat * out);
gboolean ncl_global_avgpool_forward (NclContext * ctx, const NclTensor * in,
    NclTensor * out, GError ** error);

/* ---- fully connected ---------------------------------------------------- */
/* out (n, out_f) = act(in (n, in_f) . W^T + b); weight (out_f, in_f) */
void ncl_fc_forward_ref (const gfloat * in, gint n, gint in_f, gint out_f,
    const gfloat * weight, const gfloat * bias, NclActivation act,
    gfloat alpha, gfloat * out);
gboolean ncl_fc_forward (NclContext * ctx, const NclTensor * in,
    cl_mem weight, cl_mem bias, gint out_f, NclActivation act, gfloat alpha,
    NclTensor * out, GError ** error);

G_END_DECLS
