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
 * SECTION:element-styletransfer
 * @title: styletransfer
 *
 * Repaints each video frame in the style of a painting with a fast
 * feed-forward network (Johnson et al.'s TransformerNet, as trained by
 * PyTorch's fast_neural_style example), running on an OpenCL device.
 *
 * The #GstStyleTransfer:model property names the network: a bundled style
 * ("mosaic", "candy", ... — `neuralcl style list` prints them), a model YAML
 * graph, or a PyTorch checkpoint saved as `.safetensors`.  The same
 * settings can come from a YAML file (#GstStyleTransfer:config, see
 * `config/styletransfer.yaml`); the file is read when the element starts,
 * and properties set by the application override its values.
 *
 * Frames are processed in place, in any size: the network runs at the frame
 * size or at #GstStyleTransfer:inference-width x
 * #GstStyleTransfer:inference-height, and its output is resized back.
 * #GstStyleTransfer:strength blends the result over the original (0 leaves
 * frames untouched and the element works in passthrough), and
 * #GstStyleTransfer:preserve-colors keeps the original colours.  QoS is
 * enabled, so live pipelines drop frames that would be late rather than
 * queue them.
 *
 * Setting #GstStyleTransfer:model while PAUSED or PLAYING loads the new
 * model in a background thread; the stream keeps flowing with the old one,
 * which is replaced at the next frame after the load.  If the new model
 * cannot be loaded, the element posts a warning message naming it and keeps
 * the old model.
 *
 * Errors in start-up are posted as error messages: a missing model or
 * config file is %GST_RESOURCE_ERROR_NOT_FOUND, an invalid model or config
 * %GST_RESOURCE_ERROR_SETTINGS, and no usable OpenCL device or a kernel
 * build failure %GST_LIBRARY_ERROR_INIT.  The debug text carries the
 * library's message with the file name (and line:column for YAML).
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 v4l2src ! videoconvert ! videoscale ! video/x-raw,width=320,height=240 ! styletransfer model=candy ! videoconvert ! autovideosink
 * ]| Shows the webcam in the style of the "candy" painting.
 * |[
 * gst-launch-1.0 videotestsrc num-buffers=5 ! video/x-raw,width=160,height=120 ! styletransfer model=mosaic ! videoconvert ! pngenc snapshot=false ! multifilesink location=frame-%02d.png
 * ]| Writes five stylised test frames as PNG files.
 * |[
 * gst-launch-1.0 filesrc location=clip.mp4 ! decodebin ! videoconvert ! styletransfer model=my-style.yaml inference-width=320 inference-height=180 strength=0.7 ! videoconvert ! autovideosink
 * ]| Plays a clip styled by a locally trained model running at 320x180,
 * blended at 70 % over the original.
 * |[
 * gst-launch-1.0 videotestsrc ! styletransfer config=config/styletransfer.yaml device=gpu ! videoconvert ! autovideosink
 * ]| Takes its settings from a YAML file and runs on the first GPU.
 *
 * Since: 0.1
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>

#include <gst/gst.h>
#include <gst/video/video.h>
#include <neuralcl/context.h>
#include <neuralcl/error.h>
#include <neuralcl/image.h>
#include <neuralcl/model.h>
#include <neuralcl/style.h>

#include "gststyletransfer.h"

GST_DEBUG_CATEGORY_STATIC (gst_style_transfer_debug);
#define GST_CAT_DEFAULT gst_style_transfer_debug

enum
{
  PROP_0,
  PROP_MODEL,
  PROP_CONFIG,
  PROP_DEVICE,
  PROP_INFERENCE_WIDTH,
  PROP_INFERENCE_HEIGHT,
  PROP_STRENGTH,
  PROP_PRESERVE_COLORS,
};

#define DEFAULT_PROP_MODEL "mosaic"
#define DEFAULT_PROP_CONFIG NULL
#define DEFAULT_PROP_DEVICE NULL
#define DEFAULT_PROP_INFERENCE_WIDTH 0
#define DEFAULT_PROP_INFERENCE_HEIGHT 0
#define DEFAULT_PROP_STRENGTH 1.0
#define DEFAULT_PROP_PRESERVE_COLORS FALSE

#define MAX_INFERENCE_SIZE 16384

/* Bit of a property in explicit_props. */
#define PROP_BIT(id) (1u << (id))

