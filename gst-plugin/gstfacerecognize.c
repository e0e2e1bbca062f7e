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

/**
 * SECTION:element-facerecognize
 * @title: facerecognize
 *
 * Finds the faces in each video frame and puts a name on the people listed
 * in a gallery, with face-api's networks running on an OpenCL device:
 * a face detector (Tiny-YOLOv2 by default, SSD MobileNetV1 selectable),
 * 68 facial landmarks, an alignment of each face, and a 128-D descriptor
 * (a ResNet-34 like dlib's) compared by Euclidean distance with the
 * descriptors of the gallery's photos.
 *
 * The models are converted from face-api's published weights by
 * `neuralcl models fetch` and searched in $NEURALCL_MODEL_PATH,
 * $XDG_DATA_HOME/neuralcl/models and the installed models directory.  The
 * gallery (#GstFaceRecognize:gallery) is a YAML file naming each person
 * with one or more photos (docs/gallery.md); its photos are enrolled when
 * the element starts, with the same networks that run on the frames, and
 * their descriptors are cached beside the file.  Settings can also come
 * from a YAML file (#GstFaceRecognize:config, see `config/faces.yaml`);
 * properties set by the application override its values.
 *
 * Faces are followed from frame to frame by a tracker.  Only a face whose
 * track needs it gets landmarks and a descriptor in a frame: when its track
 * starts, every #GstFaceRecognize:recognize-interval frames, and when the
 * face grew or the detector became more confident (a larger or sharper
 * view).  The faces recognised in a frame run through the networks as one
 * batch.  Each track keeps a vote over its last recognitions, so that a
 * person keeps one stable name.
 *
 * The frame is processed in place and the element reports, per frame:
 *
 * * an overlay (#GstFaceRecognize:overlay): a box around each face and a
 *   label with the name, or "unknown", and the distance; known people in
 *   green, unknown faces in orange;
 * * one #GstVideoRegionOfInterestMeta of type "face" per face, with a
 *   parameter structure named "face" holding:
 *   "identity" (G_TYPE_STRING, the gallery name; absent when the face is
 *   unknown), "distance" (G_TYPE_DOUBLE, the mean distance of the track's
 *   votes for that identity, or for the nearest person when unknown;
 *   +inf while unrecognised), "track-id" (G_TYPE_UINT, also the meta's
 *   id), "score" (G_TYPE_DOUBLE, the detector's confidence) and, on frames
 *   where this face was recognised, "landmarks" (#GstValueArray of 136
 *   G_TYPE_DOUBLE: x0, y0, x1, y1, ... of the 68 points in frame pixels);
 * * an element message "facerecognize" with the fields "timestamp",
 *   "stream-time", "running-time", "duration" (GstClockTime, from the
 *   buffer and the segment), "frame" (G_TYPE_UINT64, frames processed
 *   since the element started, from 0) and "faces" (#GstValueList of
 *   structures named "face", one per face, with "x", "y", "width",
 *   "height" (G_TYPE_UINT, the box clipped to the frame), "score",
 *   "identity" (absent when unknown), "distance" and "track-id" as in the
 *   meta);
 * * an element message "facerecognize-track" per track event, before the
 *   frame's message: "event" (G_TYPE_STRING: "appeared", "identity-changed"
 *   or "left"), "track-id" (G_TYPE_UINT), "recognized" (G_TYPE_BOOLEAN,
 *   FALSE until the track's first recognition and after a gallery reload),
 *   "identity" (the name after the event; absent when unknown or not
 *   recognised), "previous-identity" (identity-changed only; absent when
 *   it was unknown or not recognised), "timestamp" and "running-time".  A
 *   track appears with no identity and gets one ("identity-changed") the
 *   same frame; it leaves after #NclTrackerSettings max-missed frames
 *   without a detection, at EOS and on a flush.
 *
 * The gallery file is watched: when it is rewritten, and when
 * #GstFaceRecognize:gallery, #GstFaceRecognize:threshold or
 * #GstFaceRecognize:margin is set while PAUSED or PLAYING, the gallery is
 * reloaded in a background thread (new photos are enrolled there, one
 * photo at a time between frames) and swapped in at the next frame; every
 * track's votes are then cleared, so that identities are recomputed
 * against the new gallery.  A gallery that fails to load posts a warning
 * message with the file, line and column of the problem, and the old one
 * stays.
 *
 * Errors in start-up are posted as error messages: a missing gallery,
 * config file, photo or model is %GST_RESOURCE_ERROR_NOT_FOUND (for the
 * models, the message says to run `neuralcl models fetch`); an invalid
 * gallery or config (with FILE:LINE:COL) or a gallery photo without a face
 * %GST_RESOURCE_ERROR_SETTINGS; no usable OpenCL device or a kernel build
 * failure %GST_LIBRARY_ERROR_INIT.  A gallery photo with several faces
 * uses the largest and posts a warning.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 v4l2src ! videoconvert ! videoscale ! video/x-raw,width=640,height=360 ! facerecognize gallery=people.yaml ! videoconvert ! autovideosink
 * ]| Labels the people of people.yaml in the webcam's picture.
 * |[
 * gst-launch-1.0 -m filesrc location=clip.mp4 ! decodebin ! videoconvert ! facerecognize gallery=people.yaml overlay=false ! fakesink
 * ]| Prints the faces found in every frame of a clip as bus messages.
 * |[
 * gst-launch-1.0 filesrc location=clip.mp4 ! decodebin ! videoconvert ! facerecognize config=config/faces.yaml detector=ssd ! videoconvert ! jpegenc ! avimux ! filesink location=labelled.avi
 * ]| Takes the settings from a YAML file, runs the SSD detector, and
 * writes the labelled video.
 *
 * Since: 0.1
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <math.h>
#include <string.h>

#include <gio/gio.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <neuralcl/context.h>
#include <neuralcl/error.h>
#include <neuralcl/face-config.h>
#include <neuralcl/metric.h>
#include <neuralcl/face.h>
#include <neuralcl/gallery.h>
#include <neuralcl/image.h>
#include <neuralcl/tracker.h>

#include "gstfacerecognize-overlay.h"
#include "gstfacerecognize.h"

GST_DEBUG_CATEGORY_STATIC (gst_face_recognize_debug);
#define GST_CAT_DEFAULT gst_face_recognize_debug

enum
{
  PROP_0,
  PROP_GALLERY,
  PROP_CONFIG,
  PROP_DEVICE,
  PROP_DETECTOR,
  PROP_DETECTOR_SIZE,
  PROP_MIN_SCORE,
  PROP_THRESHOLD,
  PROP_MARGIN,
  PROP_ALIGN,
  PROP_OVERLAY,
  PROP_RECOGNIZE_INTERVAL,
};

#define DEFAULT_PROP_GALLERY NULL
#define DEFAULT_PROP_CONFIG NULL
#define DEFAULT_PROP_DEVICE NULL
#define DEFAULT_PROP_DETECTOR NCL_FACE_DETECTOR_TINY
#define DEFAULT_PROP_DETECTOR_SIZE 416
#define DEFAULT_PROP_MIN_SCORE 0.5
#define DEFAULT_PROP_THRESHOLD -1.0
#define DEFAULT_PROP_MARGIN -1.0
#define DEFAULT_PROP_ALIGN NCL_FACE_ALIGN_WARP
#define DEFAULT_PROP_OVERLAY TRUE
#define DEFAULT_PROP_RECOGNIZE_INTERVAL 15

/* Bit of a property in explicit_props. */
#define PROP_BIT(id) (1u << (id))

#define VIDEO_CAPS \
  GST_VIDEO_CAPS_MAKE ("{ BGRx, BGRA, RGBx, RGBA, RGB, BGR, I420, NV12 }")

struct _GstFaceRecognize
{
  GstVideoFilter parent;

