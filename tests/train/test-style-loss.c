/* Style losses: (1) each device kernel of kernels/train.cl against its C
 * reference on odd shapes; (2) the references' gradients against central
 * finite differences; (3) NclStyleLoss on the real VGG-19 loss network:
 * dJ/dG against finite differences of J for content, style and TV terms,
 * and the loss of an image against itself being zero. */
#include "common.h"

#include <neuralcl/train.h>

#include <math.h>
#include <string.h>

/* ---- device vs reference ------------------------------------------------ */

static void
test_gram_kernels (NclContext * ctx)
{
  const gint shapes[][3] = { {2, 5, 37}, {1, 8, 16}, {3, 13, 70} };

  for (guint s = 0; s < G_N_ELEMENTS (shapes); s++) {
    gint n = shapes[s][0], c = shapes[s][1], hw = shapes[s][2];
    gsize nf = (gsize) n * c * hw, ng = (gsize) n * c * c;
    g_autofree gfloat *f = g_new (gfloat, nf);
    g_autofree gfloat *a = g_new (gfloat, ng);
    g_autofree gfloat *want_g = g_new (gfloat, ng);
    g_autofree gfloat *want_df = g_new (gfloat, nf);
    g_autofree gfloat *got = NULL;
    g_autoptr (NclTensor) tf = NULL;
    g_autoptr (NclTensor) tg = NULL;
    g_autoptr (NclTensor) ta = NULL;
    g_autoptr (NclTensor) tdf = NULL;
    g_autoptr (GError) error = NULL;
    gchar label[64];

    ncl_test_fill_random (f, nf, 11 + s, -1.0f, 2.0f);
    ncl_test_fill_random (a, ng, 21 + s, -1.0f, 1.0f);
    ncl_test_fill_random (want_df, nf, 31 + s, -1.0f, 1.0f);
    tf = ncl_test_tensor (ctx, f, n, c, 1, hw);
    ta = ncl_test_tensor (ctx, a, n, 1, c, c);
    tdf = ncl_test_tensor (ctx, want_df, n, c, 1, hw);
    tg = ncl_test_tensor (ctx, NULL, 1, 1, 1, 1);

    ncl_gram_ref (f, n, c, hw, 0.25f, want_g);
    NCL_CHECK (ncl_gram (ctx, tf, 0.25f, tg, &error));
    NCL_CHECK_NO_ERROR (error);
    NCL_CHECK (tg->n == n && tg->h == c && tg->w == c);
    got = ncl_test_download (tg);
    g_snprintf (label, sizeof (label), "gram %dx%dx%d", n, c, hw);
    NCL_CHECK (ncl_test_compare (label, got, want_g, ng, 1e-4f, 1e-4f));
    g_clear_pointer (&got, g_free);

    /* accumulate into the random values already in df */
    ncl_gram_backward_ref (a, f, n, c, hw, 0.5f, TRUE, want_df);
    NCL_CHECK (ncl_gram_backward (ctx, ta, tf, 0.5f, TRUE, tdf, &error));
    NCL_CHECK_NO_ERROR (error);
    got = ncl_test_download (tdf);
    g_snprintf (label, sizeof (label), "gram backward %dx%dx%d", n, c, hw);
    NCL_CHECK (ncl_test_compare (label, got, want_df, nf, 1e-4f, 1e-4f));
    g_clear_pointer (&got, g_free);

    /* overwrite */
    ncl_gram_backward_ref (a, f, n, c, hw, -1.5f, FALSE, want_df);
    NCL_CHECK (ncl_gram_backward (ctx, ta, tf, -1.5f, FALSE, tdf, &error));
    NCL_CHECK_NO_ERROR (error);
    got = ncl_test_download (tdf);
    NCL_CHECK (ncl_test_compare (label, got, want_df, nf, 1e-4f, 1e-4f));
  }
}

