/* adam.c: the Adam / AdamW optimiser over a flat parameter buffer
 * (kernels/adam.cl), with its plain-C reference. */
#include <neuralcl/backward.h>
#include <neuralcl/error.h>

#include <math.h>

void
ncl_adam_params_init (NclAdamParams * p)
{
  p->lr = 1e-3f;
  p->beta1 = 0.9f;
  p->beta2 = 0.999f;
  p->eps = 1e-8f;
  p->weight_decay = 0.0f;
  p->decoupled = TRUE;
  p->grad_scale = 1.0f;
}

/* Bias corrections of step @step: 1 / (1 - beta1^step) and
 * 1 / sqrt (1 - beta2^step). */
static void
adam_corrections (const NclAdamParams * p, gint step, gfloat * c1,
    gfloat * c2)
{
  *c1 = (gfloat) (1.0 / (1.0 - pow (p->beta1, step)));
  *c2 = (gfloat) (1.0 / sqrt (1.0 - pow (p->beta2, step)));
}

void
ncl_adam_step_ref (const NclAdamParams * p, gint step, gsize n,
    gfloat * param, const gfloat * grad, gfloat * m, gfloat * v)
{
  gfloat c1, c2;

  adam_corrections (p, step, &c1, &c2);
  for (gsize i = 0; i < n; i++) {
    gfloat g = grad[i] * p->grad_scale;
    gfloat x = param[i];

    if (!p->decoupled)
      g += p->weight_decay * x;
    m[i] = p->beta1 * m[i] + (1.0f - p->beta1) * g;
    v[i] = p->beta2 * v[i] + (1.0f - p->beta2) * g * g;
    if (p->decoupled)
      x -= p->lr * p->weight_decay * x;
    param[i] = x - p->lr * (m[i] * c1) / (sqrtf (v[i]) * c2 + p->eps);
  }
}

gboolean
ncl_adam_step (NclContext * ctx, const NclAdamParams * p, gint step, gsize n,
    cl_mem param, cl_mem grad, cl_mem m, cl_mem v, GError ** error)
{
  gfloat c1, c2, wd_l2, wd_dec;
  gint count = (gint) n;
  gsize global;
  cl_kernel k;
  gboolean ok;

  if (step < 1 || n > (gsize) G_MAXINT - 16) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_FAILED,
        "adam: step %d (counts from 1) or %" G_GSIZE_FORMAT " parameters "
        "out of range", step, n);
    return FALSE;
  }
  if (n == 0)
    return TRUE;
  if (!ncl_buffer_check (param, n, "adam: param", error)
      || !ncl_buffer_check (grad, n, "adam: grad", error)
      || !ncl_buffer_check (m, n, "adam: m", error)
      || !ncl_buffer_check (v, n, "adam: v", error))
    return FALSE;
  adam_corrections (p, step, &c1, &c2);
  wd_l2 = p->decoupled ? 0.0f : p->weight_decay;
  wd_dec = p->decoupled ? p->weight_decay : 0.0f;

  k = ncl_context_get_kernel (ctx, "adam", "adam_step_16", NULL, error);
  if (k == NULL)
    return FALSE;
  global = (n + 15) / 16;
  ncl_context_lock (ctx);
  ok = ncl_kernel_set_args (k, error, sizeof (cl_mem), &param,
      sizeof (cl_mem), &grad, sizeof (cl_mem), &m, sizeof (cl_mem), &v,
      sizeof (gint), &count, sizeof (gfloat), &p->lr, sizeof (gfloat),
      &p->beta1, sizeof (gfloat), &p->beta2, sizeof (gfloat), &p->eps,
      sizeof (gfloat), &wd_l2, sizeof (gfloat), &wd_dec, sizeof (gfloat),
      &p->grad_scale, sizeof (gfloat), &c1, sizeof (gfloat), &c2, 0)
      && ncl_context_run (ctx, k, 1, &global, NULL, error);
  ncl_context_unlock (ctx);
  return ok;
}