  /* properties (GST_OBJECT_LOCK) */
  gchar *gallery;
  gchar *config;
  gchar *device;
  NclFaceDetector detector;
  guint detector_size;
  gdouble min_score;
  gdouble threshold;
  gdouble margin;
  NclFaceAlign align;
  gboolean overlay;
  guint recognize_interval;
  guint explicit_props;         /* PROP_BIT of each property the app set */
  NclFaceConfig file_config;    /* defaults + config file */

  /* negotiated state (streaming thread) */
  NclPixelFormat format;
  gint width, height;

  /* runtime resources, from start() to stop() (streaming thread) */
  NclContext *ctx;
  NclFaceEngine *engine;        /* engine_lock */
  NclTracker *tracker;
  NclGallery *active;           /* what frames are matched against */
  GArray *faces;                /* NclFace: this frame's detections */
  GArray *subset;               /* NclFace: the ones recognised */
  GArray *subset_index;         /* guint: their index in faces */
  GArray *boxes;                /* NclBox */
  GArray *scores;               /* gdouble */
  GArray *track_ids;            /* guint */
  GArray *events;               /* NclTrackEvent */
  GArray *items;                /* GstFaceOverlayItem: what to draw */
  GstFaceOverlay *overlay_draw;
  guint64 frame_count;
  gint reset_tracks;            /* atomic: end all tracks at the next frame */

  /* the engine is shared by the frames and the gallery loader */
  GMutex engine_lock;

  /* gallery reload (swap_lock) */
  GMutex swap_lock;
  gboolean started;
  gboolean loader_quit;
  GThread *loader;
  GMainContext *loader_context; /* the loader's: file monitor, wake-ups */
  gchar *requested_gallery;     /* waiting for the loader */
  NclGallery *pending;          /* loaded, waiting for a frame boundary */
  gchar *watched_path;          /* loader thread only */
};

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK,
    GST_PAD_ALWAYS,
    GST_STATIC_CAPS (VIDEO_CAPS));

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC,
    GST_PAD_ALWAYS,
    GST_STATIC_CAPS (VIDEO_CAPS));

#define gst_face_recognize_parent_class parent_class
G_DEFINE_TYPE (GstFaceRecognize, gst_face_recognize, GST_TYPE_VIDEO_FILTER);
GST_ELEMENT_REGISTER_DEFINE (facerecognize, "facerecognize", GST_RANK_NONE,
    GST_TYPE_FACE_RECOGNIZE);

#define GST_TYPE_FACE_RECOGNIZE_DETECTOR \
  (gst_face_recognize_detector_get_type ())
static GType
gst_face_recognize_detector_get_type (void)
{
  static gsize type = 0;
  static const GEnumValue values[] = {
    {NCL_FACE_DETECTOR_TINY, "Tiny face detector (Tiny-YOLOv2): fast, "
          "input size set by detector-size", "tiny"},
    {NCL_FACE_DETECTOR_SSD, "SSD MobileNetV1: more accurate on small "
          "faces, slower, 512x512 input", "ssd"},
    {0, NULL, NULL},
  };

  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstFaceRecognizeDetector", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

#define GST_TYPE_FACE_RECOGNIZE_ALIGN (gst_face_recognize_align_get_type ())
static GType
gst_face_recognize_align_get_type (void)
{
  static gsize type = 0;
  static const GEnumValue values[] = {
    {NCL_FACE_ALIGN_WARP, "Similarity warp of the landmarks to dlib's "
          "150 px face chip", "warp"},
    {NCL_FACE_ALIGN_CROP, "Axis-aligned square crop around the landmarks "
          "(face-api's)", "crop"},
    {0, NULL, NULL},
  };

  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstFaceRecognizeAlign", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

static void gst_face_recognize_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec);
static void gst_face_recognize_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec);
static void gst_face_recognize_finalize (GObject * object);
static gboolean gst_face_recognize_start (GstBaseTransform * trans);
static gboolean gst_face_recognize_stop (GstBaseTransform * trans);
static gboolean gst_face_recognize_sink_event (GstBaseTransform * trans,
    GstEvent * event);
static gboolean gst_face_recognize_set_info (GstVideoFilter * filter,
    GstCaps * incaps, GstVideoInfo * in_info, GstCaps * outcaps,
    GstVideoInfo * out_info);
static GstFlowReturn gst_face_recognize_transform_frame_ip (GstVideoFilter *
    filter, GstVideoFrame * frame);

