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

/* facerecognize's overlay: boxes and labels drawn with cairo and pango,
 * straight on BGRx/BGRA frames, blended into the others.  Internal to the
 * plugin; used from the streaming thread only. */
#pragma once

#include <gst/video/video.h>
#include <neuralcl/face.h>

G_BEGIN_DECLS

/* Known people are boxed in this colour (cairo 0..1 RGB), unknown faces in
 * the other. */
#define GST_FACE_OVERLAY_KNOWN_RGB 0.15, 0.85, 0.25
#define GST_FACE_OVERLAY_UNKNOWN_RGB 1.0, 0.55, 0.1

/**
 * GstFaceOverlayItem:
 * @box: the face, in frame pixels
 * @name: (nullable): the person, or %NULL for "unknown"
 * @distance: shown after the name unless it is not finite
 */
typedef struct
{
  NclBox box;
  const gchar *name;
  gdouble distance;
} GstFaceOverlayItem;

typedef struct _GstFaceOverlay GstFaceOverlay;

GstFaceOverlay *gst_face_overlay_new (void);
void gst_face_overlay_free (GstFaceOverlay * o);

/* Prepares for frames of @info (one of the element's formats): the drawing
 * surface and the font size.  Returns FALSE when the surface cannot be
 * made. */
gboolean gst_face_overlay_set_info (GstFaceOverlay * o,
    const GstVideoInfo * info);

/* Draws a box and a label per item on @frame (mapped for writing). */
void gst_face_overlay_draw (GstFaceOverlay * o, GstVideoFrame * frame,
    const GstFaceOverlayItem * items, guint n);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GstFaceOverlay, gst_face_overlay_free)

G_END_DECLS
