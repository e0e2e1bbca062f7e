/* Pooling and fully connected layers: device vs reference on seeded random
 * data over kernel/stride/padding combinations and odd sizes, hand-computed
 * values, every FC batch blocking, and the error paths. */
#include "common.h"

#include <math.h>
#include <string.h>

typedef struct
{
  gint n, c, h, w;
} Shape;

static const Shape pool_shapes[] = {
  {1, 1, 1, 1}, {1, 3, 5, 7}, {2, 5, 3, 3}, {1, 17, 9, 13}, {1, 2, 7, 5},
  {1, 1, 4, 4}, {2, 1, 2, 9},
  /* wide rows: the 16-output vector path, its row ends and borders */
  {2, 3, 11, 72}, {1, 2, 35, 35}, {1, 3, 6, 50}, {1, 1, 5, 33}, {1, 2, 4, 17},
  /* more output rows than work-items: a work-item's rows cross planes */
  {2, 40, 9, 11}, {1, 64, 4, 4}, {1, 32, 72, 72},
};

static const NclActivation all_acts[] = {
  NCL_ACT_NONE, NCL_ACT_RELU, NCL_ACT_LEAKY_RELU, NCL_ACT_SIGMOID,
  NCL_ACT_TANH,
};

static NclPoolParams
pool_params (NclPoolType type, gint k, gint s, gint top, gint bottom,
    gint left, gint right)
{
  NclPoolParams p = { type, k, k, s, s, {top, bottom, left, right,
          NCL_PAD_ZERO}
  };
  return p;
}

/* One configuration: device vs reference, or the error when it is empty. */
static void
check_pool (NclContext * ctx, const NclPoolParams * p, const Shape * s,
    const gfloat * x)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (NclTensor) in = ncl_test_tensor (ctx, x, s->n, s->c, s->h,
      s->w);
  g_autoptr (NclTensor) out = ncl_test_tensor (ctx, NULL, 1, 1, 1, 1);
  g_autofree gfloat *want = NULL, *got = NULL;
  g_autofree gchar *l = g_strdup_printf ("%s %dx%dx%dx%d k%dx%d s%dx%d "
      "pad %d/%d/%d/%d", p->type == NCL_POOL_MAX ? "maxpool" : "avgpool",
      s->n, s->c, s->h, s->w, p->kh, p->kw, p->stride_h, p->stride_w,
      p->pad.top, p->pad.bottom, p->pad.left, p->pad.right);
  gint oh, ow;

  ncl_pool_out_size (p, s->h, s->w, &oh, &ow);
  if (oh < 1 || ow < 1) {
    NCL_CHECK (!ncl_pool_forward (ctx, p, in, out, &error));
    NCL_CHECK (g_error_matches (error, NCL_ERROR, NCL_ERROR_SHAPE));
    return;
  }
  want = g_new (gfloat, (gsize) s->n * s->c * oh * ow);
  ncl_pool_forward_ref (p, x, s->n, s->c, s->h, s->w, want);
  NCL_CHECK (ncl_pool_forward (ctx, p, in, out, &error));
  NCL_CHECK_NO_ERROR (error);
  NCL_CHECK (out->n == s->n && out->c == s->c && out->h == oh
      && out->w == ow);
  got = ncl_test_download (out);
  ncl_test_compare (l, got, want, (gsize) s->n * s->c * oh * ow, 1e-6f,
      1e-6f);
}

static void
test_pool_random (NclContext * ctx)
{
  static const gint kernels[] = { 2, 3 }, strides[] = { 1, 2 }, pads[] = {
  0, 1};

  for (guint i = 0; i < G_N_ELEMENTS (pool_shapes); i++) {
    const Shape *s = &pool_shapes[i];
    gsize numel = (gsize) s->n * s->c * s->h * s->w;
    g_autofree gfloat *x = g_new (gfloat, numel);

    /* all negative, so a max that counted padding as 0 would show */
    ncl_test_fill_random (x, numel, 50 + i, -3.0f, -0.5f);
    for (guint t = 0; t < 2; t++) {
      for (guint k = 0; k < G_N_ELEMENTS (kernels); k++) {
        for (guint st = 0; st < G_N_ELEMENTS (strides); st++) {
          for (guint pd = 0; pd < G_N_ELEMENTS (pads); pd++) {
            NclPoolParams p = pool_params (t == 0 ? NCL_POOL_MAX :
                NCL_POOL_AVG, kernels[k], strides[st], pads[pd], pads[pd],
                pads[pd], pads[pd]);
            check_pool (ctx, &p, s, x);
          }
        }
      }
      {
        /* asymmetric (TF same) padding and a non-square window */
        NclPoolParams p = pool_params (t == 0 ? NCL_POOL_MAX : NCL_POOL_AVG,
            3, 2, 0, 1, 1, 0);
        p.kw = 2;
        p.stride_w = 1;
        check_pool (ctx, &p, s, x);
      }
    }
  }
}

