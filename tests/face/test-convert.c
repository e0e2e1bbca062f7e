/* TF.js weights reader and face-api converter.
 *
 * (a) A synthetic manifest + .bin written here: float32, int32 and
 *     uint8-quantised entries decode to the exact values, and every size
 *     mismatch is an error naming the file and the tensor.
 * (b) The converted models in $NEURALCL_MODEL_PATH (written by the
 *     models/fetch test): each loads, has the parameter count and MACs of
 *     ../shared/specs/face-models.md, and face_recognition /
 *     face_landmark_68(_tiny) reproduce face-api's golden outputs
 *     (../shared/data/faces/golden) with the spec's preprocessing done here
 *     in plain C.  Skipped (77) when the models are missing. */
#include "common.h"

#include <json-glib/json-glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

/* ---- (a) synthetic manifests ------------------------------------------- */

static const gfloat syn_f[6] = { 1.5f, -2.25f, 3.0e-8f, 65504.0f, -0.0f,
  1.0f / 3.0f
};
static const gint32 syn_i[3] = { -7, 0, 2147483647 };
static const guint8 syn_q[5] = { 0, 1, 7, 128, 255 };
static const guint8 syn_qi[4] = { 0, 3, 5, 255 };
static const guint8 syn_one[3] = { 0, 7, 255 };
static const gfloat syn_s = 3.25f;
/* scale/min chosen so that float32 arithmetic would round differently */
#define SYN_Q_SCALE 0.0123456789
#define SYN_Q_MIN -1.2345678901

static const gchar syn_manifest[] =
    "[{\"paths\": [\"syn.bin\"], \"weights\": ["
    "{\"name\": \"f\", \"shape\": [2, 3], \"dtype\": \"float32\"},"
    "{\"name\": \"i\", \"shape\": [3], \"dtype\": \"int32\"},"
    "{\"name\": \"q\", \"shape\": [5], \"dtype\": \"float32\","
    " \"quantization\": {\"dtype\": \"uint8\", \"scale\": 0.0123456789,"
    " \"min\": -1.2345678901}},"
    "{\"name\": \"qi\", \"shape\": [4], \"dtype\": \"int32\","
    " \"quantization\": {\"dtype\": \"uint8\", \"scale\": 0.5, \"min\": -2}},"
    "{\"name\": \"one\", \"shape\": [1, 3], \"dtype\": \"float32\","
    " \"quantization\": {\"dtype\": \"uint8\", \"scale\": 1, \"min\": 0}},"
    "{\"name\": \"s\", \"shape\": [], \"dtype\": \"float32\"}"
    "]}]";

static void
append_le32 (GByteArray * a, guint32 u)
{
  guint8 b[4] = { u & 0xff, (u >> 8) & 0xff, (u >> 16) & 0xff, u >> 24 };

  g_byte_array_append (a, b, 4);
}

static GByteArray *
syn_bin (void)
{
  GByteArray *a = g_byte_array_new ();
  guint32 u;

  for (guint i = 0; i < G_N_ELEMENTS (syn_f); i++) {
    memcpy (&u, &syn_f[i], 4);
    append_le32 (a, u);
  }
  for (guint i = 0; i < G_N_ELEMENTS (syn_i); i++)
    append_le32 (a, (guint32) syn_i[i]);
  g_byte_array_append (a, syn_q, sizeof (syn_q));
  g_byte_array_append (a, syn_qi, sizeof (syn_qi));
  g_byte_array_append (a, syn_one, sizeof (syn_one));
  memcpy (&u, &syn_s, 4);
  append_le32 (a, u);
  return a;
}

static gchar *
write_case (const gchar * dir, const gchar * manifest, const guint8 * bin,
    gsize bin_len)
{
  g_autofree gchar *bin_path = g_build_filename (dir, "syn.bin", NULL);
  gchar *path = g_build_filename (dir, "syn-weights_manifest.json", NULL);

  g_unlink (bin_path);
  NCL_CHECK (g_file_set_contents (path, manifest, -1, NULL));
  if (bin != NULL)
    NCL_CHECK (g_file_set_contents (bin_path, (const gchar *) bin, bin_len,
            NULL));
  return path;
}

static gboolean
same_bits (gfloat a, gfloat b)
{
  return memcmp (&a, &b, 4) == 0;
}