#define VIDEO_CAPS \
  GST_VIDEO_CAPS_MAKE ("{ RGB, BGR, RGBx, BGRx, RGBA, BGRA, I420, NV12 }")

struct _GstStyleTransfer
{
  GstVideoFilter parent;

  /* properties (GST_OBJECT_LOCK) */
  gchar *model;
  gchar *config;
  gchar *device;
  guint inference_width;
  guint inference_height;
  gdouble strength;
  gboolean preserve_colors;
  guint explicit_props;         /* PROP_BIT of each property the app set */
  NclStyleSettings file_settings;       /* defaults + config file */

  /* negotiated state (streaming thread) */
  NclPixelFormat format;

  /* runtime resources, from start() to stop() */
  NclContext *ctx;
  NclStylizer *stylizer;        /* streaming thread */

  /* hot model swap (swap_lock) */
  GMutex swap_lock;
  GCond swap_cond;
  gboolean started;
  gboolean loader_quit;
  GThread *loader;
  gchar *requested_model;       /* waiting for the loader */
  NclStylizer *pending;         /* loaded, waiting for a frame boundary */
  gchar *pending_model;
  gchar *active_model;          /* what self->stylizer runs */
};

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK,
    GST_PAD_ALWAYS,
    GST_STATIC_CAPS (VIDEO_CAPS));

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC,
    GST_PAD_ALWAYS,
    GST_STATIC_CAPS (VIDEO_CAPS));

#define gst_style_transfer_parent_class parent_class
G_DEFINE_TYPE (GstStyleTransfer, gst_style_transfer, GST_TYPE_VIDEO_FILTER);
GST_ELEMENT_REGISTER_DEFINE (styletransfer, "styletransfer", GST_RANK_NONE,
    GST_TYPE_STYLE_TRANSFER);

static void gst_style_transfer_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec);
static void gst_style_transfer_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec);
static void gst_style_transfer_finalize (GObject * object);
static gboolean gst_style_transfer_start (GstBaseTransform * trans);
static gboolean gst_style_transfer_stop (GstBaseTransform * trans);
static void gst_style_transfer_before_transform (GstBaseTransform * trans,
    GstBuffer * buf);
static gboolean gst_style_transfer_set_info (GstVideoFilter * filter,
    GstCaps * incaps, GstVideoInfo * in_info, GstCaps * outcaps,
    GstVideoInfo * out_info);
static GstFlowReturn gst_style_transfer_transform_frame_ip (GstVideoFilter *
    filter, GstVideoFrame * frame);

