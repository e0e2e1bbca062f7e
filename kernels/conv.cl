/* conv.cl: 2-D convolution, NCHW float32.
 *
 * The generic, direct and Winograd kernels compute a VALID convolution (no
 * padding): the host pads into a scratch tensor first (pad.cl) when the
 * layer has padding.  conv2d_dw and conv_im2col pad as they read.
 * out[b][co][oy][ox] = act (bias[co] + sum_{ci,ky,kx}
 *     w[co][ci][ky][kx] * in[b][g * cin_g + ci][oy * sh + ky * dil][ox * sw + kx * dil])
 *
 * Kernels:
 *   conv2d_generic  anything: groups (incl. depthwise), any kernel, stride,
 *                   dilation.  One work-item = COT output channels of one
 *                   group x 16 consecutive output pixels of one row; weights
 *                   in the original (cout, cin / groups, kh, kw) layout.
 *   conv2d_direct   groups 1, dilation 1, stride_w 1 or 2.  One work-item =
 *                   a register tile of CO_TILE output channels x PXV * 16
 *                   consecutive output pixels of one row (float16
 *                   accumulators).  Weights packed as
 *                   [cout_padded / CO_TILE][cin][kh][KW][CO_TILE], so the
 *                   CO_TILE weights of one tap are contiguous and each is
 *                   broadcast over the pixel vectors.  Channel tile fastest
 *                   in the work-item order, so neighbours share input rows.
 *   conv2d_wino4    Winograd F(4x4, 3x3), stride 1, groups 1 (see below).
 *   conv2d_dw       depthwise (groups = cin = cout), padding inside.
 *   conv_im2col, conv2d_gemm  conv as a GEMM over flattened output pixels.
 *   conv2d_chvec    groups 1, dilation 1, small maps: 32 output channels as
 *                   the vector lanes x CV_PX flattened output pixels, with
 *                   an optional residual added before the activation.
 *
 * All loads stay inside the input tensor: the last tile of a row clamps the
 * pixels past the row end.
 *
 * Tunables (build options):
 *   COT        conv2d_generic output channels per work-item (default 4).
 *   CO_TILE    conv2d_direct output channels per work-item (default 16).
 *   PXV        conv2d_direct 16-pixel vectors per work-item (default 1).
 *   KW         conv2d_direct kernel width, compile-time (default 3).
 *   STRIDE_W   conv2d_direct horizontal stride, 1 or 2 (default 1).
 *   WCO        conv2d_wino4 output channels per GEMM tile (default 16).
 *   WTV        conv2d_wino4 16-tile vectors per work-item (default 1).
 *   WINO_CIN   conv2d_wino4 input channels at most (sizes its __local
 *              buffer).
 *   CV_PX      conv2d_chvec output pixels per work-item (default 12).
 *   CONV_UNALIGNED  defined: unaligned float16 loads by pointer cast
 *              (clang, CPU devices); otherwise vload16.
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

/* Unaligned vector loads: PoCL's vload16 is assembled from 8-byte pieces and
 * permutes; a float16 type with 4-byte alignment gives one unaligned load.
 * The host sets CONV_UNALIGNED on CPU devices only. */
#if defined(__clang__) && defined(CONV_UNALIGNED)
typedef float16 __attribute__ ((aligned (4))) conv_float16_u;
#define CONV_LOAD16(p) (*(__global const conv_float16_u *) (p))
#define CONV_LOADP16(p) (*(const conv_float16_u *) (p))
#else
#define CONV_LOAD16(p) vload16 (0, (p))
#define CONV_LOADP16(p) vload16 (0, (p))
#endif

#define PAD_ZERO 0
#define PAD_REFLECT 1
#define PAD_EDGE 2

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
            x = CONV_LOAD16 (row + ox0 + kx * dil);
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
        float16 v = ncl_act16 (act, alpha, acc[j] + bias[co]);

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
  return CONV_LOAD16 (p);
#else
  float16 a = CONV_LOAD16 (p);
  float16 c = CONV_LOAD16 (p + 16);

  return shuffle2 (a, c, (uint16) (0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22,
          24, 26, 28, 30));
#endif
}

inline float16
conv_load_px_private (const float *p)
{
#if STRIDE_W == 1
  return CONV_LOADP16 (p);
#else
  return shuffle2 (CONV_LOADP16 (p), CONV_LOADP16 (p + 16), (uint16) (0, 2,
          4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30));
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
      /* the last tile of a row: copy each input row segment with the
       * pixels past the row clamped, then the same vector loop on it */
      float seg[16 * PXV * STRIDE_W + KW + 32];
      int x0 = ox0 * STRIDE_W;

      for (int ci = 0; ci < cin; ci++) {
        for (int ky = 0; ky < kh; ky++) {
          __global const float *row = in + (((size_t) b * cin + ci) * h
              + oy * sh + ky) * w;

          for (int i = 0; i < 16 * PXV * STRIDE_W + KW + 32; i++)
            seg[i] = row[min (x0 + i, w - 1)];
#pragma unroll
          for (int kx = 0; kx < KW; kx++) {
            float16 x[PXV];

#pragma unroll
            for (int v = 0; v < PXV; v++)
              x[v] = conv_load_px_private (seg + kx + v * 16 * STRIDE_W);
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
            conv_store16 (op + x0, ncl_act16 (act, alpha,
                    acc[j * PXV + v] + bj), ow - x0);
        }
      }
    }
  }
}

