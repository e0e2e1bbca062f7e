/* The styletransfer element: against the PyTorch golden output, in every
 * format and odd sizes, strength, model swap while playing, start-up errors
 * on the bus, and state changes.
 *
 * Models are the shared pretrained checkpoints; frames stay small because a
 * 160x120 frame costs 0.1-0.3 s on a 2-core CPU device. */
#include <math.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>

#include "common.h"

#define GOLDEN_W 160
#define GOLDEN_H 120

/* How long a background model swap may take before the test fails. */
#define SWAP_TIMEOUT_S 60

static const gchar *all_formats[] = {
  "RGB", "BGR", "RGBx", "BGRx", "RGBA", "BGRA", "I420", "NV12",
};

static gchar *
pretrained_path (const gchar * style)
{
  g_autofree gchar *rel =
      g_strdup_printf ("data/style/pretrained/%s.safetensors", style);

  return ncl_test_shared_path (rel);
}

static void
video_info_init (GstVideoInfo * info, const gchar * format, gint w, gint h)
{
  gst_video_info_init (info);
  fail_unless (gst_video_info_set_format (info,
          gst_video_format_from_string (format), w, h));
  GST_VIDEO_INFO_FPS_N (info) = 30;
  GST_VIDEO_INFO_FPS_D (info) = 1;
}

/* A harness around a styletransfer element with the given properties,
 * fed with the caps of @info (not negotiated when @info is NULL). */
static GstHarness *
harness_new (const GstVideoInfo * info, const gchar * first_prop, ...)
{
  GstElement *element = gst_element_factory_make ("styletransfer", NULL);
  GstHarness *h;
  va_list args;

  fail_unless (element != NULL, "no styletransfer element (GST_PLUGIN_PATH)");
  if (first_prop != NULL) {
    va_start (args, first_prop);
    g_object_set_valist (G_OBJECT (element), first_prop, args);
    va_end (args);
  }
  h = gst_harness_new_with_element (element, "sink", "src");
  gst_object_unref (element);
  if (info != NULL)
    gst_harness_set_src_caps (h, gst_video_info_to_caps (info));
  return h;
}

/* Bytes per visible row and number of rows of plane @p. */
static void
plane_geometry (const GstVideoInfo * info, guint p, gint * row_bytes,
    gint * rows)
{
  for (guint c = 0; c < GST_VIDEO_INFO_N_COMPONENTS (info); c++) {
    if (GST_VIDEO_INFO_COMP_PLANE (info, c) == p) {
      *row_bytes = GST_VIDEO_INFO_COMP_WIDTH (info, c) *
          GST_VIDEO_INFO_COMP_PSTRIDE (info, c);
      *rows = GST_VIDEO_INFO_COMP_HEIGHT (info, c);
      return;
    }
  }
  /* RGBx's padding byte is a component of plane 0 too */
  g_assert_not_reached ();
}

/* A frame of @info: a gradient with noise from @seed, values in 16..235 so
 * that YUV frames are in range too. */
static GstBuffer *
make_frame (const GstVideoInfo * info, guint seed)
{
  GstBuffer *buf = gst_buffer_new_allocate (NULL, info->size, NULL);
  guint32 s = seed * 2654435761u + 12345u;
  GstVideoFrame frame;

  gst_buffer_memset (buf, 0, 0, info->size);
  fail_unless (gst_video_frame_map (&frame, (GstVideoInfo *) info, buf,
          GST_MAP_WRITE));
  for (guint p = 0; p < GST_VIDEO_FRAME_N_PLANES (&frame); p++) {
    guint8 *data = GST_VIDEO_FRAME_PLANE_DATA (&frame, p);
    gint stride = GST_VIDEO_FRAME_PLANE_STRIDE (&frame, p);
    gint row_bytes, rows;

    plane_geometry (info, p, &row_bytes, &rows);
    for (gint y = 0; y < rows; y++) {
      for (gint x = 0; x < row_bytes; x++) {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        data[y * stride + x] =
            16 + (x * 5 + y * 3 + p * 60 + (s >> 27)) % 220;
      }
    }
  }
  gst_video_frame_unmap (&frame);
  return buf;
}