static void
gst_face_recognize_class_init (GstFaceRecognizeClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);
  GstVideoFilterClass *filter_class = GST_VIDEO_FILTER_CLASS (klass);

  GST_DEBUG_CATEGORY_INIT (gst_face_recognize_debug, "facerecognize", 0,
      "Face detection and recognition");

  gobject_class->set_property = gst_face_recognize_set_property;
  gobject_class->get_property = gst_face_recognize_get_property;
  gobject_class->finalize = gst_face_recognize_finalize;

  /**
   * GstFaceRecognize:gallery:
   *
   * The gallery: a YAML file listing the people to recognise, each with
   * one or more photos (docs/gallery.md).  %NULL takes the config file's
   * gallery; one of the two is required.
   *
   * The file is watched while the element runs: rewriting it, or setting
   * this property while PAUSED or PLAYING, reloads the gallery in the
   * background and swaps it in at a frame boundary.  A gallery that fails
   * to load posts a warning message (with FILE:LINE:COL) and the previous
   * one stays.
   */
  g_object_class_install_property (gobject_class, PROP_GALLERY,
      g_param_spec_string ("gallery", "Gallery",
          "YAML file listing the people to recognise with their photos; "
          "watched and reloaded in the background when it changes or when "
          "this property is set while playing", DEFAULT_PROP_GALLERY,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_PLAYING));

  /**
   * GstFaceRecognize:config:
   *
   * A YAML file with face recognition settings (see `config/faces.yaml`):
   * the keys of the properties plus `border`, `landmarks`, `max-faces` and
   * the tracker's.  It is read when the element starts (READY to PAUSED);
   * a relative gallery path in it is relative to the file.  Properties
   * that the application sets explicitly override the file's values,
   * whether set before or after this one.
   */
  g_object_class_install_property (gobject_class, PROP_CONFIG,
      g_param_spec_string ("config", "Config file",
          "YAML file with face recognition settings (config/faces.yaml), "
          "read when the element starts; properties set explicitly "
          "override its values", DEFAULT_PROP_CONFIG,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));

  /**
   * GstFaceRecognize:device:
   *
   * The OpenCL device: an index counted over all platforms ("0"), a type
   * ("cpu", "gpu", "accelerator"), or a case-insensitive substring of the
   * device or platform name.  %NULL takes the config file's device, else
   * $NEURALCL_DEVICE, else the first GPU, else the first device.
   */
  g_object_class_install_property (gobject_class, PROP_DEVICE,
      g_param_spec_string ("device", "OpenCL device",
          "OpenCL device: an index (\"0\"), a type (\"cpu\", \"gpu\", "
          "\"accelerator\") or part of the device or platform name; "
          "NULL: $NEURALCL_DEVICE, else the first GPU, else the first "
          "device", DEFAULT_PROP_DEVICE,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));

  /**
   * GstFaceRecognize:detector:
   *
   * The face detector: "tiny" (Tiny-YOLOv2, fast, its input size set by
   * #GstFaceRecognize:detector-size) or "ssd" (SSD MobileNetV1 at 512x512,
   * better on small faces, several times slower).
   */
  g_object_class_install_property (gobject_class, PROP_DETECTOR,
      g_param_spec_enum ("detector", "Detector",
          "Face detector: tiny (fast) or ssd (more accurate, slower)",
          GST_TYPE_FACE_RECOGNIZE_DETECTOR, DEFAULT_PROP_DETECTOR,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));

  /**
   * GstFaceRecognize:detector-size:
   *
   * The square input size of the tiny detector, a multiple of 32 (the
   * frame is scaled to fit and padded).  Smaller is faster and misses
   * small faces: 416 finds faces down to about 1/20 of the frame's larger
   * side, 224 about 1/10.  The SSD detector always runs at 512.
   */
  g_object_class_install_property (gobject_class, PROP_DETECTOR_SIZE,
      g_param_spec_uint ("detector-size", "Detector size",
          "Input size of the tiny detector, a multiple of 32 (smaller is "
          "faster, misses smaller faces); ssd always runs at 512", 32, 2048,
          DEFAULT_PROP_DETECTOR_SIZE,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));

  /**
   * GstFaceRecognize:min-score:
   *
   * The detector's confidence below which a detection is dropped.
   */
  g_object_class_install_property (gobject_class, PROP_MIN_SCORE,
      g_param_spec_double ("min-score", "Minimum score",
          "Detections less confident than this are dropped", 0.0, 0.99,
          DEFAULT_PROP_MIN_SCORE,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));

  /**
   * GstFaceRecognize:threshold:
   *
   * The largest descriptor distance accepted as the same person,
   * overriding the gallery's `threshold` (a person's own threshold in the
   * gallery still applies to them).  Face-api's descriptors put the same
   * person at about 0.3-0.5 and different people above 0.6.  -1 keeps the
   * gallery's.  Setting it while PAUSED or PLAYING reloads the gallery in
   * the background.
   */
  g_object_class_install_property (gobject_class, PROP_THRESHOLD,
      g_param_spec_double ("threshold", "Threshold",
          "Largest distance accepted as the same person (-1: the "
          "gallery's; the same person is usually 0.3-0.5 away)", -1.0,
          NCL_GALLERY_MAX_DISTANCE, DEFAULT_PROP_THRESHOLD,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_PLAYING));

  /**
   * GstFaceRecognize:margin:
   *
   * How much closer the nearest person must be than the second nearest
   * for a name to be given, overriding the gallery's `margin`; 0 turns the
   * check off and -1 keeps the gallery's.  Setting it while PAUSED or
   * PLAYING reloads the gallery in the background.
   */
  g_object_class_install_property (gobject_class, PROP_MARGIN,
      g_param_spec_double ("margin", "Margin",
          "How much closer the nearest person must be than the second "
          "(0: off, -1: the gallery's)", -1.0, NCL_GALLERY_MAX_DISTANCE,
          DEFAULT_PROP_MARGIN,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_PLAYING));

  /**
   * GstFaceRecognize:align:
   *
   * How a face is cut out for the recognition network: "warp" rotates and
   * scales it by its landmarks onto dlib's 150 px chip (the measured
   * best), "crop" takes face-api's axis-aligned square around the
   * landmarks.  The gallery's photos are enrolled the same way (the
   * descriptor cache records it).
   */
  g_object_class_install_property (gobject_class, PROP_ALIGN,
      g_param_spec_enum ("align", "Alignment",
          "How faces are cut out for recognition: warp (landmark-aligned "
          "chip) or crop (face-api's square crop)",
          GST_TYPE_FACE_RECOGNIZE_ALIGN, DEFAULT_PROP_ALIGN,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));

  /**
   * GstFaceRecognize:overlay:
   *
   * Draws a box and a label (name or "unknown", and the distance) around
   * each face on the frame.  Without it the frame is left untouched and
   * the results are only in the metas and messages.
   */
  g_object_class_install_property (gobject_class, PROP_OVERLAY,
      g_param_spec_boolean ("overlay", "Overlay",
          "Draw a box and the name (or \"unknown\") with the distance "
          "around each face on the frame", DEFAULT_PROP_OVERLAY,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_PLAYING));

  /**
   * GstFaceRecognize:recognize-interval:
   *
   * A tracked face is recognised again every this many frames (besides
   * when its track starts, and when it grows or gets a clearer detection).
   * Smaller corrects a wrong name sooner and costs more; 0 only uses the
   * other triggers.
   */
  g_object_class_install_property (gobject_class, PROP_RECOGNIZE_INTERVAL,
      g_param_spec_uint ("recognize-interval", "Recognize interval",
          "Recognise a tracked face again every this many frames (0: only "
          "when its track starts, or it grows or sharpens)", 0, 100000,
          DEFAULT_PROP_RECOGNIZE_INTERVAL,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_PLAYING));

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class, "Face recognition",
      "Filter/Analyzer/Video",
      "Detects, tracks and recognises faces against a gallery of photos "
      "with neural networks on OpenCL", "The gst-neuralcl authors");

  trans_class->start = GST_DEBUG_FUNCPTR (gst_face_recognize_start);
  trans_class->stop = GST_DEBUG_FUNCPTR (gst_face_recognize_stop);
  trans_class->sink_event = GST_DEBUG_FUNCPTR (gst_face_recognize_sink_event);

  filter_class->set_info = GST_DEBUG_FUNCPTR (gst_face_recognize_set_info);
  filter_class->transform_frame_ip =
      GST_DEBUG_FUNCPTR (gst_face_recognize_transform_frame_ip);

  gst_type_mark_as_plugin_api (GST_TYPE_FACE_RECOGNIZE_DETECTOR, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_FACE_RECOGNIZE_ALIGN, 0);
}

static void
gst_face_recognize_init (GstFaceRecognize * self)
{
  self->gallery = g_strdup (DEFAULT_PROP_GALLERY);
  self->config = g_strdup (DEFAULT_PROP_CONFIG);
  self->device = g_strdup (DEFAULT_PROP_DEVICE);
  self->detector = DEFAULT_PROP_DETECTOR;
  self->detector_size = DEFAULT_PROP_DETECTOR_SIZE;
  self->min_score = DEFAULT_PROP_MIN_SCORE;
  self->threshold = DEFAULT_PROP_THRESHOLD;
  self->margin = DEFAULT_PROP_MARGIN;
  self->align = DEFAULT_PROP_ALIGN;
  self->overlay = DEFAULT_PROP_OVERLAY;
  self->recognize_interval = DEFAULT_PROP_RECOGNIZE_INTERVAL;
  ncl_face_config_init (&self->file_config);

  g_mutex_init (&self->engine_lock);
  g_mutex_init (&self->swap_lock);

  /* a slow filter: let live pipelines drop frames that would be late */
  gst_base_transform_set_qos_enabled (GST_BASE_TRANSFORM (self), TRUE);
}

static void
gst_face_recognize_finalize (GObject * object)
{
  GstFaceRecognize *self = GST_FACE_RECOGNIZE (object);

  g_free (self->gallery);
  g_free (self->config);
  g_free (self->device);
  ncl_face_config_clear (&self->file_config);
  g_mutex_clear (&self->engine_lock);
  g_mutex_clear (&self->swap_lock);

  G_OBJECT_CLASS (parent_class)->finalize (object);
}

/* Fills @c with the settings in force: the properties the application set,
 * else the config file's values, else the defaults.  The strings are
 * borrowed from @self.  Call with the object lock held. */
static void
gst_face_recognize_get_settings_locked (GstFaceRecognize * self,
    NclFaceConfig * c)
{
  guint set = self->explicit_props;

  *c = self->file_config;
  if (set & PROP_BIT (PROP_GALLERY))
    c->gallery = self->gallery;
  if (set & PROP_BIT (PROP_DEVICE))
    c->device = self->device;
  if (set & PROP_BIT (PROP_DETECTOR))
    c->face.detector = self->detector;
  if (set & PROP_BIT (PROP_DETECTOR_SIZE))
    c->face.detector_size = self->detector_size;
  if (set & PROP_BIT (PROP_MIN_SCORE))
    c->face.min_score = self->min_score;
  if (set & PROP_BIT (PROP_THRESHOLD))
    c->threshold = self->threshold;
  if (set & PROP_BIT (PROP_MARGIN))
    c->margin = self->margin;
  if (set & PROP_BIT (PROP_ALIGN))
    c->face.align = self->align;
  if (set & PROP_BIT (PROP_OVERLAY))
    c->overlay = self->overlay;
  if (set & PROP_BIT (PROP_RECOGNIZE_INTERVAL))
    c->tracker.recognize_interval = self->recognize_interval;
}

