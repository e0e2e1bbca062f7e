/* image.c: pixel format names, 8-bit frames <-> planar float RGB (plain-C
 * reference and device path through NclFrameIO), and bilinear resize.
 *
 * The references define the results; kernels/image.cl repeats their float
 * operations in the same order (with contraction off), so the device output
 * matches them bit for bit on IEEE devices.
 *
 * Conventions beyond the header:
 *   - @orig of ncl_image_from_planar_ref () is (1, 3, img->height,
 *     img->width), the layout ncl_image_to_planar_ref () writes; the device
 *     version takes any orig tensor at least the image's size (top-left
 *     crop, like @rgb).  Without @orig, @strength and @preserve_colors have
 *     nothing to act on and are ignored.
 *   - "Luma of s with the chroma of orig" in BT.601 full range is
 *     orig + (Y(s) - Y(orig)) on every channel, with Y = 0.299 R + 0.587 G +
 *     0.114 B; that is the form computed.
 *   - Rounding is floor (x + 0.5) after clamping to 0..255.
 *   - Packed 4-byte formats keep the image's 4th byte (alpha or padding).
 *   - YUV output: Y per pixel; U and V from the mean of the 2x2 block's
 *     finished RGB, over the pixels that exist at odd edges.  GRAY8 output is
 *     the full range luma; GRAY8 input is R = G = B = Y.
 */

#include <neuralcl/image.h>
#include <neuralcl/error.h>

#include <math.h>
#include <string.h>

#define GROUP_PIXELS 8          /* pixels per work-item, PIX in image.cl */

static const gchar *const format_names[] = {
  [NCL_FORMAT_RGB] = "RGB",
  [NCL_FORMAT_BGR] = "BGR",
  [NCL_FORMAT_RGBX] = "RGBx",
  [NCL_FORMAT_BGRX] = "BGRx",
  [NCL_FORMAT_RGBA] = "RGBA",
  [NCL_FORMAT_BGRA] = "BGRA",
  [NCL_FORMAT_I420] = "I420",
  [NCL_FORMAT_NV12] = "NV12",
  [NCL_FORMAT_GRAY8] = "GRAY8",
};

const gchar *
ncl_pixel_format_to_string (NclPixelFormat format)
{
  if ((guint) format >= G_N_ELEMENTS (format_names))
    return NULL;
  return format_names[format];
}

gboolean
ncl_pixel_format_from_string (const gchar * s, NclPixelFormat * format)
{
  for (guint i = 0; s != NULL && i < G_N_ELEMENTS (format_names); i++) {
    if (strcmp (s, format_names[i]) == 0) {
      if (format != NULL)
        *format = (NclPixelFormat) i;
      return TRUE;
    }
  }
  return FALSE;
}

/* Packed formats: bytes per pixel and the byte positions of R, G, B;
 * FALSE for the planar ones. */
static gboolean
packed_layout (NclPixelFormat format, gint * bpp, gint * ro, gint * go,
    gint * bo)
{
  gboolean bgr = format == NCL_FORMAT_BGR || format == NCL_FORMAT_BGRX ||
      format == NCL_FORMAT_BGRA;

  switch (format) {
    case NCL_FORMAT_RGB:
    case NCL_FORMAT_BGR:
      *bpp = 3;
      break;
    case NCL_FORMAT_RGBX:
    case NCL_FORMAT_BGRX:
    case NCL_FORMAT_RGBA:
    case NCL_FORMAT_BGRA:
      *bpp = 4;
      break;
    default:
      return FALSE;
  }
  *ro = bgr ? 2 : 0;
  *go = 1;
  *bo = bgr ? 0 : 2;
  return TRUE;
}

static inline gboolean
format_is_yuv (NclPixelFormat format)
{
  return format == NCL_FORMAT_I420 || format == NCL_FORMAT_NV12;
}

/* ---- colour arithmetic (kernels/image.cl repeats it) -------------------- */

static inline gfloat
clamp255 (gfloat x)
{
  return fminf (fmaxf (x, 0.0f), 255.0f);
}

static inline guint8
round_u8 (gfloat x)
{
  return (guint8) floorf (clamp255 (x) + 0.5f);
}