/* ---- Winograd F(4x4, 3x3), stride 1 ------------------------------------ */
/* Output tiles of 4x4 pixels are grouped in half-blocks of 8 tiles along a
 * tile row (32 output pixels); a work-item takes 2 * WTV consecutive
 * half-blocks (16 * WTV tiles, one tile per vector lane) and all output
 * channels:
 *   1. input transform V = B^T d B of its tiles for every input channel,
 *      into __local vbuf [36][cin][WTV] (float16, lanes = tiles);
 *   2. for each tile of WCO output channels and each of the 36 points, a
 *      register-tile GEMM M[co][tiles] = sum_ci U[co][ci] V[ci][tiles]
 *      (U broadcast, V vectors), into __local mbuf [36][WCO][WTV];
 *   3. output transform Y = A^T M A + bias, activation, store.
 * ut: [cout_padded / WCO][36][cin][WCO], U = G g G^T (packed on the host).
 * global: (ceil (half_blocks / (2 * WTV))), local (1). */
#ifndef WCO
#define WCO 16
#endif
#ifndef WTV
#define WTV 1
#endif
#ifndef WINO_CIN
#define WINO_CIN 128
#endif

/* (v0..v5) = B^T (d0..d5) */
#define WINO_BT(d0, d1, d2, d3, d4, d5, v0, v1, v2, v3, v4, v5) \
  do { \
    float16 a_ = d4 - 4.0f * d2, b_ = d3 - 4.0f * d1; \
    float16 c_ = d4 - d2, e_ = 2.0f * (d3 - d1); \
    v0 = 4.0f * d0 - 5.0f * d2 + d4; \
    v1 = a_ + b_; \
    v2 = a_ - b_; \
    v3 = c_ + e_; \
    v4 = c_ - e_; \
    v5 = 4.0f * d1 - 5.0f * d3 + d5; \
  } while (0)

/* (y0..y3) = A^T (m0..m5) */
#define WINO_AT(m0, m1, m2, m3, m4, m5, y0, y1, y2, y3) \
  do { \
    float16 s_ = m1 + m2, d_ = m1 - m2, s2_ = m3 + m4, d2_ = m3 - m4; \
    y0 = m0 + s_ + s2_; \
    y1 = d_ + 2.0f * d2_; \
    y2 = s_ + 4.0f * s2_; \
    y3 = d_ + 8.0f * d2_ + m5; \
  } while (0)

/* Locates half-block @hb: image @b, first output row @oy0, column @ox0. */
inline void
wino_half_block (int hb, int th, int hbw, int *b, int *oy0, int *ox0)
{
  int hx = hb % hbw;
  int rest = hb / hbw;

  *ox0 = hx * 32;
  *oy0 = (rest % th) * 4;
  *b = rest / th;
}

/* Vector @k (0..2) of the 34 input pixels of a half-block row starting at
 * @p; @lim = pixels left in the row (> 0); lanes past it are clamped. */
inline float16
wino_load (__global const float *p, int k, int lim)
{
  if (k == 2)
    return (float16) (p[min (32, lim - 1)], p[min (33, lim - 1)], 0.0f,
        0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f,
        0.0f, 0.0f);
  if (lim >= 32)
    return CONV_LOAD16 (p + 16 * k);
  return conv_gather16 (p, 16 * k, lim, 1);
}

