/* The facerecognize element: caps, two known people in one frame (metas,
 * bus messages, overlay colours), the overlay in the drawn and the
 * blended formats, start-up errors, warnings, the gallery hot reload, and
 * the performer of the Hamilton clip recognised from one photo.
 *
 * Needs the converted face models (`neuralcl models fetch`, run by the
 * models/fetch test) and ../shared's face photos; exits 77 without models
 * or an OpenCL device.  The group photo runs at half size (563x330) to
 * keep each frame near 0.1-0.3 s on a 2-core CPU device. */
#include <math.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>

#include "common.h"

#define EXAMPLES "data/faces/face_recognition/examples/"

/* How long a gallery reload may take before the test fails. */
#define RELOAD_TIMEOUT_S 60

static const gchar *all_formats[] = {
  "BGRx", "BGRA", "RGBx", "RGBA", "RGB", "BGR", "I420", "NV12",
};

static gchar *
example_path (const gchar * name)
{
  g_autofree gchar *rel = g_strconcat (EXAMPLES, name, NULL);

  return ncl_test_shared_path (rel);
}

static gchar *
write_temp (const gchar * dir, const gchar * name, const gchar * data)
{
  g_autoptr (GError) error = NULL;
  gchar *path = g_build_filename (dir, name, NULL);

  fail_unless (g_file_set_contents (path, data, -1, &error), "%s",
      error ? error->message : "");
  return path;
}

/* A gallery file in @dir listing @names (NULL-terminated pairs of name
 * and example photo). */
static gchar *
write_gallery (const gchar * dir, const gchar * file, ...)
{
  GString *yaml = g_string_new ("# written by test-facerecognize\n"
      "identities:\n");
  const gchar *name;
  gchar *path;
  va_list args;

  va_start (args, file);
  while ((name = va_arg (args, const gchar *)) != NULL) {
    g_autofree gchar *photo = example_path (va_arg (args, const gchar *));

    g_string_append_printf (yaml, "  - name: %s\n    images: [\"%s\"]\n",
        name, photo);
  }
  va_end (args);
  path = write_temp (dir, file, yaml->str);
  g_string_free (yaml, TRUE);
  return path;
}

static void
rm_rf (const gchar * dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const gchar *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL) {
    g_autofree gchar *path = g_build_filename (dir, name, NULL);

    g_unlink (path);
  }
  g_rmdir (dir);
}

static void
video_info_init (GstVideoInfo * info, const gchar * format, gint w, gint h)
{
  gst_video_info_init (info);
  fail_unless (gst_video_info_set_format (info,
          gst_video_format_from_string (format), w, h));
  GST_VIDEO_INFO_FPS_N (info) = 25;
  GST_VIDEO_INFO_FPS_D (info) = 1;
}

/* Photo @name scaled by 1/@div, as a buffer of @format; fills @info. */
static GstBuffer *
load_frame (const gchar * name, const gchar * format, gint div,
    GstVideoInfo * info)
{
  g_autofree gchar *path = example_path (name);
  g_autoptr (GError) error = NULL;
  g_autoptr (NclImage) img = ncl_image_load (path, &error);
  g_autoptr (GstBuffer) rgb = NULL;
  GstVideoConverter *conv;
  GstVideoFrame in, out;
  GstVideoInfo rgb_info;
  GstBuffer *buf;

  fail_unless (img != NULL, "%s", error ? error->message : "");
  video_info_init (&rgb_info, "RGB", img->width, img->height);
  rgb = gst_buffer_new_allocate (NULL, rgb_info.size, NULL);
  fail_unless (gst_video_frame_map (&in, &rgb_info, rgb, GST_MAP_WRITE));
  for (gint y = 0; y < img->height; y++)
    memcpy ((guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&in, 0) +
        y * GST_VIDEO_FRAME_PLANE_STRIDE (&in, 0),
        img->planes[0] + y * img->strides[0], img->width * 3);
  gst_video_frame_unmap (&in);

  video_info_init (info, format, img->width / div, img->height / div);
  buf = gst_buffer_new_allocate (NULL, info->size, NULL);
  fail_unless (gst_video_frame_map (&in, &rgb_info, rgb, GST_MAP_READ));
  fail_unless (gst_video_frame_map (&out, info, buf, GST_MAP_WRITE));
  conv = gst_video_converter_new (&rgb_info, info, NULL);
  gst_video_converter_frame (conv, &in, &out);
  gst_video_converter_free (conv);
  gst_video_frame_unmap (&out);
  gst_video_frame_unmap (&in);
  return buf;
}

/* A facerecognize harness with the given properties, its element on
 * @bus, fed with the caps of @info (none when NULL). */
static GstHarness *
harness_new (const GstVideoInfo * info, GstBus * bus,
    const gchar * first_prop, ...)
{
  GstElement *element = gst_element_factory_make ("facerecognize", NULL);
  GstHarness *h;
  va_list args;

  fail_unless (element != NULL, "no facerecognize element");
  if (first_prop != NULL) {
    va_start (args, first_prop);
    g_object_set_valist (G_OBJECT (element), first_prop, args);
    va_end (args);
  }
  if (bus != NULL)
    gst_element_set_bus (element, bus);
  h = gst_harness_new_with_element (element, "sink", "src");
  gst_object_unref (element);
  if (info != NULL)
    gst_harness_set_src_caps (h, gst_video_info_to_caps (info));
  return h;
}

/* Pushes a copy of @in and returns the output buffer. */
static GstBuffer *
process (GstHarness * h, GstBuffer * in)
{
  GstBuffer *out;

  fail_unless_equals_int (gst_harness_push (h, gst_buffer_copy_deep (in)),
      GST_FLOW_OK);
  out = gst_harness_pull (h);
  fail_unless (out != NULL, "no output buffer");
  return out;
}

typedef struct
{
  guint x, y, w, h;
  gchar *identity;              /* NULL: unknown */
  gdouble distance;
  guint track_id;
  guint n_landmarks;            /* values in "landmarks" (0: absent) */
  gboolean landmarks_inside;    /* all points within the box +- 25 % */
} Face;

static void
face_clear (gpointer p)
{
  g_free (((Face *) p)->identity);
}

