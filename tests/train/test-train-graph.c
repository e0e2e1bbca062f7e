/* Training graph: (1) parameter and input gradients of a small graph with
 * every trainable op kind (reflect/zero padded and strided convs, instance
 * norm with ReLU and a residual, upsample, add with the graph input,
 * activation, max pool) against central finite differences of the device
 * forward; (2) a few Adam steps fitting a target decrease the loss; (3) a
 * frozen graph has no parameters and still passes input gradients;
 * (4) parameter read/write round trip; (5) the initial TransformerNet of
 * each preset loads as a model and trains one step. */
#include "common.h"

#include <neuralcl/train.h>

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

static const gchar graph_yaml[] =
    "neuralcl-model: 1\n"
    "name: tiny\n"
    "weights: tiny.safetensors\n"
    "layers:\n"
    "  - {name: c1, op: conv, kernel: 3, padding: 1, pad-mode: reflect,"
    " weight: c1.w, bias: c1.b}\n"
    "  - {name: n1, op: instance_norm, weight: n1.g, bias: n1.b,"
    " activation: relu}\n"
    "  - {name: c2, op: conv, kernel: 3, stride: 2, padding: 1,"
    " pad-mode: reflect, weight: c2.w, bias: c2.b}\n"
    "  - {name: n2, op: instance_norm, weight: n2.g, bias: n2.b,"
    " activation: relu}\n"
    "  - {name: c3, op: conv, kernel: 3, padding: 1, weight: c3.w,"
    " bias: c3.b}\n"
    "  - {name: n3, op: instance_norm, weight: n3.g, bias: n3.b,"
    " residual: n2}\n"
    "  - {name: up, op: upsample, scale: 2}\n"
    "  - {name: c4, op: conv, kernel: 3, padding: 1, weight: c4.w,"
    " bias: c4.b, activation: leaky_relu, alpha: 0.2}\n"
    "  - {name: sum, op: add, inputs: [c4, input]}\n"
    "  - {name: act, op: activation, activation: tanh}\n"
    "  - {name: pool, op: max_pool, kernel: 2, stride: 2}\n";

static void
add_tensor (NclSafetensorsWriter * w, const gchar * name, gint ndim,
    gint64 d0, gint64 d1, gint64 d2, gint64 d3, guint32 seed, gfloat lo,
    gfloat hi)
{
  gint64 shape[4] = { d0, d1, d2, d3 };
  gsize n = 1;
  g_autofree gfloat *data = NULL;

  for (gint i = 0; i < ndim; i++)
    n *= shape[i];
  data = g_new (gfloat, n);
  ncl_test_fill_random (data, n, seed, lo, hi);
  ncl_safetensors_writer_add (w, name, NCL_DTYPE_F32, ndim, shape, data);
}

static NclModel *
tiny_model (const gchar * dir)
{
  g_autoptr (NclSafetensorsWriter) w = ncl_safetensors_writer_new ();
  g_autofree gchar *wpath = g_build_filename (dir, "tiny.safetensors", NULL);
  g_autofree gchar *gpath = g_build_filename (dir, "tiny.yaml", NULL);
  g_autoptr (GError) error = NULL;
  NclModel *m;

  add_tensor (w, "c1.w", 4, 4, 3, 3, 3, 1, -0.3f, 0.3f);
  add_tensor (w, "c1.b", 1, 4, 0, 0, 0, 2, -0.1f, 0.1f);
  add_tensor (w, "n1.g", 1, 4, 0, 0, 0, 3, 0.5f, 1.5f);
  add_tensor (w, "n1.b", 1, 4, 0, 0, 0, 4, -0.2f, 0.2f);
  add_tensor (w, "c2.w", 4, 6, 4, 3, 3, 5, -0.3f, 0.3f);
  add_tensor (w, "c2.b", 1, 6, 0, 0, 0, 6, -0.1f, 0.1f);
  add_tensor (w, "n2.g", 1, 6, 0, 0, 0, 7, 0.5f, 1.5f);
  add_tensor (w, "n2.b", 1, 6, 0, 0, 0, 8, -0.2f, 0.2f);
  add_tensor (w, "c3.w", 4, 6, 6, 3, 3, 9, -0.3f, 0.3f);
  add_tensor (w, "c3.b", 1, 6, 0, 0, 0, 10, -0.1f, 0.1f);
  add_tensor (w, "n3.g", 1, 6, 0, 0, 0, 11, 0.5f, 1.5f);
  add_tensor (w, "n3.b", 1, 6, 0, 0, 0, 12, -0.2f, 0.2f);
  add_tensor (w, "c4.w", 4, 3, 6, 3, 3, 13, -0.3f, 0.3f);
  add_tensor (w, "c4.b", 1, 3, 0, 0, 0, 14, -0.1f, 0.1f);
  if (!ncl_safetensors_writer_write (w, wpath, &error) ||
      !g_file_set_contents (gpath, graph_yaml, -1, &error)) {
    g_printerr ("%s\n", error->message);
    return NULL;
  }
  m = ncl_model_load (gpath, &error);
  NCL_CHECK_NO_ERROR (error);
  return m;
}

