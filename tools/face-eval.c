/* face-eval.c: verification metrics over distance scores (AUC, EER, best
 * accuracy, FAR calibration) and the evaluation list readers; see
 * face-eval.h.
 *
 * The scores are sorted once and grouped by distinct distance
 * v_0 < v_1 < ... < v_{m-1}.  A threshold t accepts the pairs with d < t,
 * so only m + 1 decisions exist: decision j (0..m) accepts groups 0..j-1
 * and holds for t in (v_{j-1}, v_j], with v_{-1} = -inf and v_m = +inf.
 * Every metric is a walk over these decisions. */
#include "face-eval.h"

#include <neuralcl/error.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct
{
  gdouble value;
  guint same;                   /* same-person scores at this distance */
  guint different;
} Group;

static gint
compare_scores (gconstpointer a, gconstpointer b)
{
  gdouble x = ((const FaceEvalScore *) a)->distance;
  gdouble y = ((const FaceEvalScore *) b)->distance;

  return x < y ? -1 : (x > y ? 1 : 0);
}

/* Sorted distinct distances with their label counts. (transfer full) */
static GArray *
make_groups (const FaceEvalScore * scores, guint n)
{
  g_autofree FaceEvalScore *sorted = g_memdup2 (scores,
      n * sizeof (FaceEvalScore));
  GArray *groups = g_array_new (FALSE, TRUE, sizeof (Group));

  qsort (sorted, n, sizeof (FaceEvalScore), compare_scores);
  for (guint i = 0; i < n; i++) {
    Group *g = groups->len > 0 ?
        &g_array_index (groups, Group, groups->len - 1) : NULL;

    if (g == NULL || g->value != sorted[i].distance) {
      Group fresh = { sorted[i].distance, 0, 0 };

      g_array_append_val (groups, fresh);
      g = &g_array_index (groups, Group, groups->len - 1);
    }
    if (sorted[i].same)
      g->same++;
    else
      g->different++;
  }
  return groups;
}

static void
count_labels (const FaceEvalScore * scores, guint n, guint * n_same,
    guint * n_different)
{
  *n_same = 0;
  *n_different = 0;
  for (guint i = 0; i < n; i++) {
    if (scores[i].same)
      (*n_same)++;
    else
      (*n_different)++;
  }
}

guint
face_eval_count_correct (const FaceEvalScore * scores, guint n,
    gdouble threshold)
{
  guint correct = 0;

  for (guint i = 0; i < n; i++) {
    gboolean accepted = scores[i].distance < threshold;

    if (accepted == ! !scores[i].same)
      correct++;
  }
  return correct;
}

gdouble
face_eval_far (const FaceEvalScore * scores, guint n, gdouble threshold)
{
  guint n_different = 0, accepted = 0;

  for (guint i = 0; i < n; i++) {
    if (scores[i].same)
      continue;
    n_different++;
    if (scores[i].distance < threshold)
      accepted++;
  }
  return n_different > 0 ? (gdouble) accepted / n_different : NAN;
}

gdouble
face_eval_frr (const FaceEvalScore * scores, guint n, gdouble threshold)
{
  guint n_same = 0, rejected = 0;

  for (guint i = 0; i < n; i++) {
    if (!scores[i].same)
      continue;
    n_same++;
    if (!(scores[i].distance < threshold))
      rejected++;
  }
  return n_same > 0 ? (gdouble) rejected / n_same : NAN;
}

/* Mann-Whitney: rank all scores by distance (1-based, ties get the mean of
 * their ranks); the rank sum of the different pairs less its minimum
 * n_d (n_d + 1) / 2 counts the (same, different) couples in which the same
 * pair is closer, a tie counting half. */
gdouble
face_eval_auc (const FaceEvalScore * scores, guint n)
{
  g_autoptr (GArray) groups = make_groups (scores, n);
  guint n_same, n_different, below = 0;
  gdouble rank_sum = 0;

  count_labels (scores, n, &n_same, &n_different);
  if (n_same == 0 || n_different == 0)
    return NAN;

  for (guint i = 0; i < groups->len; i++) {
    const Group *g = &g_array_index (groups, Group, i);
    guint size = g->same + g->different;
    /* ranks below + 1 .. below + size */
    gdouble mean_rank = below + (size + 1) / 2.0;

    rank_sum += g->different * mean_rank;
    below += size;
  }
  return (rank_sum - n_different * (n_different + 1.0) / 2.0)
      / ((gdouble) n_same * n_different);
}

