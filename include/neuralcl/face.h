/* Faces: detection, 68 landmarks, alignment and 128-D descriptors with the
 * face-api networks (docs/faces.md; ../shared/specs/face-models.md). */
#pragma once

#include <neuralcl/model.h>
#include <neuralcl/image.h>

G_BEGIN_DECLS

#define NCL_FACE_DESCRIPTOR_LEN 128
#define NCL_FACE_N_LANDMARKS 68

/* Model names, as files NAME.yaml (+ .safetensors) in the model path. */
#define NCL_FACE_MODEL_RECOGNITION "face_recognition"
#define NCL_FACE_MODEL_TINY_DETECTOR "tiny_face_detector"
#define NCL_FACE_MODEL_SSD "ssd_mobilenetv1"
#define NCL_FACE_MODEL_LANDMARKS "face_landmark_68"
#define NCL_FACE_MODEL_LANDMARKS_TINY "face_landmark_68_tiny"

typedef struct
{
  gdouble x, y, w, h;           /* image pixels */
} NclBox;

typedef struct
{
  gdouble x, y;
} NclPoint;

typedef enum
{
  NCL_FACE_DETECTOR_TINY,       /* tiny_face_detector (Tiny-YOLOv2) */
  NCL_FACE_DETECTOR_SSD,        /* ssd_mobilenetv1 */
} NclFaceDetector;

typedef enum
{
  NCL_FACE_ALIGN_WARP,          /* similarity warp to dlib's 150 px chip */
  NCL_FACE_ALIGN_CROP,          /* face-api's axis-aligned square crop */
} NclFaceAlign;

typedef struct
{
  NclBox box;
  gdouble score;
  gboolean has_landmarks;
  NclPoint landmarks[NCL_FACE_N_LANDMARKS];     /* image pixels */
  gboolean has_descriptor;
  gfloat descriptor[NCL_FACE_DESCRIPTOR_LEN];
} NclFace;

typedef struct
{
  NclFaceDetector detector;     /* default tiny */
  gint detector_size;           /* tiny: multiple of 32 (default 416) */
  gdouble min_score;            /* default 0.5 */
  /* Border added around the frame before detection, as a fraction of
   * max(width, height) (0 = none, face-api's behaviour).  Recovers faces
   * that fill the frame. */
  gdouble border;
  gboolean tiny_landmarks;      /* face_landmark_68_tiny instead of full */
  NclFaceAlign align;
  gint max_faces;               /* 0 = no limit */
} NclFaceSettings;

/* Defaults as documented above (border and align: the measured best). */
void ncl_face_settings_init (NclFaceSettings * s);
const gchar *ncl_face_detector_to_string (NclFaceDetector d);
gboolean ncl_face_detector_from_string (const gchar * s, NclFaceDetector * d);
const gchar *ncl_face_align_to_string (NclFaceAlign a);
gboolean ncl_face_align_from_string (const gchar * s, NclFaceAlign * a);

/* Directories searched for the converted face models, in order:
 * $NEURALCL_MODEL_PATH (colon-separated), $XDG_DATA_HOME/neuralcl/models,
 * the installed datadir's models/. (transfer full) */
gchar **ncl_face_get_model_search_path (void);
/* Path of model NAME's YAML graph; NCL_ERROR_NOT_FOUND says to run
 * `neuralcl models fetch`. (transfer full) */
gchar *ncl_face_find_model (const gchar * name, GError ** error);

typedef struct _NclFaceEngine NclFaceEngine;

/* Loads the detector, landmark and recognition models the settings need and
 * prepares them on @ctx. */
NclFaceEngine *ncl_face_engine_new (NclContext * ctx,
    const NclFaceSettings * settings, GError ** error);
void ncl_face_engine_free (NclFaceEngine * e);
const NclFaceSettings *ncl_face_engine_get_settings (const NclFaceEngine * e);
/* SHA-256 over the recognition/landmark/detector model fingerprints and
 * every setting that changes a descriptor: gallery caches are stamped with
 * it. */
const gchar *ncl_face_engine_get_fingerprint (const NclFaceEngine * e);

/* Uploads a frame; the calls below work on the last uploaded frame. */
gboolean ncl_face_engine_set_image (NclFaceEngine * e, const NclImage * img,
    GError ** error);
/* Detection: appends NclFace (box, score) to @faces, best score first. */
gboolean ncl_face_engine_detect (NclFaceEngine * e, GArray * faces,
    GError ** error);
/* 68 landmarks for each face (batched). */
gboolean ncl_face_engine_landmarks (NclFaceEngine * e, NclFace * faces,
    guint n, GError ** error);
/* Align (settings->align) and describe each face (one batch); needs the
 * landmarks. */
gboolean ncl_face_engine_describe (NclFaceEngine * e, NclFace * faces,
    guint n, GError ** error);
/* Recognition net alone on a crop of the image (face-api's extract, centred
 * pad, resize): the path of face-api's computeFaceDescriptor on a crop. */
gboolean ncl_face_engine_describe_crop (NclFaceEngine * e, const NclBox * box,
    gfloat * descriptor, GError ** error);
/* set_image + detect + landmarks + describe. */
gboolean ncl_face_engine_analyze (NclFaceEngine * e, const NclImage * img,
    GArray * faces, GError ** error);

/* Index of the face to enrol from a still: the largest, ties to the most
 * central; -1 if none. */
gint ncl_face_pick_main (const NclFace * faces, guint n, gint width,
    gint height);

gfloat ncl_face_distance (const gfloat * a, const gfloat * b);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (NclFaceEngine, ncl_face_engine_free)

G_END_DECLS
