/* Private: the pieces of the face pipeline shared by face.c, face-detect.c,
 * face-align.c and tests/face/test-golden.c.  Spec section numbers refer to
 * ../shared/specs/face-models.md. */
#pragma once

#include <neuralcl/face.h>

#include <math.h>

G_BEGIN_DECLS

/* Bumped whenever pre-processing or alignment changes descriptors; part of
 * the engine fingerprint. */
#define NCL_FACE_PREPROCESS_VERSION "face-preprocess-1"

#define NCL_FACE_LANDMARK_SIZE 112
#define NCL_FACE_CHIP_SIZE 150
#define NCL_FACE_CHIP_PADDING 0.25
#define NCL_FACE_SSD_SIZE 512
#define NCL_FACE_SSD_ANCHORS 5118

/* Input normalisation out = (v - mean[c]) / div for v in 0..255. */
typedef struct
{
  gfloat mean[3];
  gfloat div;
} NclFaceNorm;

extern const NclFaceNorm ncl_face_norm_face;    /* landmarks, recognition */
extern const NclFaceNorm ncl_face_norm_tiny;    /* tiny_face_detector */
extern const NclFaceNorm ncl_face_norm_ssd;     /* ssd_mobilenetv1 */

/* An integer crop of the frame (spec 0.2). */
typedef struct
{
  gint x, y, w, h;
} NclFaceCrop;

/* Spec 0.2: clips and floors @box against a @width x @height frame.
 * Returns FALSE (crop empty) when the width or height is <= 0. */
gboolean ncl_face_crop_from_box (const NclBox * box, gint width, gint height,
    NclFaceCrop * crop);

/* JavaScript Math.round: floor (x + 0.5). */
static inline gdouble
ncl_face_js_round (gdouble x)
{
  return floor (x + 0.5);
}

/* ---- device pre-processing (face-align.c, kernels/face.cl) ------------- */

/* (a) The frame at (border, border) in a zero square of side
 * max (w, h) + 2 border, TF legacy resize to @size, normalised.
 * rgb (1, 3, h, w) -> out (1, 3, size, size). */
void ncl_face_detector_input_ref (const gfloat * rgb, gint w, gint h,
    gint border, gint size, const NclFaceNorm * norm, gfloat * out);
gboolean ncl_face_detector_input (NclContext * ctx, const NclTensor * rgb,
    gint border, gint size, const NclFaceNorm * norm, NclTensor * out,
    GError ** error);

/* (b) Each crop centred in a zero square (odd pixel after), TF legacy resize
 * to @size, normalised.  Crops must be non-empty and inside the frame.
 * out (n, 3, size, size). */
void ncl_face_crops_ref (const gfloat * rgb, gint w, gint h,
    const NclFaceCrop * crops, gint n, gint size, const NclFaceNorm * norm,
    gfloat * out);
gboolean ncl_face_crops (NclContext * ctx, const NclTensor * rgb,
    const NclFaceCrop * crops, gint n, gint size, const NclFaceNorm * norm,
    NclTensor * out, GError ** error);

/* (c) Affine warp: per face 8 floats (m0..m5 from chip pixel (u, v) to frame
 * (m0 u + m1 v + m2, m3 u + m4 v + m5), k sub-samples per axis, unused).
 * out (n, 3, size, size). */
void ncl_face_warp_ref (const gfloat * rgb, gint w, gint h,
    const gfloat * params, gint n, gint size, const NclFaceNorm * norm,
    gfloat * out);
gboolean ncl_face_warp (NclContext * ctx, const NclTensor * rgb,
    const gfloat * params, gint n, gint size, const NclFaceNorm * norm,
    NclTensor * out, GError ** error);

/* ---- alignment geometry (face-align.c) --------------------------------- */

/* Spec 7.3: face-api's axis-aligned box from the landmarks; @det_crop is the
 * detection's crop (the size bound is face-api's). */
void ncl_face_align_box (const NclPoint * landmarks,
    const NclFaceCrop * det_crop, NclBox * box);

/* The similarity transform from a @size chip (padding 0.25) to the frame,
 * least squares over dlib's mean face (points 27-54 and 60-64), with dlib's
 * chip geometry; fills the 8 warp params (k from the scale). */
void ncl_face_warp_params (const NclPoint * landmarks, gint size,
    gfloat * params);

/* ---- detection decoding (face-detect.c) -------------------------------- */

/* Tiny detector output (25, g, g) of an input of @size showing a @width x
 * @height frame (its top-left corner): appends boxes in frame pixels, after
 * NMS (IoU > 0.4), best first. */
void ncl_face_decode_tiny (const gfloat * out, gint g, gint size, gint width,
    gint height, gdouble min_score, GArray * faces);

/* SSD outputs: @boxes[k] (anchors_k * 4, g_k, g_k) and @classes[k]
 * (anchors_k * 3, g_k, g_k) for the six predictors, anchors [5118, 4]. */
typedef struct
{
  const gfloat *boxes[6];
  const gfloat *classes[6];
  gint grid[6];
  gint anchors[6];
} NclFaceSsdOutput;

void ncl_face_decode_ssd (const NclFaceSsdOutput * o, const gfloat * anchors,
    gint width, gint height, gdouble min_score, gint max_results,
    GArray * faces);

/* Spec 3: the landmark net's output for one face (136 values, relative to
 * the 112 square) to frame pixels.  face-api adds the unfloored box origin;
 * this does too, except that a negative origin becomes the crop's 0. */
void ncl_face_decode_landmarks (const gfloat * o, const NclBox * box,
    const NclFaceCrop * crop, NclPoint * points);

/* Shifts boxes by (-dx, -dy) (detection border). */
void ncl_face_shift_faces (GArray * faces, guint from, gdouble dx,
    gdouble dy);

G_END_DECLS
