/* Face pipeline tests.
 *
 * Without models: the three pre-processing kernels against their references
 * on random frames of odd sizes, hand-computed values for the TF legacy
 * resize, the centred padding and the warp, and the host decoders on
 * synthetic network outputs.
 *
 * With the converted face-api models (NEURALCL_MODEL_PATH, else
 * $NCL_BUILD_DIR/face-models): face-api 1.7.15's own outputs on its six demo
 * photos (../shared/data/faces/golden/expected.json).  Exits 77 when the
 * models are missing and everything else passed. */

#include "common.h"
#include "../../lib/face-private.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

static gdouble
max_diff (const gfloat * a, const gfloat * b, gsize n)
{
  gdouble m = 0;

  for (gsize i = 0; i < n; i++)
    m = MAX (m, fabs ((gdouble) a[i] - b[i]));
  return m;
}

/* ---- kernels vs references --------------------------------------------- */

static gfloat *
random_frame (gint w, gint h, guint32 seed)
{
  gfloat *rgb = g_new (gfloat, (gsize) 3 * w * h);

  ncl_test_fill_random (rgb, (gsize) 3 * w * h, seed, 0.0f, 255.0f);
  for (gsize i = 0; i < (gsize) 3 * w * h; i++)
    rgb[i] = floorf (rgb[i]);
  return rgb;
}

/* Proves: the detector input kernel equals its reference (square and
 * non-square frames, border, downscale, upscale, S = L). */
static void
test_detector_input_kernel (NclContext * ctx)
{
  static const gint cases[][4] = {
    /* w, h, border, S */
    {37, 23, 0, 32}, {23, 37, 3, 32}, {64, 64, 0, 64}, {50, 30, 0, 96},
    {641, 479, 0, 416}, {640, 480, 160, 416}, {5, 3, 2, 7}, {1, 1, 0, 32},
    {92, 112, 28, 160},
  };
  g_autoptr (NclTensor) out = ncl_test_tensor (ctx, NULL, 1, 3, 1, 1);

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    gint w = cases[i][0], h = cases[i][1], border = cases[i][2];
    gint S = cases[i][3];
    g_autofree gfloat *rgb = random_frame (w, h, 100 + i);
    g_autofree gfloat *want = g_new (gfloat, (gsize) 3 * S * S);
    g_autofree gfloat *got = NULL;
    g_autoptr (NclTensor) in = ncl_test_tensor (ctx, rgb, 1, 3, h, w);
    g_autoptr (GError) error = NULL;
    g_autofree gchar *label = g_strdup_printf ("detector input %dx%d "
        "border %d -> %d", w, h, border, S);
    const NclFaceNorm *norm = i % 2 ? &ncl_face_norm_ssd :
        &ncl_face_norm_tiny;

    ncl_face_detector_input_ref (rgb, w, h, border, S, norm, want);
    NCL_CHECK (ncl_face_detector_input (ctx, in, border, S, norm, out,
            &error));
    NCL_CHECK_NO_ERROR (error);
    NCL_CHECK (out->n == 1 && out->c == 3 && out->h == S && out->w == S);
    got = ncl_test_download (out);
    ncl_test_compare (label, got, want, (gsize) 3 * S * S, 1e-6f, 1e-6f);
  }
}

/* Proves: the batched crop kernel equals its reference for several crops
 * in one launch (odd and even padding, tall, wide, square, 1x1, the whole
 * frame, up- and downscaling). */
static void
test_crops_kernel (NclContext * ctx)
{
  const gint w = 61, h = 47;
  static const NclFaceCrop crops[] = {
    {3, 4, 20, 33}, {0, 0, 61, 47}, {10, 5, 31, 8}, {60, 46, 1, 1},
    {7, 9, 12, 12}, {0, 20, 5, 27}, {40, 0, 21, 2},
  };
  static const gint sizes[] = { 112, 150, 7, 33 };
  g_autofree gfloat *rgb = random_frame (w, h, 7);
  g_autoptr (NclTensor) in = ncl_test_tensor (ctx, rgb, 1, 3, h, w);
  g_autoptr (NclTensor) out = ncl_test_tensor (ctx, NULL, 1, 3, 1, 1);
  gint n = G_N_ELEMENTS (crops);

  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++) {
    gint S = sizes[i];
    g_autofree gfloat *want = g_new (gfloat, (gsize) n * 3 * S * S);
    g_autofree gfloat *got = NULL;
    g_autoptr (GError) error = NULL;
    g_autofree gchar *label = g_strdup_printf ("%d crops -> %d", n, S);

    ncl_face_crops_ref (rgb, w, h, crops, n, S, &ncl_face_norm_face, want);
    NCL_CHECK (ncl_face_crops (ctx, in, crops, n, S, &ncl_face_norm_face,
            out, &error));
    NCL_CHECK_NO_ERROR (error);
    NCL_CHECK (out->n == n && out->h == S && out->w == S);
    got = ncl_test_download (out);
    ncl_test_compare (label, got, want, (gsize) n * 3 * S * S, 1e-6f, 1e-6f);
  }
  /* a crop outside the frame is refused */
  {
    NclFaceCrop bad = { 50, 0, 20, 10 };
    g_autoptr (GError) error = NULL;

    NCL_CHECK (!ncl_face_crops (ctx, in, &bad, 1, 8, &ncl_face_norm_face,
            out, &error));
    NCL_CHECK (g_error_matches (error, NCL_ERROR, NCL_ERROR_SHAPE));
  }
}

