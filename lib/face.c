/* face.c: the face engine.  One uploaded frame per set_image; the detector
 * input, landmark crops and recognition chips are cut from it on the device
 * (face-align.c, kernels/face.cl); each network runs once per call, batched
 * over the faces, and its output is downloaded once.  Decoding runs on the
 * host (face-detect.c).  docs/faces.md walks through the pipeline. */

#include "face-private.h"

#include <neuralcl/error.h>

#include "config.h"

#include <math.h>
#include <string.h>

#define SSD_MAX_RESULTS 100

/* The last detection pass (docs/faces.md): the border for each detector
 * and the tiny detector's input size. */
#define RETRY_BORDER_TINY 1.0
#define RETRY_BORDER_SSD 0.5
#define RETRY_TINY_SIZE 224

/* ---- settings ---------------------------------------------------------- */

/* Measured on the developer photos (docs/faces.md). */
#define DEFAULT_BORDER 0.25
#define DEFAULT_ALIGN NCL_FACE_ALIGN_WARP

void
ncl_face_settings_init (NclFaceSettings * s)
{
  memset (s, 0, sizeof (*s));
  s->detector = NCL_FACE_DETECTOR_TINY;
  s->detector_size = 416;
  s->min_score = 0.5;
  s->border = DEFAULT_BORDER;
  s->tiny_landmarks = FALSE;
  s->align = DEFAULT_ALIGN;
  s->max_faces = 0;
}

const gchar *
ncl_face_detector_to_string (NclFaceDetector d)
{
  switch (d) {
    case NCL_FACE_DETECTOR_TINY:
      return "tiny";
    case NCL_FACE_DETECTOR_SSD:
      return "ssd";
  }
  return NULL;
}

gboolean
ncl_face_detector_from_string (const gchar * s, NclFaceDetector * d)
{
  NclFaceDetector v;

  if (g_strcmp0 (s, "tiny") == 0)
    v = NCL_FACE_DETECTOR_TINY;
  else if (g_strcmp0 (s, "ssd") == 0)
    v = NCL_FACE_DETECTOR_SSD;
  else
    return FALSE;
  if (d != NULL)
    *d = v;
  return TRUE;
}

const gchar *
ncl_face_align_to_string (NclFaceAlign a)
{
  switch (a) {
    case NCL_FACE_ALIGN_WARP:
      return "warp";
    case NCL_FACE_ALIGN_CROP:
      return "crop";
  }
  return NULL;
}

gboolean
ncl_face_align_from_string (const gchar * s, NclFaceAlign * a)
{
  NclFaceAlign v;

  if (g_strcmp0 (s, "warp") == 0)
    v = NCL_FACE_ALIGN_WARP;
  else if (g_strcmp0 (s, "crop") == 0)
    v = NCL_FACE_ALIGN_CROP;
  else
    return FALSE;
  if (a != NULL)
    *a = v;
  return TRUE;
}

static gboolean
check_settings (const NclFaceSettings * s, GError ** error)
{
  const gchar *bad = NULL;
  g_autofree gchar *value = NULL;

  if (ncl_face_detector_to_string (s->detector) == NULL) {
    bad = "detector";
    value = g_strdup_printf ("%d", s->detector);
  } else if (s->detector == NCL_FACE_DETECTOR_TINY &&
      (s->detector_size < 32 || s->detector_size % 32 != 0 ||
          s->detector_size > 2048)) {
    bad = "detector size (a multiple of 32, 32..2048)";
    value = g_strdup_printf ("%d", s->detector_size);
  } else if (!(s->min_score >= 0.0 && s->min_score < 1.0)) {
    bad = "minimum score (0 <= score < 1)";
    value = g_strdup_printf ("%g", s->min_score);
  } else if (!(s->border >= 0.0 && s->border <= 4.0)) {
    bad = "border (0..4)";
    value = g_strdup_printf ("%g", s->border);
  } else if (ncl_face_align_to_string (s->align) == NULL) {
    bad = "alignment";
    value = g_strdup_printf ("%d", s->align);
  } else if (s->max_faces < 0) {
    bad = "maximum number of faces";
    value = g_strdup_printf ("%d", s->max_faces);
  }
  if (bad != NULL) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_CONFIG,
        "face settings: invalid %s: %s", bad, value);
    return FALSE;
  }
  return TRUE;
}