/* The "face" ROI metas of @buf, left to right. */
static GArray *
roi_faces (GstBuffer * buf)
{
  GArray *faces = g_array_new (FALSE, TRUE, sizeof (Face));
  gpointer state = NULL;
  GstMeta *meta;

  g_array_set_clear_func (faces, face_clear);
  while ((meta = gst_buffer_iterate_meta_filtered (buf, &state,
              GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)) != NULL) {
    GstVideoRegionOfInterestMeta *roi = (GstVideoRegionOfInterestMeta *) meta;
    GstStructure *s;
    const GValue *lm;
    Face f = { roi->x, roi->y, roi->w, roi->h, NULL, 0, 0, 0, TRUE };
    guint i;

    fail_unless_equals_string (g_quark_to_string (roi->roi_type), "face");
    s = gst_video_region_of_interest_meta_get_param (roi, "face");
    fail_unless (s != NULL, "no 'face' parameter");
    fail_unless (gst_structure_get_double (s, "distance", &f.distance));
    fail_unless (gst_structure_get_uint (s, "track-id", &f.track_id));
    fail_unless (gst_structure_has_field_typed (s, "score", G_TYPE_DOUBLE));
    fail_unless_equals_int (roi->id, f.track_id);
    f.identity = g_strdup (gst_structure_get_string (s, "identity"));
    lm = gst_structure_get_value (s, "landmarks");
    if (lm != NULL) {
      f.n_landmarks = gst_value_array_get_size (lm);
      for (i = 0; i + 1 < f.n_landmarks; i += 2) {
        gdouble x = g_value_get_double (gst_value_array_get_value (lm, i));
        gdouble y = g_value_get_double (gst_value_array_get_value (lm,
                i + 1));

        if (x < f.x - 0.25 * f.w || x > f.x + 1.25 * f.w ||
            y < f.y - 0.25 * f.h || y > f.y + 1.25 * f.h)
          f.landmarks_inside = FALSE;
      }
    }
    for (i = 0; i < faces->len; i++)
      if (g_array_index (faces, Face, i).x > f.x)
        break;
    g_array_insert_val (faces, i, f);
  }
  return faces;
}

/* The next "facerecognize" element message on @bus, or NULL. */
static GstMessage *
pop_frame_message (GstBus * bus)
{
  GstMessage *msg;

  while ((msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ELEMENT)) != NULL) {
    if (gst_message_has_name (msg, "facerecognize"))
      return msg;
    gst_message_unref (msg);
  }
  return NULL;
}

static void
drain (GstBus * bus)
{
  GstMessage *msg;

  while ((msg = gst_bus_pop (bus)) != NULL)
    gst_message_unref (msg);
}

/* Byte differences between two frames of @info, and whether all changed
 * pixels lie inside @allowed (x0, y0, x1, y1 per face; @n faces). */
static guint
diff_frames (GstBuffer * a, GstBuffer * b, const GstVideoInfo * info,
    const gint * allowed, guint n, guint * outside)
{
  GstVideoFrame fa, fb;
  guint changed = 0;

  *outside = 0;
  fail_unless (gst_video_frame_map (&fa, (GstVideoInfo *) info, a,
          GST_MAP_READ));
  fail_unless (gst_video_frame_map (&fb, (GstVideoInfo *) info, b,
          GST_MAP_READ));
  for (guint c = 0; c < GST_VIDEO_INFO_N_COMPONENTS (info); c++) {
    const guint8 *da = GST_VIDEO_FRAME_COMP_DATA (&fa, c);
    const guint8 *db = GST_VIDEO_FRAME_COMP_DATA (&fb, c);
    gint stride = GST_VIDEO_FRAME_COMP_STRIDE (&fa, c);
    gint ps = GST_VIDEO_FRAME_COMP_PSTRIDE (&fa, c);
    gint cw = GST_VIDEO_FRAME_COMP_WIDTH (&fa, c);
    gint ch = GST_VIDEO_FRAME_COMP_HEIGHT (&fa, c);
    gint sx = 1 << GST_VIDEO_FORMAT_INFO_W_SUB (info->finfo, c);
    gint sy = 1 << GST_VIDEO_FORMAT_INFO_H_SUB (info->finfo, c);

    for (gint y = 0; y < ch; y++) {
      for (gint x = 0; x < cw; x++) {
        gboolean inside = FALSE;

        if (da[y * stride + x * ps] == db[y * stride + x * ps])
          continue;
        changed++;
        for (guint k = 0; k < n; k++) {
          const gint *r = allowed + 4 * k;

          if (x * sx >= r[0] && x * sx <= r[2] && y * sy >= r[1] &&
              y * sy <= r[3])
            inside = TRUE;
        }
        if (!inside)
          (*outside)++;
      }
    }
  }
  gst_video_frame_unmap (&fb);
  gst_video_frame_unmap (&fa);
  return changed;
}

/* The R, G, B of pixel (x, y) of an RGB frame. */
static void
rgb_at (GstBuffer * buf, const GstVideoInfo * info, gint x, gint y,
    guint8 * rgb)
{
  GstVideoFrame f;

  fail_unless (gst_video_frame_map (&f, (GstVideoInfo *) info, buf,
          GST_MAP_READ));
  for (guint c = 0; c < 3; c++)
    rgb[c] = ((guint8 *) GST_VIDEO_FRAME_COMP_DATA (&f, c))[y *
        GST_VIDEO_FRAME_COMP_STRIDE (&f, c) + x *
        GST_VIDEO_FRAME_COMP_PSTRIDE (&f, c)];
  gst_video_frame_unmap (&f);
}

/* All eight formats are accepted and come out with the same caps, a frame
 * without faces gets no meta and a message with an empty list, and
 * formats the element cannot read (xRGB, GRAY16_LE) are refused. */
