/* backward-conv.c: conv2d backward (data and weights): the plain-C
 * reference and the device path (kernels/backward.cl).
 *
 * Device variants:
 *   dX "direct"   groups 1, dilation 1, stride 1 or 2, kw <= 17: a register
 *                 tile of CI_TILE input channels x 16 * stride input pixels
 *                 of a row, reading a zero-padded copy of dout so that the
 *                 inner loop has no bounds checks (conv_bwd_data_direct).
 *   dX "generic"  anything else: one work-item per input pixel.
 *   dW "direct"   stride 1 or 2, dilation 1: each work-item accumulates a
 *                 (CO_T output channels) x (CI_T input channels x KW taps)
 *                 tile of float16 products over a chunk of output rows
 *                 (lanes = 16 output pixels), reduced across lanes at the
 *                 end; partial sums per row chunk are then added into
 *                 dweight (conv_bwd_weights + conv_bwd_reduce).
 *   dW "generic"  anything else: one work-item per weight, looping over the
 *                 batch and all output pixels.
 * Reflect / edge padding: the weight kernels read a padded copy of the
 * input (as the forward conv does); the data kernels write the gradient of
 * the padded input into a scratch, folded back with ncl_pad_backward().
 */
#include <neuralcl/backward.h>
#include <neuralcl/error.h>

#include <math.h>
#include <string.h>

/* ---- reference ---------------------------------------------------------- */

/* Maps coordinate @i into [0, n) for reflect / edge; -1 for zero padding
 * (the forward conv's mapping). */
static gint
pad_index (gint i, gint n, NclPadMode mode)
{
  gint period, m;

  if (i >= 0 && i < n)
    return i;
  if (mode == NCL_PAD_ZERO)
    return -1;
  if (mode == NCL_PAD_EDGE || n == 1)
    return CLAMP (i, 0, n - 1);
  period = 2 * (n - 1);
  m = i % period;
  if (m < 0)
    m += period;
  return m < n ? m : period - m;
}

void
ncl_conv2d_backward_ref (const NclConvParams * p, const gfloat * in, gint n,
    gint h, gint w, const gfloat * dout, gfloat * din, gfloat * dweight,
    gfloat * dbias)
{
  gint d = MAX (p->dilation, 1);
  gint cin_g = p->cin / p->groups;
  gint cout_g = p->cout / p->groups;
  gsize per_out = (gsize) cin_g * p->kh * p->kw;
  gsize in_numel = (gsize) n * p->cin * h * w;
  g_autofree gdouble *dx = NULL;        /* (n, cin, h, w) */
  g_autofree gdouble *dw = NULL;        /* (cout, cin_g, kh, kw) */
  g_autofree gdouble *db = NULL;        /* (cout) */
  gint oh, ow;

  ncl_conv2d_out_size (p, h, w, &oh, &ow);
  if (din != NULL)
    dx = g_new0 (gdouble, in_numel);
  if (dweight != NULL)
    dw = g_new0 (gdouble, p->cout * per_out);
  if (dbias != NULL)
    db = g_new0 (gdouble, p->cout);

  for (gint b = 0; b < n; b++) {
    for (gint co = 0; co < p->cout; co++) {
      gint g = co / cout_g;
      const gfloat *wc = p->weight ? p->weight + co * per_out : NULL;
      gdouble *dwc = dw ? dw + co * per_out : NULL;

      for (gint oy = 0; oy < oh; oy++) {
        for (gint ox = 0; ox < ow; ox++) {
          gdouble gr = dout[(((gsize) b * p->cout + co) * oh + oy) * ow + ox];

          if (db != NULL)
            db[co] += gr;
          for (gint ci = 0; ci < cin_g; ci++) {
            gsize plane = ((gsize) b * p->cin + g * cin_g + ci) * h * w;

            for (gint ky = 0; ky < p->kh; ky++) {
              gint iy = pad_index (oy * p->stride_h + ky * d - p->pad.top, h,
                  p->pad.mode);

              if (iy < 0)
                continue;
              for (gint kx = 0; kx < p->kw; kx++) {
                gint ix = pad_index (ox * p->stride_w + kx * d - p->pad.left,
                    w, p->pad.mode);
                gsize tap = (ci * p->kh + ky) * p->kw + kx;

                if (ix < 0)
                  continue;
                if (dx != NULL)
                  dx[plane + (gsize) iy * w + ix] += wc[tap] * gr;
                if (dwc != NULL)
                  dwc[tap] += in[plane + (gsize) iy * w + ix] * gr;
              }
            }
          }
        }
      }
    }
  }

  if (din != NULL)
    for (gsize i = 0; i < in_numel; i++)
      din[i] = dx[i];
  if (dweight != NULL)
    for (gsize i = 0; i < p->cout * per_out; i++)
      dweight[i] += dw[i];
  if (dbias != NULL)
    for (gint co = 0; co < p->cout; co++)
      dbias[co] += db[co];
}