/* Proves: the warp kernel equals its reference: rotations, scales, chips
 * partly outside the frame, 1..3 sub-samples, several faces per launch. */
static void
test_warp_kernel (NclContext * ctx)
{
  const gint w = 83, h = 59, n = 4;
  static const gint sizes[] = { 150, 17 };
  g_autofree gfloat *rgb = random_frame (w, h, 9);
  g_autoptr (NclTensor) in = ncl_test_tensor (ctx, rgb, 1, 3, h, w);
  g_autoptr (NclTensor) out = ncl_test_tensor (ctx, NULL, 1, 3, 1, 1);
  gfloat params[8 * 4];

  for (gint f = 0; f < n; f++) {
    gdouble ang = 0.3 * f - 0.4, s = 0.3 + 0.5 * f;

    params[8 * f] = s * cos (ang);
    params[8 * f + 1] = -s * sin (ang);
    params[8 * f + 2] = -10 + 9 * f;
    params[8 * f + 3] = s * sin (ang);
    params[8 * f + 4] = s * cos (ang);
    params[8 * f + 5] = 4 * f - 3;
    params[8 * f + 6] = 1 + f % 3;
    params[8 * f + 7] = 0;
  }
  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++) {
    gint S = sizes[i];
    g_autofree gfloat *want = g_new (gfloat, (gsize) n * 3 * S * S);
    g_autofree gfloat *got = NULL;
    g_autoptr (GError) error = NULL;
    g_autofree gchar *label = g_strdup_printf ("%d warps -> %d", n, S);

    ncl_face_warp_ref (rgb, w, h, params, n, S, &ncl_face_norm_face, want);
    NCL_CHECK (ncl_face_warp (ctx, in, params, n, S, &ncl_face_norm_face,
            out, &error));
    NCL_CHECK_NO_ERROR (error);
    got = ncl_test_download (out);
    ncl_test_compare (label, got, want, (gsize) n * 3 * S * S, 1e-5f, 1e-5f);
  }
}

/* Proves: the references themselves follow the spec, on values worked out
 * by hand: TF legacy resize weights, padding bottom/right vs centred with
 * the odd pixel after, pad value -mean/div, and an exact translation warp. */
static void
test_hand_values (void)
{
  const NclFaceNorm unit = { {0, 0, 0}, 1.0f };
  gfloat rgb[3 * 4];
  gfloat out[3 * 6 * 6];

  /* a 4x1 frame, R = 0 10 20 30: the square is 4x4, rows 1..3 zero */
  memset (rgb, 0, sizeof (rgb));
  for (gint x = 0; x < 4; x++)
    rgb[x] = 10.0f * x;
  ncl_face_detector_input_ref (rgb, 4, 1, 0, 3, &unit, out);
  /* row 0: f = 0, 4/3, 8/3 */
  NCL_CHECK (out[0] == 0.0f);
  NCL_CHECK (fabsf (out[1] - 40.0f / 3) < 1e-5f);
  NCL_CHECK (fabsf (out[2] - 80.0f / 3) < 1e-5f);
  /* rows 1 and 2 sample square rows 1..3: zero padding below */
  NCL_CHECK (out[3] == 0.0f && out[5] == 0.0f && out[8] == 0.0f);
  /* S = L: an exact copy */
  ncl_face_detector_input_ref (rgb, 4, 1, 0, 4, &unit, out);
  NCL_CHECK (out[3] == 30.0f && out[4] == 0.0f);
  /* border 1: the frame moves to (1, 1) of a 6x6 square */
  ncl_face_detector_input_ref (rgb, 4, 1, 1, 6, &unit, out);
  NCL_CHECK (out[0] == 0.0f && out[6 + 1] == 0.0f && out[6 + 2] == 10.0f
      && out[6 + 4] == 30.0f && out[6 + 5] == 0.0f && out[12 + 2] == 0.0f);

  /* centred padding: a 3x6 crop (w x h) of a 3x6 frame: L = 6, diff = 3,
   * one column before, two after */
  {
    gfloat frame[3 * 18];
    NclFaceCrop c = { 0, 0, 3, 6 };

    for (gint i = 0; i < 3 * 18; i++)
      frame[i] = 1.0f + i;
    ncl_face_crops_ref (frame, 3, 6, &c, 1, 6, &ncl_face_norm_face, out);
    for (gint y = 0; y < 6; y++) {
      for (gint x = 0; x < 6; x++) {
        gfloat want = x >= 1 && x <= 3 ? frame[18 + y * 3 + x - 1] : 0.0f;

        want = (want - ncl_face_norm_face.mean[1]) / 255.0f;
        NCL_CHECK (out[36 + y * 6 + x] == want);
      }
    }
  }

  /* a pure translation warp copies pixels exactly, 0 outside */
  {
    gfloat frame[3 * 20];
    gfloat p[8] = { 1, 0, 2, 0, 1, 1, 1, 0 };
    gfloat chip[3 * 9];

    for (gint i = 0; i < 3 * 20; i++)
      frame[i] = (gfloat) i;
    /* frame 5x4, chip 3x3: chip (u, v) = frame (v + 1, u + 2) */
    ncl_face_warp_ref (frame, 5, 4, p, 1, 3, &unit, chip);
    NCL_CHECK (chip[0] == frame[1 * 5 + 2]);
    NCL_CHECK (chip[2] == frame[1 * 5 + 4]);
    NCL_CHECK (chip[9 + 4] == frame[20 + 2 * 5 + 3]);
    NCL_CHECK (chip[8] == frame[3 * 5 + 4]);
    /* half a pixel right: the mean of two neighbours */
    p[2] = 2.5f;
    ncl_face_warp_ref (frame, 5, 4, p, 1, 3, &unit, chip);
    NCL_CHECK (chip[0] == 0.5f * (frame[7] + frame[8]));
    /* column 5 is outside: weight it as 0 */
    NCL_CHECK (chip[2] == 0.5f * frame[9]);
  }
}

