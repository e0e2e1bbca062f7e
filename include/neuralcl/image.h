/* Frames: packed/planar 8-bit images <-> planar float RGB tensors. */
#pragma once

#include <neuralcl/tensor.h>

G_BEGIN_DECLS

typedef enum
{
  NCL_FORMAT_RGB,
  NCL_FORMAT_BGR,
  NCL_FORMAT_RGBX,
  NCL_FORMAT_BGRX,
  NCL_FORMAT_RGBA,
  NCL_FORMAT_BGRA,
  NCL_FORMAT_I420,              /* Y, U, V planes; chroma 2x2 subsampled */
  NCL_FORMAT_NV12,              /* Y plane, interleaved UV plane */
  NCL_FORMAT_GRAY8,
} NclPixelFormat;

/* An 8-bit image in host memory (not owned).  Packed formats use plane 0. */
typedef struct
{
  NclPixelFormat format;
  gint width, height;
  guint8 *planes[3];
  gint strides[3];
} NclImage;

const gchar *ncl_pixel_format_to_string (NclPixelFormat format);
gboolean ncl_pixel_format_from_string (const gchar * s,
    NclPixelFormat * format);

/* YUV formats use BT.601 limited range (Y 16..235, UV 16..240). */

/* Reference: image -> planar RGB float 0..255, out (1, 3, h, w). */
void ncl_image_to_planar_ref (const NclImage * img, gfloat * out);

/* Reference: planar RGB float -> image.  Each pixel is
 *   s = rgb (clamped to 0..255 at the end);
 *   if @orig: s = orig + strength * (s - orig);
 *   if @preserve_colors: s = luma of s with the chroma of orig (BT.601 full
 *     range YCbCr);
 * then rounded to the nearest integer.  @rgb may be larger than the image
 * (rgb_w x rgb_h, the image is its top-left crop). */
void ncl_image_from_planar_ref (const gfloat * rgb, gint rgb_w, gint rgb_h,
    const gfloat * orig, gfloat strength, gboolean preserve_colors,
    NclImage * img);

/* Bilinear resize with half-pixel centres (align_corners = false),
 * in (n, c, h, w) -> out (n, c, oh, ow). */
void ncl_resize_bilinear_ref (const gfloat * in, gint n, gint c, gint h,
    gint w, gint oh, gint ow, gfloat * out);
gboolean ncl_resize_bilinear (NclContext * ctx, const NclTensor * in,
    NclTensor * out, GError ** error);

/* Device-side frame conversion with reusable staging buffers. */
typedef struct _NclFrameIO NclFrameIO;
NclFrameIO *ncl_frame_io_new (NclContext * ctx);
void ncl_frame_io_free (NclFrameIO * io);

/* Uploads @img and converts it to @rgb, reshaped to (1, 3, h, w). */
gboolean ncl_frame_io_upload (NclFrameIO * io, const NclImage * img,
    NclTensor * rgb, GError ** error);
/* Device version of ncl_image_from_planar_ref(); writes into @img. */
gboolean ncl_frame_io_download (NclFrameIO * io, const NclTensor * rgb,
    const NclTensor * orig, gfloat strength, gboolean preserve_colors,
    NclImage * img, GError ** error);

/* Host images that own their pixels (RGB, tightly packed rows). */
NclImage *ncl_image_new_rgb (gint width, gint height);
void ncl_image_free (NclImage * img);
/* Decodes a PNG/JPEG/... file into a new RGB image (gdk-pixbuf; EXIF
 * orientation applied).  Errors name the file. */
NclImage *ncl_image_load (const gchar * path, GError ** error);
/* Writes an RGB image as PNG. */
gboolean ncl_image_save_png (const NclImage * img, const gchar * path,
    GError ** error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (NclFrameIO, ncl_frame_io_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (NclImage, ncl_image_free)

G_END_DECLS