/* The visible bytes of every plane of @buf, rows without padding. */
static GByteArray *
frame_bytes (GstBuffer * buf, const GstVideoInfo * info)
{
  GByteArray *bytes = g_byte_array_new ();
  GstVideoFrame frame;

  fail_unless (gst_video_frame_map (&frame, (GstVideoInfo *) info, buf,
          GST_MAP_READ));
  for (guint p = 0; p < GST_VIDEO_FRAME_N_PLANES (&frame); p++) {
    const guint8 *data = GST_VIDEO_FRAME_PLANE_DATA (&frame, p);
    gint stride = GST_VIDEO_FRAME_PLANE_STRIDE (&frame, p);
    gint row_bytes, rows;

    plane_geometry (info, p, &row_bytes, &rows);
    for (gint y = 0; y < rows; y++)
      g_byte_array_append (bytes, data + (gsize) y * stride, row_bytes);
  }
  gst_video_frame_unmap (&frame);
  return bytes;
}

/* Number of bytes that differ by more than @tol. */
static guint
count_differences (const GByteArray * a, const GByteArray * b, gint tol)
{
  guint n = 0;

  fail_unless_equals_int (a->len, b->len);
  for (guint i = 0; i < a->len; i++)
    if (ABS ((gint) a->data[i] - (gint) b->data[i]) > tol)
      n++;
  return n;
}

/* Pushes a copy of @in through @h and returns the output's bytes. */
static GByteArray *
process (GstHarness * h, GstBuffer * in, const GstVideoInfo * info)
{
  g_autoptr (GstBuffer) out = NULL;

  fail_unless_equals_int (gst_harness_push (h, gst_buffer_copy_deep (in)),
      GST_FLOW_OK);
  out = gst_harness_pull (h);
  fail_unless (out != NULL, "no output buffer");
  fail_unless_equals_int (gst_buffer_get_size (out), info->size);
  return frame_bytes (out, info);
}

/* Runs the golden input through `styletransfer model=mosaic.safetensors`
 * in @format and compares every colour byte with the PyTorch output. */
static void
check_golden (const gchar * format)
{
  g_autofree gchar *golden =
      ncl_test_shared_path ("data/style/golden/mosaic-dog-160x120"
      ".safetensors");
  g_autofree gchar *model = pretrained_path ("mosaic");
  const gint64 shape[4] = { 1, 3, GOLDEN_H, GOLDEN_W };
  const gsize plane = GOLDEN_W * GOLDEN_H;
  g_autoptr (GError) error = NULL;
  g_autoptr (NclSafetensors) st = NULL;
  g_autofree gfloat *in = NULL;
  g_autofree gfloat *want = NULL;
  g_autoptr (GstBuffer) buf = NULL;
  g_autoptr (GstBuffer) out = NULL;
  GstVideoFrame frame;
  GstVideoInfo info;
  GstHarness *h;
  guint bad = 0;
  gint max_diff = 0;

  st = ncl_safetensors_load (golden, &error);
  fail_unless (st != NULL, "%s", error ? error->message : "");
  in = ncl_safetensors_read_f32 (st, "input", 4, shape, &error);
  fail_unless (in != NULL, "%s", error ? error->message : "");
  want = ncl_safetensors_read_f32 (st, "output", 4, shape, &error);
  fail_unless (want != NULL, "%s", error ? error->message : "");

  video_info_init (&info, format, GOLDEN_W, GOLDEN_H);
  buf = gst_buffer_new_allocate (NULL, info.size, NULL);
  gst_buffer_memset (buf, 0, 0x5a, info.size);
  fail_unless (gst_video_frame_map (&frame, &info, buf, GST_MAP_WRITE));
  for (gint c = 0; c < 3; c++) {
    guint8 *data = GST_VIDEO_FRAME_COMP_DATA (&frame, c);
    gint stride = GST_VIDEO_FRAME_COMP_STRIDE (&frame, c);
    gint ps = GST_VIDEO_FRAME_COMP_PSTRIDE (&frame, c);

    for (gint y = 0; y < GOLDEN_H; y++)
      for (gint x = 0; x < GOLDEN_W; x++)
        data[y * stride + x * ps] =
            (guint8) lrintf (in[c * plane + y * GOLDEN_W + x]);
  }
  gst_video_frame_unmap (&frame);

  h = harness_new (&info, "model", model, NULL);
  fail_unless_equals_int (gst_harness_push (h, gst_buffer_ref (buf)),
      GST_FLOW_OK);
  out = gst_harness_pull (h);
  fail_unless (out != NULL);

  fail_unless (gst_video_frame_map (&frame, &info, out, GST_MAP_READ));
  for (gint c = 0; c < 3; c++) {
    const guint8 *data = GST_VIDEO_FRAME_COMP_DATA (&frame, c);
    gint stride = GST_VIDEO_FRAME_COMP_STRIDE (&frame, c);
    gint ps = GST_VIDEO_FRAME_COMP_PSTRIDE (&frame, c);

    for (gint y = 0; y < GOLDEN_H; y++) {
      for (gint x = 0; x < GOLDEN_W; x++) {
        gfloat w = want[c * plane + y * GOLDEN_W + x];
        gint expected = CLAMP ((gint) lrintf (w), 0, 255);
        gint got = data[y * stride + x * ps];
        gint diff = ABS (got - expected);

        max_diff = MAX (max_diff, diff);
        if (diff > 1 && bad++ < 5)
          g_printerr ("%s: channel %d (%d, %d): got %d, want %d (%.3f)\n",
              format, c, x, y, got, expected, w);
      }
    }
  }
  gst_video_frame_unmap (&frame);
  gst_harness_teardown (h);

  g_print ("golden %s: %u bytes off by more than 1, max difference %d\n",
      format, bad, max_diff);
  fail_unless_equals_int (bad, 0);
}

