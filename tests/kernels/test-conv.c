/* Conv2d on the device against ncl_conv2d_forward_ref, for every kernel
 * variant (forced through NEURALCL_CONV_VARIANT), on odd shapes, groups,
 * padding modes and activations; plus batch-norm folding. */
#include "common.h"

#include <math.h>
#include <string.h>

#define ATOL 1e-3f
#define RTOL 1e-4f

typedef struct
{
  const gchar *name;
  gint n, cin, cout, h, w, kh, kw, sh, sw, groups;
  gint top, bottom, left, right;
  NclPadMode mode;
  NclActivation act;
  gboolean bias;
} ConvCase;

#define Z NCL_PAD_ZERO
#define R NCL_PAD_REFLECT
#define E NCL_PAD_EDGE
#define A0 NCL_ACT_NONE
#define A1 NCL_ACT_RELU
#define A2 NCL_ACT_LEAKY_RELU
#define A3 NCL_ACT_SIGMOID
#define A4 NCL_ACT_TANH
#define A5 NCL_ACT_RELU6

static const ConvCase cases[] = {
  /* name            n cin cout  h    w kh,kw,sh,sw,g  t,b,l,r,mode,act,bias */
  {"1x1 image k1",  1,  3,  5, 1,  1,1,1,1,1, 1,0,0,0,0,Z,A0, TRUE},
  {"1x1 image pad", 1,  4, 17, 1,  1,3,3,1,1, 1,1,1,1,1,Z,A1, TRUE},
  {"1x1 reflect",   1,  2,  3, 1,  1,3,3,1,1, 1,1,1,1,1,R,A0, TRUE},
  {"3x5 k3",        1,  5,  7, 3,  5,3,3,1,1, 1,0,0,0,0,Z,A0, TRUE},
  {"3x5 edge",      2,  3, 33, 3,  5,3,3,1,1, 1,1,1,1,1,E,A2, TRUE},
  {"7x9 s2",        1,  5, 17, 7,  9,3,3,2,2, 1,0,0,0,0,Z,A1, TRUE},
  {"7x9 s2 pad",    2,  3,  7, 7,  9,3,3,2,2, 1,1,1,1,1,R,A3,FALSE},
  {"tf same s2",    1,  6, 16, 7,  9,3,3,2,2, 1,0,1,0,1,Z,A4, TRUE},
  {"s2 even",       1,  8, 32, 8, 40,3,3,2,2, 1,1,1,1,1,R,A1, TRUE},
  {"s1x2 mixed",    1,  4, 16,11, 37,3,3,1,2, 1,1,1,1,1,E,A0, TRUE},
  {"s2x1 mixed",    1,  4, 16,11, 37,3,5,2,1, 1,2,2,2,2,R,A0, TRUE},
  {"k5 wide",       2,  5, 17,13, 50,5,5,1,1, 1,2,2,2,2,Z,A2, TRUE},
  {"k1 cout1",      1,  7,  1, 9, 21,1,1,1,1, 1,0,0,0,0,Z,A3, TRUE},
  {"k1 s2",         1, 16, 32,10, 19,1,1,2,2, 1,0,0,0,0,Z,A0, TRUE},
  {"k9 3->32",      1,  3, 32,14, 35,9,9,1,1, 1,4,4,4,4,R,A1, TRUE},
  {"k9 32->3",      1, 32,  3,14, 70,9,9,1,1, 1,4,4,4,4,R,A0, TRUE},
  {"k9 5->7 odd",   2,  5,  7,10, 19,9,9,1,1, 1,4,4,4,4,E,A4, TRUE},
  {"asym pad",      1,  4, 16, 9, 20,3,3,1,1, 1,0,2,1,0,Z,A1, TRUE},
  {"asym reflect",  1,  4, 20, 9, 20,4,4,1,1, 1,1,2,2,1,R,A0, TRUE},
  {"rect kernel",   1,  6, 18,12, 33,3,7,1,1, 1,1,1,3,3,E,A0, TRUE},
  {"groups 2",      1,  6, 10,11, 23,3,3,1,1, 2,1,1,1,1,Z,A1, TRUE},
  {"groups 2 s2",   2,  8,  4,11, 23,3,3,2,2, 2,1,1,1,1,R,A0, TRUE},
  {"depthwise",     1, 12, 12,13, 29,3,3,1,1,12,1,1,1,1,Z,A2, TRUE},
  {"depthwise s2",  2,  5,  5,13, 29,3,3,2,2, 5,0,1,0,1,Z,A1, TRUE},
  {"depthwise x2",  1,  4,  8, 9, 17,5,5,1,1, 4,2,2,2,2,E,A0,FALSE},
  {"wide 128",      1, 19, 48, 5,130,3,3,1,1, 1,1,1,1,1,R,A1, TRUE},
  {"k7 s2",         1,  5, 12,17, 61,7,7,2,2, 1,3,3,3,3,R,A5, TRUE},
  {"narrow s2 k5",  2,  6,  2,19, 45,5,5,2,2, 1,2,2,2,2,E,A1, TRUE},
  {"narrow k3 c4",  1,  9,  4, 7, 70,3,3,1,1, 1,1,1,1,1,Z,A4, TRUE},
  {"wino n2 odd",   2, 16, 17,13, 75,3,3,1,1, 1,1,1,1,1,R,A2, TRUE},
  {"wino cout33",   1, 20, 33,10, 41,3,3,1,1, 1,0,0,0,0,Z,A3,FALSE},
  {"wino wide",     1,  8, 24, 6,100,3,3,1,1, 1,1,0,1,0,E,A5, TRUE},
  /* Johnson TransformerNet shapes at 24x20 (after the reflection pad) */
  {"johnson conv1", 1,  3, 32,28, 32,9,9,1,1, 1,0,0,0,0,Z,A0, TRUE},
  {"johnson conv2", 1, 32, 64,22, 26,3,3,2,2, 1,0,0,0,0,Z,A0, TRUE},
  {"johnson conv3", 1, 64,128,12, 14,3,3,2,2, 1,0,0,0,0,Z,A0, TRUE},
  {"johnson res",   1,128,128, 7,  8,3,3,1,1, 1,0,0,0,0,Z,A0, TRUE},
  {"johnson res pad", 1,128,128, 5,  6,3,3,1,1, 1,1,1,1,1,R,A1, TRUE},
  {"johnson deconv1", 1,128, 64,12, 14,3,3,1,1, 1,0,0,0,0,Z,A0, TRUE},
  {"johnson deconv2", 1, 64, 32,22, 26,3,3,1,1, 1,0,0,0,0,Z,A0, TRUE},
  {"johnson deconv3", 1, 32,  3,28, 32,9,9,1,1, 1,0,0,0,0,Z,A0, TRUE},
  /* depthwise (groups = cin = cout) as in the face networks: TF same
   * padding (stride 1: 1/1, stride 2: 0 before, 1 after), widths around
   * the 16-pixel vector, several rows per work-item */
  {"dw tf s1",      1, 16, 16,20, 37,3,3,1,1,16,1,1,1,1,Z,A2, TRUE},
  {"dw tf s2",      2,  8,  8,21, 50,3,3,2,2, 8,0,1,0,1,Z,A5, TRUE},
  {"dw s2 even",    1, 32, 32,26, 26,3,3,2,2,32,0,1,0,1,Z,A1, TRUE},
  {"dw 1x1 map",    1, 24, 24, 1,  1,3,3,1,1,24,1,1,1,1,Z,A0, TRUE},
  {"dw 2x3 s2",     2, 10, 10, 2,  3,3,3,2,2,10,0,1,0,1,Z,A0,FALSE},
  {"dw wide 70",    1,  3,  3, 9, 70,3,3,1,1, 3,1,1,1,1,Z,A3, TRUE},
  {"dw reflect k5", 1,  6,  6,11, 40,5,5,1,1, 6,2,2,2,2,R,A0, TRUE},
  {"dw edge k3x5",  1,  5,  5,10, 33,3,5,2,1, 5,1,0,2,1,E,A4, TRUE},
  {"dw k7 s2",      1,  4,  4,19, 47,7,7,2,2, 4,3,3,3,3,Z,A1, TRUE},
  {"dw valid",      1,  7,  7,12, 19,3,3,1,1, 7,0,0,0,0,Z,A0, TRUE},
  /* pointwise and small maps (face ResNet, SSD extras, detector heads) */
  {"pw 13x13",      1, 64, 40,13, 13,1,1,1,1, 1,0,0,0,0,Z,A2, TRUE},
  {"pw 13x13 b3",   3, 32, 17,13, 13,1,1,1,1, 1,0,0,0,0,Z,A0, TRUE},
  {"pw 26x26",      1, 16, 24,26, 26,1,1,1,1, 1,0,0,0,0,Z,A1, TRUE},
  {"pw 1x1",        2, 48, 20, 1,  1,1,1,1,1, 1,0,0,0,0,Z,A0, TRUE},
  {"pw 3x5 s2",     1, 20, 12, 3,  5,1,1,2,2, 1,0,0,0,0,Z,A0, TRUE},
  {"resnet 8x8",    1, 64, 64, 8,  8,3,3,1,1, 1,1,1,1,1,Z,A1, TRUE},
  {"resnet 4x4",    2, 64, 48, 4,  4,3,3,1,1, 1,1,1,1,1,Z,A0, TRUE},
  {"resnet 17 s2",  1, 32, 40,17, 17,3,3,2,2, 1,0,0,0,0,Z,A1, TRUE},
  {"resnet 3 s2",   1, 32, 24, 3,  3,3,3,2,2, 1,0,0,0,0,Z,A0, TRUE},
  {"ssd extra 3x3", 2, 24, 16, 5,  5,3,3,2,2, 1,0,1,0,1,Z,A5, TRUE},
  {"small reflect", 1,  8, 16, 6,  7,3,3,1,1, 1,1,1,1,1,R,A0, TRUE},
  /* channel-vector: pixel groups running across rows and images, a last
   * partial group, cout not a multiple of its 32-channel tile, 1x1 maps */
  {"cv 35x35 b2",   2, 32, 32,35, 35,3,3,1,1, 1,1,1,1,1,Z,A1, TRUE},
  {"cv 7x7 s2",     3,  3, 32,41, 41,7,7,2,2, 1,0,0,0,0,Z,A1, TRUE},
  {"cv cout 40",    2, 24, 40, 9,  9,3,3,1,1, 1,1,1,1,1,Z,A2, TRUE},
  {"cv cout 70",    1, 16, 70, 5,  6,3,3,1,1, 1,1,1,1,1,E,A0,FALSE},
  {"cv 1x1 out",    3, 64, 64, 3,  3,3,3,2,2, 1,0,0,0,0,Z,A0, TRUE},
  {"cv 4x4 b1",     1, 96, 64, 4,  4,3,3,1,1, 1,1,1,1,1,Z,A0, TRUE},
  {"cv 13 odd",     1, 33, 48,13, 11,3,3,1,1, 1,1,1,1,1,R,A3, TRUE},
  /* channel-vector blocks: edge blocks shifted back over their
   * neighbours (23 columns), blocks of two rows (5x6), a 2-row stride */
  {"blk 23x23",     1, 16, 32,23, 23,3,3,1,1, 1,1,1,1,1,Z,A1, TRUE},
  {"blk 5x6 b2",    2, 40, 36, 5,  6,3,3,1,1, 1,1,1,1,1,Z,A0, TRUE},
  {"blk s2 5x5",    1,  8, 32,29, 21,5,5,2,2, 1,2,2,2,2,E,A2, TRUE},
  /* one image, tiny map: the whole map in one 16-channel block */
  {"blk 3x3 b1",    1, 48, 40, 3,  3,3,3,1,1, 1,1,1,1,1,Z,A1, TRUE},
};