/* Maps a library error to a GStreamer error domain and code. */
static void
gst_face_recognize_map_error (const GError * error, GQuark * domain,
    gint * code)
{
  *domain = GST_LIBRARY_ERROR;
  *code = GST_LIBRARY_ERROR_INIT;

  if (error->domain == NCL_ERROR) {
    switch (error->code) {
      case NCL_ERROR_NOT_FOUND:
        *domain = GST_RESOURCE_ERROR;
        *code = GST_RESOURCE_ERROR_NOT_FOUND;
        break;
      case NCL_ERROR_IO:
        *domain = GST_RESOURCE_ERROR;
        *code = GST_RESOURCE_ERROR_OPEN_READ;
        break;
      case NCL_ERROR_INVALID_MODEL:
      case NCL_ERROR_INVALID_CONFIG:
      case NCL_ERROR_SHAPE:
      case NCL_ERROR_UNSUPPORTED:
        *domain = GST_RESOURCE_ERROR;
        *code = GST_RESOURCE_ERROR_SETTINGS;
        break;
      default:
        /* NO_DEVICE, OPENCL, BUILD, FAILED */
        break;
    }
  } else if (error->domain == G_FILE_ERROR) {
    *domain = GST_RESOURCE_ERROR;
    *code = error->code == G_FILE_ERROR_NOENT ?
        GST_RESOURCE_ERROR_NOT_FOUND : GST_RESOURCE_ERROR_OPEN_READ;
  } else if (error->domain == G_IO_ERROR) {
    *domain = GST_RESOURCE_ERROR;
    *code = error->code == G_IO_ERROR_NOT_FOUND ?
        GST_RESOURCE_ERROR_NOT_FOUND : GST_RESOURCE_ERROR_OPEN_READ;
  }
}

/* Posts one error or warning message for @error with the domain and code
 * it maps to: @text is the sentence for the user (transfer full); the
 * debug text is the library's message, with @file appended when the
 * message does not name it already. */
static void
gst_face_recognize_post (GstFaceRecognize * self, GstMessageType type,
    gchar * text, const GError * error, const gchar * file, gint line)
{
  gchar *debug;
  GQuark domain;
  gint code;

  gst_face_recognize_map_error (error, &domain, &code);
  if (file != NULL && strstr (error->message, file) == NULL)
    debug = g_strdup_printf ("%s (%s)", error->message, file);
  else
    debug = g_strdup (error->message);

  gst_element_message_full (GST_ELEMENT (self), type, domain, code, text,
      debug, __FILE__, GST_FUNCTION, line);
}

/* Posts each of the gallery loader's warnings (several faces in a photo,
 * a cache that could not be used) as a warning message. */
static void
gst_face_recognize_post_warnings (GstFaceRecognize * self,
    const GPtrArray * warnings, const gchar * path)
{
  for (guint i = 0; i < warnings->len; i++) {
    const gchar *w = g_ptr_array_index (warnings, i);

    GST_ELEMENT_WARNING (self, RESOURCE, SETTINGS,
        ("Face gallery: %s", w), ("while enrolling %s", path));
  }
}

/* Applies the threshold and margin overrides (< 0: keep the file's) and
 * computes the descriptors of @g's photos with the element's engine. */
static gboolean
gst_face_recognize_enrol (GstFaceRecognize * self, NclGallery * g,
    gdouble threshold, gdouble margin, GPtrArray * warnings, GError ** error)
{
  gint64 t0 = g_get_monotonic_time ();
  gboolean ok;

  if (threshold >= 0)
    ncl_gallery_set_threshold (g, threshold);
  if (margin >= 0)
    ncl_gallery_set_margin (g, margin);

  g_mutex_lock (&self->engine_lock);
  ok = ncl_gallery_enrol (g, self->engine, warnings, error);
  g_mutex_unlock (&self->engine_lock);

  if (ok)
    GST_INFO_OBJECT (self, "gallery %s: %u identities, threshold %.3f, "
        "margin %.3f, enrolled in %.0f ms", ncl_gallery_get_path (g),
        ncl_gallery_get_n_identities (g), ncl_gallery_get_threshold (g),
        ncl_gallery_get_margin (g),
        (g_get_monotonic_time () - t0) / 1000.0);
  return ok;
}

/* ---- gallery reload ---------------------------------------------------- */

static void
gst_face_recognize_on_file_changed (GFileMonitor * monitor, GFile * file,
    GFile * other, GFileMonitorEvent event, gpointer data)
{
  GstFaceRecognize *self = data;

  /* a rewrite in place ends with CHANGES_DONE_HINT; a file renamed over
   * the gallery (editors, g_file_set_contents) is CREATED, then the hint */
  if (event != G_FILE_MONITOR_EVENT_CHANGES_DONE_HINT &&
      event != G_FILE_MONITOR_EVENT_CREATED)
    return;

  GST_DEBUG_OBJECT (self, "gallery file %s changed (event %d)",
      self->watched_path, event);
  g_mutex_lock (&self->swap_lock);
  if (self->requested_gallery == NULL)
    self->requested_gallery = g_strdup (self->watched_path);
  g_mutex_unlock (&self->swap_lock);
}

/* Watches self->watched_path, replacing *@monitor; loader thread. */
static void
gst_face_recognize_watch (GstFaceRecognize * self, GFileMonitor ** monitor)
{
  g_autoptr (GFile) file = g_file_new_for_path (self->watched_path);
  g_autoptr (GError) error = NULL;

  if (*monitor != NULL) {
    g_signal_handlers_disconnect_by_data (*monitor, self);
    g_file_monitor_cancel (*monitor);
    g_clear_object (monitor);
  }
  *monitor = g_file_monitor_file (file, G_FILE_MONITOR_NONE, NULL, &error);
  if (*monitor == NULL) {
    GST_WARNING_OBJECT (self, "cannot watch %s for changes: %s",
        self->watched_path, error->message);
    return;
  }
  g_signal_connect (*monitor, "changed",
      G_CALLBACK (gst_face_recognize_on_file_changed), self);
  GST_DEBUG_OBJECT (self, "watching %s", self->watched_path);
}

/* Loads the gallery at @path for a swap; posts a warning and returns NULL
 * when it cannot be loaded. */

/* The learned verification head for "verifier: classifier" (NULL without
 * error for "distance"). */
