/* backward.cl: backward passes for training (include/neuralcl/backward.h).
 *
 * Layouts: NCHW float32 as in the forward kernels; a gradient has the shape
 * of its forward tensor.  Input gradients are written, parameter gradients
 * added to (+=).  Every kernel checks its bounds, so global sizes may be
 * rounded up.
 *
 * Element-wise (flat arrays of n, one work-item per 16 values, global
 * ceil (n / 16); the last partial group falls back to scalars):
 *   grad_add_16     dst += src
 *   act_bwd_16      da = dout * act'(out) [, db = da]  (add backward too)
 *   channel_slice   dst (n, c, hw) = channels [c0, c0 + c) of src
 *                   (n, csrc, hw): concat and channel-pad backward.
 *   gap_bwd_16      global average pool: din[p][i] = dout[p] / hw.
 *   l2norm_bwd      one work-item per sample.
 * Padding / upsampling / crop:
 *   pad_bwd_row     one work-item per input row: gathers the output rows
 *                   that read it, scatter-adds their pixels along the row
 *                   (race-free: a row belongs to one work-item).
 *   pad_fwd_row     the pad layer's forward for scale 1 (the scratch copies
 *                   of the conv backward), one work-item per output row,
 *                   the interior copied 16 values at a time.
 * Instance norm (+ residual, + activation):
 *   instnorm_bwd_plane   one work-item per (n, c) plane: mean, variance,
 *                        the two sums, then din / dresidual; the sums go
 *                        to partial[2 p], partial[2 p + 1].
 *   instnorm_bwd_params  dbeta[c] += sum_n partial[2 p], dgamma likewise.
 * Pooling:
 *   pool_bwd        one work-item per input pixel: visits every window that
 *                   covers it, recomputes the window's argmax (max) or pixel
 *                   count (average).
 *   pool_max_bwd_tiled  windows that tile the image (k == stride, no
 *                   padding): one work-item per row of windows writes the
 *                   whole band of input rows.
 * Fully connected:
 *   fc_bwd_data     din (n, in_f) = dout (n, out_f) . W; 16 inputs per
 *                   work-item.
 *   fc_bwd_weights  dW (out_f, in_f) += dout^T . in, db += column sums.
 * Conv2d (see lib/backward-conv.c for the variants):
 *   conv_bwd_pack_w        (cout, cin, kh, KW) -> [cin / CI_TILE][cout][kh]
 *                          [KW][CI_TILE], zero-filled past cin.
 *   conv_bwd_data_direct   register tile: CI_TILE input channels x 16 * SW
 *                          * PXV input pixels of one row (SW phases of
 *                          PXV vectors).
 *   conv_bwd_data_generic  one work-item per input pixel.
 *   conv_bwd_weights       register tile over a chunk of output rows.
 *   conv_bwd_reduce        dW += sum of the chunks' partial results.
 *   conv_bwd_weights_generic  one work-item per weight.
 *   conv_bwd_bias          db[co] += sum of dout's plane co over the batch.
 *
 * The register-tiled conv kernels are compiled only with -DBWD_TILED (and
 * then alone), so their many tunable combinations do not rebuild the rest.
 *
 * Tunables (build options):
 *   CI_TILE  conv_bwd_data_direct / pack: input channels per work-item (16)
 *   KW       conv kernel width, compile-time (3)
 *   SW       horizontal stride of the direct kernels, 1 or 2 (1)
 *   PLM      left padding modulo SW (0)
 *   PXV      conv_bwd_data_direct: 16-pixel vectors per phase (1)
 *   CO_T     conv_bwd_weights: output channels per work-item (4)
 *   CI_T     conv_bwd_weights: input channels per work-item (2)
 */

#ifndef CI_TILE
#define CI_TILE 16
#endif
#ifndef KW
#define KW 3
#endif
#ifndef SW
#define SW 1
#endif
#ifndef PLM
#define PLM 0
#endif
#ifndef PXV
#define PXV 1
#endif
#ifndef CO_T
#define CO_T 4
#endif
#ifndef CI_T
#define CI_T 2
#endif

#define PAD_ZERO 0
#define PAD_REFLECT 1
#define PAD_EDGE 2

/* Unaligned vector loads (see conv.cl). */
#ifdef __clang__
typedef float16 __attribute__ ((aligned (4))) bwd_float16_u;
#define BWD_LOAD16(p) (*(__global const bwd_float16_u *) (p))
#define BWD_STORE16(v, p) (*(__global bwd_float16_u *) (p) = (v))
#else
#define BWD_LOAD16(p) vload16 (0, (p))
#define BWD_STORE16(v, p) vstore16 ((v), 0, (p))
#endif

inline float
bwd_sum16 (float16 v)
{
  float8 a = v.lo + v.hi;
  float4 b = a.lo + a.hi;
  float2 c = b.lo + b.hi;

  return c.x + c.y;
}