__kernel __attribute__ ((reqd_work_group_size (1, 1, 1)))
void
conv2d_wino4 (__global const float *in, __global const float *ut,
    __global const float *bias, __global float *out, int n, int cin, int h,
    int w, int cout, int oh, int ow, int act, float alpha)
{
  __local float16 vbuf[36 * WINO_CIN * WTV];
  __local float16 mbuf[36 * WCO * WTV];
  int th = (oh + 3) / 4;
  int hbw = (ow + 31) / 32;
  int nhb = n * th * hbw;
  int hb0 = get_global_id (0) * 2 * WTV;

  if (hb0 >= nhb)
    return;

  /* 1. input transform */
  for (int ci = 0; ci < cin; ci++) {
#pragma unroll
    for (int hp = 0; hp < WTV; hp++) {
      float16 tb[6][6];         /* [B^T row][half * 3 + vector] */

      for (int s = 0; s < 2; s++) {
        int b, oy0, ox0;

        wino_half_block (min (hb0 + 2 * hp + s, nhb - 1), th, hbw, &b, &oy0,
            &ox0);
        {
          __global const float *plane = in + ((size_t) b * cin + ci) * h * w
              + ox0;
          int lim = w - ox0;

          for (int k = 0; k < 3; k++) {
            float16 d0 = wino_load (plane + (size_t) min (oy0, h - 1) * w,
                k, lim);
            float16 d1 = wino_load (plane + (size_t) min (oy0 + 1, h - 1) * w,
                k, lim);
            float16 d2 = wino_load (plane + (size_t) min (oy0 + 2, h - 1) * w,
                k, lim);
            float16 d3 = wino_load (plane + (size_t) min (oy0 + 3, h - 1) * w,
                k, lim);
            float16 d4 = wino_load (plane + (size_t) min (oy0 + 4, h - 1) * w,
                k, lim);
            float16 d5 = wino_load (plane + (size_t) min (oy0 + 5, h - 1) * w,
                k, lim);

            WINO_BT (d0, d1, d2, d3, d4, d5, tb[0][s * 3 + k],
                tb[1][s * 3 + k], tb[2][s * 3 + k], tb[3][s * 3 + k],
                tb[4][s * 3 + k], tb[5][s * 3 + k]);
          }
        }
      }

      for (int i = 0; i < 6; i++) {
        const uint16 merge = (uint16) (0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18,
            19, 20, 21, 22, 23);
        float16 c0, c1, c2, c3, c4, c5, e;
        float16 v0, v1, v2, v3, v4, v5;
        __local float16 *vp = vbuf + (i * 6 * cin + ci) * WTV + hp;

#define WINO_COL(j) \
        shuffle2 (shuffle2 (tb[i][0], tb[i][1], (uint16) (j, 4 + j, 8 + j, \
                    12 + j, 16 + j, 20 + j, 24 + j, 28 + j, j, j, j, j, j, j, \
                    j, j)), shuffle2 (tb[i][3], tb[i][4], (uint16) (j, 4 + j, \
                    8 + j, 12 + j, 16 + j, 20 + j, 24 + j, 28 + j, j, j, j, \
                    j, j, j, j, j)), merge)
        c0 = WINO_COL (0);
        c1 = WINO_COL (1);
        c2 = WINO_COL (2);
        c3 = WINO_COL (3);
#undef WINO_COL
        e = shuffle2 (tb[i][2], tb[i][5], (uint16) (0, 1, 16, 17, 0, 0, 0, 0,
                0, 0, 0, 0, 0, 0, 0, 0));
        c4 = shuffle2 (c0, e, (uint16) (1, 2, 3, 4, 5, 6, 7, 16, 9, 10, 11,
                12, 13, 14, 15, 18));
        c5 = shuffle2 (c1, e, (uint16) (1, 2, 3, 4, 5, 6, 7, 17, 9, 10, 11,
                12, 13, 14, 15, 19));
        WINO_BT (c0, c1, c2, c3, c4, c5, v0, v1, v2, v3, v4, v5);
        vp[0 * cin * WTV] = v0;
        vp[1 * cin * WTV] = v1;
        vp[2 * cin * WTV] = v2;
        vp[3 * cin * WTV] = v3;
        vp[4 * cin * WTV] = v4;
        vp[5 * cin * WTV] = v5;
      }
    }
  }

  for (int cot = 0; cot * WCO < cout; cot++) {
    /* 2. GEMM per transform point */
    for (int xi = 0; xi < 36; xi++) {
      __global const float *up = ut + ((size_t) cot * 36 + xi) * cin * WCO;
      __local const float16 *vp = vbuf + xi * cin * WTV;
      float16 acc[WCO * WTV];

#pragma unroll
      for (int j = 0; j < WCO * WTV; j++)
        acc[j] = (float16) (0.0f);

      for (int ci = 0; ci < cin; ci++) {
        float16 x[WTV];

#pragma unroll
        for (int t = 0; t < WTV; t++)
          x[t] = vp[t];
#pragma unroll
        for (int j = 0; j < WCO; j++) {
          float16 wj = (float16) (up[j]);

#pragma unroll
          for (int t = 0; t < WTV; t++)
            acc[j * WTV + t] = fma (wj, x[t], acc[j * WTV + t]);
        }
        up += WCO;
        vp += WTV;
      }

#pragma unroll
      for (int j = 0; j < WCO * WTV; j++)
        mbuf[xi * WCO * WTV + j] = acc[j];
    }

    /* 3. output transform, bias, activation, store */
    for (int j = 0; j < WCO; j++) {
      int co = cot * WCO + j;
      float bj;

      if (co >= cout)
        break;
      bj = bias[co];
      for (int hp = 0; hp < WTV; hp++) {
        __local const float16 *mp = mbuf + j * WTV + hp;
        float16 t[6][4];
        float16 y[4][4];

#define M(r, c) mp[((r) * 6 + (c)) * WCO * WTV]
        for (int c = 0; c < 6; c++)
          WINO_AT (M (0, c), M (1, c), M (2, c), M (3, c), M (4, c), M (5, c),
              t[c][0], t[c][1], t[c][2], t[c][3]);
#undef M
        for (int r = 0; r < 4; r++) {
          WINO_AT (t[0][r], t[1][r], t[2][r], t[3][r], t[4][r], t[5][r],
              y[r][0], y[r][1], y[r][2], y[r][3]);
          for (int c = 0; c < 4; c++)
            y[r][c] = ncl_act16 (act, alpha, y[r][c] + bj);
        }

        for (int s = 0; s < 2; s++) {
          int b, oy0, ox0;
          uint16 il;

          if (hb0 + 2 * hp + s >= nhb)
            break;
          wino_half_block (hb0 + 2 * hp + s, th, hbw, &b, &oy0, &ox0);
          il = (uint16) (0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7,
              23) + (uint) (8 * s);
          for (int r = 0; r < 4 && oy0 + r < oh; r++) {
            __global float *op = out + (((size_t) b * cout + co) * oh + oy0
                + r) * ow + ox0;
            float16 p01 = shuffle2 (y[r][0], y[r][1], il);
            float16 p23 = shuffle2 (y[r][2], y[r][3], il);
            float16 q0 = shuffle2 (p01, p23, (uint16) (0, 1, 16, 17, 2, 3,
                    18, 19, 4, 5, 20, 21, 6, 7, 22, 23));
            float16 q1 = shuffle2 (p01, p23, (uint16) (8, 9, 24, 25, 10, 11,
                    26, 27, 12, 13, 28, 29, 14, 15, 30, 31));

            conv_store16 (op, q0, ow - ox0);
            if (ow - ox0 > 16)
              conv_store16 (op + 16, q1, ow - ox0 - 16);
          }
        }
      }
    }
  }
}