/* RGB output matches the PyTorch reference within 1 per byte. */
GST_START_TEST (test_golden_rgb)
{
  check_golden ("RGB");
}

GST_END_TEST;

/* BGRx output (other channel order, 4 bytes per pixel) matches too. */
GST_START_TEST (test_golden_bgrx)
{
  check_golden ("BGRx");
}

GST_END_TEST;

/* All eight formats negotiate unchanged and get stylised; GRAY16_LE is
 * refused by the accept-caps query and by negotiation. */
GST_START_TEST (test_caps)
{
  g_autofree gchar *model = pretrained_path ("mosaic");
  GstSegment segment;
  GstVideoInfo info;
  GstHarness *h;
  GstCaps *caps;
  GstPad *sinkpad;

  for (guint i = 0; i < G_N_ELEMENTS (all_formats); i++) {
    g_autoptr (GstBuffer) in = NULL;
    g_autoptr (GByteArray) before = NULL;
    g_autoptr (GByteArray) after = NULL;
    GstCaps *out_caps;

    video_info_init (&info, all_formats[i], 16, 12);
    h = harness_new (&info, "model", model, NULL);
    in = make_frame (&info, i);
    before = frame_bytes (in, &info);
    after = process (h, in, &info);
    fail_unless (count_differences (before, after, 2) > before->len / 4,
        "%s: output barely differs from the input", all_formats[i]);

    /* same caps out as in */
    out_caps = gst_pad_get_current_caps (h->sinkpad);
    caps = gst_video_info_to_caps (&info);
    fail_unless (gst_caps_is_equal (out_caps, caps), "%s: out caps %"
        GST_PTR_FORMAT, all_formats[i], out_caps);
    gst_caps_unref (caps);
    gst_caps_unref (out_caps);
    gst_harness_teardown (h);
  }

  video_info_init (&info, "GRAY16_LE", 16, 12);
  h = harness_new (NULL, "model", model, NULL);
  caps = gst_video_info_to_caps (&info);
  sinkpad = gst_element_get_static_pad (h->element, "sink");
  fail_if (gst_pad_query_accept_caps (sinkpad, caps));
  /* a sticky event is stored even when refused: the buffer tells */
  gst_pad_push_event (h->srcpad, gst_event_new_caps (caps));
  gst_segment_init (&segment, GST_FORMAT_TIME);
  gst_pad_push_event (h->srcpad, gst_event_new_segment (&segment));
  fail_unless_equals_int (gst_harness_push (h, make_frame (&info, 0)),
      GST_FLOW_NOT_NEGOTIATED);
  gst_object_unref (sinkpad);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* Sizes that are not multiples of the network's stride keep their size
 * and come out stylised, in packed and planar formats. */
GST_START_TEST (test_odd_sizes)
{
  static const struct
  {
    const gchar *format;
    gint w, h;
  } cases[] = {
    {"RGB", 7, 5}, {"RGB", 33, 17}, {"RGB", 161, 121}, {"I420", 33, 17},
    {"NV12", 7, 5},
  };
  g_autofree gchar *model = pretrained_path ("mosaic");

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autoptr (GstBuffer) in = NULL;
    g_autoptr (GByteArray) before = NULL;
    g_autoptr (GByteArray) after = NULL;
    GstVideoInfo info;
    GstHarness *h;
    guint lo = 255, hi = 0;

    video_info_init (&info, cases[i].format, cases[i].w, cases[i].h);
    h = harness_new (&info, "model", model, NULL);
    in = make_frame (&info, 100 + i);
    before = frame_bytes (in, &info);
    after = process (h, in, &info);
    for (guint j = 0; j < after->len; j++) {
      lo = MIN (lo, after->data[j]);
      hi = MAX (hi, after->data[j]);
    }
    g_print ("%s %dx%d: %u of %u bytes changed, range %u..%u\n",
        cases[i].format, cases[i].w, cases[i].h,
        count_differences (before, after, 0), before->len, lo, hi);
    fail_unless (count_differences (before, after, 2) > before->len / 4,
        "%s %dx%d: output barely differs from the input", cases[i].format,
        cases[i].w, cases[i].h);
    /* not a constant or saturated frame */
    fail_unless (hi - lo >= 16, "%s %dx%d: flat output %u..%u",
        cases[i].format, cases[i].w, cases[i].h, lo, hi);
    gst_harness_teardown (h);
  }
}