static void
gst_style_transfer_class_init (GstStyleTransferClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);
  GstVideoFilterClass *filter_class = GST_VIDEO_FILTER_CLASS (klass);

  GST_DEBUG_CATEGORY_INIT (gst_style_transfer_debug, "styletransfer", 0,
      "Neural style transfer");

  gobject_class->set_property = gst_style_transfer_set_property;
  gobject_class->get_property = gst_style_transfer_get_property;
  gobject_class->finalize = gst_style_transfer_finalize;

  /**
   * GstStyleTransfer:model:
   *
   * The style network: a bundled style name (searched in
   * $NEURALCL_STYLE_PATH, $XDG_DATA_HOME/neuralcl/styles and the installed
   * styles), a model YAML graph, or a PyTorch fast_neural_style
   * TransformerNet checkpoint saved as `.safetensors`.  %NULL takes the
   * config file's model, else "mosaic".
   *
   * It can be changed while PAUSED or PLAYING: the new model loads in the
   * background and replaces the running one at a frame boundary; if it
   * fails to load, a warning message is posted and the old model stays.
   * Setting the same value again reloads the file.
   */
  g_object_class_install_property (gobject_class, PROP_MODEL,
      g_param_spec_string ("model", "Model",
          "Style model: a bundled style name (e.g. \"mosaic\"), a model "
          "YAML graph, or a PyTorch fast_neural_style checkpoint "
          "(.safetensors).  May change while playing: the new model loads "
          "in the background and replaces the old one at a frame boundary",
          DEFAULT_PROP_MODEL,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_PLAYING));

  /**
   * GstStyleTransfer:config:
   *
   * A YAML file with any of the keys `model`, `device`, `inference-width`,
   * `inference-height`, `strength` and `preserve-colors` (see
   * `config/styletransfer.yaml`).  It is read when the element starts
   * (READY to PAUSED); a relative model path in it is relative to the
   * file.  Properties that the application sets explicitly override the
   * file's values, whether set before or after this one.
   */
  g_object_class_install_property (gobject_class, PROP_CONFIG,
      g_param_spec_string ("config", "Config file",
          "YAML file with the same settings as the properties, read when "
          "the element starts; properties set explicitly override its "
          "values", DEFAULT_PROP_CONFIG,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));

  /**
   * GstStyleTransfer:device:
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
   * GstStyleTransfer:inference-width:
   *
   * The width the network runs at.  Frames are resized to it and the
   * result back to the frame size; smaller is faster, and the brush
   * strokes grow relative to the picture.  0 runs at the frame width.
   */
  g_object_class_install_property (gobject_class, PROP_INFERENCE_WIDTH,
      g_param_spec_uint ("inference-width", "Inference width",
          "Width the network runs at; frames are resized to it and back "
          "(0 = frame width)", 0, MAX_INFERENCE_SIZE,
          DEFAULT_PROP_INFERENCE_WIDTH,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_PLAYING));

  /**
   * GstStyleTransfer:inference-height:
   *
   * The height the network runs at; 0 runs at the frame height.  See
   * #GstStyleTransfer:inference-width.
   */
  g_object_class_install_property (gobject_class, PROP_INFERENCE_HEIGHT,
      g_param_spec_uint ("inference-height", "Inference height",
          "Height the network runs at; frames are resized to it and back "
          "(0 = frame height)", 0, MAX_INFERENCE_SIZE,
          DEFAULT_PROP_INFERENCE_HEIGHT,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_PLAYING));

  /**
   * GstStyleTransfer:strength:
   *
   * How much of the stylised frame is blended over the original: 1 shows
   * the network's output, 0.5 half of it, and 0 the input unchanged (the
   * element then works in passthrough and runs nothing).  Controllable.
   */
  g_object_class_install_property (gobject_class, PROP_STRENGTH,
      g_param_spec_double ("strength", "Strength",
          "Blend of the stylised frame over the original (0 = input "
          "unchanged, no work; 1 = fully stylised)", 0.0, 1.0,
          DEFAULT_PROP_STRENGTH,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_CONTROLLABLE | GST_PARAM_MUTABLE_PLAYING));

  /**
   * GstStyleTransfer:preserve-colors:
   *
   * Keeps the colours of the original frame and takes only the brightness
   * (luma) of the stylised one, so that the picture keeps its palette and
   * gets the painting's texture.
   */
  g_object_class_install_property (gobject_class, PROP_PRESERVE_COLORS,
      g_param_spec_boolean ("preserve-colors", "Preserve colors",
          "Keep the original colours: take only the luma of the stylised "
          "frame", DEFAULT_PROP_PRESERVE_COLORS,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_CONTROLLABLE | GST_PARAM_MUTABLE_PLAYING));

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class, "Style transfer",
      "Filter/Effect/Video",
      "Repaints video in the style of a painting with a neural network "
      "on OpenCL", "The gst-neuralcl authors");

  trans_class->start = GST_DEBUG_FUNCPTR (gst_style_transfer_start);
  trans_class->stop = GST_DEBUG_FUNCPTR (gst_style_transfer_stop);
  trans_class->before_transform =
      GST_DEBUG_FUNCPTR (gst_style_transfer_before_transform);
  /* strength 0 is passthrough: nothing to do, not even a map */
  trans_class->transform_ip_on_passthrough = FALSE;

  filter_class->set_info = GST_DEBUG_FUNCPTR (gst_style_transfer_set_info);
  filter_class->transform_frame_ip =
      GST_DEBUG_FUNCPTR (gst_style_transfer_transform_frame_ip);
}

static void
gst_style_transfer_init (GstStyleTransfer * self)
{
  self->model = g_strdup (DEFAULT_PROP_MODEL);
  self->config = g_strdup (DEFAULT_PROP_CONFIG);
  self->device = g_strdup (DEFAULT_PROP_DEVICE);
  self->inference_width = DEFAULT_PROP_INFERENCE_WIDTH;
  self->inference_height = DEFAULT_PROP_INFERENCE_HEIGHT;
  self->strength = DEFAULT_PROP_STRENGTH;
  self->preserve_colors = DEFAULT_PROP_PRESERVE_COLORS;
  ncl_style_settings_init (&self->file_settings);

  g_mutex_init (&self->swap_lock);
  g_cond_init (&self->swap_cond);

  /* a slow filter: let live pipelines drop frames that would be late */
  gst_base_transform_set_qos_enabled (GST_BASE_TRANSFORM (self), TRUE);
}