/* ---- depthwise ---------------------------------------------------------- */
/* groups == cin == cout: out[b][c] = act (bias[c] + in[b][c] (*) w[c]).
 * One work-item = 16 output pixels along x x DW_ROWS output rows of one
 * plane.  The kernel size and strides are compile-time (DW_KH, KW,
 * DW_SH, STRIDE_W), so the loops over input rows and taps unroll: each
 * input row of the work-item is loaded once (KW shifted vectors) and feeds
 * every output row it belongs to.  The layer's padding (any mode) is
 * handled here: tiles whose reads fall inside the row load straight from
 * the input; the first and last tiles of a row copy the padded row segment
 * into a private buffer first; rows outside the image are padded the same
 * way (zero rows are skipped).
 * wt: (c, DW_KH, KW); global: (ceil (ow / 16), ceil (oh / DW_ROWS), n * c). */
#ifndef DW_KH
#define DW_KH 3
#endif
#ifndef DW_SH
#define DW_SH 1
#endif
#ifndef DW_ROWS
#define DW_ROWS 4
#endif

#define DW_IN_ROWS ((DW_ROWS - 1) * DW_SH + DW_KH)
/* input pixels a 16-pixel output vector reads (stride 2 loads 32) */
#define DW_SPAN (16 * STRIDE_W + KW - 1)