/* act'(.) from the forward output y, as in lib/backward.c. */
inline float
ncl_act_grad (int act, float alpha, float y)
{
  switch (act) {
    case ACT_RELU:
      return y > 0.0f ? 1.0f : 0.0f;
    case ACT_LEAKY_RELU:
      return y > 0.0f ? 1.0f : alpha;
    case ACT_SIGMOID:
      return y * (1.0f - y);
    case ACT_TANH:
      return 1.0f - y * y;
    case ACT_RELU6:
      return y > 0.0f && y < 6.0f ? 1.0f : 0.0f;
    default:
      return 1.0f;
  }
}

inline float16
ncl_act_grad16 (int act, float alpha, float16 y)
{
  const float16 one = (float16) (1.0f), zero = (float16) (0.0f);

  switch (act) {
    case ACT_RELU:
      return select (zero, one, y > zero);
    case ACT_LEAKY_RELU:
      return select ((float16) (alpha), one, y > zero);
    case ACT_SIGMOID:
      return y * (one - y);
    case ACT_TANH:
      return one - y * y;
    case ACT_RELU6:
      return select (zero, one, (y > zero) & (y < (float16) (6.0f)));
    default:
      return one;
  }
}

/* Stores the first @n (<= 16) lanes of @v at @p. */
inline void
bwd_store16 (__global float *p, float16 v, int n)
{
  if (n >= 16) {
    vstore16 (v, 0, p);
  } else {
    float t[16];

    vstore16 (v, 0, t);
    for (int l = 0; l < n; l++)
      p[l] = t[l];
  }
}

#ifndef BWD_TILED

/* ---- element-wise ------------------------------------------------------- */

__kernel void
grad_add_16 (__global const float *src, __global float *dst, const int n)
{
  const int i = get_global_id (0) * 16;

  if (i + 16 <= n) {
    vstore16 (vload16 (0, dst + i) + vload16 (0, src + i), 0, dst + i);
  } else {
    for (int j = i; j < n; j++)
      dst[j] += src[j];
  }
}

/* da = dout * act'(out); db = da when has_db.  out is unused for
 * ACT_NONE. */
__kernel void
act_bwd_16 (__global const float *out, __global const float *dout,
    __global float *da, __global float *db, const int n, const int act,
    const float alpha, const int has_db)
{
  const int i = get_global_id (0) * 16;

  if (i + 16 <= n) {
    float16 g = vload16 (0, dout + i);

    if (act != ACT_NONE)
      g *= ncl_act_grad16 (act, alpha, vload16 (0, out + i));
    vstore16 (g, 0, da + i);
    if (has_db)
      vstore16 (g, 0, db + i);
  } else {
    for (int j = i; j < n; j++) {
      float g = dout[j];

      if (act != ACT_NONE)
        g *= ncl_act_grad (act, alpha, out[j]);
      da[j] = g;
      if (has_db)
        db[j] = g;
    }
  }
}

/* global: (ceil (hw / 16), c, n) */
__kernel void
channel_slice (__global const float *src, __global float *dst, const int n,
    const int csrc, const int c0, const int c, const int hw)
{
  const int i = get_global_id (0) * 16;
  const int ch = get_global_id (1);
  const int b = get_global_id (2);

  if (i >= hw || ch >= c || b >= n)
    return;
  {
    __global const float *s = src + ((size_t) b * csrc + c0 + ch) * hw;
    __global float *d = dst + ((size_t) b * c + ch) * hw;

    if (i + 16 <= hw)
      vstore16 (vload16 (0, s + i), 0, d + i);
    else
      for (int j = i; j < hw; j++)
        d[j] = s[j];
  }
}

/* global: (ceil (hw / 16), planes) */
__kernel void
gap_bwd_16 (__global const float *dout, __global float *din, const int planes,
    const int hw)
{
  const int i = get_global_id (0) * 16;
  const int p = get_global_id (1);

  if (i >= hw || p >= planes)
    return;
  {
    float g = dout[p] / hw;
    __global float *d = din + (size_t) p * hw;

    if (i + 16 <= hw)
      vstore16 ((float16) (g), 0, d + i);
    else
      for (int j = i; j < hw; j++)
        d[j] = g;
  }
}

/* global: (n) */
__kernel void
l2norm_bwd (__global const float *in, __global const float *dout,
    __global float *din, const int n, const int len, const float eps)
{
  const int s = get_global_id (0);

  if (s >= n)
    return;
  {
    __global const float *x = in + (size_t) s * len;
    __global const float *dy = dout + (size_t) s * len;
    __global float *dx = din + (size_t) s * len;
    float sum = 0.0f, dot = 0.0f, norm;

    for (int i = 0; i < len; i++) {
      sum = fma (x[i], x[i], sum);
      dot = fma (x[i], dy[i], dot);
    }
    norm = sqrt (sum);
    if (norm > eps) {
      float k = dot / sum;

      for (int i = 0; i < len; i++)
        dx[i] = (dy[i] - x[i] * k) / norm;
    } else {
      for (int i = 0; i < len; i++)
        dx[i] = dy[i] / eps;
    }
  }
}