/* ---- model files ------------------------------------------------------- */

gchar **
ncl_face_get_model_search_path (void)
{
  GPtrArray *dirs = g_ptr_array_new ();
  const gchar *env = g_getenv ("NEURALCL_MODEL_PATH");

  if (env != NULL && *env != '\0') {
    g_auto (GStrv) parts = g_strsplit (env, G_SEARCHPATH_SEPARATOR_S, -1);

    for (guint i = 0; parts[i]; i++)
      if (*parts[i])
        g_ptr_array_add (dirs, g_strdup (parts[i]));
  }
  g_ptr_array_add (dirs, g_build_filename (g_get_user_data_dir (), "neuralcl",
          "models", NULL));
  g_ptr_array_add (dirs, g_build_filename (NCL_DATADIR, "models", NULL));
  g_ptr_array_add (dirs, NULL);
  return (gchar **) g_ptr_array_free (dirs, FALSE);
}

gchar *
ncl_face_find_model (const gchar * name, GError ** error)
{
  g_auto (GStrv) dirs = ncl_face_get_model_search_path ();
  g_autofree gchar *file = NULL;
  g_autofree gchar *joined = NULL;

  if (name == NULL || *name == '\0' || strchr (name, '/') != NULL) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_NOT_FOUND,
        "face model name '%s' is not a plain name", name ? name : "");
    return NULL;
  }
  file = g_strconcat (name, ".yaml", NULL);
  for (guint i = 0; dirs[i]; i++) {
    gchar *path = g_build_filename (dirs[i], file, NULL);

    if (g_file_test (path, G_FILE_TEST_IS_REGULAR))
      return path;
    g_free (path);
  }
  joined = g_strjoinv (G_SEARCHPATH_SEPARATOR_S, dirs);
  g_set_error (error, NCL_ERROR, NCL_ERROR_NOT_FOUND,
      "face model '%s' not found (looked for %s in %s); run `neuralcl "
      "models fetch` or set NEURALCL_MODEL_PATH", name, file, joined);
  return NULL;
}

/* ---- engine ------------------------------------------------------------ */

struct _NclFaceEngine
{
  NclFaceSettings settings;
  NclContext *ctx;              /* owned reference */
  NclModel *det_model, *lm_model, *rec_model;
  NclRunner *det, *lm, *rec;
  NclFrameIO *io;
  NclTensor *frame;             /* (1, 3, H, W), 0..255 */
  NclTensor *det_in;            /* (1, 3, S, S) */
  NclTensor *lm_in;             /* (n, 3, 112, 112) */
  NclTensor *rec_in;            /* (n, 3, 150, 150) */
  const gfloat *anchors;        /* SSD [5118, 4], owned by det_model */
  gint width, height;           /* of the last frame, 0 before one */
  gchar *fingerprint;
};

void
ncl_face_engine_free (NclFaceEngine * e)
{
  if (e == NULL)
    return;
  ncl_tensor_free (e->rec_in);
  ncl_tensor_free (e->lm_in);
  ncl_tensor_free (e->det_in);
  ncl_tensor_free (e->frame);
  ncl_frame_io_free (e->io);
  ncl_runner_free (e->rec);
  ncl_runner_free (e->lm);
  ncl_runner_free (e->det);
  ncl_model_unref (e->rec_model);
  ncl_model_unref (e->lm_model);
  ncl_model_unref (e->det_model);
  ncl_context_unref (e->ctx);
  g_free (e->fingerprint);
  g_free (e);
}

