/* face-align.c: network inputs cut from the frame (references and device
 * launches of kernels/face.cl) and the alignment geometry: face-api's
 * axis-aligned crop (spec 7.3) and the similarity warp to dlib's chip.
 *
 * The references define the results; the kernels repeat their float
 * operations in the same order with contraction off.  docs/faces.md
 * describes the geometry and where its constants come from. */

#include "face-private.h"

#include <neuralcl/error.h>

#include <math.h>
#include <string.h>

#define GROUP_PIXELS 16         /* pixels per work-item, PIX in face.cl */

const NclFaceNorm ncl_face_norm_face = {
  {122.782f, 117.001f, 104.298f}, 255.0f
};
const NclFaceNorm ncl_face_norm_tiny = {
  {117.001f, 114.697f, 97.404f}, 255.0f
};
const NclFaceNorm ncl_face_norm_ssd = { {127.5f, 127.5f, 127.5f}, 127.5f };

gboolean
ncl_face_crop_from_box (const NclBox * box, gint width, gint height,
    NclFaceCrop * crop)
{
  gdouble cx = MAX (box->x, 0.0), cy = MAX (box->y, 0.0);
  gdouble cw = MIN (box->x + box->w - cx, width - cx);
  gdouble ch = MIN (box->y + box->h - cy, height - cy);

  memset (crop, 0, sizeof (*crop));
  if (!isfinite (box->x) || !isfinite (box->y) || !isfinite (box->w) ||
      !isfinite (box->h))
    return FALSE;
  if (!(floor (cw) > 0.0 && floor (ch) > 0.0 && cx < width && cy < height))
    return FALSE;
  crop->x = (gint) floor (cx);
  crop->y = (gint) floor (cy);
  crop->w = (gint) floor (cw);
  crop->h = (gint) floor (ch);
  /* floor (cx) + floor (width - cx) <= width; keep it so for any input */
  crop->w = MIN (crop->w, width - crop->x);
  crop->h = MIN (crop->h, height - crop->y);
  return crop->w > 0 && crop->h > 0;
}

/* ---- references (kernels/face.cl repeats them) ------------------------- */

static inline gfloat
window_px (const gfloat * plane, gint w, gint y_lo, gint y_hi, gint x_lo,
    gint x_hi, gint y, gint x)
{
  if (y < y_lo || y >= y_hi || x < x_lo || x >= x_hi)
    return 0.0f;
  return plane[(gsize) y * w + x];
}

static inline void
legacy_coord (gint o, gint L, gint S, gint * i0, gint * i1, gfloat * frac)
{
  gint t = o * L;
  gint q = t / S;
  gint rem = t - q * S;

  *i0 = q;
  *i1 = MIN (q + (rem > 0 ? 1 : 0), L - 1);
  *frac = (gfloat) rem / (gfloat) S;
}

/* One square of side L (square pixel (sy, sx) = frame pixel (sy + dy,
 * sx + dx) inside the window) resized to S x S into out (3, S, S). */
static void
legacy_square_ref (const gfloat * rgb, gint w, gint h, gint L, gint S,
    gint dy, gint dx, gint y_lo, gint y_hi, gint x_lo, gint x_hi,
    const NclFaceNorm * norm, gfloat * out)
{
  gsize plane = (gsize) w * h;

  for (gint oy = 0; oy < S; oy++) {
    gint y0, y1;
    gfloat a;

    legacy_coord (oy, L, S, &y0, &y1, &a);
    y0 += dy;
    y1 += dy;
    for (gint ox = 0; ox < S; ox++) {
      gint x0, x1;
      gfloat b;

      legacy_coord (ox, L, S, &x0, &x1, &b);
      x0 += dx;
      x1 += dx;
      for (gint c = 0; c < 3; c++) {
        const gfloat *p = rgb + c * plane;
        gfloat p00 = window_px (p, w, y_lo, y_hi, x_lo, x_hi, y0, x0);
        gfloat p01 = window_px (p, w, y_lo, y_hi, x_lo, x_hi, y0, x1);
        gfloat p10 = window_px (p, w, y_lo, y_hi, x_lo, x_hi, y1, x0);
        gfloat p11 = window_px (p, w, y_lo, y_hi, x_lo, x_hi, y1, x1);
        gfloat top = p00 + (p01 - p00) * b;
        gfloat bot = p10 + (p11 - p10) * b;
        gfloat v = top + (bot - top) * a;

        out[((gsize) c * S + oy) * S + ox] = (v - norm->mean[c]) / norm->div;
      }
    }
  }
}