/* BT.601 limited range YCbCr -> RGB 0..255. */
static inline void
yuv_to_rgb (gfloat y, gfloat u, gfloat v, gfloat * r, gfloat * g, gfloat * b)
{
  gfloat yy = 1.1643836f * (y - 16.0f);
  gfloat uu = u - 128.0f;
  gfloat vv = v - 128.0f;

  *r = clamp255 (yy + 1.5960268f * vv);
  *g = clamp255 (yy - 0.39176229f * uu - 0.81296765f * vv);
  *b = clamp255 (yy + 2.0172321f * uu);
}

static inline gfloat
luma_limited (const gfloat s[3])
{
  return 16.0f + (0.25678824f * s[0] + 0.50412941f * s[1] +
      0.097905882f * s[2]);
}

static inline gfloat
cb_limited (const gfloat s[3])
{
  return 128.0f + (-0.14822290f * s[0] - 0.29099279f * s[1] +
      0.43921569f * s[2]);
}

static inline gfloat
cr_limited (const gfloat s[3])
{
  return 128.0f + (0.43921569f * s[0] - 0.36778831f * s[1] -
      0.071427373f * s[2]);
}

/* The stylised pixel: blend with orig, keep orig's chroma, clamp. */
static inline void
finish_rgb (gfloat s[3], const gfloat o[3], gboolean have_orig,
    gfloat strength, gboolean preserve)
{
  if (have_orig) {
    for (gint c = 0; c < 3; c++)
      s[c] = o[c] + strength * (s[c] - o[c]);
    if (preserve) {
      gfloat dy = 0.299f * (s[0] - o[0]) + 0.587f * (s[1] - o[1]) +
          0.114f * (s[2] - o[2]);

      for (gint c = 0; c < 3; c++)
        s[c] = o[c] + dy;
    }
  }
  for (gint c = 0; c < 3; c++)
    s[c] = clamp255 (s[c]);
}

/* ---- references ---------------------------------------------------------- */

void
ncl_image_to_planar_ref (const NclImage * img, gfloat * out)
{
  gint w = img->width, h = img->height;
  gsize plane = (gsize) w * h;
  gint bpp = 1, ro = 0, go = 0, bo = 0;
  gboolean packed = packed_layout (img->format, &bpp, &ro, &go, &bo);

  for (gint y = 0; y < h; y++) {
    const guint8 *row = img->planes[0] + (gsize) y * img->strides[0];
    gfloat *outr = out + (gsize) y * w;

    for (gint x = 0; x < w; x++) {
      gfloat r, g, b;

      if (packed) {
        r = row[x * bpp + ro];
        g = row[x * bpp + go];
        b = row[x * bpp + bo];
      } else if (img->format == NCL_FORMAT_GRAY8) {
        r = g = b = row[x];
      } else {
        gsize c1 = (gsize) (y / 2) * img->strides[1];
        gfloat u, v;

        if (img->format == NCL_FORMAT_I420) {
          u = img->planes[1][c1 + x / 2];
          v = img->planes[2][(gsize) (y / 2) * img->strides[2] + x / 2];
        } else {
          u = img->planes[1][c1 + (x / 2) * 2];
          v = img->planes[1][c1 + (x / 2) * 2 + 1];
        }
        yuv_to_rgb (row[x], u, v, &r, &g, &b);
      }
      outr[x] = r;
      outr[plane + x] = g;
      outr[2 * plane + x] = b;
    }
  }
}

/* Finished pixel (x, y) of the image. */
static inline void
ref_pixel (const gfloat * rgb, gint rgb_w, gint rgb_h, const gfloat * orig,
    gint w, gint h, gfloat strength, gboolean preserve, gint x, gint y,
    gfloat s[3])
{
  gsize plane = (gsize) rgb_w * rgb_h;
  gsize i = (gsize) y * rgb_w + x;
  gfloat o[3] = { 0.0f, 0.0f, 0.0f };

  for (gint c = 0; c < 3; c++)
    s[c] = rgb[c * plane + i];
  if (orig != NULL) {
    gsize oplane = (gsize) w * h;
    gsize oi = (gsize) y * w + x;

    for (gint c = 0; c < 3; c++)
      o[c] = orig[c * oplane + oi];
  }
  finish_rgb (s, o, orig != NULL, strength, preserve);
}