/* L = sum (R * out) on the device */
static gdouble
weighted_loss (NclTrainGraph * g, const NclTensor * in, const gfloat * r)
{
  g_autoptr (GError) error = NULL;
  g_autofree gfloat *out = NULL;
  NclTensor *o;
  gdouble l = 0;

  NCL_CHECK (ncl_train_graph_forward (g, in, -1, &error));
  NCL_CHECK_NO_ERROR (error);
  o = ncl_train_graph_get_activation (g, ncl_train_graph_get_output_index
      (g));
  out = ncl_test_download (o);
  for (gsize i = 0; i < ncl_tensor_numel (o); i++)
    l += (gdouble) out[i] * r[i];
  return l;
}

typedef struct
{
  gint checked, skipped, bad;
} FdStats;

static gdouble global_floor;

/* Compares analytic @grad[i] with a central difference of @set (value). */
static void
fd_point (const gchar * label, gsize i, gdouble analytic, gdouble lp,
    gdouble l0, gdouble lm, gdouble h, gdouble scale, FdStats * st)
{
  gdouble d1 = lp - l0, d2 = l0 - lm, fd = (lp - lm) / (2 * h), err;

  if (fabs (d1 - d2) > 0.05 * (fabs (d1) + fabs (d2)) + 1e-6) {
    st->skipped++;
    return;
  }
  /* relative to the larger value, but no less than 5 % of the tensor's
   * gradient rms, nor than 1 % of the largest rms (a conv bias before an
   * instance norm has a zero gradient: only noise to compare) */
  err = fabs (fd - analytic) / MAX (MAX (fabs (fd), fabs (analytic)),
      MAX (0.05 * scale, global_floor) + 1e-6);
  st->checked++;
  if (err > 0.03) {
    if (st->bad < 20)
      g_printerr ("%s [%" G_GSIZE_FORMAT "]: analytic %.6g, finite "
          "difference %.6g\n", label, i, analytic, fd);
    st->bad++;
  }
}

