/* pad.cl: padding, nearest upsampling and cropping in one kernel.
 *
 * out (n, c, oh, ow) with oh = h * scale + top + bottom (likewise ow).
 * Pads may be negative, which crops.  Output pixel (y, x) reads the
 * upsampled input at (y - top, x - left); outside [0, h*scale) it is zero,
 * reflected (without repeating the edge) or clamped to the edge, then
 * divided by scale (nearest).  One work-item per PAD_VEC output pixels of a
 * row. */

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

__kernel void
pad_nchw (__global const float *in, __global float *out, int planes, int h,
    int w, int oh, int ow, int top, int left, int scale, int mode)
{
  int x0 = get_global_id (0) * PAD_VEC;
  int y = get_global_id (1);
  int p = get_global_id (2);

  if (x0 >= ow || y >= oh || p >= planes)
    return;
  int sy = pad_map (y - top, h * scale, mode);
  __global const float *src = in + (size_t) p * h * w;
  __global float *dst = out + ((size_t) p * oh + y) * ow;
  int xend = min (x0 + PAD_VEC, ow);

  if (sy < 0) {
    for (int x = x0; x < xend; x++)
      dst[x] = 0.0f;
    return;
  }
  src += (size_t) (sy / scale) * w;
  /* interior run of a plain pad or crop: a straight copy */
  if (scale == 1 && xend - x0 == PAD_VEC && x0 - left >= 0 &&
      x0 + PAD_VEC - left <= w) {
#if PAD_VEC == 16
    vstore16 (vload16 (0, src + x0 - left), 0, dst + x0);
#else
    for (int x = x0; x < xend; x++)
      dst[x] = src[x - left];
#endif
    return;
  }
  for (int x = x0; x < xend; x++) {
    int sx = pad_map (x - left, w * scale, mode);
    dst[x] = sx < 0 ? 0.0f : src[sx / scale];
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
