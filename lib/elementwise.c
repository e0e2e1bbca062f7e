/* Element-wise layers (activation, add, clamp, concat, L2 norm) and the
 * small parsers and helpers around activations and padding. */
#include <neuralcl/error.h>
#include <neuralcl/layers.h>

#include <math.h>
#include <string.h>

static const struct
{
  const gchar *name;
  NclActivation act;
} activation_names[] = {
  {"none", NCL_ACT_NONE},
  {"relu", NCL_ACT_RELU},
  {"leaky_relu", NCL_ACT_LEAKY_RELU},
  {"sigmoid", NCL_ACT_SIGMOID},
  {"tanh", NCL_ACT_TANH},
  {"relu6", NCL_ACT_RELU6},
};

/**
 * ncl_activation_from_string:
 * @s: "none", "relu", "leaky_relu", "sigmoid" or "tanh"
 * @act: (out): the parsed activation
 *
 * Parses an activation name.
 * Returns: FALSE (leaving @act untouched) if @s is not a known name.
 */
gboolean
ncl_activation_from_string (const gchar * s, NclActivation * act)
{
  if (s == NULL)
    return FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (activation_names); i++) {
    if (strcmp (s, activation_names[i].name) == 0) {
      *act = activation_names[i].act;
      return TRUE;
    }
  }
  return FALSE;
}

/**
 * ncl_activation_to_string:
 *
 * Returns: (transfer none): the name ncl_activation_from_string() accepts
 *   for @act, or NULL if @act is not a valid activation.
 */
const gchar *
ncl_activation_to_string (NclActivation act)
{
  for (guint i = 0; i < G_N_ELEMENTS (activation_names); i++) {
    if (activation_names[i].act == act)
      return activation_names[i].name;
  }
  return NULL;
}

/**
 * ncl_pad_mode_from_string:
 * @s: "zero" (also "zeros", "constant"), "reflect", or "edge" (also
 *   "replicate")
 * @mode: (out): the parsed mode
 *
 * Returns: FALSE (leaving @mode untouched) if @s is not a known name.
 */
gboolean
ncl_pad_mode_from_string (const gchar * s, NclPadMode * mode)
{
  static const struct
  {
    const gchar *name;
    NclPadMode mode;
  } names[] = {
    {"zero", NCL_PAD_ZERO},
    {"zeros", NCL_PAD_ZERO},
    {"constant", NCL_PAD_ZERO},
    {"reflect", NCL_PAD_REFLECT},
    {"edge", NCL_PAD_EDGE},
    {"replicate", NCL_PAD_EDGE},
  };

  if (s == NULL)
    return FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (names); i++) {
    if (strcmp (s, names[i].name) == 0) {
      *mode = names[i].mode;
      return TRUE;
    }
  }
  return FALSE;
}

/* TF "same" padding of one axis: (before, after), the odd pixel after. */
static void
tf_same_axis (gint in, gint k, gint s, gint * before, gint * after)
{
  gint out = (in + s - 1) / s;
  gint total = MAX ((out - 1) * s + k - in, 0);

  *before = total / 2;
  *after = total - *before;
}

/**
 * ncl_padding_tf_same:
 *
 * Fills @pad with TensorFlow "same" zero padding for a window of @kh x @kw
 * with strides @sh, @sw over an @in_h x @in_w input.
 */
void
ncl_padding_tf_same (gint in_h, gint in_w, gint kh, gint kw, gint sh, gint sw,
    NclPadding * pad)
{
  tf_same_axis (in_h, kh, MAX (sh, 1), &pad->top, &pad->bottom);
  tf_same_axis (in_w, kw, MAX (sw, 1), &pad->left, &pad->right);
  pad->mode = NCL_PAD_ZERO;
}

/* ---- references --------------------------------------------------------- */

void
ncl_activation_forward_ref (const gfloat * in, gsize n, NclActivation act,
    gfloat alpha, gfloat * out)
{
  for (gsize i = 0; i < n; i++)
    out[i] = ncl_activate (act, alpha, in[i]);
}

void
ncl_add_forward_ref (const gfloat * a, const gfloat * b, gsize n,
    NclActivation act, gfloat alpha, gfloat * out)
{
  for (gsize i = 0; i < n; i++)
    out[i] = ncl_activate (act, alpha, a[i] + b[i]);
}

void
ncl_clamp_forward_ref (const gfloat * in, gsize n, gfloat lo, gfloat hi,
    gfloat * out)
{
  for (gsize i = 0; i < n; i++)
    out[i] = fminf (fmaxf (in[i], lo), hi);
}

void
ncl_concat_forward_ref (const gfloat * a, gint ca, const gfloat * b, gint cb,
    gint n, gint hw, gfloat * out)
{
  gsize len_a = (gsize) ca * hw, len_b = (gsize) cb * hw;

  for (gint s = 0; s < n; s++) {
    gfloat *dst = out + s * (len_a + len_b);        /* (ca + cb, hw) */

    memcpy (dst, a + s * len_a, len_a * sizeof (gfloat));
    memcpy (dst + len_a, b + s * len_b, len_b * sizeof (gfloat));
  }
}

