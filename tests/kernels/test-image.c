/* Frame conversion and bilinear resize: device vs the C references, on every
 * pixel format, odd sizes and padded strides. */
#include "common.h"

#include <math.h>
#include <string.h>

static const NclPixelFormat all_formats[] = {
  NCL_FORMAT_RGB, NCL_FORMAT_BGR, NCL_FORMAT_RGBX, NCL_FORMAT_BGRX,
  NCL_FORMAT_RGBA, NCL_FORMAT_BGRA, NCL_FORMAT_I420, NCL_FORMAT_NV12,
  NCL_FORMAT_GRAY8,
};

static const gint sizes[][2] = {        /* width, height */
  {1, 1}, {3, 5}, {7, 3}, {17, 9}, {64, 48},
};

/* An image owning its planes; rows are padded past the pixels. */
typedef struct
{
  NclImage img;
  gsize row_bytes[3];
  gint rows[3];
  gint n_planes;
} TestImage;

static gboolean
is_yuv (NclPixelFormat f)
{
  return f == NCL_FORMAT_I420 || f == NCL_FORMAT_NV12;
}

static gboolean
is_packed_rgb (NclPixelFormat f)
{
  return f != NCL_FORMAT_GRAY8 && !is_yuv (f);
}

static gint
bytes_per_pixel (NclPixelFormat f)
{
  switch (f) {
    case NCL_FORMAT_RGB:
    case NCL_FORMAT_BGR:
      return 3;
    case NCL_FORMAT_GRAY8:
    case NCL_FORMAT_I420:
    case NCL_FORMAT_NV12:
      return 1;
    default:
      return 4;
  }
}

static void
test_image_free (TestImage * t)
{
  for (gint p = 0; p < 3; p++)
    g_free (t->img.planes[p]);
  g_free (t);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TestImage, test_image_free)

/* Random bytes everywhere, padding included; @pad extra bytes a row. */
static TestImage *
test_image_new (NclPixelFormat f, gint w, gint h, gint pad, GRand * rand)
{
  TestImage *t = g_new0 (TestImage, 1);
  gint cw = (w + 1) / 2, ch = (h + 1) / 2;

  t->img.format = f;
  t->img.width = w;
  t->img.height = h;
  t->n_planes = 1;
  t->row_bytes[0] = (gsize) w * bytes_per_pixel (f);
  t->rows[0] = h;
  if (f == NCL_FORMAT_I420) {
    t->n_planes = 3;
    t->row_bytes[1] = t->row_bytes[2] = cw;
    t->rows[1] = t->rows[2] = ch;
  } else if (f == NCL_FORMAT_NV12) {
    t->n_planes = 2;
    t->row_bytes[1] = 2 * cw;
    t->rows[1] = ch;
  }
  for (gint p = 0; p < t->n_planes; p++) {
    gsize size;

    t->img.strides[p] = t->row_bytes[p] + pad + p;
    size = (gsize) t->img.strides[p] * t->rows[p];
    t->img.planes[p] = g_malloc (size);
    for (gsize i = 0; i < size; i++)
      t->img.planes[p][i] = g_rand_int_range (rand, 0, 256);
  }
  return t;
}

static TestImage *
test_image_copy (const TestImage * src)
{
  TestImage *t = g_memdup2 (src, sizeof (TestImage));

  for (gint p = 0; p < 3; p++)
    t->img.planes[p] = p < src->n_planes ?
        g_memdup2 (src->img.planes[p],
        (gsize) src->img.strides[p] * src->rows[p]) : NULL;
  return t;
}

/* Compares every byte, padding included.  Plane 0 (packed pixels, Y, gray)
 * must match exactly; chroma may be off by one from float rounding.
 * Returns the number of off-by-one chroma bytes through @near. */
