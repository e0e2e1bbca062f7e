/* GStreamer
 * Copyright (C) 2025 The gst-neuralcl authors
 *
 * This library is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Library General Public
 * License as published by the Free Software Foundation; either
 * version 2 of the License, or (at your option) any later version.
 *
 * This library is distributed in the hope that it will be useful,
 * but WITHOUT ANY WARRANTY; without even the implied warranty of
 * MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the GNU
 * Library General Public License for more details.
 *
 * You should have received a copy of the GNU Library General Public
 * License along with this library; if not, write to the
 * Free Software Foundation, Inc., 51 Franklin St, Fifth Floor,
 * Boston, MA 02110-1301, USA.
 */

/* The overlay of facerecognize.  On little-endian BGRx and BGRA frames
 * (cairo's RGB24 and ARGB32) cairo draws on the frame itself.  Otherwise it
 * draws into a transparent ARGB32 surface of the frame's size, and the
 * pixels drawn are blended into the frame and cleared again, only inside
 * the rectangles each face's drawing was clipped to: so the surface stays
 * transparent between frames without being cleared whole. */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <math.h>

#include <cairo.h>
#include <pango/pangocairo.h>

#include "gstfacerecognize-overlay.h"

#define LABEL_MAX 160

struct _GstFaceOverlay
{
  /* from set_info */
  GstVideoFormat format;
  gboolean direct;              /* cairo draws on the frame itself */
  cairo_format_t cairo_format;  /* of a direct frame */
  cairo_surface_t *surface;     /* ARGB32 at the frame size, or NULL */
  gint font_px;

  /* made on the first draw */
  PangoFontMap *font_map;
  PangoContext *pango;
  PangoLayout *layout;
  gint layout_font_px;

  GArray *rects;                /* cairo_rectangle_int_t: drawn areas */
  gchar label[LABEL_MAX];
};

static const gdouble known_rgb[3] = { GST_FACE_OVERLAY_KNOWN_RGB };
static const gdouble unknown_rgb[3] = { GST_FACE_OVERLAY_UNKNOWN_RGB };

GstFaceOverlay *
gst_face_overlay_new (void)
{
  GstFaceOverlay *o = g_new0 (GstFaceOverlay, 1);

  o->rects = g_array_new (FALSE, FALSE, sizeof (cairo_rectangle_int_t));
  return o;
}

void
gst_face_overlay_free (GstFaceOverlay * o)
{
  if (o == NULL)
    return;
  g_clear_object (&o->layout);
  g_clear_object (&o->pango);
  g_clear_object (&o->font_map);
  g_clear_pointer (&o->surface, cairo_surface_destroy);
  g_array_unref (o->rects);
  g_free (o);
}

gboolean
gst_face_overlay_set_info (GstFaceOverlay * o, const GstVideoInfo * info)
{
  GstVideoFormat format = GST_VIDEO_INFO_FORMAT (info);
  gint width = GST_VIDEO_INFO_WIDTH (info);
  gint height = GST_VIDEO_INFO_HEIGHT (info);

  /* cairo's RGB24/ARGB32 are BGRx/BGRA in memory on little-endian */
  o->format = format;
  o->direct = G_BYTE_ORDER == G_LITTLE_ENDIAN &&
      (format == GST_VIDEO_FORMAT_BGRx || format == GST_VIDEO_FORMAT_BGRA);
  o->cairo_format = format == GST_VIDEO_FORMAT_BGRA ?
      CAIRO_FORMAT_ARGB32 : CAIRO_FORMAT_RGB24;
  o->font_px = CLAMP (height / 28, 9, 48);

  if (o->surface != NULL && (o->direct ||
          cairo_image_surface_get_width (o->surface) != width ||
          cairo_image_surface_get_height (o->surface) != height))
    g_clear_pointer (&o->surface, cairo_surface_destroy);
  if (!o->direct && o->surface == NULL) {
    /* starts transparent; drawing and blending leave it so */
    o->surface = cairo_image_surface_create (CAIRO_FORMAT_ARGB32, width,
        height);
    if (cairo_surface_status (o->surface) != CAIRO_STATUS_SUCCESS) {
      g_clear_pointer (&o->surface, cairo_surface_destroy);
      return FALSE;
    }
  }
  return TRUE;
}

/* Draws one face's box and label on @cr, clipped to the area it covers,
 * and records that area in o->rects. */
