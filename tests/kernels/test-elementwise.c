/* Element-wise layers: device vs reference on seeded random data and odd
 * shapes, in-place variants, exact writes, shape errors, and the string
 * and TF "same" padding helpers. */
#include "common.h"

#include <math.h>
#include <string.h>

typedef struct
{
  gint n, c, h, w;
} Shape;

/* Odd sizes: 1, 105, 90, 1989, 17, plus multiples of 16 for the pure
 * vector path (32, 96). */
static const Shape shapes[] = {
  {1, 1, 1, 1}, {1, 3, 5, 7}, {2, 5, 3, 3}, {1, 17, 9, 13}, {1, 1, 1, 17},
  {1, 2, 4, 4}, {2, 3, 4, 4},
};

static const NclActivation all_acts[] = {
  NCL_ACT_NONE, NCL_ACT_RELU, NCL_ACT_LEAKY_RELU, NCL_ACT_SIGMOID,
  NCL_ACT_TANH, NCL_ACT_RELU6,
};

#define ATOL 1e-6f
#define RTOL 1e-5f
#define SENTINEL 1234.5f

static gsize
shape_numel (const Shape * s)
{
  return (gsize) s->n * s->c * s->h * s->w;
}

static gchar *
label (const gchar * what, const Shape * s, const gchar * extra)
{
  return g_strdup_printf ("%s %dx%dx%dx%d%s%s", what, s->n, s->c, s->h, s->w,
      extra ? " " : "", extra ? extra : "");
}

/* An output tensor larger than needed, filled with SENTINEL, so that
 * check_untouched() can see writes past the result. */
static NclTensor *
sentinel_tensor (NclContext * ctx, gsize numel)
{
  gsize big = numel + 40;
  g_autofree gfloat *fill = g_new (gfloat, big);

  for (gsize i = 0; i < big; i++)
    fill[i] = SENTINEL;
  return ncl_test_tensor (ctx, fill, 1, 1, 1, (gint) big);
}

/* Checks that the values past @numel in @t's buffer are still SENTINEL. */
static void
check_untouched (NclTensor * t, gsize numel, const gchar * what)
{
  g_autoptr (GError) error = NULL;
  gsize big = numel + 40;
  g_autofree gfloat *all = NULL;

  NCL_CHECK (ncl_tensor_reshape (t, 1, 1, 1, (gint) big, &error));
  NCL_CHECK_NO_ERROR (error);
  all = ncl_test_download (t);
  for (gsize i = numel; i < big; i++) {
    if (all[i] != SENTINEL) {
      g_printerr ("%s: wrote past the result at [%" G_GSIZE_FORMAT "]: %g\n",
          what, i, all[i]);
      ncl_test_failures++;
      return;
    }
  }
}

static void
check_shape (const NclTensor * t, gint n, gint c, gint h, gint w)
{
  NCL_CHECK (t->n == n && t->c == c && t->h == h && t->w == w);
}

static void
test_activation (NclContext * ctx, const Shape * s, guint32 seed)
{
  gsize numel = shape_numel (s);
  g_autofree gfloat *x = g_new (gfloat, numel);
  g_autofree gfloat *want = g_new (gfloat, numel);

  ncl_test_fill_random (x, numel, seed, -8.0f, 8.0f);
  for (guint i = 0; i < G_N_ELEMENTS (all_acts); i++) {
    NclActivation act = all_acts[i];
    g_autoptr (GError) error = NULL;
    g_autoptr (NclTensor) in = ncl_test_tensor (ctx, x, s->n, s->c, s->h,
        s->w);
    g_autoptr (NclTensor) out = sentinel_tensor (ctx, numel);
    g_autofree gfloat *got = NULL, *got_ip = NULL;
    g_autofree gchar *l = label ("activation", s,
        ncl_activation_to_string (act));
    g_autofree gchar *l_ip = label ("activation in-place", s,
        ncl_activation_to_string (act));

    ncl_activation_forward_ref (x, numel, act, 0.1f, want);

    NCL_CHECK (ncl_activation_forward (ctx, in, act, 0.1f, out, &error));
    NCL_CHECK_NO_ERROR (error);
    check_shape (out, s->n, s->c, s->h, s->w);
    got = ncl_test_download (out);
    ncl_test_compare (l, got, want, numel, ATOL, RTOL);
    check_untouched (out, numel, l);

    NCL_CHECK (ncl_activation_forward (ctx, in, act, 0.1f, in, &error));
    NCL_CHECK_NO_ERROR (error);
    got_ip = ncl_test_download (in);
    ncl_test_compare (l_ip, got_ip, want, numel, ATOL, RTOL);
  }
}