static void
from_planar_yuv_ref (const gfloat * rgb, gint rgb_w, gint rgb_h,
    const gfloat * orig, gfloat strength, gboolean preserve, NclImage * img)
{
  gint w = img->width, h = img->height;
  gint cw = (w + 1) / 2, ch = (h + 1) / 2;

  for (gint cy = 0; cy < ch; cy++) {
    for (gint cx = 0; cx < cw; cx++) {
      gfloat p[2][2][3] = { 0 };       /* [row][col][channel] */
      gfloat mean[3];
      gint cols = MIN (2, w - 2 * cx), rows = MIN (2, h - 2 * cy);
      gint cnt = cols * rows;
      gfloat f = cnt == 4 ? 0.25f : cnt == 2 ? 0.5f : 1.0f;
      guint8 u, v;

      for (gint j = 0; j < rows; j++) {
        for (gint i = 0; i < cols; i++) {
          gint x = 2 * cx + i, y = 2 * cy + j;

          ref_pixel (rgb, rgb_w, rgb_h, orig, w, h, strength, preserve, x,
              y, p[j][i]);
          img->planes[0][(gsize) y * img->strides[0] + x] =
              round_u8 (luma_limited (p[j][i]));
        }
      }
      /* Missing pixels are exact zeros: the sum order stays the kernel's. */
      for (gint c = 0; c < 3; c++)
        mean[c] = ((p[0][0][c] + p[0][1][c]) + (p[1][0][c] + p[1][1][c])) *
            f;
      u = round_u8 (cb_limited (mean));
      v = round_u8 (cr_limited (mean));
      if (img->format == NCL_FORMAT_I420) {
        img->planes[1][(gsize) cy * img->strides[1] + cx] = u;
        img->planes[2][(gsize) cy * img->strides[2] + cx] = v;
      } else {
        guint8 *uv = img->planes[1] + (gsize) cy * img->strides[1] + 2 * cx;

        uv[0] = u;
        uv[1] = v;
      }
    }
  }
}

void
ncl_image_from_planar_ref (const gfloat * rgb, gint rgb_w, gint rgb_h,
    const gfloat * orig, gfloat strength, gboolean preserve_colors,
    NclImage * img)
{
  gint w = img->width, h = img->height;
  gint bpp = 1, ro = 0, go = 0, bo = 0;
  gboolean packed = packed_layout (img->format, &bpp, &ro, &go, &bo);

  if (format_is_yuv (img->format)) {
    from_planar_yuv_ref (rgb, rgb_w, rgb_h, orig, strength, preserve_colors,
        img);
    return;
  }
  for (gint y = 0; y < h; y++) {
    guint8 *row = img->planes[0] + (gsize) y * img->strides[0];

    for (gint x = 0; x < w; x++) {
      gfloat s[3];

      ref_pixel (rgb, rgb_w, rgb_h, orig, w, h, strength, preserve_colors, x,
          y, s);
      if (packed) {
        row[x * bpp + ro] = round_u8 (s[0]);
        row[x * bpp + go] = round_u8 (s[1]);
        row[x * bpp + bo] = round_u8 (s[2]);
      } else {
        row[x] = round_u8 (0.299f * s[0] + 0.587f * s[1] + 0.114f * s[2]);
      }
    }
  }
}

/* Source index pair and weight of output coordinate @o along one axis. */
static inline void
resize_coord (gint o, gfloat scale, gint size, gint * i0, gint * i1,
    gfloat * l)
{
  gfloat f = fmaxf (scale * ((gfloat) o + 0.5f) - 0.5f, 0.0f);

  *i0 = MIN ((gint) f, size - 1);
  *i1 = MIN (*i0 + 1, size - 1);
  *l = f - (gfloat) (*i0);
}

void
ncl_resize_bilinear_ref (const gfloat * in, gint n, gint c, gint h, gint w,
    gint oh, gint ow, gfloat * out)
{
  gfloat sy = (gfloat) h / (gfloat) oh;
  gfloat sx = (gfloat) w / (gfloat) ow;

  for (gint p = 0; p < n * c; p++) {
    const gfloat *s = in + (gsize) p * h * w;

    for (gint oy = 0; oy < oh; oy++) {
      gint y0, y1;
      gfloat ly, hy;

      resize_coord (oy, sy, h, &y0, &y1, &ly);
      hy = 1.0f - ly;
      for (gint ox = 0; ox < ow; ox++) {
        gint x0, x1;
        gfloat lx, hx;

        resize_coord (ox, sx, w, &x0, &x1, &lx);
        hx = 1.0f - lx;
        out[((gsize) p * oh + oy) * ow + ox] =
            hy * (hx * s[y0 * w + x0] + lx * s[y0 * w + x1]) +
            ly * (hx * s[y1 * w + x0] + lx * s[y1 * w + x1]);
      }
    }
  }
}