static gboolean
load_model (NclFaceEngine * e, const gchar * name, NclModel ** model,
    NclRunner ** runner, GError ** error)
{
  g_autofree gchar *path = ncl_face_find_model (name, error);

  if (path == NULL)
    return FALSE;
  *model = ncl_model_load (path, error);
  if (*model == NULL)
    return FALSE;
  if (ncl_model_get_input_channels (*model) != 3) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
        "%s: takes %d input channels, a face model takes 3 (RGB)", path,
        ncl_model_get_input_channels (*model));
    return FALSE;
  }
  *runner = ncl_runner_new (*model, e->ctx, error);
  return *runner != NULL;
}

static gboolean
check_ssd_model (NclFaceEngine * e, GError ** error)
{
  gint ndim = 0;
  gint64 shape[8] = { 0 };

  e->anchors = ncl_model_get_constant (e->det_model, "anchors", &ndim, shape);
  if (e->anchors == NULL || !((ndim == 2 && shape[0] == NCL_FACE_SSD_ANCHORS
              && shape[1] == 4) || (ndim == 3 && shape[0] == 1
              && shape[1] == NCL_FACE_SSD_ANCHORS && shape[2] == 4))) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
        "%s: constant 'anchors': %s, expected [%d, 4]",
        ncl_model_get_path (e->det_model),
        e->anchors ? "wrong shape" : "missing", NCL_FACE_SSD_ANCHORS);
    return FALSE;
  }
  if (ncl_model_get_n_outputs (e->det_model) != 12) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
        "%s: %u outputs, the SSD has 12 (box and class predictor for 6 "
        "feature maps)", ncl_model_get_path (e->det_model),
        ncl_model_get_n_outputs (e->det_model));
    return FALSE;
  }
  return TRUE;
}

static gchar *
compute_fingerprint (NclFaceEngine * e)
{
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autofree gchar *text = g_strdup_printf ("recognition %s\nlandmarks %s\n"
      "detector %s\nalign %s\ntiny_landmarks %d\n%s\n",
      ncl_model_get_fingerprint (e->rec_model),
      ncl_model_get_fingerprint (e->lm_model),
      ncl_model_get_fingerprint (e->det_model),
      ncl_face_align_to_string (e->settings.align),
      e->settings.tiny_landmarks ? 1 : 0, NCL_FACE_PREPROCESS_VERSION);

  g_checksum_update (sum, (const guchar *) text, strlen (text));
  return g_strdup (g_checksum_get_string (sum));
}

NclFaceEngine *
ncl_face_engine_new (NclContext * ctx, const NclFaceSettings * settings,
    GError ** error)
{
  g_autoptr (NclFaceEngine) e = NULL;
  NclFaceSettings defaults;

  if (settings == NULL) {
    ncl_face_settings_init (&defaults);
    settings = &defaults;
  }
  if (!check_settings (settings, error))
    return NULL;
  e = g_new0 (NclFaceEngine, 1);
  e->settings = *settings;
  e->ctx = ncl_context_ref (ctx);
  if (!load_model (e, settings->detector == NCL_FACE_DETECTOR_SSD ?
          NCL_FACE_MODEL_SSD : NCL_FACE_MODEL_TINY_DETECTOR, &e->det_model,
          &e->det, error)
      || !load_model (e, settings->tiny_landmarks ?
          NCL_FACE_MODEL_LANDMARKS_TINY : NCL_FACE_MODEL_LANDMARKS,
          &e->lm_model, &e->lm, error)
      || !load_model (e, NCL_FACE_MODEL_RECOGNITION, &e->rec_model, &e->rec,
          error))
    return NULL;
  if (settings->detector == NCL_FACE_DETECTOR_SSD && !check_ssd_model (e,
          error))
    return NULL;
  e->io = ncl_frame_io_new (ctx);
  if (!(e->frame = ncl_tensor_new (ctx, 1, 3, 1, 1, error))
      || !(e->det_in = ncl_tensor_new (ctx, 1, 3, 32, 32, error))
      || !(e->lm_in = ncl_tensor_new (ctx, 1, 3, NCL_FACE_LANDMARK_SIZE,
              NCL_FACE_LANDMARK_SIZE, error))
      || !(e->rec_in = ncl_tensor_new (ctx, 1, 3, NCL_FACE_CHIP_SIZE,
              NCL_FACE_CHIP_SIZE, error)))
    return NULL;
  e->fingerprint = compute_fingerprint (e);
  return g_steal_pointer (&e);
}

