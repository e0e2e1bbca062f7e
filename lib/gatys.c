/* gatys.c: neural style by optimising the pixels of the result (Gatys,
 * Ecker, Bethge 2016) with the loss of lib/style-train.c, by Adam on the
 * device or by L-BFGS on the host. */
#include <neuralcl/train.h>
#include <neuralcl/error.h>

#include <math.h>
#include <string.h>

void
ncl_gatys_settings_init (NclGatysSettings * s)
{
  memset (s, 0, sizeof (*s));
  s->size = 384;
  s->style_size = 512;
  s->iterations = 300;
  s->optimizer = g_strdup ("adam");
  s->learning_rate = 2.0;
  s->init = g_strdup ("content");
  s->seed = 1;
  ncl_style_loss_settings_init (&s->loss);
}

void
ncl_gatys_settings_clear (NclGatysSettings * s)
{
  g_clear_pointer (&s->content, g_free);
  g_clear_pointer (&s->style, g_free);
  g_clear_pointer (&s->output, g_free);
  g_clear_pointer (&s->optimizer, g_free);
  g_clear_pointer (&s->init, g_free);
  g_clear_pointer (&s->loss_network, g_free);
  g_clear_pointer (&s->device, g_free);
  ncl_style_loss_settings_clear (&s->loss);
}

/* Loads @path as planar RGB float, longest side @side (0: as is). */
static gfloat *
load_planar (const gchar * path, gint side, gint * h, gint * w,
    GError ** error)
{
  g_autoptr (NclImage) img = ncl_image_load (path, error);
  g_autofree gfloat *planar = NULL;
  gdouble s;
  gfloat *out;

  if (img == NULL)
    return NULL;
  planar = g_new (gfloat, (gsize) 3 * img->width * img->height);
  ncl_image_to_planar_ref (img, planar);
  s = side > 0 ? (gdouble) side / MAX (img->width, img->height) : 1.0;
  *h = MAX (8, (gint) (img->height * s + 0.5));
  *w = MAX (8, (gint) (img->width * s + 0.5));
  out = g_new (gfloat, (gsize) 3 * *h * *w);
  ncl_resize_bilinear_ref (planar, 1, 3, img->height, img->width, *h, *w,
      out);
  return out;
}

static gdouble
dot (const gfloat * a, const gfloat * b, gsize n)
{
  gdouble s = 0;

  for (gsize i = 0; i < n; i++)
    s += (gdouble) a[i] * b[i];
  return s;
}

#define LBFGS_M 8