__kernel void
conv2d_dw (__global const float *in, __global const float *wt,
    __global const float *bias, __global float *out, int c, int h, int w,
    int oh, int ow, int top, int left, int mode, int act, float alpha)
{
  int ox0 = get_global_id (0) * 16;
  int oy0 = get_global_id (1) * DW_ROWS;
  int plane = get_global_id (2);

  if (ox0 >= ow || oy0 >= oh)
    return;

  {
    __global const float *ip = in + (size_t) plane * h * w;
    __global const float *wp = wt + (size_t) (plane % c) * DW_KH * KW;
    int x0 = ox0 * STRIDE_W - left;
    int inside = x0 >= 0 && x0 + DW_SPAN <= w;
    float wk[DW_KH * KW];
    float16 acc[DW_ROWS];

#pragma unroll
    for (int i = 0; i < DW_KH * KW; i++)
      wk[i] = wp[i];
#pragma unroll
    for (int r = 0; r < DW_ROWS; r++)
      acc[r] = (float16) (0.0f);

#pragma unroll
    for (int i = 0; i < DW_IN_ROWS; i++) {
      int iy = conv_pad_index (oy0 * DW_SH + i - top, h, mode);
      float16 x[KW];

      if (iy < 0)
        continue;               /* a zero row */
      if (inside) {
        __global const float *row = ip + (size_t) iy * w + x0;

#pragma unroll
        for (int kx = 0; kx < KW; kx++)
          x[kx] = conv_load_px (row + kx);
      } else {
        __global const float *row = ip + (size_t) iy * w;
        float seg[DW_SPAN + 1];

        if (mode == PAD_ZERO) {
          /* branch-free: clamped loads, zero where clamped */
#pragma unroll
          for (int s = 0; s < DW_SPAN; s++) {
            int ix = clamp (x0 + s, 0, w - 1);
            float v = row[ix];

            seg[s] = ix == x0 + s ? v : 0.0f;
          }
        } else {
          for (int s = 0; s < DW_SPAN; s++)
            seg[s] = row[conv_pad_index (x0 + s, w, mode)];
        }
        seg[DW_SPAN] = 0.0f;
#pragma unroll
        for (int kx = 0; kx < KW; kx++)
          x[kx] = conv_load_px_private (seg + kx);
      }

#pragma unroll
      for (int r = 0; r < DW_ROWS; r++) {
        int ky = i - r * DW_SH;

        if (ky >= 0 && ky < DW_KH) {
#pragma unroll
          for (int kx = 0; kx < KW; kx++)
            acc[r] = fma ((float16) (wk[ky * KW + kx]), x[kx], acc[r]);
        }
      }
    }

    {
      float bc = bias[plane % c];

#pragma unroll
      for (int r = 0; r < DW_ROWS; r++) {
        if (oy0 + r < oh)
          conv_store16 (out + ((size_t) plane * oh + oy0 + r) * ow + ox0,
              ncl_act16 (act, alpha, acc[r] + bc), ow - ox0);
      }
    }
  }
}

/* ---- GEMM --------------------------------------------------------------- */
/* out[b][co][q] = act (bias[co] + sum_k A[co][k] * B[k][p]) over the
 * flattened output pixels p = b * ohw + q, k = (ci, ky, kx).
 * A: [cout_padded / 8][K][8] (the direct kernel's packing with tile 8).
 * B is either the input itself (1x1, stride 1, no padding: the column of
 * pixel p of image lb = p / L, lq = p % L is at bstride * lb + lq, row k at
 * + k * ldb) or an im2col scratch (one "image" L = ldb = the padded column
 * count, bstride 0).  One work-item = 8 output channels x GPX * 16 columns
 * (float16 accumulators), weights broadcast, columns loaded as vectors;
 * tiles that straddle an image or the end gather their lanes.
 * global: (cout_padded / 8, ceil (N / (16 * GPX))). */
#ifndef GPX
#define GPX 1
#endif
#define GCO 8

/* im2col: col[k][p] for p < npad (zeros past n * oh * ow), any padding,
 * dilation.  One work-item = one output row (ow columns) of one k; the
 * extra row index n * oh writes the zero columns past the end.
 * global: (cin * kh * kw, n * oh + 1). */
__kernel void
conv_im2col (__global const float *in, __global float *col, int n, int cin,
    int h, int w, int kh, int kw, int sh, int sw, int dil, int top, int left,
    int mode, int oh, int ow, int npad)
{
  int k = get_global_id (0);
  int zy = get_global_id (1);

  if (k >= cin * kh * kw || zy > n * oh)
    return;

  {
    __global float *cp = col + (size_t) k * npad + (size_t) zy * ow;

    if (zy == n * oh) {
      for (int p = n * oh * ow; p < npad; p++)
        col[(size_t) k * npad + p] = 0.0f;
    } else {
      int b = zy / oh;
      int oy = zy % oh;
      int ci = k / (kh * kw);
      int ky = k / kw % kh;
      int kx = k % kw;
      int iy = conv_pad_index (oy * sh + ky * dil - top, h, mode);
      int x0 = kx * dil - left;
      __global const float *row = in + (((size_t) b * cin + ci) * h + iy) * w;

      if (iy < 0) {
        for (int ox = 0; ox < ow; ox++)
          cp[ox] = 0.0f;
      } else if (x0 >= 0 && x0 + (ow - 1) * sw < w) {
        for (int ox = 0; ox < ow; ox++)
          cp[ox] = row[x0 + ox * sw];
      } else {
        for (int ox = 0; ox < ow; ox++) {
          int ix = conv_pad_index (x0 + ox * sw, w, mode);

          cp[ox] = ix >= 0 ? row[ix] : 0.0f;
        }
      }
    }
  }
}