/* every variant ncl_conv_new can pick; each must be exercised */
static const gchar *const variants[] = {
  "generic", "direct", "direct_narrow", "winograd4", "depthwise", "gemm",
  "chvec", "chblk",
};

#define N_VARIANTS G_N_ELEMENTS (variants)

static void
case_params (const ConvCase * c, NclConvParams * p)
{
  memset (p, 0, sizeof (*p));
  p->cin = c->cin;
  p->cout = c->cout;
  p->kh = c->kh;
  p->kw = c->kw;
  p->stride_h = c->sh;
  p->stride_w = c->sw;
  p->dilation = 1;
  p->groups = c->groups;
  p->pad.top = c->top;
  p->pad.bottom = c->bottom;
  p->pad.left = c->left;
  p->pad.right = c->right;
  p->pad.mode = c->mode;
  p->act = c->act;
  p->alpha = 0.1f;
}

/* Runs @p on the device over @in (n, cin, h, w) and compares with the
 * reference; returns the variant name used (static string). */
static const gchar *
check_conv (NclContext * ctx, const gchar * label, const NclConvParams * p,
    const gfloat * in, gint n, gint h, gint w)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (NclConv) conv = NULL;
  g_autoptr (NclTensor) tin = NULL;
  g_autoptr (NclTensor) tout = NULL;
  g_autofree gfloat *want = NULL;
  g_autofree gfloat *got = NULL;
  g_autofree gchar *full = NULL;
  const gchar *variant;
  gint oh, ow;

  ncl_conv2d_out_size (p, h, w, &oh, &ow);
  want = g_new (gfloat, (gsize) n * p->cout * oh * ow);
  ncl_conv2d_forward_ref (p, in, n, h, w, want);

  conv = ncl_conv_new (ctx, p, &error);
  NCL_CHECK_NO_ERROR (error);
  if (conv == NULL)
    return NULL;

  tin = ncl_test_tensor (ctx, in, n, p->cin, h, w);
  /* a wrong initial shape: forward must reshape it */
  tout = ncl_test_tensor (ctx, NULL, 1, 1, 2, 3);
  NCL_CHECK (ncl_conv_forward (conv, tin, tout, &error));
  NCL_CHECK_NO_ERROR (error);
  /* after the forward: small maps may switch to the GEMM at run time */
  variant = ncl_conv_get_variant (conv);
  NCL_CHECK (tout->n == n && tout->c == p->cout && tout->h == oh
      && tout->w == ow);
  if (tout->n != n || tout->c != p->cout || tout->h != oh || tout->w != ow)
    return variant;

  got = ncl_test_download (tout);
  full = g_strdup_printf ("%s [%s]", label, variant);
  ncl_test_compare (full, got, want, (gsize) n * p->cout * oh * ow, ATOL,
      RTOL);
  return variant;
}