static void
test_elementwise_kernels (NclContext * ctx)
{
  const gint n = 2, c = 3, h = 7, w = 45;
  gsize numel = (gsize) n * c * h * w, per = (gsize) c * h * w;
  g_autofree gfloat *x = g_new (gfloat, numel);
  g_autofree gfloat *t = g_new (gfloat, per);
  g_autofree gfloat *g0 = g_new (gfloat, numel);
  g_autofree gfloat *want = g_new (gfloat, numel);
  g_autofree gfloat *got = NULL;
  g_autoptr (NclTensor) tx = NULL;
  g_autoptr (NclTensor) tt = NULL;
  g_autoptr (NclTensor) tgrad = NULL;
  g_autoptr (NclTensor) tout = NULL;
  g_autoptr (GError) error = NULL;
  gdouble sum_ref, sum = 0.0;

  ncl_test_fill_random (x, numel, 1, 0.0f, 255.0f);
  ncl_test_fill_random (t, per, 2, 0.0f, 255.0f);
  ncl_test_fill_random (g0, numel, 3, -1.0f, 1.0f);
  tx = ncl_test_tensor (ctx, x, n, c, h, w);
  tt = ncl_test_tensor (ctx, t, 1, c, h, w);
  tgrad = ncl_test_tensor (ctx, g0, n, c, h, w);
  tout = ncl_test_tensor (ctx, NULL, 1, 1, 1, 1);

  /* squared difference, target repeated over the batch, accumulating */
  memcpy (want, g0, numel * sizeof (gfloat));
  sum_ref = ncl_sq_diff_ref (x, numel, t, per, 0.3f, TRUE, want);
  NCL_CHECK (ncl_sq_diff (ctx, tx, tt, 0.3f, TRUE, tgrad, &sum, &error));
  NCL_CHECK_NO_ERROR (error);
  NCL_CHECK (fabs (sum - sum_ref) <= 1e-4 * sum_ref);
  got = ncl_test_download (tgrad);
  NCL_CHECK (ncl_test_compare ("sq_diff grad", got, want, numel, 1e-3f,
          1e-5f));
  g_clear_pointer (&got, g_free);
  /* no gradient */
  NCL_CHECK (ncl_sq_diff (ctx, tx, tt, 0.3f, FALSE, NULL, &sum, &error));
  NCL_CHECK_NO_ERROR (error);
  NCL_CHECK (fabs (sum - sum_ref) <= 1e-4 * sum_ref);
  /* mismatched sizes are refused */
  NCL_CHECK (!ncl_sq_diff (ctx, tt, tx, 1.0f, FALSE, NULL, &sum, &error));
  NCL_CHECK (error != NULL);
  g_clear_error (&error);

  /* total variation, accumulating */
  memcpy (want, g0, numel * sizeof (gfloat));
  NCL_CHECK (ncl_tensor_upload (tgrad, g0, &error));
  sum_ref = ncl_tv_loss_ref (x, n * c, h, w, 0.01f, want);
  NCL_CHECK (ncl_tv_loss (ctx, tx, 0.01f, tgrad, &sum, &error));
  NCL_CHECK_NO_ERROR (error);
  NCL_CHECK (fabs (sum - sum_ref) <= 1e-4 * sum_ref);
  got = ncl_test_download (tgrad);
  NCL_CHECK (ncl_test_compare ("tv grad", got, want, numel, 1e-3f, 1e-4f));
  g_clear_pointer (&got, g_free);

  /* VGG input conversion and its backward */
  ncl_rgb_to_vgg_ref (x, n, h * w, want);
  NCL_CHECK (ncl_rgb_to_vgg (ctx, tx, tout, &error));
  NCL_CHECK_NO_ERROR (error);
  got = ncl_test_download (tout);
  NCL_CHECK (ncl_test_compare ("rgb_to_vgg", got, want, numel, 1e-4f, 0));
  g_clear_pointer (&got, g_free);
  NCL_CHECK (fabs (want[0] - (x[2 * h * w] - 103.939f)) < 1e-3f);

  memcpy (want, g0, numel * sizeof (gfloat));
  NCL_CHECK (ncl_tensor_upload (tgrad, g0, &error));
  ncl_vgg_to_rgb_grad_ref (x, n, h * w, TRUE, want);
  NCL_CHECK (ncl_vgg_to_rgb_grad (ctx, tx, TRUE, tgrad, &error));
  NCL_CHECK_NO_ERROR (error);
  got = ncl_test_download (tgrad);
  NCL_CHECK (ncl_test_compare ("vgg_to_rgb_grad", got, want, numel, 1e-3f,
          1e-6f));
}

/* ---- reference gradients vs finite differences -------------------------- */

/* J = w * mean (gram (F) - T)^2 */
static gdouble
gram_loss (const gfloat * f, gint n, gint c, gint hw, const gfloat * t,
    gdouble w, gfloat * df)
{
  gsize ng = (gsize) n * c * c;
  g_autofree gfloat *g = g_new (gfloat, ng);
  g_autofree gfloat *a = g_new (gfloat, ng);
  gfloat s = 1.0f / (c * hw);
  gdouble sum;

  ncl_gram_ref (f, n, c, hw, s, g);
  sum = ncl_sq_diff_ref (g, ng, t, (gsize) c * c, (gfloat) (w * 2.0 / ng),
      FALSE, a);
  if (df != NULL)
    ncl_gram_backward_ref (a, f, n, c, hw, 2.0f * s, FALSE, df);
  return w * sum / ng;
}