static void
draw_item (GstFaceOverlay * o, cairo_t * cr, const GstFaceOverlayItem * item,
    gint width, gint height)
{
  const gdouble *rgb = item->name != NULL ? known_rgb : unknown_rgb;
  const gchar *text = item->name != NULL ? item->name : "unknown";
  const NclBox *b = &item->box;
  gdouble line = MAX (2.0, height / 240.0);
  gdouble pad = MAX (1.0, o->font_px / 6.0);
  gdouble lx, ly, lw, lh, x0, y0, x1, y1;
  cairo_rectangle_int_t r;
  PangoRectangle logical;
  const gchar *end;

  if (isfinite (item->distance))
    g_snprintf (o->label, sizeof (o->label), "%s %.2f", text,
        item->distance);
  else
    g_snprintf (o->label, sizeof (o->label), "%s", text);
  /* a long name cut by the buffer: no partial UTF-8 sequence */
  g_utf8_validate (o->label, -1, &end);
  pango_layout_set_text (o->layout, o->label, end - o->label);
  pango_layout_get_pixel_extents (o->layout, NULL, &logical);

  lw = logical.width + 2 * pad;
  lh = logical.height + 2 * pad;
  lx = b->x - line / 2;
  ly = b->y - line / 2 - lh;
  if (ly < 0)                   /* no room above: inside the box */
    ly = b->y + line / 2;
  lx = CLAMP (lx, 0, MAX (0, width - lw));

  x0 = MIN (b->x - line, lx) - 1;
  y0 = MIN (b->y - line, ly) - 1;
  x1 = MAX (b->x + b->w + line, lx + lw) + 1;
  y1 = MAX (b->y + b->h + line, ly + lh) + 1;
  r.x = CLAMP ((gint) floor (x0), 0, width);
  r.y = CLAMP ((gint) floor (y0), 0, height);
  r.width = CLAMP ((gint) ceil (x1), r.x, width) - r.x;
  r.height = CLAMP ((gint) ceil (y1), r.y, height) - r.y;
  if (r.width == 0 || r.height == 0)
    return;
  g_array_append_val (o->rects, r);

  cairo_save (cr);
  cairo_rectangle (cr, r.x, r.y, r.width, r.height);
  cairo_clip (cr);
  cairo_set_source_rgb (cr, rgb[0], rgb[1], rgb[2]);
  cairo_set_line_width (cr, line);
  cairo_rectangle (cr, b->x, b->y, b->w, b->h);
  cairo_stroke (cr);
  cairo_rectangle (cr, lx, ly, lw, lh);
  cairo_fill (cr);
  cairo_set_source_rgb (cr, 0, 0, 0);
  cairo_move_to (cr, lx + pad - logical.x, ly + pad - logical.y);
  pango_cairo_show_layout (cr, o->layout);
  cairo_restore (cr);
}

/* Blends the overlay pixels of @r into a packed RGB frame and clears them
 * from the overlay (premultiplied ARGB32). */
static void
blend_packed (GstVideoFrame * frame, guint8 * src, gint src_stride,
    const cairo_rectangle_int_t * r)
{
  guint8 *plane = GST_VIDEO_FRAME_PLANE_DATA (frame, 0);
  gint stride = GST_VIDEO_FRAME_PLANE_STRIDE (frame, 0);
  gint ps = GST_VIDEO_FRAME_COMP_PSTRIDE (frame, 0);
  gint off[3];

  for (guint c = 0; c < 3; c++)
    off[c] = GST_VIDEO_FRAME_COMP_POFFSET (frame, c);

  for (gint y = r->y; y < r->y + r->height; y++) {
    guint32 *s = (guint32 *) (src + (gsize) y * src_stride);
    guint8 *d = plane + (gsize) y * stride;

    for (gint x = r->x; x < r->x + r->width; x++) {
      guint32 p = s[x];
      guint a = p >> 24, inv = 255 - a;
      guint rgb[3] = { (p >> 16) & 255, (p >> 8) & 255, p & 255 };
      guint8 *px = d + x * ps;

      if (a == 0)
        continue;
      for (guint c = 0; c < 3; c++)
        px[off[c]] = MIN (255, (px[off[c]] * inv + 127) / 255 + rgb[c]);
      s[x] = 0;
    }
  }
}

/* The same for I420 and NV12 (BT.601 limited range, as NclImage reads
 * them): luma per pixel, chroma per 2x2 block from the block's mean
 * coverage and colour. */