/* ---- device ------------------------------------------------------------- */

gboolean
ncl_resize_bilinear (NclContext * ctx, const NclTensor * in, NclTensor * out,
    GError ** error)
{
  cl_kernel k;
  gint h = in->h, w = in->w, oh = out->h, ow = out->w;
  gint planes = in->n * in->c;
  gfloat sy, sx;
  gsize global[3];
  gboolean ok;

  if (in->n != out->n || in->c != out->c) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "image.c: resize: output (%d, %d, %d, %d) does not match input "
        "(%d, %d, %d, %d) in n and c", out->n, out->c, out->h, out->w,
        in->n, in->c, in->h, in->w);
    return FALSE;
  }
  if (planes == 0 || oh == 0 || ow == 0)
    return TRUE;
  if (h <= 0 || w <= 0) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "image.c: resize: empty input (%d, %d, %d, %d)", in->n, in->c, h, w);
    return FALSE;
  }
  k = ncl_context_get_kernel (ctx, "image", "resize_bilinear", NULL, error);
  if (k == NULL)
    return FALSE;
  sy = (gfloat) h / (gfloat) oh;
  sx = (gfloat) w / (gfloat) ow;
  global[0] = ow;
  global[1] = oh;
  global[2] = planes;

  ncl_context_lock (ctx);
  ok = ncl_kernel_set_args (k, error,
      sizeof (cl_mem), &in->buf, sizeof (gint), &h, sizeof (gint), &w,
      sizeof (cl_mem), &out->buf, sizeof (gint), &oh, sizeof (gint), &ow,
      sizeof (gfloat), &sy, sizeof (gfloat), &sx, sizeof (gint), &planes, 0)
      && ncl_context_run (ctx, k, 3, global, NULL, error);
  ncl_context_unlock (ctx);
  return ok;
}

struct _NclFrameIO
{
  NclContext *ctx;              /* owned reference */
  cl_mem staging;               /* raw frame bytes, planes packed tightly */
  gsize staging_size;           /* bytes */
};

/* Where each plane of an image lives in the staging buffer. */
typedef struct
{
  gint n_planes;
  gsize row_bytes[3];
  gint rows[3];
  gsize offset[3];
  gsize total;
} FrameLayout;

static gboolean
frame_layout (const NclImage * img, FrameLayout * l, GError ** error)
{
  gint w = img->width, h = img->height;
  gint cw = (w + 1) / 2, ch = (h + 1) / 2;
  gint bpp = 1, ro = 0, go = 0, bo = 0;

  if ((guint) img->format >= G_N_ELEMENTS (format_names)) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_UNSUPPORTED,
        "image.c: unknown pixel format %d", img->format);
    return FALSE;
  }
  if (w <= 0 || h <= 0) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "image.c: %s image of %dx%d, expected at least 1x1",
        format_names[img->format], w, h);
    return FALSE;
  }
  memset (l, 0, sizeof (*l));
  l->n_planes = 1;
  l->row_bytes[0] = packed_layout (img->format, &bpp, &ro, &go, &bo) ?
      (gsize) w * bpp : (gsize) w;
  l->rows[0] = h;
  if (img->format == NCL_FORMAT_I420) {
    l->n_planes = 3;
    l->row_bytes[1] = l->row_bytes[2] = cw;
    l->rows[1] = l->rows[2] = ch;
  } else if (img->format == NCL_FORMAT_NV12) {
    l->n_planes = 2;
    l->row_bytes[1] = 2 * (gsize) cw;
    l->rows[1] = ch;
  }
  for (gint p = 0; p < l->n_planes; p++) {
    if (img->planes[p] == NULL || img->strides[p] < 0 ||
        (gsize) img->strides[p] < l->row_bytes[p]) {
      g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
          "image.c: %s %dx%d plane %d: stride %d, expected at least %"
          G_GSIZE_FORMAT "%s", format_names[img->format], w, h, p,
          img->strides[p], l->row_bytes[p],
          img->planes[p] == NULL ? " (and no data)" : "");
      return FALSE;
    }
    l->offset[p] = l->total;
    l->total += l->row_bytes[p] * l->rows[p];
  }
  if (l->total > G_MAXINT) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_UNSUPPORTED,
        "image.c: %dx%d frame is too large", w, h);
    return FALSE;
  }
  return TRUE;
}