/* Proves: crop extraction clips, floors each value and refuses empty
 * crops (spec 0.2). */
static void
test_crop_from_box (void)
{
  NclFaceCrop c;
  NclBox b1 = { -5.5, 3.2, 20.9, 10.0 };
  NclBox b2 = { 95.5, 0.0, 10.0, 10.0 };
  NclBox b3 = { 100.2, 5.0, 10.0, 10.0 };
  NclBox b4 = { 10.0, 10.0, 0.5, 5.0 };
  NclBox b5 = { 10.0, NAN, 5.0, 5.0 };

  NCL_CHECK (ncl_face_crop_from_box (&b1, 100, 100, &c));
  NCL_CHECK (c.x == 0 && c.y == 3 && c.w == 15 && c.h == 10);
  NCL_CHECK (ncl_face_crop_from_box (&b2, 100, 100, &c));
  NCL_CHECK (c.x == 95 && c.y == 0 && c.w == 4 && c.h == 10);
  NCL_CHECK (!ncl_face_crop_from_box (&b3, 100, 100, &c));
  NCL_CHECK (!ncl_face_crop_from_box (&b4, 100, 100, &c));
  NCL_CHECK (!ncl_face_crop_from_box (&b5, 100, 100, &c));
  NCL_CHECK (ncl_face_js_round (292.5) == 293 && ncl_face_js_round (-0.5) == 0
      && ncl_face_js_round (2.4999) == 2);
}

/* Proves: tiny decoding (sigmoid, anchors, scaling, NMS at IoU 0.4, best
 * first) on an output built by hand, and the 0.5 threshold is strict. */
static void
test_decode_tiny (void)
{
  gfloat out[25];
  g_autoptr (GArray) faces = g_array_new (FALSE, TRUE, sizeof (NclFace));
  const NclFace *f;
  gdouble bw, bh;

  /* g = 1, S = 32, a 64x32 frame: k = 0.5, rw = 32, rh = 16, fx = 1,
   * fy = 2 */
  for (gint i = 0; i < 25; i++)
    out[i] = 0.0f;
  for (gint a = 0; a < 5; a++)
    out[a * 5 + 4] = -10.0f;
  out[0 * 5 + 4] = 2.0f;        /* anchor 0: 0.881 */
  out[1 * 5 + 4] = 3.0f;        /* anchor 1: 0.953 */
  out[3 * 5 + 4] = 1.0f;        /* anchor 3: 0.731, IoU 0.52 with 1 */
  out[2 * 5 + 4] = 0.0f;        /* anchor 2: exactly 0.5, not > 0.5 */
  ncl_face_decode_tiny (out, 1, 32, 64, 32, 0.5, faces);
  NCL_CHECK (faces->len == 2);
  if (faces->len != 2)
    return;
  f = &g_array_index (faces, NclFace, 0);
  NCL_CHECK (fabs (f->score - 1 / (1 + exp (-3.0))) < 1e-12);
  bw = 6.041143 * 64;
  bh = 7.080126 * 2 * 32;
  NCL_CHECK (fabs (f->box.w - bw) < 1e-9 && fabs (f->box.h - bh) < 1e-9);
  NCL_CHECK (fabs (f->box.x - (0.5 * 64 - bw / 2)) < 1e-9);
  NCL_CHECK (fabs (f->box.y - (0.5 * 2 * 32 - bh / 2)) < 1e-9);
  f = &g_array_index (faces, NclFace, 1);
  NCL_CHECK (fabs (f->score - 1 / (1 + exp (-2.0))) < 1e-12);
  NCL_CHECK (fabs (f->box.w - 1.603231 * 64) < 1e-9);
}