static gboolean
compare_images (const gchar * label, const TestImage * got,
    const TestImage * want, gsize * near)
{
  gsize bad = 0, total = 0;

  *near = 0;
  for (gint p = 0; p < want->n_planes; p++) {
    gsize stride = want->img.strides[p];
    gsize size = stride * want->rows[p];

    for (gsize i = 0; i < size; i++) {
      gint g = got->img.planes[p][i], w = want->img.planes[p][i];

      total++;
      if (g == w)
        continue;
      if (p > 0 && ABS (g - w) == 1) {
        (*near)++;
        continue;
      }
      if (bad < 5)
        g_printerr ("%s: plane %d row %" G_GSIZE_FORMAT " byte %"
            G_GSIZE_FORMAT "%s: got %d want %d\n", label, p, i / stride,
            i % stride, i % stride >= want->row_bytes[p] ? " (padding)" : "",
            g, w);
      bad++;
    }
  }
  if (bad > 0) {
    g_printerr ("%s: %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " bytes differ"
        " (%" G_GSIZE_FORMAT " chroma off by one)\n", label, bad, total,
        *near);
    ncl_test_failures++;
    return FALSE;
  }
  return TRUE;
}

static void
test_format_names (void)
{
  NclPixelFormat f = NCL_FORMAT_RGB;

  for (guint i = 0; i < G_N_ELEMENTS (all_formats); i++) {
    const gchar *name = ncl_pixel_format_to_string (all_formats[i]);

    NCL_CHECK (name != NULL);
    NCL_CHECK (ncl_pixel_format_from_string (name, &f));
    NCL_CHECK (f == all_formats[i]);
  }
  NCL_CHECK (g_strcmp0 (ncl_pixel_format_to_string (NCL_FORMAT_RGBX),
          "RGBx") == 0);
  NCL_CHECK (g_strcmp0 (ncl_pixel_format_to_string (NCL_FORMAT_BGRA),
          "BGRA") == 0);
  NCL_CHECK (g_strcmp0 (ncl_pixel_format_to_string (NCL_FORMAT_GRAY8),
          "GRAY8") == 0);
  NCL_CHECK (!ncl_pixel_format_from_string ("xRGB", &f));
  NCL_CHECK (!ncl_pixel_format_from_string ("rgb", &f));
  NCL_CHECK (!ncl_pixel_format_from_string (NULL, &f));
  NCL_CHECK (ncl_pixel_format_to_string ((NclPixelFormat) 99) == NULL);
}

/* Hand-computed reference values for a few pixels of each format. */
static void
test_to_planar_known (void)
{
  guint8 rgb[] = { 10, 20, 30 };
  guint8 bgra[] = { 10, 20, 30, 40 };
  guint8 gray[] = { 77 };
  guint8 y[] = { 16, 235, 126, 81 }, u[] = { 128 }, v[] = { 240 };
  guint8 uv[] = { 128, 240 };
  NclImage img = { NCL_FORMAT_RGB, 1, 1, {rgb}, {3} };
  gfloat out[12];

  ncl_image_to_planar_ref (&img, out);
  NCL_CHECK (out[0] == 10.0f && out[1] == 20.0f && out[2] == 30.0f);
  img.format = NCL_FORMAT_BGRA;
  img.planes[0] = bgra;
  img.strides[0] = 4;
  ncl_image_to_planar_ref (&img, out);
  NCL_CHECK (out[0] == 30.0f && out[1] == 20.0f && out[2] == 10.0f);
  img.format = NCL_FORMAT_GRAY8;
  img.planes[0] = gray;
  ncl_image_to_planar_ref (&img, out);
  NCL_CHECK (out[0] == 77.0f && out[1] == 77.0f && out[2] == 77.0f);

  /* 2x2 I420 sharing one chroma sample: U neutral, V at its maximum. */
  img = (NclImage) { NCL_FORMAT_I420, 2, 2, {y, u, v}, {2, 1, 1} };
  ncl_image_to_planar_ref (&img, out);
  /* Y 16: R = 1.596 * 112 = 178.75, G = -0.813 * 112 = clamped 0, B = 0 */
  NCL_CHECK (fabsf (out[0] - 178.755f) < 0.01f);
  NCL_CHECK (out[4] == 0.0f && out[8] == 0.0f);
  /* Y 235: 255 + 178.75 -> 255; G = 255 - 91.05 = 163.95 */
  NCL_CHECK (out[1] == 255.0f);
  NCL_CHECK (fabsf (out[5] - (255.0f - 91.052f)) < 0.01f);
  NCL_CHECK (fabsf (out[9] - 255.0f) < 0.01f);
  img = (NclImage) { NCL_FORMAT_NV12, 2, 2, {y, uv}, {2, 2} };
  {
    gfloat out2[12];

    ncl_image_to_planar_ref (&img, out2);
    NCL_CHECK (memcmp (out, out2, sizeof (out)) == 0);
  }
  /* Neutral chroma gives grey: Y 126 -> 1.164383 * 110 = 128.08 */
  u[0] = 128;
  v[0] = 128;
  img = (NclImage) { NCL_FORMAT_I420, 2, 2, {y, u, v}, {2, 1, 1} };
  ncl_image_to_planar_ref (&img, out);
  NCL_CHECK (fabsf (out[2] - 128.082f) < 0.01f);
  NCL_CHECK (out[2] == out[6] && out[2] == out[10]);
}