void
ncl_face_detector_input_ref (const gfloat * rgb, gint w, gint h, gint border,
    gint size, const NclFaceNorm * norm, gfloat * out)
{
  gint L = MAX (w, h) + 2 * border;

  legacy_square_ref (rgb, w, h, L, size, -border, -border, 0, h, 0, w, norm,
      out);
}

void
ncl_face_crops_ref (const gfloat * rgb, gint w, gint h,
    const NclFaceCrop * crops, gint n, gint size, const NclFaceNorm * norm,
    gfloat * out)
{
  for (gint f = 0; f < n; f++) {
    const NclFaceCrop *c = &crops[f];
    gint L = MAX (c->w, c->h);

    legacy_square_ref (rgb, w, h, L, size, c->y - (L - c->h) / 2,
        c->x - (L - c->w) / 2, c->y, c->y + c->h, c->x, c->x + c->w, norm,
        out + (gsize) f * 3 * size * size);
  }
}

static inline gfloat
bilinear_zero (const gfloat * p, gint w, gint h, gfloat X, gfloat Y)
{
  gfloat fx0 = floorf (X), fy0 = floorf (Y);
  gfloat b = X - fx0, a = Y - fy0;
  gint x0 = (gint) fx0, y0 = (gint) fy0;
  gfloat p00 = window_px (p, w, 0, h, 0, w, y0, x0);
  gfloat p01 = window_px (p, w, 0, h, 0, w, y0, x0 + 1);
  gfloat p10 = window_px (p, w, 0, h, 0, w, y0 + 1, x0);
  gfloat p11 = window_px (p, w, 0, h, 0, w, y0 + 1, x0 + 1);
  gfloat top = p00 + (p01 - p00) * b;
  gfloat bot = p10 + (p11 - p10) * b;

  return top + (bot - top) * a;
}

void
ncl_face_warp_ref (const gfloat * rgb, gint w, gint h, const gfloat * params,
    gint n, gint size, const NclFaceNorm * norm, gfloat * out)
{
  gsize plane = (gsize) w * h;

  for (gint f = 0; f < n; f++) {
    const gfloat *m = params + 8 * f;
    gint k = MAX ((gint) m[6], 1);
    gfloat inv_k = 1.0f / (gfloat) k;
    gfloat wk = 1.0f / (gfloat) (k * k);

    for (gint oy = 0; oy < size; oy++) {
      for (gint ox = 0; ox < size; ox++) {
        for (gint c = 0; c < 3; c++) {
          const gfloat *p = rgb + c * plane;
          gfloat sum = 0.0f;

          for (gint j = 0; j < k; j++) {
            gfloat v = (gfloat) oy + (((gfloat) j + 0.5f) * inv_k - 0.5f);

            for (gint i = 0; i < k; i++) {
              gfloat u = (gfloat) ox + (((gfloat) i + 0.5f) * inv_k - 0.5f);
              gfloat X = m[0] * u + m[1] * v + m[2];
              gfloat Y = m[3] * u + m[4] * v + m[5];

              sum += bilinear_zero (p, w, h, X, Y);
            }
          }
          out[(((gsize) f * 3 + c) * size + oy) * size + ox] =
              (sum * wk - norm->mean[c]) / norm->div;
        }
      }
    }
  }
}

/* ---- device ------------------------------------------------------------ */

static gboolean
check_frame (const gchar * what, const NclTensor * rgb, gint n, gint size,
    GError ** error)
{
  if (rgb->n != 1 || rgb->c != 3 || rgb->h < 1 || rgb->w < 1) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "face-align.c: %s: frame tensor (%d, %d, %d, %d), expected "
        "(1, 3, H, W)", what, rgb->n, rgb->c, rgb->h, rgb->w);
    return FALSE;
  }
  if (size < 1 || n < 0) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "face-align.c: %s: %d outputs of size %d", what, n, size);
    return FALSE;
  }
  return TRUE;
}

