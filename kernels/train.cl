/* train.cl: the style-transfer losses (Gram matrices, squared differences,
 * total variation) and their gradients, and the VGG input conversion.
 * The C references are in lib/style-train.c; include/neuralcl/train.h
 * says what each computes. */

/* G (n, c, c) = scale * F F^T per image, F (n, c, hw).
 * One work-item: a 4 x 4 tile of G, float16 partial products over hw.
 * Global: (ceil (c / 4), ceil (c / 4), n). */
__kernel void
gram (__global const float *f, __global float *g, const int c, const int hw,
    const float scale)
{
  const int j0 = get_global_id (0) * 4;
  const int i0 = get_global_id (1) * 4;
  const int b = get_global_id (2);
  __global const float *fb = f + (size_t) b * c * hw;
  __global const float *ri[4], *rj[4];
  float16 acc[4][4];
  float tail[4][4];
  int k, hw16 = hw / 16 * 16;

  if (i0 >= c || j0 >= c)
    return;
  for (int r = 0; r < 4; r++) {
    ri[r] = fb + (size_t) min (i0 + r, c - 1) * hw;
    rj[r] = fb + (size_t) min (j0 + r, c - 1) * hw;
    for (int s = 0; s < 4; s++) {
      acc[r][s] = (float16) (0.0f);
      tail[r][s] = 0.0f;
    }
  }
  for (k = 0; k < hw16; k += 16) {
    float16 a0 = vload16 (0, ri[0] + k), a1 = vload16 (0, ri[1] + k);
    float16 a2 = vload16 (0, ri[2] + k), a3 = vload16 (0, ri[3] + k);

    for (int s = 0; s < 4; s++) {
      float16 bv = vload16 (0, rj[s] + k);

      acc[0][s] = mad (a0, bv, acc[0][s]);
      acc[1][s] = mad (a1, bv, acc[1][s]);
      acc[2][s] = mad (a2, bv, acc[2][s]);
      acc[3][s] = mad (a3, bv, acc[3][s]);
    }
  }
  for (; k < hw; k++)
    for (int r = 0; r < 4; r++)
      for (int s = 0; s < 4; s++)
        tail[r][s] = mad (ri[r][k], rj[s][k], tail[r][s]);

  for (int r = 0; r < 4; r++) {
    if (i0 + r >= c)
      break;
    for (int s = 0; s < 4; s++) {
      float16 a = acc[r][s];
      float8 h8 = a.lo + a.hi;
      float4 h4 = h8.lo + h8.hi;
      float2 h2 = h4.lo + h4.hi;

      if (j0 + s < c)
        g[((size_t) b * c + i0 + r) * c + j0 + s] =
            scale * (h2.x + h2.y + tail[r][s]);
    }
  }
}

/* dF (n, c, hw) = scale * A F [+ dF when accumulate], A (n, c, c).
 * One work-item: 8 rows x 16 columns.  F is read 16 wide past the end of
 * a row (the tensor slack covers the last row); only valid columns are
 * written.  Global: (ceil (hw / 16), ceil (c / 8), n). */
__kernel void
gram_backward (__global const float *a, __global const float *f,
    __global float *df, const int c, const int hw, const float scale,
    const int accumulate)
{
  const int k0 = get_global_id (0) * 16;
  const int i0 = get_global_id (1) * 8;
  const int b = get_global_id (2);
  __global const float *fb = f + (size_t) b * c * hw;
  __global const float *ab = a + (size_t) b * c * c;
  float16 acc[8];

  if (k0 >= hw || i0 >= c)
    return;
  for (int r = 0; r < 8; r++)
    acc[r] = (float16) (0.0f);
  for (int j = 0; j < c; j++) {
    float16 fv = vload16 (0, fb + (size_t) j * hw + k0);

    for (int r = 0; r < 8; r++)
      acc[r] = mad ((float16) (ab[(size_t) min (i0 + r, c - 1) * c + j]), fv,
          acc[r]);
  }
  for (int r = 0; r < 8 && i0 + r < c; r++) {
    __global float *dst = df + ((size_t) b * c + i0 + r) * hw + k0;
    float16 v = scale * acc[r];

    if (k0 + 16 <= hw) {
      if (accumulate)
        v += vload16 (0, dst);
      vstore16 (v, 0, dst);
    } else {
      float tmp[16];

      vstore16 (v, 0, tmp);
      for (int q = 0; q < hw - k0; q++)
        dst[q] = accumulate ? dst[q] + tmp[q] : tmp[q];
    }
  }
}

