/* image.cl: 8-bit video frames <-> planar float RGB tensors; bilinear resize.
 *
 * image_to_planar:   staging bytes -> rgb (1, 3, h, w), float 0..255
 * image_from_planar: rgb (+ orig, strength, preserve) -> staging bytes
 * resize_bilinear:   (planes, h, w) -> (planes, oh, ow), half-pixel centres
 *
 * Staging layout (planes packed tightly, no row padding): plane 0 at byte 0,
 * rows of w * BPP bytes (w bytes for Y and GRAY8).  I420 has U at off1 and V
 * at off2, rows of cw = (w + 1) / 2 bytes; NV12 has interleaved UV at off1,
 * rows of 2 * cw bytes.  Chroma is 2x2 subsampled, ch = (h + 1) / 2 rows.
 *
 * Variants: one program per pixel format, NCL_FMT = the NclPixelFormat
 * value.  One work-item converts PIX (8) pixels of a row; the YUV download
 * does 8 columns of two rows so that it owns whole 2x2 chroma blocks.  The
 * last work-item of a row goes through private scratch for the remainder.
 *
 * The arithmetic follows ncl_image_*_ref () and ncl_resize_bilinear_ref ()
 * in lib/image.c operation by operation, with contraction off, so the results
 * are bit-identical on IEEE devices.
 */

#pragma OPENCL FP_CONTRACT OFF

#ifndef NCL_FMT
#define NCL_FMT 0
#endif

#define FMT_RGB 0
#define FMT_BGR 1
#define FMT_RGBX 2
#define FMT_BGRX 3
#define FMT_RGBA 4
#define FMT_BGRA 5
#define FMT_I420 6
#define FMT_NV12 7
#define FMT_GRAY8 8

#define PIX 8

#if NCL_FMT == FMT_RGB || NCL_FMT == FMT_BGR
#define PACKED 1
#define BPP 3
#elif NCL_FMT <= FMT_BGRA
#define PACKED 1
#define BPP 4
#else
#define PACKED 0
#define BPP 1
#endif

/* Byte position of R, G and B inside a packed pixel. */
#if NCL_FMT == FMT_BGR || NCL_FMT == FMT_BGRX || NCL_FMT == FMT_BGRA
#define RO 2
#define BO 0
#else
#define RO 0
#define BO 2
#endif
#define GO 1

#define IS_YUV (NCL_FMT == FMT_I420 || NCL_FMT == FMT_NV12)

/* ---- masked loads and stores: n valid elements, the rest read as 0 ----- */

inline float8
load_f8 (global const float *p, int n)
{
  float t[8] = { 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f };

  if (n >= 8)
    return vload8 (0, p);
  for (int i = 0; i < n; i++)
    t[i] = p[i];
  return vload8 (0, t);
}

inline void
store_f8 (global float *p, int n, float8 v)
{
  float t[8];

  if (n >= 8) {
    vstore8 (v, 0, p);
    return;
  }
  vstore8 (v, 0, t);
  for (int i = 0; i < n; i++)
    p[i] = t[i];
}

inline uchar8
load_u8 (global const uchar * p, int n)
{
  uchar t[8] = { 0, 0, 0, 0, 0, 0, 0, 0 };

  if (n >= 8)
    return vload8 (0, p);
  for (int i = 0; i < n; i++)
    t[i] = p[i];
  return vload8 (0, t);
}

inline void
store_u8 (global uchar * p, int n, uchar8 v)
{
  uchar t[8];

  if (n >= 8) {
    vstore8 (v, 0, p);
    return;
  }
  vstore8 (v, 0, t);
  for (int i = 0; i < n; i++)
    p[i] = t[i];
}

inline uchar4
load_u4 (global const uchar * p, int n)
{
  uchar t[4] = { 0, 0, 0, 0 };

  if (n >= 4)
    return vload4 (0, p);
  for (int i = 0; i < n; i++)
    t[i] = p[i];
  return vload4 (0, t);
}

inline void
store_u4 (global uchar * p, int n, uchar4 v)
{
  uchar t[4];

  if (n >= 4) {
    vstore4 (v, 0, p);
    return;
  }
  vstore4 (v, 0, t);
  for (int i = 0; i < n; i++)
    p[i] = t[i];
}