static void
test_decode (const gchar * dir)
{
  g_autoptr (GByteArray) bin = syn_bin ();
  g_autofree gchar *path = write_case (dir, syn_manifest, bin->data,
      bin->len);
  g_autoptr (GError) error = NULL;
  g_autoptr (NclTfjsWeights) w = ncl_tfjs_weights_load (path, &error);
  const NclTfjsTensor *t;

  NCL_CHECK_NO_ERROR (error);
  if (w == NULL)
    return;
  NCL_CHECK (ncl_tfjs_weights_get_n_tensors (w) == 6);
  NCL_CHECK (ncl_tfjs_weights_get_n_bytes (w) == bin->len);
  NCL_CHECK (g_strcmp0 (ncl_tfjs_weights_get_nth (w, 2)->name, "q") == 0);
  NCL_CHECK (ncl_tfjs_weights_lookup (w, "nope") == NULL);

  t = ncl_tfjs_weights_lookup (w, "f");
  NCL_CHECK (t && t->dtype == NCL_TFJS_FLOAT32 && !t->quantized &&
      t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3 &&
      t->n_elements == 6 && t->offset == 0 && t->nbytes == 24 &&
      t->ints == NULL);
  for (guint i = 0; t && i < 6; i++)
    NCL_CHECK (same_bits (t->data[i], syn_f[i]));

  t = ncl_tfjs_weights_lookup (w, "i");
  NCL_CHECK (t && t->dtype == NCL_TFJS_INT32 && t->offset == 24 &&
      t->ints != NULL);
  for (guint i = 0; t && t->ints && i < 3; i++)
    NCL_CHECK (t->ints[i] == syn_i[i] && t->data[i] == (gfloat) syn_i[i]);

  t = ncl_tfjs_weights_lookup (w, "q");
  NCL_CHECK (t && t->quantized && t->offset == 36 && t->nbytes == 5 &&
      t->scale == SYN_Q_SCALE && t->min == SYN_Q_MIN);
  for (guint i = 0; t && i < 5; i++) {
    /* double, then rounded to float32 */
    gfloat want = (gfloat) ((gdouble) syn_q[i] * SYN_Q_SCALE + SYN_Q_MIN);

    if (!same_bits (t->data[i], want)) {
      g_printerr ("q[%u]: got %.9g want %.9g\n", i, t->data[i], want);
      ncl_test_failures++;
    }
  }
  /* the float32 evaluation really differs somewhere, so the check above
   * can tell the two apart */
  {
    gboolean differs = FALSE;

    for (guint i = 0; i < 5; i++)
      differs |= !same_bits ((gfloat) syn_q[i] * (gfloat) SYN_Q_SCALE +
          (gfloat) SYN_Q_MIN,
          (gfloat) ((gdouble) syn_q[i] * SYN_Q_SCALE + SYN_Q_MIN));
    NCL_CHECK (differs);
  }

  /* int32 quantised: q * 0.5 - 2 rounded half up: -2, -0.5 -> 0, 0.5 -> 1,
   * 125.5 -> 126 */
  t = ncl_tfjs_weights_lookup (w, "qi");
  NCL_CHECK (t && t->dtype == NCL_TFJS_INT32 && t->quantized && t->ints);
  if (t && t->ints) {
    NCL_CHECK (t->ints[0] == -2 && t->ints[1] == 0 && t->ints[2] == 1 &&
        t->ints[3] == 126);
    NCL_CHECK (t->data[3] == 126.0f);
  }

  t = ncl_tfjs_weights_lookup (w, "one");
  NCL_CHECK (t && t->quantized && t->scale == 1.0 && t->min == 0.0);
  for (guint i = 0; t && i < 3; i++)
    NCL_CHECK (t->data[i] == (gfloat) syn_one[i]);

  t = ncl_tfjs_weights_lookup (w, "s");
  NCL_CHECK (t && t->ndim == 0 && t->n_elements == 1 && t->data[0] == syn_s
      && t->offset == bin->len - 4);
}

/* Loading must fail with @code and a message containing every string of
 * @want (NULL-terminated). */
static void
expect_error (const gchar * label, const gchar * dir, const gchar * manifest,
    const guint8 * bin, gsize bin_len, gint code, ...)
{
  g_autofree gchar *path = write_case (dir, manifest, bin, bin_len);
  g_autoptr (GError) error = NULL;
  g_autoptr (NclTfjsWeights) w = ncl_tfjs_weights_load (path, &error);
  va_list ap;
  const gchar *s;

  if (w != NULL || error == NULL) {
    g_printerr ("%s: loaded, expected an error\n", label);
    ncl_test_failures++;
    return;
  }
  g_print ("%s: %s\n", label, error->message);
  if (!g_error_matches (error, NCL_ERROR, code)) {
    g_printerr ("%s: error code %d, expected %d\n", label, error->code, code);
    ncl_test_failures++;
  }
  va_start (ap, code);
  while ((s = va_arg (ap, const gchar *)) != NULL) {
    if (strstr (error->message, s) == NULL) {
      g_printerr ("%s: message lacks '%s'\n", label, s);
      ncl_test_failures++;
    }
  }
  va_end (ap);
}

