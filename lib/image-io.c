/* Host images: allocation, decoding (gdk-pixbuf) and PNG writing. */
#include <neuralcl/image.h>
#include <neuralcl/error.h>

#include <gdk-pixbuf/gdk-pixbuf.h>
#include <string.h>

NclImage *
ncl_image_new_rgb (gint width, gint height)
{
  NclImage *img = g_new0 (NclImage, 1);

  img->format = NCL_FORMAT_RGB;
  img->width = width;
  img->height = height;
  img->strides[0] = width * 3;
  img->planes[0] = g_malloc0 ((gsize) width * height * 3);
  return img;
}

void
ncl_image_free (NclImage * img)
{
  if (img == NULL)
    return;
  g_free (img->planes[0]);
  g_free (img);
}

NclImage *
ncl_image_load (const gchar * path, GError ** error)
{
  g_autoptr (GError) local = NULL;
  g_autoptr (GdkPixbuf) raw = NULL;
  g_autoptr (GdkPixbuf) pix = NULL;
  const guint8 *src;
  gint w, h, stride, nch;
  NclImage *img;

  if (!g_file_test (path, G_FILE_TEST_EXISTS)) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_NOT_FOUND,
        "%s: no such image file", path);
    return NULL;
  }
  raw = gdk_pixbuf_new_from_file (path, &local);
  if (raw == NULL) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_IO, "%s: cannot decode: %s",
        path, local->message);
    return NULL;
  }
  pix = gdk_pixbuf_apply_embedded_orientation (raw);
  w = gdk_pixbuf_get_width (pix);
  h = gdk_pixbuf_get_height (pix);
  stride = gdk_pixbuf_get_rowstride (pix);
  nch = gdk_pixbuf_get_n_channels (pix);
  src = gdk_pixbuf_read_pixels (pix);
  if (gdk_pixbuf_get_bits_per_sample (pix) != 8 || nch < 3) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_UNSUPPORTED,
        "%s: unsupported pixel layout (%d channels, %d bits)", path, nch,
        gdk_pixbuf_get_bits_per_sample (pix));
    return NULL;
  }
  img = ncl_image_new_rgb (w, h);
  for (gint y = 0; y < h; y++) {
    const guint8 *s = src + (gsize) y * stride;
    guint8 *d = img->planes[0] + (gsize) y * img->strides[0];

    if (nch == 3) {
      memcpy (d, s, (gsize) w * 3);
    } else {
      for (gint x = 0; x < w; x++) {
        d[3 * x] = s[nch * x];
        d[3 * x + 1] = s[nch * x + 1];
        d[3 * x + 2] = s[nch * x + 2];
      }
    }
  }
  return img;
}

gboolean
ncl_image_save_png (const NclImage * img, const gchar * path, GError ** error)
{
  g_autoptr (GdkPixbuf) pix = NULL;
  g_autoptr (GError) local = NULL;

  if (img->format != NCL_FORMAT_RGB) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_UNSUPPORTED,
        "%s: only RGB images can be saved", path);
    return FALSE;
  }
  pix = gdk_pixbuf_new_from_data (img->planes[0], GDK_COLORSPACE_RGB, FALSE,
      8, img->width, img->height, img->strides[0], NULL, NULL);
  if (!gdk_pixbuf_save (pix, path, "png", &local, NULL)) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_IO, "%s: cannot write: %s",
        path, local->message);
    return FALSE;
  }
  return TRUE;
}