GST_START_TEST (test_caps)
{
  g_autofree gchar *dir = g_dir_make_tmp ("ncl-fr-XXXXXX", NULL);
  g_autofree gchar *gallery = NULL;
  g_autoptr (GstBus) bus = gst_bus_new ();
  static const gchar *refused[] = { "xRGB", "GRAY16_LE", "YUY2" };
  GstSegment segment;
  GstVideoInfo info;
  GstHarness *h;
  GstPad *sinkpad;

  gallery = write_gallery (dir, "gallery.yaml", "obama", "obama.jpg", NULL);
  h = harness_new (NULL, bus, "gallery", gallery, NULL);
  sinkpad = gst_element_get_static_pad (h->element, "sink");
  for (guint i = 0; i < G_N_ELEMENTS (all_formats); i++) {
    GstCaps *caps;

    video_info_init (&info, all_formats[i], 32, 24);
    caps = gst_video_info_to_caps (&info);
    fail_unless (gst_pad_query_accept_caps (sinkpad, caps), "%s refused",
        all_formats[i]);
    gst_caps_unref (caps);
  }
  for (guint i = 0; i < G_N_ELEMENTS (refused); i++) {
    GstCaps *caps;

    video_info_init (&info, refused[i], 32, 24);
    caps = gst_video_info_to_caps (&info);
    fail_if (gst_pad_query_accept_caps (sinkpad, caps), "%s accepted",
        refused[i]);
    gst_caps_unref (caps);
  }
  gst_object_unref (sinkpad);

  /* one element, renegotiated through every format */
  for (guint i = 0; i < G_N_ELEMENTS (all_formats); i++) {
    g_autoptr (GstBuffer) in = NULL;
    g_autoptr (GstBuffer) out = NULL;
    g_autoptr (GArray) faces = NULL;
    GstCaps *caps, *out_caps;
    GstMessage *msg;
    const GValue *list;

    video_info_init (&info, all_formats[i], 34, 22);
    caps = gst_video_info_to_caps (&info);
    gst_harness_set_src_caps (h, gst_caps_ref (caps));
    in = gst_buffer_new_allocate (NULL, info.size, NULL);
    gst_buffer_memset (in, 0, 0x80, info.size);
    out = process (h, in);
    fail_unless_equals_int (gst_buffer_get_size (out), info.size);
    out_caps = gst_pad_get_current_caps (h->sinkpad);
    fail_unless (gst_caps_is_equal (out_caps, caps), "%s: out caps %s",
        all_formats[i], gst_caps_to_string (out_caps));
    gst_caps_unref (out_caps);
    gst_caps_unref (caps);

    faces = roi_faces (out);
    fail_unless_equals_int (faces->len, 0);
    msg = pop_frame_message (bus);
    fail_unless (msg != NULL, "%s: no frame message", all_formats[i]);
    list = gst_structure_get_value (gst_message_get_structure (msg),
        "faces");
    fail_unless (list != NULL && GST_VALUE_HOLDS_LIST (list));
    fail_unless_equals_int (gst_value_list_get_size (list), 0);
    gst_message_unref (msg);
  }
  gst_harness_teardown (h);

  /* a refused format fails negotiation; the sticky caps event is stored
   * even when refused, the buffer tells */
  video_info_init (&info, "GRAY16_LE", 16, 12);
  h = harness_new (NULL, NULL, "gallery", gallery, NULL);
  gst_pad_push_event (h->srcpad, gst_event_new_caps (gst_video_info_to_caps
          (&info)));
  gst_segment_init (&segment, GST_FORMAT_TIME);
  gst_pad_push_event (h->srcpad, gst_event_new_segment (&segment));
  fail_unless_equals_int (gst_harness_push (h,
          gst_buffer_new_allocate (NULL, info.size, NULL)),
      GST_FLOW_NOT_NEGOTIATED);
  gst_harness_teardown (h);
  rm_rf (dir);
}

GST_END_TEST;

/* Checks the two faces of the group photo: Obama on the left, Biden on
 * the right (multiface.tsv), with @left/@right as their expected
 * identities (NULL: unknown), in the metas of @out and the message. */
static void
check_two_people (GstBuffer * out, GstBus * bus, const gchar * left,
    const gchar * right, guint64 frame)
{
  g_autoptr (GArray) faces = roi_faces (out);
  GstMessage *msg;
  const GstStructure *s;
  const GValue *list;
  guint64 number;

  fail_unless_equals_int (faces->len, 2);
  for (guint i = 0; i < 2; i++) {
    const Face *f = &g_array_index (faces, Face, i);

    g_print ("face %u: %u,%u %ux%u %s %.3f (track %u)\n", i, f->x, f->y,
        f->w, f->h, f->identity ? f->identity : "(unknown)", f->distance,
        f->track_id);
    fail_unless (f->w > 40 && f->h > 40, "face too small");
  }
  fail_unless_equals_string (g_array_index (faces, Face, 0).identity, left);
  fail_unless_equals_string (g_array_index (faces, Face, 1).identity, right);

  msg = pop_frame_message (bus);
  fail_unless (msg != NULL, "no frame message");
  s = gst_message_get_structure (msg);
  fail_unless (gst_structure_get_uint64 (s, "frame", &number));
  fail_unless_equals_uint64 (number, frame);
  fail_unless (gst_structure_has_field_typed (s, "running-time",
          GST_TYPE_CLOCK_TIME));
  fail_unless (gst_structure_has_field_typed (s, "stream-time",
          GST_TYPE_CLOCK_TIME));
  list = gst_structure_get_value (s, "faces");
  fail_unless_equals_int (gst_value_list_get_size (list), 2);
  for (guint i = 0; i < 2; i++) {
    const GstStructure *f =
        gst_value_get_structure (gst_value_list_get_value (list, i));
    const gchar *id = gst_structure_get_string (f, "identity");
    guint x, track;
    gboolean matched = FALSE;

    fail_unless (gst_structure_get_uint (f, "x", &x));
    fail_unless (gst_structure_get_uint (f, "track-id", &track));
    fail_unless (gst_structure_has_field_typed (f, "distance",
            G_TYPE_DOUBLE));
    for (guint k = 0; k < 2; k++) {
      const Face *m = &g_array_index (faces, Face, k);

      if (m->x == x && m->track_id == track &&
          g_strcmp0 (m->identity, id) == 0)
        matched = TRUE;
    }
    fail_unless (matched, "message face %u does not match a meta", i);
  }
  gst_message_unref (msg);
}