static void
test_gradients (NclContext * ctx, NclModel * model)
{
  const gint n = 2, h = 10, w = 12;
  gsize numel = (gsize) n * 3 * h * w;
  g_autoptr (NclTrainGraph) g = NULL;
  g_autoptr (NclTensor) in = NULL;
  g_autoptr (NclTensor) din = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree gfloat *x = g_new (gfloat, numel);
  g_autofree gfloat *r = NULL;
  g_autofree gfloat *dx = NULL;
  NclTensor *o, *dout;
  gboolean fresh;
  gdouble l0;
  FdStats st = { 0 };

  g = ncl_train_graph_new (ctx, model, TRUE, &error);
  NCL_CHECK_NO_ERROR (error);
  if (g == NULL)
    return;
  /* 4 convs (weight + bias) and 3 norms (scale + shift) */
  NCL_CHECK (ncl_train_graph_get_n_params (g) == 14);

  ncl_test_fill_random (x, numel, 40, -1.0f, 1.0f);
  in = ncl_test_tensor (ctx, x, n, 3, h, w);
  din = ncl_test_tensor (ctx, NULL, 1, 1, 1, 1);
  NCL_CHECK (ncl_train_graph_forward (g, in, -1, &error));
  NCL_CHECK_NO_ERROR (error);
  o = ncl_train_graph_get_activation (g, ncl_train_graph_get_output_index
      (g));
  NCL_CHECK (o->n == n && o->c == 3 && o->h == 5 && o->w == 6);
  r = g_new (gfloat, ncl_tensor_numel (o));
  ncl_test_fill_random (r, ncl_tensor_numel (o), 41, -1.0f, 1.0f);

  ncl_train_graph_clear_grads (g);
  dout = ncl_train_graph_grad_tensor (g, ncl_train_graph_get_output_index
      (g), &fresh, &error);
  NCL_CHECK (dout != NULL && fresh);
  NCL_CHECK (ncl_tensor_upload (dout, r, &error));
  NCL_CHECK (ncl_train_graph_zero_param_grads (g, &error));
  NCL_CHECK (ncl_train_graph_backward (g, din, &error));
  NCL_CHECK_NO_ERROR (error);
  NCL_CHECK (din->n == n && din->c == 3 && din->h == h && din->w == w);
  dx = ncl_test_download (din);
  l0 = weighted_loss (g, in, r);

  /* input gradient */
  {
    gdouble rms = 0;
    for (gsize i = 0; i < numel; i++)
      rms += (gdouble) dx[i] * dx[i];
    rms = sqrt (rms / numel);
    for (gint k = 0; k < 24; k++) {
      gsize i = (gsize) g_random_int_range (0, (gint32) numel);
      gfloat keep = x[i], eps = 2e-3f;
      gdouble lp, lm;

      x[i] = keep + eps;
      NCL_CHECK (ncl_tensor_upload (in, x, &error));
      lp = weighted_loss (g, in, r);
      x[i] = keep - eps;
      NCL_CHECK (ncl_tensor_upload (in, x, &error));
      lm = weighted_loss (g, in, r);
      x[i] = keep;
      NCL_CHECK (ncl_tensor_upload (in, x, &error));
      fd_point ("d input", i, dx[i], lp, l0, lm, eps, rms, &st);
    }
  }

  /* every parameter tensor */
  for (guint p = 0; p < ncl_train_graph_get_n_params (g); p++) {
    NclTrainParamInfo info;
    g_autofree gfloat *gr = NULL;
    gdouble rms = 0;

    ncl_train_graph_get_param_info (g, p, &info);
    gr = g_new (gfloat, info.numel);
    NCL_CHECK (ncl_train_graph_read_param (g, p, NCL_PARAM_GRAD, gr, &error));
    for (gsize i = 0; i < info.numel; i++)
      rms += (gdouble) gr[i] * gr[i];
    global_floor = MAX (global_floor, 0.01 * sqrt (rms / info.numel));
  }
  for (guint p = 0; p < ncl_train_graph_get_n_params (g); p++) {
    NclTrainParamInfo info;
    g_autofree gfloat *v = NULL;
    g_autofree gfloat *gr = NULL;
    gchar label[64];
    gdouble rms = 0;

    ncl_train_graph_get_param_info (g, p, &info);
    v = g_new (gfloat, info.numel);
    gr = g_new (gfloat, info.numel);
    NCL_CHECK (ncl_train_graph_read_param (g, p, NCL_PARAM_VALUE, v, &error));
    NCL_CHECK (ncl_train_graph_read_param (g, p, NCL_PARAM_GRAD, gr, &error));
    NCL_CHECK_NO_ERROR (error);
    for (gsize i = 0; i < info.numel; i++)
      rms += (gdouble) gr[i] * gr[i];
    rms = sqrt (rms / info.numel);
    g_snprintf (label, sizeof (label), "d %s.%s", info.layer, info.role);
    for (gint k = 0; k < 4; k++) {
      gsize i = (gsize) g_random_int_range (0, (gint32) info.numel);
      gfloat keep = v[i], eps = 2e-3f;
      gdouble lp, lm;

      v[i] = keep + eps;
      NCL_CHECK (ncl_train_graph_write_param (g, p, NCL_PARAM_VALUE, v,
              &error));
      lp = weighted_loss (g, in, r);
      v[i] = keep - eps;
      NCL_CHECK (ncl_train_graph_write_param (g, p, NCL_PARAM_VALUE, v,
              &error));
      lm = weighted_loss (g, in, r);
      v[i] = keep;
      NCL_CHECK (ncl_train_graph_write_param (g, p, NCL_PARAM_VALUE, v,
              &error));
      fd_point (label, i, gr[i], lp, l0, lm, eps, rms, &st);
    }
  }
  g_printerr ("gradients: %d checked, %d skipped at kinks, %d bad\n",
      st.checked, st.skipped, st.bad);
  NCL_CHECK (st.checked >= 50);
  NCL_CHECK (st.bad <= 2);
  /* restored parameters give the original loss */
  NCL_CHECK (fabs (weighted_loss (g, in, r) - l0) <= 1e-4 * (fabs (l0) +
          1));
}