static void
test_add (NclContext * ctx, const Shape * s, guint32 seed)
{
  gsize numel = shape_numel (s);
  g_autofree gfloat *a = g_new (gfloat, numel);
  g_autofree gfloat *b = g_new (gfloat, numel);
  g_autofree gfloat *want = g_new (gfloat, numel);

  ncl_test_fill_random (a, numel, seed, -2.0f, 2.0f);
  ncl_test_fill_random (b, numel, seed + 1, -2.0f, 2.0f);
  for (guint i = 0; i < G_N_ELEMENTS (all_acts); i++) {
    NclActivation act = all_acts[i];
    g_autoptr (GError) error = NULL;
    g_autoptr (NclTensor) ta = ncl_test_tensor (ctx, a, s->n, s->c, s->h,
        s->w);
    g_autoptr (NclTensor) tb = ncl_test_tensor (ctx, b, s->n, s->c, s->h,
        s->w);
    g_autoptr (NclTensor) out = sentinel_tensor (ctx, numel);
    g_autofree gfloat *got = NULL, *got_a = NULL, *got_b = NULL;
    g_autofree gchar *l = label ("add", s, ncl_activation_to_string (act));
    g_autofree gchar *l_a = label ("add into a", s,
        ncl_activation_to_string (act));
    g_autofree gchar *l_b = label ("add into b", s,
        ncl_activation_to_string (act));

    ncl_add_forward_ref (a, b, numel, act, 0.2f, want);

    NCL_CHECK (ncl_add_forward (ctx, ta, tb, act, 0.2f, out, &error));
    NCL_CHECK_NO_ERROR (error);
    check_shape (out, s->n, s->c, s->h, s->w);
    got = ncl_test_download (out);
    ncl_test_compare (l, got, want, numel, ATOL, RTOL);
    check_untouched (out, numel, l);

    /* in place into b first, then into a (b is then the result, so re-upload) */
    NCL_CHECK (ncl_add_forward (ctx, ta, tb, act, 0.2f, tb, &error));
    NCL_CHECK_NO_ERROR (error);
    got_b = ncl_test_download (tb);
    ncl_test_compare (l_b, got_b, want, numel, ATOL, RTOL);

    NCL_CHECK (ncl_tensor_upload (tb, b, &error));
    NCL_CHECK (ncl_add_forward (ctx, ta, tb, act, 0.2f, ta, &error));
    NCL_CHECK_NO_ERROR (error);
    got_a = ncl_test_download (ta);
    ncl_test_compare (l_a, got_a, want, numel, ATOL, RTOL);
  }
}

