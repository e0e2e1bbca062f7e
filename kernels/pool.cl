/* pool.cl: max / average pooling and global average pooling.
 *
 * Layout: in (N, C, H, W), out (N, C, OH, OW), NCHW float32.
 *
 * pool_max, pool_avg: one work-item per @rows consecutive output rows of
 *   the N * C planes taken as one column of rows, work-groups of one (few
 *   large planes and many tiny ones alike spread over every core; one
 *   work-item per 16 outputs spent more in PoCL's work-item loop than in
 *   the pooling), each row POOL_PX outputs at a time.
 *   The window of output (oy, ox) starts at (oy * SH - PT, ox * SW - PL);
 *   it is clipped to the image first, so the inner loops never test bounds.
 *   Max treats padding as -inf (a window wholly in padding gives -inf);
 *   average divides by the number of real pixels (0 when there are none).
 *   Work-items whose 16 windows lie inside the image with x stride 1 or 2
 *   take a vector path (one load, or two and a shuffle, per tap).
 * global_avgpool_16: global (N * C), one (n, c) plane per work-item, summed
 *   16 values at a time.
 */

#ifndef POOL_PX
#define POOL_PX 16
#endif
/* Output row @oy, outputs [ox0, ox0 + POOL_PX) of one plane.  Windows wholly
 * inside the image with x stride 1 or 2 take the vector path: each tap is
 * one load (stride 2: two loads and an even-lane shuffle), reduced with
 * VOP; the others are clipped to the image and reduced one by one. */
#define POOL_ROW(VOP, SOP, INIT, VFINISH, SFINISH)                         \
  {                                                                        \
    const int xs = ox0 * sw - pl, ys = oy * sh - pt;                       \
    __global float *dst = out + ((size_t) plane * oh + oy) * ow;           \
                                                                           \
    if (ox0 + 16 <= ow && xs >= 0 && ys >= 0 && ys + kh <= h               \
        && (sw == 1 || sw == 2) && xs + kw - 1 + (sw == 1 ? 16 : 32) <= w) \
    {                                                                      \
      __global const float *src = in + ((size_t) plane * h + ys) * w + xs; \
      float16 acc = (float16) (INIT);                                      \
                                                                           \
      for (int ky = 0; ky < kh; ky++) {                                    \
        for (int kx = 0; kx < kw; kx++) {                                  \
          __global const float *p = src + ky * w + kx;                     \
          float16 v = sw == 1 ? vload16 (0, p) : shuffle2 (vload16 (0, p), \
              vload16 (1, p), (uint16) (0, 2, 4, 6, 8, 10, 12, 14, 16, 18, \
                  20, 22, 24, 26, 28, 30));                                \
                                                                           \
          acc = VOP (acc, v);                                              \
        }                                                                  \
      }                                                                    \
      vstore16 (VFINISH (acc), 0, dst + ox0);                              \
    } else {                                                               \
      const int y0 = max (ys, 0), y1 = min (ys + kh, h);                   \
      __global const float *src = in + (size_t) plane * h * w;             \
                                                                           \
      for (int ox = ox0; ox < min (ox0 + POOL_PX, ow); ox++) {             \
        const int x0 = max (ox * sw - pl, 0);                              \
        const int x1 = min (ox * sw - pl + kw, w);                         \
        float a = INIT;                                                    \
                                                                           \
        for (int y = y0; y < y1; y++) {                                    \
          for (int x = x0; x < x1; x++)                                    \
            a = SOP (a, src[y * w + x]);                                   \
        }                                                                  \
        dst[ox] = SFINISH (a, max (y1 - y0, 0) * max (x1 - x0, 0));        \
      }                                                                    \
    }                                                                      \
  }

/* global: (ceil (planes * OH / rows)), local (1) */
#define POOL_KERNEL(name, VOP, SOP, INIT, VFINISH, SFINISH)                \
__kernel __attribute__ ((reqd_work_group_size (1, 1, 1)))                 \
void                                                                       \
name (__global const float *in, __global float *out, const int planes,     \
    const int h, const int w, const int oh, const int ow, const int kh,    \
    const int kw, const int sh, const int sw, const int pt, const int pl,  \
    const int rows)                                                        \
{                                                                          \
  const int r0 = get_global_id (0) * rows;                                 \
  const int rend = min (r0 + rows, planes * oh);                           \
                                                                           \
  for (int r = r0; r < rend; r++) {                                        \
    const int plane = r / oh, oy = r % oh;                                 \
                                                                           \
    for (int ox0 = 0; ox0 < ow; ox0 += POOL_PX)                            \
      POOL_ROW (VOP, SOP, INIT, VFINISH, SFINISH);                         \
  }                                                                        \
}

#define POOL_VADD(a, b) ((a) + (b))
#define POOL_VSAME(a) (a)
#define POOL_VMEAN(a) ((a) / (float) (kh * kw))
#define POOL_SMAX_DONE(a, count) (a)
#define POOL_SMEAN_DONE(a, count) ((count) > 0 ? (a) / (count) : 0.0f)

POOL_KERNEL (pool_max, fmax, fmax, -INFINITY, POOL_VSAME, POOL_SMAX_DONE)
POOL_KERNEL (pool_avg, POOL_VADD, POOL_VADD, 0.0f, POOL_VMEAN, POOL_SMEAN_DONE)

/* out[p] = mean of in[p * hw .. p * hw + hw) for p < planes */
__kernel void
global_avgpool_16 (__global const float *in, __global float *out,
    const int planes, const int hw)
{
  const int p = get_global_id (0);
  __global const float *src = in + (size_t) p * hw;
  const int full = hw / 16;
  float16 acc = (float16) (0.0f);
  float sum;

  if (p >= planes)
    return;
  for (int k = 0; k < full; k++)
    acc += vload16 (k, src);
  {
    float8 a8 = acc.lo + acc.hi;
    float4 a4 = a8.lo + a8.hi;
    float2 a2 = a4.lo + a4.hi;
    sum = a2.x + a2.y;
  }
  for (int j = full * 16; j < hw; j++)
    sum += src[j];
  out[p] = sum / hw;
}
