/* Adam: the device step against the C reference over several steps (plain,
 * L2 and decoupled weight decay, a partial last vector, a gradient scale),
 * and both minimising a quadratic. */
#include "common.h"

#include <neuralcl/backward.h>

#include <math.h>

static cl_mem
device_copy (NclContext * ctx, const gfloat * data, gsize n)
{
  g_autoptr (GError) error = NULL;
  cl_mem buf = ncl_buffer_new_rw (ctx, data, n, &error);

  if (buf == NULL) {
    g_printerr ("buffer: %s\n", error->message);
    exit (1);
  }
  return buf;
}

static void
download (NclContext * ctx, cl_mem buf, gfloat * data, gsize n)
{
  cl_int st = clEnqueueReadBuffer (ncl_context_get_queue (ctx), buf, CL_TRUE,
      0, n * sizeof (gfloat), data, 0, NULL, NULL);

  NCL_CHECK (st == CL_SUCCESS);
}

static void
upload (NclContext * ctx, cl_mem buf, const gfloat * data, gsize n)
{
  cl_int st = clEnqueueWriteBuffer (ncl_context_get_queue (ctx), buf, CL_TRUE,
      0, n * sizeof (gfloat), data, 0, NULL, NULL);

  NCL_CHECK (st == CL_SUCCESS);
}

/* Runs @steps device and reference steps with fresh random gradients. */
static void
check_steps (NclContext * ctx, gsize n, const NclAdamParams * ap, gint steps)
{
  g_autofree gfloat *p = g_new (gfloat, n);
  g_autofree gfloat *g = g_new (gfloat, n);
  g_autofree gfloat *m = g_new0 (gfloat, n);
  g_autofree gfloat *v = g_new0 (gfloat, n);
  g_autofree gfloat *got = g_new (gfloat, n);
  g_autoptr (GError) error = NULL;
  cl_mem dp, dg, dm, dv;

  ncl_test_fill_random (p, n, 3, -1.0f, 1.0f);
  dp = device_copy (ctx, p, n);
  dg = device_copy (ctx, NULL, n);
  dm = device_copy (ctx, NULL, n);
  dv = device_copy (ctx, NULL, n);

  for (gint t = 1; t <= steps; t++) {
    g_autofree gchar *label = NULL;

    ncl_test_fill_random (g, n, 100 + t, -2.0f, 2.0f);
    /* some exact zeros: the update must still be finite */
    for (gsize i = 0; i < n; i += 7)
      g[i] = 0.0f;
    upload (ctx, dg, g, n);
    NCL_CHECK (ncl_adam_step (ctx, ap, t, n, dp, dg, dm, dv, &error));
    NCL_CHECK_NO_ERROR (error);
    ncl_adam_step_ref (ap, t, n, p, g, m, v);

    label = g_strdup_printf ("adam n=%" G_GSIZE_FORMAT " wd=%g decoupled=%d "
        "scale=%g step %d param", n, ap->weight_decay, ap->decoupled,
        ap->grad_scale, t);
    download (ctx, dp, got, n);
    ncl_test_compare (label, got, p, n, 1e-6f, 1e-5f);
    download (ctx, dm, got, n);
    ncl_test_compare ("  m", got, m, n, 1e-6f, 1e-5f);
    download (ctx, dv, got, n);
    ncl_test_compare ("  v", got, v, n, 1e-7f, 1e-5f);
  }
  clReleaseMemObject (dv);
  clReleaseMemObject (dm);
  clReleaseMemObject (dg);
  clReleaseMemObject (dp);
}

/* Minimises f(p) = sum_i a_i (p_i - c_i)^2 / 2 on the device; the result
 * must be near c (and the reference must agree). */