/* Proves: landmark un-padding (spec 3) on a tall crop, the unfloored box
 * origin, and a negative origin mapped to the crop's 0. */
static void
test_decode_landmarks (void)
{
  gfloat o[136];
  NclPoint p[68];
  NclBox box = { 10.7, 20.2, 50.9, 100.5 };
  NclFaceCrop crop = { 10, 20, 50, 100 };

  for (gint i = 0; i < 68; i++) {
    o[2 * i] = 0.5f;
    o[2 * i + 1] = 0.25f;
  }
  ncl_face_decode_landmarks (o, &box, &crop, p);
  /* s = 1.12, sw = 56, padX = 28: x_rel = 0.5; y_rel = 0.25 */
  NCL_CHECK (fabs (p[0].x - (25 + 10.7)) < 1e-6);
  NCL_CHECK (fabs (p[67].y - (25 + 20.2)) < 1e-6);
  box.x = -3.4;
  crop.x = 0;
  ncl_face_decode_landmarks (o, &box, &crop, p);
  NCL_CHECK (fabs (p[5].x - 25) < 1e-6);
}

/* Proves: settings names round-trip, bad names are refused, the main face
 * is the largest with ties to the centre, distances are Euclidean, and
 * models are looked up along the search path. */
static void
test_misc (void)
{
  NclFaceSettings s;
  NclFaceDetector d;
  NclFaceAlign a;
  NclFace faces[3];
  gfloat x[128], y[128];

  ncl_face_settings_init (&s);
  NCL_CHECK (s.detector == NCL_FACE_DETECTOR_TINY && s.detector_size == 416
      && s.min_score == 0.5 && s.max_faces == 0 && !s.tiny_landmarks);
  NCL_CHECK (ncl_face_detector_from_string ("ssd", &d)
      && d == NCL_FACE_DETECTOR_SSD);
  NCL_CHECK (ncl_face_detector_from_string (ncl_face_detector_to_string
          (NCL_FACE_DETECTOR_TINY), &d) && d == NCL_FACE_DETECTOR_TINY);
  NCL_CHECK (!ncl_face_detector_from_string ("yolo", &d));
  NCL_CHECK (ncl_face_align_from_string ("crop", &a)
      && a == NCL_FACE_ALIGN_CROP);
  NCL_CHECK (ncl_face_align_from_string (ncl_face_align_to_string
          (NCL_FACE_ALIGN_WARP), &a) && a == NCL_FACE_ALIGN_WARP);
  NCL_CHECK (!ncl_face_align_from_string (NULL, &a));

  memset (faces, 0, sizeof (faces));
  faces[0].box.w = faces[0].box.h = 10;
  faces[1].box.x = faces[1].box.y = 45;
  faces[1].box.w = faces[1].box.h = 10;
  faces[2].box.x = faces[2].box.y = 80;
  faces[2].box.w = faces[2].box.h = 5;
  NCL_CHECK (ncl_face_pick_main (faces, 3, 100, 100) == 1);
  faces[2].box.w = faces[2].box.h = 20;
  NCL_CHECK (ncl_face_pick_main (faces, 3, 100, 100) == 2);
  /* equal areas: the one nearer the centre */
  faces[2].box.w = faces[2].box.h = 10;
  NCL_CHECK (ncl_face_pick_main (faces, 3, 100, 100) == 1);
  faces[1].box.x = faces[1].box.y = 0;
  NCL_CHECK (ncl_face_pick_main (faces, 3, 100, 100) == 2);
  NCL_CHECK (ncl_face_pick_main (faces, 0, 100, 100) == -1);

  for (gint i = 0; i < 128; i++) {
    x[i] = 0.0f;
    y[i] = 0.0f;
  }
  x[3] = 3.0f;
  y[100] = 4.0f;
  NCL_CHECK (fabsf (ncl_face_distance (x, y) - 5.0f) < 1e-6f);

  {
    g_autofree gchar *old = g_strdup (g_getenv ("NEURALCL_MODEL_PATH"));
    g_autofree gchar *dir = g_dir_make_tmp ("ncl-face-XXXXXX", NULL);
    g_autofree gchar *file = g_build_filename (dir, "some_model.yaml", NULL);
    g_autofree gchar *path = NULL;
    g_autofree gchar *missing = NULL;
    g_autoptr (GError) error = NULL;
    g_auto (GStrv) dirs = NULL;

    g_file_set_contents (file, "neuralcl-model: 1\n", -1, NULL);
    g_setenv ("NEURALCL_MODEL_PATH", dir, TRUE);
    dirs = ncl_face_get_model_search_path ();
    NCL_CHECK (g_strcmp0 (dirs[0], dir) == 0 && dirs[1] != NULL);
    path = ncl_face_find_model ("some_model", &error);
    NCL_CHECK_NO_ERROR (error);
    NCL_CHECK (g_strcmp0 (path, file) == 0);
    missing = ncl_face_find_model ("no_such_model", &error);
    NCL_CHECK (missing == NULL
        && g_error_matches (error, NCL_ERROR, NCL_ERROR_NOT_FOUND));
    if (old)
      g_setenv ("NEURALCL_MODEL_PATH", old, TRUE);
    else
      g_unsetenv ("NEURALCL_MODEL_PATH");
    g_unlink (file);
    g_rmdir (dir);
  }
}