/* ---- pad / upsample / crop ---------------------------------------------- */

/* The pad layer's index map (pad.cl): -1 for zero padding. */
inline int
bwd_pad_map (int i, int size, int mode)
{
  if (i >= 0 && i < size)
    return i;
  if (mode == PAD_ZERO)
    return -1;
  if (mode == PAD_EDGE || size == 1)
    return clamp (i, 0, size - 1);
  {
    int period = 2 * (size - 1);

    i = abs (i) % period;
    return i < size ? i : period - i;
  }
}

/* Adds output row @s (ow values) into input row @d (w values). */
inline void
pad_bwd_add_row (__global const float *s, __global float *d, const int w,
    const int ow, const int left, const int scale, const int mode)
{
  /* output columns [x0, x1) read the unpadded, upsampled row */
  int x0 = clamp (left, 0, ow), x1 = clamp (left + w * scale, 0, ow);

  if (scale == 1) {
    for (int x = x0; x < x1; x++)
      d[x - left] += s[x];
  } else {
    /* input pixels [i0, i1) have all their children inside */
    int i0 = (x0 - left + scale - 1) / scale, i1 = (x1 - left) / scale;

    for (int x = x0; x < left + i0 * scale; x++)
      d[(x - left) / scale] += s[x];
    for (int i = i0; i < i1; i++) {
      float t = 0.0f;

      for (int j = 0; j < scale; j++)
        t += s[left + i * scale + j];
      d[i] += t;
    }
    for (int x = max (left + i1 * scale, x0); x < x1; x++)
      d[(x - left) / scale] += s[x];
  }
  for (int x = 0; x < x0; x++) {
    int sx = bwd_pad_map (x - left, w * scale, mode);

    if (sx >= 0)
      d[sx / scale] += s[x];
  }
  for (int x = x1; x < ow; x++) {
    int sx = bwd_pad_map (x - left, w * scale, mode);

    if (sx >= 0)
      d[sx / scale] += s[x];
  }
}

/* din (planes, h, w) from dout (planes, oh, ow); global (h, planes).  The
 * output rows that read input row iy: the scale rows of its copy, then any
 * padding row that maps to it, in increasing order. */
__kernel void
pad_bwd_row (__global const float *dout, __global float *din,
    const int planes, const int h, const int w, const int oh, const int ow,
    const int top, const int left, const int scale, const int mode)
{
  const int iy = get_global_id (0);
  const int p = get_global_id (1);

  if (iy >= h || p >= planes)
    return;
  {
    __global float *d = din + ((size_t) p * h + iy) * w;
    __global const float *plane = dout + (size_t) p * oh * ow;
    int y0 = clamp (top, 0, oh), y1 = clamp (top + h * scale, 0, oh);

    for (int ix = 0; ix < w; ix++)
      d[ix] = 0.0f;
    for (int y = 0; y < y0; y++)
      if (bwd_pad_map (y - top, h * scale, mode) / scale == iy
          && bwd_pad_map (y - top, h * scale, mode) >= 0)
        pad_bwd_add_row (plane + (size_t) y * ow, d, w, ow, left, scale,
            mode);
    for (int j = 0; j < scale; j++) {
      int y = top + iy * scale + j;

      if (y >= y0 && y < y1)
        pad_bwd_add_row (plane + (size_t) y * ow, d, w, ow, left, scale,
            mode);
    }
    for (int y = y1; y < oh; y++)
      if (bwd_pad_map (y - top, h * scale, mode) / scale == iy
          && bwd_pad_map (y - top, h * scale, mode) >= 0)
        pad_bwd_add_row (plane + (size_t) y * ow, d, w, ow, left, scale,
            mode);
  }
}

/* out (planes, oh, ow) = in (planes, h, w) padded by (top, left, ...) with
 * @mode (negative pads crop); global (oh, planes). */
__kernel void
pad_fwd_row (__global const float *in, __global float *out, const int planes,
    const int h, const int w, const int oh, const int ow, const int top,
    const int left, const int mode)
{
  const int y = get_global_id (0);
  const int p = get_global_id (1);

  if (y >= oh || p >= planes)
    return;
  {
    __global float *d = out + ((size_t) p * oh + y) * ow;
    int sy = bwd_pad_map (y - top, h, mode);
    int x0 = clamp (left, 0, ow), x1 = clamp (left + w, 0, ow), x;
    __global const float *s;

    if (sy < 0) {
      for (x = 0; x + 16 <= ow; x += 16)
        BWD_STORE16 ((float16) (0.0f), d + x);
      for (; x < ow; x++)
        d[x] = 0.0f;
      return;
    }
    s = in + ((size_t) p * h + sy) * w;
    for (x = 0; x < x0; x++) {
      int sx = bwd_pad_map (x - left, w, mode);

      d[x] = sx < 0 ? 0.0f : s[sx];
    }
    for (x = x0; x + 16 <= x1; x += 16)
      BWD_STORE16 (BWD_LOAD16 (s + x - left), d + x);
    for (; x < x1; x++)
      d[x] = s[x - left];
    for (x = x1; x < ow; x++) {
      int sx = bwd_pad_map (x - left, w, mode);

      d[x] = sx < 0 ? 0.0f : s[sx];
    }
  }
}