static void
gst_style_transfer_finalize (GObject * object)
{
  GstStyleTransfer *self = GST_STYLE_TRANSFER (object);

  g_free (self->model);
  g_free (self->config);
  g_free (self->device);
  ncl_style_settings_clear (&self->file_settings);
  g_mutex_clear (&self->swap_lock);
  g_cond_clear (&self->swap_cond);

  G_OBJECT_CLASS (parent_class)->finalize (object);
}

/* Fills @s with the settings in force: the properties the application set,
 * else the config file's values, else the defaults.  The strings are
 * borrowed from @self.  Call with the object lock held. */
static void
gst_style_transfer_get_settings_locked (GstStyleTransfer * self,
    NclStyleSettings * s)
{
  guint set = self->explicit_props;

  *s = self->file_settings;
  if (set & PROP_BIT (PROP_MODEL))
    s->model = self->model;
  if (set & PROP_BIT (PROP_DEVICE))
    s->device = self->device;
  if (set & PROP_BIT (PROP_INFERENCE_WIDTH))
    s->inference_width = self->inference_width;
  if (set & PROP_BIT (PROP_INFERENCE_HEIGHT))
    s->inference_height = self->inference_height;
  if (set & PROP_BIT (PROP_STRENGTH))
    s->strength = self->strength;
  if (set & PROP_BIT (PROP_PRESERVE_COLORS))
    s->preserve_colors = self->preserve_colors;
}

static void
gst_style_transfer_update_passthrough (GstStyleTransfer * self)
{
  NclStyleSettings s;
  gboolean passthrough;

  GST_OBJECT_LOCK (self);
  gst_style_transfer_get_settings_locked (self, &s);
  passthrough = s.strength <= 0.0;
  GST_OBJECT_UNLOCK (self);

  GST_DEBUG_OBJECT (self, "passthrough: %d", passthrough);
  gst_base_transform_set_passthrough (GST_BASE_TRANSFORM (self), passthrough);
}

/* Maps a library error to a GStreamer error domain and code. */
static void
gst_style_transfer_map_error (const GError * error, GQuark * domain,
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
  }
}

/* Posts one error or warning message for @error: @text is the sentence
 * for the user (transfer full); the debug text is the library's message,
 * with @file appended when the message does not name it already. */
static void
gst_style_transfer_post (GstStyleTransfer * self, GstMessageType type,
    GQuark domain, gint code, gchar * text, const GError * error,
    const gchar * file, gint line)
{
  gchar *debug;

  if (file != NULL && strstr (error->message, file) == NULL)
    debug = g_strdup_printf ("%s (%s)", error->message, file);
  else
    debug = g_strdup (error->message);

  gst_element_message_full (GST_ELEMENT (self), type, domain, code, text,
      debug, __FILE__, GST_FUNCTION, line);
}

/* Resolves and loads @name and prepares it on @ctx.  The slow part of a
 * start or a model swap. */
static NclStylizer *
gst_style_transfer_load_stylizer (GstStyleTransfer * self, NclContext * ctx,
    const gchar * name, GError ** error)
{
  g_autofree gchar *path = NULL;
  g_autoptr (NclModel) model = NULL;
  NclStylizer *stylizer;
  gint64 t0 = g_get_monotonic_time ();

  path = ncl_style_resolve (name, error);
  if (path == NULL)
    return NULL;
  model = ncl_model_load (path, error);
  if (model == NULL)
    return NULL;
  stylizer = ncl_stylizer_new (ctx, model, error);
  if (stylizer == NULL)
    return NULL;

  GST_INFO_OBJECT (self, "loaded model '%s' (%s, %s) in %.0f ms", name,
      path, ncl_model_get_origin (model),
      (g_get_monotonic_time () - t0) / 1000.0);
  return stylizer;
}

/* The model swap thread: loads each requested model, and leaves the
 * result in self->pending for the streaming thread to pick up. */