static void
test_fit (NclContext * ctx, NclModel * model)
{
  const gint n = 2, h = 8, w = 8;
  gsize numel = (gsize) n * 3 * h * w;
  g_autoptr (NclTrainGraph) g = ncl_train_graph_new (ctx, model, TRUE, NULL);
  g_autoptr (NclTensor) in = NULL;
  g_autoptr (NclTensor) target = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree gfloat *x = g_new (gfloat, numel);
  g_autofree gfloat *t = g_new (gfloat, numel / 4);
  gdouble first = -1, last = -1;
  NclAdamParams ap;

  ncl_test_fill_random (x, numel, 50, -1.0f, 1.0f);
  ncl_test_fill_random (t, numel / 4, 51, -0.5f, 0.5f);
  in = ncl_test_tensor (ctx, x, n, 3, h, w);
  target = ncl_test_tensor (ctx, t, n, 3, h / 2, w / 2);
  ncl_adam_params_init (&ap);
  ap.lr = 1e-2f;
  for (gint step = 1; step <= 40; step++) {
    NclTensor *o, *dout;
    gboolean fresh;
    gdouble sum;

    NCL_CHECK (ncl_train_graph_forward (g, in, -1, &error));
    o = ncl_train_graph_get_activation (g, ncl_train_graph_get_output_index
        (g));
    ncl_train_graph_clear_grads (g);
    dout = ncl_train_graph_grad_tensor (g,
        ncl_train_graph_get_output_index (g), &fresh, &error);
    NCL_CHECK (ncl_sq_diff (ctx, o, target, 2.0f / ncl_tensor_numel (o),
            FALSE, dout, &sum, &error));
    NCL_CHECK (ncl_train_graph_zero_param_grads (g, &error));
    NCL_CHECK (ncl_train_graph_backward (g, NULL, &error));
    NCL_CHECK (ncl_train_graph_adam_step (g, &ap, step, &error));
    NCL_CHECK_NO_ERROR (error);
    if (step == 1)
      first = sum;
    last = sum;
  }
  g_printerr ("fit: loss %g -> %g after 40 Adam steps\n", first, last);
  NCL_CHECK (last < 0.5 * first);
}