GST_END_TEST;

/* strength=0 returns the input bytes exactly (RGB and I420), and strength
 * changed while playing switches between stylised and untouched frames. */
GST_START_TEST (test_strength_zero)
{
  g_autofree gchar *model = pretrained_path ("mosaic");
  static const gchar *formats[] = { "RGB", "I420" };

  for (guint i = 0; i < G_N_ELEMENTS (formats); i++) {
    g_autoptr (GstBuffer) in = NULL;
    g_autoptr (GByteArray) before = NULL;
    g_autoptr (GByteArray) zero = NULL;
    g_autoptr (GByteArray) full = NULL;
    g_autoptr (GByteArray) zero_again = NULL;
    GstVideoInfo info;
    GstHarness *h;

    video_info_init (&info, formats[i], 24, 16);
    h = harness_new (&info, "model", model, "strength", 0.0, NULL);
    in = make_frame (&info, 7);
    before = frame_bytes (in, &info);
    zero = process (h, in, &info);
    fail_unless_equals_int (count_differences (before, zero, 0), 0);

    g_object_set (h->element, "strength", 1.0, NULL);
    full = process (h, in, &info);
    fail_unless (count_differences (before, full, 2) > before->len / 4);

    g_object_set (h->element, "strength", 0.0, NULL);
    zero_again = process (h, in, &info);
    fail_unless_equals_int (count_differences (before, zero_again, 0), 0);
    gst_harness_teardown (h);
  }
}

GST_END_TEST;

/* Mean absolute difference over bytes [from, to) of two frames. */
static gdouble
mean_difference (const GByteArray * a, const GByteArray * b, guint from,
    guint to)
{
  gdouble sum = 0.0;

  for (guint i = from; i < to; i++)
    sum += ABS ((gint) a->data[i] - (gint) b->data[i]);
  return sum / (to - from);
}

/* preserve-colors reaches the library: on I420 the chroma planes stay close
 * to the input's while the luma is stylised, unlike without it. */
GST_START_TEST (test_preserve_colors)
{
  g_autofree gchar *model = pretrained_path ("mosaic");
  g_autoptr (GstBuffer) in = NULL;
  g_autoptr (GByteArray) before = NULL;
  g_autoptr (GByteArray) plain = NULL;
  g_autoptr (GByteArray) kept = NULL;
  gdouble luma_plain, luma_kept, chroma_plain, chroma_kept;
  GstVideoFrame frame;
  GstVideoInfo info;
  GstHarness *h;
  guint y_size;

  /* a smooth, moderately saturated frame, inside the RGB gamut */
  video_info_init (&info, "I420", 24, 16);
  y_size = 24 * 16;
  in = gst_buffer_new_allocate (NULL, info.size, NULL);
  fail_unless (gst_video_frame_map (&frame, &info, in, GST_MAP_WRITE));
  for (guint p = 0; p < 3; p++) {
    guint8 *data = GST_VIDEO_FRAME_PLANE_DATA (&frame, p);
    gint stride = GST_VIDEO_FRAME_PLANE_STRIDE (&frame, p);
    gint row_bytes, rows;

    plane_geometry (&info, p, &row_bytes, &rows);
    for (gint y = 0; y < rows; y++)
      for (gint x = 0; x < row_bytes; x++)
        data[y * stride + x] = p == 0 ? 60 + (x * 5 + y * 7) % 130 :
            p == 1 ? 108 + x * 3 : 140 - y * 3;
  }
  gst_video_frame_unmap (&frame);
  before = frame_bytes (in, &info);

  h = harness_new (&info, "model", model, NULL);
  plain = process (h, in, &info);
  g_object_set (h->element, "preserve-colors", TRUE, NULL);
  kept = process (h, in, &info);
  gst_harness_teardown (h);

  luma_plain = mean_difference (before, plain, 0, y_size);
  luma_kept = mean_difference (before, kept, 0, y_size);
  chroma_plain = mean_difference (before, plain, y_size, before->len);
  chroma_kept = mean_difference (before, kept, y_size, before->len);
  g_print ("mean |out - in|: luma %.2f / %.2f, chroma %.2f / %.2f "
      "(plain / preserve-colors)\n", luma_plain, luma_kept, chroma_plain,
      chroma_kept);
  fail_unless (luma_kept > 8.0, "luma not stylised");
  fail_unless (chroma_kept < 3.0, "chroma not preserved");
  fail_unless (chroma_plain > 4.0 * chroma_kept,
      "the test cannot tell: chroma barely changes without preserve-colors");
}