/* A read-only device copy of @bytes of host data. */
static cl_mem
params_buffer (NclContext * ctx, const void *data, gsize bytes,
    GError ** error)
{
  cl_int st;
  cl_mem buf = clCreateBuffer (ncl_context_get_cl_context (ctx),
      CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, bytes, (void *) data, &st);

  if (st != CL_SUCCESS) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_OPENCL,
        "face-align.c: cannot allocate %" G_GSIZE_FORMAT " bytes of face "
        "parameters: %s", bytes, ncl_cl_status_name (st));
    return NULL;
  }
  return buf;
}

gboolean
ncl_face_detector_input (NclContext * ctx, const NclTensor * rgb, gint border,
    gint size, const NclFaceNorm * norm, NclTensor * out, GError ** error)
{
  cl_kernel k;
  gsize global[2] = { (size + GROUP_PIXELS - 1) / GROUP_PIXELS, size };
  gboolean ok;

  if (!check_frame ("detector input", rgb, 1, size, error))
    return FALSE;
  if (border < 0) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "face-align.c: detector input: border %d < 0", border);
    return FALSE;
  }
  if ((gint64) (MAX (rgb->w, rgb->h) + 2 * (gint64) border) * size >
      G_MAXINT32) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_UNSUPPORTED,
        "face-align.c: detector input: %dx%d frame with border %d is too "
        "large", rgb->w, rgb->h, border);
    return FALSE;
  }
  if (!ncl_tensor_reshape (out, 1, 3, size, size, error))
    return FALSE;
  k = ncl_context_get_kernel (ctx, "face", "face_detector_input", NULL,
      error);
  if (k == NULL)
    return FALSE;
  ncl_context_lock (ctx);
  ok = ncl_kernel_set_args (k, error,
      sizeof (cl_mem), &rgb->buf, sizeof (gint), &rgb->w,
      sizeof (gint), &rgb->h, sizeof (gint), &border, sizeof (gint), &size,
      sizeof (gfloat), &norm->mean[0], sizeof (gfloat), &norm->mean[1],
      sizeof (gfloat), &norm->mean[2], sizeof (gfloat), &norm->div,
      sizeof (cl_mem), &out->buf, 0)
      && ncl_context_run (ctx, k, 2, global, NULL, error);
  ncl_context_unlock (ctx);
  return ok;
}

/* Runs face_crops or face_warp: both take (rgb, W, H, params, n, S, mean,
 * div, out). */
static gboolean
run_batched (NclContext * ctx, const gchar * kernel, const NclTensor * rgb,
    const void *params, gsize param_bytes, gint n, gint size,
    const NclFaceNorm * norm, NclTensor * out, GError ** error)
{
  cl_kernel k;
  cl_mem pbuf;
  gsize global[3] = { (size + GROUP_PIXELS - 1) / GROUP_PIXELS, size, n };
  gboolean ok;

  if (!check_frame (kernel, rgb, n, size, error))
    return FALSE;
  if (n == 0)
    return TRUE;
  if (!ncl_tensor_reshape (out, n, 3, size, size, error))
    return FALSE;
  k = ncl_context_get_kernel (ctx, "face", kernel, NULL, error);
  if (k == NULL)
    return FALSE;
  pbuf = params_buffer (ctx, params, param_bytes, error);
  if (pbuf == NULL)
    return FALSE;
  ncl_context_lock (ctx);
  ok = ncl_kernel_set_args (k, error,
      sizeof (cl_mem), &rgb->buf, sizeof (gint), &rgb->w,
      sizeof (gint), &rgb->h, sizeof (cl_mem), &pbuf, sizeof (gint), &n,
      sizeof (gint), &size, sizeof (gfloat), &norm->mean[0],
      sizeof (gfloat), &norm->mean[1], sizeof (gfloat), &norm->mean[2],
      sizeof (gfloat), &norm->div, sizeof (cl_mem), &out->buf, 0)
      && ncl_context_run (ctx, k, 3, global, NULL, error);
  ncl_context_unlock (ctx);
  /* the queue keeps the buffer alive until the kernel has run */
  clReleaseMemObject (pbuf);
  return ok;
}

