/* pool.cl: max / average pooling and global average pooling.
 *
 * Layout: in (N, C, H, W), out (N, C, OH, OW), NCHW float32.
 *
 * pool_max, pool_avg: global (ceil(OW / POOL_PX), OH, N * C): POOL_PX
 *   consecutive outputs of a row per work-item.
 *   The window of output (oy, ox) starts at (oy * SH - PT, ox * SW - PL);
 *   it is clipped to the image first, so the inner loops never test bounds.
 *   Max treats padding as -inf (a window wholly in padding gives -inf);
 *   average divides by the number of real pixels (0 when there are none).
 * global_avgpool_16: global (N * C), one (n, c) plane per work-item, summed
 *   16 values at a time.
 */

#ifndef POOL_PX
#define POOL_PX 16
#endif

/* One work-item computes POOL_PX consecutive outputs of a row (ox0 ..);
 * each output's window is clipped to the image: [y0, y1) x [x0, x1). */
#define POOL_ROW_BEGIN                                                     \
  const int ox0 = get_global_id (0) * POOL_PX;                             \
  const int oy = get_global_id (1);                                        \
  const int plane = get_global_id (2);                                     \
                                                                           \
  if (ox0 >= ow || oy >= oh || plane >= planes)                            \
    return;                                                                \
  const int y0 = max (oy * sh - pt, 0);                                    \
  const int y1 = min (oy * sh - pt + kh, h);                               \
  __global const float *src = in + (size_t) plane * h * w;                 \
  __global float *dst = out + ((size_t) plane * oh + oy) * ow;             \
  const int oxend = min (ox0 + POOL_PX, ow);                               \
                                                                           \
  for (int ox = ox0; ox < oxend; ox++) {                                   \
    const int x0 = max (ox * sw - pl, 0);                                  \
    const int x1 = min (ox * sw - pl + kw, w)

__kernel void
pool_max (__global const float *in, __global float *out, const int planes,
    const int h, const int w, const int oh, const int ow, const int kh,
    const int kw, const int sh, const int sw, const int pt, const int pl)
{
  POOL_ROW_BEGIN;
    float m = -INFINITY;

    for (int y = y0; y < y1; y++) {
      __global const float *row = src + y * w;

      for (int x = x0; x < x1; x++)
        m = fmax (m, row[x]);
    }
    dst[ox] = m;
  }
}

__kernel void
pool_avg (__global const float *in, __global float *out, const int planes,
    const int h, const int w, const int oh, const int ow, const int kh,
    const int kw, const int sh, const int sw, const int pt, const int pl)
{
  POOL_ROW_BEGIN;
    float sum = 0.0f;
    int count;

    for (int y = y0; y < y1; y++) {
      __global const float *row = src + y * w;

      for (int x = x0; x < x1; x++)
        sum += row[x];
    }
    count = max (y1 - y0, 0) * max (x1 - x0, 0);
    dst[ox] = count > 0 ? sum / count : 0.0f;
  }
}

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