static gpointer
gst_style_transfer_loader (gpointer data)
{
  GstStyleTransfer *self = data;

  g_mutex_lock (&self->swap_lock);
  while (!self->loader_quit) {
    g_autofree gchar *name = NULL;
    g_autofree gchar *keeping = NULL;
    g_autoptr (GError) error = NULL;
    NclStylizer *stylizer, *old = NULL;
    GQuark domain;
    gint code;

    if (self->requested_model == NULL) {
      g_cond_wait (&self->swap_cond, &self->swap_lock);
      continue;
    }
    name = g_steal_pointer (&self->requested_model);
    g_mutex_unlock (&self->swap_lock);

    /* self->ctx stays valid: stop() joins this thread before freeing it */
    GST_DEBUG_OBJECT (self, "loading model '%s' in the background", name);
    stylizer = gst_style_transfer_load_stylizer (self, self->ctx, name,
        &error);

    g_mutex_lock (&self->swap_lock);
    if (self->loader_quit || self->requested_model != NULL) {
      /* stopping, or superseded by a newer request */
      GST_DEBUG_OBJECT (self, "dropping the load of '%s'", name);
      g_mutex_unlock (&self->swap_lock);
      g_clear_pointer (&stylizer, ncl_stylizer_free);
      g_mutex_lock (&self->swap_lock);
      continue;
    }
    if (stylizer != NULL) {
      old = g_steal_pointer (&self->pending);
      self->pending = stylizer;
      g_free (self->pending_model);
      self->pending_model = g_steal_pointer (&name);
      g_mutex_unlock (&self->swap_lock);
      g_clear_pointer (&old, ncl_stylizer_free);
      g_mutex_lock (&self->swap_lock);
      continue;
    }

    keeping = g_strdup (self->pending != NULL ?
        self->pending_model : self->active_model);
    g_mutex_unlock (&self->swap_lock);
    /* not under the lock: a bus sync handler may set the model again */
    gst_style_transfer_map_error (error, &domain, &code);
    gst_style_transfer_post (self, GST_MESSAGE_WARNING, domain, code,
        g_strdup_printf ("Could not load the style model \"%s\"; keeping "
            "\"%s\".", name, keeping), error, name, __LINE__);
    g_mutex_lock (&self->swap_lock);
  }
  g_mutex_unlock (&self->swap_lock);

  return NULL;
}

/* Hands @model (transfer full) to the loader thread if the element is
 * running; start() loads it otherwise. */
static void
gst_style_transfer_request_model (GstStyleTransfer * self, gchar * model)
{
  g_autoptr (GError) error = NULL;

  g_mutex_lock (&self->swap_lock);
  if (!self->started) {
    g_mutex_unlock (&self->swap_lock);
    g_free (model);
    return;
  }

  GST_INFO_OBJECT (self, "switching to model '%s'", model);
  g_free (self->requested_model);
  self->requested_model = model;
  if (self->loader == NULL)
    self->loader = g_thread_try_new ("styletransfer-load",
        gst_style_transfer_loader, self, &error);
  if (self->loader == NULL) {
    g_clear_pointer (&self->requested_model, g_free);
    g_mutex_unlock (&self->swap_lock);
    GST_ELEMENT_WARNING (self, RESOURCE, FAILED,
        ("Could not start loading the style model."), ("%s",
            error->message));
    return;
  }
  g_cond_signal (&self->swap_cond);
  g_mutex_unlock (&self->swap_lock);
}