static void
test_clamp (NclContext * ctx, const Shape * s, guint32 seed)
{
  static const gfloat bounds[][2] = { {-0.3f, 0.5f}, {0.0f, 1.0f},
  {0.7f, 0.2f}
  };
  gsize numel = shape_numel (s);
  g_autofree gfloat *x = g_new (gfloat, numel);
  g_autofree gfloat *want = g_new (gfloat, numel);

  ncl_test_fill_random (x, numel, seed, -1.0f, 1.5f);
  for (guint i = 0; i < G_N_ELEMENTS (bounds); i++) {
    gfloat lo = bounds[i][0], hi = bounds[i][1];
    g_autoptr (GError) error = NULL;
    g_autoptr (NclTensor) in = ncl_test_tensor (ctx, x, s->n, s->c, s->h,
        s->w);
    g_autoptr (NclTensor) out = sentinel_tensor (ctx, numel);
    g_autofree gfloat *got = NULL, *got_ip = NULL;
    g_autofree gchar *bl = g_strdup_printf ("[%g, %g]", lo, hi);
    g_autofree gchar *l = label ("clamp", s, bl);
    g_autofree gchar *l_ip = label ("clamp in-place", s, bl);

    ncl_clamp_forward_ref (x, numel, lo, hi, want);
    for (gsize j = 0; j < numel; j++) {
      /* the reference itself: inside the bounds, or hi when lo > hi */
      if (lo <= hi)
        NCL_CHECK (want[j] >= lo && want[j] <= hi);
      else
        NCL_CHECK (want[j] == hi);
    }

    NCL_CHECK (ncl_clamp_forward (ctx, in, lo, hi, out, &error));
    NCL_CHECK_NO_ERROR (error);
    check_shape (out, s->n, s->c, s->h, s->w);
    got = ncl_test_download (out);
    ncl_test_compare (l, got, want, numel, 0.0f, 0.0f);
    check_untouched (out, numel, l);

    NCL_CHECK (ncl_clamp_forward (ctx, in, lo, hi, in, &error));
    NCL_CHECK_NO_ERROR (error);
    got_ip = ncl_test_download (in);
    ncl_test_compare (l_ip, got_ip, want, numel, 0.0f, 0.0f);
  }
}

static void
test_concat (NclContext * ctx)
{
  /* n, ca, cb, h, w */
  static const gint cases[][5] = {
    {1, 1, 1, 1, 1}, {1, 1, 2, 1, 1}, {2, 3, 5, 3, 3}, {1, 17, 4, 9, 13},
    {3, 2, 1, 5, 7}, {2, 4, 4, 2, 2}, {1, 16, 3, 1, 1},
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    gint n = cases[i][0], ca = cases[i][1], cb = cases[i][2];
    gint h = cases[i][3], w = cases[i][4];
    gsize na = (gsize) n * ca * h * w, nb = (gsize) n * cb * h * w;
    g_autofree gfloat *a = g_new (gfloat, na);
    g_autofree gfloat *b = g_new (gfloat, nb);
    g_autofree gfloat *want = g_new (gfloat, na + nb);
    g_autofree gfloat *got = NULL;
    g_autoptr (GError) error = NULL;
    g_autoptr (NclTensor) ta = NULL, tb = NULL, out = NULL;
    g_autofree gchar *l = g_strdup_printf ("concat n%d %d+%d ch %dx%d", n,
        ca, cb, h, w);

    ncl_test_fill_random (a, na, 100 + i, -1.0f, 1.0f);
    ncl_test_fill_random (b, nb, 200 + i, -1.0f, 1.0f);
    ncl_concat_forward_ref (a, ca, b, cb, n, h * w, want);
    /* the reference itself: first value of the last sample's b block */
    NCL_CHECK (want[(gsize) (n - 1) * (ca + cb) * h * w + ca * h * w]
        == b[(gsize) (n - 1) * cb * h * w]);

    ta = ncl_test_tensor (ctx, a, n, ca, h, w);
    tb = ncl_test_tensor (ctx, b, n, cb, h, w);
    out = sentinel_tensor (ctx, na + nb);
    NCL_CHECK (ncl_concat_forward (ctx, ta, tb, out, &error));
    NCL_CHECK_NO_ERROR (error);
    check_shape (out, n, ca + cb, h, w);
    got = ncl_test_download (out);
    ncl_test_compare (l, got, want, na + nb, 0.0f, 0.0f);
    check_untouched (out, na + nb, l);
  }
}