/* Every case with every variant forced (a variant that does not apply falls
 * back to the automatic choice, which is then not tested twice). */
static void
test_cases (NclContext * ctx)
{
  guint used[N_VARIANTS] = { 0 };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++) {
    const ConvCase *c = &cases[i];
    NclConvParams p;
    gint cin_g = c->cin / c->groups;
    gsize nin = (gsize) c->n * c->cin * c->h * c->w;
    gsize nw = (gsize) c->cout * cin_g * c->kh * c->kw;
    g_autofree gfloat *in = g_new (gfloat, nin);
    g_autofree gfloat *weight = g_new (gfloat, nw);
    g_autofree gfloat *bias = g_new (gfloat, c->cout);
    gfloat scale = 1.0f / sqrtf ((gfloat) cin_g * c->kh * c->kw);

    /* outputs of a few units; relu6 gets larger ones so that it clamps */
    if (c->act == NCL_ACT_RELU6)
      scale *= 8.0f;

    case_params (c, &p);
    ncl_test_fill_random (in, nin, 100 + i, -1.0f, 1.0f);
    ncl_test_fill_random (weight, nw, 200 + i, -2.0f * scale, 2.0f * scale);
    ncl_test_fill_random (bias, c->cout, 300 + i, -0.5f, 0.5f);
    p.weight = weight;
    p.bias = c->bias ? bias : NULL;

    g_unsetenv ("NEURALCL_CONV_VARIANT");
    check_conv (ctx, c->name, &p, in, c->n, c->h, c->w);

    for (gsize v = 0; v < N_VARIANTS; v++) {
      const gchar *got;

      g_setenv ("NEURALCL_CONV_VARIANT", variants[v], TRUE);
      got = check_conv (ctx, c->name, &p, in, c->n, c->h, c->w);
      if (got != NULL && g_str_equal (got, variants[v]))
        used[v]++;
    }
  }
  g_unsetenv ("NEURALCL_CONV_VARIANT");

  for (gsize v = 0; v < N_VARIANTS; v++) {
    g_print ("variant %s: %u cases\n", variants[v], used[v]);
    NCL_CHECK (used[v] >= 5);
  }
}