NclFrameIO *
ncl_frame_io_new (NclContext * ctx)
{
  NclFrameIO *io = g_new0 (NclFrameIO, 1);

  io->ctx = ncl_context_ref (ctx);
  return io;
}

void
ncl_frame_io_free (NclFrameIO * io)
{
  if (io == NULL)
    return;
  if (io->staging != NULL)
    clReleaseMemObject (io->staging);
  io->staging = NULL;
  ncl_context_unref (io->ctx);
  g_free (io);
}

static gboolean
ensure_staging (NclFrameIO * io, gsize size, GError ** error)
{
  cl_int st;

  if (io->staging != NULL && io->staging_size >= size)
    return TRUE;
  if (io->staging != NULL)
    clReleaseMemObject (io->staging);
  io->staging = NULL;
  io->staging_size = 0;
  /* Round up so that small size changes do not reallocate every frame. */
  size = (size + 65535) & ~(gsize) 65535;
  io->staging = clCreateBuffer (ncl_context_get_cl_context (io->ctx),
      CL_MEM_READ_WRITE, size, NULL, &st);
  if (st != CL_SUCCESS) {
    io->staging = NULL;
    g_set_error (error, NCL_ERROR, NCL_ERROR_OPENCL,
        "image.c: clCreateBuffer (%" G_GSIZE_FORMAT " bytes): %s", size,
        ncl_cl_status_name (st));
    return FALSE;
  }
  io->staging_size = size;
  return TRUE;
}

/* Blocking copy of plane @p between the image (strided) and the staging
 * buffer (packed). */
static gboolean
copy_plane (NclFrameIO * io, const FrameLayout * l, const NclImage * img,
    gint p, gboolean to_device, GError ** error)
{
  cl_command_queue q = ncl_context_get_queue (io->ctx);
  gsize rb = l->row_bytes[p];
  cl_int st;

  if ((gsize) img->strides[p] == rb || l->rows[p] == 1) {
    gsize size = rb * l->rows[p];

    st = to_device ?
        clEnqueueWriteBuffer (q, io->staging, CL_TRUE, l->offset[p], size,
        img->planes[p], 0, NULL, NULL) :
        clEnqueueReadBuffer (q, io->staging, CL_TRUE, l->offset[p], size,
        img->planes[p], 0, NULL, NULL);
  } else {
    size_t buf_origin[3] = { l->offset[p], 0, 0 };
    size_t host_origin[3] = { 0, 0, 0 };
    size_t region[3] = { rb, l->rows[p], 1 };

    st = to_device ?
        clEnqueueWriteBufferRect (q, io->staging, CL_TRUE, buf_origin,
        host_origin, region, rb, 0, img->strides[p], 0, img->planes[p], 0,
        NULL, NULL) :
        clEnqueueReadBufferRect (q, io->staging, CL_TRUE, buf_origin,
        host_origin, region, rb, 0, img->strides[p], 0, img->planes[p], 0,
        NULL, NULL);
  }
  if (st != CL_SUCCESS) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_OPENCL,
        "image.c: %s of %s plane %d: %s",
        to_device ? "upload" : "download", format_names[img->format], p,
        ncl_cl_status_name (st));
    return FALSE;
  }
  return TRUE;
}

static cl_kernel
format_kernel (NclFrameIO * io, NclPixelFormat format, const gchar * name,
    GError ** error)
{
  g_autofree gchar *options = g_strdup_printf ("-DNCL_FMT=%d", format);

  return ncl_context_get_kernel (io->ctx, "image", name, options, error);
}