static void
test_l2norm (NclContext * ctx, const Shape * s, guint32 seed)
{
  gsize numel = shape_numel (s), len = numel / s->n;
  g_autofree gfloat *x = g_new (gfloat, numel);
  g_autofree gfloat *want = g_new (gfloat, numel);
  g_autofree gfloat *got = NULL, *got_ip = NULL, *got_eps = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (NclTensor) in = NULL, out = NULL;
  g_autofree gchar *l = label ("l2norm", s, NULL);
  g_autofree gchar *l_ip = label ("l2norm in-place", s, NULL);
  g_autofree gchar *l_eps = label ("l2norm big eps", s, NULL);

  ncl_test_fill_random (x, numel, seed, -1.0f, 1.0f);
  ncl_l2norm_forward_ref (x, s->n, len, 1e-12f, want);
  /* the reference itself: unit norm per sample */
  for (gint i = 0; i < s->n; i++) {
    gdouble sum = 0.0;
    for (gsize j = 0; j < len; j++)
      sum += want[i * len + j] * want[i * len + j];
    NCL_CHECK (fabs (sum - 1.0) < 1e-4);
  }

  in = ncl_test_tensor (ctx, x, s->n, s->c, s->h, s->w);
  out = sentinel_tensor (ctx, numel);
  NCL_CHECK (ncl_l2norm_forward (ctx, in, 1e-12f, out, &error));
  NCL_CHECK_NO_ERROR (error);
  check_shape (out, s->n, s->c, s->h, s->w);
  got = ncl_test_download (out);
  ncl_test_compare (l, got, want, numel, ATOL, RTOL);
  check_untouched (out, numel, l);

  /* eps larger than every norm: out = x / eps */
  ncl_l2norm_forward_ref (x, s->n, len, 100.0f, want);
  NCL_CHECK (want[0] == x[0] / 100.0f);
  NCL_CHECK (ncl_l2norm_forward (ctx, in, 100.0f, out, &error));
  NCL_CHECK_NO_ERROR (error);
  got_eps = ncl_test_download (out);
  ncl_test_compare (l_eps, got_eps, want, numel, ATOL, RTOL);

  ncl_l2norm_forward_ref (x, s->n, len, 1e-12f, want);
  NCL_CHECK (ncl_l2norm_forward (ctx, in, 1e-12f, in, &error));
  NCL_CHECK_NO_ERROR (error);
  got_ip = ncl_test_download (in);
  ncl_test_compare (l_ip, got_ip, want, numel, ATOL, RTOL);
}

/* Mismatched shapes give NCL_ERROR_SHAPE naming both shapes. */
static void
test_shape_errors (NclContext * ctx)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (NclTensor) a = ncl_test_tensor (ctx, NULL, 1, 3, 5, 7);
  g_autoptr (NclTensor) b = ncl_test_tensor (ctx, NULL, 1, 3, 5, 8);
  g_autoptr (NclTensor) out = ncl_test_tensor (ctx, NULL, 1, 1, 1, 1);

  NCL_CHECK (!ncl_add_forward (ctx, a, b, NCL_ACT_NONE, 0.0f, out, &error));
  NCL_CHECK (g_error_matches (error, NCL_ERROR, NCL_ERROR_SHAPE));
  if (error) {
    NCL_CHECK (strstr (error->message, "(1, 3, 5, 7)") != NULL);
    NCL_CHECK (strstr (error->message, "(1, 3, 5, 8)") != NULL);
    g_print ("ok add error: %s\n", error->message);
  }
  g_clear_error (&error);

  NCL_CHECK (!ncl_concat_forward (ctx, a, b, out, &error));
  NCL_CHECK (g_error_matches (error, NCL_ERROR, NCL_ERROR_SHAPE));
  if (error) {
    NCL_CHECK (strstr (error->message, "(1, 3, 5, 7)") != NULL);
    NCL_CHECK (strstr (error->message, "(1, 3, 5, 8)") != NULL);
    g_print ("ok concat error: %s\n", error->message);
  }
  g_clear_error (&error);

  NCL_CHECK (!ncl_concat_forward (ctx, a, a, a, &error));
  NCL_CHECK (g_error_matches (error, NCL_ERROR, NCL_ERROR_SHAPE));
}