__kernel void
conv2d_gemm (__global const float *bm, __global const float *am,
    __global const float *bias, __global float *out, int kdim, int cout,
    int ncols, int lsize, int bstride, int ldb, int ohw, int act, float alpha)
{
  int ct = get_global_id (0);
  int p0 = get_global_id (1) * (16 * GPX);

  if (ct * GCO >= cout || p0 >= ncols)
    return;

  {
    __global const float *ap = am + (size_t) ct * kdim * GCO;
    int lq0 = p0 % lsize;
    float16 acc[GCO * GPX];

#pragma unroll
    for (int j = 0; j < GCO * GPX; j++)
      acc[j] = (float16) (0.0f);

    if (lq0 + 16 * GPX <= lsize) {
      __global const float *bp = bm + (size_t) (p0 / lsize) * bstride + lq0;

      for (int k = 0; k < kdim; k++) {
        float16 x[GPX];

#pragma unroll
        for (int v = 0; v < GPX; v++)
          x[v] = CONV_LOAD16 (bp + v * 16);
#pragma unroll
        for (int j = 0; j < GCO; j++) {
          float16 aj = (float16) (ap[j]);

#pragma unroll
          for (int v = 0; v < GPX; v++)
            acc[j * GPX + v] = fma (aj, x[v], acc[j * GPX + v]);
        }
        ap += GCO;
        bp += ldb;
      }
    } else {
      /* straddles an image boundary or the end: per-lane offsets */
      int off[16 * GPX];

      for (int l = 0; l < 16 * GPX; l++) {
        int p = min (p0 + l, ncols - 1);

        off[l] = p / lsize * bstride + p % lsize;
      }
      for (int k = 0; k < kdim; k++) {
        __global const float *bp = bm + (size_t) k * ldb;
        float16 x[GPX];

#pragma unroll
        for (int v = 0; v < GPX; v++) {
          float t[16];

          for (int l = 0; l < 16; l++)
            t[l] = bp[off[v * 16 + l]];
          x[v] = vload16 (0, t);
        }
#pragma unroll
        for (int j = 0; j < GCO; j++) {
          float16 aj = (float16) (ap[j]);

#pragma unroll
          for (int v = 0; v < GPX; v++)
            acc[j * GPX + v] = fma (aj, x[v], acc[j * GPX + v]);
        }
        ap += GCO;
      }
    }

#pragma unroll
    for (int v = 0; v < GPX; v++) {
      int pv = p0 + v * 16;
      int b, q;

      if (pv >= ncols)
        break;
      b = pv / ohw;
      q = pv % ohw;
      for (int j = 0; j < GCO; j++) {
        int co = ct * GCO + j;
        float16 y;

        if (co >= cout)
          break;
        y = ncl_act16 (act, alpha, acc[j * GPX + v] + bias[co]);
        if (q + 16 <= ohw) {
          vstore16 (y, 0, out + ((size_t) b * cout + co) * ohw + q);
        } else {
          float t[16];

          vstore16 (y, 0, t);
          for (int l = 0; l < 16 && pv + l < ncols; l++) {
            int pl = pv + l;

            out[((size_t) (pl / ohw) * cout + co) * ohw + pl % ohw] = t[l];
          }
        }
      }
    }
  }
}

/* ---- channel-vector direct ---------------------------------------------- */
/* For small maps (the face ResNet's 35x35 .. 1x1 layers), where 16 pixels of
 * a row do not fill a vector: the vector runs over OUTPUT CHANNELS instead.
 * One work-item = CV_CO (32) output channels x CV_PX flattened output pixels
 * p = b * oh * ow + oy * ow + ox (rows and images run on, so no lane is
 * wasted on short rows); per tap, two float16 weight loads and one
 * broadcast input value per pixel feed 2 x CV_PX FMAs.  Valid convolution
 * on a padded input (conv_pad), groups 1, dilation 1, any stride and
 * kernel (KW compile-time).  With @has_res, the residual tensor (same shape
 * as @out) is added before the activation (a fused ResNet "add + relu").
 * wt: [cout_padded / 32][cin][kh][KW][32]; bias: (cout_padded).
 * global: (cout_padded / 32, ceil (n * oh * ow / CV_PX)), local (1, 1): a
 * work-item's private tile is large, PoCL must not pack thousands of them
 * into one work-group. */
#ifndef CV_PX
#define CV_PX 12
#endif