/* ---- instance norm ------------------------------------------------------ */

#define IN_GAMMA 1
#define IN_DIN 2
#define IN_DRES 4

/* global: (planes) */
__kernel void
instnorm_bwd_plane (__global const float *in, __global const float *out,
    __global const float *dout, __global float *din, __global float *dres,
    __global const float *gamma, __global float *partial, const int channels,
    const int hw, const float eps, const int act, const float alpha,
    const int planes, const int flags)
{
  const int p = get_global_id (0);

  if (p >= planes)
    return;
  {
    size_t off = (size_t) p * hw;
    __global const float *x = in + off;
    __global const float *y = out + off;
    __global const float *dy = dout + off;
    const int nv = hw / 16;
    float16 acc = (float16) (0.0f), acc2;
    float s = 0.0f, s2, mean, var, inv, k;

    for (int i = 0; i < nv; i++)
      acc += vload16 (i, x);
    for (int i = nv * 16; i < hw; i++)
      s += x[i];
    mean = (bwd_sum16 (acc) + s) / hw;

    acc = (float16) (0.0f);
    s = 0.0f;
    for (int i = 0; i < nv; i++) {
      float16 d = vload16 (i, x) - mean;

      acc = mad (d, d, acc);
    }
    for (int i = nv * 16; i < hw; i++)
      s += (x[i] - mean) * (x[i] - mean);
    var = (bwd_sum16 (acc) + s) / hw;
    inv = rsqrt (var + eps);

    /* s = sum dz, s2 = sum dz * (x - mean) */
    acc = (float16) (0.0f);
    acc2 = (float16) (0.0f);
    s = 0.0f;
    s2 = 0.0f;
    for (int i = 0; i < nv; i++) {
      float16 dz = vload16 (i, dy);

      if (act != ACT_NONE)
        dz *= ncl_act_grad16 (act, alpha, vload16 (i, y));
      acc += dz;
      acc2 = mad (dz, vload16 (i, x) - mean, acc2);
    }
    for (int i = nv * 16; i < hw; i++) {
      float dz = dy[i];

      if (act != ACT_NONE)
        dz *= ncl_act_grad (act, alpha, y[i]);
      s += dz;
      s2 += dz * (x[i] - mean);
    }
    s += bwd_sum16 (acc);
    s2 = (s2 + bwd_sum16 (acc2)) * inv;
    partial[2 * p] = s;
    partial[2 * p + 1] = s2;

    k = inv * ((flags & IN_GAMMA) ? gamma[p % channels] : 1.0f);
    s /= hw;
    s2 = s2 * inv / hw;
    if (!(flags & (IN_DIN | IN_DRES)))
      return;
    for (int i = 0; i < nv; i++) {
      float16 dz = vload16 (i, dy);

      if (act != ACT_NONE)
        dz *= ncl_act_grad16 (act, alpha, vload16 (i, y));
      if (flags & IN_DRES)
        vstore16 (dz, i, dres + off);
      if (flags & IN_DIN)
        vstore16 (k * (dz - s - (vload16 (i, x) - mean) * s2), i,
            din + off);
    }
    for (int i = nv * 16; i < hw; i++) {
      float dz = dy[i];

      if (act != ACT_NONE)
        dz *= ncl_act_grad (act, alpha, y[i]);
      if (flags & IN_DRES)
        dres[off + i] = dz;
      if (flags & IN_DIN)
        din[off + i] = k * (dz - s - (x[i] - mean) * s2);
    }
  }
}

/* global: (channels) */
__kernel void
instnorm_bwd_params (__global const float *partial, __global float *dgamma,
    __global float *dbeta, const int n, const int channels, const int which)
{
  const int c = get_global_id (0);

  if (c >= channels)
    return;
  {
    float sb = 0.0f, sg = 0.0f;

    for (int b = 0; b < n; b++) {
      sb += partial[2 * (b * channels + c)];
      sg += partial[2 * (b * channels + c) + 1];
    }
    if (which & 1)
      dgamma[c] += sg;
    if (which & 2)
      dbeta[c] += sb;
  }
}

/* ---- pooling ------------------------------------------------------------ */