gboolean
ncl_gatys_run (const NclGatysSettings * s, NclGatysCallback cb,
    gpointer user_data, gdouble * ratio, GError ** error)
{
  g_autoptr (NclContext) ctx = NULL;
  g_autoptr (NclStyleLoss) loss = NULL;
  g_autoptr (NclTensor) content_t = NULL;
  g_autoptr (NclTensor) style_t = NULL;
  g_autoptr (NclTensor) gen = NULL;
  g_autoptr (NclTensor) grad = NULL;
  g_autofree gfloat *content = NULL;
  g_autofree gfloat *style = NULL;
  g_autofree gfloat *x = NULL;
  g_autofree gchar *vgg = NULL;
  g_autoptr (NclImage) img = NULL;
  gint ch, cw, sh, sw;
  gsize n;
  gboolean lbfgs, ok = TRUE;
  gint64 t0 = g_get_monotonic_time ();
  NclGatysProgress prog = { 0 };
  gdouble in_style = 0, out_style = 0;

  if (s->content == NULL || s->style == NULL || s->output == NULL) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_CONFIG,
        "optimize needs a content image, a style image and an output");
    return FALSE;
  }
  if (!g_str_equal (s->optimizer, "adam") &&
      !g_str_equal (s->optimizer, "lbfgs")) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_CONFIG,
        "unknown optimizer '%s' (adam, lbfgs)", s->optimizer);
    return FALSE;
  }
  if (!g_str_equal (s->init, "content") && !g_str_equal (s->init, "noise")) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_CONFIG,
        "unknown init '%s' (content, noise)", s->init);
    return FALSE;
  }
  lbfgs = g_str_equal (s->optimizer, "lbfgs");

  content = load_planar (s->content, s->size, &ch, &cw, error);
  if (content == NULL)
    return FALSE;
  style = load_planar (s->style, s->style_size, &sh, &sw, error);
  if (style == NULL)
    return FALSE;
  n = (gsize) 3 * ch * cw;

  ctx = ncl_context_new (s->device, error);
  if (ctx == NULL)
    return FALSE;
  vgg = s->loss_network ? g_strdup (s->loss_network) :
      ncl_style_loss_default_network ();
  loss = ncl_style_loss_new (ctx, vgg, &s->loss, error);
  if (loss == NULL)
    return FALSE;
  if (!(content_t = ncl_tensor_new (ctx, 1, 3, ch, cw, error)) ||
      !(style_t = ncl_tensor_new (ctx, 1, 3, sh, sw, error)) ||
      !(gen = ncl_tensor_new (ctx, 1, 3, ch, cw, error)) ||
      !(grad = ncl_tensor_new (ctx, 1, 3, ch, cw, error)) ||
      !ncl_tensor_upload (content_t, content, error) ||
      !ncl_tensor_upload (style_t, style, error) ||
      !ncl_style_loss_set_style (loss, style_t, error) ||
      !ncl_style_loss_set_content (loss, content_t, error) ||
      !ncl_style_loss_measure (loss, content_t, &in_style, error))
    return FALSE;

  x = g_new (gfloat, n);
  if (g_str_equal (s->init, "noise")) {
    g_autoptr (GRand) rng = g_rand_new_with_seed (s->seed);
    for (gsize i = 0; i < n; i++)
      x[i] = (gfloat) g_rand_double_range (rng, 96, 160);
  } else {
    memcpy (x, content, n * sizeof (gfloat));
  }
  prog.iterations = s->iterations;

  if (!lbfgs) {
    /* Adam on the device: the image is the parameter buffer */
    NclAdamParams ap;
    cl_mem m = ncl_buffer_new_rw (ctx, NULL, n, error);
    cl_mem v = m ? ncl_buffer_new_rw (ctx, NULL, n, error) : NULL;

    if (v == NULL) {
      if (m)
        clReleaseMemObject (m);
      return FALSE;
    }
    ncl_adam_params_init (&ap);
    ap.lr = (gfloat) s->learning_rate;
    ok = ncl_tensor_upload (gen, x, error);
    for (gint it = 1; ok && it <= s->iterations; it++) {
      ok = ncl_style_loss_evaluate (loss, gen, &prog.loss, grad, error) &&
          ncl_adam_step (ctx, &ap, it, n, gen->buf, grad->buf, m, v, error)
          && ncl_clamp_forward (ctx, gen, 0.0f, 255.0f, gen, error);
      prog.iteration = it;
      prog.elapsed_s = (g_get_monotonic_time () - t0) / 1e6;
      prog.eta_s = prog.elapsed_s / it * (s->iterations - it);
      if (ok && cb && !cb (&prog, user_data))
        break;
    }
    clReleaseMemObject (m);
    clReleaseMemObject (v);
    ok = ok && ncl_tensor_download (gen, x, error);
  } else {
    /* L-BFGS on the host (two-loop recursion), the step of the first
     * iteration scaled to one pixel unit, later ones 1; pixels clamped to
     * 0..255 after each step */
    g_autofree gfloat *g = g_new (gfloat, n);
    g_autofree gfloat *d = g_new (gfloat, n);
    g_autofree gfloat *xp = g_new (gfloat, n);
    g_autofree gfloat *gp = g_new (gfloat, n);
    gfloat *sv[LBFGS_M], *yv[LBFGS_M];
    gdouble rho[LBFGS_M], alpha[LBFGS_M];
    gint hist = 0, head = 0;

    for (gint k = 0; k < LBFGS_M; k++) {
      sv[k] = g_new (gfloat, n);
      yv[k] = g_new (gfloat, n);
    }
    ok = ncl_tensor_upload (gen, x, error) &&
        ncl_style_loss_evaluate (loss, gen, &prog.loss, grad, error) &&
        ncl_tensor_download (grad, g, error);
    for (gint it = 1; ok && it <= s->iterations; it++) {
      gdouble gamma = 1.0, step;

      /* d = -H g */
      for (gsize i = 0; i < n; i++)
        d[i] = -g[i];
      for (gint k = 0; k < hist; k++) {
        gint j = (head - 1 - k + LBFGS_M) % LBFGS_M;
        alpha[j] = rho[j] * dot (sv[j], d, n);
        for (gsize i = 0; i < n; i++)
          d[i] -= alpha[j] * yv[j][i];
      }
      if (hist > 0) {
        gint j = (head - 1 + LBFGS_M) % LBFGS_M;
        gamma = dot (sv[j], yv[j], n) / dot (yv[j], yv[j], n);
      }
      for (gsize i = 0; i < n; i++)
        d[i] *= gamma;
      for (gint k = hist - 1; k >= 0; k--) {
        gint j = (head - 1 - k + LBFGS_M) % LBFGS_M;
        gdouble beta = rho[j] * dot (yv[j], d, n);
        for (gsize i = 0; i < n; i++)
          d[i] += (alpha[j] - beta) * sv[j][i];
      }
      if (dot (d, g, n) >= 0) {
        /* not a descent direction: restart from the gradient */
        hist = 0;
        for (gsize i = 0; i < n; i++)
          d[i] = -g[i];
      }
      step = 1.0;
      if (hist == 0) {
        gdouble amax = 0;
        for (gsize i = 0; i < n; i++)
          amax = MAX (amax, fabs (d[i]));
        step = amax > 0 ? s->learning_rate / amax : 0;
      }
      memcpy (xp, x, n * sizeof (gfloat));
      memcpy (gp, g, n * sizeof (gfloat));
      for (gsize i = 0; i < n; i++)
        x[i] = CLAMP (x[i] + (gfloat) (step * d[i]), 0.0f, 255.0f);
      ok = ncl_tensor_upload (gen, x, error) &&
          ncl_style_loss_evaluate (loss, gen, &prog.loss, grad, error) &&
          ncl_tensor_download (grad, g, error);
      if (!ok)
        break;
      {
        gdouble sy;
        for (gsize i = 0; i < n; i++) {
          sv[head][i] = x[i] - xp[i];
          yv[head][i] = g[i] - gp[i];
        }
        sy = dot (sv[head], yv[head], n);
        if (sy > 1e-10) {
          rho[head] = 1.0 / sy;
          head = (head + 1) % LBFGS_M;
          hist = MIN (hist + 1, LBFGS_M);
        }
      }
      prog.iteration = it;
      prog.elapsed_s = (g_get_monotonic_time () - t0) / 1e6;
      prog.eta_s = prog.elapsed_s / it * (s->iterations - it);
      if (cb && !cb (&prog, user_data))
        break;
    }
    for (gint k = 0; k < LBFGS_M; k++) {
      g_free (sv[k]);
      g_free (yv[k]);
    }
  }
  if (!ok)
    return FALSE;

  for (gsize i = 0; i < n; i++)
    x[i] = CLAMP (x[i], 0.0f, 255.0f);
  if (!ncl_tensor_upload (gen, x, error) ||
      !ncl_style_loss_measure (loss, gen, &out_style, error))
    return FALSE;
  if (ratio)
    *ratio = out_style / MAX (in_style, 1e-30);
  img = ncl_image_new_rgb (cw, ch);
  ncl_image_from_planar_ref (x, cw, ch, NULL, 1.0f, FALSE, img);
  return ncl_image_save_png (img, s->output, error);
}
