/* norm.cl: instance normalisation (affine) with a fused residual add and
 * activation.
 *
 * in/out/residual (n, c, h, w); gamma/beta (c).  One work-item per (n, c)
 * plane: a float16-vectorised pass for the mean, one for the (biased)
 * variance, one that writes
 *   out = act(gamma * (x - mean) * rsqrt(var + eps) + beta [+ residual]).
 * On a CPU device the plane stays in cache between passes.  HAS_AFFINE and
 * HAS_RESIDUAL are 0/1 build options. */

#ifndef HAS_AFFINE
#define HAS_AFFINE 1
#endif
#ifndef HAS_RESIDUAL
#define HAS_RESIDUAL 0
#endif

inline float
sum16 (float16 v)
{
  float8 a = v.lo + v.hi;
  float4 b = a.lo + a.hi;
  float2 c = b.lo + b.hi;
  return c.x + c.y;
}

__kernel void
instnorm_plane (__global const float *in, __global float *out,
    __global const float *gamma, __global const float *beta,
    __global const float *residual, int channels, int hw, float eps, int act,
    float alpha, int planes)
{
  int p = get_global_id (0);

  if (p >= planes)
    return;
  __global const float *x = in + (size_t) p * hw;
  __global float *y = out + (size_t) p * hw;
  int nv = hw / 16;
  float16 acc = 0.0f;
  float s = 0.0f;

  for (int i = 0; i < nv; i++)
    acc += vload16 (i, x);
  for (int i = nv * 16; i < hw; i++)
    s += x[i];
  float mean = (sum16 (acc) + s) / hw;

  acc = 0.0f;
  s = 0.0f;
  for (int i = 0; i < nv; i++) {
    float16 d = vload16 (i, x) - mean;
    acc = mad (d, d, acc);
  }
  for (int i = nv * 16; i < hw; i++) {
    float d = x[i] - mean;
    s += d * d;
  }
  float var = (sum16 (acc) + s) / hw;

  float scale = rsqrt (var + eps);
  float shift;
#if HAS_AFFINE
  int c = p % channels;
  scale *= gamma[c];
  shift = beta[c] - mean * scale;
#else
  shift = -mean * scale;
#endif
#if HAS_RESIDUAL
  __global const float *r = residual + (size_t) p * hw;
#endif

  for (int i = 0; i < nv; i++) {
    float16 v = mad (vload16 (i, x), (float16) scale, (float16) shift);
#if HAS_RESIDUAL
    v += vload16 (i, r);
#endif
    if (act == ACT_RELU)
      v = fmax (v, 0.0f);
    else if (act != ACT_NONE)
      for (int j = 0; j < 16; j++)
        ((float *) &v)[j] = ncl_act (act, alpha, ((float *) &v)[j]);
    vstore16 (v, i, y);
  }
  for (int i = nv * 16; i < hw; i++) {
    float v = mad (x[i], scale, shift);
#if HAS_RESIDUAL
    v += r[i];
#endif
    y[i] = ncl_act (act, alpha, v);
  }
}