static void
test_errors (const gchar * dir)
{
  g_autoptr (GByteArray) bin = syn_bin ();
  g_autofree gchar *bin_name = g_build_filename (dir, "syn.bin", NULL);
  g_autofree gchar *quant16 = NULL, *bad_scale = NULL, *twice = NULL;
  g_autofree gchar *big = NULL;

  /* one byte short: the last tensor does not fit */
  expect_error ("truncated", dir, syn_manifest, bin->data, bin->len - 1,
      NCL_ERROR_INVALID_MODEL, bin_name, "tensor 's'", "needs 4 bytes",
      NULL);
  /* a quantised tensor cut off */
  expect_error ("truncated in q", dir, syn_manifest, bin->data, 38,
      NCL_ERROR_INVALID_MODEL, bin_name, "tensor 'q'", "offset 36", NULL);
  /* one byte too many */
  {
    g_autoptr (GByteArray) more = syn_bin ();
    guint8 z = 0;

    g_byte_array_append (more, &z, 1);
    expect_error ("trailing byte", dir, syn_manifest, more->data, more->len,
        NCL_ERROR_INVALID_MODEL, bin_name, "1 bytes left", "tensor 's'",
        NULL);
  }
  expect_error ("missing bin", dir, syn_manifest, NULL, 0,
      NCL_ERROR_NOT_FOUND, bin_name, NULL);
  expect_error ("not json", dir, "[{\"paths\": ", bin->data, bin->len,
      NCL_ERROR_INVALID_MODEL, "syn-weights_manifest.json", NULL);
  expect_error ("not an array", dir, "{\"paths\": []}", bin->data, bin->len,
      NCL_ERROR_INVALID_MODEL, "expected an array of groups", NULL);

  quant16 = g_strdup (syn_manifest);
  memcpy (strstr (quant16, "uint8"), "uin16", 5);
  expect_error ("uint16 quantisation", dir, quant16, bin->data, bin->len,
      NCL_ERROR_UNSUPPORTED, "tensor 'q'", "uin16", NULL);

  bad_scale = g_strdup (syn_manifest);
  memcpy (strstr (bad_scale, "\"scale\": 0.0123456789"),
      "\"scale\": \"0.01234567\"", 21);
  expect_error ("string scale", dir, bad_scale, bin->data, bin->len,
      NCL_ERROR_INVALID_MODEL, "tensor 'q'", "scale", NULL);

  twice = g_strdup (syn_manifest);
  memcpy (strstr (twice, "\"name\": \"one\""), "\"name\": \"qi\" ", 13);
  expect_error ("duplicate name", dir, twice, bin->data, bin->len,
      NCL_ERROR_INVALID_MODEL, "tensor 'qi'", "twice", NULL);

  big = g_strdup (syn_manifest);
  memcpy (strstr (big, "[2, 3]"), "[2, 4]", 6);
  expect_error ("shape larger than the file", dir, big, bin->data, bin->len,
      NCL_ERROR_INVALID_MODEL, bin_name, "tensor 'qi'", "offset 49", NULL);
}

/* ---- (b) the converted models ------------------------------------------ */

typedef struct
{
  const gchar *name;
  gint64 spec_params;           /* ../shared/specs/face-models.md §1/§6 */
  gint size;                    /* input side for the MACs */
  gint64 spec_macs;
} SpecModel;

static const SpecModel spec_models[] = {
  {NCL_FACE_MODEL_RECOGNITION, 5614592, 150, 270854144},
  {NCL_FACE_MODEL_TINY_DETECTOR, 193321, 416, 0},
  {NCL_FACE_MODEL_SSD, 5535047, 512, 3143007488},
  {NCL_FACE_MODEL_LANDMARKS, 356840, 112, 51571840},
  {NCL_FACE_MODEL_LANDMARKS_TINY, 77224, 112, 28705536},
};

static gchar *
model_path (const gchar * dir, const gchar * name)
{
  g_autofree gchar *base = g_strconcat (name, ".yaml", NULL);

  return g_build_filename (dir, base, NULL);
}

