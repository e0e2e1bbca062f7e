/* Model loading: every kind of bad model is a clean error naming the file
 * and the tensor or YAML position; and a small graph using the other ops
 * (batch norm folding, TF same padding, pools, add, concat, fc, l2 norm)
 * runs on the device like the chained C references. */
#include "common.h"

#include <glib/gstdio.h>
#include <string.h>

static gchar *tmpdir;
static gchar *mosaic;

static gchar *
tmp_path (const gchar * name)
{
  return g_build_filename (tmpdir, name, NULL);
}

static gchar *
write_tmp (const gchar * name, const gchar * data, gssize len)
{
  gchar *path = tmp_path (name);

  g_assert_true (g_file_set_contents (path, data, len, NULL));
  return path;
}

/* Loading @path fails with @code and a message containing every @needle. */
static void
expect_error (const gchar * label, const gchar * path, gint code, ...)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (NclModel) model = ncl_model_load (path, &error);
  va_list ap;
  const gchar *needle;

  if (model != NULL || error == NULL) {
    g_printerr ("%s: loaded, expected an error\n", label);
    ncl_test_failures++;
    return;
  }
  if (error->domain != NCL_ERROR || error->code != code) {
    g_printerr ("%s: error code %d, expected %d: %s\n", label, error->code,
        code, error->message);
    ncl_test_failures++;
  }
  if (strchr (error->message, '\n')) {
    g_printerr ("%s: message is not one line: %s\n", label, error->message);
    ncl_test_failures++;
  }
  va_start (ap, code);
  while ((needle = va_arg (ap, const gchar *))) {
    if (!strstr (error->message, needle)) {
      g_printerr ("%s: '%s' not in: %s\n", label, needle, error->message);
      ncl_test_failures++;
    }
  }
  va_end (ap);
  g_print ("ok %s: %s\n", label, error->message);
}