__kernel __attribute__ ((reqd_work_group_size (1, 1, 1)))
void
conv2d_chvec (__global const float *in, __global const float *wt,
    __global const float *bias, __global const float *res,
    __global float *out, int cin, int h, int w, int cout, int oh, int ow,
    int kh, int sh, int sw, int npx, int has_res, int act, float alpha)
{
  int ct = get_global_id (0);
  int p0 = get_global_id (1) * CV_PX;

  if (ct * 32 >= cout || p0 >= npx)
    return;

  {
    int ohw = oh * ow;
    int base[CV_PX];
    float16 a0[CV_PX], a1[CV_PX];
    __global const float *wp = wt + (size_t) ct * cin * kh * KW * 32;

#pragma unroll
    for (int j = 0; j < CV_PX; j++) {
      int p = min (p0 + j, npx - 1);
      int b = p / ohw, q = p % ohw;

      base[j] = (b * cin * h + q / ow * sh) * w + q % ow * sw;
      a0[j] = (float16) (0.0f);
      a1[j] = (float16) (0.0f);
    }

    for (int ci = 0; ci < cin; ci++) {
      for (int ky = 0; ky < kh; ky++) {
        __global const float *row = in + ((size_t) ci * h + ky) * w;

#pragma unroll
        for (int kx = 0; kx < KW; kx++) {
          float16 w0 = vload16 (0, wp);
          float16 w1 = vload16 (1, wp);

#pragma unroll
          for (int j = 0; j < CV_PX; j++) {
            float16 x = (float16) (row[base[j] + kx]);

            a0[j] = fma (x, w0, a0[j]);
            a1[j] = fma (x, w1, a1[j]);
          }
          wp += 32;
        }
      }
    }

    {
      float16 b0 = vload16 (0, bias + ct * 32);
      float16 b1 = vload16 (1, bias + ct * 32);
      int nco = min (32, cout - ct * 32);
      int b = p0 / ohw, q0 = p0 % ohw;
      float t[CV_PX * 32];

      if (q0 + CV_PX <= ohw && p0 + CV_PX <= npx) {
        /* one image, all pixels real: channel rows of CV_PX contiguous
         * outputs */
        size_t o = ((size_t) b * cout + ct * 32) * ohw + q0;

        if (has_res) {
          for (int l = 0; l < nco; l++) {
#pragma unroll
            for (int j = 0; j < CV_PX; j++)
              t[j * 32 + l] = res[o + (size_t) l * ohw + j];
          }
        }
#pragma unroll
        for (int j = 0; j < CV_PX; j++) {
          float16 y0 = a0[j] + b0, y1 = a1[j] + b1;

          if (has_res) {
            y0 += vload16 (0, t + j * 32);
            y1 += vload16 (0, t + j * 32 + 16);
          }
          vstore16 (ncl_act16 (act, alpha, y0), 0, t + j * 32);
          vstore16 (ncl_act16 (act, alpha, y1), 0, t + j * 32 + 16);
        }
        for (int l = 0; l < nco; l++) {
#pragma unroll
          for (int j = 0; j < CV_PX; j++)
            out[o + (size_t) l * ohw + j] = t[j * 32 + l];
        }
      } else {
        for (int j = 0; j < CV_PX && p0 + j < npx; j++) {
          int p = p0 + j;
          size_t o = ((size_t) (p / ohw) * cout + ct * 32) * ohw + p % ohw;
          float16 y0 = a0[j] + b0, y1 = a1[j] + b1;

          if (has_res) {
            for (int l = 0; l < 32; l++)
              t[l] = res[o + (size_t) min (l, nco - 1) * ohw];
            y0 += vload16 (0, t);
            y1 += vload16 (0, t + 16);
          }
          vstore16 (ncl_act16 (act, alpha, y0), 0, t);
          vstore16 (ncl_act16 (act, alpha, y1), 0, t + 16);
          for (int l = 0; l < nco; l++)
            out[o + (size_t) l * ohw] = t[l];
        }
      }
    }
  }
}

/* ---- channel-vector, blocks of a fixed geometry ------------------------- */
/* conv2d_chvec with the layer's geometry compiled in: one work-item =
 * CB_CO (32 or 16) output channels (CB_CO / 16 float16) x a block of
 * CB_R x CB_C output pixels of one image.  Every input pixel of a tap is
 * then at a constant offset from one pointer (no per-pixel index registers
 * spilled to the stack, as the flattened kernel's are), and with the taps
 * unrolled (CB_UNROLL 17) the values that neighbouring taps share stay in
 * registers: 1.2-1.7x the flattened kernel on the face ResNet's 72x72 ..
 * 8x8 maps.  CB_CO 16 with the taps rolled (CB_UNROLL 1) takes a whole
 * 4x4 map of one image in one work-item, so each weight is read once.
 * Blocks at the right and bottom edges are shifted back inside the map
 * (they recompute a few pixels and write the same values twice), so no
 * work-item clamps or tests bounds.  Valid convolution on a padded input,
 * groups 1, dilation 1.
 * Build options: CB_R, CB_C (block), CB_H, CB_W (padded input size),
 * CB_OH, CB_OW (output size), CB_KH, KW (kernel), CB_SH, CB_SW (stride),
 * CB_CO, CB_UNROLL; CB_OPT, CB_OPL, CB_OPH, CB_OPW (defined: also write
 * @outp, a (n, cout, CB_OPH, CB_OPW) tensor with the map at (CB_OPT,
 * CB_OPL), for the next conv to read as its padded input: its border is
 * not written); CB_NO_PLAIN: do not write @out.
 * wt: [cout_padded / CB_CO][cin][kh][KW][CB_CO]; bias: (cout_padded).
 * global: (cout_padded / CB_CO, ceil (OH / CB_R) * ceil (OW / CB_C), n),
 * local (1, 1, 1); CB_BATCH_FIRST: the first and last dimensions swapped
 * (the images of one channel tile run one after the other). */