/* Parameter count, layer structure and MACs against the spec. */
static NclModel *
check_model (const gchar * dir, const SpecModel * sm)
{
  g_autofree gchar *path = model_path (dir, sm->name);
  g_autofree gchar *st_base = g_strconcat (sm->name, ".safetensors", NULL);
  g_autofree gchar *st_path = g_build_filename (dir, st_base, NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (NclModel) model = ncl_model_load (path, &error);
  g_autoptr (NclSafetensors) st = NULL;
  gint64 params = 0, folded = 0, want;
  gdouble macs;

  NCL_CHECK_NO_ERROR (error);
  if (model == NULL)
    return NULL;
  st = ncl_safetensors_load (st_path, &error);
  NCL_CHECK_NO_ERROR (error);
  if (st == NULL)
    return NULL;
  for (guint i = 0; i < ncl_safetensors_get_n_tensors (st); i++) {
    const NclSafetensor *t = ncl_safetensors_get_nth (st, i);
    gint64 n = 1;

    for (gint d = 0; d < t->ndim; d++)
      n *= t->shape[d];
    if (strcmp (t->name, "anchors") == 0)
      continue;
    params += n;
    /* recognition: conv bias + scale gamma + beta became one bias;
     * SSD: a depthwise batch norm's 4 vectors became one bias */
    if (strcmp (sm->name, NCL_FACE_MODEL_RECOGNITION) == 0 &&
        g_str_has_suffix (t->name, ".bias"))
      folded += 2 * n;
    if (strcmp (sm->name, NCL_FACE_MODEL_SSD) == 0 &&
        g_str_has_suffix (t->name, ".dw.bias"))
      folded += 3 * n;
  }
  want = sm->spec_params - folded;
  g_print ("%s: %" G_GINT64_FORMAT " parameters (spec %" G_GINT64_FORMAT
      ", %" G_GINT64_FORMAT " folded away)\n", sm->name, params,
      sm->spec_params, folded);
  NCL_CHECK (params == want);
  if (g_strcmp0 (ncl_safetensors_get_metadata (st, "network"), sm->name) != 0)
    NCL_CHECK (!"safetensors __metadata__ network");
  NCL_CHECK (ncl_safetensors_get_metadata (st, "description") != NULL);

  macs = ncl_model_get_macs_per_pixel (model, sm->size, sm->size) *
      sm->size * sm->size;
  g_print ("%s: %.0f MACs at %dx%d\n", sm->name, macs, sm->size, sm->size);
  if (sm->spec_macs > 0)
    NCL_CHECK (fabs (macs - (gdouble) sm->spec_macs) < 0.5);
  else                          /* tiny detector: "198.8 M" at 416 */
    NCL_CHECK (fabs (macs - 198.8e6) < 0.05e6);

  if (strcmp (sm->name, NCL_FACE_MODEL_SSD) == 0) {
    gint ndim = 0;
    gint64 shape[8];

    NCL_CHECK (ncl_model_get_n_outputs (model) == 12);
    NCL_CHECK (g_strcmp0 (ncl_model_get_output_name (model, 0), "box_0") ==
        0);
    NCL_CHECK (g_strcmp0 (ncl_model_get_output_name (model, 11), "cls_5") ==
        0);
    NCL_CHECK (ncl_model_get_constant (model, "anchors", &ndim, shape) &&
        ndim == 2 && shape[0] == 5118 && shape[1] == 4);
  } else {
    NCL_CHECK (ncl_model_get_n_outputs (model) == 1);
  }
  return g_steal_pointer (&model);
}

/* RGB image -> float32 crop (rows y0..y0+h, cols x0..x0+w), HWC */
static gfloat *
crop_hwc (const NclImage * img, gint x0, gint y0, gint w, gint h)
{
  gfloat *out = g_new (gfloat, (gsize) w * h * 3);

  for (gint y = 0; y < h; y++) {
    const guint8 *row = img->planes[0] + (gsize) (y0 + y) * img->strides[0];

    for (gint x = 0; x < w * 3; x++)
      out[(gsize) y * w * 3 + x] = row[x0 * 3 + x];
  }
  return out;
}

typedef enum
{
  NORM_FACE,                    /* (RGB - [122.782, 117.001, 104.298]) / 255 */
  NORM_TINY,                    /* (RGB - [117.001, 114.697, 97.404]) / 255 */
  NORM_SSD,                     /* RGB / 127.5 - 1 */
} Norm;

/* face-api's network input: pad the HWC crop to a square (centred with the
 * odd pixel after, or all at the bottom/right), TF legacy bilinear resize
 * to SxS, normalise, NCHW */
static gfloat *
preprocess (const gfloat * crop, gint w, gint h, gint size, gboolean centred,
    Norm norm)
{
  static const gfloat means[2][3] = {
    {122.782f, 117.001f, 104.298f}, {117.001f, 114.697f, 97.404f}
  };
  gint side = MAX (w, h), diff = ABS (w - h);
  gint after = (gint) floor (diff / 2.0 + 0.5), before = diff - after;
  gint ox = centred && w < h ? before : 0, oy = centred && h < w ? before : 0;
  gfloat *out = g_new (gfloat, (gsize) 3 * size * size);
  gdouble ratio = (gdouble) side / size;

/* pixel (y, x) of the padded square, channel ch */
#define SQ(y, x, ch) ((y) < oy || (y) >= oy + h || (x) < ox || (x) >= ox + w ? \
    0.0 : (gdouble) crop[((gsize) ((y) - oy) * w + ((x) - ox)) * 3 + (ch)])
  for (gint r = 0; r < size; r++) {
    gdouble fy = r * ratio;
    gint y0 = (gint) floor (fy), y1 = MIN (side - 1, (gint) ceil (fy));
    gdouble a = fy - y0;

    for (gint c = 0; c < size; c++) {
      gdouble fx = c * ratio;
      gint x0 = (gint) floor (fx), x1 = MIN (side - 1, (gint) ceil (fx));
      gdouble b = fx - x0;

      for (gint ch = 0; ch < 3; ch++) {
        gdouble p00 = SQ (y0, x0, ch), p01 = SQ (y0, x1, ch);
        gdouble p10 = SQ (y1, x0, ch), p11 = SQ (y1, x1, ch);
        gdouble top = p00 + (p01 - p00) * b;
        gdouble bot = p10 + (p11 - p10) * b;
        gfloat v = (gfloat) (top + (bot - top) * a);

        if (norm == NORM_SSD)
          v = v / 127.5f - 1.0f;
        else
          v = (v - means[norm][ch]) / 255.0f;
        out[((gsize) ch * size + r) * size + c] = v;
      }
    }
  }
#undef SQ
  return out;
}

/* Runs @runner on a (1, 3, size, size) input; @n outputs into @out. */
static gboolean
run_net (NclContext * ctx, NclRunner * runner, const gfloat * in, gint size,
    gfloat * out, gsize n)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (NclTensor) t = ncl_test_tensor (ctx, in, 1, 3, size, size);
  NclTensor *o = NULL;
  g_autofree gfloat *got = NULL;

  if (!ncl_runner_run (runner, t, &o, &error)) {
    g_printerr ("run: %s\n", error->message);
    ncl_test_failures++;
    return FALSE;
  }
  if (ncl_tensor_numel (o) != n) {
    g_printerr ("output has %" G_GSIZE_FORMAT " values, expected %"
        G_GSIZE_FORMAT "\n", ncl_tensor_numel (o), n);
    ncl_test_failures++;
    return FALSE;
  }
  got = ncl_test_download (o);
  memcpy (out, got, n * sizeof (gfloat));
  return TRUE;
}