/* Up to 32 bytes (8 packed pixels) as two uchar16. */
inline void
load_u32 (global const uchar * p, int nbytes, uchar16 * lo, uchar16 * hi)
{
  uchar t[32];

  if (nbytes == 32) {
    *lo = vload16 (0, p);
    *hi = vload16 (1, p);
    return;
  }
  if (nbytes == 24) {
    *lo = vload16 (0, p);
    *hi = (uchar16) (vload8 (2, p), (uchar8) (0));
    return;
  }
  for (int i = 0; i < 32; i++)
    t[i] = i < nbytes ? p[i] : 0;
  *lo = vload16 (0, t);
  *hi = vload16 (1, t);
}

inline void
store_u32 (global uchar * p, int nbytes, uchar16 lo, uchar16 hi)
{
  uchar t[32];

  if (nbytes == 32) {
    vstore16 (lo, 0, p);
    vstore16 (hi, 1, p);
    return;
  }
  if (nbytes == 24) {
    vstore16 (lo, 0, p);
    vstore8 (hi.lo, 2, p);
    return;
  }
  vstore16 (lo, 0, t);
  vstore16 (hi, 1, t);
  for (int i = 0; i < nbytes; i++)
    p[i] = t[i];
}

/* ---- colour arithmetic (same operation order as lib/image.c) ----------- */

inline float8
clamp255 (float8 x)
{
  return fmin (fmax (x, 0.0f), 255.0f);
}

inline uchar8
round_u8 (float8 x)
{
  return convert_uchar8_sat (floor (clamp255 (x) + 0.5f));
}

inline uchar4
round_u4 (float4 x)
{
  return convert_uchar4_sat (floor (fmin (fmax (x, 0.0f), 255.0f) + 0.5f));
}

/* BT.601 limited range YCbCr -> RGB 0..255. */
inline void
yuv_to_rgb (float8 y, float8 u, float8 v, float8 * r, float8 * g, float8 * b)
{
  float8 yy = 1.1643836f * (y - 16.0f);
  float8 uu = u - 128.0f;
  float8 vv = v - 128.0f;

  *r = clamp255 (yy + 1.5960268f * vv);
  *g = clamp255 (yy - 0.39176229f * uu - 0.81296765f * vv);
  *b = clamp255 (yy + 2.0172321f * uu);
}

/* The stylised pixel: blend with orig, keep orig's chroma (BT.601 full range:
 * that is orig plus the luma difference), clamp. */
inline void
finish_rgb (float8 * r, float8 * g, float8 * b, float8 or_, float8 og,
    float8 ob, int have_orig, float strength, int preserve)
{
  if (have_orig) {
    *r = or_ + strength * (*r - or_);
    *g = og + strength * (*g - og);
    *b = ob + strength * (*b - ob);
    if (preserve) {
      float8 dy = 0.299f * (*r - or_) + 0.587f * (*g - og) +
          0.114f * (*b - ob);

      *r = or_ + dy;
      *g = og + dy;
      *b = ob + dy;
    }
  }
  *r = clamp255 (*r);
  *g = clamp255 (*g);
  *b = clamp255 (*b);
}

/* Loads n pixels of row y from x of rgb (and orig) and finishes them. */
inline void
load_finished (global const float *rgb, int rgb_w, int rgb_h,
    global const float *orig, int orig_w, int orig_h, int have_orig,
    float strength, int preserve, int y, int x, int n, float8 * r,
    float8 * g, float8 * b)
{
  size_t plane = (size_t) rgb_w * rgb_h;
  size_t i = (size_t) y * rgb_w + x;
  float8 or_ = 0.0f, og = 0.0f, ob = 0.0f;

  *r = load_f8 (rgb + i, n);
  *g = load_f8 (rgb + plane + i, n);
  *b = load_f8 (rgb + 2 * plane + i, n);
  if (have_orig) {
    size_t oplane = (size_t) orig_w * orig_h;
    size_t oi = (size_t) y * orig_w + x;

    or_ = load_f8 (orig + oi, n);
    og = load_f8 (orig + oplane + oi, n);
    ob = load_f8 (orig + 2 * oplane + oi, n);
  }
  finish_rgb (r, g, b, or_, og, ob, have_orig, strength, preserve);
}

/* ---- image -> planar --------------------------------------------------- */