/* ncl_conv_forward_residual: act (conv (x) + res) against the reference
 * conv and add, on the channel-vector kernel (one kernel) and on variants
 * that add afterwards; plus its refusals. */
static void
test_residual (NclContext * ctx)
{
  static const ConvCase rc[] = {
    {"res 17x17", 2, 32, 32, 17, 17, 3, 3, 1, 1, 1, 1, 1, 1, 1, Z, A0, TRUE},
    {"res 8x8 c40", 1, 16, 40, 8, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, Z, A0, TRUE},
    {"res 35 wide", 1, 16, 32, 5, 35, 3, 3, 1, 1, 1, 1, 1, 1, 1, R, A0, TRUE},
    {"res 1x1", 3, 24, 64, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, Z, A0, FALSE},
    {"res 4x4 b1", 1, 32, 40, 4, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, Z, A0, TRUE},
  };
  static const gchar *const forced[] = { "chvec", "chblk", "winograd4",
    "gemm", "direct", "generic"
  };
  static const NclActivation acts[] = { NCL_ACT_RELU, NCL_ACT_NONE,
    NCL_ACT_LEAKY_RELU
  };

  for (gsize i = 0; i < G_N_ELEMENTS (rc); i++) {
    const ConvCase *c = &rc[i];
    NclConvParams p;
    gint oh, ow;
    gsize nin = (gsize) c->n * c->cin * c->h * c->w;
    gsize nw = (gsize) c->cout * c->cin * c->kh * c->kw;
    gsize nout;
    g_autofree gfloat *in = g_new (gfloat, nin);
    g_autofree gfloat *weight = g_new (gfloat, nw);
    g_autofree gfloat *bias = g_new (gfloat, c->cout);
    g_autofree gfloat *conv_ref = NULL;
    g_autofree gfloat *res = NULL;
    g_autofree gfloat *want = NULL;

    case_params (c, &p);
    ncl_test_fill_random (in, nin, 500 + i, -1.0f, 1.0f);
    ncl_test_fill_random (weight, nw, 600 + i, -0.2f, 0.2f);
    ncl_test_fill_random (bias, c->cout, 700 + i, -0.5f, 0.5f);
    p.weight = weight;
    p.bias = c->bias ? bias : NULL;
    ncl_conv2d_out_size (&p, c->h, c->w, &oh, &ow);
    nout = (gsize) c->n * c->cout * oh * ow;
    conv_ref = g_new (gfloat, nout);
    ncl_conv2d_forward_ref (&p, in, c->n, c->h, c->w, conv_ref);
    res = g_new (gfloat, nout);
    ncl_test_fill_random (res, nout, 800 + i, -1.5f, 1.5f);
    want = g_new (gfloat, nout);

    for (gsize v = 0; v < G_N_ELEMENTS (forced); v++) {
      NclActivation act = acts[(i + v) % G_N_ELEMENTS (acts)];
      g_autoptr (GError) error = NULL;
      g_autoptr (NclConv) conv = NULL;
      g_autoptr (NclTensor) tin = ncl_test_tensor (ctx, in, c->n, c->cin,
          c->h, c->w);
      g_autoptr (NclTensor) tres = ncl_test_tensor (ctx, res, c->n, c->cout,
          oh, ow);
      g_autoptr (NclTensor) tout = ncl_test_tensor (ctx, NULL, 1, 1, 1, 1);
      g_autofree gfloat *got = NULL;
      g_autofree gchar *label = NULL;

      ncl_add_forward_ref (conv_ref, res, nout, act, 0.1f, want);
      g_setenv ("NEURALCL_CONV_VARIANT", forced[v], TRUE);
      conv = ncl_conv_new (ctx, &p, &error);
      NCL_CHECK_NO_ERROR (error);
      if (conv == NULL)
        continue;
      NCL_CHECK (ncl_conv_forward_residual (conv, tin, tres, act, 0.1f, tout,
              &error));
      NCL_CHECK_NO_ERROR (error);
      got = ncl_test_download (tout);
      label = g_strdup_printf ("%s residual [%s]", c->name,
          ncl_conv_get_variant (conv));
      ncl_test_compare (label, got, want, nout, ATOL, RTOL);

      /* refused: the residual is the output, or a wrong shape */
      NCL_CHECK (!ncl_conv_forward_residual (conv, tin, tout, act, 0.1f,
              tout, &error));
      NCL_CHECK (g_error_matches (error, NCL_ERROR, NCL_ERROR_FAILED));
      g_clear_error (&error);
      NCL_CHECK (ncl_tensor_reshape (tres, c->n, c->cout + 1, oh, ow,
              &error));
      NCL_CHECK (!ncl_conv_forward_residual (conv, tin, tres, act, 0.1f,
              tout, &error));
      NCL_CHECK (g_error_matches (error, NCL_ERROR, NCL_ERROR_SHAPE));
    }
  }
  g_unsetenv ("NEURALCL_CONV_VARIANT");
}