static gboolean
read_floats (JsonArray * a, gfloat * out, guint n)
{
  if (a == NULL || json_array_get_length (a) != n)
    return FALSE;
  for (guint i = 0; i < n; i++)
    out[i] = json_array_get_double_element (a, i);
  return TRUE;
}

static gdouble max_lm_err = 0, max_tiny_lm_err = 0, max_desc_err = 0;

/* 68 landmarks on the crop of @box, relative to the box (face-api's
 * "unshifted"), compared with @want (68 x [x, y]). */
static void
check_landmarks (NclContext * ctx, NclRunner * runner, const NclImage * img,
    JsonArray * box, JsonArray * want, const gchar * label, gdouble * max_err)
{
  gdouble bx = json_array_get_double_element (box, 0);
  gdouble by = json_array_get_double_element (box, 1);
  gdouble bw = json_array_get_double_element (box, 2);
  gdouble bh = json_array_get_double_element (box, 3);
  gdouble cx = MAX (bx, 0), cy = MAX (by, 0);
  gdouble cw = MIN (bx + bw - cx, img->width - cx);
  gdouble ch = MIN (by + bh - cy, img->height - cy);
  gint x0 = (gint) floor (cx), y0 = (gint) floor (cy);
  gint w = (gint) floor (cw), h = (gint) floor (ch);
  g_autofree gfloat *crop = NULL, *in = NULL;
  gfloat out[136];
  gdouble s, sw, sh, pad_x, pad_y, worst = 0;

  if (want == NULL || json_array_get_length (want) != 68 || w <= 0 || h <= 0) {
    g_printerr ("%s: bad golden entry\n", label);
    ncl_test_failures++;
    return;
  }
  crop = crop_hwc (img, x0, y0, w, h);
  in = preprocess (crop, w, h, 112, TRUE, NORM_FACE);
  if (!run_net (ctx, runner, in, 112, out, 136))
    return;
  s = 112.0 / MAX (w, h);
  sw = w * s;
  sh = h * s;
  pad_x = sw < sh ? (sh - sw) / 2 : 0;
  pad_y = sh < sw ? (sw - sh) / 2 : 0;
  for (guint i = 0; i < 68; i++) {
    JsonArray *p = json_array_get_array_element (want, i);
    gdouble x = (out[2 * i] * 112.0 - pad_x) / sw * w;
    gdouble y = (out[2 * i + 1] * 112.0 - pad_y) / sh * h;

    worst = MAX (worst, fabs (x - json_array_get_double_element (p, 0)));
    worst = MAX (worst, fabs (y - json_array_get_double_element (p, 1)));
  }
  *max_err = MAX (*max_err, worst);
  /* face-api's own cpu and wasm backends differ by ~5e-5 px */
  if (worst > 1e-2) {
    g_printerr ("%s: landmarks off by %.4g px (limit 0.01)\n", label, worst);
    ncl_test_failures++;
  }
}

/* ---- detectors: raw outputs decoded per spec 4 and 5 ------------------- */

typedef struct
{
  gdouble score;
  gdouble x0, y0, x1, y1;       /* corners */
} Det;

static gint
det_by_score (gconstpointer a, gconstpointer b)
{
  gdouble sa = ((const Det *) a)->score, sb = ((const Det *) b)->score;

  return sa < sb ? 1 : sa > sb ? -1 : 0;
}

static gdouble
det_iou (const Det * a, const Det * b)
{
  gdouble ax0 = MIN (a->x0, a->x1), ax1 = MAX (a->x0, a->x1);
  gdouble ay0 = MIN (a->y0, a->y1), ay1 = MAX (a->y0, a->y1);
  gdouble bx0 = MIN (b->x0, b->x1), bx1 = MAX (b->x0, b->x1);
  gdouble by0 = MIN (b->y0, b->y1), by1 = MAX (b->y0, b->y1);
  gdouble area_a = (ax1 - ax0) * (ay1 - ay0);
  gdouble area_b = (bx1 - bx0) * (by1 - by0);
  gdouble iw = MAX (0.0, MIN (ax1, bx1) - MAX (ax0, bx0));
  gdouble ih = MAX (0.0, MIN (ay1, by1) - MAX (ay0, by0));

  if (area_a <= 0 || area_b <= 0)
    return 0;
  return iw * ih / (area_a + area_b - iw * ih);
}

/* Greedy NMS on @cands (sorted here), at most @max kept. */
static GArray *
nms (GArray * cands, gdouble iou_limit, guint max)
{
  GArray *kept = g_array_new (FALSE, FALSE, sizeof (Det));

  g_array_sort (cands, det_by_score);
  for (guint i = 0; i < cands->len && kept->len < max; i++) {
    const Det *d = &g_array_index (cands, Det, i);
    gboolean keep = TRUE;

    for (guint j = 0; keep && j < kept->len; j++)
      keep = det_iou (d, &g_array_index (kept, Det, j)) <= iou_limit;
    if (keep)
      g_array_append_val (kept, *d);
  }
  return kept;
}

static gdouble
sigmoid (gdouble v)
{
  return 1.0 / (1.0 + exp (-v));
}