static void
blend_yuv420 (GstVideoFrame * frame, guint8 * src, gint src_stride,
    const cairo_rectangle_int_t * r)
{
  gint width = GST_VIDEO_FRAME_WIDTH (frame);
  gint height = GST_VIDEO_FRAME_HEIGHT (frame);
  guint8 *yp = GST_VIDEO_FRAME_COMP_DATA (frame, 0);
  guint8 *up = GST_VIDEO_FRAME_COMP_DATA (frame, 1);
  guint8 *vp = GST_VIDEO_FRAME_COMP_DATA (frame, 2);
  gint ys = GST_VIDEO_FRAME_COMP_STRIDE (frame, 0);
  gint us = GST_VIDEO_FRAME_COMP_STRIDE (frame, 1);
  gint vs = GST_VIDEO_FRAME_COMP_STRIDE (frame, 2);
  gint ups = GST_VIDEO_FRAME_COMP_PSTRIDE (frame, 1);
  gint vps = GST_VIDEO_FRAME_COMP_PSTRIDE (frame, 2);
  gint x_end = MIN (r->x + r->width, width);
  gint y_end = MIN (r->y + r->height, height);

  for (gint by = r->y & ~1; by < y_end; by += 2) {
    for (gint bx = r->x & ~1; bx < x_end; bx += 2) {
      gdouble sa = 0, su = 0, sv = 0;
      guint n = 0;

      for (gint y = by; y < MIN (by + 2, height); y++) {
        guint32 *s = (guint32 *) (src + (gsize) y * src_stride);

        for (gint x = bx; x < MIN (bx + 2, width); x++) {
          guint32 p = s[x];
          gdouble a = (p >> 24) / 255.0;
          gdouble cr = (p >> 16) & 255, cg = (p >> 8) & 255, cb = p & 255;
          guint8 *yy = yp + (gsize) y * ys + x;

          n++;
          if (p == 0)
            continue;
          /* premultiplied colour: the offsets scale with alpha */
          *yy = CLAMP (lrint (*yy * (1 - a) + 16 * a + 0.256788 * cr +
                  0.504129 * cg + 0.097906 * cb), 0, 255);
          sa += a;
          su += 128 * a - 0.148223 * cr - 0.290993 * cg + 0.439216 * cb;
          sv += 128 * a + 0.439216 * cr - 0.367788 * cg - 0.071427 * cb;
          s[x] = 0;
        }
      }
      if (sa > 0) {
        guint8 *u = up + (gsize) (by / 2) * us + (bx / 2) * ups;
        guint8 *v = vp + (gsize) (by / 2) * vs + (bx / 2) * vps;

        *u = CLAMP (lrint (*u * (1 - sa / n) + su / n), 0, 255);
        *v = CLAMP (lrint (*v * (1 - sa / n) + sv / n), 0, 255);
      }
    }
  }
}

/* The font and layout, made on first use (fontconfig is slow to start)
 * and resized with the frame. */
static void
prepare_layout (GstFaceOverlay * o)
{
  PangoFontDescription *desc;

  if (o->layout == NULL) {
    o->font_map = pango_cairo_font_map_new ();
    o->pango = pango_font_map_create_context (o->font_map);
    o->layout = pango_layout_new (o->pango);
  }
  if (o->layout_font_px == o->font_px)
    return;
  desc = pango_font_description_from_string ("Sans Bold");
  pango_font_description_set_absolute_size (desc, o->font_px * PANGO_SCALE);
  pango_layout_set_font_description (o->layout, desc);
  pango_font_description_free (desc);
  o->layout_font_px = o->font_px;
}

void
gst_face_overlay_draw (GstFaceOverlay * o, GstVideoFrame * frame,
    const GstFaceOverlayItem * items, guint n)
{
  gint width = GST_VIDEO_FRAME_WIDTH (frame);
  gint height = GST_VIDEO_FRAME_HEIGHT (frame);
  cairo_surface_t *surface;
  cairo_t *cr;

  g_return_if_fail (o->direct || o->surface != NULL);
  if (n == 0)
    return;
  prepare_layout (o);

  if (o->direct)
    surface = cairo_image_surface_create_for_data (GST_VIDEO_FRAME_PLANE_DATA
        (frame, 0), o->cairo_format, width, height,
        GST_VIDEO_FRAME_PLANE_STRIDE (frame, 0));
  else
    surface = cairo_surface_reference (o->surface);
  cr = cairo_create (surface);
  pango_cairo_update_context (cr, o->pango);
  pango_layout_context_changed (o->layout);

  g_array_set_size (o->rects, 0);
  for (guint i = 0; i < n; i++)
    draw_item (o, cr, &items[i], width, height);
  cairo_destroy (cr);
  cairo_surface_flush (surface);

  if (!o->direct) {
    guint8 *data = cairo_image_surface_get_data (surface);
    gint stride = cairo_image_surface_get_stride (surface);
    gboolean yuv = o->format == GST_VIDEO_FORMAT_I420 ||
        o->format == GST_VIDEO_FORMAT_NV12;

    for (guint i = 0; i < o->rects->len; i++) {
      const cairo_rectangle_int_t *r =
          &g_array_index (o->rects, cairo_rectangle_int_t, i);

      if (yuv)
        blend_yuv420 (frame, data, stride, r);
      else
        blend_packed (frame, data, stride, r);
    }
    cairo_surface_mark_dirty (surface);
  }
  cairo_surface_destroy (surface);
}