/* ncl_conv_forward_padded_out: the output (plus a residual) written into
 * the interior of a larger tensor whose border keeps its values; refused
 * by a variant that cannot. */
static void
test_padded_out (NclContext * ctx)
{
  static const ConvCase pc[] = {
    {"padded out 17", 1, 32, 32, 17, 17, 3, 3, 1, 1, 1, 1, 1, 1, 1, Z, A1, TRUE},
    {"padded out res", 2, 16, 40, 9, 11, 3, 3, 1, 1, 1, 1, 1, 1, 1, Z, A0, TRUE},
    {"padded out 4x4", 1, 64, 48, 4, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, Z, A1, TRUE},
    {"padded out s2", 2, 8, 32, 23, 21, 5, 5, 2, 2, 1, 2, 2, 2, 2, Z, A2, FALSE},
  };
  static const NclPadding opads[] = {
    {1, 1, 1, 1, NCL_PAD_ZERO}, {2, 1, 0, 3, NCL_PAD_ZERO},
    {1, 1, 1, 1, NCL_PAD_ZERO}, {0, 2, 1, 0, NCL_PAD_ZERO},
  };
  const gfloat border = 7.0f;

  for (gsize i = 0; i < G_N_ELEMENTS (pc); i++) {
    const ConvCase *c = &pc[i];
    const NclPadding *op = &opads[i];
    gboolean with_res = i == 1;
    NclConvParams p;
    gint oh, ow, ph, pw;
    gsize nin = (gsize) c->n * c->cin * c->h * c->w, nout, npad;
    g_autofree gfloat *in = g_new (gfloat, nin);
    g_autofree gfloat *weight =
        g_new (gfloat, (gsize) c->cout * c->cin * c->kh * c->kw);
    g_autofree gfloat *bias = g_new (gfloat, c->cout);
    g_autofree gfloat *conv_ref = NULL, *res = NULL, *want = NULL;
    g_autofree gfloat *got = NULL;
    g_autoptr (NclConv) conv = NULL;
    g_autoptr (NclTensor) tin = NULL, tres = NULL, tout = NULL;
    g_autoptr (NclTensor) tplain = NULL;
    g_autoptr (GError) error = NULL;
    gboolean interior_ok = TRUE, border_ok = TRUE;
    gfloat max_err = 0.0f;

    case_params (c, &p);
    if (with_res)
      p.act = NCL_ACT_NONE;
    ncl_test_fill_random (in, nin, 900 + i, -1.0f, 1.0f);
    ncl_test_fill_random (weight, (gsize) c->cout * c->cin * c->kh * c->kw,
        910 + i, -0.2f, 0.2f);
    ncl_test_fill_random (bias, c->cout, 920 + i, -0.5f, 0.5f);
    p.weight = weight;
    p.bias = bias;
    ncl_conv2d_out_size (&p, c->h, c->w, &oh, &ow);
    nout = (gsize) c->n * c->cout * oh * ow;
    ph = oh + op->top + op->bottom;
    pw = ow + op->left + op->right;
    npad = (gsize) c->n * c->cout * ph * pw;
    conv_ref = g_new (gfloat, nout);
    ncl_conv2d_forward_ref (&p, in, c->n, c->h, c->w, conv_ref);
    if (with_res) {
      res = g_new (gfloat, nout);
      ncl_test_fill_random (res, nout, 930 + i, -1.5f, 1.5f);
      ncl_add_forward_ref (conv_ref, res, nout, NCL_ACT_LEAKY_RELU, 0.1f,
          conv_ref);
    }
    want = g_new (gfloat, npad);
    for (gsize k = 0; k < npad; k++)
      want[k] = border;

    g_setenv ("NEURALCL_CONV_VARIANT", "chblk", TRUE);
    conv = ncl_conv_new (ctx, &p, &error);
    g_unsetenv ("NEURALCL_CONV_VARIANT");
    NCL_CHECK_NO_ERROR (error);
    if (conv == NULL)
      continue;
    NCL_CHECK (ncl_conv_can_pad_output (conv, c->n, c->h, c->w));
    tin = ncl_test_tensor (ctx, in, c->n, c->cin, c->h, c->w);
    tout = ncl_test_tensor (ctx, want, c->n, c->cout, ph, pw);
    /* the residual case also writes the plain output */
    if (with_res) {
      tres = ncl_test_tensor (ctx, res, c->n, c->cout, oh, ow);
      tplain = ncl_test_tensor (ctx, NULL, 1, 1, 1, 1);
    }
    NCL_CHECK (ncl_conv_forward_padded_out (conv, tin, tres,
            NCL_ACT_LEAKY_RELU, 0.1f, op, tout, tplain, &error));
    NCL_CHECK_NO_ERROR (error);
    if (tplain != NULL) {
      g_autofree gfloat *plain = ncl_test_download (tplain);
      g_autofree gchar *label = g_strdup_printf ("%s, plain output",
          c->name);

      NCL_CHECK (tplain->h == oh && tplain->w == ow);
      ncl_test_compare (label, plain, conv_ref, nout, ATOL, RTOL);
    }
    NCL_CHECK (tout->n == c->n && tout->c == c->cout && tout->h == ph
        && tout->w == pw);
    got = ncl_test_download (tout);
    for (gint b = 0; b < c->n; b++) {
      for (gint co = 0; co < c->cout; co++) {
        for (gint y = 0; y < ph; y++) {
          for (gint x = 0; x < pw; x++) {
            gfloat v = got[(((gsize) b * c->cout + co) * ph + y) * pw + x];
            gint iy = y - op->top, ix = x - op->left;

            if (iy < 0 || iy >= oh || ix < 0 || ix >= ow) {
              border_ok &= v == border;
            } else {
              gfloat r = conv_ref[(((gsize) b * c->cout + co) * oh + iy)
                  * ow + ix];
              gfloat e = fabsf (v - r);

              max_err = MAX (max_err, e);
              interior_ok &= e <= ATOL + RTOL * fabsf (r);
            }
          }
        }
      }
    }
    g_print ("%s %s: interior max abs error %.3g, border %s\n",
        interior_ok && border_ok ? "ok" : "FAIL", c->name, max_err,
        border_ok ? "untouched" : "WRITTEN");
    NCL_CHECK (interior_ok && border_ok);
  }

  /* a variant that cannot: refused with UNSUPPORTED */
  {
    const ConvCase *c = &pc[0];
    NclConvParams p;
    g_autofree gfloat *weight =
        g_new0 (gfloat, (gsize) c->cout * c->cin * c->kh * c->kw);
    g_autoptr (NclConv) conv = NULL;
    g_autoptr (NclTensor) tin = NULL, tout = NULL;
    g_autoptr (GError) error = NULL;

    case_params (c, &p);
    p.weight = weight;
    g_setenv ("NEURALCL_CONV_VARIANT", "direct", TRUE);
    conv = ncl_conv_new (ctx, &p, &error);
    g_unsetenv ("NEURALCL_CONV_VARIANT");
    NCL_CHECK_NO_ERROR (error);
    if (conv != NULL) {
      tin = ncl_test_tensor (ctx, NULL, 1, c->cin, c->h, c->w);
      tout = ncl_test_tensor (ctx, NULL, 1, 1, 1, 1);
      NCL_CHECK (!ncl_conv_can_pad_output (conv, 1, c->h, c->w));
      NCL_CHECK (!ncl_conv_forward_padded_out (conv, tin, NULL,
              NCL_ACT_NONE, 0.0f, &opads[0], tout, NULL, &error));
      NCL_CHECK (g_error_matches (error, NCL_ERROR, NCL_ERROR_UNSUPPORTED));
    }
  }
}