/* Compares detections (pixel corners) with golden [{score, box: [x, y, w,
 * h]}]; returns the worst box error in px. */
static gdouble
compare_dets (const gchar * label, GArray * got, JsonArray * want)
{
  gdouble worst = 0;

  if (want == NULL || got->len != json_array_get_length (want)) {
    g_printerr ("%s: %u detections, expected %u\n", label, got->len,
        want ? json_array_get_length (want) : 0);
    ncl_test_failures++;
    return 0;
  }
  for (guint i = 0; i < got->len; i++) {
    const Det *d = &g_array_index (got, Det, i);
    JsonObject *o = json_array_get_object_element (want, i);
    JsonArray *box = json_object_get_array_member (o, "box");
    gdouble v[4] = { d->x0, d->y0, d->x1 - d->x0, d->y1 - d->y0 };
    gdouble ds = fabs (d->score - json_object_get_double_member (o,
            "score"));

    for (guint k = 0; k < 4; k++)
      worst = MAX (worst, fabs (v[k] - json_array_get_double_element (box,
                  k)));
    if (ds > 1e-4) {
      g_printerr ("%s: detection %u: score off by %.3g\n", label, i, ds);
      ncl_test_failures++;
    }
  }
  if (worst > 1e-2) {
    g_printerr ("%s: boxes off by %.4g px (limit 0.01)\n", label, worst);
    ncl_test_failures++;
  }
  return worst;
}

static const gdouble tiny_anchors[5][2] = {
  {1.603231, 2.094468}, {6.041143, 7.080126}, {2.882459, 3.518061},
  {4.266906, 5.178857}, {9.041765, 10.66308},
};

/* tiny_face_detector at S = 416 on the whole image (spec 4) */
static gdouble
check_tiny (NclContext * ctx, NclRunner * runner, const NclImage * img,
    const gfloat * rgb, JsonArray * want, const gchar * label)
{
  const gint size = 416, g = size / 32, plane = g * g;
  gint W = img->width, H = img->height;
  g_autofree gfloat *in = preprocess (rgb, W, H, size, FALSE, NORM_TINY);
  g_autofree gfloat *out = g_new (gfloat, 25 * plane);
  g_autoptr (GArray) cands = g_array_new (FALSE, FALSE, sizeof (Det));
  g_autoptr (GArray) kept = NULL;
  gdouble k = (gdouble) size / MAX (W, H);
  gdouble fx = size / floor (W * k + 0.5), fy = size / floor (H * k + 0.5);

  if (!run_net (ctx, runner, in, size, out, 25 * plane))
    return 0;
  for (gint r = 0; r < g; r++)
    for (gint c = 0; c < g; c++)
      for (gint a = 0; a < 5; a++) {
        const gfloat *t = out + a * 5 * plane + r * g + c;
        gdouble score = sigmoid (t[4 * plane]);
        gdouble cx, cy, bw, bh;
        Det d;

        if (!(score > 0.5))
          continue;
        cx = (c + sigmoid (t[0])) / g * fx;
        cy = (r + sigmoid (t[plane])) / g * fy;
        bw = exp (t[2 * plane]) * tiny_anchors[a][0] / g * fx;
        bh = exp (t[3 * plane]) * tiny_anchors[a][1] / g * fy;
        d.score = score;
        d.x0 = (cx - bw / 2) * W;
        d.y0 = (cy - bh / 2) * H;
        d.x1 = d.x0 + bw * W;
        d.y1 = d.y0 + bh * H;
        g_array_append_val (cands, d);
      }
  kept = nms (cands, 0.4, G_MAXUINT);
  return compare_dets (label, kept, want);
}