/* A few hand-computed outputs of the from-planar reference. */
static void
test_from_planar_known (void)
{
  gfloat rgb[3] = { 100.4f, 300.0f, -5.0f };
  gfloat orig[3] = { 50.0f, 60.0f, 70.0f };
  guint8 px[4] = { 1, 2, 3, 99 };
  NclImage img = { NCL_FORMAT_RGBA, 1, 1, {px}, {4} };

  ncl_image_from_planar_ref (rgb, 1, 1, NULL, 1.0f, FALSE, &img);
  NCL_CHECK (px[0] == 100 && px[1] == 255 && px[2] == 0 && px[3] == 99);
  /* Half way: 75.2, 180 (blend before the clamp), 32.5 -> 33 */
  ncl_image_from_planar_ref (rgb, 1, 1, orig, 0.5f, FALSE, &img);
  NCL_CHECK (px[0] == 75 && px[1] == 180 && px[2] == 33 && px[3] == 99);
  /* Luma of s, chroma of orig: orig + dY, dY = .299*50.4 + .587*240
   * + .114*(-75) = 147.3996 */
  ncl_image_from_planar_ref (rgb, 1, 1, orig, 1.0f, TRUE, &img);
  NCL_CHECK (px[0] == 197 && px[1] == 207 && px[2] == 217 && px[3] == 99);
  img.format = NCL_FORMAT_BGRX;
  ncl_image_from_planar_ref (rgb, 1, 1, NULL, 1.0f, FALSE, &img);
  NCL_CHECK (px[0] == 0 && px[1] == 255 && px[2] == 100 && px[3] == 99);
  img.format = NCL_FORMAT_GRAY8;
  ncl_image_from_planar_ref (orig, 1, 1, NULL, 1.0f, FALSE, &img);
  /* .299*50 + .587*60 + .114*70 = 58.15 */
  NCL_CHECK (px[0] == 58);
}

/* Device upload vs reference for one image. */
static gboolean
check_upload (NclFrameIO * io, NclTensor * t, const TestImage * src,
    const gchar * label, gfloat ** ref_out)
{
  g_autoptr (GError) error = NULL;
  gint w = src->img.width, h = src->img.height;
  gfloat *want = g_new (gfloat, 3 * (gsize) w * h);
  g_autofree gfloat *got = NULL;
  gboolean ok;

  ncl_image_to_planar_ref (&src->img, want);
  *ref_out = want;
  if (!ncl_frame_io_upload (io, &src->img, t, &error)) {
    g_printerr ("%s: upload failed: %s\n", label, error->message);
    ncl_test_failures++;
    return FALSE;
  }
  NCL_CHECK (t->n == 1 && t->c == 3 && t->h == h && t->w == w);
  got = ncl_test_download (t);
  ok = ncl_test_compare (label, got, want, 3 * (gsize) w * h, 1e-3f, 0.0f);
  for (gsize i = 0; i < 3 * (gsize) w * h; i++)
    if (want[i] < 0.0f || want[i] > 255.0f || want[i] != want[i]) {
      g_printerr ("%s: reference value %g out of 0..255\n", label, want[i]);
      ncl_test_failures++;
      return FALSE;
    }
  return ok;
}

