/* Face verification and identification metrics for `neuralcl faces eval`
 * (docs/face-eval.md), and the readers of the evaluation lists.
 *
 * A score is a descriptor distance (smaller = more alike) with a label
 * saying whether the two faces are the same person.  A pair is accepted as
 * the same person when its distance is below the threshold (d < t), the
 * rule ncl_gallery_match() uses.  Host only, no OpenCL. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct
{
  gdouble distance;
  gboolean same;
} FaceEvalScore;

/**
 * FaceEvalSummary:
 * @n_same: scores of same-person pairs
 * @n_different: scores of different-person pairs
 * @auc: area under the ROC curve: the probability that a random same pair
 *   is closer than a random different pair, ties counting half (NaN when a
 *   class is empty)
 * @eer: equal error rate, where FAR and FRR cross, linearly interpolated
 *   between the two operating points around the crossing (NaN when a class
 *   is empty)
 * @eer_threshold: the threshold at the crossing
 * @best_correct: the most scores decided right by any one threshold
 * @best_threshold: the middle of the first run of thresholds reaching
 *   @best_correct
 */
typedef struct
{
  guint n_same;
  guint n_different;
  gdouble auc;
  gdouble eer;
  gdouble eer_threshold;
  guint best_correct;
  gdouble best_threshold;
} FaceEvalSummary;

/* Scores decided right at @threshold: same pairs with d < t and different
 * pairs with d >= t. */
guint face_eval_count_correct (const FaceEvalScore * scores, guint n,
    gdouble threshold);
/* False accept rate: different pairs with d < t over the different pairs
 * (NaN when there is none). */
gdouble face_eval_far (const FaceEvalScore * scores, guint n,
    gdouble threshold);
/* False reject rate: same pairs with d >= t over the same pairs. */
gdouble face_eval_frr (const FaceEvalScore * scores, guint n,
    gdouble threshold);
gdouble face_eval_auc (const FaceEvalScore * scores, guint n);

/* Computes every field of @summary. */
void face_eval_summarize (const FaceEvalScore * scores, guint n,
    FaceEvalSummary * summary);

/* Calibration: the largest threshold whose false accept rate is at most
 * @far (the (floor (far * n_different) + 1)-th smallest different-pair
 * distance); +infinity when every different pair may be accepted, NaN when
 * there is no different pair. */
gdouble face_eval_threshold_at_far (const FaceEvalScore * scores, guint n,
    gdouble far);

/* ---- evaluation lists -------------------------------------------------- */

typedef struct
{
  gchar *file_a;
  gchar *file_b;
  gboolean same;
} FaceEvalPair;

typedef struct
{
  gchar *file;
  gchar *identity;
} FaceEvalLabel;

/* Reads a pairs file: a header line, then file_a<TAB>file_b<TAB>same (0 or
 * 1) per line; blank lines are skipped.  Errors are "FILE:LINE: ...".
 * Returns: (element-type FaceEvalPair) (transfer full): the pairs, or NULL
 *   with @error set. */
GArray *face_eval_read_pairs (const gchar * path, GError ** error);
/* Reads a labels file: a header line, then file<TAB>identity.
 * Returns: (element-type FaceEvalLabel) (transfer full). */
GArray *face_eval_read_labels (const gchar * path, GError ** error);

/* Runs the metric checks on hand-made score lists, printing one PASS or
 * FAIL line each.  Returns the number of failures. */
guint face_eval_selftest (void);

G_END_DECLS