/* global: (w, h, planes) */
__kernel void
pool_bwd (__global const float *in, __global const float *dout,
    __global float *din, const int planes, const int h, const int w,
    const int oh, const int ow, const int kh, const int kw, const int sh,
    const int sw, const int pt, const int pl, const int is_max)
{
  const int ix = get_global_id (0);
  const int iy = get_global_id (1);
  const int p = get_global_id (2);

  if (ix >= w || iy >= h || p >= planes)
    return;
  {
    __global const float *src = in + (size_t) p * h * w;
    __global const float *dy = dout + (size_t) p * oh * ow;
    /* windows [oy * sh - pt, + kh) that contain iy */
    int ty = iy + pt - kh + 1, tx = ix + pl - kw + 1;
    int oy0 = ty > 0 ? (ty + sh - 1) / sh : 0;
    int ox0 = tx > 0 ? (tx + sw - 1) / sw : 0;
    int oy1 = min ((iy + pt) / sh, oh - 1);
    int ox1 = min ((ix + pl) / sw, ow - 1);
    float sum = 0.0f;

    for (int oy = oy0; oy <= oy1; oy++) {
      int y0 = max (oy * sh - pt, 0), y1 = min (oy * sh - pt + kh, h);

      for (int ox = ox0; ox <= ox1; ox++) {
        int x0 = max (ox * sw - pl, 0), x1 = min (ox * sw - pl + kw, w);

        if (is_max) {
          float m = -INFINITY;
          int arg = -1;

          for (int y = y0; y < y1; y++)
            for (int x = x0; x < x1; x++)
              if (src[y * w + x] > m) {
                m = src[y * w + x];
                arg = y * w + x;
              }
          if (arg == iy * w + ix)
            sum += dy[oy * ow + ox];
        } else {
          sum += dy[oy * ow + ox] / ((y1 - y0) * (x1 - x0));
        }
      }
    }
    din[((size_t) p * h + iy) * w + ix] = sum;
  }
}

/* k x k windows at stride k without padding; global (oh, planes).  Input
 * rows [oy k, oy k + k) belong to this work-item alone (the last work-item
 * also clears the rows past oh k). */
__kernel void
pool_max_bwd_tiled (__global const float *in, __global const float *dout,
    __global float *din, const int planes, const int h, const int w,
    const int oh, const int ow, const int k)
{
  const int oy = get_global_id (0);
  const int p = get_global_id (1);

  if (oy >= oh || p >= planes)
    return;
  {
    __global const float *src = in + (size_t) p * h * w;
    __global const float *dy = dout + ((size_t) p * oh + oy) * ow;
    __global float *dst = din + (size_t) p * h * w;
    int y0 = oy * k, y1 = oy == oh - 1 ? h : y0 + k;

    for (int y = y0; y < y1; y++)
      for (int x = 0; x < w; x++)
        dst[y * w + x] = 0.0f;
    for (int ox = 0; ox < ow; ox++) {
      float m = -INFINITY;
      int arg = -1;

      for (int y = y0; y < y0 + k; y++)
        for (int x = ox * k; x < ox * k + k; x++)
          if (src[y * w + x] > m) {
            m = src[y * w + x];
            arg = y * w + x;
          }
      if (arg >= 0)
        dst[arg] = dy[ox];
    }
  }
}

/* ---- fully connected ---------------------------------------------------- */

/* global: (ceil (in_f / 16), n) */
__kernel void
fc_bwd_data (__global const float *dout, __global const float *weight,
    __global float *din, const int n, const int in_f, const int out_f)
{
  const int i0 = get_global_id (0) * 16;
  const int b = get_global_id (1);

  if (i0 >= in_f || b >= n)
    return;
  {
    __global const float *dy = dout + (size_t) b * out_f;
    float16 acc = (float16) (0.0f);

    if (i0 + 16 <= in_f) {
      for (int o = 0; o < out_f; o++)
        acc = fma ((float16) (dy[o]),
            BWD_LOAD16 (weight + (size_t) o * in_f + i0), acc);
    } else {
      float t[16];

      for (int l = 0; l < 16; l++)
        t[l] = 0.0f;
      for (int o = 0; o < out_f; o++)
        for (int l = 0; i0 + l < in_f && l < 16; l++)
          t[l] = fma (dy[o], weight[(size_t) o * in_f + i0 + l], t[l]);
      acc = vload16 (0, t);
    }
    bwd_store16 (din + (size_t) b * in_f + i0, acc, in_f - i0);
  }
}

/* global: (ceil (in_f / 16), out_f); has: 1 = dweight, 2 = dbias */
__kernel void
fc_bwd_weights (__global const float *in, __global const float *dout,
    __global float *dweight, __global float *dbias, const int n,
    const int in_f, const int out_f, const int has)
{
  const int i0 = get_global_id (0) * 16;
  const int o = get_global_id (1);

  if (i0 >= in_f || o >= out_f)
    return;
  if ((has & 1) && i0 + 16 <= in_f) {
    float16 acc = (float16) (0.0f);
    __global float *dw = dweight + (size_t) o * in_f + i0;

    for (int b = 0; b < n; b++)
      acc = fma ((float16) (dout[b * out_f + o]),
          BWD_LOAD16 (in + (size_t) b * in_f + i0), acc);
    vstore16 (vload16 (0, dw) + acc, 0, dw);
  } else if (has & 1) {
    for (int i = i0; i < in_f; i++) {
      float s = 0.0f;

      for (int b = 0; b < n; b++)
        s = fma (dout[b * out_f + o], in[(size_t) b * in_f + i], s);
      dweight[(size_t) o * in_f + i] += s;
    }
  }
  if ((has & 2) && i0 == 0) {
    float s = 0.0f;

    for (int b = 0; b < n; b++)
      s += dout[b * out_f + o];
    dbias[o] += s;
  }
}