GST_END_TEST;

/* The next message of @type on @bus within @timeout_ms, or NULL. */
static GstMessage *
wait_message (GstBus * bus, GstMessageType type, guint timeout_ms)
{
  return gst_bus_timed_pop_filtered (bus, timeout_ms * GST_MSECOND, type);
}

/* Setting `model` while playing switches to the new model within a bounded
 * time without stalling the stream; a model that fails to load posts a
 * warning naming it and the stream keeps the previous model. */
GST_START_TEST (test_model_swap)
{
  g_autofree gchar *mosaic = pretrained_path ("mosaic");
  g_autofree gchar *candy = pretrained_path ("candy");
  const gchar *missing = "/nonexistent/no-such-style.safetensors";
  g_autoptr (GstBuffer) in = NULL;
  g_autoptr (GByteArray) want_mosaic = NULL;
  g_autoptr (GByteArray) want_candy = NULL;
  g_autoptr (GByteArray) got = NULL;
  g_autoptr (GstBus) bus = gst_bus_new ();
  GstMessage *msg;
  g_autoptr (GError) gerror = NULL;
  g_autofree gchar *debug = NULL;
  GstVideoInfo info;
  GstHarness *h, *ref;
  gint64 deadline;
  guint frames = 0;

  video_info_init (&info, "RGB", 32, 24);
  in = make_frame (&info, 3);

  /* what candy makes of this frame, from its own element */
  ref = harness_new (&info, "model", candy, NULL);
  want_candy = process (ref, in, &info);
  gst_harness_teardown (ref);

  h = harness_new (&info, "model", mosaic, NULL);
  gst_element_set_bus (h->element, bus);
  want_mosaic = process (h, in, &info);
  fail_unless (count_differences (want_mosaic, want_candy, 2) >
      want_mosaic->len / 4, "mosaic and candy agree: the test cannot tell");

  g_object_set (h->element, "model", candy, NULL);
  deadline = g_get_monotonic_time () + SWAP_TIMEOUT_S * G_USEC_PER_SEC;
  for (;;) {
    g_clear_pointer (&got, g_byte_array_unref);
    got = process (h, in, &info);
    frames++;
    if (count_differences (got, want_candy, 1) == 0)
      break;
    /* until the swap, frames keep coming from mosaic */
    fail_unless_equals_int (count_differences (got, want_mosaic, 1), 0);
    fail_unless (g_get_monotonic_time () < deadline,
        "still not candy after %d s (%u frames)", SWAP_TIMEOUT_S, frames);
    g_usleep (20 * 1000);
  }
  g_print ("switched to candy after %u frames\n", frames);

  g_object_set (h->element, "model", missing, NULL);
  deadline = g_get_monotonic_time () + SWAP_TIMEOUT_S * G_USEC_PER_SEC;
  while ((msg = wait_message (bus, GST_MESSAGE_WARNING, 20)) == NULL) {
    g_clear_pointer (&got, g_byte_array_unref);
    got = process (h, in, &info);
    fail_unless_equals_int (count_differences (got, want_candy, 1), 0);
    fail_unless (g_get_monotonic_time () < deadline, "no warning posted");
  }
  gst_message_parse_warning (msg, &gerror, &debug);
  g_print ("warning: %s\n  %s\n", gerror->message, debug);
  fail_unless (gerror->domain == GST_RESOURCE_ERROR);
  fail_unless_equals_int (gerror->code, GST_RESOURCE_ERROR_NOT_FOUND);
  fail_unless (strstr (gerror->message, missing) != NULL ||
      strstr (debug, missing) != NULL, "warning does not name the model");
  gst_message_unref (msg);

  /* still candy, still flowing, and no error */
  for (guint i = 0; i < 3; i++) {
    g_clear_pointer (&got, g_byte_array_unref);
    got = process (h, in, &info);
    fail_unless_equals_int (count_differences (got, want_candy, 1), 0);
  }
  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (msg == NULL, "unexpected error message");

  gst_element_set_bus (h->element, NULL);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* Stopping while a model loads in the background is clean, and the next
 * start runs the model that was set. */
GST_START_TEST (test_swap_in_flight_at_stop)
{
  g_autofree gchar *mosaic = pretrained_path ("mosaic");
  g_autofree gchar *candy = pretrained_path ("candy");
  g_autoptr (GstBuffer) in = NULL;
  g_autoptr (GByteArray) want_candy = NULL;
  g_autoptr (GByteArray) got = NULL;
  GstVideoInfo info;
  GstHarness *h, *ref;

  video_info_init (&info, "RGB", 16, 12);
  in = make_frame (&info, 5);
  ref = harness_new (&info, "model", candy, NULL);
  want_candy = process (ref, in, &info);
  gst_harness_teardown (ref);

  h = harness_new (&info, "model", mosaic, NULL);
  g_clear_pointer (&got, g_byte_array_unref);
  got = process (h, in, &info);
  g_object_set (h->element, "model", candy, NULL);
  fail_unless_equals_int (gst_element_set_state (h->element, GST_STATE_NULL),
      GST_STATE_CHANGE_SUCCESS);
  /* and once more, while no load is pending */
  fail_unless_equals_int (gst_element_set_state (h->element, GST_STATE_NULL),
      GST_STATE_CHANGE_SUCCESS);

  gst_harness_play (h);
  gst_harness_push_event (h, gst_event_new_stream_start ("again"));
  gst_harness_set_src_caps (h, gst_video_info_to_caps (&info));
  g_clear_pointer (&got, g_byte_array_unref);
  got = process (h, in, &info);
  fail_unless_equals_int (count_differences (got, want_candy, 1), 0);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* Sets @element to PAUSED, expects the state change to fail with exactly
 * one error message of @domain/@code whose text names @name; returns the
 * debug text. */
static gchar *
expect_start_error (GstElement * element, GQuark domain, gint code,
    const gchar * name)
{
  g_autoptr (GstBus) bus = gst_bus_new ();
  g_autoptr (GError) gerror = NULL;
  g_autofree gchar *debug = NULL;
  g_autofree gchar *all = NULL;
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
  return g_steal_pointer (&debug);
}

static gchar *
write_temp (const gchar * dir, const gchar * name, const gchar * data,
    gssize len)
{
  g_autoptr (GError) error = NULL;
  gchar *path = g_build_filename (dir, name, NULL);

  fail_unless (g_file_set_contents (path, data, len, &error), "%s",
      error ? error->message : "");
  return path;
}

static GstElement *
element_new (const gchar * first_prop, ...)
{
  GstElement *element = gst_element_factory_make ("styletransfer", NULL);
  va_list args;

  fail_unless (element != NULL);
  va_start (args, first_prop);
  g_object_set_valist (G_OBJECT (element), first_prop, args);
  va_end (args);
  return element;
}

/* Missing, truncated and corrupt model files fail start-up with one error
 * of the right code that names the file. */
GST_START_TEST (test_model_errors)
{
  g_autofree gchar *mosaic = pretrained_path ("mosaic");
  g_autofree gchar *dir = g_dir_make_tmp ("ncl-st-XXXXXX", NULL);
  g_autofree gchar *contents = NULL;
  g_autofree gchar *truncated = NULL;
  g_autofree gchar *corrupt = NULL;
  g_autofree gchar *missing = NULL;
  g_autofree gchar *debug = NULL;
  GstElement *element;
  guint64 header_len;
  gsize len;

  fail_unless (dir != NULL);
  fail_unless (g_file_get_contents (mosaic, &contents, &len, NULL));
  truncated = write_temp (dir, "truncated.safetensors", contents, len / 2);

  /* garbage in the header JSON: keep the length, break the syntax */
  memcpy (&header_len, contents, 8);
  header_len = GUINT64_FROM_LE (header_len);
  fail_unless (header_len > 64 && header_len < len);
  memcpy (contents + 8 + header_len / 2, "\x01}{\"\x7f!#", 7);
  corrupt = write_temp (dir, "corrupt.safetensors", contents, len);

  missing = g_build_filename (dir, "missing.safetensors", NULL);

  element = element_new ("model", missing, NULL);
  g_free (expect_start_error (element, GST_RESOURCE_ERROR,
          GST_RESOURCE_ERROR_NOT_FOUND, missing));
  gst_object_unref (element);

  /* a bundled style name that does not exist */
  element = element_new ("model", "no-such-style-name", NULL);
  g_free (expect_start_error (element, GST_RESOURCE_ERROR,
          GST_RESOURCE_ERROR_NOT_FOUND, "no-such-style-name"));
  gst_object_unref (element);

  element = element_new ("model", truncated, NULL);
  g_free (expect_start_error (element, GST_RESOURCE_ERROR,
          GST_RESOURCE_ERROR_SETTINGS, truncated));
  gst_object_unref (element);

  element = element_new ("model", corrupt, NULL);
  g_free (expect_start_error (element, GST_RESOURCE_ERROR,
          GST_RESOURCE_ERROR_SETTINGS, corrupt));
  gst_object_unref (element);

  /* a device that does not exist */
  element = element_new ("model", mosaic, "device", "no-such-device-xyz",
      NULL);
  g_free (expect_start_error (element, GST_LIBRARY_ERROR,
          GST_LIBRARY_ERROR_INIT, "no-such-device-xyz"));
  gst_object_unref (element);

  g_unlink (truncated);
  g_unlink (corrupt);
  g_rmdir (dir);
}

GST_END_TEST;

/* Bad YAML config files (syntax error, unknown key, missing model, missing
 * file) fail start-up with the right code and name the file and, for YAML
 * errors, the line and column. */
GST_START_TEST (test_config_errors)
{
  static const struct
  {
    const gchar *yaml;
    gint code;
    gboolean has_position;
  } cases[] = {
    {"strength: [1\n", GST_RESOURCE_ERROR_SETTINGS, TRUE},
    {"model: mosaic\nstrenght: 1\n", GST_RESOURCE_ERROR_SETTINGS, TRUE},
    {"strength: 1.5\n", GST_RESOURCE_ERROR_SETTINGS, TRUE},
  };
  g_autofree gchar *dir = g_dir_make_tmp ("ncl-st-XXXXXX", NULL);
  GstElement *element;

  fail_unless (dir != NULL);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree gchar *name = g_strdup_printf ("bad-%u.yaml", i);
    g_autofree gchar *path = write_temp (dir, name, cases[i].yaml, -1);
    g_autofree gchar *debug = NULL;
    g_autofree gchar *pattern = NULL;
    g_autofree gchar *escaped = g_regex_escape_string (path, -1);

    element = element_new ("config", path, NULL);
    debug = expect_start_error (element, GST_RESOURCE_ERROR, cases[i].code,
        path);
    gst_object_unref (element);
    pattern = g_strdup_printf ("%s:[0-9]+:[0-9]+", escaped);
    fail_unless (g_regex_match_simple (pattern, debug, 0, 0),
        "no FILE:LINE:COL in '%s'", debug);
    g_unlink (path);
  }

  /* the config's model does not exist: the model's name is reported */
  {
    g_autofree gchar *path = write_temp (dir, "missing-model.yaml",
        "model: not-here.safetensors\n", -1);

    element = element_new ("config", path, NULL);
    g_free (expect_start_error (element, GST_RESOURCE_ERROR,
            GST_RESOURCE_ERROR_NOT_FOUND, "not-here.safetensors"));
    gst_object_unref (element);
    g_unlink (path);
  }

  /* the config file itself does not exist */
  {
    g_autofree gchar *path = g_build_filename (dir, "absent.yaml", NULL);

    element = element_new ("config", path, NULL);
    g_free (expect_start_error (element, GST_RESOURCE_ERROR,
            GST_RESOURCE_ERROR_NOT_FOUND, path));
    gst_object_unref (element);
  }
  g_rmdir (dir);
}

GST_END_TEST;

/* Config values apply (a relative model path resolves against the file's
 * directory), and properties set explicitly override them. */
GST_START_TEST (test_config_precedence)
{
  g_autofree gchar *mosaic = pretrained_path ("mosaic");
  g_autofree gchar *dir = g_dir_make_tmp ("ncl-st-XXXXXX", NULL);
  g_autofree gchar *link = NULL;
  g_autofree gchar *config = NULL;
  g_autoptr (GstBuffer) in = NULL;
  g_autoptr (GByteArray) before = NULL;
  g_autoptr (GByteArray) got = NULL;
  GstVideoInfo info;
  GstHarness *h;

  fail_unless (dir != NULL);
  link = g_build_filename (dir, "style.safetensors", NULL);
  fail_unless (symlink (mosaic, link) == 0);
  config = write_temp (dir, "style.yaml",
      "# untouched frames unless overridden\n"
      "model: style.safetensors\nstrength: 0\n", -1);

  video_info_init (&info, "RGB", 16, 12);
  in = make_frame (&info, 11);
  before = frame_bytes (in, &info);

  /* strength 0 from the file: untouched */
  h = harness_new (&info, "config", config, NULL);
  got = process (h, in, &info);
  fail_unless_equals_int (count_differences (before, got, 0), 0);
  gst_harness_teardown (h);

  /* strength set before the config property still wins */
  h = harness_new (&info, "strength", 1.0, "config", config, NULL);
  g_clear_pointer (&got, g_byte_array_unref);
  got = process (h, in, &info);
  fail_unless (count_differences (before, got, 2) > before->len / 4);
  gst_harness_teardown (h);

  g_unlink (config);
  g_unlink (link);
  g_rmdir (dir);
}

GST_END_TEST;

static GstBuffer *
stamped_frame (const GstVideoInfo * info, guint n)
{
  GstBuffer *buf = make_frame (info, n);

  GST_BUFFER_PTS (buf) = n * 40 * GST_MSECOND;
  GST_BUFFER_DTS (buf) = n * 40 * GST_MSECOND + 1;
  GST_BUFFER_DURATION (buf) = 40 * GST_MSECOND;
  GST_BUFFER_OFFSET (buf) = n;
  GST_BUFFER_OFFSET_END (buf) = n + 1;
  GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_DISCONT | GST_BUFFER_FLAG_MARKER);
  return buf;
}