/* Two known people in one frame get two ROI metas with the right names,
 * 68 landmarks inside their boxes on the frame they are recognised, and
 * the bus message lists them with the same boxes; track messages say
 * they appeared and were identified. */
GST_START_TEST (test_two_people)
{
  g_autofree gchar *dir = g_dir_make_tmp ("ncl-fr-XXXXXX", NULL);
  g_autofree gchar *gallery = NULL;
  g_autoptr (GstBus) bus = gst_bus_new ();
  g_autoptr (GstBuffer) in = NULL;
  g_autoptr (GstBuffer) out = NULL;
  g_autoptr (GArray) faces = NULL;
  guint appeared = 0, identified = 0;
  GstVideoInfo info;
  GstMessage *msg;
  GstHarness *h;

  gallery = write_gallery (dir, "gallery.yaml", "obama", "obama.jpg",
      "biden", "biden.jpg", NULL);
  in = load_frame ("two_people.jpg", "RGB", 2, &info);
  h = harness_new (&info, bus, "gallery", gallery, NULL);
  out = process (h, in);

  /* track events come before the frame's message */
  while ((msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ELEMENT)) != NULL) {
    const GstStructure *s = gst_message_get_structure (msg);
    const gchar *event = gst_structure_get_string (s, "event");

    if (gst_structure_has_name (s, "facerecognize")) {
      gst_message_unref (msg);
      break;
    }
    fail_unless (gst_structure_has_name (s, "facerecognize-track"));
    {
      g_autofree gchar *text = gst_structure_to_string (s);

      g_print ("%s\n", text);
    }
    if (g_strcmp0 (event, "appeared") == 0)
      appeared++;
    else if (g_strcmp0 (event, "identity-changed") == 0 &&
        gst_structure_get_string (s, "identity") != NULL)
      identified++;
    gst_message_unref (msg);
  }
  fail_unless_equals_int (appeared, 2);
  fail_unless_equals_int (identified, 2);

  faces = roi_faces (out);
  fail_unless_equals_int (faces->len, 2);
  for (guint i = 0; i < 2; i++) {
    fail_unless_equals_int (g_array_index (faces, Face, i).n_landmarks,
        2 * 68);
    fail_unless (g_array_index (faces, Face, i).landmarks_inside);
  }

  /* the second frame: same tracks, same names, from the votes */
  gst_buffer_unref (out);
  out = process (h, in);
  check_two_people (out, bus, "obama", "biden", 1);

  gst_harness_teardown (h);
  rm_rf (dir);
}

GST_END_TEST;

/* Runs the group photo in @format through an element with the gallery
 * (overlay on unless @overlay is FALSE) and returns the output. */
static GstBuffer *
run_overlay (const gchar * gallery, const gchar * format, gboolean overlay,
    GstBuffer ** in, GstVideoInfo * info, GArray ** faces)
{
  GstHarness *h;
  GstBuffer *out;

  *in = load_frame ("two_people.jpg", format, 2, info);
  h = harness_new (info, NULL, "gallery", gallery, "overlay", overlay,
      NULL);
  out = process (h, *in);
  gst_harness_teardown (h);
  *faces = roi_faces (out);
  fail_unless_equals_int ((*faces)->len, 2);
  return out;
}

/* overlay=false leaves every byte alone; overlay=true changes pixels
 * only around the faces, drawn straight on BGRx and blended into RGB,
 * RGBA and I420; known faces are boxed in green, unknown ones in orange. */
GST_START_TEST (test_overlay)
{
  g_autofree gchar *dir = g_dir_make_tmp ("ncl-fr-XXXXXX", NULL);
  g_autofree gchar *gallery = NULL;
  static const gchar *formats[] = { "BGRx", "RGB", "RGBA", "I420", "NV12" };
  GstVideoInfo info;

  /* Biden only: Obama (left) is unknown */
  gallery = write_gallery (dir, "gallery.yaml", "biden", "biden.jpg", NULL);

  {
    g_autoptr (GstBuffer) in = NULL;
    g_autoptr (GstBuffer) out = NULL;
    g_autoptr (GArray) faces = NULL;
    guint outside;

    out = run_overlay (gallery, "RGB", FALSE, &in, &info, &faces);
    fail_unless_equals_int (diff_frames (in, out, &info, NULL, 0, &outside),
        0);
  }

  for (guint i = 0; i < G_N_ELEMENTS (formats); i++) {
    g_autoptr (GstBuffer) in = NULL;
    g_autoptr (GstBuffer) out = NULL;
    g_autoptr (GArray) faces = NULL;
    gint allowed[8];
    guint changed, outside;
    gint font = CLAMP (GST_VIDEO_INFO_HEIGHT (&info) / 28, 9, 48);

    out = run_overlay (gallery, formats[i], TRUE, &in, &info, &faces);
    fail_if (g_array_index (faces, Face, 0).identity != NULL);
    fail_unless_equals_string (g_array_index (faces, Face, 1).identity,
        "biden");

    /* box +- the line, and the label above it */
    for (guint k = 0; k < 2; k++) {
      const Face *f = &g_array_index (faces, Face, k);

      allowed[4 * k + 0] = (gint) f->x - 6;
      allowed[4 * k + 1] = (gint) f->y - 3 * font - 8;
      allowed[4 * k + 2] = (gint) f->x + MAX ((gint) f->w, 15 * font) + 6;
      allowed[4 * k + 3] = f->y + f->h + 6;
    }
    changed = diff_frames (in, out, &info, allowed, 2, &outside);
    g_print ("%s: %u bytes changed, %u outside the faces' areas\n",
        formats[i], changed, outside);
    fail_unless (changed > 500, "%s: nothing drawn", formats[i]);
    fail_unless_equals_int (outside, 0);

    if (g_str_equal (formats[i], "RGB")) {
      const Face *unknown = &g_array_index (faces, Face, 0);
      const Face *known = &g_array_index (faces, Face, 1);
      guint8 rgb[3];

      /* the left edge of each box, half-way down */
      rgb_at (out, &info, known->x, known->y + known->h / 2, rgb);
      g_print ("known box %u,%u,%u\n", rgb[0], rgb[1], rgb[2]);
      fail_unless (rgb[1] > 180 && rgb[0] < 100 && rgb[2] < 120,
          "known face not boxed in green");
      rgb_at (out, &info, unknown->x, unknown->y + unknown->h / 2, rgb);
      g_print ("unknown box %u,%u,%u\n", rgb[0], rgb[1], rgb[2]);
      fail_unless (rgb[0] > 200 && rgb[1] > 90 && rgb[1] < 190 &&
          rgb[2] < 80, "unknown face not boxed in orange");
    }
  }
  rm_rf (dir);
}