kernel void
image_to_planar (global const uchar * src, int off1, int off2, int w, int h,
    global float *dst)
{
  int x = get_global_id (0) * PIX;
  int y = get_global_id (1);
  int n;
  size_t plane = (size_t) w * h;
  size_t o;
  float8 r, g, b;

  if (x >= w || y >= h)
    return;
  n = min (PIX, w - x);
  o = (size_t) y * w + x;

#if PACKED
  {
    uchar16 lo, hi;
    uchar8 pos = BPP == 3 ? (uchar8) (0, 3, 6, 9, 12, 15, 18, 21) :
        (uchar8) (0, 4, 8, 12, 16, 20, 24, 28);

    load_u32 (src + o * BPP, n * BPP, &lo, &hi);
    r = convert_float8 (shuffle2 (lo, hi, pos + (uchar) RO));
    g = convert_float8 (shuffle2 (lo, hi, pos + (uchar) GO));
    b = convert_float8 (shuffle2 (lo, hi, pos + (uchar) BO));
  }
#elif NCL_FMT == FMT_GRAY8
  r = convert_float8 (load_u8 (src + o, n));
  g = r;
  b = r;
#else
  {
    int cw = (w + 1) / 2;
    int cn = (n + 1) / 2;
    int cy = y / 2;
    float8 yf = convert_float8 (load_u8 (src + o, n));
    uchar4 u, v;

#if NCL_FMT == FMT_I420
    u = load_u4 (src + off1 + (size_t) cy * cw + x / 2, cn);
    v = load_u4 (src + off2 + (size_t) cy * cw + x / 2, cn);
#else
    uchar8 uv = load_u8 (src + off1 + (size_t) cy * 2 * cw + x, 2 * cn);

    u = uv.even;
    v = uv.odd;
#endif
    yuv_to_rgb (yf, convert_float8 (u.s00112233),
        convert_float8 (v.s00112233), &r, &g, &b);
  }
#endif

  store_f8 (dst + o, n, r);
  store_f8 (dst + plane + o, n, g);
  store_f8 (dst + 2 * plane + o, n, b);
}

/* ---- planar -> image --------------------------------------------------- */

#if IS_YUV

/* BT.601 limited range luma / chroma of 0..255 RGB. */
inline float8
luma_limited (float8 r, float8 g, float8 b)
{
  return 16.0f + (0.25678824f * r + 0.50412941f * g + 0.097905882f * b);
}

/* Global size (ceil (w / PIX), ceil (h / 2)). */
kernel void
image_from_planar (global const float *rgb, int rgb_w, int rgb_h,
    global const float *orig, int orig_w, int orig_h, int have_orig,
    float strength, int preserve, global uchar * dst, int off1, int off2,
    int w, int h)
{
  int x = get_global_id (0) * PIX;
  int cy = get_global_id (1);
  int y = 2 * cy;
  int n, cn, cw, has1;
  float8 r0, g0, b0, r1 = 0.0f, g1 = 0.0f, b1 = 0.0f;
  float4 sr, sg, sb, f;
  int4 cnt;
  uchar4 u, v;

  if (x >= w || y >= h)
    return;
  n = min (PIX, w - x);
  cn = (n + 1) / 2;
  cw = (w + 1) / 2;
  has1 = y + 1 < h;

  /* Pixels past n load as zero rgb and orig, so they finish as exact 0. */
  load_finished (rgb, rgb_w, rgb_h, orig, orig_w, orig_h, have_orig,
      strength, preserve, y, x, n, &r0, &g0, &b0);
  store_u8 (dst + (size_t) y * w + x, n, round_u8 (luma_limited (r0, g0,
              b0)));
  if (has1) {
    load_finished (rgb, rgb_w, rgb_h, orig, orig_w, orig_h, have_orig,
        strength, preserve, y + 1, x, n, &r1, &g1, &b1);
    store_u8 (dst + (size_t) (y + 1) * w + x, n, round_u8 (luma_limited (r1,
                g1, b1)));
  }

  /* Average of the block's existing pixels: ((p00 + p01) + (p10 + p11)). */
  sr = (r0.even + r0.odd) + (r1.even + r1.odd);
  sg = (g0.even + g0.odd) + (g1.even + g1.odd);
  sb = (b0.even + b0.odd) + (b1.even + b1.odd);
  cnt = clamp (n - 2 * (int4) (0, 1, 2, 3), 1, 2) * (has1 ? 2 : 1);
  f = select (select ((float4) (1.0f), (float4) (0.5f), cnt == 2),
      (float4) (0.25f), cnt == 4);
  sr = sr * f;
  sg = sg * f;
  sb = sb * f;
  u = round_u4 (128.0f + (-0.14822290f * sr - 0.29099279f * sg +
          0.43921569f * sb));
  v = round_u4 (128.0f + (0.43921569f * sr - 0.36778831f * sg -
          0.071427373f * sb));

#if NCL_FMT == FMT_I420
  store_u4 (dst + off1 + (size_t) cy * cw + x / 2, cn, u);
  store_u4 (dst + off2 + (size_t) cy * cw + x / 2, cn, v);
#else
  store_u8 (dst + off1 + (size_t) cy * 2 * cw + x, 2 * cn,
      (uchar8) (u.s0, v.s0, u.s1, v.s1, u.s2, v.s2, u.s3, v.s3));
#endif
}