gboolean
ncl_face_crops (NclContext * ctx, const NclTensor * rgb,
    const NclFaceCrop * crops, gint n, gint size, const NclFaceNorm * norm,
    NclTensor * out, GError ** error)
{
  g_autofree gint *params = g_new0 (gint, 4 * MAX (n, 1));

  for (gint f = 0; f < n; f++) {
    const NclFaceCrop *c = &crops[f];

    if (c->w < 1 || c->h < 1 || c->x < 0 || c->y < 0 ||
        c->x + c->w > rgb->w || c->y + c->h > rgb->h) {
      g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
          "face-align.c: crop %d (%d, %d, %dx%d) is empty or outside the "
          "%dx%d frame", f, c->x, c->y, c->w, c->h, rgb->w, rgb->h);
      return FALSE;
    }
    if ((gint64) MAX (c->w, c->h) * size > G_MAXINT32) {
      g_set_error (error, NCL_ERROR, NCL_ERROR_UNSUPPORTED,
          "face-align.c: crop %d (%dx%d) is too large", f, c->w, c->h);
      return FALSE;
    }
    params[4 * f] = c->x;
    params[4 * f + 1] = c->y;
    params[4 * f + 2] = c->w;
    params[4 * f + 3] = c->h;
  }
  return run_batched (ctx, "face_crops", rgb, params,
      sizeof (gint) * 4 * MAX (n, 1), n, size, norm, out, error);
}

gboolean
ncl_face_warp (NclContext * ctx, const NclTensor * rgb, const gfloat * params,
    gint n, gint size, const NclFaceNorm * norm, NclTensor * out,
    GError ** error)
{
  return run_batched (ctx, "face_warp", rgb, params,
      sizeof (gfloat) * 8 * MAX (n, 1), n, size, norm, out, error);
}

/* ---- face-api's axis-aligned crop (spec 7.3) --------------------------- */

static void
mean_point (const NclPoint * p, gint from, gint to, NclPoint * m)
{
  gdouble sx = 0, sy = 0;

  for (gint i = from; i <= to; i++) {
    sx += p[i].x;
    sy += p[i].y;
  }
  m->x = sx / (to - from + 1);
  m->y = sy / (to - from + 1);
}

void
ncl_face_align_box (const NclPoint * lm, const NclFaceCrop * det_crop,
    NclBox * box)
{
  NclPoint l, r, m;
  gdouble d, size, cx, cy, x, y;

  mean_point (lm, 36, 41, &l);
  mean_point (lm, 42, 47, &r);
  mean_point (lm, 48, 67, &m);
  d = (hypot (m.x - l.x, m.y - l.y) + hypot (m.x - r.x, m.y - r.y)) / 2;
  size = floor (d / 0.45);
  cx = (l.x + r.x + m.x) / 3;
  cy = (l.y + r.y + m.y) / 3;
  x = floor (MAX (0.0, cx - 0.5 * size));
  y = floor (MAX (0.0, cy - 0.43 * size));
  box->x = x;
  box->y = y;
  /* face-api bounds the size by the detection crop, not the frame */
  box->w = MIN (size, det_crop->w + x);
  box->h = MIN (size, det_crop->h + y);
}

/* ---- similarity warp to dlib's chip ------------------------------------ */

/* dlib's mean face: average positions of landmarks 17..67 in a unit square
 * (dlib/image_transforms/interpolation.h, get_face_chip_details).  dlib fits
 * points 27..54 and 60..64: it skips the eyebrows (17..26) and the lower lip
 * (55..59, 65..67). */
static const gdouble mean_face_x[51] = {
  0.000213256, 0.0752622, 0.18113, 0.29077, 0.393397, 0.586856, 0.689483,
  0.799124, 0.904991, 0.98004, 0.490127, 0.490127, 0.490127, 0.490127,
  0.36688, 0.426036, 0.490127, 0.554217, 0.613373, 0.121737, 0.187122,
  0.265825, 0.334606, 0.260918, 0.182743, 0.645647, 0.714428, 0.793132,
  0.858516, 0.79751, 0.719335, 0.254149, 0.340985, 0.428858, 0.490127,
  0.551395, 0.639268, 0.726104, 0.642159, 0.556721, 0.490127, 0.423532,
  0.338094, 0.290379, 0.428096, 0.490127, 0.552157, 0.689874, 0.553364,
  0.490127, 0.42689
};

