/* Face recognition settings from YAML: one file configures the
 * facerecognize element and `neuralcl faces` alike (config/faces.yaml). */
#pragma once

#include <neuralcl/face.h>
#include <neuralcl/tracker.h>

G_BEGIN_DECLS

typedef struct
{
  NclFaceSettings face;         /* detector, border, landmarks, align */
  NclTrackerSettings tracker;
  gchar *device;                /* NULL = default */
  gchar *gallery;               /* resolved against the file, or NULL */
  gdouble threshold;            /* < 0: the gallery's */
  gdouble margin;               /* < 0: the gallery's */
  gchar *verifier;              /* "distance" (default) or "classifier" */
  gchar *verifier_model;        /* resolved path, classifier only */
  gboolean overlay;             /* default TRUE */
} NclFaceConfig;

/* Defaults: ncl_face_settings_init, ncl_tracker_settings_init, no gallery,
 * thresholds from the gallery, verifier "distance", overlay on. */
void ncl_face_config_init (NclFaceConfig * c);
void ncl_face_config_clear (NclFaceConfig * c);

/* Reads @path over @c (keys absent keep their value).  Keys: device,
 * detector (tiny|ssd), detector-size, min-score, border, landmarks
 * (full|tiny), align (warp|crop), max-faces, gallery, threshold, margin,
 * verifier, verifier-model, overlay, tracker: {iou-threshold, max-missed,
 * recognize-interval, grow-factor, score-gain, vote-window}.  Errors are
 * "FILE:LINE:COL: ..." (NCL_ERROR_INVALID_CONFIG). */
gboolean ncl_face_config_load (NclFaceConfig * c, const gchar * path,
    GError ** error);

G_END_DECLS