/* A threshold inside (lo, hi], the range of one or more decisions. */
static gdouble
threshold_in_range (gdouble lo, gdouble hi, const GArray * groups)
{
  if (isfinite (lo) && isfinite (hi))
    return (lo + hi) / 2;
  if (isfinite (hi))
    return hi;
  if (isfinite (lo))
    return lo + 1e-6 * MAX (1.0, fabs (lo));
  /* every decision is as good: accept nobody */
  return groups->len > 0 ? g_array_index (groups, Group, 0).value : NAN;
}

void
face_eval_summarize (const FaceEvalScore * scores, guint n,
    FaceEvalSummary * s)
{
  g_autoptr (GArray) groups = make_groups (scores, n);
  guint m = groups->len;
  /* per decision j = 0..m: accepted pairs of each kind */
  g_autofree guint *acc_same = g_new0 (guint, m + 1);
  g_autofree guint *acc_diff = g_new0 (guint, m + 1);
  guint best_first = 0, best_last;

  memset (s, 0, sizeof (*s));
  count_labels (scores, n, &s->n_same, &s->n_different);
  s->auc = face_eval_auc (scores, n);
  s->eer = NAN;
  s->eer_threshold = NAN;

  for (guint j = 1; j <= m; j++) {
    const Group *g = &g_array_index (groups, Group, j - 1);

    acc_same[j] = acc_same[j - 1] + g->same;
    acc_diff[j] = acc_diff[j - 1] + g->different;
  }
#define LO(j) ((j) > 0 ? g_array_index (groups, Group, (j) - 1).value : -INFINITY)
#define HI(j) ((j) < m ? g_array_index (groups, Group, (j)).value : INFINITY)
#define CORRECT(j) (acc_same[j] + s->n_different - acc_diff[j])

  /* best accuracy: the first decision reaching the maximum, widened over
   * the decisions right after it that reach it too */
  for (guint j = 1; j <= m; j++) {
    if (CORRECT (j) > CORRECT (best_first))
      best_first = j;
  }
  best_last = best_first;
  while (best_last < m && CORRECT (best_last + 1) == CORRECT (best_first))
    best_last++;
  s->best_correct = CORRECT (best_first);
  s->best_threshold = threshold_in_range (LO (best_first), HI (best_last),
      groups);

  /* EER: FAR - FRR rises strictly with j, from -1 to 1 */
  if (s->n_same > 0 && s->n_different > 0) {
    gdouble prev_far = 0, prev_diff = -1;

    for (guint j = 0; j <= m; j++) {
      gdouble far = (gdouble) acc_diff[j] / s->n_different;
      gdouble frr = (gdouble) (s->n_same - acc_same[j]) / s->n_same;
      gdouble diff = far - frr;

      if (diff == 0) {
        s->eer = far;
        s->eer_threshold = threshold_in_range (LO (j), HI (j), groups);
        break;
      }
      if (diff > 0) {
        gdouble alpha = -prev_diff / (diff - prev_diff);

        /* j >= 1 here: decision 0 has FAR 0, FRR 1 */
        s->eer = prev_far + alpha * (far - prev_far);
        s->eer_threshold = LO (j);
        break;
      }
      prev_far = far;
      prev_diff = diff;
    }
  }
#undef LO
#undef HI
#undef CORRECT
}

static gint
compare_double (gconstpointer a, gconstpointer b)
{
  gdouble x = *(const gdouble *) a, y = *(const gdouble *) b;

  return x < y ? -1 : (x > y ? 1 : 0);
}

gdouble
face_eval_threshold_at_far (const FaceEvalScore * scores, guint n,
    gdouble far)
{
  g_autofree gdouble *diff = g_new (gdouble, MAX (n, 1));
  guint n_different = 0;
  gdouble allowed;

  for (guint i = 0; i < n; i++) {
    if (!scores[i].same)
      diff[n_different++] = scores[i].distance;
  }
  if (n_different == 0 || !(far >= 0))
    return NAN;
  qsort (diff, n_different, sizeof (gdouble), compare_double);

  /* at t = diff[k], exactly the different pairs strictly closer than it are
   * accepted: at most k of them; any larger t accepts diff[k] as well */
  allowed = floor (far * n_different + 1e-9);
  if (allowed >= n_different)
    return INFINITY;
  return diff[(guint) allowed];
}