gboolean
ncl_frame_io_upload (NclFrameIO * io, const NclImage * img, NclTensor * rgb,
    GError ** error)
{
  FrameLayout l;
  cl_kernel k;
  gint off1, off2, w = img->width, h = img->height;
  gsize global[2];
  gboolean ok;

  if (!frame_layout (img, &l, error) || !ensure_staging (io, l.total, error))
    return FALSE;
  k = format_kernel (io, img->format, "image_to_planar", error);
  if (k == NULL || !ncl_tensor_reshape (rgb, 1, 3, h, w, error))
    return FALSE;
  for (gint p = 0; p < l.n_planes; p++)
    if (!copy_plane (io, &l, img, p, TRUE, error))
      return FALSE;

  off1 = l.offset[1];
  off2 = l.offset[2];
  global[0] = (w + GROUP_PIXELS - 1) / GROUP_PIXELS;
  global[1] = h;
  ncl_context_lock (io->ctx);
  ok = ncl_kernel_set_args (k, error,
      sizeof (cl_mem), &io->staging, sizeof (gint), &off1,
      sizeof (gint), &off2, sizeof (gint), &w, sizeof (gint), &h,
      sizeof (cl_mem), &rgb->buf, 0)
      && ncl_context_run (io->ctx, k, 2, global, NULL, error);
  ncl_context_unlock (io->ctx);
  return ok;
}

static gboolean
check_source (const gchar * what, const NclTensor * t, const NclImage * img,
    GError ** error)
{
  if (t->n < 1 || t->c != 3 || t->h < img->height || t->w < img->width) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "image.c: tensor '%s': (%d, %d, %d, %d), expected (1, 3, >= %d, "
        ">= %d) for a %dx%d frame", what, t->n, t->c, t->h, t->w,
        img->height, img->width, img->width, img->height);
    return FALSE;
  }
  return TRUE;
}

gboolean
ncl_frame_io_download (NclFrameIO * io, const NclTensor * rgb,
    const NclTensor * orig, gfloat strength, gboolean preserve_colors,
    NclImage * img, GError ** error)
{
  FrameLayout l;
  cl_kernel k;
  gint off1, off2, w = img->width, h = img->height;
  gint have_orig = orig != NULL, preserve = preserve_colors ? 1 : 0;
  gint orig_w = orig ? orig->w : rgb->w, orig_h = orig ? orig->h : rgb->h;
  cl_mem orig_buf = orig ? orig->buf : rgb->buf;
  gint bpp = 1, ro = 0, go = 0, bo = 0;
  gsize global[2];
  gboolean ok;

  if (!frame_layout (img, &l, error) || !check_source ("rgb", rgb, img, error)
      || (orig != NULL && !check_source ("orig", orig, img, error))
      || !ensure_staging (io, l.total, error))
    return FALSE;
  k = format_kernel (io, img->format, "image_from_planar", error);
  if (k == NULL)
    return FALSE;
  /* The kernel keeps the 4th byte of packed 4-byte pixels from staging. */
  if (packed_layout (img->format, &bpp, &ro, &go, &bo) && bpp == 4 &&
      !copy_plane (io, &l, img, 0, TRUE, error))
    return FALSE;

  off1 = l.offset[1];
  off2 = l.offset[2];
  global[0] = (w + GROUP_PIXELS - 1) / GROUP_PIXELS;
  global[1] = format_is_yuv (img->format) ? (h + 1) / 2 : h;
  ncl_context_lock (io->ctx);
  ok = ncl_kernel_set_args (k, error,
      sizeof (cl_mem), &rgb->buf, sizeof (gint), &rgb->w,
      sizeof (gint), &rgb->h, sizeof (cl_mem), &orig_buf,
      sizeof (gint), &orig_w, sizeof (gint), &orig_h,
      sizeof (gint), &have_orig, sizeof (gfloat), &strength,
      sizeof (gint), &preserve, sizeof (cl_mem), &io->staging,
      sizeof (gint), &off1, sizeof (gint), &off2, sizeof (gint), &w,
      sizeof (gint), &h, 0)
      && ncl_context_run (io->ctx, k, 2, global, NULL, error);
  ncl_context_unlock (io->ctx);
  if (!ok)
    return FALSE;
  for (gint p = 0; p < l.n_planes; p++)
    if (!copy_plane (io, &l, img, p, FALSE, error))
      return FALSE;
  return TRUE;
}