static void
test_strings (void)
{
  NclActivation act = NCL_ACT_NONE;
  NclPadMode mode = NCL_PAD_ZERO;
  static const struct
  {
    const gchar *name;
    NclPadMode mode;
  } modes[] = {
    {"zero", NCL_PAD_ZERO}, {"zeros", NCL_PAD_ZERO},
    {"constant", NCL_PAD_ZERO}, {"reflect", NCL_PAD_REFLECT},
    {"edge", NCL_PAD_EDGE}, {"replicate", NCL_PAD_EDGE},
  };

  for (guint i = 0; i < G_N_ELEMENTS (all_acts); i++) {
    const gchar *name = ncl_activation_to_string (all_acts[i]);

    NCL_CHECK (name != NULL);
    act = 99;
    NCL_CHECK (ncl_activation_from_string (name, &act));
    NCL_CHECK (act == all_acts[i]);
  }
  NCL_CHECK (g_strcmp0 (ncl_activation_to_string (NCL_ACT_LEAKY_RELU),
          "leaky_relu") == 0);
  NCL_CHECK (ncl_activation_from_string ("sigmoid", &act)
      && act == NCL_ACT_SIGMOID);
  act = NCL_ACT_TANH;
  NCL_CHECK (!ncl_activation_from_string ("gelu", &act));
  NCL_CHECK (!ncl_activation_from_string ("", &act));
  NCL_CHECK (!ncl_activation_from_string (NULL, &act));
  NCL_CHECK (act == NCL_ACT_TANH);
  NCL_CHECK (ncl_activation_to_string ((NclActivation) 42) == NULL);

  for (guint i = 0; i < G_N_ELEMENTS (modes); i++) {
    mode = 99;
    NCL_CHECK (ncl_pad_mode_from_string (modes[i].name, &mode));
    NCL_CHECK (mode == modes[i].mode);
  }
  mode = NCL_PAD_EDGE;
  NCL_CHECK (!ncl_pad_mode_from_string ("mirror", &mode));
  NCL_CHECK (!ncl_pad_mode_from_string (NULL, &mode));
  NCL_CHECK (mode == NCL_PAD_EDGE);
  g_print ("ok activation and pad mode names\n");
}

/* Values as TensorFlow computes them for padding="SAME". */
static void
test_tf_same (void)
{
  /* in, k, s, before, after */
  static const gint cases[][5] = {
    {5, 3, 2, 1, 1}, {6, 3, 2, 0, 1}, {7, 1, 2, 0, 0}, {4, 3, 1, 1, 1},
    {224, 7, 2, 2, 3}, {112, 3, 2, 0, 1}, {1, 3, 1, 1, 1}, {8, 4, 4, 0, 0},
    {5, 4, 1, 1, 2}, {3, 5, 3, 1, 1},
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    NclPadding pad = { -1, -1, -1, -1, NCL_PAD_EDGE };
    const gint *t = cases[i];

    /* the case on the height axis, and on the width axis with height 9 */
    ncl_padding_tf_same (t[0], 9, t[1], 3, t[2], 1, &pad);
    if (pad.top != t[3] || pad.bottom != t[4] || pad.left != 1
        || pad.right != 1 || pad.mode != NCL_PAD_ZERO) {
      g_printerr ("tf same h in %d k %d s %d: got %d/%d (w %d/%d), want "
          "%d/%d\n", t[0], t[1], t[2], pad.top, pad.bottom, pad.left,
          pad.right, t[3], t[4]);
      ncl_test_failures++;
    }
    ncl_padding_tf_same (9, t[0], 1, t[1], 1, t[2], &pad);
    if (pad.left != t[3] || pad.right != t[4] || pad.top != 0
        || pad.bottom != 0) {
      g_printerr ("tf same w in %d k %d s %d: got %d/%d, want %d/%d\n", t[0],
          t[1], t[2], pad.left, pad.right, t[3], t[4]);
      ncl_test_failures++;
    }
  }
  g_print ("ok tf same padding\n");
}

int
main (void)
{
  g_autoptr (NclContext) ctx = NULL;

  test_strings ();
  test_tf_same ();

  ctx = ncl_test_context ();
  for (guint i = 0; i < G_N_ELEMENTS (shapes); i++) {
    test_activation (ctx, &shapes[i], 10 + i);
    test_add (ctx, &shapes[i], 20 + i);
    test_clamp (ctx, &shapes[i], 30 + i);
    test_l2norm (ctx, &shapes[i], 40 + i);
  }
  test_concat (ctx);
  test_shape_errors (ctx);
  return ncl_test_finish ();
}