const NclFaceSettings *
ncl_face_engine_get_settings (const NclFaceEngine * e)
{
  return &e->settings;
}

const gchar *
ncl_face_engine_get_fingerprint (const NclFaceEngine * e)
{
  return e->fingerprint;
}

gboolean
ncl_face_engine_set_image (NclFaceEngine * e, const NclImage * img,
    GError ** error)
{
  e->width = e->height = 0;
  if (!ncl_frame_io_upload (e->io, img, e->frame, error))
    return FALSE;
  e->width = img->width;
  e->height = img->height;
  return TRUE;
}

static gboolean
check_image (NclFaceEngine * e, GError ** error)
{
  if (e->width <= 0) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_FAILED,
        "face engine: no image (call ncl_face_engine_set_image first)");
    return FALSE;
  }
  return TRUE;
}

/* Checks a network output against (n, c, h, w); -1 accepts any. */
static gboolean
check_output (NclModel * model, const NclTensor * t, guint index, gint n,
    gint c, gint h, gint w, GError ** error)
{
  if (t != NULL && (n < 0 || t->n == n) && (c < 0 || t->c == c) &&
      (h < 0 || t->h == h) && (w < 0 || t->w == w))
    return TRUE;
  g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
      "%s: output %u is (%d, %d, %d, %d), expected (%d, %d, %d, %d) "
      "(-1: any)", ncl_model_get_path (model), index, t ? t->n : 0,
      t ? t->c : 0, t ? t->h : 0, t ? t->w : 0, n, c, h, w);
  return FALSE;
}

/* Downloads several tensors with a single wait at the end. */
static gboolean
download_all (NclContext * ctx, NclTensor ** t, gfloat ** dst, guint n,
    GError ** error)
{
  cl_command_queue q = ncl_context_get_queue (ctx);

  for (guint i = 0; i < n; i++) {
    cl_int st = clEnqueueReadBuffer (q, t[i]->buf, i + 1 == n ? CL_TRUE :
        CL_FALSE, 0, ncl_tensor_numel (t[i]) * sizeof (gfloat), dst[i], 0,
        NULL, NULL);

    if (st != CL_SUCCESS) {
      ncl_context_finish (ctx, NULL);
      g_set_error (error, NCL_ERROR, NCL_ERROR_OPENCL,
          "face engine: output download: %s", ncl_cl_status_name (st));
      return FALSE;
    }
  }
  return TRUE;
}

static gboolean
detect_tiny (NclFaceEngine * e, gint border, gint S, GArray * faces,
    GError ** error)
{
  gint g = S / 32;
  g_autofree gfloat *out = NULL;
  NclTensor *o;

  if (!ncl_face_detector_input (e->ctx, e->frame, border, S,
          &ncl_face_norm_tiny, e->det_in, error)
      || !ncl_runner_run (e->det, e->det_in, &o, error)
      || !check_output (e->det_model, o, 0, 1, 25, g, g, error))
    return FALSE;
  out = g_new (gfloat, ncl_tensor_numel (o));
  if (!ncl_tensor_download (o, out, error))
    return FALSE;
  ncl_face_decode_tiny (out, g, S, e->width + 2 * border,
      e->height + 2 * border, e->settings.min_score, faces);
  return TRUE;
}

