/* Instance norm and pad/upsample/crop kernels against their C references
 * on random data and odd shapes. */
#include "common.h"

static void
check_instnorm (NclContext * ctx, gint n, gint c, gint h, gint w,
    gboolean affine, gboolean residual, NclActivation act, gboolean in_place)
{
  gsize numel = (gsize) n * c * h * w;
  g_autofree gfloat *x = g_new (gfloat, numel);
  g_autofree gfloat *r = g_new (gfloat, numel);
  g_autofree gfloat *want = g_new (gfloat, numel);
  g_autofree gfloat *got = NULL;
  g_autofree gfloat *gamma = g_new (gfloat, c);
  g_autofree gfloat *beta = g_new (gfloat, c);
  g_autoptr (NclTensor) tin = NULL;
  g_autoptr (NclTensor) tres = NULL;
  g_autoptr (NclTensor) tout = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *label = NULL;
  cl_mem g = NULL, b = NULL;

  ncl_test_fill_random (x, numel, n * 7 + c * 3 + h + w, -50.0f, 80.0f);
  ncl_test_fill_random (r, numel, 99, -1.0f, 1.0f);
  ncl_test_fill_random (gamma, c, 5, 0.5f, 2.0f);
  ncl_test_fill_random (beta, c, 6, -1.0f, 1.0f);
  ncl_instnorm_forward_ref (x, n, c, h * w, affine ? gamma : NULL,
      affine ? beta : NULL, 1e-5f, residual ? r : NULL, act, 0.1f, want);

  tin = ncl_test_tensor (ctx, x, n, c, h, w);
  tres = ncl_test_tensor (ctx, r, n, c, h, w);
  tout = ncl_test_tensor (ctx, NULL, 1, 1, 1, 1);
  if (affine) {
    g = ncl_buffer_from_host (ctx, gamma, c, &error);
    b = ncl_buffer_from_host (ctx, beta, c, &error);
  }
  NCL_CHECK (ncl_instnorm_forward (ctx, tin, g, b, 1e-5f,
          residual ? tres : NULL, act, 0.1f, in_place ? tin : tout, &error));
  NCL_CHECK_NO_ERROR (error);
  got = ncl_test_download (in_place ? tin : tout);
  label = g_strdup_printf ("instnorm (%d,%d,%d,%d) affine=%d res=%d act=%s%s",
      n, c, h, w, affine, residual, ncl_activation_to_string (act),
      in_place ? " in-place" : "");
  ncl_test_compare (label, got, want, numel, 2e-4f, 2e-4f);
  if (g) {
    clReleaseMemObject (g);
    clReleaseMemObject (b);
  }
}

static void
check_pad (NclContext * ctx, gint n, gint c, gint h, gint w, gint scale,
    gint top, gint bottom, gint left, gint right, NclPadMode mode)
{
  NclPadding pad = { top, bottom, left, right, mode };
  gsize numel = (gsize) n * c * h * w;
  gint oh = h * scale + top + bottom, ow = w * scale + left + right;
  gsize onumel = (gsize) n * c * oh * ow;
  g_autofree gfloat *x = g_new (gfloat, numel);
  g_autofree gfloat *want = g_new (gfloat, onumel);
  g_autofree gfloat *got = NULL;
  g_autoptr (NclTensor) tin = NULL;
  g_autoptr (NclTensor) tout = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *label = NULL;

  ncl_test_fill_random (x, numel, h * 31 + w, -3.0f, 3.0f);
  ncl_pad_forward_ref (x, n, c, h, w, scale, &pad, want);
  tin = ncl_test_tensor (ctx, x, n, c, h, w);
  tout = ncl_test_tensor (ctx, NULL, 1, 1, 1, 1);
  NCL_CHECK (ncl_pad_forward (ctx, tin, scale, &pad, tout, &error));
  NCL_CHECK_NO_ERROR (error);
  NCL_CHECK (tout->h == oh && tout->w == ow && tout->c == c && tout->n == n);
  got = ncl_test_download (tout);
  label = g_strdup_printf ("pad (%d,%d,%d,%d) x%d pads %d/%d/%d/%d mode %d",
      n, c, h, w, scale, top, bottom, left, right, mode);
  ncl_test_compare (label, got, want, onumel, 0.0f, 0.0f);
}

static void
check_pad_ref_values (void)
{
  /* reflect of [1 2 3] by 2 on the left: [3 2 1 2 3]; edge: [1 1 1 2 3] */
  const gfloat in[3] = { 1, 2, 3 };
  gfloat out[5];
  NclPadding reflect = { 0, 0, 2, 0, NCL_PAD_REFLECT };
  NclPadding edge = { 0, 0, 2, 0, NCL_PAD_EDGE };
  NclPadding crop = { 0, 0, -1, -1, NCL_PAD_ZERO };
  NclPadding none = { 0, 0, 0, 0, NCL_PAD_ZERO };

  ncl_pad_forward_ref (in, 1, 1, 1, 3, 1, &reflect, out);
  NCL_CHECK (out[0] == 3 && out[1] == 2 && out[2] == 1 && out[4] == 3);
  ncl_pad_forward_ref (in, 1, 1, 1, 3, 1, &edge, out);
  NCL_CHECK (out[0] == 1 && out[1] == 1 && out[2] == 1 && out[3] == 2);
  ncl_pad_forward_ref (in, 1, 1, 1, 3, 1, &crop, out);
  NCL_CHECK (out[0] == 2);
  /* nearest x2 of [1 2 3] on a 1-row image doubles rows too: 2x6 */
  {
    gfloat up[12];
    ncl_pad_forward_ref (in, 1, 1, 1, 3, 2, &none, up);
    NCL_CHECK (up[0] == 1 && up[1] == 1 && up[2] == 2 && up[5] == 3
        && up[6] == 1 && up[11] == 3);
  }
}