/* ---- conv2d: generic kernels, sums ------------------------------------- */

/* Zero padding folded in: taps that fall outside dout are skipped.
 * global: (w, h, n * cin) */
__kernel void
conv_bwd_data_generic (__global const float *dz, __global const float *wt,
    __global float *din, const int n, const int cin, const int h,
    const int w, const int cout, const int oh, const int ow, const int kh,
    const int kw, const int sh, const int sw, const int dil, const int pt,
    const int pl, const int groups)
{
  const int ix = get_global_id (0);
  const int iy = get_global_id (1);
  const int z = get_global_id (2);

  if (ix >= w || iy >= h || z >= n * cin)
    return;
  {
    const int b = z / cin, ci = z % cin;
    const int cin_g = cin / groups, cout_g = cout / groups;
    const int g = ci / cin_g, cl = ci % cin_g;
    float sum = 0.0f;

    for (int j = 0; j < cout_g; j++) {
      int co = g * cout_g + j;
      __global const float *wc = wt + ((size_t) co * cin_g + cl) * kh * kw;
      __global const float *plane = dz + ((size_t) b * cout + co) * oh * ow;

      for (int ky = 0; ky < kh; ky++) {
        int ty = iy + pt - ky * dil;
        int oy = ty / sh;

        if (ty < 0 || ty != oy * sh || oy >= oh)
          continue;
        for (int kx = 0; kx < kw; kx++) {
          int tx = ix + pl - kx * dil;
          int ox = tx / sw;

          if (tx < 0 || tx != ox * sw || ox >= ow)
            continue;
          sum = fma (wc[ky * kw + kx], plane[oy * ow + ox], sum);
        }
      }
    }
    din[(size_t) z * h * w + (size_t) iy * w + ix] = sum;
  }
}

/* dw[i] += sum over chunks of partial[c][i]; global: (count) */
__kernel void
conv_bwd_reduce (__global const float *partial, __global float *dw,
    const int count, const int chunks)
{
  const int i = get_global_id (0);

  if (i >= count)
    return;
  {
    float s = 0.0f;

    for (int c = 0; c < chunks; c++)
      s += partial[(size_t) c * count + i];
    dw[i] += s;
  }
}

/* dw[co][cl][ky][kx] += sum over b, oy, ox of dz * x at (oy * sh + ky * dil,
 * ox * sw + kx * dil) of the (padded) input (n, cin, hp, wp).
 * global: (kh * kw, cin_g, cout) */
__kernel void
conv_bwd_weights_generic (__global const float *x, __global const float *dz,
    __global float *dw, const int n, const int cin, const int hp,
    const int wp, const int cout, const int oh, const int ow, const int kh,
    const int kw, const int sh, const int sw, const int dil,
    const int groups)
{
  const int tap = get_global_id (0);
  const int cl = get_global_id (1);
  const int co = get_global_id (2);
  const int cin_g = cin / groups, cout_g = cout / groups;

  if (tap >= kh * kw || cl >= cin_g || co >= cout)
    return;
  {
    const int ky = tap / kw, kx = tap % kw;
    const int ci = (co / cout_g) * cin_g + cl;
    float sum = 0.0f;

    for (int b = 0; b < n; b++) {
      __global const float *xp = x + ((size_t) b * cin + ci) * hp * wp
          + ky * dil * wp + kx * dil;
      __global const float *dp = dz + ((size_t) b * cout + co) * oh * ow;

      for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++)
          sum = fma (dp[oy * ow + ox], xp[oy * sh * wp + ox * sw], sum);
    }
    dw[((size_t) co * cin_g + cl) * kh * kw + tap] += sum;
  }
}

/* db[co] += sum over the batch of dz's plane co; global: (cout) */
__kernel void
conv_bwd_bias (__global const float *dz, __global float *db, const int n,
    const int cout, const int hw)
{
  const int co = get_global_id (0);

  if (co >= cout)
    return;
  {
    const int nv = hw / 16;
    float16 acc = (float16) (0.0f);
    float s = 0.0f;

    for (int b = 0; b < n; b++) {
      __global const float *p = dz + ((size_t) b * cout + co) * hw;

      for (int i = 0; i < nv; i++)
        acc += vload16 (i, p);
      for (int i = nv * 16; i < hw; i++)
        s += p[i];
    }
    db[co] += s + bwd_sum16 (acc);
  }
}

#else /* BWD_TILED */

/* ---- conv2d: register-tiled kernels (built with -DBWD_TILED) ----------- */