static void
test_frozen (NclContext * ctx, NclModel * model)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (NclTrainGraph) g = ncl_train_graph_new (ctx, model, FALSE,
      &error);
  g_autoptr (NclTensor) in = NULL;
  g_autoptr (NclTensor) din = NULL;
  gfloat x[3 * 8 * 8];
  g_autofree gfloat *dx = NULL;
  gboolean fresh, nonzero = FALSE;
  NclTensor *dout;

  NCL_CHECK_NO_ERROR (error);
  NCL_CHECK (ncl_train_graph_get_n_params (g) == 0);
  ncl_test_fill_random (x, G_N_ELEMENTS (x), 60, -1.0f, 1.0f);
  in = ncl_test_tensor (ctx, x, 1, 3, 8, 8);
  din = ncl_test_tensor (ctx, NULL, 1, 1, 1, 1);
  /* stop at n2; seed its gradient with ones */
  NCL_CHECK (ncl_train_graph_forward (g, in, ncl_train_graph_find (g, "n2"),
          &error));
  ncl_train_graph_clear_grads (g);
  dout = ncl_train_graph_grad_tensor (g, ncl_train_graph_find (g, "c2"),
      &fresh, &error);
  NCL_CHECK (dout != NULL && dout->c == 6 && dout->h == 4);
  {
    g_autofree gfloat *ones = g_new (gfloat, ncl_tensor_numel (dout));
    for (gsize i = 0; i < ncl_tensor_numel (dout); i++)
      ones[i] = 1.0f;
    NCL_CHECK (ncl_tensor_upload (dout, ones, &error));
  }
  NCL_CHECK (ncl_train_graph_backward (g, din, &error));
  NCL_CHECK_NO_ERROR (error);
  dx = ncl_test_download (din);
  for (gsize i = 0; i < G_N_ELEMENTS (x); i++)
    nonzero |= dx[i] != 0.0f;
  NCL_CHECK (nonzero);
  NCL_CHECK (ncl_train_graph_find (g, "nope") == -1);
  /* backward without any seed: a zero input gradient */
  ncl_train_graph_clear_grads (g);
  NCL_CHECK (ncl_train_graph_backward (g, din, &error));
  g_clear_pointer (&dx, g_free);
  dx = ncl_test_download (din);
  for (gsize i = 0; i < G_N_ELEMENTS (x); i++)
    NCL_CHECK (dx[i] == 0.0f);
}

static void
test_presets (NclContext * ctx, const gchar * dir)
{
  const gchar *presets[] = { "small", "johnson" };
  const gint params[] = { 22 + 3 * 8, 22 + 5 * 8 };

  for (guint i = 0; i < G_N_ELEMENTS (presets); i++) {
    g_autofree gchar *path = g_build_filename (dir, "init.safetensors", NULL);
    g_autoptr (GError) error = NULL;
    g_autoptr (NclModel) m = NULL;
    g_autoptr (NclTrainGraph) g = NULL;

    NCL_CHECK (ncl_style_write_initial_net (presets[i], 3, path, &error));
    NCL_CHECK_NO_ERROR (error);
    m = ncl_model_load (path, &error);
    NCL_CHECK_NO_ERROR (error);
    if (m == NULL)
      continue;
    NCL_CHECK (g_str_equal (ncl_model_get_architecture (m),
            "transformer_net"));
    g = ncl_train_graph_new (ctx, m, TRUE, &error);
    NCL_CHECK_NO_ERROR (error);
    NCL_CHECK (g != NULL
        && (gint) ncl_train_graph_get_n_params (g) == params[i]);
  }
  {
    g_autoptr (GError) error = NULL;
    NCL_CHECK (!ncl_style_write_initial_net ("huge", 1, "/nonexistent/x",
            &error));
    NCL_CHECK (error != NULL);
  }
}

int
main (int argc, char **argv)
{
  g_autoptr (NclContext) ctx = ncl_test_context ();
  g_autofree gchar *dir = g_dir_make_tmp ("ncl-train-XXXXXX", NULL);
  g_autoptr (NclModel) model = NULL;

  g_random_set_seed (99);
  model = tiny_model (dir);
  NCL_CHECK (model != NULL);
  if (model != NULL) {
    test_gradients (ctx, model);
    test_fit (ctx, model);
    test_frozen (ctx, model);
  }
  test_presets (ctx, dir);
  {
    g_autofree gchar *a = g_build_filename (dir, "tiny.yaml", NULL);
    g_autofree gchar *b = g_build_filename (dir, "tiny.safetensors", NULL);
    g_autofree gchar *c = g_build_filename (dir, "init.safetensors", NULL);
    g_unlink (a);
    g_unlink (b);
    g_unlink (c);
    g_rmdir (dir);
  }
  return ncl_test_finish ();
}