/* ---- golden ------------------------------------------------------------ */

typedef struct
{
  const gchar *label;
  gdouble box, score, point, desc;      /* max errors */
} Maxima;

static void
report (const gchar * what, gdouble err, gdouble tol)
{
  g_print ("%s %s: max error %.3g (tolerance %g)\n", err <= tol ? "ok" :
      "FAIL", what, err, tol);
  if (!(err <= tol))
    ncl_test_failures++;
}

static NclFaceEngine *
engine (NclContext * ctx, NclFaceDetector det, gint size, gdouble min_score,
    gboolean tiny_lm)
{
  NclFaceSettings s;
  g_autoptr (GError) error = NULL;
  NclFaceEngine *e;

  ncl_face_settings_init (&s);
  s.detector = det;
  s.detector_size = size;
  s.min_score = min_score;
  s.border = 0;
  s.tiny_landmarks = tiny_lm;
  s.align = NCL_FACE_ALIGN_CROP;
  e = ncl_face_engine_new (ctx, &s, &error);
  if (e == NULL) {
    g_printerr ("engine: %s\n", error->message);
    exit (1);
  }
  return e;
}

static void
get_box (JsonArray * a, NclBox * b)
{
  b->x = json_array_get_double_element (a, 0);
  b->y = json_array_get_double_element (a, 1);
  b->w = json_array_get_double_element (a, 2);
  b->h = json_array_get_double_element (a, 3);
}

/* Compares detections with a list of {score, box}. */
static void
compare_detections (const gchar * what, GArray * faces, JsonArray * want,
    gdouble * box_err, gdouble * score_err)
{
  if (faces->len != json_array_get_length (want)) {
    g_printerr ("%s: %u faces, face-api found %u\n", what, faces->len,
        json_array_get_length (want));
    ncl_test_failures++;
    return;
  }
  for (guint i = 0; i < faces->len; i++) {
    JsonObject *o = json_array_get_object_element (want, i);
    const NclFace *f = &g_array_index (faces, NclFace, i);
    NclBox b;

    get_box (json_object_get_array_member (o, "box"), &b);
    *score_err = MAX (*score_err, fabs (f->score -
            json_object_get_double_member (o, "score")));
    *box_err = MAX (*box_err, MAX (MAX (fabs (f->box.x - b.x),
                fabs (f->box.y - b.y)), MAX (fabs (f->box.w - b.w),
                fabs (f->box.h - b.h))));
  }
}

static gboolean
run_detect (NclFaceEngine * e, GArray * faces)
{
  g_autoptr (GError) error = NULL;

  g_array_set_size (faces, 0);
  if (!ncl_face_engine_detect (e, faces, &error)) {
    g_printerr ("detect: %s\n", error->message);
    ncl_test_failures++;
    return FALSE;
  }
  return TRUE;
}