/* Downloads one pooled value per (y, x) pair and compares with @want. */
static void
check_values (const gchar * what, const gfloat * got, gint ow,
    const gint (*at)[2], const gfloat * want, guint count)
{
  for (guint i = 0; i < count; i++) {
    gfloat v = got[at[i][0] * ow + at[i][1]];
    if (fabsf (v - want[i]) > 1e-5f) {
      g_printerr ("%s: out(%d, %d) = %g, want %g\n", what, at[i][0],
          at[i][1], v, want[i]);
      ncl_test_failures++;
    }
  }
}

/* Hand-computed values: average excluding padding, max with padding. */
static void
test_pool_known (NclContext * ctx)
{
  g_autoptr (GError) error = NULL;
  gfloat img[7 * 5], nine[9];
  g_autoptr (NclTensor) in = NULL, in9 = NULL, out = NULL;
  NclPoolParams p;
  gint oh, ow;

  /* 7x5 image, value = 10 * y + x; avg 3x3 stride 2 pad 1 -> 4x3 */
  for (gint y = 0; y < 7; y++)
    for (gint x = 0; x < 5; x++)
      img[y * 5 + x] = 10 * y + x;
  p = pool_params (NCL_POOL_AVG, 3, 2, 1, 1, 1, 1);
  ncl_pool_out_size (&p, 7, 5, &oh, &ow);
  NCL_CHECK (oh == 4 && ow == 3);
  in = ncl_test_tensor (ctx, img, 1, 1, 7, 5);
  out = ncl_test_tensor (ctx, NULL, 1, 1, 1, 1);
  NCL_CHECK (ncl_pool_forward (ctx, &p, in, out, &error));
  NCL_CHECK_NO_ERROR (error);
  {
    /* corner {0,1,10,11}; centre 3x3 around (2,2); bottom-right corner
     * {53,54,63,64}; top edge {1,2,3,11,12,13} */
    static const gint at[][2] = { {0, 0}, {1, 1}, {3, 2}, {0, 1} };
    static const gfloat want[] = { 5.5f, 22.0f, 58.5f, 7.0f };
    g_autofree gfloat *got = ncl_test_download (out);
    gfloat ref[4 * 3];

    check_values ("avgpool 7x5 device", got, ow, at, want, 4);
    ncl_pool_forward_ref (&p, img, 1, 1, 7, 5, ref);
    check_values ("avgpool 7x5 ref", ref, ow, at, want, 4);
  }

  /* 3x3 image 1..9 */
  for (gint i = 0; i < 9; i++)
    nine[i] = i + 1;
  in9 = ncl_test_tensor (ctx, nine, 1, 1, 3, 3);

  /* avg 3x3 stride 1 pad 1 */
  p = pool_params (NCL_POOL_AVG, 3, 1, 1, 1, 1, 1);
  NCL_CHECK (ncl_pool_forward (ctx, &p, in9, out, &error));
  NCL_CHECK_NO_ERROR (error);
  NCL_CHECK (out->h == 3 && out->w == 3);
  {
    static const gint at[][2] = { {0, 0}, {0, 1}, {1, 1}, {2, 2} };
    static const gfloat want[] = { 3.0f, 3.5f, 5.0f, 7.0f };
    g_autofree gfloat *got = ncl_test_download (out);

    check_values ("avgpool 3x3 s1 p1", got, 3, at, want, 4);
  }

  /* max 2x2 stride 2 pad 1 on negated values: padding must not win */
  for (gint i = 0; i < 9; i++)
    nine[i] = -(i + 1);
  NCL_CHECK (ncl_tensor_upload (in9, nine, &error));
  p = pool_params (NCL_POOL_MAX, 2, 2, 1, 1, 1, 1);
  NCL_CHECK (ncl_pool_forward (ctx, &p, in9, out, &error));
  NCL_CHECK_NO_ERROR (error);
  NCL_CHECK (out->h == 2 && out->w == 2);
  {
    static const gint at[][2] = { {0, 0}, {0, 1}, {1, 0}, {1, 1} };
    static const gfloat want[] = { -1.0f, -2.0f, -4.0f, -5.0f };
    g_autofree gfloat *got = ncl_test_download (out);

    check_values ("maxpool 3x3 k2 s2 p1", got, 2, at, want, 4);
  }
  g_print ("ok pool hand-computed values\n");
}