/* One conv object run on two input sizes and batch counts in turn: the
 * padding scratch and the output must follow the input. */
static void
test_reuse (NclContext * ctx)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (NclConv) conv = NULL;
  g_autoptr (NclTensor) tout = NULL;
  NclConvParams p;
  static const ConvCase c =
      { "reuse", 1, 8, 24, 0, 0, 3, 3, 1, 1, 1, 1, 1, 1, 1, R, A1, TRUE };
  static const gint sizes[][3] = { {1, 17, 35}, {2, 6, 9}, {1, 17, 35} };
  gfloat weight[24 * 8 * 9], bias[24];

  case_params (&c, &p);
  ncl_test_fill_random (weight, G_N_ELEMENTS (weight), 7, -0.2f, 0.2f);
  ncl_test_fill_random (bias, 24, 8, -0.5f, 0.5f);
  p.weight = weight;
  p.bias = bias;
  conv = ncl_conv_new (ctx, &p, &error);
  NCL_CHECK_NO_ERROR (error);
  tout = ncl_test_tensor (ctx, NULL, 1, 1, 1, 1);

  for (gsize i = 0; conv != NULL && i < G_N_ELEMENTS (sizes); i++) {
    gint n = sizes[i][0], h = sizes[i][1], w = sizes[i][2], oh, ow;
    gsize nin = (gsize) n * 8 * h * w;
    g_autofree gfloat *in = g_new (gfloat, nin);
    g_autofree gfloat *want = NULL;
    g_autofree gfloat *got = NULL;
    g_autoptr (NclTensor) tin = NULL;
    g_autofree gchar *label = g_strdup_printf ("reuse %dx%dx%d", n, h, w);

    ncl_test_fill_random (in, nin, 40 + i, -1.0f, 1.0f);
    ncl_conv2d_out_size (&p, h, w, &oh, &ow);
    want = g_new (gfloat, (gsize) n * 24 * oh * ow);
    ncl_conv2d_forward_ref (&p, in, n, h, w, want);
    tin = ncl_test_tensor (ctx, in, n, 8, h, w);
    NCL_CHECK (ncl_conv_forward (conv, tin, tout, &error));
    NCL_CHECK_NO_ERROR (error);
    got = ncl_test_download (tout);
    ncl_test_compare (label, got, want, (gsize) n * 24 * oh * ow, ATOL, RTOL);
  }
}