#else

#define PX3(i) m0.s##i, m1.s##i, m2.s##i
#define PX4(i) m0.s##i, m1.s##i, m2.s##i, a.s##i

/* Global size (ceil (w / PIX), h).  Packed 4-byte formats expect the
 * image's own bytes in dst and keep its 4th byte. */
kernel void
image_from_planar (global const float *rgb, int rgb_w, int rgb_h,
    global const float *orig, int orig_w, int orig_h, int have_orig,
    float strength, int preserve, global uchar * dst, int off1, int off2,
    int w, int h)
{
  int x = get_global_id (0) * PIX;
  int y = get_global_id (1);
  int n;
  size_t o;
  float8 r, g, b;

  if (x >= w || y >= h)
    return;
  n = min (PIX, w - x);
  o = (size_t) y * w + x;
  load_finished (rgb, rgb_w, rgb_h, orig, orig_w, orig_h, have_orig,
      strength, preserve, y, x, n, &r, &g, &b);

#if NCL_FMT == FMT_GRAY8
  store_u8 (dst + o, n, round_u8 (0.299f * r + 0.587f * g + 0.114f * b));
#else
  {
    /* Channels in memory order. */
#if RO == 0
    uchar8 m0 = round_u8 (r), m1 = round_u8 (g), m2 = round_u8 (b);
#else
    uchar8 m0 = round_u8 (b), m1 = round_u8 (g), m2 = round_u8 (r);
#endif
    uchar16 lo, hi;

#if BPP == 3
    lo = (uchar16) (PX3 (0), PX3 (1), PX3 (2), PX3 (3), PX3 (4), m0.s5);
    hi = (uchar16) (m1.s5, m2.s5, PX3 (6), PX3 (7), (uchar8) (0));
#else
    {
      uchar8 pos = (uchar8) (3, 7, 11, 15, 19, 23, 27, 31);
      uchar8 a;

      load_u32 (dst + o * BPP, n * BPP, &lo, &hi);
      a = shuffle2 (lo, hi, pos);
      lo = (uchar16) (PX4 (0), PX4 (1), PX4 (2), PX4 (3));
      hi = (uchar16) (PX4 (4), PX4 (5), PX4 (6), PX4 (7));
    }
#endif
    store_u32 (dst + o * BPP, n * BPP, lo, hi);
  }
#endif
}

#endif

/* ---- bilinear resize --------------------------------------------------- */

/* Global size (ow, oh, planes).  sy = h / oh and sx = w / ow (host floats);
 * source coordinates are clamped at 0 and the last row / column. */
kernel void
resize_bilinear (global const float *in, int h, int w, global float *out,
    int oh, int ow, float sy, float sx, int planes)
{
  int ox = get_global_id (0);
  int oy = get_global_id (1);
  int p = get_global_id (2);
  float fy, fx, ly, lx, hy, hx;
  int y0, y1, x0, x1;
  global const float *s;

  if (ox >= ow || oy >= oh || p >= planes)
    return;
  fy = fmax (sy * ((float) oy + 0.5f) - 0.5f, 0.0f);
  fx = fmax (sx * ((float) ox + 0.5f) - 0.5f, 0.0f);
  y0 = min ((int) fy, h - 1);
  x0 = min ((int) fx, w - 1);
  y1 = min (y0 + 1, h - 1);
  x1 = min (x0 + 1, w - 1);
  ly = fy - (float) y0;
  lx = fx - (float) x0;
  hy = 1.0f - ly;
  hx = 1.0f - lx;
  s = in + (size_t) p * h * w;
  out[((size_t) p * oh + oy) * ow + ox] =
      hy * (hx * s[y0 * w + x0] + lx * s[y0 * w + x1]) +
      ly * (hx * s[y1 * w + x0] + lx * s[y1 * w + x1]);
}