static void
gst_style_transfer_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  GstStyleTransfer *self = GST_STYLE_TRANSFER (object);
  NclStyleSettings s;
  gchar *model;

  GST_OBJECT_LOCK (self);
  self->explicit_props |= PROP_BIT (prop_id);
  switch (prop_id) {
    case PROP_MODEL:
      g_free (self->model);
      self->model = g_value_dup_string (value);
      /* NULL: back to the config file's model or the default */
      if (self->model == NULL)
        self->explicit_props &= ~PROP_BIT (PROP_MODEL);
      gst_style_transfer_get_settings_locked (self, &s);
      model = g_strdup (s.model);
      GST_OBJECT_UNLOCK (self);
      gst_style_transfer_request_model (self, model);
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
    case PROP_INFERENCE_WIDTH:
      self->inference_width = g_value_get_uint (value);
      break;
    case PROP_INFERENCE_HEIGHT:
      self->inference_height = g_value_get_uint (value);
      break;
    case PROP_STRENGTH:
      self->strength = g_value_get_double (value);
      GST_OBJECT_UNLOCK (self);
      gst_style_transfer_update_passthrough (self);
      return;
    case PROP_PRESERVE_COLORS:
      self->preserve_colors = g_value_get_boolean (value);
      break;
    default:
      self->explicit_props &= ~PROP_BIT (prop_id);
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_style_transfer_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec)
{
  GstStyleTransfer *self = GST_STYLE_TRANSFER (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MODEL:
      g_value_set_string (value, self->model);
      break;
    case PROP_CONFIG:
      g_value_set_string (value, self->config);
      break;
    case PROP_DEVICE:
      g_value_set_string (value, self->device);
      break;
    case PROP_INFERENCE_WIDTH:
      g_value_set_uint (value, self->inference_width);
      break;
    case PROP_INFERENCE_HEIGHT:
      g_value_set_uint (value, self->inference_height);
      break;
    case PROP_STRENGTH:
      g_value_set_double (value, self->strength);
      break;
    case PROP_PRESERVE_COLORS:
      g_value_set_boolean (value, self->preserve_colors);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static gboolean
gst_style_transfer_start (GstBaseTransform * trans)
{
  GstStyleTransfer *self = GST_STYLE_TRANSFER (trans);
  g_autoptr (GError) error = NULL;
  g_autofree gchar *config = NULL;
  g_autofree gchar *model = NULL;
  g_autofree gchar *device = NULL;
  gchar *now;
  NclStyleSettings file, s;
  GQuark domain;
  gint code;

  GST_OBJECT_LOCK (self);
  config = g_strdup (self->config);
  GST_OBJECT_UNLOCK (self);

  ncl_style_settings_init (&file);
  if (config != NULL && !ncl_style_settings_load (&file, config, &error)) {
    ncl_style_settings_clear (&file);
    gst_style_transfer_map_error (error, &domain, &code);
    gst_style_transfer_post (self, GST_MESSAGE_ERROR, domain, code,
        g_strdup_printf ("Could not read the style settings file \"%s\".",
            config), error, config, __LINE__);
    goto failed;
  }

  GST_OBJECT_LOCK (self);
  ncl_style_settings_clear (&self->file_settings);
  self->file_settings = file;
  gst_style_transfer_get_settings_locked (self, &s);
  model = g_strdup (s.model);
  device = g_strdup (s.device);
  GST_OBJECT_UNLOCK (self);

  self->ctx = ncl_context_get_shared (device, &error);
  if (self->ctx == NULL) {
    /* whatever the code, no context means no usable OpenCL */
    gst_style_transfer_post (self, GST_MESSAGE_ERROR, GST_LIBRARY_ERROR,
        GST_LIBRARY_ERROR_INIT, g_strdup_printf ("Could not open the OpenCL "
            "device \"%s\".", device ? device : "(default)"), error, NULL,
        __LINE__);
    goto failed;
  }
  GST_INFO_OBJECT (self, "OpenCL device: %s (%s)",
      ncl_context_get_device_name (self->ctx),
      ncl_context_get_platform_name (self->ctx));

  self->stylizer = gst_style_transfer_load_stylizer (self, self->ctx, model,
      &error);
  if (self->stylizer == NULL) {
    gst_style_transfer_map_error (error, &domain, &code);
    gst_style_transfer_post (self, GST_MESSAGE_ERROR, domain, code,
        g_strdup_printf ("Could not load the style model \"%s\".", model),
        error, model, __LINE__);
    goto failed;
  }

  g_mutex_lock (&self->swap_lock);
  self->active_model = g_strdup (model);
  self->started = TRUE;
  g_mutex_unlock (&self->swap_lock);

  /* the model may have been set while it loaded: catch up in the
   * background */
  GST_OBJECT_LOCK (self);
  gst_style_transfer_get_settings_locked (self, &s);
  now = g_strdup (s.model);
  GST_OBJECT_UNLOCK (self);
  if (g_strcmp0 (now, model) != 0)
    gst_style_transfer_request_model (self, now);
  else
    g_free (now);

  gst_style_transfer_update_passthrough (self);
  return TRUE;

failed:
  gst_style_transfer_stop (trans);
  return FALSE;
}

static gboolean
gst_style_transfer_stop (GstBaseTransform * trans)
{
  GstStyleTransfer *self = GST_STYLE_TRANSFER (trans);
  NclStylizer *pending;
  GThread *loader;

  g_mutex_lock (&self->swap_lock);
  self->started = FALSE;
  self->loader_quit = TRUE;
  loader = g_steal_pointer (&self->loader);
  g_cond_broadcast (&self->swap_cond);
  g_mutex_unlock (&self->swap_lock);

  /* waits for a load in flight to finish; its result is dropped */
  if (loader != NULL)
    g_thread_join (loader);

  g_mutex_lock (&self->swap_lock);
  self->loader_quit = FALSE;
  g_clear_pointer (&self->requested_model, g_free);
  pending = g_steal_pointer (&self->pending);
  g_clear_pointer (&self->pending_model, g_free);
  g_clear_pointer (&self->active_model, g_free);
  g_mutex_unlock (&self->swap_lock);

  g_clear_pointer (&pending, ncl_stylizer_free);
  g_clear_pointer (&self->stylizer, ncl_stylizer_free);
  g_clear_pointer (&self->ctx, ncl_context_unref);

  return TRUE;
}

static void
gst_style_transfer_before_transform (GstBaseTransform * trans,
    GstBuffer * buf)
{
  GstClockTime stream_time;

  /* lets a controller drive strength (also out of passthrough) */
  stream_time = gst_segment_to_stream_time (&trans->segment, GST_FORMAT_TIME,
      GST_BUFFER_TIMESTAMP (buf));
  if (GST_CLOCK_TIME_IS_VALID (stream_time))
    gst_object_sync_values (GST_OBJECT (trans), stream_time);
}

static gboolean
gst_style_transfer_set_info (GstVideoFilter * filter, GstCaps * incaps,
    GstVideoInfo * in_info, GstCaps * outcaps, GstVideoInfo * out_info)
{
  GstStyleTransfer *self = GST_STYLE_TRANSFER (filter);

  switch (GST_VIDEO_INFO_FORMAT (in_info)) {
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
  GST_DEBUG_OBJECT (self, "%s %dx%d",
      GST_VIDEO_INFO_NAME (in_info), GST_VIDEO_INFO_WIDTH (in_info),
      GST_VIDEO_INFO_HEIGHT (in_info));

  gst_style_transfer_update_passthrough (self);
  return TRUE;
}

/* Installs a model that the loader finished, at a frame boundary. */
static void
gst_style_transfer_swap_pending (GstStyleTransfer * self)
{
  NclStylizer *old = NULL;

  g_mutex_lock (&self->swap_lock);
  if (self->pending != NULL) {
    old = self->stylizer;
    self->stylizer = g_steal_pointer (&self->pending);
    g_free (self->active_model);
    self->active_model = g_steal_pointer (&self->pending_model);
    GST_INFO_OBJECT (self, "now running model '%s'", self->active_model);
  }
  g_mutex_unlock (&self->swap_lock);

  g_clear_pointer (&old, ncl_stylizer_free);
}

static GstFlowReturn
gst_style_transfer_transform_frame_ip (GstVideoFilter * filter,
    GstVideoFrame * frame)
{
  GstStyleTransfer *self = GST_STYLE_TRANSFER (filter);
  g_autoptr (GError) error = NULL;
  NclStyleSettings s;
  NclImage img = { 0, };

  GST_OBJECT_LOCK (self);
  gst_style_transfer_get_settings_locked (self, &s);
  GST_OBJECT_UNLOCK (self);
  /* borrowed, and not needed per frame */
  s.model = NULL;
  s.device = NULL;

  if (s.strength <= 0.0)
    return GST_FLOW_OK;

  gst_style_transfer_swap_pending (self);
  if (G_UNLIKELY (self->stylizer == NULL)) {
    GST_ELEMENT_ERROR (self, STREAM, FAILED, ("No style model is loaded."),
        (NULL));
    return GST_FLOW_ERROR;
  }

  img.format = self->format;
  img.width = GST_VIDEO_FRAME_WIDTH (frame);
  img.height = GST_VIDEO_FRAME_HEIGHT (frame);
  for (guint i = 0; i < GST_VIDEO_FRAME_N_PLANES (frame); i++) {
    img.planes[i] = GST_VIDEO_FRAME_PLANE_DATA (frame, i);
    img.strides[i] = GST_VIDEO_FRAME_PLANE_STRIDE (frame, i);
  }

  if (!ncl_stylizer_process (self->stylizer, &s, &img, &error)) {
    GST_ELEMENT_ERROR (self, STREAM, FAILED,
        ("Style transfer failed on a frame."), ("%s", error->message));
    return GST_FLOW_ERROR;
  }

  return GST_FLOW_OK;
}