static void
check_stamps (GstHarness * h, const GstVideoInfo * info, guint n)
{
  g_autoptr (GstBuffer) out = NULL;

  fail_unless_equals_int (gst_harness_push (h, stamped_frame (info, n)),
      GST_FLOW_OK);
  out = gst_harness_pull (h);
  fail_unless (out != NULL);
  fail_unless_equals_uint64 (GST_BUFFER_PTS (out), n * 40 * GST_MSECOND);
  fail_unless_equals_uint64 (GST_BUFFER_DTS (out), n * 40 * GST_MSECOND + 1);
  fail_unless_equals_uint64 (GST_BUFFER_DURATION (out), 40 * GST_MSECOND);
  fail_unless_equals_uint64 (GST_BUFFER_OFFSET (out), n);
  fail_unless_equals_uint64 (GST_BUFFER_OFFSET_END (out), n + 1);
  fail_unless (GST_BUFFER_FLAG_IS_SET (out, GST_BUFFER_FLAG_DISCONT));
  fail_unless (GST_BUFFER_FLAG_IS_SET (out, GST_BUFFER_FLAG_MARKER));
  fail_if (GST_BUFFER_FLAG_IS_SET (out, GST_BUFFER_FLAG_DELTA_UNIT));
}

/* NULL<->READY<->PAUSED cycling twice restarts cleanly, and timestamps,
 * offsets and flags pass through unchanged each time. */