/* Over elements [i * CHUNK, (i + 1) * CHUNK) of a (n values) against b
 * (nb values, repeated: b[k % nb]):
 *   partial[i] = sum (a - b)^2;
 *   if write_grad: grad = gscale * (a - b) [+ grad when accumulate].
 * Global: ceil (n / CHUNK). */
#define SQ_CHUNK 256
__kernel void
sq_diff (__global const float *a, __global const float *b, const int n,
    const int nb, __global float *grad, const float gscale,
    const int write_grad, const int accumulate, __global float *partial)
{
  const int i = get_global_id (0);
  const int start = i * SQ_CHUNK;
  const int end = min (start + SQ_CHUNK, n);
  float sum = 0.0f;

  if (start >= n)
    return;
  for (int k = start; k < end; k++) {
    float d = a[k] - b[k % nb];

    sum = mad (d, d, sum);
    if (write_grad)
      grad[k] = accumulate ? mad (gscale, d, grad[k]) : gscale * d;
  }
  partial[i] = sum;
}

/* Total variation of x (planes, h, w):
 *   partial[row] = sum over the row of (x[y][x+1] - x)^2 + (x[y+1][x] - x)^2
 *   if write_grad: grad += gscale * dTV/dx (accumulates).
 * One work-item per row (plane * h + y).  Global: planes * h. */
__kernel void
tv_loss (__global const float *x, const int planes, const int h,
    const int w, __global float *grad, const float gscale,
    const int write_grad, __global float *partial)
{
  const int row = get_global_id (0);
  const int y = row % h;
  __global const float *p = x + (size_t) row * w;
  __global float *g = grad + (size_t) row * w;
  float sum = 0.0f;

  if (row >= planes * h)
    return;
  for (int k = 0; k < w; k++) {
    float v = p[k], d = 0.0f;

    if (k + 1 < w) {
      float dx = p[k + 1] - v;
      sum = mad (dx, dx, sum);
      d -= 2.0f * dx;
    }
    if (k > 0)
      d += 2.0f * (v - p[k - 1]);
    if (y + 1 < h) {
      float dy = p[k + w] - v;
      sum = mad (dy, dy, sum);
      d -= 2.0f * dy;
    }
    if (y > 0)
      d += 2.0f * (v - p[k - w]);
    if (write_grad)
      g[k] = mad (gscale, d, g[k]);
  }
  partial[row] = sum;
}

/* VGG input: out[b][c] = in[b][2 - c] - mean[c] (RGB 0..255 -> BGR minus
 * the Caffe mean).  Global: (hw, 3, n). */
__kernel void
rgb_to_vgg (__global const float *in, __global float *out, const int hw,
    const float mean_b, const float mean_g, const float mean_r)
{
  const int k = get_global_id (0);
  const int c = get_global_id (1);
  const int b = get_global_id (2);
  const float mean = c == 0 ? mean_b : c == 1 ? mean_g : mean_r;

  if (k >= hw)
    return;
  out[((size_t) b * 3 + c) * hw + k] = in[((size_t) b * 3 + 2 - c) * hw + k]
      - mean;
}

/* Its backward: drgb[b][c] = dvgg[b][2 - c] [+ drgb when accumulate]. */
__kernel void
vgg_to_rgb_grad (__global const float *dvgg, __global float *drgb,
    const int hw, const int accumulate)
{
  const int k = get_global_id (0);
  const int c = get_global_id (1);
  const int b = get_global_id (2);
  size_t o = ((size_t) b * 3 + c) * hw + k;
  float v;

  if (k >= hw)
    return;
  v = dvgg[((size_t) b * 3 + 2 - c) * hw + k];
  drgb[o] = accumulate ? drgb[o] + v : v;
}