void
ncl_l2norm_forward_ref (const gfloat * in, gint n, gsize len, gfloat eps,
    gfloat * out)
{
  for (gint s = 0; s < n; s++) {
    const gfloat *x = in + s * len;
    gfloat *y = out + s * len;
    gdouble sum = 0.0;
    gfloat norm;

    for (gsize i = 0; i < len; i++)
      sum += (gdouble) x[i] * x[i];
    norm = fmaxf ((gfloat) sqrt (sum), eps);
    for (gsize i = 0; i < len; i++)
      y[i] = x[i] / norm;
  }
}

/* ---- OpenCL ------------------------------------------------------------- */

/* Kernels index with int: refuse tensors they cannot address. */
static gboolean
check_numel (const gchar * what, gsize numel, GError ** error)
{
  if (numel > (gsize) G_MAXINT - 16) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_UNSUPPORTED,
        "%s: %" G_GSIZE_FORMAT " values, at most %d supported", what, numel,
        G_MAXINT - 16);
    return FALSE;
  }
  return TRUE;
}

static gboolean
same_shape (const NclTensor * a, const NclTensor * b)
{
  return a->n == b->n && a->c == b->c && a->h == b->h && a->w == b->w;
}

/* Runs one of the flat *_16 kernels over @n values; the arguments after
 * the first two buffers were set by the caller. */
static gboolean
run_flat16 (NclContext * ctx, cl_kernel k, gsize n, GError ** error)
{
  gsize global = (n + 15) / 16;

  if (global == 0)
    return TRUE;
  return ncl_context_run (ctx, k, 1, &global, NULL, error);
}

/**
 * ncl_activation_forward:
 * @out: reshaped to the shape of @in; may be @in itself
 *
 * Computes out = act(in) on the device.
 * Returns: FALSE with @error set on failure.
 */
gboolean
ncl_activation_forward (NclContext * ctx, const NclTensor * in,
    NclActivation act, gfloat alpha, NclTensor * out, GError ** error)
{
  gsize numel = ncl_tensor_numel (in);
  gint n = (gint) numel, a = act;
  cl_kernel k;
  gboolean ok;

  if (!check_numel ("activation", numel, error))
    return FALSE;
  if (out != in && !ncl_tensor_reshape (out, in->n, in->c, in->h, in->w,
          error))
    return FALSE;
  k = ncl_context_get_kernel (ctx, "elementwise", "activation_16", NULL,
      error);
  if (k == NULL)
    return FALSE;

  ncl_context_lock (ctx);
  ok = ncl_kernel_set_args (k, error, sizeof (cl_mem), &in->buf,
      sizeof (cl_mem), &out->buf, sizeof (gint), &n, sizeof (gint), &a,
      sizeof (gfloat), &alpha, 0)
      && run_flat16 (ctx, k, numel, error);
  ncl_context_unlock (ctx);
  return ok;
}

/**
 * ncl_add_forward:
 * @out: reshaped to the shape of @a; may be @a or @b
 *
 * Computes out = act(a + b) on the device.
 * Returns: FALSE with @error set (NCL_ERROR_SHAPE when @a and @b differ in
 *   shape).
 */
gboolean
ncl_add_forward (NclContext * ctx, const NclTensor * a, const NclTensor * b,
    NclActivation act, gfloat alpha, NclTensor * out, GError ** error)
{
  gsize numel = ncl_tensor_numel (a);
  gint n = (gint) numel, ac = act;
  cl_kernel k;
  gboolean ok;

  if (!same_shape (a, b)) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "add: shapes differ: a (%d, %d, %d, %d), b (%d, %d, %d, %d)",
        a->n, a->c, a->h, a->w, b->n, b->c, b->h, b->w);
    return FALSE;
  }
  if (!check_numel ("add", numel, error))
    return FALSE;
  if (out != a && out != b
      && !ncl_tensor_reshape (out, a->n, a->c, a->h, a->w, error))
    return FALSE;
  k = ncl_context_get_kernel (ctx, "elementwise", "add_16", NULL, error);
  if (k == NULL)
    return FALSE;

  ncl_context_lock (ctx);
  ok = ncl_kernel_set_args (k, error, sizeof (cl_mem), &a->buf,
      sizeof (cl_mem), &b->buf, sizeof (cl_mem), &out->buf, sizeof (gint), &n,
      sizeof (gint), &ac, sizeof (gfloat), &alpha, 0)
      && run_flat16 (ctx, k, numel, error);
  ncl_context_unlock (ctx);
  return ok;
}

/**
 * ncl_clamp_forward:
 * @out: reshaped to the shape of @in; may be @in itself
 *
 * Computes out = min(max(in, lo), hi) on the device.
 * Returns: FALSE with @error set on failure.
 */