static void
test_pool_sizes_errors (NclContext * ctx)
{
  /* h, w, k, s, pad, want oh, want ow */
  static const gint sizes[][7] = {
    {7, 5, 3, 2, 1, 4, 3}, {6, 6, 2, 2, 0, 3, 3}, {5, 5, 2, 2, 0, 2, 2},
    {1, 1, 2, 1, 0, 0, 0}, {1, 1, 2, 1, 1, 2, 2}, {112, 112, 3, 2, 1, 56, 56},
  };
  g_autoptr (GError) error = NULL;
  g_autoptr (NclTensor) in = ncl_test_tensor (ctx, NULL, 1, 2, 4, 4);
  g_autoptr (NclTensor) out = ncl_test_tensor (ctx, NULL, 1, 1, 1, 1);
  NclPoolParams p;

  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++) {
    const gint *t = sizes[i];
    gint oh = -1, ow = -1;

    p = pool_params (NCL_POOL_MAX, t[2], t[3], t[4], t[4], t[4], t[4]);
    ncl_pool_out_size (&p, t[0], t[1], &oh, &ow);
    if (oh != t[5] || ow != t[6]) {
      g_printerr ("pool out size %dx%d k%d s%d p%d: got %dx%d, want %dx%d\n",
          t[0], t[1], t[2], t[3], t[4], oh, ow, t[5], t[6]);
      ncl_test_failures++;
    }
  }

  p = pool_params (NCL_POOL_MAX, 0, 1, 0, 0, 0, 0);
  NCL_CHECK (!ncl_pool_forward (ctx, &p, in, out, &error));
  NCL_CHECK (g_error_matches (error, NCL_ERROR, NCL_ERROR_FAILED));
  g_clear_error (&error);
  p = pool_params (NCL_POOL_AVG, 2, 0, 0, 0, 0, 0);
  NCL_CHECK (!ncl_pool_forward (ctx, &p, in, out, &error));
  NCL_CHECK (g_error_matches (error, NCL_ERROR, NCL_ERROR_FAILED));
  g_clear_error (&error);
  p = pool_params (NCL_POOL_AVG, 5, 1, 0, 0, 0, 0);
  NCL_CHECK (!ncl_pool_forward (ctx, &p, in, out, &error));
  NCL_CHECK (g_error_matches (error, NCL_ERROR, NCL_ERROR_SHAPE));
  if (error)
    g_print ("ok pool error: %s\n", error->message);
  g_clear_error (&error);
  p = pool_params (NCL_POOL_AVG, 2, 2, 0, 0, 0, 0);
  NCL_CHECK (!ncl_pool_forward (ctx, &p, in, in, &error));
  NCL_CHECK (g_error_matches (error, NCL_ERROR, NCL_ERROR_SHAPE));
  g_clear_error (&error);
  NCL_CHECK (!ncl_global_avgpool_forward (ctx, in, in, &error));
  NCL_CHECK (g_error_matches (error, NCL_ERROR, NCL_ERROR_SHAPE));
}

static void
test_global_avgpool (NclContext * ctx)
{
  static const Shape shapes[] = {
    {1, 1, 1, 1}, {1, 3, 5, 7}, {2, 5, 3, 3}, {1, 17, 9, 13}, {2, 4, 4, 4},
    {1, 2, 40, 33},
  };

  for (guint i = 0; i < G_N_ELEMENTS (shapes); i++) {
    const Shape *s = &shapes[i];
    gsize numel = (gsize) s->n * s->c * s->h * s->w;
    g_autofree gfloat *x = g_new (gfloat, numel);
    g_autofree gfloat *want = g_new (gfloat, s->n * s->c);
    g_autofree gfloat *got = NULL;
    g_autoptr (GError) error = NULL;
    g_autoptr (NclTensor) in = NULL, out = NULL;
    g_autofree gchar *l = g_strdup_printf ("global avgpool %dx%dx%dx%d",
        s->n, s->c, s->h, s->w);

    ncl_test_fill_random (x, numel, 70 + i, -1.0f, 3.0f);
    ncl_global_avgpool_forward_ref (x, s->n, s->c, s->h * s->w, want);
    /* the reference itself: first plane's mean */
    {
      gdouble sum = 0.0;
      for (gint j = 0; j < s->h * s->w; j++)
        sum += x[j];
      NCL_CHECK (fabs (want[0] - sum / (s->h * s->w)) < 1e-5);
    }
    in = ncl_test_tensor (ctx, x, s->n, s->c, s->h, s->w);
    out = ncl_test_tensor (ctx, NULL, 1, 1, 1, 1);
    NCL_CHECK (ncl_global_avgpool_forward (ctx, in, out, &error));
    NCL_CHECK_NO_ERROR (error);
    NCL_CHECK (out->n == s->n && out->c == s->c && out->h == 1
        && out->w == 1);
    got = ncl_test_download (out);
    ncl_test_compare (l, got, want, s->n * s->c, 1e-5f, 1e-5f);
  }
}