static const gdouble mean_face_y[51] = {
  0.106454, 0.038915, 0.0187482, 0.0344891, 0.0773906, 0.0773906, 0.0344891,
  0.0187482, 0.038915, 0.106454, 0.203352, 0.307009, 0.409805, 0.515625,
  0.587326, 0.609345, 0.628106, 0.609345, 0.587326, 0.216423, 0.178758,
  0.179852, 0.231733, 0.245099, 0.244077, 0.231733, 0.179852, 0.178758,
  0.216423, 0.244077, 0.245099, 0.780233, 0.745405, 0.727388, 0.742578,
  0.727388, 0.745405, 0.780233, 0.864805, 0.902192, 0.909281, 0.902192,
  0.864805, 0.784792, 0.778746, 0.785343, 0.778746, 0.784792, 0.824182,
  0.831803, 0.824182
};

static gboolean
template_point_used (gint i)
{
  return i >= 27 && i <= 64 && !(i >= 55 && i <= 59);
}

void
ncl_face_warp_params (const NclPoint * lm, gint size, gfloat * params)
{
  gdouble pad = NCL_FACE_CHIP_PADDING;
  gdouble ms[2] = { 0, 0 }, md[2] = { 0, 0 };
  gdouble sxx = 0, num_a = 0, num_b = 0;
  gdouble a, b, tx, ty, scale, s_eff, cth, sth, cx, cy, half;
  gint n = 0;

  /* least squares similarity chip -> frame: d = [a -b; b a] s + t */
  for (gint i = 0; i < NCL_FACE_N_LANDMARKS; i++) {
    if (!template_point_used (i))
      continue;
    ms[0] += (pad + mean_face_x[i - 17]) / (2 * pad + 1) * size;
    ms[1] += (pad + mean_face_y[i - 17]) / (2 * pad + 1) * size;
    md[0] += lm[i].x;
    md[1] += lm[i].y;
    n++;
  }
  for (gint j = 0; j < 2; j++) {
    ms[j] /= n;
    md[j] /= n;
  }
  for (gint i = 0; i < NCL_FACE_N_LANDMARKS; i++) {
    gdouble sx, sy, dx, dy;

    if (!template_point_used (i))
      continue;
    sx = (pad + mean_face_x[i - 17]) / (2 * pad + 1) * size - ms[0];
    sy = (pad + mean_face_y[i - 17]) / (2 * pad + 1) * size - ms[1];
    dx = lm[i].x - md[0];
    dy = lm[i].y - md[1];
    sxx += sx * sx + sy * sy;
    num_a += sx * dx + sy * dy;
    num_b += sx * dy - sy * dx;
  }
  a = sxx > 0 ? num_a / sxx : 1.0;
  b = sxx > 0 ? num_b / sxx : 0.0;
  tx = md[0] - (a * ms[0] - b * ms[1]);
  ty = md[1] - (b * ms[0] + a * ms[1]);

  /* dlib's chip_details keeps the angle, the scale and the image of the
   * chip centre (size / 2); extract_image_chip then maps chip pixel 0 and
   * size - 1 to the ends of a rectangle size * scale - 1 wide. */
  scale = hypot (a, b);
  if (!(scale > 0))
    scale = 1.0;
  cth = a / scale;
  sth = b / scale;
  cx = a * size / 2.0 - b * size / 2.0 + tx;
  cy = b * size / 2.0 + a * size / 2.0 + ty;
  s_eff = size > 1 ? (size * scale - 1) / (size - 1) : scale;
  half = (size - 1) / 2.0;

  params[0] = s_eff * cth;
  params[1] = -s_eff * sth;
  params[2] = cx - s_eff * (cth * half - sth * half);
  params[3] = s_eff * sth;
  params[4] = s_eff * cth;
  params[5] = cy - s_eff * (sth * half + cth * half);
  /* dlib blurs through an image pyramid when it shrinks; k x k sub-samples
   * stand in for it */
  params[6] = CLAMP (floor (s_eff), 1, 8);
  params[7] = 0;
}