static gboolean
detect_ssd (NclFaceEngine * e, gint border, GArray * faces, GError ** error)
{
  NclTensor *t[12];
  gfloat *dst[12];
  g_autofree gfloat *host = NULL;
  NclFaceSsdOutput so;
  NclTensor *o;
  gsize total = 0, off = 0;
  gint n_anchors = 0;

  if (!ncl_face_detector_input (e->ctx, e->frame, border, NCL_FACE_SSD_SIZE,
          &ncl_face_norm_ssd, e->det_in, error)
      || !ncl_runner_run (e->det, e->det_in, &o, error))
    return FALSE;
  for (guint i = 0; i < 12; i++) {
    t[i] = ncl_runner_get_output (e->det, i);
    if (!check_output (e->det_model, t[i], i, 1, -1, -1, -1, error))
      return FALSE;
    if (t[i]->h != t[i]->w || t[i]->c % (i % 2 ? 3 : 4) != 0) {
      g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
          "%s: output %u is (1, %d, %d, %d): expected a square map of %s",
          ncl_model_get_path (e->det_model), i, t[i]->c, t[i]->h, t[i]->w,
          i % 2 ? "3 class logits per anchor" : "4 box values per anchor");
      return FALSE;
    }
    total += ncl_tensor_numel (t[i]);
  }
  for (gint k = 0; k < 6; k++) {
    so.grid[k] = t[2 * k]->h;
    so.anchors[k] = t[2 * k]->c / 4;
    if (t[2 * k + 1]->h != so.grid[k] || t[2 * k + 1]->c != 3 * so.anchors[k]) {
      g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
          "%s: class output %d (%d, %d, %d) does not match box output "
          "(%d, %d, %d)", ncl_model_get_path (e->det_model), 2 * k + 1,
          t[2 * k + 1]->c, t[2 * k + 1]->h, t[2 * k + 1]->w, t[2 * k]->c,
          t[2 * k]->h, t[2 * k]->w);
      return FALSE;
    }
    n_anchors += so.grid[k] * so.grid[k] * so.anchors[k];
  }
  if (n_anchors != NCL_FACE_SSD_ANCHORS) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
        "%s: the outputs hold %d boxes, the anchors %d",
        ncl_model_get_path (e->det_model), n_anchors, NCL_FACE_SSD_ANCHORS);
    return FALSE;
  }
  host = g_new (gfloat, total);
  for (guint i = 0; i < 12; i++) {
    dst[i] = host + off;
    off += ncl_tensor_numel (t[i]);
  }
  if (!download_all (e->ctx, t, dst, 12, error))
    return FALSE;
  for (gint k = 0; k < 6; k++) {
    so.boxes[k] = dst[2 * k];
    so.classes[k] = dst[2 * k + 1];
  }
  ncl_face_decode_ssd (&so, e->anchors, e->width + 2 * border,
      e->height + 2 * border, e->settings.min_score, SSD_MAX_RESULTS, faces);
  return TRUE;
}

/* One detection pass over the frame inside a zero border of @border
 * (a fraction of the longer side); boxes in frame pixels. */
static gboolean
detect_pass (NclFaceEngine * e, gdouble border, gint tiny_size,
    GArray * faces, GError ** error)
{
  guint first = faces->len;
  gint px = (gint) ncl_face_js_round (border * MAX (e->width, e->height));
  gboolean ok;

  if (e->settings.detector == NCL_FACE_DETECTOR_SSD)
    ok = detect_ssd (e, px, faces, error);
  else
    ok = detect_tiny (e, px, tiny_size, faces, error);
  if (!ok) {
    g_array_set_size (faces, first);
    return FALSE;
  }
  ncl_face_shift_faces (faces, first, px, px);
  return TRUE;
}