/* One FC case: device vs reference; the output must not be written past
 * n * out_f. */
static void
check_fc (NclContext * ctx, gint n, gint c, gint h, gint w, gint out_f,
    gboolean with_bias, NclActivation act, guint32 seed)
{
  gint in_f = c * h * w;
  gsize in_n = (gsize) n * in_f, w_n = (gsize) out_f * in_f;
  gsize out_n = (gsize) n * out_f, big = out_n + 40;
  g_autofree gfloat *x = g_new (gfloat, in_n);
  g_autofree gfloat *wt = g_new (gfloat, w_n);
  g_autofree gfloat *b = g_new (gfloat, out_f);
  g_autofree gfloat *want = g_new (gfloat, out_n);
  g_autofree gfloat *fill = g_new (gfloat, big);
  g_autofree gfloat *got = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (NclTensor) in = NULL, out = NULL;
  g_autofree gchar *l = g_strdup_printf ("fc n%d in (%d, %d, %d) -> %d%s %s",
      n, c, h, w, out_f, with_bias ? " +bias" : "",
      ncl_activation_to_string (act));
  cl_mem wbuf, bbuf = NULL;

  ncl_test_fill_random (x, in_n, seed, -1.0f, 1.0f);
  ncl_test_fill_random (wt, w_n, seed + 1, -0.5f, 0.5f);
  ncl_test_fill_random (b, out_f, seed + 2, -1.0f, 1.0f);
  for (gsize i = 0; i < big; i++)
    fill[i] = 1234.5f;
  ncl_fc_forward_ref (x, n, in_f, out_f, wt, with_bias ? b : NULL, act, 0.1f,
      want);

  in = ncl_test_tensor (ctx, x, n, c, h, w);
  out = ncl_test_tensor (ctx, fill, 1, 1, 1, (gint) big);
  wbuf = ncl_buffer_from_host (ctx, wt, w_n, &error);
  NCL_CHECK_NO_ERROR (error);
  if (with_bias) {
    bbuf = ncl_buffer_from_host (ctx, b, out_f, &error);
    NCL_CHECK_NO_ERROR (error);
  }
  NCL_CHECK (ncl_fc_forward (ctx, in, wbuf, bbuf, out_f, act, 0.1f, out,
          &error));
  NCL_CHECK_NO_ERROR (error);
  NCL_CHECK (out->n == n && out->c == out_f && out->h == 1 && out->w == 1);
  got = ncl_test_download (out);
  ncl_test_compare (l, got, want, out_n, 1e-5f, 1e-4f);

  {
    g_autofree gfloat *all = NULL;

    NCL_CHECK (ncl_tensor_reshape (out, 1, 1, 1, (gint) big, &error));
    all = ncl_test_download (out);
    for (gsize i = out_n; i < big; i++) {
      if (all[i] != 1234.5f) {
        g_printerr ("%s: wrote past the result at [%" G_GSIZE_FORMAT "]\n",
            l, i);
        ncl_test_failures++;
        break;
      }
    }
  }
  clReleaseMemObject (wbuf);
  if (bbuf)
    clReleaseMemObject (bbuf);
}

static void
test_fc (NclContext * ctx)
{
  static const gint ns[] = { 1, 2, 3, 8, 9 };
  static const gint in_fs[] = { 1, 5, 128, 300 };
  static const gint out_fs[] = { 1, 7, 128 };
  guint count = 0;

  for (guint i = 0; i < G_N_ELEMENTS (ns); i++)
    for (guint j = 0; j < G_N_ELEMENTS (in_fs); j++)
      for (guint k = 0; k < G_N_ELEMENTS (out_fs); k++)
        for (gint bias = 0; bias < 2; bias++, count++)
          check_fc (ctx, ns[i], in_fs[j], 1, 1, out_fs[k], bias,
              all_acts[count % G_N_ELEMENTS (all_acts)], 300 + count);

  /* (n, c, h, w) inputs flattened per sample; the 512 -> 1 head */
  check_fc (ctx, 3, 3, 5, 4, 7, TRUE, NCL_ACT_RELU, 900);
  check_fc (ctx, 2, 17, 3, 1, 16, FALSE, NCL_ACT_SIGMOID, 901);
  check_fc (ctx, 1, 512, 1, 1, 1, TRUE, NCL_ACT_SIGMOID, 902);
  check_fc (ctx, 8, 512, 1, 1, 1, TRUE, NCL_ACT_NONE, 903);
}