static NclVerifier *
gst_face_recognize_load_head (const gchar * verifier, const gchar * model,
    GError ** error)
{
  NclFaceConfig t = { 0 };

  t.verifier = (gchar *) verifier;
  t.verifier_model = (gchar *) model;
  return ncl_verifier_from_config (&t, error);
}
static NclGallery *
gst_face_recognize_reload (GstFaceRecognize * self, const gchar * path)
{
  g_autoptr (GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (NclGallery) g = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *verifier = NULL, *vmodel = NULL;
  NclFaceConfig c;
  gdouble threshold, margin;

  GST_OBJECT_LOCK (self);
  gst_face_recognize_get_settings_locked (self, &c);
  threshold = c.threshold;
  margin = c.margin;
  verifier = g_strdup (c.verifier);
  vmodel = g_strdup (c.verifier_model);
  GST_OBJECT_UNLOCK (self);

  GST_INFO_OBJECT (self, "reloading the gallery %s", path);
  g = ncl_gallery_parse (path, &error);
  if (g != NULL) {
    NclVerifier *head = gst_face_recognize_load_head (verifier, vmodel,
        &error);

    if (error != NULL)
      g_clear_pointer (&g, ncl_gallery_unref);
    else
      ncl_gallery_set_classifier (g, head);
  }
  if (g != NULL && !gst_face_recognize_enrol (self, g, threshold, margin,
          warnings, &error))
    g_clear_pointer (&g, ncl_gallery_unref);
  gst_face_recognize_post_warnings (self, warnings, path);

  if (g == NULL) {
    /* the library's message carries FILE:LINE:COL */
    gst_face_recognize_post (self, GST_MESSAGE_WARNING,
        g_strdup_printf ("Could not reload the face gallery: %s.  Keeping "
            "the previous gallery.", error->message), error, path,
        __LINE__);
    return NULL;
  }
  return g_steal_pointer (&g);
}

/* The gallery loader thread: watches the gallery file from its own main
 * context and loads each requested gallery into self->pending, for the
 * streaming thread to pick up at a frame boundary. */
static gpointer
gst_face_recognize_loader (gpointer data)
{
  GstFaceRecognize *self = data;
  GMainContext *context = self->loader_context;
  GFileMonitor *monitor = NULL;

  g_main_context_push_thread_default (context);
  gst_face_recognize_watch (self, &monitor);

  g_mutex_lock (&self->swap_lock);
  while (!self->loader_quit) {
    g_autofree gchar *path = NULL;
    NclGallery *g, *old;

    if (self->requested_gallery == NULL) {
      /* wakes up for file events and for g_main_context_wakeup() */
      g_mutex_unlock (&self->swap_lock);
      g_main_context_iteration (context, TRUE);
      g_mutex_lock (&self->swap_lock);
      continue;
    }
    path = g_steal_pointer (&self->requested_gallery);
    g_mutex_unlock (&self->swap_lock);

    if (g_strcmp0 (path, self->watched_path) != 0) {
      g_free (self->watched_path);
      self->watched_path = g_strdup (path);
      gst_face_recognize_watch (self, &monitor);
    }
    g = gst_face_recognize_reload (self, path);

    g_mutex_lock (&self->swap_lock);
    if (g == NULL)
      continue;
    if (self->loader_quit || self->requested_gallery != NULL) {
      /* stopping, or superseded by a newer request */
      GST_DEBUG_OBJECT (self, "dropping the gallery %s", path);
      g_mutex_unlock (&self->swap_lock);
      ncl_gallery_unref (g);
      g_mutex_lock (&self->swap_lock);
      continue;
    }
    old = self->pending;
    self->pending = g;
    g_mutex_unlock (&self->swap_lock);
    ncl_gallery_unref (old);
    g_mutex_lock (&self->swap_lock);
  }
  g_mutex_unlock (&self->swap_lock);

  if (monitor != NULL) {
    g_signal_handlers_disconnect_by_data (monitor, self);
    g_file_monitor_cancel (monitor);
    g_object_unref (monitor);
  }
  /* drop what the cancelled monitor left queued */
  while (g_main_context_iteration (context, FALSE));
  g_main_context_pop_thread_default (context);
  return NULL;
}

/* Hands @path (transfer full) to the loader thread when the element is
 * running; start() loads the gallery otherwise. */
static void
gst_face_recognize_request_reload (GstFaceRecognize * self, gchar * path)
{
  g_mutex_lock (&self->swap_lock);
  if (!self->started || self->loader_context == NULL) {
    g_mutex_unlock (&self->swap_lock);
    g_free (path);
    return;
  }
  if (path == NULL) {
    g_mutex_unlock (&self->swap_lock);
    GST_WARNING_OBJECT (self, "no gallery set; keeping the current one");
    return;
  }
  GST_INFO_OBJECT (self, "reloading the gallery from %s", path);
  g_free (self->requested_gallery);
  self->requested_gallery = path;
  g_main_context_wakeup (self->loader_context);
  g_mutex_unlock (&self->swap_lock);
}

/* The gallery in force now, to reload after a threshold change. */
static void
gst_face_recognize_reload_current (GstFaceRecognize * self)
{
  NclFaceConfig c;
  gchar *path;

  GST_OBJECT_LOCK (self);
  gst_face_recognize_get_settings_locked (self, &c);
  path = g_strdup (c.gallery);
  GST_OBJECT_UNLOCK (self);
  gst_face_recognize_request_reload (self, path);
}

static void
gst_face_recognize_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  GstFaceRecognize *self = GST_FACE_RECOGNIZE (object);

  GST_OBJECT_LOCK (self);
  self->explicit_props |= PROP_BIT (prop_id);
  switch (prop_id) {
    case PROP_GALLERY:
      g_free (self->gallery);
      self->gallery = g_value_dup_string (value);
      /* NULL: back to the config file's gallery */
      if (self->gallery == NULL)
        self->explicit_props &= ~PROP_BIT (PROP_GALLERY);
      GST_OBJECT_UNLOCK (self);
      gst_face_recognize_reload_current (self);
      return;
    case PROP_CONFIG:
      g_free (self->config);
      self->config = g_value_dup_string (value);
      break;
    case PROP_DEVICE:
      g_free (self->device);
      self->device = g_value_dup_string (value);
      if (self->device == NULL)
        self->explicit_props &= ~PROP_BIT (PROP_DEVICE);
      break;
    case PROP_DETECTOR:
      self->detector = g_value_get_enum (value);
      break;
    case PROP_DETECTOR_SIZE:
      self->detector_size = g_value_get_uint (value);
      break;
    case PROP_MIN_SCORE:
      self->min_score = g_value_get_double (value);
      break;
    case PROP_THRESHOLD:
    case PROP_MARGIN:
      if (prop_id == PROP_THRESHOLD)
        self->threshold = g_value_get_double (value);
      else
        self->margin = g_value_get_double (value);
      GST_OBJECT_UNLOCK (self);
      gst_face_recognize_reload_current (self);
      return;
    case PROP_ALIGN:
      self->align = g_value_get_enum (value);
      break;
    case PROP_OVERLAY:
      self->overlay = g_value_get_boolean (value);
      break;
    case PROP_RECOGNIZE_INTERVAL:
      self->recognize_interval = g_value_get_uint (value);
      break;
    default:
      self->explicit_props &= ~PROP_BIT (prop_id);
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_face_recognize_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec)
{
  GstFaceRecognize *self = GST_FACE_RECOGNIZE (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_GALLERY:
      g_value_set_string (value, self->gallery);
      break;
    case PROP_CONFIG:
      g_value_set_string (value, self->config);
      break;
    case PROP_DEVICE:
      g_value_set_string (value, self->device);
      break;
    case PROP_DETECTOR:
      g_value_set_enum (value, self->detector);
      break;
    case PROP_DETECTOR_SIZE:
      g_value_set_uint (value, self->detector_size);
      break;
    case PROP_MIN_SCORE:
      g_value_set_double (value, self->min_score);
      break;
    case PROP_THRESHOLD:
      g_value_set_double (value, self->threshold);
      break;
    case PROP_MARGIN:
      g_value_set_double (value, self->margin);
      break;
    case PROP_ALIGN:
      g_value_set_enum (value, self->align);
      break;
    case PROP_OVERLAY:
      g_value_set_boolean (value, self->overlay);
      break;
    case PROP_RECOGNIZE_INTERVAL:
      g_value_set_uint (value, self->recognize_interval);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

/* ---- start / stop ------------------------------------------------------ */

static gboolean
gst_face_recognize_start (GstBaseTransform * trans)
{
  GstFaceRecognize *self = GST_FACE_RECOGNIZE (trans);
  g_autoptr (GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (NclGallery) gallery = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree gchar *config = NULL;
  g_autofree gchar *path = NULL;
  g_autofree gchar *device = NULL;
  g_autofree gchar *verifier = NULL, *vmodel = NULL;
  g_autoptr (NclVerifier) head = NULL;
  NclFaceConfig file, c;
  gint64 t0 = g_get_monotonic_time ();

  GST_OBJECT_LOCK (self);
  config = g_strdup (self->config);
  GST_OBJECT_UNLOCK (self);

  ncl_face_config_init (&file);
  if (config != NULL && !ncl_face_config_load (&file, config, &error)) {
    ncl_face_config_clear (&file);
    gst_face_recognize_post (self, GST_MESSAGE_ERROR,
        g_strdup_printf ("Could not read the face recognition settings "
            "file: %s", error->message), error, config, __LINE__);
    goto failed;
  }

  GST_OBJECT_LOCK (self);
  ncl_face_config_clear (&self->file_config);
  self->file_config = file;
  gst_face_recognize_get_settings_locked (self, &c);
  path = g_strdup (c.gallery);
  device = g_strdup (c.device);
  verifier = g_strdup (c.verifier);
  vmodel = g_strdup (c.verifier_model);
  GST_OBJECT_UNLOCK (self);

  /* verifier: classifier: the learned head decides (metric.h) */
  head = gst_face_recognize_load_head (verifier, vmodel, &error);
  if (error != NULL) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
        ("Could not load the face verifier: %s", error->message),
        ("config %s", config));
    goto failed;
  }
  if (path == NULL) {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
        ("No face gallery: set the \"gallery\" property or \"gallery\" in "
            "the config file."), (NULL));
    goto failed;
  }

  /* the file before OpenCL: YAML mistakes are reported at once */
  gallery = ncl_gallery_parse (path, &error);
  if (gallery == NULL) {
    gst_face_recognize_post (self, GST_MESSAGE_ERROR,
        g_strdup_printf ("Could not read the face gallery: %s",
            error->message), error, path, __LINE__);
    goto failed;
  }
  ncl_gallery_set_classifier (gallery, g_steal_pointer (&head));

  self->ctx = ncl_context_get_shared (device, &error);
  if (self->ctx == NULL) {
    /* whatever the code, no context means no usable OpenCL */
    gst_element_message_full (GST_ELEMENT (self), GST_MESSAGE_ERROR,
        GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_INIT,
        g_strdup_printf ("Could not open the OpenCL device \"%s\".",
            device ? device : "(default)"), g_strdup (error->message),
        __FILE__, GST_FUNCTION, __LINE__);
    goto failed;
  }
  GST_INFO_OBJECT (self, "OpenCL device: %s (%s)",
      ncl_context_get_device_name (self->ctx),
      ncl_context_get_platform_name (self->ctx));

  self->engine = ncl_face_engine_new (self->ctx, &c.face, &error);
  if (self->engine == NULL) {
    if (g_error_matches (error, NCL_ERROR, NCL_ERROR_NOT_FOUND))
      gst_face_recognize_post (self, GST_MESSAGE_ERROR,
          g_strdup ("The face models are not installed: run `neuralcl "
              "models fetch` (or set NEURALCL_MODEL_PATH)."), error, NULL,
          __LINE__);
    else
      gst_face_recognize_post (self, GST_MESSAGE_ERROR,
          g_strdup_printf ("Could not load the face models: %s",
              error->message), error, NULL, __LINE__);
    goto failed;
  }

  if (!gst_face_recognize_enrol (self, gallery, c.threshold, c.margin,
          warnings, &error)) {
    gst_face_recognize_post_warnings (self, warnings, path);
    gst_face_recognize_post (self, GST_MESSAGE_ERROR,
        g_strdup_printf ("Could not enrol the face gallery: %s",
            error->message), error, path, __LINE__);
    goto failed;
  }
  gst_face_recognize_post_warnings (self, warnings, path);

  self->tracker = ncl_tracker_new (&c.tracker);
  self->active = g_steal_pointer (&gallery);
  self->faces = g_array_new (FALSE, FALSE, sizeof (NclFace));
  self->subset = g_array_new (FALSE, FALSE, sizeof (NclFace));
  self->subset_index = g_array_new (FALSE, FALSE, sizeof (guint));
  self->boxes = g_array_new (FALSE, FALSE, sizeof (NclBox));
  self->scores = g_array_new (FALSE, FALSE, sizeof (gdouble));
  self->track_ids = g_array_new (FALSE, FALSE, sizeof (guint));
  self->events = g_array_new (FALSE, FALSE, sizeof (NclTrackEvent));
  self->items = g_array_new (FALSE, FALSE, sizeof (GstFaceOverlayItem));
  self->overlay_draw = gst_face_overlay_new ();
  self->frame_count = 0;
  g_atomic_int_set (&self->reset_tracks, FALSE);

  /* the loader thread watches the file and reloads it */
  g_mutex_lock (&self->swap_lock);
  self->started = TRUE;
  self->watched_path = g_strdup (path);
  self->loader_context = g_main_context_new ();
  self->loader = g_thread_try_new ("facerecognize-gallery",
      gst_face_recognize_loader, self, &error);
  if (self->loader == NULL)
    g_clear_pointer (&self->loader_context, g_main_context_unref);
  g_mutex_unlock (&self->swap_lock);
  if (self->loader == NULL)
    GST_ELEMENT_WARNING (self, RESOURCE, FAILED,
        ("Could not start the gallery loader: the gallery will not be "
            "reloaded."), ("%s", error->message));

  GST_INFO_OBJECT (self, "started in %.0f ms",
      (g_get_monotonic_time () - t0) / 1000.0);
  return TRUE;

failed:
  gst_face_recognize_stop (trans);
  return FALSE;
}

static gboolean
gst_face_recognize_stop (GstBaseTransform * trans)
{
  GstFaceRecognize *self = GST_FACE_RECOGNIZE (trans);
  NclGallery *pending;
  GThread *loader;

  g_mutex_lock (&self->swap_lock);
  self->started = FALSE;
  self->loader_quit = TRUE;
  loader = g_steal_pointer (&self->loader);
  if (self->loader_context != NULL)
    g_main_context_wakeup (self->loader_context);
  g_mutex_unlock (&self->swap_lock);

  /* waits for a load in flight to finish; its result is dropped */
  if (loader != NULL)
    g_thread_join (loader);

  g_mutex_lock (&self->swap_lock);
  self->loader_quit = FALSE;
  g_clear_pointer (&self->requested_gallery, g_free);
  pending = g_steal_pointer (&self->pending);
  g_clear_pointer (&self->loader_context, g_main_context_unref);
  g_clear_pointer (&self->watched_path, g_free);
  g_mutex_unlock (&self->swap_lock);

  ncl_gallery_unref (pending);
  g_clear_pointer (&self->active, ncl_gallery_unref);
  g_clear_pointer (&self->tracker, ncl_tracker_free);
  g_clear_pointer (&self->engine, ncl_face_engine_free);
  g_clear_pointer (&self->ctx, ncl_context_unref);
  g_clear_pointer (&self->faces, g_array_unref);
  g_clear_pointer (&self->subset, g_array_unref);
  g_clear_pointer (&self->subset_index, g_array_unref);
  g_clear_pointer (&self->boxes, g_array_unref);
  g_clear_pointer (&self->scores, g_array_unref);
  g_clear_pointer (&self->track_ids, g_array_unref);
  g_clear_pointer (&self->events, g_array_unref);
  g_clear_pointer (&self->items, g_array_unref);
  g_clear_pointer (&self->overlay_draw, gst_face_overlay_free);
  self->width = self->height = 0;

  return TRUE;
}

/* ---- results: messages and metas ---------------------------------------- */

/* The name of @identity in @g, or NULL when unknown or not recognised. */
static const gchar *
identity_name (const NclGallery * g, gint identity)
{
  if (g == NULL || identity < 0)
    return NULL;
  return ncl_gallery_get_name (g, identity);
}

/* Posts a "facerecognize-track" message per event in self->events, naming
 * identities from @g, and empties the array. */
static void
gst_face_recognize_post_events (GstFaceRecognize * self, const NclGallery * g,
    GstClockTime timestamp, GstClockTime running_time)
{
  for (guint i = 0; i < self->events->len; i++) {
    const NclTrackEvent *ev = &g_array_index (self->events, NclTrackEvent, i);
    const gchar *name = identity_name (g, ev->identity);
    GstStructure *s;

    s = gst_structure_new ("facerecognize-track",
        "event", G_TYPE_STRING, ncl_track_event_type_to_string (ev->type),
        "track-id", G_TYPE_UINT, ev->track_id,
        "recognized", G_TYPE_BOOLEAN, ev->identity != NCL_TRACK_PENDING,
        "timestamp", GST_TYPE_CLOCK_TIME, timestamp,
        "running-time", GST_TYPE_CLOCK_TIME, running_time, NULL);
    if (name != NULL)
      gst_structure_set (s, "identity", G_TYPE_STRING, name, NULL);
    if (ev->type == NCL_TRACK_IDENTITY_CHANGED) {
      const gchar *prev = identity_name (g, ev->previous_identity);

      if (prev != NULL)
        gst_structure_set (s, "previous-identity", G_TYPE_STRING, prev,
            NULL);
    }
    GST_DEBUG_OBJECT (self, "%" GST_PTR_FORMAT, s);
    gst_element_post_message (GST_ELEMENT (self),
        gst_message_new_element (GST_OBJECT (self), s));
  }
  g_array_set_size (self->events, 0);
}

/* Ends every track (flush, EOS, new frame size) and posts "left". */
static void
gst_face_recognize_reset_tracks (GstFaceRecognize * self,
    GstClockTime timestamp, GstClockTime running_time)
{
  if (self->tracker == NULL)
    return;
  g_array_set_size (self->events, 0);
  ncl_tracker_reset (self->tracker, self->events);
  gst_face_recognize_post_events (self, self->active, timestamp,
      running_time);
}

/* Installs a gallery that the loader finished, at a frame boundary, and
 * clears the votes so that every track is recognised again. */
static void
gst_face_recognize_swap_pending (GstFaceRecognize * self,
    GstClockTime timestamp, GstClockTime running_time)
{
  NclGallery *fresh, *old;

  g_mutex_lock (&self->swap_lock);
  fresh = g_steal_pointer (&self->pending);
  g_mutex_unlock (&self->swap_lock);
  if (fresh == NULL)
    return;

  old = self->active;
  self->active = fresh;
  g_array_set_size (self->events, 0);
  ncl_tracker_clear_votes (self->tracker, self->events);
  /* the previous identities are indices into the old gallery */
  gst_face_recognize_post_events (self, old, timestamp, running_time);
  ncl_gallery_unref (old);
  GST_INFO_OBJECT (self, "now matching against %s (%u identities)",
      ncl_gallery_get_path (fresh), ncl_gallery_get_n_identities (fresh));
}

/* @box clipped to the frame, in whole pixels. */
static void
clip_box (const NclBox * box, gint width, gint height, guint * x, guint * y,
    guint * w, guint * h)
{
  gint x0 = CLAMP ((gint) floor (box->x), 0, width);
  gint y0 = CLAMP ((gint) floor (box->y), 0, height);
  gint x1 = CLAMP ((gint) ceil (box->x + box->w), x0, width);
  gint y1 = CLAMP ((gint) ceil (box->y + box->h), y0, height);

  *x = x0;
  *y = y0;
  *w = x1 - x0;
  *h = y1 - y0;
}

/* Attaches the face's GstVideoRegionOfInterestMeta and appends its
 * summary to @list (the frame message's "faces"). */
static void
gst_face_recognize_report_face (GstFaceRecognize * self, GstBuffer * buf,
    const NclFace * face, const NclTrack * track, gint width, gint height,
    GValue * list)
{
  const gchar *name = identity_name (self->active, track->identity);
  GstVideoRegionOfInterestMeta *meta;
  GstStructure *param, *summary;
  GValue v = G_VALUE_INIT;
  guint x, y, w, h;

  clip_box (&face->box, width, height, &x, &y, &w, &h);
  meta = gst_buffer_add_video_region_of_interest_meta (buf, "face", x, y, w,
      h);
  meta->id = track->id;
  param = gst_structure_new ("face",
      "distance", G_TYPE_DOUBLE, (gdouble) track->distance,
      "track-id", G_TYPE_UINT, track->id,
      "score", G_TYPE_DOUBLE, face->score, NULL);
  if (name != NULL)
    gst_structure_set (param, "identity", G_TYPE_STRING, name, NULL);
  if (face->has_landmarks) {
    GValue points = G_VALUE_INIT;

    gst_value_array_init (&points, 2 * NCL_FACE_N_LANDMARKS);
    for (guint i = 0; i < NCL_FACE_N_LANDMARKS; i++) {
      GValue c = G_VALUE_INIT;

      g_value_init (&c, G_TYPE_DOUBLE);
      g_value_set_double (&c, face->landmarks[i].x);
      gst_value_array_append_value (&points, &c);
      g_value_set_double (&c, face->landmarks[i].y);
      gst_value_array_append_and_take_value (&points, &c);
    }
    gst_structure_take_value (param, "landmarks", &points);
  }
  gst_video_region_of_interest_meta_add_param (meta, param);

  summary = gst_structure_new ("face",
      "x", G_TYPE_UINT, x, "y", G_TYPE_UINT, y,
      "width", G_TYPE_UINT, w, "height", G_TYPE_UINT, h,
      "score", G_TYPE_DOUBLE, face->score,
      "distance", G_TYPE_DOUBLE, (gdouble) track->distance,
      "track-id", G_TYPE_UINT, track->id, NULL);
  if (name != NULL)
    gst_structure_set (summary, "identity", G_TYPE_STRING, name, NULL);
  g_value_init (&v, GST_TYPE_STRUCTURE);
  gst_value_set_structure (&v, summary);
  gst_structure_free (summary);
  gst_value_list_append_and_take_value (list, &v);
}

/* ---- streaming ---------------------------------------------------------- */

static gboolean
gst_face_recognize_sink_event (GstBaseTransform * trans, GstEvent * event)
{
  GstFaceRecognize *self = GST_FACE_RECOGNIZE (trans);

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_FLUSH_STOP:
      /* the tracks end at the next frame, in the streaming thread */
      g_atomic_int_set (&self->reset_tracks, TRUE);
      break;
    case GST_EVENT_EOS:
      gst_face_recognize_reset_tracks (self, GST_CLOCK_TIME_NONE,
          GST_CLOCK_TIME_NONE);
      break;
    default:
      break;
  }
  return GST_BASE_TRANSFORM_CLASS (parent_class)->sink_event (trans, event);
}