gboolean
ncl_face_engine_detect (NclFaceEngine * e, GArray * faces, GError ** error)
{
  const NclFaceSettings *s = &e->settings;
  guint first = faces->len;

  if (!check_image (e, error)
      || !detect_pass (e, s->border, s->detector_size, faces, error))
    return FALSE;
  /* With a border, a frame without a face gets two more tries (measured in
   * docs/faces.md): face-api's own framing, then the frame shrunk inside a
   * wide border, where faces that fill the frame are found (the tiny
   * detector at a coarse size, which suits them best). */
  if (faces->len == first && s->border > 0
      && !detect_pass (e, 0.0, s->detector_size, faces, error))
    return FALSE;
  if (faces->len == first && s->border > 0
      && !detect_pass (e, s->detector == NCL_FACE_DETECTOR_SSD ?
          RETRY_BORDER_SSD : RETRY_BORDER_TINY, MIN (RETRY_TINY_SIZE,
              s->detector_size), faces, error))
    return FALSE;
  if (s->max_faces > 0 && faces->len - first > (guint) s->max_faces)
    g_array_set_size (faces, first + s->max_faces);
  return TRUE;
}

gboolean
ncl_face_engine_landmarks (NclFaceEngine * e, NclFace * faces, guint n,
    GError ** error)
{
  g_autofree NclFaceCrop *crops = g_new (NclFaceCrop, MAX (n, 1));
  g_autofree guint *which = g_new (guint, MAX (n, 1));
  g_autofree gfloat *out = NULL;
  NclTensor *o;
  guint m = 0;

  if (!check_image (e, error))
    return FALSE;
  for (guint i = 0; i < n; i++) {
    faces[i].has_landmarks = FALSE;
    /* an empty crop has no landmarks: face-api drops it from its list and
     * pairs the rest with the wrong boxes; we keep the index */
    if (ncl_face_crop_from_box (&faces[i].box, e->width, e->height,
            &crops[m]))
      which[m++] = i;
  }
  if (m == 0)
    return TRUE;
  if (!ncl_face_crops (e->ctx, e->frame, crops, m, NCL_FACE_LANDMARK_SIZE,
          &ncl_face_norm_face, e->lm_in, error)
      || !ncl_runner_run (e->lm, e->lm_in, &o, error)
      || !check_output (e->lm_model, o, 0, m, 2 * NCL_FACE_N_LANDMARKS, 1, 1,
          error))
    return FALSE;
  out = g_new (gfloat, ncl_tensor_numel (o));
  if (!ncl_tensor_download (o, out, error))
    return FALSE;
  for (guint j = 0; j < m; j++) {
    NclFace *f = &faces[which[j]];

    ncl_face_decode_landmarks (out + (gsize) j * 2 * NCL_FACE_N_LANDMARKS,
        &f->box, &crops[j], f->landmarks);
    f->has_landmarks = TRUE;
  }
  return TRUE;
}

/* Runs the recognition net on rec_in (m faces) and stores the descriptors
 * in @dst[j]. */
static gboolean
recognise (NclFaceEngine * e, guint m, gfloat ** dst, GError ** error)
{
  g_autofree gfloat *out = NULL;
  NclTensor *o;

  if (!ncl_runner_run (e->rec, e->rec_in, &o, error)
      || !check_output (e->rec_model, o, 0, m, NCL_FACE_DESCRIPTOR_LEN, 1, 1,
          error))
    return FALSE;
  out = g_new (gfloat, ncl_tensor_numel (o));
  if (!ncl_tensor_download (o, out, error))
    return FALSE;
  for (guint j = 0; j < m; j++)
    memcpy (dst[j], out + (gsize) j * NCL_FACE_DESCRIPTOR_LEN,
        sizeof (gfloat) * NCL_FACE_DESCRIPTOR_LEN);
  return TRUE;
}