/* ---- evaluation lists -------------------------------------------------- */

static void
clear_pair (gpointer p)
{
  FaceEvalPair *pair = p;

  g_free (pair->file_a);
  g_free (pair->file_b);
}

static void
clear_label (gpointer p)
{
  FaceEvalLabel *label = p;

  g_free (label->file);
  g_free (label->identity);
}

/* Splits @path into lines after the header; calls @row for each non-blank
 * line with its tab-separated fields. */
static gboolean
read_tsv (const gchar * path, guint n_fields, gboolean (*row) (GArray * out,
        gchar ** fields, const gchar * path, guint line, GError ** error),
    GArray * out, GError ** error)
{
  g_autofree gchar *text = NULL;
  g_auto (GStrv) lines = NULL;
  g_autoptr (GError) local = NULL;

  if (!g_file_get_contents (path, &text, NULL, &local)) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_NOT_FOUND, "%s: %s", path,
        local->message);
    return FALSE;
  }
  lines = g_strsplit (text, "\n", -1);
  if (lines[0] == NULL || *g_strstrip (lines[0]) == '\0') {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_CONFIG,
        "%s:1: empty file, expected a header line", path);
    return FALSE;
  }

  for (guint i = 1; lines[i] != NULL; i++) {
    g_auto (GStrv) fields = NULL;
    gchar *line = lines[i];
    gsize len = strlen (line);

    if (len > 0 && line[len - 1] == '\r')
      line[len - 1] = '\0';
    if (*line == '\0')
      continue;
    fields = g_strsplit (line, "\t", -1);
    if (g_strv_length (fields) != n_fields) {
      g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_CONFIG,
          "%s:%u: %u tab-separated fields, expected %u", path, i + 1,
          g_strv_length (fields), n_fields);
      return FALSE;
    }
    for (guint f = 0; f < n_fields; f++) {
      if (*fields[f] == '\0') {
        g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_CONFIG,
            "%s:%u: field %u is empty", path, i + 1, f + 1);
        return FALSE;
      }
    }
    if (!row (out, fields, path, i + 1, error))
      return FALSE;
  }
  return TRUE;
}

static gboolean
pair_row (GArray * out, gchar ** fields, const gchar * path, guint line,
    GError ** error)
{
  FaceEvalPair pair;

  if (!g_str_equal (fields[2], "0") && !g_str_equal (fields[2], "1")) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_CONFIG,
        "%s:%u: same is '%s', expected 0 or 1", path, line, fields[2]);
    return FALSE;
  }
  pair.file_a = g_strdup (fields[0]);
  pair.file_b = g_strdup (fields[1]);
  pair.same = fields[2][0] == '1';
  g_array_append_val (out, pair);
  return TRUE;
}

static gboolean
label_row (GArray * out, gchar ** fields, const gchar * path, guint line,
    GError ** error)
{
  FaceEvalLabel label = { g_strdup (fields[0]), g_strdup (fields[1]) };

  g_array_append_val (out, label);
  return TRUE;
}

GArray *
face_eval_read_pairs (const gchar * path, GError ** error)
{
  g_autoptr (GArray) pairs = g_array_new (FALSE, TRUE, sizeof (FaceEvalPair));

  g_array_set_clear_func (pairs, clear_pair);
  if (!read_tsv (path, 3, pair_row, pairs, error))
    return NULL;
  if (pairs->len == 0) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_CONFIG,
        "%s: no pairs after the header line", path);
    return NULL;
  }
  return g_steal_pointer (&pairs);
}

GArray *
face_eval_read_labels (const gchar * path, GError ** error)
{
  g_autoptr (GArray) labels =
      g_array_new (FALSE, TRUE, sizeof (FaceEvalLabel));

  g_array_set_clear_func (labels, clear_label);
  if (!read_tsv (path, 2, label_row, labels, error))
    return NULL;
  if (labels->len == 0) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_CONFIG,
        "%s: no labels after the header line", path);
    return NULL;
  }
  return g_steal_pointer (&labels);
}

/* ---- self-test --------------------------------------------------------- */