static void
test_format (NclContext * ctx, NclFrameIO * io, NclPixelFormat f, gint w,
    gint h, GRand * rand, gsize * near_total, gsize * bytes_total)
{
  const gchar *name = ncl_pixel_format_to_string (f);
  g_autoptr (TestImage) src = test_image_new (f, w, h, 5, rand);
  g_autoptr (NclTensor) orig_t = ncl_tensor_new (ctx, 1, 3, 1, 1, NULL);
  g_autofree gfloat *orig = NULL;
  g_autofree gchar *label = g_strdup_printf ("upload %s %dx%d", name, w, h);
  static const gfloat strengths[] = { 1.0f, 0.5f, 0.0f };

  if (!check_upload (io, orig_t, src, label, &orig))
    return;

  /* Stylised output: random, partly outside 0..255, on an exact-size or a
   * larger tensor of which the image is the top-left crop. */
  for (gint crop = 0; crop < 2; crop++) {
    gint rw = w + crop * 3, rh = h + crop * 2;
    gsize n = 3 * (gsize) rw * rh;
    g_autofree gfloat *rgb = g_new (gfloat, n);
    g_autoptr (NclTensor) rgb_t = NULL;

    ncl_test_fill_random (rgb, n, w * 131 + h * 7 + crop + f * 1000,
        -30.0f, 290.0f);
    rgb_t = ncl_test_tensor (ctx, rgb, 1, 3, rh, rw);

    /* s = -1: no orig at all. */
    for (gint si = -1; si < (gint) G_N_ELEMENTS (strengths); si++) {
      for (gint preserve = 0; preserve < 2; preserve++) {
        g_autoptr (GError) error = NULL;
        g_autoptr (TestImage) want = test_image_copy (src);
        g_autoptr (TestImage) got = test_image_copy (src);
        gfloat strength = si < 0 ? 1.0f : strengths[si];
        const gfloat *o = si < 0 ? NULL : orig;
        gsize near = 0;
        g_autofree gchar *l = g_strdup_printf ("download %s %dx%d rgb %dx%d "
            "%s strength %.1f preserve %d", name, w, h, rw, rh,
            o ? "orig" : "no orig", strength, preserve);

        ncl_image_from_planar_ref (rgb, rw, rh, o, strength, preserve,
            &want->img);
        if (!ncl_frame_io_download (io, rgb_t, si < 0 ? NULL : orig_t,
                strength, preserve, &got->img, &error)) {
          g_printerr ("%s: failed: %s\n", l, error->message);
          ncl_test_failures++;
          continue;
        }
        if (compare_images (l, got, want, &near)) {
          for (gint p = 0; p < want->n_planes; p++)
            *bytes_total += (gsize) want->img.strides[p] * want->rows[p];
          *near_total += near;
        }
        /* Strength 0 gives the original pixels back. */
        if (si >= 0 && strength == 0.0f && !is_yuv (f)) {
          gsize dummy;
          g_autofree gchar *l0 = g_strconcat (l, " == input", NULL);

          compare_images (l0, got, src, &dummy);
        }
      }
    }
  }
}

/* RGB -> I420/NV12 -> RGB on colours constant over 2x2 blocks loses only
 * quantisation. */