#ifdef CB_R
#ifndef CB_CO
#define CB_CO 32
#endif
#ifndef CB_UNROLL
#define CB_UNROLL 17
#endif

#define CB_NPX (CB_R * CB_C)
#define CB_NBX ((CB_OW + CB_C - 1) / CB_C)

__kernel __attribute__ ((reqd_work_group_size (1, 1, 1)))
void
conv2d_chblk (__global const float *in, __global const float *wt,
    __global const float *bias, __global const float *res,
    __global float *out, __global float *outp, int cin, int cout,
    int has_res, int act, float alpha)
{
#ifdef CB_BATCH_FIRST
  const int b = get_global_id (0);
  const int blk = get_global_id (1);
  const int ct = get_global_id (2);
#else
  const int ct = get_global_id (0);
  const int blk = get_global_id (1);
  const int b = get_global_id (2);
#endif
  const int oy0 = min (blk / CB_NBX * CB_R, CB_OH - CB_R);
  const int ox0 = min (blk % CB_NBX * CB_C, CB_OW - CB_C);
  __global const float *ip = in + ((size_t) b * cin * CB_H + oy0 * CB_SH)
      * CB_W + ox0 * CB_SW;
  __global const float *wp = wt + (size_t) ct * cin * CB_KH * KW * CB_CO;
  float16 a0[CB_NPX];
#if CB_CO == 32
  float16 a1[CB_NPX];
#endif

  if (ct * CB_CO >= cout)
    return;

#pragma unroll
  for (int j = 0; j < CB_NPX; j++) {
    a0[j] = (float16) (0.0f);
#if CB_CO == 32
    a1[j] = (float16) (0.0f);
#endif
  }

  for (int ci = 0; ci < cin; ci++, ip += CB_H * CB_W) {
#pragma unroll CB_UNROLL
    for (int ky = 0; ky < CB_KH; ky++) {
#pragma unroll CB_UNROLL
      for (int kx = 0; kx < KW; kx++) {
        __global const float *tp = ip + ky * CB_W + kx;
        float16 w0 = vload16 (0, wp);
#if CB_CO == 32
        float16 w1 = vload16 (1, wp);
#endif

        wp += CB_CO;
#pragma unroll
        for (int r = 0; r < CB_R; r++) {
#pragma unroll
          for (int c = 0; c < CB_C; c++) {
            float16 x = (float16) (tp[r * CB_SH * CB_W + c * CB_SW]);

            a0[r * CB_C + c] = fma (x, w0, a0[r * CB_C + c]);
#if CB_CO == 32
            a1[r * CB_C + c] = fma (x, w1, a1[r * CB_C + c]);
#endif
          }
        }
      }
    }
  }

  {
    const int nco = min (CB_CO, cout - ct * CB_CO);
    const size_t o = (((size_t) b * cout + ct * CB_CO) * CB_OH + oy0) * CB_OW
        + ox0;
#ifdef CB_OPT
    const size_t op = (((size_t) b * cout + ct * CB_CO) * CB_OPH + oy0
        + CB_OPT) * CB_OPW + ox0 + CB_OPL;
#endif
    float t[CB_NPX * CB_CO];

    /* through a private transpose: channel rows of CB_C contiguous
     * outputs; a residual is added (and the activation applied) on the way
     * out, in the output's own layout */
#pragma unroll
    for (int j = 0; j < CB_NPX; j++) {
      float16 y0 = a0[j] + vload16 (0, bias + ct * CB_CO);

      if (!has_res)
        y0 = ncl_act16 (act, alpha, y0);
      vstore16 (y0, 0, t + j * CB_CO);
#if CB_CO == 32
      {
        float16 y1 = a1[j] + vload16 (1, bias + ct * CB_CO);

        if (!has_res)
          y1 = ncl_act16 (act, alpha, y1);
        vstore16 (y1, 0, t + j * CB_CO + 16);
      }
#endif
    }
    for (int l = 0; l < nco; l++) {
#pragma unroll
      for (int r = 0; r < CB_R; r++) {
#pragma unroll
        for (int c = 0; c < CB_C; c++) {
          const size_t i = o + (size_t) l * CB_OH * CB_OW + r * CB_OW + c;
          float v = t[(r * CB_C + c) * CB_CO + l];

          if (has_res)
            v = ncl_act (act, alpha, v + res[i]);
#ifndef CB_NO_PLAIN
          out[i] = v;
#endif
#ifdef CB_OPT
          outp[op + (size_t) l * CB_OPH * CB_OPW + r * CB_OPW + c] = v;
#endif
        }
      }
    }
  }
}
#endif