/* global: (cin_padded * cout * kh * KW) */
__kernel void
conv_bwd_pack_w (__global const float *w, __global float *wp, const int cin,
    const int cout, const int kh, const int total)
{
  const int i = get_global_id (0);

  if (i >= total)
    return;
  {
    /* i = (((ct * cout + co) * kh + ky) * KW + kx) * CI_TILE + j */
    int j = i % CI_TILE;
    int r = i / CI_TILE;
    int kx = r % KW;
    int ky = (r / KW) % kh;
    int co = (r / (KW * kh)) % cout;
    int ci = (r / (KW * kh * cout)) * CI_TILE + j;

    wp[i] = ci < cin ? w[(((size_t) co * cin + ci) * kh + ky) * KW + kx]
        : 0.0f;
  }
}

/* dzp: dout zero-padded to (n, cout, hp, wpd), dout's (0, 0) at (mt, ml);
 * wp: conv_bwd_pack_w.  Input pixel ix = ix0 + SW * l + px of phase px
 * gets tap kx with (px + pl - kx) = 0 mod SW from dout column
 * ix0 / SW + l + (px + pl - kx) / SW: 16 consecutive columns per tap and
 * vector, for lanes l of vector v at l + 16 v.
 * global: (cin_padded / CI_TILE, ceil (w / (16 * SW * PXV)), n * h) */
__kernel void
conv_bwd_data_direct (__global const float *dzp, __global const float *wp,
    __global float *din, const int n, const int cin, const int h,
    const int w, const int cout, const int kh, const int sh, const int pt,
    const int pl, const int hp, const int wpd, const int mt, const int ml)
{
  const int ct = get_global_id (0);
  const int ix0 = get_global_id (1) * (16 * SW * PXV);
  const int zy = get_global_id (2);

  if (ct * CI_TILE >= cin || ix0 >= w || zy >= n * h)
    return;
  {
    const int b = zy / h, iy = zy % h;
    const int ky0 = (iy + pt) % sh;
    __global const float *wt = wp + (size_t) ct * cout * kh * KW * CI_TILE;
    __global const float *base = dzp + (size_t) b * cout * hp * wpd + ml
        + ix0 / SW;
    /* acc[(j * SW + px) * PXV + v] */
    float16 acc[CI_TILE * SW * PXV];

#pragma unroll
    for (int j = 0; j < CI_TILE * SW * PXV; j++)
      acc[j] = (float16) (0.0f);

    for (int co = 0; co < cout; co++) {
      __global const float *plane = base + (size_t) co * hp * wpd;

      for (int ky = ky0; ky < kh; ky += sh) {
        __global const float *row = plane
            + (size_t) ((iy + pt - ky) / sh + mt) * wpd;
        __global const float *wk = wt + ((size_t) co * kh + ky) * KW
            * CI_TILE;

#pragma unroll
        for (int kx = 0; kx < KW; kx++) {
          const int px = (kx + SW * KW - PLM) % SW;
          float16 x[PXV];

#pragma unroll
          for (int v = 0; v < PXV; v++)
            x[v] = BWD_LOAD16 (row + (px + pl - kx) / SW + 16 * v);
#pragma unroll
          for (int j = 0; j < CI_TILE; j++) {
            float16 wj = (float16) (wk[kx * CI_TILE + j]);

#pragma unroll
            for (int v = 0; v < PXV; v++)
              acc[(j * SW + px) * PXV + v] = fma (wj, x[v],
                  acc[(j * SW + px) * PXV + v]);
          }
        }
      }
    }

#pragma unroll
    for (int j = 0; j < CI_TILE; j++) {
      int ci = ct * CI_TILE + j;

      if (ci < cin) {
        __global float *op = din + (((size_t) b * cin + ci) * h + iy) * w
            + ix0;
#if SW == 1
#pragma unroll
        for (int v = 0; v < PXV; v++)
          if (w - ix0 > 16 * v)
            bwd_store16 (op + 16 * v, acc[j * PXV + v], w - ix0 - 16 * v);
#else
#pragma unroll
        for (int v = 0; v < PXV; v++) {
          /* interleave the two phases: pixels ix0 + 32 v + (0..31) */
          float16 a0 = acc[(j * 2) * PXV + v], a1 = acc[(j * 2 + 1) * PXV + v];
          float16 q0 = shuffle2 (a0, a1, (uint16) (0, 16, 1, 17, 2, 18, 3, 19,
                  4, 20, 5, 21, 6, 22, 7, 23));
          float16 q1 = shuffle2 (a0, a1, (uint16) (8, 24, 9, 25, 10, 26, 11,
                  27, 12, 28, 13, 29, 14, 30, 15, 31));
          int left = w - ix0 - 32 * v;

          if (left > 0)
            bwd_store16 (op + 32 * v, q0, left);
          if (left > 16)
            bwd_store16 (op + 32 * v + 16, q1, left - 16);
        }
#endif
      }
    }
  }
}