GST_END_TEST;

/* Sets @element to PAUSED, expects the state change to fail with exactly
 * one error message of @domain/@code whose text names @name; returns the
 * text and debug text. */
static gchar *
expect_start_error (GstElement * element, GQuark domain, gint code,
    const gchar * name)
{
  g_autoptr (GstBus) bus = gst_bus_new ();
  g_autoptr (GError) gerror = NULL;
  g_autofree gchar *debug = NULL;
  gchar *all;
  GstMessage *msg;

  gst_element_set_bus (element, bus);
  fail_unless_equals_int (gst_element_set_state (element, GST_STATE_PAUSED),
      GST_STATE_CHANGE_FAILURE);

  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (msg != NULL, "no error message");
  gst_message_parse_error (msg, &gerror, &debug);
  gst_message_unref (msg);
  g_print ("error (%s %d): %s\n  %s\n", g_quark_to_string (gerror->domain),
      gerror->code, gerror->message, debug);
  fail_unless (gerror->domain == domain, "domain %s",
      g_quark_to_string (gerror->domain));
  fail_unless_equals_int (gerror->code, code);
  all = g_strconcat (gerror->message, "\n", debug, NULL);
  fail_unless (strstr (all, name) != NULL, "'%s' not named", name);

  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (msg == NULL, "more than one error message");

  fail_unless_equals_int (gst_element_set_state (element, GST_STATE_NULL),
      GST_STATE_CHANGE_SUCCESS);
  gst_element_set_bus (element, NULL);
  return all;
}

static GstElement *
element_new (const gchar * first_prop, ...)
{
  GstElement *element = gst_element_factory_make ("facerecognize", NULL);
  va_list args;

  fail_unless (element != NULL);
  if (first_prop != NULL) {
    va_start (args, first_prop);
    g_object_set_valist (G_OBJECT (element), first_prop, args);
    va_end (args);
  }
  return element;
}

/* Fails start-up with @domain/@code naming @name, and when @position is
 * set, with "FILE:LINE:COL" for @file in the message. */
static void
check_start_error (GstElement * element, GQuark domain, gint code,
    const gchar * name, const gchar * file)
{
  g_autofree gchar *all = expect_start_error (element, domain, code, name);

  if (file != NULL) {
    g_autofree gchar *escaped = g_regex_escape_string (file, -1);
    g_autofree gchar *pattern = g_strdup_printf ("%s:[0-9]+:[0-9]+",
        escaped);

    fail_unless (g_regex_match_simple (pattern, all, 0, 0),
        "no FILE:LINE:COL in '%s'", all);
  }
  gst_object_unref (element);
}

/* Gallery and config mistakes fail start-up with the right code, naming
 * the file (and line:col for YAML): syntax errors, unknown keys, bad
 * values, a missing photo, a photo without a face, missing files, no
 * gallery at all, missing models, and a device that does not exist. */
GST_START_TEST (test_errors)
{
  static const struct
  {
    const gchar *yaml;
    gint code;
  } galleries[] = {
    {"identities: [\n", GST_RESOURCE_ERROR_SETTINGS},
    {"identities:\n  - name: a\n    images: [x.jpg]\n    nmae: b\n",
        GST_RESOURCE_ERROR_SETTINGS},
    {"threshold: 7\nidentities:\n  - name: a\n    images: [a.jpg]\n",
        GST_RESOURCE_ERROR_SETTINGS},
    {"identities: []\n", GST_RESOURCE_ERROR_SETTINGS},
    {"identities:\n  - name: a\n    images: [no-such-photo.jpg]\n",
        GST_RESOURCE_ERROR_NOT_FOUND},
  };
  static const gchar *configs[] = {
    "detector: [tiny\n", "detector: yolo\n", "detector-size: 100\n",
    "overlay: true\ntreshold: 0.5\n",
  };
  g_autofree gchar *dir = g_dir_make_tmp ("ncl-fr-XXXXXX", NULL);
  g_autofree gchar *gallery = NULL;
  g_autofree gchar *missing = NULL;
  g_autofree gchar *blank = NULL;
  g_autofree gchar *no_face = NULL;
  g_autofree gchar *empty_dir = NULL;
  g_autofree gchar *old_path = g_strdup (g_getenv ("NEURALCL_MODEL_PATH"));
  g_autofree gchar *old_data = g_strdup (g_getenv ("XDG_DATA_HOME"));
  g_autoptr (NclImage) img = ncl_image_new_rgb (64, 48);
  g_autoptr (GError) error = NULL;
  g_autofree gchar *model = NULL;

  gallery = write_gallery (dir, "ok.yaml", "obama", "obama.jpg", NULL);
  for (guint i = 0; i < G_N_ELEMENTS (galleries); i++) {
    g_autofree gchar *name = g_strdup_printf ("bad-%u.yaml", i);
    g_autofree gchar *path = write_temp (dir, name, galleries[i].yaml);

    check_start_error (element_new ("gallery", path, NULL),
        GST_RESOURCE_ERROR, galleries[i].code, path, path);
  }
  for (guint i = 0; i < G_N_ELEMENTS (configs); i++) {
    g_autofree gchar *name = g_strdup_printf ("config-%u.yaml", i);
    g_autofree gchar *path = write_temp (dir, name, configs[i]);

    check_start_error (element_new ("config", path, "gallery", gallery,
            NULL), GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS, path,
        path);
  }

  /* missing files, and no gallery at all */
  missing = g_build_filename (dir, "absent.yaml", NULL);
  check_start_error (element_new ("gallery", missing, NULL),
      GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND, missing, NULL);
  check_start_error (element_new ("gallery", gallery, "config", missing,
          NULL), GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND, missing,
      NULL);
  check_start_error (element_new (NULL), GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_NOT_FOUND, "gallery", NULL);

  /* a device that does not exist */
  check_start_error (element_new ("gallery", gallery, "device",
          "no-such-device-xyz", NULL), GST_LIBRARY_ERROR,
      GST_LIBRARY_ERROR_INIT, "no-such-device-xyz", NULL);

  /* a photo without a face: a flat grey picture */
  memset (img->planes[0], 0x70, (gsize) img->strides[0] * img->height);
  blank = g_build_filename (dir, "blank.png", NULL);
  fail_unless (ncl_image_save_png (img, blank, &error), "%s",
      error ? error->message : "");
  no_face = write_temp (dir, "no-face.yaml",
      "identities:\n  - name: nobody\n    images: [blank.png]\n");
  check_start_error (element_new ("gallery", no_face, NULL),
      GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS, blank, NULL);

  /* models not fetched: the message says what to run */
  empty_dir = g_build_filename (dir, "no-models", NULL);
  g_mkdir (empty_dir, 0755);
  g_setenv ("NEURALCL_MODEL_PATH", empty_dir, TRUE);
  g_setenv ("XDG_DATA_HOME", empty_dir, TRUE);
  model = ncl_face_find_model (NCL_FACE_MODEL_RECOGNITION, NULL);
  if (model == NULL)
    check_start_error (element_new ("gallery", gallery, NULL),
        GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND,
        "neuralcl models fetch", NULL);
  else
    g_print ("models installed in %s: cannot test their absence\n", model);
  g_setenv ("NEURALCL_MODEL_PATH", old_path ? old_path : "", TRUE);
  if (old_data != NULL)
    g_setenv ("XDG_DATA_HOME", old_data, TRUE);
  else
    g_unsetenv ("XDG_DATA_HOME");
  g_rmdir (empty_dir);
  rm_rf (dir);
}