/* The reference itself on a hand-computed case: 1 channel 3x3 input,
 * 2x2 kernel of ones, reflect padding on the right only. */
static void
test_ref_by_hand (void)
{
  const gfloat in[9] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
  const gfloat weight[4] = { 1, 1, 1, 1 };
  const gfloat bias[1] = { -10 };
  /* padded rows: 1 2 3 2 / 4 5 6 5 / 7 8 9 8 */
  const gfloat want[6] = { 2, 6, 6, 14, 18, 18 };
  gfloat out[6];
  NclConvParams p = { 0 };
  gint oh, ow;

  p.cin = p.cout = 1;
  p.kh = p.kw = 2;
  p.stride_h = p.stride_w = 1;
  p.groups = 1;
  p.pad.right = 1;
  p.pad.mode = NCL_PAD_REFLECT;
  p.act = NCL_ACT_NONE;
  p.weight = weight;
  p.bias = bias;
  ncl_conv2d_out_size (&p, 3, 3, &oh, &ow);
  NCL_CHECK (oh == 2 && ow == 3);
  ncl_conv2d_forward_ref (&p, in, 1, 3, 3, out);
  ncl_test_compare ("reference by hand", out, want, 6, 0.0f, 0.0f);

  p.act = NCL_ACT_RELU;
  p.stride_w = 2;
  p.pad.mode = NCL_PAD_EDGE;
  /* edge-padded rows: 1 2 3 3 / ..., stride 2: columns 0 and 2 */
  ncl_conv2d_out_size (&p, 3, 3, &oh, &ow);
  NCL_CHECK (oh == 2 && ow == 2);
  ncl_conv2d_forward_ref (&p, in, 1, 3, 3, out);
  {
    const gfloat want2[4] = { 2, 8, 14, 20 };

    ncl_test_compare ("reference by hand, edge s2", out, want2, 4, 0.0f,
        0.0f);
  }
}

/* conv followed by an inference batch norm, computed by hand, against the
 * folded conv (reference and device). */