static void
test_reference_gradients (void)
{
  const gint n = 2, c = 4, h = 5, w = 6, hw = h * w;
  gsize nf = (gsize) n * c * hw;
  g_autofree gfloat *f = g_new (gfloat, nf);
  g_autofree gfloat *df = g_new (gfloat, nf);
  g_autofree gfloat *t = g_new (gfloat, c * c);
  g_autofree gfloat *gtv = g_new0 (gfloat, nf);
  gint bad = 0;

  ncl_test_fill_random (f, nf, 5, 0.0f, 3.0f);
  ncl_test_fill_random (t, c * c, 6, 0.0f, 2.0f);
  /* targets are Gram matrices: symmetric */
  for (gint i = 0; i < c; i++)
    for (gint j = 0; j < i; j++)
      t[i * c + j] = t[j * c + i];
  gram_loss (f, n, c, hw, t, 3.0, df);
  ncl_tv_loss_ref (f, n * c, h, w, 0.7f, gtv);

  for (gsize i = 0; i < nf; i += 7) {
    gfloat keep = f[i], eps = 1e-2f;
    gdouble lp, lm, fd, tp, tm, fdtv;

    f[i] = keep + eps;
    lp = gram_loss (f, n, c, hw, t, 3.0, NULL);
    tp = 0.7 * ncl_tv_loss_ref (f, n * c, h, w, 0, NULL);
    f[i] = keep - eps;
    lm = gram_loss (f, n, c, hw, t, 3.0, NULL);
    tm = 0.7 * ncl_tv_loss_ref (f, n * c, h, w, 0, NULL);
    f[i] = keep;
    fd = (lp - lm) / (2 * eps);
    fdtv = (tp - tm) / (2 * eps);
    if (fabs (fd - df[i]) > 1e-2 * MAX (fabs (fd), 1e-3)) {
      if (bad++ < 5)
        g_printerr ("gram loss: [%" G_GSIZE_FORMAT "] analytic %g, finite "
            "difference %g\n", i, df[i], fd);
    }
    if (fabs (fdtv - gtv[i]) > 1e-2 * MAX (fabs (fdtv), 1e-3)) {
      if (bad++ < 5)
        g_printerr ("tv loss: [%" G_GSIZE_FORMAT "] analytic %g, finite "
            "difference %g\n", i, gtv[i], fdtv);
    }
  }
  NCL_CHECK (bad == 0);

  /* squared difference */
  {
    gfloat a[3] = { 1, 2, 3 }, b[1] = { 1.5f }, g[3];
    gdouble s = ncl_sq_diff_ref (a, 3, b, 1, 2.0f, FALSE, g);

    NCL_CHECK (fabs (s - (0.25 + 0.25 + 2.25)) < 1e-6);
    NCL_CHECK (g[0] == -1.0f && g[1] == 1.0f && g[2] == 3.0f);
  }
}

/* ---- the whole loss on VGG ---------------------------------------------- */

static gdouble
loss_at (NclStyleLoss * l, NclTensor * gen, const gfloat * x)
{
  g_autoptr (GError) error = NULL;
  NclStyleLossValues v;

  NCL_CHECK (ncl_tensor_upload (gen, x, &error));
  NCL_CHECK (ncl_style_loss_evaluate (l, gen, &v, NULL, &error));
  NCL_CHECK_NO_ERROR (error);
  return v.total;
}