GST_END_TEST;

/* A gallery photo with two people starts (the largest face is enrolled)
 * with a warning naming the photo; config values apply (overlay: false
 * from the file, a gallery path relative to the file) unless a property
 * overrides them. */
GST_START_TEST (test_warning_and_config)
{
  g_autofree gchar *dir = g_dir_make_tmp ("ncl-fr-XXXXXX", NULL);
  g_autofree gchar *group = example_path ("two_people.jpg");
  g_autofree gchar *gallery = NULL;
  g_autofree gchar *config = NULL;
  g_autoptr (GstBus) bus = gst_bus_new ();
  g_autoptr (GstBuffer) in = NULL;
  g_autoptr (GError) gerror = NULL;
  g_autofree gchar *debug = NULL;
  GstVideoInfo info;
  GstMessage *msg;
  GstHarness *h;
  guint outside;

  gallery = write_gallery (dir, "group.yaml", "someone", "two_people.jpg",
      NULL);
  config = write_temp (dir, "faces.yaml", "# relative to this file\n"
      "gallery: group.yaml\noverlay: false\ndetector-size: 320\n"
      "tracker:\n  recognize-interval: 5\n");
  in = load_frame ("two_people.jpg", "RGB", 2, &info);

  h = harness_new (&info, bus, "config", config, NULL);
  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_WARNING);
  fail_unless (msg != NULL, "no warning for a photo with two faces");
  gst_message_parse_warning (msg, &gerror, &debug);
  g_print ("warning: %s\n  %s\n", gerror->message, debug);
  fail_unless (strstr (gerror->message, group) != NULL);
  fail_unless (strstr (gerror->message, "2 faces") != NULL);
  gst_message_unref (msg);
  {
    g_autoptr (GstBuffer) out = process (h, in);
    g_autoptr (GArray) faces = roi_faces (out);

    fail_unless_equals_int (faces->len, 2);
    /* overlay: false from the file */
    fail_unless_equals_int (diff_frames (in, out, &info, NULL, 0,
            &outside), 0);
  }
  gst_harness_teardown (h);

  /* the property wins, whether set before or after the config */
  h = harness_new (&info, NULL, "overlay", TRUE, "config", config, NULL);
  {
    g_autoptr (GstBuffer) out = process (h, in);

    fail_unless (diff_frames (in, out, &info, NULL, 0, &outside) > 500);
  }
  gst_harness_teardown (h);
  rm_rf (dir);
}

GST_END_TEST;

/* Pushes @in until the faces' identities are @left and @right or the
 * reload timeout passes; returns the number of frames. */
static guint
push_until (GstHarness * h, GstBus * bus, GstBuffer * in, const gchar * left,
    const gchar * right, GstMessage ** warning)
{
  gint64 deadline = g_get_monotonic_time () +
      RELOAD_TIMEOUT_S * G_USEC_PER_SEC;
  guint frames = 0;

  for (;;) {
    g_autoptr (GstBuffer) out = process (h, in);
    g_autoptr (GArray) faces = roi_faces (out);
    GstMessage *msg;

    frames++;
    fail_unless_equals_int (faces->len, 2);
    /* (drops the element messages before it) */
    while ((msg = gst_bus_pop_filtered (bus,
                GST_MESSAGE_ERROR | GST_MESSAGE_WARNING)) != NULL) {
      fail_if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR, "error: %s",
          gst_structure_to_string (gst_message_get_structure (msg)));
      fail_unless (warning != NULL && *warning == NULL,
          "unexpected warning: %s",
          gst_structure_to_string (gst_message_get_structure (msg)));
      *warning = msg;
    }
    if (g_strcmp0 (g_array_index (faces, Face, 0).identity, left) == 0 &&
        g_strcmp0 (g_array_index (faces, Face, 1).identity, right) == 0 &&
        (warning == NULL || *warning != NULL))
      return frames;
    fail_unless (g_get_monotonic_time () < deadline,
        "not %s/%s after %d s (%u frames)", left ? left : "unknown",
        right ? right : "unknown", RELOAD_TIMEOUT_S, frames);
    g_usleep (50 * 1000);
  }
}

/* Rewriting the gallery while playing (Biden removed) makes him unknown
 * within a bounded time; an invalid rewrite posts a warning with
 * FILE:LINE:COL and the stream keeps the last good gallery; setting the
 * gallery property while playing switches to another file. */