gboolean
ncl_face_engine_describe (NclFaceEngine * e, NclFace * faces, guint n,
    GError ** error)
{
  g_autofree NclFaceCrop *crops = g_new (NclFaceCrop, MAX (n, 1));
  g_autofree gfloat *params = g_new (gfloat, 8 * MAX (n, 1));
  g_autofree gfloat **dst = g_new (gfloat *, MAX (n, 1));
  g_autofree guint *which = g_new (guint, MAX (n, 1));
  gboolean warp = e->settings.align == NCL_FACE_ALIGN_WARP;
  gboolean ok;
  guint m = 0;

  if (!check_image (e, error))
    return FALSE;
  for (guint i = 0; i < n; i++) {
    NclFace *f = &faces[i];
    NclFaceCrop det_crop;
    NclBox box;

    f->has_descriptor = FALSE;
    if (!f->has_landmarks)
      continue;
    if (warp) {
      ncl_face_warp_params (f->landmarks, NCL_FACE_CHIP_SIZE,
          params + 8 * m);
    } else {
      if (!ncl_face_crop_from_box (&f->box, e->width, e->height, &det_crop))
        continue;
      ncl_face_align_box (f->landmarks, &det_crop, &box);
      if (!ncl_face_crop_from_box (&box, e->width, e->height, &crops[m]))
        continue;
    }
    dst[m] = f->descriptor;
    which[m++] = i;
  }
  if (m == 0)
    return TRUE;
  if (warp)
    ok = ncl_face_warp (e->ctx, e->frame, params, m, NCL_FACE_CHIP_SIZE,
        &ncl_face_norm_face, e->rec_in, error);
  else
    ok = ncl_face_crops (e->ctx, e->frame, crops, m, NCL_FACE_CHIP_SIZE,
        &ncl_face_norm_face, e->rec_in, error);
  if (!ok || !recognise (e, m, dst, error))
    return FALSE;
  for (guint j = 0; j < m; j++)
    faces[which[j]].has_descriptor = TRUE;
  return TRUE;
}

gboolean
ncl_face_engine_describe_crop (NclFaceEngine * e, const NclBox * box,
    gfloat * descriptor, GError ** error)
{
  NclFaceCrop crop;

  if (!check_image (e, error))
    return FALSE;
  if (!ncl_face_crop_from_box (box, e->width, e->height, &crop)) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "face engine: crop (%g, %g, %gx%g) is empty in the %dx%d frame",
        box->x, box->y, box->w, box->h, e->width, e->height);
    return FALSE;
  }
  return ncl_face_crops (e->ctx, e->frame, &crop, 1, NCL_FACE_CHIP_SIZE,
      &ncl_face_norm_face, e->rec_in, error)
      && recognise (e, 1, &descriptor, error);
}

gboolean
ncl_face_engine_analyze (NclFaceEngine * e, const NclImage * img,
    GArray * faces, GError ** error)
{
  guint first = faces->len;

  if (!ncl_face_engine_set_image (e, img, error)
      || !ncl_face_engine_detect (e, faces, error))
    return FALSE;
  if (faces->len == first)
    return TRUE;
  if (!ncl_face_engine_landmarks (e, &g_array_index (faces, NclFace, first),
          faces->len - first, error)
      || !ncl_face_engine_describe (e, &g_array_index (faces, NclFace,
              first), faces->len - first, error)) {
    g_array_set_size (faces, first);
    return FALSE;
  }
  return TRUE;
}

gint
ncl_face_pick_main (const NclFace * faces, guint n, gint width, gint height)
{
  gint best = -1;
  gdouble best_area = 0, best_dist = 0;

  for (guint i = 0; i < n; i++) {
    const NclBox *b = &faces[i].box;
    gdouble area = b->w * b->h;
    gdouble dx = b->x + b->w / 2 - width / 2.0;
    gdouble dy = b->y + b->h / 2 - height / 2.0;
    gdouble dist = dx * dx + dy * dy;
    gdouble tol = 1e-9 * MAX (area, best_area);

    if (!(area >= 0))
      continue;
    if (best < 0 || area > best_area + tol ||
        (fabs (area - best_area) <= tol && dist < best_dist)) {
      best = i;
      best_area = area;
      best_dist = dist;
    }
  }
  return best;
}

gfloat
ncl_face_distance (const gfloat * a, const gfloat * b)
{
  gdouble s = 0;

  for (gint i = 0; i < NCL_FACE_DESCRIPTOR_LEN; i++) {
    gdouble d = (gdouble) a[i] - b[i];

    s += d * d;
  }
  return (gfloat) sqrt (s);
}