static void
test_vgg_loss (NclContext * ctx)
{
  g_autofree gchar *vgg = ncl_test_shared_path
      ("data/style/loss/vgg19-block1-3.safetensors");
  const gint n = 2, h = 12, w = 16;
  gsize numel = (gsize) n * 3 * h * w;
  g_autofree gfloat *style = g_new (gfloat, 3 * 20 * 20);
  g_autofree gfloat *content = g_new (gfloat, numel);
  g_autofree gfloat *x = g_new (gfloat, numel);
  g_autofree gfloat *grad = NULL;
  g_autoptr (NclTensor) ts = NULL;
  g_autoptr (NclTensor) tc = NULL;
  g_autoptr (NclTensor) tx = NULL;
  g_autoptr (NclTensor) tdx = NULL;
  g_autoptr (NclStyleLoss) l = NULL;
  g_autoptr (GError) error = NULL;
  NclStyleLossSettings s;
  NclStyleLossValues v;
  gdouble self = -1, rms = 0;
  gint checked = 0, bad = 0, skipped = 0;

  if (!g_file_test (vgg, G_FILE_TEST_EXISTS)) {
    g_printerr ("skipping the VGG loss test: %s missing\n", vgg);
    return;
  }
  ncl_style_loss_settings_init (&s);
  s.content_weight = 1.0;
  s.style_weight = 1e-2;
  s.tv_weight = 0.5;
  s.style_layer_weights[1] = 0.5;
  l = ncl_style_loss_new (ctx, vgg, &s, &error);
  NCL_CHECK_NO_ERROR (error);
  ncl_style_loss_settings_clear (&s);
  if (l == NULL)
    return;

  ncl_test_fill_random (style, 3 * 20 * 20, 7, 0.0f, 255.0f);
  ncl_test_fill_random (content, numel, 8, 0.0f, 255.0f);
  ncl_test_fill_random (x, numel, 9, 0.0f, 255.0f);
  ts = ncl_test_tensor (ctx, style, 1, 3, 20, 20);
  tc = ncl_test_tensor (ctx, content, n, 3, h, w);
  tx = ncl_test_tensor (ctx, x, n, 3, h, w);
  tdx = ncl_test_tensor (ctx, NULL, 1, 1, 1, 1);
  NCL_CHECK (ncl_style_loss_set_style (l, ts, &error));
  NCL_CHECK (ncl_style_loss_set_content (l, tc, &error));
  NCL_CHECK_NO_ERROR (error);

  NCL_CHECK (ncl_style_loss_evaluate (l, tx, &v, tdx, &error));
  NCL_CHECK_NO_ERROR (error);
  NCL_CHECK (v.content > 0 && v.style > 0 && v.tv > 0);
  NCL_CHECK (fabs (v.total - (v.content + v.style + v.tv)) <= 1e-9 *
      v.total);
  g_printerr ("loss at random x: content %g, style %g, tv %g\n", v.content,
      v.style, v.tv);
  NCL_CHECK (tdx->n == n && tdx->c == 3 && tdx->h == h && tdx->w == w);
  grad = ncl_test_download (tdx);
  for (gsize i = 0; i < numel; i++)
    rms += (gdouble) grad[i] * grad[i];
  rms = sqrt (rms / numel);

  /* ReLU and max-pool kinks: skip coordinates whose one-sided differences
   * disagree */
  for (gint k = 0; k < 30; k++) {
    gsize i = (gsize) g_random_int_range (0, (gint32) numel);
    gfloat keep = x[i], eps = 1.0f;
    gdouble l0 = v.total, lp, lm, fd, err;

    x[i] = keep + eps;
    lp = loss_at (l, tx, x);
    x[i] = keep - eps;
    lm = loss_at (l, tx, x);
    x[i] = keep;
    if (fabs ((lp - l0) - (l0 - lm)) > 0.05 * (fabs (lp - l0) + fabs (l0 -
                lm)) + 1e-9 * l0) {
      skipped++;
      continue;
    }
    fd = (lp - lm) / (2 * eps);
    err = fabs (fd - grad[i]) / MAX (MAX (fabs (fd), fabs (grad[i])),
        0.05 * rms);
    checked++;
    if (err > 0.05 && bad++ < 5)
      g_printerr ("vgg loss: [%" G_GSIZE_FORMAT "] analytic %g, finite "
          "difference %g\n", i, grad[i], fd);
  }
  g_printerr ("vgg loss: %d coordinates checked, %d skipped at kinks\n",
      checked, skipped);
  NCL_CHECK (checked >= 15);
  NCL_CHECK (bad <= 2);

  /* an image against itself: no content or style loss */
  NCL_CHECK (ncl_style_loss_set_content (l, tx, &error));
  NCL_CHECK (ncl_style_loss_measure (l, ts, &self, &error));
  NCL_CHECK_NO_ERROR (error);
  NCL_CHECK (fabs (self) < 1e-3);
  NCL_CHECK (ncl_style_loss_evaluate (l, tx, &v, NULL, &error));
  NCL_CHECK_NO_ERROR (error);
  NCL_CHECK (v.content < 1e-6);
  /* batch mismatch */
  NCL_CHECK (!ncl_style_loss_evaluate (l, ts, &v, NULL, &error));
  NCL_CHECK (error != NULL);
}

int
main (int argc, char **argv)
{
  g_autoptr (NclContext) ctx = ncl_test_context ();

  g_random_set_seed (1234);
  test_reference_gradients ();
  test_gram_kernels (ctx);
  test_elementwise_kernels (ctx);
  test_vgg_loss (ctx);
  return ncl_test_finish ();
}