GST_START_TEST (test_hot_reload)
{
  g_autofree gchar *dir = g_dir_make_tmp ("ncl-fr-XXXXXX", NULL);
  g_autofree gchar *gallery = NULL;
  g_autofree gchar *other = NULL;
  g_autofree gchar *pattern = NULL;
  g_autofree gchar *escaped = NULL;
  g_autoptr (GstBus) bus = gst_bus_new ();
  g_autoptr (GstBuffer) in = NULL;
  g_autoptr (GError) gerror = NULL;
  g_autofree gchar *debug = NULL;
  g_autofree gchar *all = NULL;
  GstMessage *warning = NULL;
  GstVideoInfo info;
  GstHarness *h;
  guint frames;

  gallery = write_gallery (dir, "gallery.yaml", "obama", "obama.jpg",
      "biden", "biden.jpg", NULL);
  in = load_frame ("two_people.jpg", "I420", 2, &info);
  h = harness_new (&info, bus, "gallery", gallery, "overlay", FALSE, NULL);
  frames = push_until (h, bus, in, "obama", "biden", NULL);
  fail_unless_equals_int (frames, 1);

  /* Biden removed */
  g_free (write_gallery (dir, "gallery.yaml", "obama", "obama.jpg", NULL));
  frames = push_until (h, bus, in, "obama", NULL, NULL);
  g_print ("Biden unknown %u frames after the rewrite\n", frames);

  /* an unclosed list on line 3 */
  g_free (write_temp (dir, "gallery.yaml",
          "identities:\n  - name: obama\n    images: [obama.jpg\n"));
  frames = push_until (h, bus, in, "obama", NULL, &warning);
  gst_message_parse_warning (warning, &gerror, &debug);
  gst_message_unref (warning);
  all = g_strconcat (gerror->message, "\n", debug, NULL);
  g_print ("warning after %u frames: %s\n", frames, all);
  escaped = g_regex_escape_string (gallery, -1);
  pattern = g_strdup_printf ("%s:[0-9]+:[0-9]+", escaped);
  fail_unless (g_regex_match_simple (pattern, gerror->message, 0, 0),
      "no FILE:LINE:COL in the warning's text");
  /* still the last good gallery a few frames on */
  for (guint i = 0; i < 3; i++)
    push_until (h, bus, in, "obama", NULL, NULL);

  /* another file, set while playing: Biden only */
  other = write_gallery (dir, "other.yaml", "biden", "biden.jpg", NULL);
  g_object_set (h->element, "gallery", other, NULL);
  frames = push_until (h, bus, in, NULL, "biden", NULL);
  g_print ("switched galleries after %u frames\n", frames);

  gst_element_set_bus (h->element, NULL);
  gst_harness_teardown (h);
  rm_rf (dir);
}

GST_END_TEST;

/* NULL<->READY<->PAUSED cycling restarts cleanly (tracks and frame
 * numbers start again), and timestamps and flags pass through. */
GST_START_TEST (test_state_cycles)
{
  g_autofree gchar *dir = g_dir_make_tmp ("ncl-fr-XXXXXX", NULL);
  g_autofree gchar *gallery = NULL;
  g_autoptr (GstBus) bus = gst_bus_new ();
  static const GstState cycle[] = {
    GST_STATE_PAUSED, GST_STATE_READY, GST_STATE_NULL, GST_STATE_READY,
    GST_STATE_PAUSED,
  };
  GstVideoInfo info;
  GstHarness *h;

  gallery = write_gallery (dir, "gallery.yaml", "obama", "obama.jpg", NULL);
  video_info_init (&info, "NV12", 32, 24);
  h = harness_new (&info, bus, "gallery", gallery, NULL);
  for (guint round = 0; round < 2; round++) {
    GstBuffer *in = gst_buffer_new_allocate (NULL, info.size, NULL);
    g_autoptr (GstBuffer) out = NULL;
    GstMessage *msg;
    guint64 frame;

    gst_buffer_memset (in, 0, 0x50, info.size);
    GST_BUFFER_PTS (in) = (round + 1) * GST_SECOND;
    GST_BUFFER_DURATION (in) = 40 * GST_MSECOND;
    GST_BUFFER_OFFSET (in) = 7;
    GST_BUFFER_FLAG_SET (in, GST_BUFFER_FLAG_DISCONT);
    fail_unless_equals_int (gst_harness_push (h, in), GST_FLOW_OK);
    out = gst_harness_pull (h);
    fail_unless_equals_uint64 (GST_BUFFER_PTS (out),
        (round + 1) * GST_SECOND);
    fail_unless_equals_uint64 (GST_BUFFER_DURATION (out), 40 * GST_MSECOND);
    fail_unless_equals_uint64 (GST_BUFFER_OFFSET (out), 7);
    fail_unless (GST_BUFFER_FLAG_IS_SET (out, GST_BUFFER_FLAG_DISCONT));
    msg = pop_frame_message (bus);
    fail_unless (msg != NULL);
    fail_unless (gst_structure_get_uint64 (gst_message_get_structure (msg),
            "frame", &frame));
    fail_unless_equals_uint64 (frame, 0);
    gst_message_unref (msg);
    drain (bus);

    for (guint i = 0; i < G_N_ELEMENTS (cycle); i++)
      fail_unless_equals_int (gst_element_set_state (h->element, cycle[i]),
          GST_STATE_CHANGE_SUCCESS);
    gst_harness_play (h);
    gst_harness_push_event (h, gst_event_new_stream_start ("cycled"));
    gst_harness_set_src_caps (h, gst_video_info_to_caps (&info));
  }
  gst_element_set_bus (h->element, NULL);
  gst_harness_teardown (h);
  rm_rf (dir);
}

GST_END_TEST;

static gboolean
have_factory (const gchar * name)
{
  GstElementFactory *f = gst_element_factory_find (name);

  if (f == NULL)
    return FALSE;
  gst_object_unref (f);
  return TRUE;
}

/* The video test: on the Hamilton clip, with a gallery enrolled
 * from one photo of Lin-Manuel Miranda, most frames with a face show a
 * face labelled as him. */