static void
test_golden (NclContext * ctx)
{
  g_autofree gchar *json_path =
      ncl_test_shared_path ("data/faces/golden/expected.json");
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (NclFaceEngine) ssd = NULL, t416 = NULL;
  g_autoptr (NclFaceEngine) t320 = NULL, tinylm = NULL;
  NclFaceEngine *all[4];
  JsonObject *root;
  gdouble ssd_box = 0, ssd_score = 0, raw_box = 0, raw_score = 0;
  gdouble t416_box = 0, t416_score = 0, t320_box = 0, t320_score = 0;
  gdouble lm_err = 0, unshift_err = 0, tinylm_err = 0, desc_err = 0;
  gdouble crop_err = 0;

  if (!json_parser_load_from_file (parser, json_path, &error)) {
    g_printerr ("%s: %s\n", json_path, error->message);
    ncl_test_failures++;
    return;
  }
  root = json_node_get_object (json_parser_get_root (parser));
  /* one SSD run serves both thresholds: NMS is greedy by score, so a box
   * below 0.5 never suppresses one above it */
  all[0] = ssd = engine (ctx, NCL_FACE_DETECTOR_SSD, 416, 0.3, FALSE);
  all[1] = t416 = engine (ctx, NCL_FACE_DETECTOR_TINY, 416, 0.5, FALSE);
  all[2] = t320 = engine (ctx, NCL_FACE_DETECTOR_TINY, 320, 0.5, FALSE);
  all[3] = tinylm = engine (ctx, NCL_FACE_DETECTOR_TINY, 416, 0.5, TRUE);

  for (gint s = 1; s <= 6; s++) {
    g_autofree gchar *name = g_strdup_printf ("data/faces/golden/sample%d.png",
        s);
    g_autofree gchar *path = ncl_test_shared_path (name);
    g_autoptr (NclImage) img = ncl_image_load (path, &error);
    g_autofree gchar *key = g_strdup_printf ("%d", s);
    JsonObject *exp = json_object_get_object_member (root, key);
    JsonArray *want = json_object_get_array_member (exp, "ssd");
    JsonArray *crop = json_object_get_array_member (exp, "crop");
    JsonArray *tinylm_want = json_object_get_array_member (exp, "tinylm");
    g_autoptr (GArray) faces = g_array_new (FALSE, TRUE, sizeof (NclFace));
    guint n = json_array_get_length (want);
    gfloat desc[NCL_FACE_DESCRIPTOR_LEN];
    NclBox cb;

    if (img == NULL) {
      g_printerr ("%s\n", error->message);
      ncl_test_failures++;
      return;
    }
    for (guint i = 0; i < G_N_ELEMENTS (all); i++) {
      if (!ncl_face_engine_set_image (all[i], img, &error)) {
        g_printerr ("set_image: %s\n", error->message);
        ncl_test_failures++;
        return;
      }
    }

    if (run_detect (ssd, faces)) {
      guint keep = 0;

      compare_detections (name, faces, json_object_get_array_member (exp,
              "ssd_raw"), &raw_box, &raw_score);
      while (keep < faces->len
          && g_array_index (faces, NclFace, keep).score > 0.5)
        keep++;
      g_array_set_size (faces, keep);
      compare_detections (name, faces, want, &ssd_box, &ssd_score);
    }
    if (run_detect (t416, faces))
      compare_detections (name, faces, json_object_get_array_member (exp,
              "tiny416"), &t416_box, &t416_score);
    if (run_detect (t320, faces))
      compare_detections (name, faces, json_object_get_array_member (exp,
              "tiny320"), &t320_box, &t320_score);

    /* landmarks and descriptors on face-api's own boxes */
    g_array_set_size (faces, n);
    memset (faces->data, 0, sizeof (NclFace) * n);
    for (guint i = 0; i < n; i++)
      get_box (json_object_get_array_member (json_array_get_object_element
              (want, i), "box"), &g_array_index (faces, NclFace, i).box);
    if (!ncl_face_engine_landmarks (ssd, (NclFace *) faces->data, n, &error)
        || !ncl_face_engine_describe (ssd, (NclFace *) faces->data, n,
            &error)) {
      g_printerr ("%s: %s\n", name, error->message);
      ncl_test_failures++;
      return;
    }
    for (guint i = 0; i < n; i++) {
      JsonObject *o = json_array_get_object_element (want, i);
      JsonArray *lm = json_object_get_array_member (o, "landmarks");
      JsonArray *un = json_object_get_array_member (o, "unshifted");
      JsonArray *d = json_object_get_array_member (o, "descriptor");
      const NclFace *f = &g_array_index (faces, NclFace, i);
      gfloat want_d[NCL_FACE_DESCRIPTOR_LEN];

      NCL_CHECK (f->has_landmarks && f->has_descriptor);
      for (gint j = 0; j < 68; j++) {
        JsonArray *p = json_array_get_array_element (lm, j);
        JsonArray *q = json_array_get_array_element (un, j);

        lm_err = MAX (lm_err, MAX (fabs (f->landmarks[j].x -
                    json_array_get_double_element (p, 0)),
                fabs (f->landmarks[j].y - json_array_get_double_element (p,
                        1))));
        unshift_err = MAX (unshift_err, MAX (fabs (f->landmarks[j].x -
                    f->box.x - json_array_get_double_element (q, 0)),
                fabs (f->landmarks[j].y - f->box.y -
                    json_array_get_double_element (q, 1))));
      }
      for (gint j = 0; j < NCL_FACE_DESCRIPTOR_LEN; j++)
        want_d[j] = json_array_get_double_element (d, j);
      desc_err = MAX (desc_err, max_diff (f->descriptor, want_d,
              NCL_FACE_DESCRIPTOR_LEN));
    }

    /* tiny landmarks on the same boxes, relative to the box */
    for (guint i = 0; i < n; i++)
      g_array_index (faces, NclFace, i).has_landmarks = FALSE;
    if (!ncl_face_engine_landmarks (tinylm, (NclFace *) faces->data, n,
            &error)) {
      g_printerr ("%s: %s\n", name, error->message);
      ncl_test_failures++;
      return;
    }
    for (guint i = 0; i < n; i++) {
      JsonArray *tl = json_array_get_array_element (tinylm_want, i);
      const NclFace *f = &g_array_index (faces, NclFace, i);

      for (gint j = 0; j < 68; j++) {
        JsonArray *p = json_array_get_array_element (tl, j);

        tinylm_err = MAX (tinylm_err, MAX (fabs (f->landmarks[j].x -
                    f->box.x - json_array_get_double_element (p, 0)),
                fabs (f->landmarks[j].y - f->box.y -
                    json_array_get_double_element (p, 1))));
      }
    }

    /* the recognition net alone on a fixed non-square crop */
    cb.y = json_array_get_int_element (crop, 0);
    cb.x = json_array_get_int_element (crop, 1);
    cb.h = json_array_get_int_element (crop, 2);
    cb.w = json_array_get_int_element (crop, 3);
    if (!ncl_face_engine_describe_crop (ssd, &cb, desc, &error)) {
      g_printerr ("%s: %s\n", name, error->message);
      ncl_test_failures++;
      return;
    } else {
      JsonArray *d = json_object_get_array_member (exp, "crop_descriptor");
      gfloat want_d[NCL_FACE_DESCRIPTOR_LEN];

      for (gint j = 0; j < NCL_FACE_DESCRIPTOR_LEN; j++)
        want_d[j] = json_array_get_double_element (d, j);
      crop_err = MAX (crop_err, max_diff (desc, want_d,
              NCL_FACE_DESCRIPTOR_LEN));
    }
  }
  report ("ssd boxes (px)", ssd_box, 0.5);
  report ("ssd scores", ssd_score, 1e-4);
  report ("ssd minConfidence 0.3 boxes (px)", raw_box, 0.5);
  report ("ssd minConfidence 0.3 scores", raw_score, 1e-4);
  report ("tiny 416 boxes (px)", t416_box, 0.5);
  report ("tiny 416 scores", t416_score, 1e-4);
  report ("tiny 320 boxes (px)", t320_box, 0.5);
  report ("tiny 320 scores", t320_score, 1e-4);
  report ("68 landmarks (px)", lm_err, 0.5);
  report ("68 landmarks relative to the box (px)", unshift_err, 0.5);
  report ("tiny 68 landmarks (px)", tinylm_err, 0.5);
  report ("descriptors, face-api alignment", desc_err, 1e-4);
  report ("descriptors, fixed crop", crop_err, 1e-4);
}

