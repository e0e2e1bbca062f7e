/* face.cl: network inputs for the face pipeline, cut from the uploaded frame.
 *
 * Every kernel reads the frame as planar float RGB 0..255, rgb (1, 3, H, W),
 * and writes normalised network input out (n, 3, S, S):
 *   out = (v - mean[c]) / div
 * (face nets: mean = the RGB means, div = 255; the SSD: mean = div = 127.5).
 *
 * face_detector_input: the frame inside a zero square of side L, at offset
 *   (border, border); L = max (W, H) + 2 border, so the padding lies bottom
 *   and right (plus the border all round).  TF legacy bilinear resize L -> S.
 * face_crops: per face an integer crop (x, y, w, h) of the frame, centred in
 *   a zero square of side max (w, h) (the odd pixel after), resized to S
 *   with the same TF legacy bilinear.  params: int4 per face.
 * face_warp: per face a 2x3 matrix from chip pixels (u, v) to frame
 *   coordinates, X = m0 u + m1 v + m2, Y = m3 u + m4 v + m5, bilinear with
 *   zero outside the frame, averaged over k x k sub-samples at
 *   ((i + 0.5) / k - 0.5) chip pixels (k = 1: a plain bilinear warp).
 *   params: 8 floats per face (m0..m5, k, unused).
 *
 * TF legacy resize (align_corners = false, half_pixel_centers = false): for
 * output row r the source coordinate is f = r L / S, computed exactly in
 * integers: y0 = r L / S, a = (r L mod S) / S, y1 = min (y0 + (a > 0), L - 1).
 * Horizontal interpolation first, then vertical.  When S = L the weights are
 * 0 and the copy is exact.
 *
 * One work-item writes PIX consecutive pixels of an output row (3
 * channels).  The arithmetic follows the references in lib/face-align.c
 * operation by operation, with contraction off.
 */

#pragma OPENCL FP_CONTRACT OFF

#ifndef PIX
#define PIX 16                  /* output pixels per work-item */
#endif

/* TF legacy source coordinate of output @o (of @S) over an input of @L. */
inline void
legacy_coord (int o, int L, int S, int *i0, int *i1, float *frac)
{
  int t = o * L;
  int q = t / S;
  int rem = t - q * S;

  *i0 = q;
  *i1 = min (q + (rem > 0 ? 1 : 0), L - 1);
  *frac = (float) rem / (float) S;
}

/* PIX consecutive output pixels of one row of a square of side L, sampled
 * with TF legacy bilinear.  Square pixel (sy, sx) is frame pixel (sy + dy,
 * sx + dx) inside the window, 0 outside. */
inline void
legacy_row (global const float *rgb, int W, int H, int L, int S, int dy,
    int dx, int y_lo, int y_hi, int x_lo, int x_hi, int oy, int ox0,
    float mean0, float mean1, float mean2, float div, global float *out,
    int plane_out)
{
  int y0, y1;
  float a;
  float mean[3] = { mean0, mean1, mean2 };
  int n = min (PIX, S - ox0);
  int r0, r1, q, rem;
  /* column coordinates advance by L / S per output pixel: step the
   * quotient and remainder instead of dividing */
  int qs = L / S, rs = L - (L / S) * S;

  q = (ox0 * L) / S;
  rem = ox0 * L - q * S;
  legacy_coord (oy, L, S, &y0, &y1, &a);
  y0 += dy;
  y1 += dy;
  r0 = y0 >= y_lo && y0 < y_hi;
  r1 = y1 >= y_lo && y1 < y_hi;
  for (int i = 0; i < n; i++) {
    int x0 = q + dx;
    int x1 = min (q + (rem > 0 ? 1 : 0), L - 1) + dx;
    float b = (float) rem / (float) S;
    int c0, c1;

    q += qs;
    rem += rs;
    if (rem >= S) {
      rem -= S;
      q++;
    }
    c0 = x0 >= x_lo && x0 < x_hi;
    c1 = x1 >= x_lo && x1 < x_hi;
    for (int c = 0; c < 3; c++) {
      global const float *p = rgb + c * H * W;
      float p00 = r0 && c0 ? p[y0 * W + x0] : 0.0f;
      float p01 = r0 && c1 ? p[y0 * W + x1] : 0.0f;
      float p10 = r1 && c0 ? p[y1 * W + x0] : 0.0f;
      float p11 = r1 && c1 ? p[y1 * W + x1] : 0.0f;
      float top = p00 + (p01 - p00) * b;
      float bot = p10 + (p11 - p10) * b;
      float v = top + (bot - top) * a;

      out[c * plane_out + i] = (v - mean[c]) / div;
    }
  }
}

