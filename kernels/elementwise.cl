/* elementwise.cl: activation, add (+ activation), clamp, channel concat and
 * per-sample L2 normalisation.
 *
 * Layout: flat float32 arrays of @n values (NCHW tensors taken as a whole).
 * The *_16 kernels give each work-item 16 consecutive values, loaded and
 * stored with vload16/vstore16; the work-item holding the last, partial
 * group falls back to scalars so nothing past @n is read or written.
 * Global size: ceil(n / 16).  In place (out == in, out == a or b) is fine:
 * every work-item reads its values before it writes the same ones.
 *
 * Tunables:
 *   L2NORM_WG  work-group size of l2norm_16 (one work-group per sample)
 */

#ifndef L2NORM_WG
#define L2NORM_WG 64
#endif

/* out[i] = act(in[i]) */
__kernel void
activation_16 (__global const float *in, __global float *out, const int n,
    const int act, const float alpha)
{
  const int i = get_global_id (0) * 16;

  if (i + 16 <= n) {
    vstore16 (ncl_act16 (act, alpha, vload16 (0, in + i)), 0, out + i);
  } else {
    for (int j = i; j < n; j++)
      out[j] = ncl_act (act, alpha, in[j]);
  }
}

/* out[i] = act(a[i] + b[i]) */
__kernel void
add_16 (__global const float *a, __global const float *b,
    __global float *out, const int n, const int act, const float alpha)
{
  const int i = get_global_id (0) * 16;

  if (i + 16 <= n) {
    float16 s = vload16 (0, a + i) + vload16 (0, b + i);
    vstore16 (ncl_act16 (act, alpha, s), 0, out + i);
  } else {
    for (int j = i; j < n; j++)
      out[j] = ncl_act (act, alpha, a[j] + b[j]);
  }
}

/* out[i] = min(max(in[i], lo), hi); NaN becomes lo, lo > hi gives hi. */
__kernel void
clamp_16 (__global const float *in, __global float *out, const int n,
    const float lo, const float hi)
{
  const int i = get_global_id (0) * 16;

  if (i + 16 <= n) {
    float16 x = vload16 (0, in + i);
    vstore16 (fmin (fmax (x, (float16) (lo)), (float16) (hi)), 0, out + i);
  } else {
    for (int j = i; j < n; j++)
      out[j] = fmin (fmax (in[j], lo), hi);
  }
}

/* Channel concat.  a: (N, CA, HW), b: (N, CB, HW), out: (N, CA + CB, HW).
 * Global: (ceil(max(len_a, len_b) / 16), N, 2) where len_x = CX * HW; the
 * third index picks the source.  Each work-item copies 16 values of one
 * sample's contiguous block. */
__kernel void
concat_16 (__global const float *a, __global const float *b,
    __global float *out, const int len_a, const int len_b)
{
  const int i = get_global_id (0) * 16;
  const int s = get_global_id (1);
  const int part = get_global_id (2);
  const int len = part == 0 ? len_a : len_b;
  __global const float *src;
  __global float *dst;

  if (i >= len)
    return;
  src = (part == 0 ? a + (size_t) s * len_a : b + (size_t) s * len_b) + i;
  dst = out + (size_t) s * (len_a + len_b) + (part == 0 ? 0 : len_a) + i;
  if (i + 16 <= len) {
    vstore16 (vload16 (0, src), 0, dst);
  } else {
    for (int j = 0; j < len - i; j++)
      dst[j] = src[j];
  }
}

/* out = x / max(||x||, eps) per sample; in, out: (N, LEN).
 * One work-group of L2NORM_WG work-items per sample (global (L2NORM_WG, N),
 * local (L2NORM_WG, 1)): each lane sums the squares of every L2NORM_WG-th
 * 16-value chunk, the lanes reduce in local memory, then scale their
 * chunks.  In place is fine. */
__kernel void
l2norm_16 (__global const float *in, __global float *out, const int len,
    const float eps)
{
  __local float partial[L2NORM_WG];
  const int lane = get_local_id (0);
  const int s = get_global_id (1);
  __global const float *x = in + (size_t) s * len;
  __global float *y = out + (size_t) s * len;
  const int full = len / 16;
  float16 acc = (float16) (0.0f);
  float sum, scale;

  for (int k = lane; k < full; k += L2NORM_WG) {
    float16 v = vload16 (k, x);
    acc = fma (v, v, acc);
  }
  {
    float8 a8 = acc.lo + acc.hi;
    float4 a4 = a8.lo + a8.hi;
    float2 a2 = a4.lo + a4.hi;
    sum = a2.x + a2.y;
  }
  if (lane == 0) {
    for (int j = full * 16; j < len; j++)
      sum = fma (x[j], x[j], sum);
  }
  partial[lane] = sum;
  barrier (CLK_LOCAL_MEM_FENCE);
  for (int step = L2NORM_WG / 2; step > 0; step /= 2) {
    if (lane < step)
      partial[lane] += partial[lane + step];
    barrier (CLK_LOCAL_MEM_FENCE);
  }
  scale = 1.0f / fmax (sqrt (partial[0]), eps);

  for (int k = lane; k < full; k += L2NORM_WG)
    vstore16 (vload16 (k, x) * scale, k, y);
  if (lane == 0) {
    for (int j = full * 16; j < len; j++)
      y[j] = x[j] * scale;
  }
}