typedef struct
{
  const gchar *name;
  gdouble same[8];              /* distances, ended by a negative value */
  gdouble different[8];
  /* expected */
  gdouble auc, eer, eer_threshold;
  guint best_correct;
  gdouble best_threshold;
  gdouble far, far_threshold;   /* calibration: at FAR <= far */
} MetricCase;

/* Worked by hand in docs/face-eval.md ("Checking the metrics"). */
static const MetricCase metric_cases[] = {
  /* 0.1S 0.2S 0.25D 0.3S 0.4D 0.5D: FAR = FRR = 1/3 when accepting the
   * first four, t in (0.25, 0.3]; 5 of 6 right for t in (0.2, 0.25] and
   * for (0.3, 0.4]: the first run wins */
  {"overlap", {0.1, 0.2, 0.3, -1}, {0.25, 0.4, 0.5, -1},
      8.0 / 9, 1.0 / 3, 0.275, 5, 0.225, 0.0, 0.25},
  /* 0.1S 0.2D 0.3D 0.35D 0.4S 0.5D 0.6D: FAR - FRR goes -0.1 -> +0.1
   * between accepting 3 and 4 scores (FAR 0.4 -> 0.6, FRR 0.5): EER 0.5
   * at the step v = 0.35 */
  {"interpolated", {0.1, 0.4, -1}, {0.2, 0.3, 0.35, 0.5, 0.6, -1},
      0.7, 0.5, 0.35, 6, 0.15, 0.2, 0.3},
  /* separable: every threshold in (0.3, 0.7] is right */
  {"separable", {0.2, 0.3, -1}, {0.7, 0.9, -1},
      1.0, 0.0, 0.5, 4, 0.5, 0.5, 0.9},
  /* all tied: half of every couple; nothing beats 2 of 4 */
  {"ties", {0.5, 0.5, -1}, {0.5, 0.5, -1},
      0.5, 0.5, 0.5, 2, 0.5, 0.0, 0.5},
  /* a same and a different pair tied at 0.3: AUC (1 + 0.5) / 2; accepting
   * the tie goes from FAR 0, FRR 1 to FAR 0.5, FRR 0: they cross 2/3 of
   * the way, at 1/3 */
  {"half tie", {0.3, -1}, {0.3, 0.5, -1},
      0.75, 1.0 / 3, 0.3, 2, 0.5, 1.0, INFINITY},
  /* inverted: every different pair is closer */
  {"inverted", {0.8, 0.9, -1}, {0.1, 0.2, -1},
      0.0, 1.0, 0.5, 2, 0.1, 0.5, 0.2},
};

static guint
check (const gchar * name, const gchar * what, gdouble got, gdouble want)
{
  gboolean ok = (isnan (want) && isnan (got)) || got == want
      || fabs (got - want) <= 1e-12;

  if (!ok) {
    printf ("FAIL: metrics %s: %s = %.17g, expected %.17g\n", name, what,
        got, want);
    return 1;
  }
  return 0;
}

static guint
fill_case (const MetricCase * c, FaceEvalScore * scores)
{
  guint n = 0;

  for (guint i = 0; c->same[i] >= 0; i++, n++) {
    scores[n].distance = c->same[i];
    scores[n].same = TRUE;
  }
  for (guint i = 0; c->different[i] >= 0; i++, n++) {
    scores[n].distance = c->different[i];
    scores[n].same = FALSE;
  }
  return n;
}

/* The AUC by counting couples, for the random check. */
static gdouble
auc_by_couples (const FaceEvalScore * s, guint n)
{
  gdouble wins = 0;
  guint couples = 0;

  for (guint i = 0; i < n; i++) {
    for (guint j = 0; j < n; j++) {
      if (!s[i].same || s[j].same)
        continue;
      couples++;
      wins += s[i].distance < s[j].distance ? 1.0 :
          (s[i].distance == s[j].distance ? 0.5 : 0.0);
    }
  }
  return wins / couples;
}