/* 16 input pixels for output lanes l = 0..15 at x = l * SW from @p. */
inline float16
bwd_load_px (__global const float *p)
{
#if SW == 1
  return BWD_LOAD16 (p);
#else
  float16 a = BWD_LOAD16 (p);
  float16 c = BWD_LOAD16 (p + 16);

  return shuffle2 (a, c, (uint16) (0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20,
          22, 24, 26, 28, 30));
#endif
}

/* x: the (padded) input (n, cin, hp, wp), read as a valid convolution with
 * stride (sh, SW); dz (n, cout, oh, ow).  A work-item takes CO_T output
 * channels of one group, CI_T of its input channels and one kernel row ky,
 * and sums over output rows [r0, r1) of the flattened (n * oh) rows; lanes
 * are 16 output pixels, summed at the end into
 * partial[chunk][cout][cin_g][kh][KW].
 * global: (groups * ceil (cout_g / CO_T), ceil (cin_g / CI_T) * kh,
 * chunks) */
__kernel void
conv_bwd_weights (__global const float *x, __global const float *dz,
    __global float *partial, const int n, const int cin, const int hp,
    const int wp, const int cout, const int oh, const int ow, const int kh,
    const int sh, const int groups, const int rows_per_chunk)
{
  const int t = get_global_id (0);
  const int u = get_global_id (1);
  const int chunk = get_global_id (2);
  const int cin_g = cin / groups, cout_g = cout / groups;
  const int tiles_g = (cout_g + CO_T - 1) / CO_T;
  const int ci_tiles = (cin_g + CI_T - 1) / CI_T;

  if (t >= groups * tiles_g || u >= ci_tiles * kh
      || chunk * rows_per_chunk >= n * oh)
    return;
  {
    const int g = t / tiles_g;
    const int co0 = g * cout_g + (t % tiles_g) * CO_T;
    const int co_end = g * cout_g + cout_g;
    const int ky = u % kh;
    const int cl0 = (u / kh) * CI_T;
    const int r0 = chunk * rows_per_chunk;
    const int r1 = min (r0 + rows_per_chunk, n * oh);
    float16 acc[CO_T * CI_T * KW];

#pragma unroll
    for (int j = 0; j < CO_T * CI_T * KW; j++)
      acc[j] = (float16) (0.0f);

    /* rows of one image at a time: the row pointers then just advance */
    for (int r = r0; r < r1;) {
      const int b = r / oh;
      int oy = r % oh;
      const int oy_end = min (oh, oy + (r1 - r));
      __global const float *drow[CO_T];
      __global const float *xrow[CI_T];

#pragma unroll
      for (int j = 0; j < CO_T; j++)
        drow[j] = dz + (((size_t) b * cout + min (co0 + j, co_end - 1)) * oh
            + oy) * ow;
#pragma unroll
      for (int i = 0; i < CI_T; i++)
        xrow[i] = x + (((size_t) b * cin + g * cin_g + min (cl0 + i,
                    cin_g - 1)) * hp + oy * sh + ky) * wp;

      for (; oy < oy_end; oy++, r++) {
        for (int ox0 = 0; ox0 < ow; ox0 += 16) {
          float16 d[CO_T];

          if (ox0 + 16 <= ow) {
#pragma unroll
            for (int j = 0; j < CO_T; j++)
              d[j] = BWD_LOAD16 (drow[j] + ox0);
          } else {
            /* lanes past the row end must not count */
            int16 live = (int16) (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
                13, 14, 15) < (int16) (ow - ox0);
#pragma unroll
            for (int j = 0; j < CO_T; j++)
              d[j] = select ((float16) (0.0f), BWD_LOAD16 (drow[j] + ox0),
                  live);
          }
#pragma unroll
          for (int i = 0; i < CI_T; i++) {
#pragma unroll
            for (int kx = 0; kx < KW; kx++) {
              float16 xv = bwd_load_px (xrow[i] + ox0 * SW + kx);

#pragma unroll
              for (int j = 0; j < CO_T; j++)
                acc[(j * CI_T + i) * KW + kx] =
                    fma (d[j], xv, acc[(j * CI_T + i) * KW + kx]);
            }
          }
        }
#pragma unroll
        for (int j = 0; j < CO_T; j++)
          drow[j] += ow;
#pragma unroll
        for (int i = 0; i < CI_T; i++)
          xrow[i] += sh * wp;
      }
    }

#pragma unroll
    for (int j = 0; j < CO_T; j++) {
#pragma unroll
      for (int i = 0; i < CI_T; i++) {
        if (co0 + j < co_end && cl0 + i < cin_g) {
          __global float *pp = partial + ((((size_t) chunk * cout + co0 + j)
                  * cin_g + cl0 + i) * kh + ky) * KW;

#pragma unroll
          for (int kx = 0; kx < KW; kx++)
            pp[kx] = bwd_sum16 (acc[(j * CI_T + i) * KW + kx]);
        }
      }
    }
  }
}

#endif /* BWD_TILED */