static void
test_bad_files (void)
{
  g_autofree gchar *data = NULL;
  gsize len = 0;
  g_autofree gchar *missing = tmp_path ("missing.safetensors");
  g_autofree gchar *trunc = NULL, *corrupt = NULL, *graph = NULL;
  g_autofree gchar *noweights = NULL, *syntax = NULL, *unknown_op = NULL;
  g_autofree gchar *bad_ref = NULL, *bad_shape = NULL, *extra = NULL;
  g_autofree gchar *missing_tensor = NULL, *not_tn = NULL, *wrong_in = NULL;
  g_autofree gchar *version = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (NclModel) good = NULL;
  g_autofree gchar *yaml = NULL;
  g_autofree gchar *w = NULL;

  g_assert_true (g_file_get_contents (mosaic, &data, &len, NULL));
  expect_error ("missing file", missing, NCL_ERROR_NOT_FOUND,
      "missing.safetensors", NULL);
  trunc = write_tmp ("trunc.safetensors", data, len / 2);
  expect_error ("truncated", trunc, NCL_ERROR_INVALID_MODEL,
      "trunc.safetensors", NULL);
  data[20] = '{';
  data[21] = '{';
  corrupt = write_tmp ("corrupt.safetensors", data, len);
  expect_error ("corrupt header", corrupt, NCL_ERROR_INVALID_MODEL,
      "corrupt.safetensors", NULL);

  /* a graph beside a copy of the real weights */
  good = ncl_model_load (mosaic, &error);
  NCL_CHECK_NO_ERROR (error);
  g_assert_nonnull (good);
  yaml = ncl_model_to_yaml (good, mosaic);
  graph = write_tmp ("good.yaml", yaml, -1);
  {
    g_autoptr (NclModel) m = ncl_model_load (graph, &error);
    NCL_CHECK_NO_ERROR (error);
    /* the same weights under another graph text get another fingerprint */
    NCL_CHECK (m != NULL && strlen (ncl_model_get_fingerprint (m)) == 64);
    NCL_CHECK (m != NULL && !g_str_equal (ncl_model_get_fingerprint (m),
            ncl_model_get_fingerprint (good)));
  }

  {
    g_autofree gchar *t = g_strdup (yaml);
    gchar *p = strstr (t, "weights:");
    memcpy (p, "weightz:", 8);
    noweights = write_tmp ("noweights.yaml", t, -1);
    expect_error ("unknown top-level key", noweights,
        NCL_ERROR_INVALID_CONFIG, "noweights.yaml:", "weightz", NULL);
  }
  syntax = write_tmp ("syntax.yaml", "neuralcl-model: 1\nlayers: [\n", -1);
  expect_error ("YAML syntax", syntax, NCL_ERROR_INVALID_CONFIG,
      "syntax.yaml:", NULL);
  version = write_tmp ("version.yaml", "neuralcl-model: 7\nlayers: []\n", -1);
  expect_error ("format version", version, NCL_ERROR_INVALID_MODEL,
      "version.yaml", "7", NULL);
  {
    g_autofree gchar *t = g_strdup (yaml);
    gchar *p = strstr (t, "op: instance_norm");
    memcpy (p, "op: instance_nrm ", 17);
    unknown_op = write_tmp ("unknown-op.yaml", t, -1);
    expect_error ("unknown op", unknown_op, NCL_ERROR_INVALID_CONFIG,
        "unknown-op.yaml:19:9:", "instance_nrm", NULL);
  }
  {
    g_autoptr (GString) t = g_string_new (yaml);
    g_string_replace (t, "residual: in3", "residual: in33", 1);
    bad_ref = write_tmp ("bad-ref.yaml", t->str, -1);
    expect_error ("unknown layer reference", bad_ref,
        NCL_ERROR_INVALID_CONFIG, "bad-ref.yaml:", "in33", NULL);
  }
  {
    g_autoptr (GString) t = g_string_new (yaml);
    g_string_replace (t, "kernel: 9", "kernel: 7", 1);
    bad_shape = write_tmp ("bad-shape.yaml", t->str, -1);
    expect_error ("weight shape", bad_shape, NCL_ERROR_INVALID_MODEL,
        "mosaic.safetensors", "conv1.conv2d.weight", NULL);
  }
  {
    g_autoptr (GString) t = g_string_new (yaml);
    g_string_replace (t, "weight: in5.weight", "weight: in5.wieght", 1);
    missing_tensor = write_tmp ("missing-tensor.yaml", t->str, -1);
    expect_error ("missing tensor", missing_tensor, NCL_ERROR_INVALID_MODEL,
        "in5.wieght", "missing", NULL);
  }
  {
    /* drop the last layer: its weights are then unused */
    g_autofree gchar *t = g_strdup (yaml);
    gchar *p = strstr (t, "  - name: deconv3");
    *p = '\0';
    extra = write_tmp ("extra.yaml", t, -1);
    expect_error ("unused tensor", extra, NCL_ERROR_INVALID_MODEL,
        "deconv3.conv2d.weight", "not used", NULL);
  }
  {
    g_autoptr (NclSafetensorsWriter) wr = ncl_safetensors_writer_new ();
    const gint64 shape[1] = { 4 };
    const gfloat v[4] = { 1, 2, 3, 4 };
    not_tn = tmp_path ("other.safetensors");
    ncl_safetensors_writer_add (wr, "foo", NCL_DTYPE_F32, 1, shape, v);
    NCL_CHECK (ncl_safetensors_writer_write (wr, not_tn, &error));
    expect_error ("bare weights, not a TransformerNet", not_tn,
        NCL_ERROR_INVALID_MODEL, "other.safetensors", "conv1.conv2d.weight",
        NULL);
  }
  {
    /* a checkpoint whose in1.weight has the wrong length */
    g_autoptr (NclSafetensors) st = ncl_safetensors_load (mosaic, &error);
    g_autoptr (NclSafetensorsWriter) wr = ncl_safetensors_writer_new ();
    for (guint i = 0; i < ncl_safetensors_get_n_tensors (st); i++) {
      const NclSafetensor *t = ncl_safetensors_get_nth (st, i);
      g_autofree gfloat *v = ncl_safetensors_read_f32 (st, t->name, t->ndim,
          t->shape, &error);
      gint64 shape[4];
      memcpy (shape, t->shape, sizeof (shape));
      if (g_str_equal (t->name, "in1.weight"))
        shape[0] -= 1;
      ncl_safetensors_writer_add (wr, t->name, t->dtype, t->ndim, shape, v);
    }
    wrong_in = tmp_path ("wrong-in1.safetensors");
    NCL_CHECK (ncl_safetensors_writer_write (wr, wrong_in, &error));
    NCL_CHECK_NO_ERROR (error);
    expect_error ("checkpoint tensor shape", wrong_in,
        NCL_ERROR_INVALID_MODEL, "wrong-in1.safetensors", "in1.weight", NULL);
  }
  (void) w;
}