/* ssd_mobilenetv1 on the whole image, minConfidence 0.3 (spec 5) */
static gdouble
check_ssd (NclContext * ctx, NclRunner * runner, NclModel * model,
    const NclImage * img, const gfloat * rgb, JsonArray * want,
    const gchar * label)
{
  gint W = img->width, H = img->height;
  g_autofree gfloat *in = preprocess (rgb, W, H, 512, FALSE, NORM_SSD);
  g_autoptr (GArray) cands = g_array_new (FALSE, FALSE, sizeof (Det));
  g_autoptr (GArray) kept = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (NclTensor) t = ncl_test_tensor (ctx, in, 1, 3, 512, 512);
  const gfloat *anchors = ncl_model_get_constant (model, "anchors", NULL,
      NULL);
  gdouble k = 512.0 / MAX (W, H);
  gdouble sx = 512.0 / floor (W * k + 0.5) * W;
  gdouble sy = 512.0 / floor (H * k + 0.5) * H;
  NclTensor *o = NULL;
  gint idx = 0;

  if (anchors == NULL || !ncl_runner_run (runner, t, &o, &error)) {
    g_printerr ("%s: %s\n", label, error ? error->message : "no anchors");
    ncl_test_failures++;
    return 0;
  }
  for (guint m = 0; m < 6; m++) {
    NclTensor *bt = ncl_runner_get_output (runner, 2 * m);
    NclTensor *ct = ncl_runner_get_output (runner, 2 * m + 1);
    g_autofree gfloat *box = ncl_test_download (bt);
    g_autofree gfloat *cls = ncl_test_download (ct);
    gint g = bt->h, na = bt->c / 4, plane = g * g;

    NCL_CHECK (bt->w == g && ct->h == g && ct->c == 3 * na);
    for (gint y = 0; y < g; y++)
      for (gint x = 0; x < g; x++)
        for (gint a = 0; a < na; a++, idx++) {
          const gfloat *an = anchors + 4 * idx;
          const gfloat *e = box + a * 4 * plane + y * g + x;
          gdouble score = sigmoid (cls[(a * 3 + 1) * plane + y * g + x]);
          gdouble ha = an[2] - an[0], wa = an[3] - an[1];
          gdouble yc, xc, h, w;
          Det d;

          if (!(score > 0.3))
            continue;
          yc = e[0] / 10.0 * ha + (an[0] + ha / 2);
          xc = e[plane] / 10.0 * wa + (an[1] + wa / 2);
          h = exp (e[2 * plane] / 5.0) * ha;
          w = exp (e[3 * plane] / 5.0) * wa;
          d.score = score;
          d.y0 = yc - h / 2;
          d.x0 = xc - w / 2;
          d.y1 = yc + h / 2;
          d.x1 = xc + w / 2;
          g_array_append_val (cands, d);
        }
  }
  NCL_CHECK (idx == 5118);
  kept = nms (cands, 0.5, 100);
  for (guint i = 0; i < kept->len; i++) {
    Det *d = &g_array_index (kept, Det, i);

    d->x0 = MAX (d->x0, 0.0) * sx;
    d->y0 = MAX (d->y0, 0.0) * sy;
    d->x1 = MIN (d->x1, 1.0) * sx;
    d->y1 = MIN (d->y1, 1.0) * sy;
  }
  return compare_dets (label, kept, want);
}

static void
check_golden (NclContext * ctx, NclModel * rec, NclModel * lm,
    NclModel * lm_tiny, NclModel * tiny_det, NclModel * ssd)
{
  g_autofree gchar *golden_dir = ncl_test_shared_path ("data/faces/golden");
  g_autofree gchar *json_path = g_build_filename (golden_dir, "expected.json",
      NULL);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (NclRunner) rec_run = NULL, lm_run = NULL, tiny_run = NULL;
  g_autoptr (NclRunner) det_run = NULL, ssd_run = NULL;
  JsonObject *root;
  guint n_faces = 0;
  gdouble max_tiny_box = 0, max_ssd_box = 0;

  if (!json_parser_load_from_file (parser, json_path, &error)) {
    g_printerr ("%s: %s\n", json_path, error->message);
    ncl_test_failures++;
    return;
  }
  root = json_node_get_object (json_parser_get_root (parser));
  rec_run = ncl_runner_new (rec, ctx, &error);
  NCL_CHECK_NO_ERROR (error);
  lm_run = ncl_runner_new (lm, ctx, &error);
  NCL_CHECK_NO_ERROR (error);
  tiny_run = ncl_runner_new (lm_tiny, ctx, &error);
  NCL_CHECK_NO_ERROR (error);
  det_run = ncl_runner_new (tiny_det, ctx, &error);
  NCL_CHECK_NO_ERROR (error);
  ssd_run = ncl_runner_new (ssd, ctx, &error);
  NCL_CHECK_NO_ERROR (error);
  if (rec_run == NULL || lm_run == NULL || tiny_run == NULL ||
      det_run == NULL || ssd_run == NULL)
    return;

  for (gint n = 1; n <= 6; n++) {
    g_autofree gchar *key = g_strdup_printf ("%d", n);
    g_autofree gchar *png_base = g_strdup_printf ("sample%d.png", n);
    g_autofree gchar *png = g_build_filename (golden_dir, png_base, NULL);
    g_autofree gfloat *crop = NULL, *in = NULL, *rgb = NULL;
    g_autofree gchar *tiny_label = g_strdup_printf ("sample%d tiny416", n);
    g_autofree gchar *ssd_label = g_strdup_printf ("sample%d ssd_raw", n);
    JsonObject *e = json_object_get_object_member (root, key);
    JsonArray *rect, *faces, *tinylm;
    NclImage *img;
    gfloat want[128], got[128];
    gint r0, c0, h, w;

    if (e == NULL) {
      g_printerr ("expected.json: no entry '%s'\n", key);
      ncl_test_failures++;
      continue;
    }
    img = ncl_image_load (png, &error);
    NCL_CHECK_NO_ERROR (error);
    if (img == NULL)
      continue;
    NCL_CHECK (img->format == NCL_FORMAT_RGB);

    /* the detectors on the whole image */
    rgb = crop_hwc (img, 0, 0, img->width, img->height);
    max_tiny_box = MAX (max_tiny_box, check_tiny (ctx, det_run, img, rgb,
            json_object_get_array_member (e, "tiny416"), tiny_label));
    max_ssd_box = MAX (max_ssd_box, check_ssd (ctx, ssd_run, ssd, img, rgb,
            json_object_get_array_member (e, "ssd_raw"), ssd_label));

    /* descriptor of the fixed crop: rows crop[0]..+crop[2], cols
     * crop[1]..+crop[3] */
    rect = json_object_get_array_member (e, "crop");
    r0 = json_array_get_int_element (rect, 0);
    c0 = json_array_get_int_element (rect, 1);
    h = json_array_get_int_element (rect, 2);
    w = json_array_get_int_element (rect, 3);
    NCL_CHECK (read_floats (json_object_get_array_member (e,
                "crop_descriptor"), want, 128));
    crop = crop_hwc (img, c0, r0, w, h);
    in = preprocess (crop, w, h, 150, TRUE, NORM_FACE);
    if (run_net (ctx, rec_run, in, 150, got, 128)) {
      g_autofree gchar *label = g_strdup_printf ("sample%d crop descriptor",
          n);

      for (guint i = 0; i < 128; i++)
        max_desc_err = MAX (max_desc_err, fabs (got[i] - want[i]));
      ncl_test_compare (label, got, want, 128, 1e-4f, 0.0f);
    }

    /* landmarks on each ssd box, full and tiny nets */
    faces = json_object_get_array_member (e, "ssd");
    tinylm = json_object_get_array_member (e, "tinylm");
    NCL_CHECK (faces && tinylm &&
        json_array_get_length (faces) == json_array_get_length (tinylm));
    for (guint f = 0; faces && f < json_array_get_length (faces); f++) {
      JsonObject *face = json_array_get_object_element (faces, f);
      JsonArray *box = json_object_get_array_member (face, "box");
      g_autofree gchar *label = g_strdup_printf ("sample%d face %u", n, f);
      g_autofree gchar *tlabel = g_strdup_printf ("sample%d face %u (tiny)",
          n, f);

      check_landmarks (ctx, lm_run, img, box,
          json_object_get_array_member (face, "unshifted"), label,
          &max_lm_err);
      if (tinylm && f < json_array_get_length (tinylm))
        check_landmarks (ctx, tiny_run, img, box,
            json_array_get_array_element (tinylm, f), tlabel,
            &max_tiny_lm_err);
      n_faces++;
    }
    ncl_image_free (img);
  }
  g_print ("golden: 6 crop descriptors, max |diff| %.3g; %u faces: "
      "landmarks max %.3g px, tiny landmarks max %.3g px; detector boxes: "
      "tiny416 max %.3g px, ssd max %.3g px\n", max_desc_err, n_faces,
      max_lm_err, max_tiny_lm_err, max_tiny_box, max_ssd_box);
  NCL_CHECK (n_faces >= 20);
}

