/* pad.cl: padding, nearest upsampling and cropping in one kernel.
 *
 * out (n, c, oh, ow) with oh = h * scale + top + bottom (likewise ow).
 * Pads may be negative, which crops.  Output pixel (y, x) reads the
 * upsampled input at (y - top, x - left); outside [0, h*scale) it is zero,
 * reflected (without repeating the edge) or clamped to the edge, then
 * divided by scale (nearest).
 *
 * pad_nchw: one work-item per @rows consecutive output rows (of all the
 * planes in a row), work-groups of one, so that few large planes and many
 * small ones alike spread over every core; the interior
 * of a plain pad or crop is copied 16 floats at a time.  (One work-item per
 * 16 pixels spent more time in PoCL's work-item loop than in the copy:
 * 3-4x slower on the face ResNet's 35x35 .. 4x4 maps.) */

#ifndef PAD_VEC
#define PAD_VEC 16
#endif

#define PAD_ZERO 0
#define PAD_REFLECT 1
#define PAD_EDGE 2

inline int
pad_map (int i, int size, int mode)
{
  if (i >= 0 && i < size)
    return i;
  if (mode == PAD_ZERO)
    return -1;
  if (mode == PAD_EDGE || size == 1)
    return clamp (i, 0, size - 1);
  /* reflect, repeatedly for pads larger than the size */
  int period = 2 * (size - 1);
  i = abs (i) % period;
  return i < size ? i : period - i;
}

__kernel __attribute__ ((reqd_work_group_size (1, 1, 1)))
void
pad_nchw (__global const float *in, __global float *out, int planes, int h,
    int w, int oh, int ow, int top, int left, int scale, int mode, int rows)
{
  int r0 = get_global_id (0) * rows;
  int rend = min (r0 + rows, planes * oh);

  /* output columns [lo, hi) read input columns x - left inside the image */
  int lo = clamp (left, 0, ow);
  int hi = clamp (left + w * scale, lo, ow);

  for (int r = r0; r < rend; r++) {
    int p = r / oh, y = r % oh;
    int sy = pad_map (y - top, h * scale, mode);
    __global float *dst = out + (size_t) r * ow;
    int x = 0;

    if (sy < 0) {
      for (; x + 16 <= ow; x += 16)
        vstore16 ((float16) (0.0f), 0, dst + x);
      for (; x < ow; x++)
        dst[x] = 0.0f;
      continue;
    }
    __global const float *src = in + ((size_t) p * h + sy / scale) * w;

    for (; x < lo; x++) {
      int sx = pad_map (x - left, w * scale, mode);
      dst[x] = sx < 0 ? 0.0f : src[sx / scale];
    }
    if (scale == 1) {
      for (; x + 16 <= hi; x += 16)
        vstore16 (vload16 (0, src + x - left), 0, dst + x);
      for (; x < hi; x++)
        dst[x] = src[x - left];
    } else {
      for (; x < hi; x++)
        dst[x] = src[(x - left) / scale];
    }
    for (; x < ow; x++) {
      int sx = pad_map (x - left, w * scale, mode);
      dst[x] = sx < 0 ? 0.0f : src[sx / scale];
    }
  }
}

/* out (n, before + c + after, h, w): the input planes at [before, before + c),
 * zeros elsewhere.  One work-item per PAD_VEC values of an output plane. */
__kernel void
pad_channels (__global const float *in, __global float *out, int n, int c,
    int hw, int before, int after)
{
  int i0 = get_global_id (0) * PAD_VEC;
  int oc = get_global_id (1);
  int b = get_global_id (2);
  int ctot = before + c + after;

  if (i0 >= hw || oc >= ctot || b >= n)
    return;
  int ic = oc - before;
  int iend = min (i0 + PAD_VEC, hw);
  __global float *dst = out + ((size_t) b * ctot + oc) * hw;

  if (ic < 0 || ic >= c) {
    for (int i = i0; i < iend; i++)
      dst[i] = 0.0f;
    return;
  }
  __global const float *src = in + ((size_t) b * c + ic) * hw;
  for (int i = i0; i < iend; i++)
    dst[i] = src[i];
}