static gboolean
gst_face_recognize_set_info (GstVideoFilter * filter, GstCaps * incaps,
    GstVideoInfo * in_info, GstCaps * outcaps, GstVideoInfo * out_info)
{
  GstFaceRecognize *self = GST_FACE_RECOGNIZE (filter);
  GstVideoFormat format = GST_VIDEO_INFO_FORMAT (in_info);
  gint width = GST_VIDEO_INFO_WIDTH (in_info);
  gint height = GST_VIDEO_INFO_HEIGHT (in_info);

  switch (format) {
    case GST_VIDEO_FORMAT_RGB:
      self->format = NCL_FORMAT_RGB;
      break;
    case GST_VIDEO_FORMAT_BGR:
      self->format = NCL_FORMAT_BGR;
      break;
    case GST_VIDEO_FORMAT_RGBx:
      self->format = NCL_FORMAT_RGBX;
      break;
    case GST_VIDEO_FORMAT_BGRx:
      self->format = NCL_FORMAT_BGRX;
      break;
    case GST_VIDEO_FORMAT_RGBA:
      self->format = NCL_FORMAT_RGBA;
      break;
    case GST_VIDEO_FORMAT_BGRA:
      self->format = NCL_FORMAT_BGRA;
      break;
    case GST_VIDEO_FORMAT_I420:
      self->format = NCL_FORMAT_I420;
      break;
    case GST_VIDEO_FORMAT_NV12:
      self->format = NCL_FORMAT_NV12;
      break;
    default:
      GST_ERROR_OBJECT (self, "unsupported caps %" GST_PTR_FORMAT, incaps);
      return FALSE;
  }

  if (!gst_face_overlay_set_info (self->overlay_draw, in_info)) {
    GST_ERROR_OBJECT (self, "cannot make a %dx%d overlay surface", width,
        height);
    return FALSE;
  }

  /* boxes from another frame size do not continue tracks */
  if (width != self->width || height != self->height)
    g_atomic_int_set (&self->reset_tracks, TRUE);
  self->width = width;
  self->height = height;

  GST_DEBUG_OBJECT (self, "%s %dx%d", GST_VIDEO_INFO_NAME (in_info), width,
      height);
  return TRUE;
}