gboolean
ncl_clamp_forward (NclContext * ctx, const NclTensor * in, gfloat lo,
    gfloat hi, NclTensor * out, GError ** error)
{
  gsize numel = ncl_tensor_numel (in);
  gint n = (gint) numel;
  cl_kernel k;
  gboolean ok;

  if (!check_numel ("clamp", numel, error))
    return FALSE;
  if (out != in && !ncl_tensor_reshape (out, in->n, in->c, in->h, in->w,
          error))
    return FALSE;
  k = ncl_context_get_kernel (ctx, "elementwise", "clamp_16", NULL, error);
  if (k == NULL)
    return FALSE;

  ncl_context_lock (ctx);
  ok = ncl_kernel_set_args (k, error, sizeof (cl_mem), &in->buf,
      sizeof (cl_mem), &out->buf, sizeof (gint), &n, sizeof (gfloat), &lo,
      sizeof (gfloat), &hi, 0)
      && run_flat16 (ctx, k, numel, error);
  ncl_context_unlock (ctx);
  return ok;
}

/**
 * ncl_concat_forward:
 * @out: reshaped to (n, a->c + b->c, h, w); must be neither @a nor @b
 *
 * Concatenates @a and @b along the channel axis.
 * Returns: FALSE with @error set (NCL_ERROR_SHAPE when n, h or w differ).
 */
gboolean
ncl_concat_forward (NclContext * ctx, const NclTensor * a,
    const NclTensor * b, NclTensor * out, GError ** error)
{
  gsize len_a = (gsize) a->c * a->h * a->w, len_b = (gsize) b->c * b->h * b->w;
  gint la = (gint) len_a, lb = (gint) len_b;
  gsize global[3];
  cl_kernel k;
  gboolean ok;

  if (a->n != b->n || a->h != b->h || a->w != b->w) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "concat: a (%d, %d, %d, %d) and b (%d, %d, %d, %d) differ outside "
        "the channel axis", a->n, a->c, a->h, a->w, b->n, b->c, b->h, b->w);
    return FALSE;
  }
  if (out == a || out == b) {
    g_set_error_literal (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "concat: the output cannot be one of the inputs");
    return FALSE;
  }
  if (!check_numel ("concat", (len_a + len_b) * a->n, error))
    return FALSE;
  if (!ncl_tensor_reshape (out, a->n, a->c + b->c, a->h, a->w, error))
    return FALSE;
  global[0] = (MAX (len_a, len_b) + 15) / 16;
  global[1] = a->n;
  global[2] = 2;
  if (global[0] == 0 || global[1] == 0)
    return TRUE;
  k = ncl_context_get_kernel (ctx, "elementwise", "concat_16", NULL, error);
  if (k == NULL)
    return FALSE;

  ncl_context_lock (ctx);
  ok = ncl_kernel_set_args (k, error, sizeof (cl_mem), &a->buf,
      sizeof (cl_mem), &b->buf, sizeof (cl_mem), &out->buf, sizeof (gint), &la,
      sizeof (gint), &lb, 0)
      && ncl_context_run (ctx, k, 3, global, NULL, error);
  ncl_context_unlock (ctx);
  return ok;
}

/**
 * ncl_l2norm_forward:
 * @out: reshaped to the shape of @in; may be @in itself
 *
 * Normalises each sample of @in (its c * h * w values) to unit L2 norm:
 * out = x / max(||x||, eps).
 * Returns: FALSE with @error set on failure.
 */
gboolean
ncl_l2norm_forward (NclContext * ctx, const NclTensor * in, gfloat eps,
    NclTensor * out, GError ** error)
{
  gsize len = (gsize) in->c * in->h * in->w;
  gint l = (gint) len;
  /* One work-group per sample; a few lanes are enough on a CPU, where a
   * work-group runs on one core anyway. */
  gint wg = ncl_context_is_cpu (ctx) ? 4 : 64;
  gsize global[2], local[2];
  g_autofree gchar *options = NULL;
  cl_kernel k;
  gboolean ok;

  if (!check_numel ("l2norm", ncl_tensor_numel (in), error))
    return FALSE;
  if (out != in && !ncl_tensor_reshape (out, in->n, in->c, in->h, in->w,
          error))
    return FALSE;
  if (len == 0 || in->n == 0)
    return TRUE;
  options = g_strdup_printf ("-DL2NORM_WG=%d", wg);
  k = ncl_context_get_kernel (ctx, "elementwise", "l2norm_16", options,
      error);
  if (k == NULL)
    return FALSE;
  global[0] = wg;
  global[1] = in->n;
  local[0] = wg;
  local[1] = 1;

  ncl_context_lock (ctx);
  ok = ncl_kernel_set_args (k, error, sizeof (cl_mem), &in->buf,
      sizeof (cl_mem), &out->buf, sizeof (gint), &l, sizeof (gfloat), &eps, 0)
      && ncl_context_run (ctx, k, 2, global, local, error);
  ncl_context_unlock (ctx);
  return ok;
}