static void
test_yuv_round_trip (NclContext * ctx, NclFrameIO * io, NclPixelFormat f)
{
  g_autoptr (GError) error = NULL;
  gint w = 37, h = 22;
  gsize plane = (gsize) w * h;
  g_autofree gfloat *rgb = g_new (gfloat, 3 * plane);
  g_autofree gfloat *blocks = g_new (gfloat, 3 * plane);
  g_autofree gfloat *back = NULL;
  g_autoptr (NclTensor) t = NULL;
  g_autoptr (NclTensor) t2 = ncl_tensor_new (ctx, 1, 3, 1, 1, NULL);
  g_autoptr (GRand) rand = g_rand_new_with_seed (7);
  g_autoptr (TestImage) img = test_image_new (f, w, h, 8, rand);
  g_autofree gchar *label = g_strdup_printf ("RGB -> %s -> RGB",
      ncl_pixel_format_to_string (f));
  gfloat max_err = 0.0f;

  ncl_test_fill_random (blocks, 3 * plane, 99, 30.0f, 220.0f);
  for (gint c = 0; c < 3; c++)
    for (gint y = 0; y < h; y++)
      for (gint x = 0; x < w; x++)
        rgb[c * plane + y * w + x] =
            roundf (blocks[c * plane + (y & ~1) * w + (x & ~1)]);
  t = ncl_test_tensor (ctx, rgb, 1, 3, h, w);
  NCL_CHECK (ncl_frame_io_download (io, t, NULL, 1.0f, FALSE, &img->img,
          &error));
  NCL_CHECK_NO_ERROR (error);
  NCL_CHECK (ncl_frame_io_upload (io, &img->img, t2, &error));
  NCL_CHECK_NO_ERROR (error);
  back = ncl_test_download (t2);
  for (gsize i = 0; i < 3 * plane; i++)
    max_err = MAX (max_err, fabsf (back[i] - rgb[i]));
  g_print ("%s: max abs error %.3g\n", label, max_err);
  NCL_CHECK (max_err <= 3.0f);
  NCL_CHECK (max_err > 0.0f);   /* it did go through 8-bit YUV */
}

static void
test_errors (NclContext * ctx, NclFrameIO * io)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (3);
  g_autoptr (TestImage) img = test_image_new (NCL_FORMAT_RGB, 8, 6, 0, rand);
  g_autoptr (NclTensor) small = ncl_tensor_new (ctx, 1, 3, 6, 7, NULL);
  g_autoptr (NclTensor) t = ncl_tensor_new (ctx, 1, 3, 6, 8, NULL);
  GError *error = NULL;

  NCL_CHECK (!ncl_frame_io_download (io, small, NULL, 1.0f, FALSE,
          &img->img, &error));
  NCL_CHECK (g_error_matches (error, NCL_ERROR, NCL_ERROR_SHAPE));
  g_clear_error (&error);
  NCL_CHECK (!ncl_frame_io_download (io, t, small, 1.0f, FALSE, &img->img,
          &error));
  NCL_CHECK (g_error_matches (error, NCL_ERROR, NCL_ERROR_SHAPE));
  g_clear_error (&error);
  img->img.strides[0] = 23;     /* less than 8 * 3 */
  NCL_CHECK (!ncl_frame_io_upload (io, &img->img, t, &error));
  NCL_CHECK (g_error_matches (error, NCL_ERROR, NCL_ERROR_SHAPE));
  g_clear_error (&error);
}

/* ---- resize -------------------------------------------------------------- */

static void
test_resize_known (void)
{
  /* 2x2 -> 4x4, as torch.nn.functional.interpolate (bilinear,
   * align_corners=False) gives it. */
  static const gfloat in[4] = { 0.0f, 10.0f, 20.0f, 30.0f };
  static const gfloat want[16] = {
    0.0f, 2.5f, 7.5f, 10.0f,
    5.0f, 7.5f, 12.5f, 15.0f,
    15.0f, 17.5f, 22.5f, 25.0f,
    20.0f, 22.5f, 27.5f, 30.0f,
  };
  /* 1x4 -> 1x2 averages neighbour pairs; 1x1 -> 3x3 replicates. */
  static const gfloat row[4] = { 1.0f, 3.0f, 10.0f, 20.0f };
  static const gfloat row_want[2] = { 2.0f, 15.0f };
  /* 1x3 -> 1x2: source x = 0.25 and 1.75 */
  static const gfloat row3[3] = { 0.0f, 4.0f, 8.0f };
  static const gfloat row3_want[2] = { 1.0f, 7.0f };
  gfloat out[16], one = 42.0f;

  ncl_resize_bilinear_ref (in, 1, 1, 2, 2, 4, 4, out);
  ncl_test_compare ("resize ref 2x2 -> 4x4", out, want, 16, 1e-6f, 0.0f);
  ncl_resize_bilinear_ref (row, 1, 1, 1, 4, 1, 2, out);
  ncl_test_compare ("resize ref 1x4 -> 1x2", out, row_want, 2, 1e-6f, 0.0f);
  ncl_resize_bilinear_ref (row3, 1, 1, 1, 3, 1, 2, out);
  ncl_test_compare ("resize ref 1x3 -> 1x2", out, row3_want, 2, 1e-6f, 0.0f);
  ncl_resize_bilinear_ref (&one, 1, 1, 1, 1, 3, 3, out);
  for (gint i = 0; i < 9; i++)
    NCL_CHECK (out[i] == 42.0f);
}