/* Detects the faces, updates the tracks, and computes landmarks and
 * descriptors for the faces whose track needs a recognition, as one
 * batch; the engine lock is held throughout (the loader shares it). */
static gboolean
gst_face_recognize_analyze (GstFaceRecognize * self, const NclImage * img,
    GError ** error)
{
  NclFace *subset;
  guint n;

  if (!ncl_face_engine_set_image (self->engine, img, error) ||
      !ncl_face_engine_detect (self->engine, self->faces, error))
    return FALSE;

  n = self->faces->len;
  g_array_set_size (self->boxes, n);
  g_array_set_size (self->scores, n);
  g_array_set_size (self->track_ids, n);
  for (guint i = 0; i < n; i++) {
    const NclFace *face = &g_array_index (self->faces, NclFace, i);

    g_array_index (self->boxes, NclBox, i) = face->box;
    g_array_index (self->scores, gdouble, i) = face->score;
  }
  ncl_tracker_update (self->tracker, (const NclBox *) self->boxes->data,
      (const gdouble *) self->scores->data, n,
      (guint *) self->track_ids->data, self->events);

  g_array_set_size (self->subset, 0);
  g_array_set_size (self->subset_index, 0);
  for (guint i = 0; i < n; i++) {
    if (ncl_tracker_needs_recognition (self->tracker,
            g_array_index (self->track_ids, guint, i))) {
      g_array_append_val (self->subset, g_array_index (self->faces, NclFace,
              i));
      g_array_append_val (self->subset_index, i);
    }
  }
  if (self->subset->len == 0)
    return TRUE;

  subset = (NclFace *) self->subset->data;
  return ncl_face_engine_landmarks (self->engine, subset, self->subset->len,
      error) && ncl_face_engine_describe (self->engine, subset,
      self->subset->len, error);
}