/* Proves: with a border, a face that fills the frame (an ORL photo, 92x112
 * grey) is found where face-api's framing (border 0) finds none, and the
 * whole chain runs on it; the warp alignment gives descriptors close to
 * face-api's crop alignment for the same faces (the geometry is right). */
static void
test_engine_extras (NclContext * ctx)
{
  g_autofree gchar *orl = ncl_test_shared_path
      ("data/faces/orl_att_faces/s1/2.pgm");
  g_autofree gchar *sample = ncl_test_shared_path
      ("data/faces/golden/sample1.png");
  g_autofree gchar *json_path =
      ncl_test_shared_path ("data/faces/golden/expected.json");
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (NclImage) img = ncl_image_load (orl, &error);
  g_autoptr (NclImage) img1 = NULL;
  g_autoptr (GArray) faces = g_array_new (FALSE, TRUE, sizeof (NclFace));
  g_autoptr (NclFaceEngine) def = NULL, plain = NULL;
  NclFaceSettings s;
  JsonArray *want;
  gdouble max_dist = 0;

  NCL_CHECK_NO_ERROR (error);
  if (img == NULL)
    return;
  NCL_CHECK (img->width == 92 && img->height == 112);
  ncl_face_settings_init (&s);
  def = ncl_face_engine_new (ctx, &s, &error);
  NCL_CHECK_NO_ERROR (error);
  s.border = 0;
  plain = ncl_face_engine_new (ctx, &s, &error);
  NCL_CHECK_NO_ERROR (error);
  if (def == NULL || plain == NULL)
    return;
  NCL_CHECK (ncl_face_engine_analyze (plain, img, faces, &error));
  NCL_CHECK_NO_ERROR (error);
  NCL_CHECK (faces->len == 0);
  NCL_CHECK (ncl_face_engine_analyze (def, img, faces, &error));
  NCL_CHECK_NO_ERROR (error);
  NCL_CHECK (faces->len == 1);
  if (faces->len == 1) {
    const NclFace *f = &g_array_index (faces, NclFace, 0);

    g_print ("ORL s1/2.pgm: face at (%.1f, %.1f) %.1fx%.1f, score %.3f\n",
        f->box.x, f->box.y, f->box.w, f->box.h, f->score);
    NCL_CHECK (f->has_landmarks && f->has_descriptor);
    NCL_CHECK (f->box.w > 30 && f->box.w < 140);
  }

  /* warp vs crop on face-api's sample1 boxes */
  img1 = ncl_image_load (sample, &error);
  NCL_CHECK_NO_ERROR (error);
  if (img1 == NULL || !json_parser_load_from_file (parser, json_path, NULL))
    return;
  want = json_object_get_array_member (json_object_get_object_member
      (json_node_get_object (json_parser_get_root (parser)), "1"), "ssd");
  g_array_set_size (faces, json_array_get_length (want));
  memset (faces->data, 0, sizeof (NclFace) * faces->len);
  for (guint i = 0; i < faces->len; i++)
    get_box (json_object_get_array_member (json_array_get_object_element
            (want, i), "box"), &g_array_index (faces, NclFace, i).box);
  NCL_CHECK (ncl_face_engine_set_image (def, img1, &error)
      && ncl_face_engine_landmarks (def, (NclFace *) faces->data,
          faces->len, &error)
      && ncl_face_engine_describe (def, (NclFace *) faces->data,
          faces->len, &error));
  NCL_CHECK_NO_ERROR (error);
  for (guint i = 0; i < faces->len; i++) {
    const NclFace *f = &g_array_index (faces, NclFace, i);
    JsonArray *d = json_object_get_array_member
        (json_array_get_object_element (want, i), "descriptor");
    gfloat want_d[NCL_FACE_DESCRIPTOR_LEN];
    gfloat m[8];
    gdouble det;

    for (gint j = 0; j < NCL_FACE_DESCRIPTOR_LEN; j++)
      want_d[j] = json_array_get_double_element (d, j);
    NCL_CHECK (f->has_descriptor);
    g_print ("sample1 face %u: warp vs face-api crop descriptor distance "
        "%.3f\n", i, ncl_face_distance (want_d, f->descriptor));
    /* the eye centres land where dlib's mean face puts them in the chip:
     * ((0.25 + 0.2255) / 1.5, (0.25 + 0.2160) / 1.5) x 150 and the mirror,
     * up to the fit's residual (these faces roll by 10-45 degrees) */
    ncl_face_warp_params (f->landmarks, NCL_FACE_CHIP_SIZE, m);
    det = (gdouble) m[0] * m[4] - (gdouble) m[1] * m[3];
    for (gint eye = 0; eye < 2; eye++) {
      gdouble ex = 0, ey = 0, u, v;
      gdouble want_u = eye ? 100.48 : 47.55, want_v = 46.60;

      for (gint j = 36 + 6 * eye; j < 42 + 6 * eye; j++) {
        ex += f->landmarks[j].x / 6;
        ey += f->landmarks[j].y / 6;
      }
      ex -= m[2];
      ey -= m[5];
      u = (m[4] * ex - m[1] * ey) / det;
      v = (-m[3] * ex + m[0] * ey) / det;
      g_print ("  eye %d at (%.2f, %.2f) in the chip\n", eye, u, v);
      max_dist = MAX (max_dist, hypot (u - want_u, v - want_v));
    }
  }
  report ("warp: eye centres in the chip vs dlib's mean face (px)",
      max_dist, 6.0);
}