static void
test_fold_batchnorm (NclContext * ctx)
{
  enum
  { CIN = 5, COUT = 6, H = 9, W = 11, K = 3 };
  const gsize per_out = CIN * K * K;
  const gfloat eps = 1e-3f;
  gfloat weight[COUT * CIN * K * K], bias[COUT];
  gfloat gamma[COUT], beta[COUT], mean[COUT], var[COUT];
  gfloat in[CIN * H * W];
  gfloat plain[COUT * H * W], want[COUT * H * W], folded[COUT * H * W];
  NclConvParams p;
  static const ConvCase c =
      { "bn", 1, CIN, COUT, H, W, K, K, 1, 1, 1, 1, 1, 1, 1, Z, A0, FALSE };

  case_params (&c, &p);
  ncl_test_fill_random (weight, G_N_ELEMENTS (weight), 51, -0.3f, 0.3f);
  ncl_test_fill_random (in, G_N_ELEMENTS (in), 52, -1.0f, 1.0f);
  ncl_test_fill_random (gamma, COUT, 53, 0.5f, 1.5f);
  ncl_test_fill_random (beta, COUT, 54, -1.0f, 1.0f);
  ncl_test_fill_random (mean, COUT, 55, -0.5f, 0.5f);
  ncl_test_fill_random (var, COUT, 56, 0.1f, 2.0f);

  /* conv without bias, then BN by hand */
  p.weight = weight;
  p.bias = NULL;
  ncl_conv2d_forward_ref (&p, in, 1, H, W, plain);
  for (gint co = 0; co < COUT; co++) {
    for (gint i = 0; i < H * W; i++) {
      gfloat x = plain[co * H * W + i];

      want[co * H * W + i] = (x - mean[co]) / sqrtf (var[co] + eps)
          * gamma[co] + beta[co];
    }
  }

  /* fold into a conv that had no bias (bias starts at 0) */
  memset (bias, 0, sizeof (bias));
  ncl_conv2d_fold_batchnorm (COUT, per_out, weight, bias, gamma, beta, mean,
      var, eps);
  p.bias = bias;
  ncl_conv2d_forward_ref (&p, in, 1, H, W, folded);
  ncl_test_compare ("fold batchnorm (reference)", folded, want,
      G_N_ELEMENTS (want), ATOL, RTOL);
  check_conv (ctx, "fold batchnorm", &p, in, 1, H, W);

  /* a conv with a bias: the bias goes through the norm as well */
  {
    gfloat w2[COUT * CIN * K * K], b2[COUT], b2_orig[COUT];

    ncl_test_fill_random (w2, G_N_ELEMENTS (w2), 57, -0.3f, 0.3f);
    ncl_test_fill_random (b2, COUT, 58, -1.0f, 1.0f);
    memcpy (b2_orig, b2, sizeof (b2));
    p.weight = w2;
    p.bias = b2_orig;
    ncl_conv2d_forward_ref (&p, in, 1, H, W, plain);
    for (gint co = 0; co < COUT; co++) {
      for (gint i = 0; i < H * W; i++) {
        gfloat x = plain[co * H * W + i];

        want[co * H * W + i] = (x - mean[co]) / sqrtf (var[co] + eps)
            * gamma[co] + beta[co];
      }
    }
    ncl_conv2d_fold_batchnorm (COUT, per_out, w2, b2, gamma, beta, mean, var,
        eps);
    p.bias = b2;
    ncl_conv2d_forward_ref (&p, in, 1, H, W, folded);
    ncl_test_compare ("fold batchnorm with bias", folded, want,
        G_N_ELEMENTS (want), ATOL, RTOL);
  }
}

/* Bad parameters and shapes give errors, not crashes. */
static void
test_errors (NclContext * ctx)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (NclConv) conv = NULL;
  g_autoptr (NclTensor) tin = NULL;
  g_autoptr (NclTensor) tout = NULL;
  gfloat weight[4 * 3 * 9] = { 0 };
  NclConvParams p;
  static const ConvCase c =
      { "err", 1, 6, 4, 0, 0, 3, 3, 1, 1, 4, 0, 0, 0, 0, Z, A0, FALSE };

  case_params (&c, &p);
  p.weight = weight;
  /* 6 input channels do not split into 4 groups */
  NCL_CHECK (ncl_conv_new (ctx, &p, &error) == NULL);
  NCL_CHECK (g_error_matches (error, NCL_ERROR, NCL_ERROR_SHAPE));
  g_clear_error (&error);

  p.groups = 1;
  p.cin = 3;
  conv = ncl_conv_new (ctx, &p, &error);
  NCL_CHECK_NO_ERROR (error);
  if (conv == NULL)
    return;
  /* wrong channel count */
  tin = ncl_test_tensor (ctx, NULL, 1, 5, 8, 8);
  tout = ncl_test_tensor (ctx, NULL, 1, 1, 1, 1);
  NCL_CHECK (!ncl_conv_forward (conv, tin, tout, &error));
  NCL_CHECK (g_error_matches (error, NCL_ERROR, NCL_ERROR_SHAPE));
  g_clear_error (&error);
  /* smaller than the kernel */
  g_clear_pointer (&tin, ncl_tensor_free);
  tin = ncl_test_tensor (ctx, NULL, 1, 3, 2, 8);
  NCL_CHECK (!ncl_conv_forward (conv, tin, tout, &error));
  NCL_CHECK (g_error_matches (error, NCL_ERROR, NCL_ERROR_SHAPE));
}

int
main (void)
{
  g_autoptr (NclContext) ctx = ncl_test_context ();

  test_ref_by_hand ();
  test_cases (ctx);
  test_reuse (ctx);
  test_residual (ctx);
  test_padded_out (ctx);
  test_fold_batchnorm (ctx);
  test_errors (ctx);
  return ncl_test_finish ();
}