static GstFlowReturn
gst_face_recognize_transform_frame_ip (GstVideoFilter * filter,
    GstVideoFrame * frame)
{
  GstFaceRecognize *self = GST_FACE_RECOGNIZE (filter);
  GstBaseTransform *trans = GST_BASE_TRANSFORM (filter);
  GstBuffer *buf = frame->buffer;
  g_autoptr (GError) error = NULL;
  GstClockTime ts = GST_BUFFER_PTS (buf);
  GstClockTime running, stream;
  const NclTrackerSettings *ts_now;
  NclImage img = { 0, };
  NclFaceConfig c;
  GstStructure *s;
  GValue list = G_VALUE_INIT;
  gint width = GST_VIDEO_FRAME_WIDTH (frame);
  gint height = GST_VIDEO_FRAME_HEIGHT (frame);
  gboolean ok;

  GST_OBJECT_LOCK (self);
  gst_face_recognize_get_settings_locked (self, &c);
  GST_OBJECT_UNLOCK (self);

  if (G_UNLIKELY (self->engine == NULL || self->active == NULL)) {
    GST_ELEMENT_ERROR (self, STREAM, FAILED,
        ("The face recognition engine is not running."), (NULL));
    return GST_FLOW_ERROR;
  }

  running = gst_segment_to_running_time (&trans->segment, GST_FORMAT_TIME,
      ts);
  stream = gst_segment_to_stream_time (&trans->segment, GST_FORMAT_TIME, ts);

  if (g_atomic_int_compare_and_exchange (&self->reset_tracks, TRUE, FALSE))
    gst_face_recognize_reset_tracks (self, ts, running);
  gst_face_recognize_swap_pending (self, ts, running);
  ts_now = ncl_tracker_get_settings (self->tracker);
  if (ts_now->recognize_interval != c.tracker.recognize_interval) {
    NclTrackerSettings t = *ts_now;

    t.recognize_interval = c.tracker.recognize_interval;
    ncl_tracker_set_settings (self->tracker, &t);
  }

  img.format = self->format;
  img.width = width;
  img.height = height;
  for (guint i = 0; i < GST_VIDEO_FRAME_N_PLANES (frame); i++) {
    img.planes[i] = GST_VIDEO_FRAME_PLANE_DATA (frame, i);
    img.strides[i] = GST_VIDEO_FRAME_PLANE_STRIDE (frame, i);
  }

  g_array_set_size (self->faces, 0);
  g_array_set_size (self->events, 0);
  g_mutex_lock (&self->engine_lock);
  ok = gst_face_recognize_analyze (self, &img, &error);
  g_mutex_unlock (&self->engine_lock);
  if (!ok) {
    GST_ELEMENT_ERROR (self, STREAM, FAILED,
        ("Face recognition failed on a frame."), ("%s", error->message));
    return GST_FLOW_ERROR;
  }

  /* votes, and the landmarks back to their faces */
  for (guint j = 0; j < self->subset->len; j++) {
    const NclFace *face = &g_array_index (self->subset, NclFace, j);
    guint i = g_array_index (self->subset_index, guint, j);
    guint id = g_array_index (self->track_ids, guint, i);
    NclMatch m;

    ncl_gallery_match (self->active, face->descriptor, &m);
    ncl_tracker_add_result (self->tracker, id, m.identity, m.distance,
        self->events);
    g_array_index (self->faces, NclFace, i) = *face;
  }
  gst_face_recognize_post_events (self, self->active, ts, running);

  g_value_init (&list, GST_TYPE_LIST);
  g_array_set_size (self->items, 0);
  for (guint i = 0; i < self->faces->len; i++) {
    const NclFace *face = &g_array_index (self->faces, NclFace, i);
    guint id = g_array_index (self->track_ids, guint, i);
    const NclTrack *track = ncl_tracker_get_track (self->tracker, id);
    GstFaceOverlayItem item;

    if (track == NULL)
      continue;
    gst_face_recognize_report_face (self, buf, face, track, width, height,
        &list);
    item.box = face->box;
    item.name = identity_name (self->active, track->identity);
    item.distance = track->distance;
    g_array_append_val (self->items, item);
  }

  if (c.overlay)
    gst_face_overlay_draw (self->overlay_draw, frame,
        (const GstFaceOverlayItem *) self->items->data, self->items->len);

  s = gst_structure_new ("facerecognize",
      "timestamp", GST_TYPE_CLOCK_TIME, ts,
      "stream-time", GST_TYPE_CLOCK_TIME, stream,
      "running-time", GST_TYPE_CLOCK_TIME, running,
      "duration", GST_TYPE_CLOCK_TIME, GST_BUFFER_DURATION (buf),
      "frame", G_TYPE_UINT64, self->frame_count, NULL);
  gst_structure_take_value (s, "faces", &list);
  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_element (GST_OBJECT (self), s));

  GST_LOG_OBJECT (self, "frame %" G_GUINT64_FORMAT ": %u faces, %u "
      "recognised", self->frame_count, self->faces->len, self->subset->len);
  self->frame_count++;
  return GST_FLOW_OK;
}