static void
test_resize (NclContext * ctx, gint n, gint c, gint h, gint w, gint oh,
    gint ow)
{
  g_autoptr (GError) error = NULL;
  gsize in_n = (gsize) n * c * h * w, out_n = (gsize) n * c * oh * ow;
  g_autofree gfloat *in = g_new (gfloat, in_n);
  g_autofree gfloat *want = g_new (gfloat, out_n);
  g_autofree gfloat *got = NULL;
  g_autoptr (NclTensor) t = NULL;
  g_autoptr (NclTensor) o = ncl_tensor_new (ctx, n, c, oh, ow, NULL);
  g_autofree gchar *label = g_strdup_printf ("resize (%d, %d, %d, %d) -> "
      "%dx%d", n, c, h, w, oh, ow);

  ncl_test_fill_random (in, in_n, h * 31 + w, -5.0f, 5.0f);
  ncl_resize_bilinear_ref (in, n, c, h, w, oh, ow, want);
  t = ncl_test_tensor (ctx, in, n, c, h, w);
  if (!ncl_resize_bilinear (ctx, t, o, &error)) {
    g_printerr ("%s: %s\n", label, error->message);
    ncl_test_failures++;
    return;
  }
  got = ncl_test_download (o);
  ncl_test_compare (label, got, want, out_n, 1e-5f, 1e-5f);
}

int
main (void)
{
  g_autoptr (NclContext) ctx = NULL;
  g_autoptr (NclFrameIO) io = NULL;
  g_autoptr (GRand) rand = g_rand_new_with_seed (1234);
  gsize near = 0, bytes = 0;

  test_format_names ();
  test_to_planar_known ();
  test_from_planar_known ();
  test_resize_known ();

  ctx = ncl_test_context ();
  io = ncl_frame_io_new (ctx);
  for (guint i = 0; i < G_N_ELEMENTS (all_formats); i++) {
    gsize fnear = 0, fbytes = 0;

    for (guint s = 0; s < G_N_ELEMENTS (sizes); s++)
      test_format (ctx, io, all_formats[i], sizes[s][0], sizes[s][1], rand,
          &fnear, &fbytes);
    g_print ("ok download %s: %" G_GSIZE_FORMAT " bytes compared, %"
        G_GSIZE_FORMAT " chroma off by one\n",
        ncl_pixel_format_to_string (all_formats[i]), fbytes, fnear);
    if (!is_packed_rgb (all_formats[i]) && !is_yuv (all_formats[i]))
      NCL_CHECK (fnear == 0);
    near += fnear;
    bytes += fbytes;
  }
  /* Larger than the first staging allocation (64 KiB): it must grow. */
  test_format (ctx, io, NCL_FORMAT_BGRA, 203, 91, rand, &near, &bytes);
  test_format (ctx, io, NCL_FORMAT_I420, 333, 201, rand, &near, &bytes);
  g_print ("downloads: %" G_GSIZE_FORMAT " bytes, %" G_GSIZE_FORMAT
      " chroma bytes off by one\n", bytes, near);
  test_yuv_round_trip (ctx, io, NCL_FORMAT_I420);
  test_yuv_round_trip (ctx, io, NCL_FORMAT_NV12);
  test_errors (ctx, io);

  test_resize (ctx, 1, 3, 5, 7, 3, 11);
  test_resize (ctx, 1, 1, 1, 1, 4, 4);
  test_resize (ctx, 1, 3, 120, 160, 61, 83);
  test_resize (ctx, 2, 2, 9, 4, 4, 9);
  test_resize (ctx, 1, 3, 48, 64, 48, 64);
  test_resize (ctx, 1, 2, 7, 3, 21, 2);
  return ncl_test_finish ();
}
