/* Fully connected layer. */
#include <neuralcl/error.h>
#include <neuralcl/layers.h>

void
ncl_fc_forward_ref (const gfloat * in, gint n, gint in_f, gint out_f,
    const gfloat * weight, const gfloat * bias, NclActivation act,
    gfloat alpha, gfloat * out)
{
  for (gint s = 0; s < n; s++) {
    const gfloat *x = in + (gsize) s * in_f;    /* (in_f) */

    for (gint o = 0; o < out_f; o++) {
      const gfloat *wrow = weight + (gsize) o * in_f;   /* (in_f) */
      gdouble sum = bias ? bias[o] : 0.0f;

      for (gint i = 0; i < in_f; i++)
        sum += (gdouble) x[i] * wrow[i];
      out[(gsize) s * out_f + o] = ncl_activate (act, alpha, (gfloat) sum);
    }
  }
}

/* Checks that @buf holds at least @floats floats. */
static gboolean
check_buffer (cl_mem buf, const gchar * what, gsize floats, GError ** error)
{
  gsize size = 0;
  cl_int status = clGetMemObjectInfo (buf, CL_MEM_SIZE, sizeof (size), &size,
      NULL);

  if (status != CL_SUCCESS) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_OPENCL,
        "fc: cannot query the %s buffer: %s", what,
        ncl_cl_status_name (status));
    return FALSE;
  }
  if (size < floats * sizeof (gfloat)) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "fc: %s buffer holds %" G_GSIZE_FORMAT " floats, expected %"
        G_GSIZE_FORMAT, what, size / sizeof (gfloat), floats);
    return FALSE;
  }
  return TRUE;
}

/**
 * ncl_fc_forward:
 * @in: (n, in_f, 1, 1), or any (n, c, h, w) taken as in_f = c * h * w
 * @weight: (out_f, in_f) row-major
 * @bias: (nullable): (out_f)
 * @out: reshaped to (n, out_f, 1, 1); must not be @in
 *
 * Computes out = act(in . weight^T + bias) on the device.
 * Returns: FALSE with @error set: NCL_ERROR_SHAPE when @weight or @bias is
 *   too small for (out_f, in_f), @out_f is not positive or @out is @in.
 */
gboolean
ncl_fc_forward (NclContext * ctx, const NclTensor * in, cl_mem weight,
    cl_mem bias, gint out_f, NclActivation act, gfloat alpha,
    NclTensor * out, GError ** error)
{
  gsize in_f = (gsize) in->c * in->h * in->w;
  gint n = in->n, inf = (gint) in_f, has_bias = bias != NULL, a = act;
  gint nb;
  gsize global[2];
  g_autofree gchar *options = NULL;
  cl_kernel k;
  gboolean ok;

  if (out_f < 1 || in_f < 1 || in_f > G_MAXINT
      || (gsize) n * MAX (in_f, (gsize) out_f) > G_MAXINT) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "fc: cannot map input (%d, %d, %d, %d) to %d outputs", in->n, in->c,
        in->h, in->w, out_f);
    return FALSE;
  }
  if (weight == NULL) {
    g_set_error_literal (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "fc: no weight buffer");
    return FALSE;
  }
  if (!check_buffer (weight, "weight", in_f * out_f, error))
    return FALSE;
  if (bias != NULL && !check_buffer (bias, "bias", out_f, error))
    return FALSE;
  if (out == in) {
    g_set_error_literal (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "fc: the output cannot be the input");
    return FALSE;
  }
  if (!ncl_tensor_reshape (out, n, out_f, 1, 1, error))
    return FALSE;
  if (n == 0)
    return TRUE;

  /* Samples per work-item: the smallest of 1, 2, 4, 8 covering the batch
   * (up to 8), so a single sample does not pay for eight. */
  nb = 1;
  while (nb < 8 && nb < n)
    nb *= 2;
  options = g_strdup_printf ("-DFC_NB=%d", nb);
  k = ncl_context_get_kernel (ctx, "fc", "fc_16", options, error);
  if (k == NULL)
    return FALSE;
  global[0] = out_f;
  global[1] = (n + nb - 1) / nb;

  ncl_context_lock (ctx);
  ok = ncl_kernel_set_args (k, error, sizeof (cl_mem), &in->buf,
      sizeof (cl_mem), &weight, sizeof (cl_mem), &bias, sizeof (gint),
      &has_bias, sizeof (cl_mem), &out->buf, sizeof (gint), &n,
      sizeof (gint), &inf, sizeof (gint), &out_f, sizeof (gint), &a,
      sizeof (gfloat), &alpha, 0)
      && ncl_context_run (ctx, k, 2, global, NULL, error);
  ncl_context_unlock (ctx);
  return ok;
}