GST_START_TEST (test_state_cycles)
{
  g_autofree gchar *mosaic = pretrained_path ("mosaic");
  static const GstState cycle[] = {
    GST_STATE_PAUSED, GST_STATE_READY, GST_STATE_NULL, GST_STATE_READY,
    GST_STATE_NULL, GST_STATE_READY, GST_STATE_PAUSED,
  };
  GstVideoInfo info;
  GstHarness *h;

  video_info_init (&info, "BGRA", 16, 12);
  h = harness_new (&info, "model", mosaic, NULL);
  check_stamps (h, &info, 1);

  for (guint round = 0; round < 2; round++) {
    for (guint i = 0; i < G_N_ELEMENTS (cycle); i++)
      fail_unless_equals_int (gst_element_set_state (h->element, cycle[i]),
          GST_STATE_CHANGE_SUCCESS);
    gst_harness_play (h);
    gst_harness_push_event (h, gst_event_new_stream_start ("cycled"));
    gst_harness_set_src_caps (h, gst_video_info_to_caps (&info));
    check_stamps (h, &info, 2 + round);
  }
  gst_harness_teardown (h);
}

GST_END_TEST;

static Suite *
styletransfer_suite (void)
{
  Suite *s = suite_create ("styletransfer");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_golden_rgb);
  tcase_add_test (tc, test_golden_bgrx);
  tcase_add_test (tc, test_caps);
  tcase_add_test (tc, test_odd_sizes);
  tcase_add_test (tc, test_strength_zero);
  tcase_add_test (tc, test_preserve_colors);
  tcase_add_test (tc, test_model_swap);
  tcase_add_test (tc, test_swap_in_flight_at_stop);
  tcase_add_test (tc, test_model_errors);
  tcase_add_test (tc, test_config_errors);
  tcase_add_test (tc, test_config_precedence);
  tcase_add_test (tc, test_state_cycles);
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
  if (!have_device ())
    return NCL_TEST_SKIP;

  gst_check_init (&argc, &argv);
  return gst_check_run_suite (styletransfer_suite (), "styletransfer",
      __FILE__);
}