GST_START_TEST (test_hamilton_clip)
{
  g_autofree gchar *dir = g_dir_make_tmp ("ncl-fr-XXXXXX", NULL);
  g_autofree gchar *clip = example_path ("short_hamilton_clip.mp4");
  g_autofree gchar *gallery = NULL;
  g_autofree gchar *launch = NULL;
  g_autoptr (GError) error = NULL;
  GstElement *pipeline;
  GstBus *bus;
  guint frames = 0, with_face = 0, with_him = 0, tracks = 0;
  gint64 t0;
  gboolean done = FALSE;

  if (!have_factory ("decodebin") || !have_factory ("filesrc") ||
      !have_factory ("videoconvert")) {
    g_print ("SKIP: no decodebin, filesrc or videoconvert to read %s\n",
        clip);
    rm_rf (dir);
    return;
  }
  gallery = write_gallery (dir, "gallery.yaml", "lin_manuel_miranda",
      "lin-manuel-miranda.png", NULL);
  launch = g_strdup_printf ("filesrc location=\"%s\" ! decodebin ! "
      "videoconvert ! video/x-raw,format=I420 ! facerecognize name=fr "
      "gallery=\"%s\" overlay=false qos=false ! fakesink sync=false",
      clip, gallery);
  pipeline = gst_parse_launch (launch, &error);
  fail_unless (pipeline != NULL, "%s", error ? error->message : "");
  bus = gst_element_get_bus (pipeline);
  t0 = g_get_monotonic_time ();
  fail_if (gst_element_set_state (pipeline, GST_STATE_PLAYING) ==
      GST_STATE_CHANGE_FAILURE);

  while (!done) {
    GstMessage *msg = gst_bus_timed_pop_filtered (bus, 240 * GST_SECOND,
        GST_MESSAGE_ELEMENT | GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
    const GstStructure *s;

    fail_unless (msg != NULL, "no EOS after 240 s");
    switch (GST_MESSAGE_TYPE (msg)) {
      case GST_MESSAGE_ERROR:{
        g_autoptr (GError) gerror = NULL;
        g_autofree gchar *debug = NULL;

        gst_message_parse_error (msg, &gerror, &debug);
        fail ("%s (%s)", gerror->message, debug);
        break;
      }
      case GST_MESSAGE_EOS:
        done = TRUE;
        break;
      default:
        s = gst_message_get_structure (msg);
        if (gst_structure_has_name (s, "facerecognize-track") &&
            g_strcmp0 (gst_structure_get_string (s, "event"),
                "appeared") == 0)
          tracks++;
        if (gst_structure_has_name (s, "facerecognize")) {
          const GValue *list = gst_structure_get_value (s, "faces");
          guint n = gst_value_list_get_size (list);
          gboolean him = FALSE;

          for (guint i = 0; i < n; i++) {
            const GstStructure *f =
                gst_value_get_structure (gst_value_list_get_value (list, i));

            if (g_strcmp0 (gst_structure_get_string (f, "identity"),
                    "lin_manuel_miranda") == 0)
              him = TRUE;
          }
          frames++;
          with_face += n > 0;
          with_him += him;
        }
        break;
    }
    gst_message_unref (msg);
  }
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (bus);
  gst_object_unref (pipeline);

  g_print ("%u frames in %.1f s, %u tracks; %u with a face, %u of them "
      "(%.0f %%) labelled lin_manuel_miranda\n", frames,
      (g_get_monotonic_time () - t0) / 1e6, tracks, with_face, with_him,
      with_face ? 100.0 * with_him / with_face : 0.0);
  fail_unless (frames > 250, "only %u frames", frames);
  fail_unless (with_face >= frames / 4, "faces in only %u frames",
      with_face);
  fail_unless (with_him * 2 > with_face, "labelled in %u of %u frames",
      with_him, with_face);
  rm_rf (dir);
}

GST_END_TEST;

static Suite *
facerecognize_suite (void)
{
  Suite *s = suite_create ("facerecognize");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_caps);
  tcase_add_test (tc, test_two_people);
  tcase_add_test (tc, test_overlay);
  tcase_add_test (tc, test_errors);
  tcase_add_test (tc, test_warning_and_config);
  tcase_add_test (tc, test_hot_reload);
  tcase_add_test (tc, test_state_cycles);
  tcase_add_test (tc, test_hamilton_clip);
  return s;
}

/* Probes for an OpenCL device in a child process, so that this process
 * (and the tests it forks) start without an OpenCL runtime loaded. */
static gboolean
have_device (void)
{
  pid_t pid = fork ();
  gint status;

  if (pid == 0) {
    /* exits 77 when there is no device */
    ncl_context_unref (ncl_test_context ());
    _exit (0);
  }
  if (pid < 0 || waitpid (pid, &status, 0) != pid)
    return TRUE;
  return !(WIFEXITED (status) && WEXITSTATUS (status) == NCL_TEST_SKIP);
}

int
main (int argc, char **argv)
{
  static const gchar *models[] = { NCL_FACE_MODEL_TINY_DETECTOR,
    NCL_FACE_MODEL_LANDMARKS, NCL_FACE_MODEL_RECOGNITION,
  };

  for (guint i = 0; i < G_N_ELEMENTS (models); i++) {
    g_autoptr (GError) error = NULL;
    g_autofree gchar *path = ncl_face_find_model (models[i], &error);

    if (path == NULL) {
      g_print ("SKIP: %s\n", error->message);
      return NCL_TEST_SKIP;
    }
  }
  if (!have_device ()) {
    g_print ("SKIP: no OpenCL device\n");
    return NCL_TEST_SKIP;
  }

  /* the Hamilton test decodes an MP4 with the system's plugins; the
   * build's plugin dir still comes first */
  g_unsetenv ("GST_PLUGIN_SYSTEM_PATH_1_0");

  gst_check_init (&argc, &argv);
  if (!have_factory ("facerecognize")) {
    if (have_factory ("styletransfer")) {
      g_print ("SKIP: facerecognize not built (no cairo/pangocairo)\n");
      return NCL_TEST_SKIP;
    }
    g_printerr ("no neuralcl plugin in GST_PLUGIN_PATH\n");
    return 1;
  }
  return gst_check_run_suite (facerecognize_suite (), "facerecognize",
      __FILE__);
}
