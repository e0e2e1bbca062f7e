/* conv.cl: 2-D convolution, NCHW float32, plus the padding it may need.
 *
 * Every conv kernel here computes a VALID convolution (no padding): the host
 * pads into a scratch tensor first with conv_pad when the layer has padding.
 * out[b][co][oy][ox] = act (bias[co] + sum_{ci,ky,kx}
 *     w[co][ci][ky][kx] * in[b][g * cin_g + ci][oy * sh + ky * dil][ox * sw + kx * dil])
 *
 * Kernels:
 *   conv_pad        zero / reflect / edge padding, one work-item per pixel.
 *   conv2d_generic  anything: groups (incl. depthwise), any kernel, stride,
 *                   dilation.  One work-item = COT output channels of one
 *                   group x 16 consecutive output pixels of one row; weights
 *                   in the original (cout, cin / groups, kh, kw) layout.
 *   conv2d_direct   groups == 1, dilation 1, stride_w 1 or 2.  One work-item
 *                   = a register tile of CO_TILE output channels x PXV * 16
 *                   consecutive output pixels of one row (float16
 *                   accumulators).  Weights packed as
 *                   [cout / CO_TILE][cin][kh][KW][CO_TILE] (cout zero-padded),
 *                   so the CO_TILE weights of one tap are contiguous and each
 *                   is broadcast over the pixel vectors.  Work-item order:
 *                   channel tile fastest, so neighbours share input rows.
 *
 * Tunables (build options):
 *   COT       conv2d_generic output channels per work-item (default 4).
 *   CO_TILE   conv2d_direct output channels per work-item (default 16).
 *   PXV       conv2d_direct 16-pixel vectors per work-item (default 1).
 *   KW        conv2d_direct kernel width, compile-time (default 3).
 *   STRIDE_W  conv2d_direct horizontal stride, 1 or 2 (default 1).
 */

#ifndef COT
#define COT 4
#endif
#ifndef CO_TILE
#define CO_TILE 16
#endif
#ifndef PXV
#define PXV 1
#endif
#ifndef KW
#define KW 3
#endif
#ifndef STRIDE_W
#define STRIDE_W 1
#endif

#define PAD_ZERO 0
#define PAD_REFLECT 1
#define PAD_EDGE 2

inline float16
conv_act16 (int act, float alpha, float16 x)
{
  switch (act) {
    case ACT_RELU:
      return fmax (x, (float16) (0.0f));
    case ACT_LEAKY_RELU:
      return select (x * alpha, x, x > (float16) (0.0f));
    case ACT_SIGMOID:
      return (float16) (1.0f) / ((float16) (1.0f) + exp (-x));
    case ACT_TANH:
      return tanh (x);
    default:
      return x;
  }
}

/* Maps a possibly out-of-range coordinate into [0, n) for reflect / edge
 * padding; returns -1 for zero padding outside the image. */
inline int
conv_pad_index (int i, int n, int mode)
{
  if (i >= 0 && i < n)
    return i;
  if (mode == PAD_ZERO)
    return -1;
  if (mode == PAD_EDGE || n == 1)
    return clamp (i, 0, n - 1);
  /* reflect without repeating the edge: period 2 (n - 1) */
  {
    int period = 2 * (n - 1);
    int m = i % period;

    if (m < 0)
      m += period;
    return m < n ? m : period - m;
  }
}

/* in: (planes, h, w); out: (planes, oh, ow) with the image at (top, left). */
__kernel void
conv_pad (__global const float *in, __global float *out, int planes, int h,
    int w, int oh, int ow, int top, int left, int mode)
{
  int ox = get_global_id (0);
  int oy = get_global_id (1);
  int p = get_global_id (2);

  if (ox >= ow || oy >= oh || p >= planes)
    return;

  {
    int iy = conv_pad_index (oy - top, h, mode);
    int ix = conv_pad_index (ox - left, w, mode);
    float v = 0.0f;

    if (iy >= 0 && ix >= 0)
      v = in[((size_t) p * h + iy) * w + ix];
    out[((size_t) p * oh + oy) * ow + ox] = v;
  }
}

/* Loads 16 input pixels x = ox0 + l (l = 0..15) at stride @s starting at
 * @p, clamping lanes past @ow to the last valid pixel (no over-read). */
inline float16
conv_gather16 (__global const float *p, int ox0, int ow, int s)
{
  float v[16];

  for (int l = 0; l < 16; l++)
    v[l] = p[min (ox0 + l, ow - 1) * s];
  return (float16) (v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7],
      v[8], v[9], v[10], v[11], v[12], v[13], v[14], v[15]);
}

/* Stores the first @n (<= 16) lanes of @v at @p. */
inline void
conv_store16 (__global float *p, float16 v, int n)
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