/* ---- a small graph of the other ops vs chained references ------------- */

static const gchar small_graph[] =
    "neuralcl-model: 1\n"
    "name: small\n"
    "weights: small.safetensors\n"
    "input: {channels: 3}\n"
    "layers:\n"
    "  - {name: c1, op: conv, filters: 8, kernel: 3, stride: 2,"
    " padding: same, weight: c1.w}\n"
    "  - {name: bn1, op: batch_norm, weight: bn.g, bias: bn.b, mean: bn.m,"
    " var: bn.v, eps: 0.001}\n"
    "  - {name: r1, op: activation, activation: relu}\n"
    "  - {name: p1, op: max_pool, kernel: 3, stride: 2, padding: same}\n"
    "  - {name: c2, op: conv, filters: 8, kernel: 3, groups: 8, padding: 1,"
    " weight: c2.w, bias: c2.b, activation: leaky_relu, alpha: 0.2}\n"
    "  - {name: s1, op: add, inputs: [p1, c2]}\n"
    "  - {name: cat, op: concat, inputs: [s1, p1]}\n"
    "  - {name: g, op: global_avg_pool}\n"
    "  - {name: fc, op: fc, units: 5, weight: fc.w, bias: fc.b}\n"
    "  - {name: out, op: l2_norm}\n";

