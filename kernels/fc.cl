/* fc.cl: fully connected layer, out = act(in . W^T + b).
 *
 * Layout: in (N, IN_F) row-major (any NCHW tensor flattened per sample),
 * weight (OUT_F, IN_F) row-major, bias (OUT_F) or unused, out (N, OUT_F).
 *
 * fc_16: global (OUT_F, ceil(N / FC_NB)).  A work-item computes output o
 *   for FC_NB consecutive samples: one weight row streams through in
 *   float16 chunks, each multiplied into FC_NB float16 accumulators, then
 *   the scalar tail of IN_F % 16.  Samples past N re-read the last row
 *   (so the unrolled loop has no branch) and are not written.  Nothing
 *   past a row of @in or @weight is read.
 *
 * Tunables:
 *   FC_NB  samples per work-item (1, 2, 4 or 8)
 */

#ifndef FC_NB
#define FC_NB 8
#endif

__kernel void
fc_16 (__global const float *in, __global const float *weight,
    __global const float *bias, const int has_bias, __global float *out,
    const int n, const int in_f, const int out_f, const int act,
    const float alpha)
{
  const int o = get_global_id (0);
  const int s0 = get_global_id (1) * FC_NB;
  const int full = in_f / 16;
  __global const float *wrow = weight + (size_t) o * in_f;
  __global const float *rows[FC_NB];
  float16 acc[FC_NB];
  float b;

  if (o >= out_f || s0 >= n)
    return;
#pragma unroll
  for (int s = 0; s < FC_NB; s++) {
    rows[s] = in + (size_t) min (s0 + s, n - 1) * in_f;
    acc[s] = (float16) (0.0f);
  }

  for (int k = 0; k < full; k++) {
    float16 wv = vload16 (k, wrow);

#pragma unroll
    for (int s = 0; s < FC_NB; s++)
      acc[s] = fma (vload16 (k, rows[s]), wv, acc[s]);
  }

  b = has_bias ? bias[o] : 0.0f;
#pragma unroll
  for (int s = 0; s < FC_NB; s++) {
    float8 a8 = acc[s].lo + acc[s].hi;
    float4 a4 = a8.lo + a8.hi;
    float2 a2 = a4.lo + a4.hi;
    float sum = a2.x + a2.y;

    for (int j = full * 16; j < in_f; j++)
      sum = fma (rows[s][j], wrow[j], sum);
    if (s0 + s < n)
      out[(size_t) (s0 + s) * out_f + o] = ncl_act (act, alpha, sum + b);
  }
}