guint
face_eval_selftest (void)
{
  guint failures = 0;

  for (guint c = 0; c < G_N_ELEMENTS (metric_cases); c++) {
    const MetricCase *mc = &metric_cases[c];
    FaceEvalScore scores[16];
    FaceEvalSummary s;
    guint n = fill_case (mc, scores), before = failures;

    /* the order of the input must not matter: reverse half the cases */
    if (c % 2 == 1) {
      for (guint i = 0; i < n / 2; i++) {
        FaceEvalScore t = scores[i];

        scores[i] = scores[n - 1 - i];
        scores[n - 1 - i] = t;
      }
    }
    face_eval_summarize (scores, n, &s);
    failures += check (mc->name, "auc", s.auc, mc->auc);
    failures += check (mc->name, "eer", s.eer, mc->eer);
    failures += check (mc->name, "eer_threshold", s.eer_threshold,
        mc->eer_threshold);
    failures += check (mc->name, "best_correct", s.best_correct,
        mc->best_correct);
    failures += check (mc->name, "best_threshold", s.best_threshold,
        mc->best_threshold);
    /* the best threshold decides best_correct scores right */
    failures += check (mc->name, "correct at best_threshold",
        face_eval_count_correct (scores, n, s.best_threshold),
        mc->best_correct);
    failures += check (mc->name, "threshold_at_far",
        face_eval_threshold_at_far (scores, n, mc->far), mc->far_threshold);
    if (isfinite (mc->far_threshold)) {
      gdouble t = mc->far_threshold;

      /* calibrated: within the FAR there, above it a hair further */
      if (!(face_eval_far (scores, n, t) <= mc->far))
        failures += check (mc->name, "far at the calibrated threshold",
            face_eval_far (scores, n, t), mc->far);
      if (!(face_eval_far (scores, n, t + 1e-9) > mc->far))
        failures += check (mc->name, "far just above it",
            face_eval_far (scores, n, t + 1e-9), mc->far);
    }
    if (failures == before)
      printf ("PASS: metrics %s (auc %.4f, eer %.4f, best %u/%u at %.4f)\n",
          mc->name, s.auc, s.eer, s.best_correct, n, s.best_threshold);
  }

  /* FAR, FRR and accuracy at a fixed threshold on the "overlap" case */
  {
    FaceEvalScore scores[16];
    guint n = fill_case (&metric_cases[0], scores), before = failures;

    failures += check ("rates", "far(0.3)", face_eval_far (scores, n, 0.3),
        1.0 / 3);
    failures += check ("rates", "far(0.45)", face_eval_far (scores, n, 0.45),
        2.0 / 3);
    failures += check ("rates", "frr(0.3)", face_eval_frr (scores, n, 0.3),
        1.0 / 3);
    failures += check ("rates", "frr(0.31)", face_eval_frr (scores, n, 0.31),
        0.0);
    failures += check ("rates", "correct(0.31)",
        face_eval_count_correct (scores, n, 0.31), 5);
    failures += check ("rates", "far without different pairs",
        face_eval_far (scores, 3, 0.5), NAN);
    if (failures == before)
      printf ("PASS: metrics rates at fixed thresholds (d < t accepts)\n");
  }

  /* one class only: AUC and EER are undefined */
  {
    FaceEvalScore only_same[2] = { {0.1, TRUE}, {0.2, TRUE} };
    FaceEvalSummary s;
    guint before = failures;

    face_eval_summarize (only_same, 2, &s);
    failures += check ("one class", "auc", s.auc, NAN);
    failures += check ("one class", "eer", s.eer, NAN);
    failures += check ("one class", "best_correct", s.best_correct, 2);
    failures += check ("one class", "threshold_at_far",
        face_eval_threshold_at_far (only_same, 2, 0.1), NAN);
    if (failures == before)
      printf ("PASS: metrics with one class only\n");
  }

  /* the rank statistic against couple counting on coarse random scores
   * (many ties) */
  {
    GRand *rand = g_rand_new_with_seed (20251128);
    FaceEvalScore scores[200];
    guint before = failures;

    for (guint round = 0; round < 20; round++) {
      for (guint i = 0; i < G_N_ELEMENTS (scores); i++) {
        scores[i].same = g_rand_boolean (rand);
        scores[i].distance = g_rand_int_range (rand, 0, 12) / 10.0
            + (scores[i].same ? 0 : 0.2);
      }
      failures += check ("random", "auc", face_eval_auc (scores, 200),
          auc_by_couples (scores, 200));
    }
    g_rand_free (rand);
    if (failures == before)
      printf ("PASS: metrics rank-statistic AUC equals couple counting\n");
  }
  return failures;
}