static void
test_small_graph (NclContext * ctx)
{
  const gint H = 13, W = 11;
  g_autoptr (NclSafetensorsWriter) wr = ncl_safetensors_writer_new ();
  g_autoptr (GError) error = NULL;
  g_autofree gchar *wpath = tmp_path ("small.safetensors");
  g_autofree gchar *gpath = NULL;
  g_autoptr (NclModel) model = NULL;
  g_autoptr (NclRunner) runner = NULL;
  g_autoptr (NclTensor) tin = NULL;
  NclTensor *tout = NULL;
  gfloat c1w[8 * 3 * 9], g[8], b[8], m[8], v[8], c2w[8 * 9], c2b[8];
  gfloat fcw[5 * 16], fcb[5];
  gfloat x[3 * 13 * 11];
  gint64 s4[4], s1[1], s2[2];
  /* reference activations */
  NclConvParams p1 = { 0 }, p2 = { 0 };
  NclPoolParams pool = { NCL_POOL_MAX, 3, 3, 2, 2 };
  gint h1, w1, h2, w2;
  g_autofree gfloat *a1 = NULL, *a2 = NULL, *a3 = NULL, *a4 = NULL;
  g_autofree gfloat *a5 = NULL, *got = NULL;
  gfloat gap[16], fc[5], want[5];

  ncl_test_fill_random (c1w, G_N_ELEMENTS (c1w), 1, -0.5f, 0.5f);
  ncl_test_fill_random (g, 8, 2, 0.5f, 1.5f);
  ncl_test_fill_random (b, 8, 3, -0.5f, 0.5f);
  ncl_test_fill_random (m, 8, 4, -0.5f, 0.5f);
  ncl_test_fill_random (v, 8, 5, 0.2f, 2.0f);
  ncl_test_fill_random (c2w, G_N_ELEMENTS (c2w), 6, -0.5f, 0.5f);
  ncl_test_fill_random (c2b, 8, 7, -0.5f, 0.5f);
  ncl_test_fill_random (fcw, G_N_ELEMENTS (fcw), 8, -0.5f, 0.5f);
  ncl_test_fill_random (fcb, 5, 9, -0.5f, 0.5f);
  ncl_test_fill_random (x, G_N_ELEMENTS (x), 10, 0.0f, 1.0f);

  s4[0] = 8; s4[1] = 3; s4[2] = 3; s4[3] = 3;
  ncl_safetensors_writer_add (wr, "c1.w", NCL_DTYPE_F32, 4, s4, c1w);
  s1[0] = 8;
  ncl_safetensors_writer_add (wr, "bn.g", NCL_DTYPE_F32, 1, s1, g);
  ncl_safetensors_writer_add (wr, "bn.b", NCL_DTYPE_F32, 1, s1, b);
  ncl_safetensors_writer_add (wr, "bn.m", NCL_DTYPE_F32, 1, s1, m);
  ncl_safetensors_writer_add (wr, "bn.v", NCL_DTYPE_F32, 1, s1, v);
  s4[1] = 1;
  ncl_safetensors_writer_add (wr, "c2.w", NCL_DTYPE_F16, 4, s4, c2w);
  ncl_safetensors_writer_add (wr, "c2.b", NCL_DTYPE_F32, 1, s1, c2b);
  s2[0] = 5; s2[1] = 16;
  ncl_safetensors_writer_add (wr, "fc.w", NCL_DTYPE_F32, 2, s2, fcw);
  s1[0] = 5;
  ncl_safetensors_writer_add (wr, "fc.b", NCL_DTYPE_F32, 1, s1, fcb);
  NCL_CHECK (ncl_safetensors_writer_write (wr, wpath, &error));
  gpath = write_tmp ("small.yaml", small_graph, -1);

  model = ncl_model_load (gpath, &error);
  NCL_CHECK_NO_ERROR (error);
  if (model == NULL)
    return;
  runner = ncl_runner_new (model, ctx, &error);
  NCL_CHECK_NO_ERROR (error);
  tin = ncl_test_tensor (ctx, x, 1, 3, H, W);
  NCL_CHECK (ncl_runner_run (runner, tin, &tout, &error));
  NCL_CHECK_NO_ERROR (error);
  if (tout == NULL)
    return;
  NCL_CHECK (tout->c == 5 && tout->h == 1 && tout->w == 1);
  got = ncl_test_download (tout);

  /* the same by hand: conv (TF same), BN, relu, pool (same), dw conv, ... */
  {
    g_autofree gfloat *c1wr = g_memdup2 (c1w, sizeof (c1w));
    gfloat c2wr[8 * 9];
    gfloat bias1[8] = { 0 };
    for (gint i = 0; i < 8 * 9; i++)
      c2wr[i] = ncl_half_to_float (ncl_float_to_half (c2w[i]));
    p1.cin = 3; p1.cout = 8; p1.kh = p1.kw = 3;
    p1.stride_h = p1.stride_w = 2; p1.groups = 1; p1.dilation = 1;
    ncl_padding_tf_same (H, W, 3, 3, 2, 2, &p1.pad);
    p1.weight = c1wr;
    p1.bias = bias1;
    ncl_conv2d_fold_batchnorm (8, 27, c1wr, bias1, g, b, m, v, 0.001f);
    p1.act = NCL_ACT_RELU;
    ncl_conv2d_out_size (&p1, H, W, &h1, &w1);
    a1 = g_new (gfloat, 8 * h1 * w1);
    ncl_conv2d_forward_ref (&p1, x, 1, H, W, a1);

    ncl_padding_tf_same (h1, w1, 3, 3, 2, 2, &pool.pad);
    ncl_pool_out_size (&pool, h1, w1, &h2, &w2);
    a2 = g_new (gfloat, 8 * h2 * w2);
    ncl_pool_forward_ref (&pool, a1, 1, 8, h1, w1, a2);

    p2.cin = 8; p2.cout = 8; p2.kh = p2.kw = 3; p2.stride_h = p2.stride_w = 1;
    p2.groups = 8; p2.dilation = 1;
    p2.pad.top = p2.pad.bottom = p2.pad.left = p2.pad.right = 1;
    p2.weight = c2wr;
    p2.bias = c2b;
    p2.act = NCL_ACT_LEAKY_RELU;
    p2.alpha = 0.2f;
    a3 = g_new (gfloat, 8 * h2 * w2);
    ncl_conv2d_forward_ref (&p2, a2, 1, h2, w2, a3);
    a4 = g_new (gfloat, 8 * h2 * w2);
    ncl_add_forward_ref (a2, a3, 8 * h2 * w2, NCL_ACT_NONE, 0, a4);
    a5 = g_new (gfloat, 16 * h2 * w2);
    ncl_concat_forward_ref (a4, 8, a2, 8, 1, h2 * w2, a5);
    ncl_global_avgpool_forward_ref (a5, 1, 16, h2 * w2, gap);
    ncl_fc_forward_ref (gap, 1, 16, 5, fcw, fcb, NCL_ACT_NONE, 0, fc);
    ncl_l2norm_forward_ref (fc, 1, 5, 1e-12f, want);
  }
  ncl_test_compare ("small graph (bn fold, same pad, pools, add, concat, fc)",
      got, want, 5, 1e-5f, 1e-4f);
}