static void
check_pad_channels (NclContext * ctx, gint n, gint c, gint h, gint w,
    gint before, gint after)
{
  gsize numel = (gsize) n * c * h * w;
  gsize onumel = (gsize) n * (c + before + after) * h * w;
  g_autofree gfloat *x = g_new (gfloat, numel);
  g_autofree gfloat *want = g_new (gfloat, onumel);
  g_autofree gfloat *got = NULL;
  g_autoptr (NclTensor) tin = NULL;
  g_autoptr (NclTensor) tout = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *label = NULL;

  ncl_test_fill_random (x, numel, c * 13 + h, -3.0f, 3.0f);
  ncl_pad_channels_forward_ref (x, n, c, h * w, before, after, want);
  tin = ncl_test_tensor (ctx, x, n, c, h, w);
  tout = ncl_test_tensor (ctx, NULL, 1, 1, 1, 1);
  NCL_CHECK (ncl_pad_channels_forward (ctx, tin, before, after, tout,
          &error));
  NCL_CHECK_NO_ERROR (error);
  NCL_CHECK (tout->c == c + before + after);
  got = ncl_test_download (tout);
  label = g_strdup_printf ("pad channels (%d,%d,%d,%d) +%d/+%d", n, c, h, w,
      before, after);
  ncl_test_compare (label, got, want, onumel, 0.0f, 0.0f);
  /* the reference itself: first plane copied after @before zero planes */
  if (before > 0)
    NCL_CHECK (want[0] == 0.0f && want[(gsize) before * h * w] == x[0]);
}

int
main (void)
{
  g_autoptr (NclContext) ctx = ncl_test_context ();
  const NclActivation acts[] = { NCL_ACT_NONE, NCL_ACT_RELU,
    NCL_ACT_LEAKY_RELU, NCL_ACT_SIGMOID, NCL_ACT_TANH, NCL_ACT_RELU6
  };

  check_pad_ref_values ();

  for (guint a = 0; a < G_N_ELEMENTS (acts); a++)
    check_instnorm (ctx, 1, 3, 5, 7, TRUE, FALSE, acts[a], FALSE);
  check_instnorm (ctx, 1, 1, 1, 1, TRUE, FALSE, NCL_ACT_NONE, FALSE);
  check_instnorm (ctx, 2, 5, 3, 3, FALSE, TRUE, NCL_ACT_RELU, FALSE);
  check_instnorm (ctx, 1, 17, 9, 13, TRUE, TRUE, NCL_ACT_NONE, TRUE);
  check_instnorm (ctx, 1, 32, 30, 40, TRUE, FALSE, NCL_ACT_RELU, TRUE);
  check_instnorm (ctx, 2, 3, 16, 16, TRUE, TRUE, NCL_ACT_LEAKY_RELU, FALSE);

  check_pad (ctx, 1, 1, 1, 1, 1, 1, 1, 1, 1, NCL_PAD_REFLECT);
  check_pad (ctx, 1, 1, 1, 1, 1, 2, 0, 0, 3, NCL_PAD_ZERO);
  check_pad (ctx, 1, 3, 5, 7, 1, 4, 4, 4, 4, NCL_PAD_REFLECT);
  check_pad (ctx, 2, 5, 3, 5, 1, 1, 2, 0, 1, NCL_PAD_EDGE);
  check_pad (ctx, 1, 3, 3, 5, 1, 7, 7, 9, 9, NCL_PAD_REFLECT);
  check_pad (ctx, 1, 4, 6, 9, 2, 1, 1, 1, 1, NCL_PAD_REFLECT);
  check_pad (ctx, 1, 3, 7, 5, 2, 0, 0, 0, 0, NCL_PAD_ZERO);
  check_pad (ctx, 1, 3, 33, 19, 1, 0, 3, 0, 1, NCL_PAD_REFLECT);
  check_pad (ctx, 1, 2, 9, 11, 1, -1, -2, 0, -3, NCL_PAD_ZERO);
  /* rows wide enough for the 16-float interior copy, rows of several
   * planes per work-item (more rows than work-items), crops and upsampling
   * on wide rows */
  check_pad (ctx, 2, 32, 35, 35, 1, 1, 1, 1, 1, NCL_PAD_ZERO);
  check_pad (ctx, 1, 256, 4, 4, 1, 1, 1, 1, 1, NCL_PAD_ZERO);
  check_pad (ctx, 1, 3, 10, 37, 1, 4, 4, 4, 4, NCL_PAD_REFLECT);
  check_pad (ctx, 3, 5, 13, 50, 1, 2, 1, 3, 0, NCL_PAD_EDGE);
  check_pad (ctx, 1, 2, 4, 50, 1, 0, 0, -3, -5, NCL_PAD_ZERO);
  check_pad (ctx, 1, 2, 5, 21, 2, 1, 1, 1, 1, NCL_PAD_REFLECT);
  check_pad_channels (ctx, 1, 3, 1, 1, 0, 5);
  check_pad_channels (ctx, 2, 32, 7, 9, 0, 32);
  check_pad_channels (ctx, 1, 5, 3, 17, 2, 3);
  return ncl_test_finish ();
}