/* global: (groups * ceil (cout_g / COT), ceil (ow / 16), n * oh) */
__kernel void
conv2d_generic (__global const float *in, __global const float *wt,
    __global const float *bias, __global float *out, int n, int cin, int h,
    int w, int cout, int oh, int ow, int kh, int kw, int sh, int sw, int dil,
    int groups, int act, float alpha)
{
  int t = get_global_id (0);
  int ox0 = get_global_id (1) * 16;
  int zy = get_global_id (2);
  int cin_g = cin / groups;
  int cout_g = cout / groups;
  int tiles_g = (cout_g + COT - 1) / COT;

  if (t >= groups * tiles_g || ox0 >= ow || zy >= n * oh)
    return;

  {
    int g = t / tiles_g;
    int co0 = g * cout_g + (t % tiles_g) * COT;
    int co_end = g * cout_g + cout_g;
    int b = zy / oh;
    int oy = zy % oh;
    int full = ox0 + 16 <= ow && sw == 1;
    __global const float *wrow[COT];
    float16 acc[COT];

    for (int j = 0; j < COT; j++) {
      acc[j] = (float16) (0.0f);
      wrow[j] = wt + (size_t) min (co0 + j, co_end - 1) * cin_g * kh * kw;
    }

    for (int ci = 0; ci < cin_g; ci++) {
      for (int ky = 0; ky < kh; ky++) {
        __global const float *row = in + (((size_t) b * cin + g * cin_g + ci)
            * h + oy * sh + ky * dil) * w;
        int wo = (ci * kh + ky) * kw;

        for (int kx = 0; kx < kw; kx++) {
          float16 x;

          if (full)
            x = vload16 (0, row + ox0 + kx * dil);
          else
            x = conv_gather16 (row + kx * dil, ox0, ow, sw);
          for (int j = 0; j < COT; j++)
            acc[j] = fma ((float16) (wrow[j][wo + kx]), x, acc[j]);
        }
      }
    }

    for (int j = 0; j < COT; j++) {
      int co = co0 + j;

      if (co < co_end) {
        float16 v = conv_act16 (act, alpha, acc[j] + bias[co]);

        conv_store16 (out + (((size_t) b * cout + co) * oh + oy) * ow + ox0,
            v, ow - ox0);
      }
    }
  }
}

/* 16 input pixels for output lanes l = 0..15 at x = l * STRIDE_W from @p. */
inline float16
conv_load_px (__global const float *p)
{
#if STRIDE_W == 1
  return vload16 (0, p);
#else
  float16 a = vload16 (0, p);
  float16 c = vload16 (0, p + 16);

  return shuffle2 (a, c, (uint16) (0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22,
          24, 26, 28, 30));
#endif
}

/* global: (cout_padded / CO_TILE, ceil (ow / (16 * PXV)), n * oh);
 * wt: [cout_padded / CO_TILE][cin][kh][KW][CO_TILE]; bias: (cout_padded). */
__kernel void
conv2d_direct (__global const float *in, __global const float *wt,
    __global const float *bias, __global float *out, int n, int cin, int h,
    int w, int cout, int oh, int ow, int kh, int sh, int act, float alpha)
{
  int ct = get_global_id (0);
  int ox0 = get_global_id (1) * (16 * PXV);
  int zy = get_global_id (2);

  if (ct * CO_TILE >= cout || ox0 >= ow || zy >= n * oh)
    return;

  {
    int b = zy / oh;
    int oy = zy % oh;
    int full = ox0 + 16 * PXV <= ow;
    __global const float *wp = wt + (size_t) ct * cin * kh * KW * CO_TILE;
    __global const float *ip = in + ((size_t) b * cin * h + oy * sh) * w
        + ox0 * STRIDE_W;
    float16 acc[CO_TILE * PXV];

#pragma unroll
    for (int j = 0; j < CO_TILE * PXV; j++)
      acc[j] = (float16) (0.0f);

    if (full) {
      for (int ci = 0; ci < cin; ci++) {
        for (int ky = 0; ky < kh; ky++) {
          __global const float *row = ip + ((size_t) ci * h + ky) * w;

#pragma unroll
          for (int kx = 0; kx < KW; kx++) {
            float16 x[PXV];

#pragma unroll
            for (int v = 0; v < PXV; v++)
              x[v] = conv_load_px (row + kx + v * 16 * STRIDE_W);
#pragma unroll
            for (int j = 0; j < CO_TILE; j++) {
              float16 wj = (float16) (wp[j]);

#pragma unroll
              for (int v = 0; v < PXV; v++)
                acc[j * PXV + v] = fma (wj, x[v], acc[j * PXV + v]);
            }
            wp += CO_TILE;
          }
        }
      }
    } else {
      /* the last tile of a row: clamp lanes past ow instead of over-reading */
      for (int ci = 0; ci < cin; ci++) {
        for (int ky = 0; ky < kh; ky++) {
          __global const float *row = in + (((size_t) b * cin + ci) * h
              + oy * sh + ky) * w;

          for (int kx = 0; kx < KW; kx++) {
            float16 x[PXV];

#pragma unroll
            for (int v = 0; v < PXV; v++)
              x[v] = conv_gather16 (row + kx, ox0 + v * 16, ow, STRIDE_W);
#pragma unroll
            for (int j = 0; j < CO_TILE; j++) {
              float16 wj = (float16) (wp[j]);

#pragma unroll
              for (int v = 0; v < PXV; v++)
                acc[j * PXV + v] = fma (wj, x[v], acc[j * PXV + v]);
            }
            wp += CO_TILE;
          }
        }
      }
    }

#pragma unroll
    for (int j = 0; j < CO_TILE; j++) {
      int co = ct * CO_TILE + j;

      if (co < cout) {
        __global float *op = out + (((size_t) b * cout + co) * oh + oy) * ow;
        float bj = bias[co];

#pragma unroll
        for (int v = 0; v < PXV; v++) {
          int x0 = ox0 + v * 16;

          if (x0 < ow)
            conv_store16 (op + x0, conv_act16 (act, alpha,
                    acc[j * PXV + v] + bj), ow - x0);
        }
      }
    }
  }
}