int
main (void)
{
  g_autofree gchar *tmp = g_dir_make_tmp ("ncl-tfjs-XXXXXX", NULL);
  const gchar *dir = g_getenv ("NEURALCL_MODEL_PATH");
  g_autoptr (NclModel) rec = NULL, lm = NULL, lm_tiny = NULL;
  g_autoptr (NclModel) tiny_det = NULL, ssd = NULL;
  g_autoptr (NclContext) ctx = NULL;
  gboolean have_all = TRUE;

  g_assert (tmp != NULL);
  test_decode (tmp);
  test_errors (tmp);
  {
    g_autofree gchar *m = g_build_filename (tmp,
        "syn-weights_manifest.json", NULL);
    g_autofree gchar *b = g_build_filename (tmp, "syn.bin", NULL);

    g_unlink (m);
    g_unlink (b);
    g_rmdir (tmp);
  }
  if (ncl_test_failures > 0)
    return ncl_test_finish ();

  /* NEURALCL_MODEL_PATH may be a list: the first directory is fetch's */
  if (dir != NULL && strchr (dir, ':') != NULL) {
    g_auto (GStrv) parts = g_strsplit (dir, ":", 2);
    dir = g_intern_string (parts[0]);
  }
  for (guint i = 0; dir != NULL && i < G_N_ELEMENTS (spec_models); i++) {
    g_autofree gchar *p = model_path (dir, spec_models[i].name);

    have_all = have_all && g_file_test (p, G_FILE_TEST_IS_REGULAR);
  }
  if (dir == NULL || !have_all) {
    g_print ("SKIP: converted face models not found in NEURALCL_MODEL_PATH "
        "(%s); run `neuralcl models fetch --dest DIR` first\n",
        dir ? dir : "unset");
    return NCL_TEST_SKIP;
  }

  for (guint i = 0; i < G_N_ELEMENTS (spec_models); i++) {
    g_autoptr (NclModel) m = check_model (dir, &spec_models[i]);

    if (strcmp (spec_models[i].name, NCL_FACE_MODEL_RECOGNITION) == 0)
      rec = g_steal_pointer (&m);
    else if (strcmp (spec_models[i].name, NCL_FACE_MODEL_LANDMARKS) == 0)
      lm = g_steal_pointer (&m);
    else if (strcmp (spec_models[i].name, NCL_FACE_MODEL_LANDMARKS_TINY) ==
        0)
      lm_tiny = g_steal_pointer (&m);
    else if (strcmp (spec_models[i].name, NCL_FACE_MODEL_TINY_DETECTOR) ==
        0)
      tiny_det = g_steal_pointer (&m);
    else
      ssd = g_steal_pointer (&m);
  }
  if (rec == NULL || lm == NULL || lm_tiny == NULL || tiny_det == NULL ||
      ssd == NULL)
    return ncl_test_finish ();

  ctx = ncl_test_context ();
  check_golden (ctx, rec, lm, lm_tiny, tiny_det, ssd);
  return ncl_test_finish ();
}