/* outputs: [..], constants: [..], channel + spatial pad, relu6 */
static void
test_outputs_constants (NclContext * ctx)
{
  static const gchar graph[] =
      "neuralcl-model: 1\n"
      "weights: small2.safetensors\n"
      "input: {channels: 2}\n"
      "constants: [anchors]\n"
      "outputs: [a, b]\n"
      "layers:\n"
      "  - {name: a, op: pad, channels: [1, 2], padding: [0, 1, 0, 1]}\n"
      "  - {name: b, op: activation, input: input, activation: relu6}\n";
  g_autoptr (NclSafetensorsWriter) wr = ncl_safetensors_writer_new ();
  g_autoptr (GError) error = NULL;
  g_autofree gchar *wpath = tmp_path ("small2.safetensors");
  g_autofree gchar *gpath = write_tmp ("small2.yaml", graph, -1);
  g_autoptr (NclModel) model = NULL;
  g_autoptr (NclRunner) runner = NULL;
  g_autoptr (NclTensor) tin = NULL;
  NclTensor *out = NULL;
  const gfloat anchors[6] = { 0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f };
  const gint64 ashape[2] = { 3, 2 };
  gfloat x[2 * 3 * 4];
  gfloat padded[2 * 4 * 5], want_a[5 * 4 * 5], want_b[2 * 3 * 4];
  g_autofree gfloat *got_a = NULL, *got_b = NULL;
  NclPadding pad = { 0, 1, 0, 1, NCL_PAD_ZERO };
  const gfloat *c;
  gint ndim = 0;
  gint64 shape[8];

  ncl_safetensors_writer_add (wr, "anchors", NCL_DTYPE_F32, 2, ashape,
      anchors);
  NCL_CHECK (ncl_safetensors_writer_write (wr, wpath, &error));
  model = ncl_model_load (gpath, &error);
  NCL_CHECK_NO_ERROR (error);
  if (model == NULL)
    return;
  NCL_CHECK (ncl_model_get_n_outputs (model) == 2);
  NCL_CHECK (g_strcmp0 (ncl_model_get_output_name (model, 1), "b") == 0);
  c = ncl_model_get_constant (model, "anchors", &ndim, shape);
  NCL_CHECK (c != NULL && ndim == 2 && shape[0] == 3 && c[5] == 0.6f);
  NCL_CHECK (ncl_model_get_constant (model, "nope", NULL, NULL) == NULL);

  ncl_test_fill_random (x, G_N_ELEMENTS (x), 77, -10.0f, 10.0f);
  runner = ncl_runner_new (model, ctx, &error);
  NCL_CHECK_NO_ERROR (error);
  tin = ncl_test_tensor (ctx, x, 1, 2, 3, 4);
  NCL_CHECK (ncl_runner_run (runner, tin, &out, &error));
  NCL_CHECK_NO_ERROR (error);
  ncl_pad_forward_ref (x, 1, 2, 3, 4, 1, &pad, padded);
  ncl_pad_channels_forward_ref (padded, 1, 2, 4 * 5, 1, 2, want_a);
  ncl_activation_forward_ref (x, G_N_ELEMENTS (x), NCL_ACT_RELU6, 0, want_b);
  got_a = ncl_test_download (ncl_runner_get_output (runner, 0));
  got_b = ncl_test_download (ncl_runner_get_output (runner, 1));
  NCL_CHECK (ncl_runner_get_output (runner, 0)->c == 5);
  ncl_test_compare ("output a: channel + spatial pad", got_a, want_a,
      G_N_ELEMENTS (want_a), 0, 0);
  ncl_test_compare ("output b: relu6", got_b, want_b, G_N_ELEMENTS (want_b),
      0, 0);
}

int
main (void)
{
  g_autoptr (NclContext) ctx = NULL;

  tmpdir = g_dir_make_tmp ("ncl-loader-XXXXXX", NULL);
  mosaic = ncl_test_shared_path ("data/style/pretrained/mosaic.safetensors");
  test_bad_files ();
  ctx = ncl_test_context ();
  test_small_graph (ctx);
  test_outputs_constants (ctx);
  return ncl_test_finish ();
}