kernel void
face_detector_input (global const float *rgb, int W, int H, int border,
    int S, float mean0, float mean1, float mean2, float div,
    global float *out)
{
  int ox = get_global_id (0) * PIX;
  int oy = get_global_id (1);
  int L = max (W, H) + 2 * border;

  if (ox >= S || oy >= S)
    return;
  legacy_row (rgb, W, H, L, S, -border, -border, 0, H, 0, W, oy, ox,
      mean0, mean1, mean2, div, out + oy * S + ox, S * S);
}

kernel void
face_crops (global const float *rgb, int W, int H,
    global const int *params, int n, int S, float mean0, float mean1,
    float mean2, float div, global float *out)
{
  int ox = get_global_id (0) * PIX;
  int oy = get_global_id (1);
  int f = get_global_id (2);
  int cx, cy, cw, ch, L;

  if (ox >= S || oy >= S || f >= n)
    return;
  cx = params[4 * f];
  cy = params[4 * f + 1];
  cw = params[4 * f + 2];
  ch = params[4 * f + 3];
  L = max (cw, ch);
  /* the crop sits at ((L - cw) / 2, (L - ch) / 2) in the square */
  legacy_row (rgb, W, H, L, S, cy - (L - ch) / 2, cx - (L - cw) / 2,
      cy, cy + ch, cx, cx + cw, oy, ox, mean0, mean1, mean2, div,
      out + (size_t) f * 3 * S * S + oy * S + ox, S * S);
}

kernel void
face_warp (global const float *rgb, int W, int H,
    global const float *params, int n, int S, float mean0, float mean1,
    float mean2, float div, global float *out)
{
  int ox0 = get_global_id (0) * PIX;
  int oy = get_global_id (1);
  int f = get_global_id (2);
  global const float *m;
  float mean[3] = { mean0, mean1, mean2 };
  int k, np;
  float inv_k, w;

  if (ox0 >= S || oy >= S || f >= n)
    return;
  m = params + 8 * f;
  k = max ((int) m[6], 1);
  inv_k = 1.0f / (float) k;
  w = 1.0f / (float) (k * k);
  np = min (PIX, S - ox0);
  for (int i0 = 0; i0 < np; i0++) {
    int ox = ox0 + i0;
    float sum[3] = { 0.0f, 0.0f, 0.0f };

    for (int j = 0; j < k; j++) {
      float v = (float) oy + (((float) j + 0.5f) * inv_k - 0.5f);

      for (int i = 0; i < k; i++) {
        float u = (float) ox + (((float) i + 0.5f) * inv_k - 0.5f);
        float X = m[0] * u + m[1] * v + m[2];
        float Y = m[3] * u + m[4] * v + m[5];
        float fx0 = floor (X), fy0 = floor (Y);
        float b = X - fx0, a = Y - fy0;
        int x0 = (int) fx0, y0 = (int) fy0;
        int c0 = x0 >= 0 && x0 < W, c1 = x0 + 1 >= 0 && x0 + 1 < W;
        int r0 = y0 >= 0 && y0 < H, r1 = y0 + 1 >= 0 && y0 + 1 < H;

        for (int c = 0; c < 3; c++) {
          global const float *p = rgb + c * H * W;
          float p00 = r0 && c0 ? p[y0 * W + x0] : 0.0f;
          float p01 = r0 && c1 ? p[y0 * W + x0 + 1] : 0.0f;
          float p10 = r1 && c0 ? p[(y0 + 1) * W + x0] : 0.0f;
          float p11 = r1 && c1 ? p[(y0 + 1) * W + x0 + 1] : 0.0f;
          float top = p00 + (p01 - p00) * b;
          float bot = p10 + (p11 - p10) * b;

          sum[c] += top + (bot - top) * a;
        }
      }
    }
    for (int c = 0; c < 3; c++)
      out[((size_t) f * 3 + c) * S * S + oy * S + ox] =
          (sum[c] * w - mean[c]) / div;
  }
}