static gboolean
models_present (void)
{
  static const gchar *names[] = {
    NCL_FACE_MODEL_RECOGNITION, NCL_FACE_MODEL_TINY_DETECTOR,
    NCL_FACE_MODEL_SSD, NCL_FACE_MODEL_LANDMARKS,
    NCL_FACE_MODEL_LANDMARKS_TINY,
  };
  const gchar *build = g_getenv ("NCL_BUILD_DIR");

  if (g_getenv ("NEURALCL_MODEL_PATH") == NULL && build != NULL) {
    g_autofree gchar *dir = g_build_filename (build, "face-models", NULL);

    if (g_file_test (dir, G_FILE_TEST_IS_DIR))
      g_setenv ("NEURALCL_MODEL_PATH", dir, TRUE);
  }
  for (guint i = 0; i < G_N_ELEMENTS (names); i++) {
    g_autoptr (GError) error = NULL;
    g_autofree gchar *path = ncl_face_find_model (names[i], &error);

    if (path == NULL) {
      g_print ("%s\n", error->message);
      return FALSE;
    }
  }
  return TRUE;
}

int
main (void)
{
  g_autoptr (NclContext) ctx = ncl_test_context ();

  test_hand_values ();
  test_crop_from_box ();
  test_decode_tiny ();
  test_decode_landmarks ();
  test_misc ();
  test_detector_input_kernel (ctx);
  test_crops_kernel (ctx);
  test_warp_kernel (ctx);
  if (!models_present ()) {
    if (ncl_test_failures > 0)
      return ncl_test_finish ();
    g_print ("SKIP: face models missing; golden comparison not run\n");
    return NCL_TEST_SKIP;
  }
  test_golden (ctx);
  test_engine_extras (ctx);
  return ncl_test_finish ();
}