static void
check_quadratic (NclContext * ctx)
{
  const gsize n = 37;
  NclAdamParams ap;
  g_autofree gfloat *a = g_new (gfloat, n);
  g_autofree gfloat *c = g_new (gfloat, n);
  g_autofree gfloat *p = g_new0 (gfloat, n);
  g_autofree gfloat *pref = g_new0 (gfloat, n);
  g_autofree gfloat *g = g_new (gfloat, n);
  g_autofree gfloat *m = g_new0 (gfloat, n);
  g_autofree gfloat *v = g_new0 (gfloat, n);
  g_autoptr (GError) error = NULL;
  gdouble f0 = 0.0, f = 0.0, worst = 0.0;
  cl_mem dp, dg, dm, dv;

  ncl_adam_params_init (&ap);
  ap.lr = 0.05f;
  ncl_test_fill_random (a, n, 11, 0.1f, 10.0f);
  ncl_test_fill_random (c, n, 12, -3.0f, 3.0f);
  dp = device_copy (ctx, p, n);
  dg = device_copy (ctx, NULL, n);
  dm = device_copy (ctx, NULL, n);
  dv = device_copy (ctx, NULL, n);
  for (gsize i = 0; i < n; i++)
    f0 += 0.5 * a[i] * c[i] * c[i];

  for (gint t = 1; t <= 1500; t++) {
    download (ctx, dp, p, n);
    for (gsize i = 0; i < n; i++)
      g[i] = a[i] * (p[i] - c[i]);
    upload (ctx, dg, g, n);
    NCL_CHECK (ncl_adam_step (ctx, &ap, t, n, dp, dg, dm, dv, &error));
    NCL_CHECK_NO_ERROR (error);
    /* the reference on its own trajectory */
    for (gsize i = 0; i < n; i++)
      g[i] = a[i] * (pref[i] - c[i]);
    ncl_adam_step_ref (&ap, t, n, pref, g, m, v);
  }
  download (ctx, dp, p, n);
  for (gsize i = 0; i < n; i++) {
    f += 0.5 * a[i] * (p[i] - c[i]) * (p[i] - c[i]);
    worst = MAX (worst, fabs (p[i] - c[i]));
  }
  g_print ("quadratic: f %.4g -> %.3g, max |p - c| %.3g\n", f0, f, worst);
  NCL_CHECK (worst < 1e-2);
  NCL_CHECK (f < 1e-4 * f0);
  ncl_test_compare ("quadratic: device vs reference", p, pref, n, 1e-4f,
      1e-3f);

  clReleaseMemObject (dv);
  clReleaseMemObject (dm);
  clReleaseMemObject (dg);
  clReleaseMemObject (dp);
}

int
main (int argc, char **argv)
{
  g_autoptr (NclContext) ctx = ncl_test_context ();
  NclAdamParams ap;

  ncl_adam_params_init (&ap);
  NCL_CHECK (ap.lr == 1e-3f && ap.beta1 == 0.9f && ap.beta2 == 0.999f
      && ap.eps == 1e-8f && ap.weight_decay == 0.0f);
  check_steps (ctx, 1000, &ap, 5);
  check_steps (ctx, 7, &ap, 3);
  ap.weight_decay = 0.1f;
  ap.decoupled = FALSE;
  check_steps (ctx, 333, &ap, 4);
  ap.decoupled = TRUE;
  ap.lr = 0.01f;
  ap.grad_scale = 0.25f;
  check_steps (ctx, 45, &ap, 4);
  check_quadratic (ctx);
  {
    g_autoptr (GError) error = NULL;
    gfloat one = 1.0f;
    cl_mem buf = device_copy (ctx, &one, 1);

    /* steps count from 1; buffers must hold n floats */
    NCL_CHECK (!ncl_adam_step (ctx, &ap, 0, 1, buf, buf, buf, buf, &error));
    NCL_CHECK (g_error_matches (error, NCL_ERROR, NCL_ERROR_FAILED));
    g_clear_error (&error);
    NCL_CHECK (!ncl_adam_step (ctx, &ap, 1, 1000, buf, buf, buf, buf,
            &error));
    NCL_CHECK (g_error_matches (error, NCL_ERROR, NCL_ERROR_SHAPE));
    clReleaseMemObject (buf);
  }
  return ncl_test_finish ();
}