/* Hand-computed FC output, and the buffer-size and shape errors. */
static void
test_fc_known_errors (NclContext * ctx)
{
  static const gfloat x[] = { 1, 2, 3, -1, 0, 2 };       /* (2, 3) */
  static const gfloat wt[] = { 1, 0, -1, 0.5f, 0.5f, 0.5f };    /* (2, 3) */
  static const gfloat b[] = { 0.25f, -4.0f };
  /* sample 0: 1 - 3 + 0.25 = -1.75, 3 - 4 = -1; sample 1: -1 - 2 + 0.25
   * = -2.75, 0.5 - 4 = -3.5; all negative, so leaky 0.5 halves them */
  static const gfloat want[] = { -0.875f, -0.5f, -1.375f, -1.75f };
  g_autoptr (GError) error = NULL;
  g_autoptr (NclTensor) in = ncl_test_tensor (ctx, x, 2, 3, 1, 1);
  g_autoptr (NclTensor) out = ncl_test_tensor (ctx, NULL, 1, 1, 1, 1);
  g_autofree gfloat *got = NULL;
  cl_mem wbuf = ncl_buffer_from_host (ctx, wt, 6, &error);
  cl_mem bbuf = ncl_buffer_from_host (ctx, b, 2, &error);
  cl_mem small = NULL;
  g_autofree gfloat *zeros = g_new0 (gfloat, 4000);
  gfloat ref[4];

  NCL_CHECK (ncl_fc_forward (ctx, in, wbuf, bbuf, 2, NCL_ACT_LEAKY_RELU,
          0.5f, out, &error));
  NCL_CHECK_NO_ERROR (error);
  got = ncl_test_download (out);
  ncl_test_compare ("fc hand-computed", got, want, 4, 1e-6f, 0.0f);
  ncl_fc_forward_ref (x, 2, 3, 2, wt, b, NCL_ACT_LEAKY_RELU, 0.5f, ref);
  ncl_test_compare ("fc ref hand-computed", ref, want, 4, 1e-6f, 0.0f);

  /* a weight buffer too small for out_f x in_f (even with its slack) */
  NCL_CHECK (!ncl_fc_forward (ctx, in, wbuf, NULL, 40, NCL_ACT_NONE, 0.0f,
          out, &error));
  NCL_CHECK (g_error_matches (error, NCL_ERROR, NCL_ERROR_SHAPE));
  if (error)
    g_print ("ok fc error: %s\n", error->message);
  g_clear_error (&error);

  /* a bias buffer too small */
  small = ncl_buffer_from_host (ctx, zeros, 4000, &error);
  NCL_CHECK (!ncl_fc_forward (ctx, in, small, bbuf, 100, NCL_ACT_NONE, 0.0f,
          out, &error));
  NCL_CHECK (g_error_matches (error, NCL_ERROR, NCL_ERROR_SHAPE));
  g_clear_error (&error);

  NCL_CHECK (!ncl_fc_forward (ctx, in, wbuf, NULL, 0, NCL_ACT_NONE, 0.0f,
          out, &error));
  NCL_CHECK (g_error_matches (error, NCL_ERROR, NCL_ERROR_SHAPE));
  g_clear_error (&error);
  NCL_CHECK (!ncl_fc_forward (ctx, in, wbuf, NULL, 2, NCL_ACT_NONE, 0.0f,
          in, &error));
  NCL_CHECK (g_error_matches (error, NCL_ERROR, NCL_ERROR_SHAPE));

  clReleaseMemObject (small);
  clReleaseMemObject (bbuf);
  clReleaseMemObject (wbuf);
}

int
main (void)
{
  g_autoptr (NclContext) ctx = ncl_test_context ();

  test_pool_random (ctx);
  test_pool_known (ctx);
  test_pool_sizes_errors (ctx);
  test_global_avgpool (ctx);
  test_fc (ctx);
  test_fc_known_errors (ctx);
  return ncl_test_finish ();
}
