/* Instance normalisation (kernels/norm.cl). */
#include <neuralcl/layers.h>
#include <neuralcl/error.h>

#include <math.h>

void
ncl_instnorm_forward_ref (const gfloat * in, gint n, gint c, gint hw,
    const gfloat * gamma, const gfloat * beta, gfloat eps,
    const gfloat * residual, NclActivation act, gfloat alpha, gfloat * out)
{
  for (gint p = 0; p < n * c; p++) {
    const gfloat *x = in + (gsize) p * hw;
    gfloat *y = out + (gsize) p * hw;
    gint ch = p % c;
    gdouble mean = 0.0, var = 0.0;
    gfloat scale, shift;

    for (gint i = 0; i < hw; i++)
      mean += x[i];
    mean /= hw;
    for (gint i = 0; i < hw; i++)
      var += (x[i] - mean) * (x[i] - mean);
    var /= hw;
    scale = (gfloat) (1.0 / sqrt (var + eps)) * (gamma ? gamma[ch] : 1.0f);
    shift = (beta ? beta[ch] : 0.0f) - (gfloat) mean *scale;

    for (gint i = 0; i < hw; i++) {
      gfloat v = x[i] * scale + shift;
      if (residual)
        v += residual[(gsize) p * hw + i];
      y[i] = ncl_activate (act, alpha, v);
    }
  }
}

gboolean
ncl_instnorm_forward (NclContext * ctx, const NclTensor * in, cl_mem gamma,
    cl_mem beta, gfloat eps, const NclTensor * residual, NclActivation act,
    gfloat alpha, NclTensor * out, GError ** error)
{
  g_autofree gchar *opts = NULL;
  gint hw = in->h * in->w;
  gint planes = in->n * in->c;
  gint a = act;
  gsize global = planes;
  cl_mem res;
  cl_kernel k;
  gboolean ok;

  if ((gamma == NULL) != (beta == NULL)) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "instance norm: gamma and beta must both be given or both omitted");
    return FALSE;
  }
  if (residual && (residual->n != in->n || residual->c != in->c ||
          residual->h != in->h || residual->w != in->w)) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "instance norm: residual (%d, %d, %d, %d) does not match input "
        "(%d, %d, %d, %d)", residual->n, residual->c, residual->h,
        residual->w, in->n, in->c, in->h, in->w);
    return FALSE;
  }
  if (out->buf != in->buf &&
      !ncl_tensor_reshape (out, in->n, in->c, in->h, in->w, error))
    return FALSE;

  opts = g_strdup_printf ("-DHAS_AFFINE=%d -DHAS_RESIDUAL=%d",
      gamma != NULL, residual != NULL);
  k = ncl_context_get_kernel (ctx, "norm", "instnorm_plane", opts, error);
  if (k == NULL)
    return FALSE;
  /* unused buffer arguments still need a valid handle */
  res = residual ? residual->buf : in->buf;
  if (gamma == NULL)
    gamma = beta = in->buf;

  ncl_context_lock (ctx);
  ok = ncl_kernel_set_args (k, error,
      sizeof (cl_mem), &in->buf, sizeof (cl_mem), &out->buf,
      sizeof (cl_mem), &gamma, sizeof (cl_mem), &beta, sizeof (cl_mem), &res,
      sizeof (gint), &in->c, sizeof (gint), &hw, sizeof (gfloat), &eps,
      sizeof (gint), &a, sizeof (gfloat), &alpha, sizeof (gint), &planes, 0)
      && ncl_context_run (ctx, k, 1, &global, NULL, error);
  ncl_context_unlock (ctx);
  return ok;
}
