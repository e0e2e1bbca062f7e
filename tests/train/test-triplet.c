/* Triplet loss: mining (batch-hard, semi-hard, random) on hand-made
 * distances, the loss value, its gradient and the L2-normalised batch
 * loss against finite differences, and a short run of the embedding
 * trainer on synthetic identities. */
#include "common.h"

#include <neuralcl/metric.h>
#include <neuralcl/safetensors.h>

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

static gboolean
has_triplet (const NclTriplet * t, guint nt, gint a, gint p, gint n)
{
  for (guint i = 0; i < nt; i++)
    if (t[i].a == a && t[i].p == p && t[i].n == n)
      return TRUE;
  return FALSE;
}

/* Rows on a line: positions define the distances (squared). */
static void
line_distances (const gfloat * pos, gint n, gfloat * dist)
{
  for (gint i = 0; i < n; i++)
    for (gint j = 0; j < n; j++)
      dist[i * n + j] = (pos[i] - pos[j]) * (pos[i] - pos[j]);
}

static void
test_batch_hard (void)
{
  /* identities 0: rows 0, 1, 2; 1: rows 3, 4; 2: row 5 */
  const gint labels[6] = { 0, 0, 0, 1, 1, 2 };
  const gfloat pos[6] = { 0.0f, 0.3f, 1.0f, 0.5f, 3.0f, -0.2f };
  gfloat dist[36];
  NclTriplet t[30];
  guint nt;

  line_distances (pos, 6, dist);
  nt = ncl_triplet_mine (dist, labels, 6, NCL_TRIPLET_BATCH_HARD, 0.2f,
      NULL, t);
  /* one per anchor with a positive: rows 0..4 (row 5 is alone) */
  NCL_CHECK (nt == 5);
  /* anchor 0: farthest positive 2 (1.0), nearest negative 5 (0.2) */
  NCL_CHECK (has_triplet (t, nt, 0, 2, 5));
  /* anchor 1 (0.3): farthest positive 2 (0.7), nearest negative 3 (0.2) */
  NCL_CHECK (has_triplet (t, nt, 1, 2, 3));
  /* anchor 2 (1.0): farthest positive 0, nearest negative 3 (0.5) */
  NCL_CHECK (has_triplet (t, nt, 2, 0, 3));
  /* anchor 3 (0.5): only positive 4, nearest negative 1 (0.2) */
  NCL_CHECK (has_triplet (t, nt, 3, 4, 1));
  /* anchor 4 (3.0): positive 3, nearest negative 2 (2.0) */
  NCL_CHECK (has_triplet (t, nt, 4, 3, 2));
}

static void
test_semi_hard (void)
{
  const gint labels[6] = { 0, 0, 0, 1, 1, 2 };
  const gfloat pos[6] = { 0.0f, 0.3f, 1.0f, 0.5f, 3.0f, -0.2f };
  const gfloat margin = 0.2f;
  gfloat dist[36];
  NclTriplet t[30];
  g_autoptr (GRand) rand = g_rand_new_with_seed (3);
  guint nt;

  line_distances (pos, 6, dist);
  for (gint round = 0; round < 20; round++) {
    nt = ncl_triplet_mine (dist, labels, 6, NCL_TRIPLET_SEMI_HARD, margin,
        rand, t);
    for (guint i = 0; i < nt; i++) {
      gfloat dap = dist[t[i].a * 6 + t[i].p], dan = dist[t[i].a * 6 + t[i].n];

      NCL_CHECK (labels[t[i].a] == labels[t[i].p] && t[i].a != t[i].p);
      NCL_CHECK (labels[t[i].a] != labels[t[i].n]);
      NCL_CHECK (dap < dan && dan < dap + margin);
    }
    /* (0, 1): D = 0.09; semi-hard band (0.09, 0.29): only row 5 (0.04)?
     * no: 0.04 < 0.09 is hard; row 3 gives 0.25: the only one */
    NCL_CHECK (has_triplet (t, nt, 0, 1, 3));
    /* (0, 2): D = 1; band (1, 1.2): no negative (0.04, 0.25, 9) */
    for (guint i = 0; i < nt; i++)
      NCL_CHECK (!(t[i].a == 0 && t[i].p == 2));
  }
}

static void
test_random (void)
{
  const gint labels[6] = { 0, 0, 0, 1, 1, 2 };
  const gfloat pos[6] = { 0.0f, 0.3f, 1.0f, 0.5f, 3.0f, -0.2f };
  gfloat dist[36];
  NclTriplet t[30];
  g_autoptr (GRand) rand = g_rand_new_with_seed (5);
  gboolean seen[6] = { 0 };
  guint nt = 0;

  line_distances (pos, 6, dist);
  for (gint round = 0; round < 50; round++) {
    nt = ncl_triplet_mine (dist, labels, 6, NCL_TRIPLET_RANDOM, 0.2f, rand,
        t);
    for (guint i = 0; i < nt; i++) {
      NCL_CHECK (labels[t[i].a] == labels[t[i].p] && t[i].a != t[i].p);
      NCL_CHECK (labels[t[i].a] != labels[t[i].n]);
      if (t[i].a == 0 && t[i].p == 1)
        seen[t[i].n] = TRUE;
    }
  }
  /* every ordered positive pair: 3 * 2 + 2 * 1 = 8 */
  NCL_CHECK (nt == 8);
  /* anchor 0's negatives are all drawn sometimes */
  NCL_CHECK (seen[3] && seen[4] && seen[5] && !seen[0] && !seen[1]);
}

static void
test_loss_value (void)
{
  /* 1-D embeddings: a = 0, p = 1, n = 0.5: D(a,p) = 1, D(a,n) = 0.25 */
  const gfloat emb[3] = { 0.0f, 1.0f, 0.5f };
  const NclTriplet t[2] = { {0, 1, 2}, {1, 0, 2} };
  gfloat grad[3];
  guint active;
  gdouble l;

  /* (1 - 0.25 + 0.2) and for anchor 1: D(1,0) = 1, D(1,2) = 0.25 again */
  l = ncl_triplet_loss (emb, 3, 1, t, 2, 0.2f, grad, &active);
  NCL_CHECK (fabs (l - 0.95) < 1e-6);
  NCL_CHECK (active == 2);
  /* an easy triplet has no loss and no gradient */
  {
    const NclTriplet easy = { 0, 2, 1 };
    const gfloat e2[3] = { 0.0f, 5.0f, 0.1f };

    l = ncl_triplet_loss (e2, 3, 1, &easy, 1, 0.2f, grad, &active);
    NCL_CHECK (l == 0 && active == 0);
    NCL_CHECK (grad[0] == 0 && grad[1] == 0 && grad[2] == 0);
  }
  NCL_CHECK (ncl_triplet_loss (emb, 3, 1, t, 0, 0.2f, NULL, NULL) == 0);
}

/* Central differences of @f at every coordinate against @grad. */
typedef gdouble (*LossFn) (const gfloat * x, gpointer data);

static void
check_fd (const gchar * label, LossFn f, gpointer data, gfloat * x, gsize n,
    const gfloat * grad, gfloat eps)
{
  g_autofree gfloat *num = g_new (gfloat, n);

  for (gsize i = 0; i < n; i++) {
    gfloat v = x[i];
    gdouble lp, lm;

    x[i] = v + eps;
    lp = f (x, data);
    x[i] = v - eps;
    lm = f (x, data);
    x[i] = v;
    num[i] = (gfloat) ((lp - lm) / (2 * eps));
  }
  NCL_CHECK (ncl_test_compare (label, grad, num, n, 2e-3f, 2e-2f));
}

typedef struct
{
  gint n, d;
  const gint *labels;
  const NclTriplet *t;
  guint nt;
  NclTripletLossParams lp;
} FdData;

static gdouble
fd_loss (const gfloat * x, gpointer data)
{
  FdData *fd = data;

  return ncl_triplet_loss (x, fd->n, fd->d, fd->t, fd->nt, 0.5f, NULL, NULL);
}

static gdouble
fd_batch (const gfloat * x, gpointer data)
{
  FdData *fd = data;

  return ncl_triplet_batch_loss (x, fd->labels, fd->n, fd->d,
      NCL_TRIPLET_BATCH_HARD, 0.5f, NULL, NULL, NULL, NULL);
}

static gdouble
fd_loss_full (const gfloat * x, gpointer data)
{
  FdData *fd = data;

  return ncl_triplet_loss_full (x, fd->n, fd->d, fd->t, fd->nt, &fd->lp,
      NULL, NULL);
}

static gdouble
fd_batch_full (const gfloat * x, gpointer data)
{
  FdData *fd = data;

  return ncl_triplet_batch_loss_full (x, fd->labels, fd->n, fd->d,
      NCL_TRIPLET_BATCH_HARD, &fd->lp, NULL, NULL, NULL, NULL);
}

/* The soft margin and the plain Euclidean distance: values by hand, and
 * every combination against finite differences, raw and through the
 * normalisation. */
static void
test_loss_variants (void)
{
  enum { N = 8, D = 5 };
  const gint labels[N] = { 0, 0, 1, 1, 2, 2, 3, 3 };
  const gfloat emb[3] = { 0.0f, 1.0f, 0.5f };
  const NclTriplet t1 = { 0, 1, 2 };
  gfloat x[N * D], grad[N * D], dist[N * N];
  NclTriplet t[N * (N - 1)];
  NclTripletLossParams lp;
  guint nt, active;
  gdouble l;

  /* D(a,p) = 1, D(a,n) = 0.5 (Euclidean) or 0.25 (squared) */
  ncl_triplet_loss_params_init (&lp);
  NCL_CHECK (lp.margin == 0.2f && !lp.soft && !lp.euclidean);
  lp.euclidean = TRUE;
  l = ncl_triplet_loss_full (emb, 3, 1, &t1, 1, &lp, NULL, &active);
  NCL_CHECK (fabs (l - 0.7) < 1e-6 && active == 1);
  lp.soft = TRUE;
  l = ncl_triplet_loss_full (emb, 3, 1, &t1, 1, &lp, NULL, &active);
  NCL_CHECK (fabs (l - log1p (exp (0.5))) < 1e-6 && active == 1);
  lp.euclidean = FALSE;
  l = ncl_triplet_loss_full (emb, 3, 1, &t1, 1, &lp, NULL, &active);
  NCL_CHECK (fabs (l - log1p (exp (0.75))) < 1e-6 && active == 1);
  /* soft: a satisfied triplet still has a (small) loss, but is not active */
  {
    const NclTriplet easy = { 0, 2, 1 };

    l = ncl_triplet_loss_full (emb, 3, 1, &easy, 1, &lp, NULL, &active);
    NCL_CHECK (fabs (l - log1p (exp (-0.75))) < 1e-6 && active == 0);
  }

  ncl_test_fill_random (x, N * D, 12, -1.0f, 1.0f);
  {
    g_autoptr (GRand) rand = g_rand_new_with_seed (3);

    ncl_pairwise_sq_dist (x, N, D, dist);
    nt = ncl_triplet_mine (dist, labels, N, NCL_TRIPLET_RANDOM, 0.5f, rand,
        t);
    NCL_CHECK (nt == N);
  }
  for (gint v = 0; v < 4; v++) {
    FdData fd = { N, D, labels, t, nt, lp };
    g_autofree gchar *what = NULL;

    fd.lp.margin = 0.5f;
    fd.lp.soft = v & 1;
    fd.lp.euclidean = (v & 2) != 0;
    what = g_strdup_printf ("triplet loss%s%s", fd.lp.soft ? ", soft" : "",
        fd.lp.euclidean ? ", Euclidean" : "");
    l = ncl_triplet_loss_full (x, N, D, t, nt, &fd.lp, grad, &active);
    NCL_CHECK (l > 0 && active > 0);
    check_fd (what, fd_loss_full, &fd, x, N * D, grad, 1e-3f);
    g_free (what);
    what = g_strdup_printf ("l2norm + batch-hard%s%s",
        fd.lp.soft ? ", soft" : "", fd.lp.euclidean ? ", Euclidean" : "");
    l = ncl_triplet_batch_loss_full (x, labels, N, D, NCL_TRIPLET_BATCH_HARD,
        &fd.lp, NULL, grad, &nt, &active);
    NCL_CHECK (nt == N && l > 0);
    check_fd (what, fd_batch_full, &fd, x, N * D, grad, 1e-3f);
  }
}

static void
test_gradients (void)
{
  enum { N = 8, D = 5 };
  const gint labels[N] = { 0, 0, 1, 1, 2, 2, 3, 3 };
  gfloat x[N * D], grad[N * D], dist[N * N];
  NclTriplet t[N * (N - 1)];
  guint nt, nt2, active;
  FdData fd = { N, D, labels, t, 0 };
  gdouble l;

  ncl_test_fill_random (x, N * D, 11, -1.0f, 1.0f);
  /* raw loss with fixed (random-mined) triplets */
  {
    g_autoptr (GRand) rand = g_rand_new_with_seed (2);

    ncl_pairwise_sq_dist (x, N, D, dist);
    nt = ncl_triplet_mine (dist, labels, N, NCL_TRIPLET_RANDOM, 0.5f, rand,
        t);
    NCL_CHECK (nt == N);
    fd.nt = nt;
    l = ncl_triplet_loss (x, N, D, t, nt, 0.5f, grad, &active);
    NCL_CHECK (l > 0 && active > 0);
    check_fd ("triplet loss", fd_loss, &fd, x, N * D, grad, 1e-3f);
  }
  /* through the L2 normalisation, batch-hard (mining stays put for small
   * steps on random points) */
  l = ncl_triplet_batch_loss (x, labels, N, D, NCL_TRIPLET_BATCH_HARD, 0.5f,
      NULL, grad, &nt2, &active);
  NCL_CHECK (nt2 == N);
  NCL_CHECK (l > 0 && active > 0);
  check_fd ("l2norm + batch-hard", fd_batch, &fd, x, N * D, grad, 1e-3f);
  /* the gradient of a normalised embedding is orthogonal to it */
  for (gint i = 0; i < N; i++) {
    gdouble dot = 0;

    for (gint k = 0; k < D; k++)
      dot += (gdouble) grad[i * D + k] * x[i * D + k];
    NCL_CHECK (fabs (dot) < 1e-5);
  }
}

/* The cosine softmax (CosFace): a value by hand, and its gradients with
 * respect to the embeddings and the class weights against finite
 * differences. */
typedef struct
{
  gint n, d, c;
  const gint *labels;
  gfloat *e, *w;
  gfloat scale, margin;
} SmData;

static gdouble
fd_sm_e (const gfloat * x, gpointer data)
{
  SmData *sd = data;

  return ncl_cosine_softmax_loss (x, sd->labels, sd->n, sd->d, sd->w, sd->c,
      sd->scale, sd->margin, NULL, NULL);
}

static gdouble
fd_sm_w (const gfloat * x, gpointer data)
{
  SmData *sd = data;

  return ncl_cosine_softmax_loss (sd->e, sd->labels, sd->n, sd->d, x, sd->c,
      sd->scale, sd->margin, NULL, NULL);
}

static void
test_cosine_softmax (void)
{
  enum { N = 6, D = 4, C = 3 };
  const gint labels[N] = { 0, 0, 1, 1, 2, 0 };
  gfloat e[N * D], w[C * D], ge[N * D], gw[C * D];
  SmData sd = { N, D, C, labels, e, w, 8.0f, 0.2f };
  gdouble l;

  /* by hand: e = w_0 direction, classes 0 and 1 orthogonal:
   * logits 2 (1 - 0.5), 0 -> L = log (1 + e^-1) */
  {
    const gfloat e1[2] = { 1, 0 }, w1[4] = { 3, 0, 0, 0.5f };
    const gint y1 = 0;

    l = ncl_cosine_softmax_loss (e1, &y1, 1, 2, w1, 2, 2.0f, 0.5f, NULL,
        NULL);
    NCL_CHECK (fabs (l - log (1 + exp (-1.0))) < 1e-6);
  }
  ncl_test_fill_random (e, N * D, 31, -1.0f, 1.0f);
  ncl_test_fill_random (w, C * D, 32, -1.0f, 1.0f);
  l = ncl_cosine_softmax_loss (e, labels, N, D, w, C, sd.scale, sd.margin,
      ge, gw);
  NCL_CHECK (l > 0 && isfinite (l));
  check_fd ("cosine softmax, d/de", fd_sm_e, &sd, e, N * D, ge, 1e-3f);
  check_fd ("cosine softmax, d/dw", fd_sm_w, &sd, w, C * D, gw, 1e-3f);
  /* the weights' gradient is orthogonal to them (only directions count) */
  for (gint j = 0; j < C; j++) {
    gdouble dot = 0;

    for (gint k = 0; k < D; k++)
      dot += (gdouble) gw[j * D + k] * w[j * D + k];
    NCL_CHECK (fabs (dot) < 1e-5);
  }
}

static void
test_strings (void)
{
  NclTripletMining m;

  for (gint i = 0; i < 3; i++) {
    NCL_CHECK (ncl_triplet_mining_from_string (ncl_triplet_mining_to_string
            (i), &m));
    NCL_CHECK (m == (NclTripletMining) i);
  }
  NCL_CHECK (!ncl_triplet_mining_from_string ("hard", &m));
}

/* Augmentation: the identity copies, flips, integer shifts, a quarter
 * turn and a 2x zoom move pixels where they should, gain and offset act
 * around the plane mean; draws stay within their ranges and repeat for a
 * seed; 1 x 1 inputs are never changed. */
/* Synthetic glasses: on a flat 46 x 56 face-sized plane they darken the
 * rims (left and right of the centre at eye height) and the temples, and
 * leave the forehead, the chin and the lens centres alone; the draws stay
 * off when the probability is 0. */
static void
test_glasses (void)
{
  enum { W = 46, H = 56 };
  g_autofree gfloat *src = g_new (gfloat, W * H);
  g_autofree gfloat *dst = g_new (gfloat, W * H);
  NclEmbedTrainSettings s;
  NclAugment a;
  g_autoptr (GRand) r = g_rand_new_with_seed (5);
  gint lx, rx, ey;

  for (gint i = 0; i < W * H; i++)
    src[i] = 0.5f;
  ncl_augment_init (&a);
  a.glasses = TRUE;
  a.glasses_x = 22.5;
  a.glasses_y = 22;
  a.glasses_sep = 8;
  a.glasses_rx = 5;
  a.glasses_ry = 4;
  a.glasses_width = 1;
  a.glasses_value = -1;
  ncl_augment_apply (&a, src, 1, H, W, dst);
  lx = (gint) (a.glasses_x - a.glasses_sep);
  rx = (gint) (a.glasses_x + a.glasses_sep + 1);
  ey = (gint) a.glasses_y;
  /* rims: 5 pixels left and right of each lens centre, at eye height */
  NCL_CHECK (dst[ey * W + lx - 5] < 0 && dst[ey * W + rx + 5] < 0);
  /* top of the rims, temples at the edges */
  NCL_CHECK (dst[(ey - 4) * W + lx] < 0.5f && dst[ey * W] < 0);
  NCL_CHECK (dst[ey * W + W - 1] < 0);
  /* untouched: lens centres, forehead, chin; the source is not changed */
  NCL_CHECK (dst[ey * W + lx] == 0.5f && dst[ey * W + rx] == 0.5f);
  NCL_CHECK (dst[5 * W + 23] == 0.5f && dst[50 * W + 23] == 0.5f);
  NCL_CHECK (src[ey * W + lx - 5] == 0.5f);

  ncl_embed_train_settings_init (&s);
  for (gint k = 0; k < 20; k++) {
    ncl_augment_draw (&s, H, W, r, &a);
    NCL_CHECK (!a.glasses);
  }
  s.glasses = 1;
  for (gint k = 0; k < 20; k++) {
    ncl_augment_draw (&s, H, W, r, &a);
    NCL_CHECK (a.glasses && a.glasses_y > 0.3 * H && a.glasses_y < 0.5 * H
        && a.glasses_sep > a.glasses_rx * 0.5 && a.glasses_width > 0);
  }
}

static void
test_augment (void)
{
  enum { W = 7, H = 5, C = 2, S = 5 };
  gfloat src[C * H * W], dst[C * H * W], sq[S * S], sqd[S * S];
  NclAugment a;
  NclEmbedTrainSettings s;
  gdouble mean_s = 0, mean_d = 0;

  ncl_test_fill_random (src, C * H * W, 31, -1.0f, 1.0f);
  ncl_augment_init (&a);
  ncl_augment_apply (&a, src, C, H, W, dst);
  NCL_CHECK (memcmp (src, dst, sizeof (src)) == 0);

  a.flip = TRUE;
  ncl_augment_apply (&a, src, C, H, W, dst);
  for (gint p = 0; p < C; p++)
    for (gint y = 0; y < H; y++)
      for (gint x = 0; x < W; x++)
        NCL_CHECK (dst[(p * H + y) * W + x] ==
            src[(p * H + y) * W + W - 1 - x]);

  /* content moves 2 right and 1 up; the edges are replicated */
  ncl_augment_init (&a);
  a.dx = 2;
  a.dy = -1;
  ncl_augment_apply (&a, src, C, H, W, dst);
  for (gint p = 0; p < C; p++)
    for (gint y = 0; y < H; y++)
      for (gint x = 0; x < W; x++)
        NCL_CHECK (fabsf (dst[(p * H + y) * W + x] -
                src[(p * H + MIN (y + 1, H - 1)) * W + MAX (x - 2, 0)]) <
            1e-6f);

  /* a quarter turn counter-clockwise: what was right of the centre is
   * above it */
  ncl_test_fill_random (sq, S * S, 32, -1.0f, 1.0f);
  ncl_augment_init (&a);
  a.angle = G_PI / 2;
  ncl_augment_apply (&a, sq, 1, S, S, sqd);
  for (gint y = 0; y < S; y++)
    for (gint x = 0; x < S; x++) {
      gint sx = S / 2 - (y - S / 2), sy = S / 2 + (x - S / 2);

      NCL_CHECK (fabsf (sqd[y * S + x] - sq[sy * S + sx]) < 1e-5f);
    }
  NCL_CHECK (fabsf (sqd[1 * S + 2] - sq[2 * S + 3]) < 1e-5f);

  /* 2x about the centre on a horizontal ramp: half the slope */
  for (gint y = 0; y < S; y++)
    for (gint x = 0; x < S; x++)
      sq[y * S + x] = (gfloat) x;
  ncl_augment_init (&a);
  a.scale = 2;
  ncl_augment_apply (&a, sq, 1, S, S, sqd);
  for (gint y = 0; y < S; y++)
    for (gint x = 0; x < S; x++)
      NCL_CHECK (fabsf (sqd[y * S + x] - (2.0f + (x - 2.0f) / 2)) < 1e-5f);

  /* gain and offset around the mean of each plane */
  ncl_augment_init (&a);
  a.gain = 0.5;
  a.offset = 0.25;
  ncl_augment_apply (&a, src, C, H, W, dst);
  for (gint i = 0; i < H * W; i++) {
    mean_s += src[H * W + i];
    mean_d += dst[H * W + i];
  }
  mean_s /= H * W;
  mean_d /= H * W;
  NCL_CHECK (fabs (mean_d - (mean_s + 0.25)) < 1e-5);
  NCL_CHECK (fabsf (dst[H * W + 3] - (gfloat) (mean_s + 0.5 *
              (src[H * W + 3] - mean_s) + 0.25)) < 1e-5f);

  /* erasing: the rectangle gets the plane mean, the rest is untouched */
  ncl_augment_init (&a);
  a.erase_x = 1;
  a.erase_y = 2;
  a.erase_w = 3;
  a.erase_h = 2;
  ncl_augment_apply (&a, src, C, H, W, dst);
  mean_s = 0;
  for (gint i = 0; i < H * W; i++)
    mean_s += src[i];
  mean_s /= H * W;
  for (gint y = 0; y < H; y++)
    for (gint x = 0; x < W; x++) {
      gboolean in = x >= 1 && x < 4 && y >= 2 && y < 4;

      NCL_CHECK (in ? fabsf (dst[y * W + x] - (gfloat) mean_s) < 1e-5f :
          dst[y * W + x] == src[y * W + x]);
    }

  /* draws */
  ncl_embed_train_settings_init (&s);
  s.shift = 0.1;
  s.zoom = 0.2;
  s.rotate = 10;
  s.brightness = 0.3;
  s.contrast = 0.4;
  s.erase = 0.5;
  {
    g_autoptr (GRand) r1 = g_rand_new_with_seed (5);
    g_autoptr (GRand) r2 = g_rand_new_with_seed (5);
    gint flips = 0, moved = 0, erased = 0;

    for (gint i = 0; i < 200; i++) {
      NclAugment b;

      ncl_augment_draw (&s, 50, 40, r1, &a);
      ncl_augment_draw (&s, 50, 40, r2, &b);
      NCL_CHECK (memcmp (&a, &b, sizeof (a)) == 0);
      NCL_CHECK (fabs (a.dx) <= 4.0 && fabs (a.dy) <= 5.0);
      NCL_CHECK (a.scale >= 0.8 && a.scale <= 1.2);
      NCL_CHECK (fabs (a.angle) <= 10 * G_PI / 180 + 1e-9);
      NCL_CHECK (fabs (a.offset) <= 0.3 && a.gain >= 0.6 && a.gain <= 1.4);
      flips += a.flip;
      moved += fabs (a.dx) > 2.0;
      erased += a.erase_w > 0;
      NCL_CHECK (a.erase_w == 0 || (a.erase_x >= 0 && a.erase_y >= 0 &&
              a.erase_x + a.erase_w <= 40 && a.erase_y + a.erase_h <= 50 &&
              a.erase_w * a.erase_h >= 0.01 * 2000 &&
              a.erase_w * a.erase_h <= 0.3 * 2000));
    }
    NCL_CHECK (flips > 50 && flips < 150);
    NCL_CHECK (moved > 20);
    NCL_CHECK (erased > 50 && erased < 150);
    /* descriptors (1 x 1) stay as they are */
    ncl_augment_draw (&s, 1, 1, r1, &a);
    NCL_CHECK (!a.flip && a.dx == 0 && a.scale == 1 && a.gain == 1 &&
        a.offset == 0 && a.angle == 0);
  }
  ncl_embed_train_settings_clear (&s);
}

/* Six identities of 1 x 12 x 12 "faces": a fixed random pattern each
 * plus noise; a small conv net must separate them after a short run. */
/* Mean squared distance between the embeddings (n x d) of photos of the
 * same label and of different labels. */
static void
mean_distances (const gfloat * e, gint n, gint d, const gint * labels,
    gdouble * same, gdouble * diff)
{
  gdouble s = 0, t_diff = 0;
  gint ns = 0, nd = 0;

  for (gint i = 0; i < n; i++)
    for (gint j = i + 1; j < n; j++) {
      gdouble t = 0;

      for (gint k = 0; k < d; k++)
        t += (e[i * d + k] - e[j * d + k]) * (e[i * d + k] - e[j * d + k]);
      if (labels[i] == labels[j]) {
        s += t;
        ns++;
      } else {
        t_diff += t;
        nd++;
      }
    }
  *same = s / ns;
  *diff = t_diff / nd;
}

static void
test_trainer (void)
{
  static const gchar graph[] =
      "neuralcl-model: 1\n"
      "name: tiny\n"
      "weights: none.safetensors\n"
      "input:\n  channels: 1\n"
      "layers:\n"
      "  - {name: c1, op: conv, filters: 8, kernel: 3, padding: 1, "
      "weight: c1.w, bias: c1.b, activation: relu}\n"
      "  - {name: p1, op: max_pool, kernel: 2}\n"
      "  - {name: emb, op: conv, filters: 8, kernel: 6, weight: emb.w, "
      "bias: emb.b}\n";
  enum { IDS = 6, PER = 5, S = 12 };
  g_autoptr (GError) error = NULL;
  g_autofree gchar *dir = g_dir_make_tmp ("ncl-triplet-XXXXXX", NULL);
  g_autofree gchar *tpl = g_build_filename (dir, "tiny.yaml", NULL);
  g_autofree gchar *out = g_build_filename (dir, "out.yaml", NULL);
  g_autofree gchar *png = g_build_filename (dir, "out-loss.png", NULL);
  g_autofree gchar *ck = g_build_filename (dir, "out.train",
      "checkpoint.safetensors", NULL);
  g_autofree gfloat *x = g_new (gfloat, IDS * PER * S * S);
  g_autofree gfloat *noise = g_new (gfloat, IDS * PER * S * S);
  g_autofree gfloat *emb = NULL;
  gint labels[IDS * PER], d = 0;
  NclEmbedDataset data = { IDS * PER, 1, S, S, x, labels, IDS };
  NclEmbedTrainSettings s;
  g_autoptr (NclContext) ctx = ncl_test_context ();
  g_autoptr (NclModel) model = NULL;
  gdouble same = 0, diff = 0;

  NCL_CHECK (g_file_set_contents (tpl, graph, -1, NULL));
  ncl_test_fill_random (x, IDS * S * S, 21, -1.0f, 1.0f);
  ncl_test_fill_random (noise, IDS * PER * S * S, 22, -0.3f, 0.3f);
  for (gint i = 0; i < IDS * PER; i++)
    labels[i] = i / PER;
  {
    g_autofree gfloat *pat = g_memdup2 (x, sizeof (gfloat) * IDS * S * S);

    for (gint i = 0; i < IDS * PER; i++)
      for (gint k = 0; k < S * S; k++)
        x[i * S * S + k] = pat[(i / PER) * S * S + k] + noise[i * S * S + k];
  }

  ncl_embed_train_settings_init (&s);
  s.graph = g_strdup (tpl);
  s.output = g_strdup (out);
  s.identities_per_batch = 3;
  s.images_per_identity = 3;
  s.iterations = 40;
  s.checkpoint_every = 20;
  s.learning_rate = 3e-3;
  s.flip = FALSE;
  s.shift = 0.05;
  s.brightness = 0.05;
  s.warmup = 10;
  NCL_CHECK (ncl_embed_train (&s, &data, NULL, NULL, &error));
  NCL_CHECK_NO_ERROR (error);
  NCL_CHECK (g_file_test (png, G_FILE_TEST_EXISTS));
  NCL_CHECK (g_file_test (ck, G_FILE_TEST_EXISTS));

  model = ncl_model_load (out, &error);
  NCL_CHECK_NO_ERROR (error);
  if (model != NULL) {
    NCL_CHECK (ncl_embed_compute (ctx, model, &data, 7, &emb, &d, &error));
    NCL_CHECK_NO_ERROR (error);
    NCL_CHECK (d == 8);
    if (emb != NULL)
      mean_distances (emb, IDS * PER, d, labels, &same, &diff);
    g_print ("mean squared distance: same %.3f, different %.3f\n", same,
        diff);
    NCL_CHECK (same * 3 < diff);
  }

  /* the same with the cosine softmax added: it trains and separates */
  {
    g_autofree gchar *out2 = g_build_filename (dir, "out2.yaml", NULL);
    g_autoptr (NclModel) m2 = NULL;
    g_autofree gfloat *e2 = NULL;
    gdouble s2 = 0, d2 = 0;

    g_free (s.output);
    s.output = g_strdup (out2);
    s.softmax_weight = 1.0;
    NCL_CHECK (ncl_embed_train (&s, &data, NULL, NULL, &error));
    NCL_CHECK_NO_ERROR (error);
    m2 = ncl_model_load (out2, &error);
    NCL_CHECK_NO_ERROR (error);
    if (m2 != NULL && ncl_embed_compute (ctx, m2, &data, 7, &e2, &d,
            &error)) {
      mean_distances (e2, IDS * PER, d, labels, &s2, &d2);
      g_print ("with the cosine softmax: same %.3f, different %.3f\n", s2,
          d2);
      NCL_CHECK (s2 * 3 < d2);
    }
    NCL_CHECK_NO_ERROR (error);
  }

  /* weight averaging: the weights written are the mean of iterations
   * 20, 30 and 40, not the last ones (those stay in the checkpoint) */
  {
    g_autofree gchar *out3 = g_build_filename (dir, "out3.yaml", NULL);
    g_autofree gchar *w3 = g_build_filename (dir, "out3.safetensors", NULL);
    g_autofree gchar *ck3 = g_build_filename (dir, "out3.train",
        "checkpoint.safetensors", NULL);
    const gint64 shape[4] = { 8, 8, 6, 6 };
    g_autoptr (NclSafetensors) sw = NULL, sc = NULL;
    g_autofree gfloat *vw = NULL, *vc = NULL;

    g_free (s.output);
    s.output = g_strdup (out3);
    s.softmax_weight = 0;
    s.average_from = 20;
    NCL_CHECK (ncl_embed_train (&s, &data, NULL, NULL, &error));
    NCL_CHECK_NO_ERROR (error);
    sw = ncl_safetensors_load (w3, &error);
    NCL_CHECK_NO_ERROR (error);
    sc = ncl_safetensors_load (ck3, &error);
    NCL_CHECK_NO_ERROR (error);
    if (sw != NULL && sc != NULL) {
      gdouble dw = 0;

      vw = ncl_safetensors_read_f32 (sw, "emb.w", 4, shape, &error);
      NCL_CHECK_NO_ERROR (error);
      vc = ncl_safetensors_read_f32 (sc, "emb.w", 4, shape, &error);
      NCL_CHECK_NO_ERROR (error);
      for (gint k = 0; vw != NULL && vc != NULL && k < 8 * 8 * 6 * 6; k++)
        dw = MAX (dw, fabs (vw[k] - vc[k]));
      NCL_CHECK (dw > 1e-6);
    }
    {
      g_autoptr (NclModel) m3 = ncl_model_load (out3, &error);
      g_autofree gfloat *e3 = NULL;
      gdouble s3 = 0, d3 = 0;

      NCL_CHECK_NO_ERROR (error);
      if (m3 != NULL && ncl_embed_compute (ctx, m3, &data, 7, &e3, &d,
              &error)) {
        mean_distances (e3, IDS * PER, d, labels, &s3, &d3);
        g_print ("averaged weights: same %.3f, different %.3f\n", s3, d3);
        NCL_CHECK (s3 * 3 < d3);
      }
      NCL_CHECK_NO_ERROR (error);
    }
    s.average_from = 0;
  }

  /* a template that does not end in C x 1 x 1 */
  {
    g_autofree gchar *bad = g_build_filename (dir, "bad.yaml", NULL);
    NclEmbedTrainSettings b;

    NCL_CHECK (g_file_set_contents (bad,
            "neuralcl-model: 1\nweights: x.safetensors\ninput:\n"
            "  channels: 1\nlayers:\n  - {name: c1, op: conv, filters: 4, "
            "kernel: 3, weight: w}\n", -1, NULL));
    ncl_embed_train_settings_init (&b);
    b.graph = g_strdup (bad);
    b.output = g_strdup (out);
    b.identities_per_batch = 2;
    b.images_per_identity = 2;
    NCL_CHECK (!ncl_embed_train (&b, &data, NULL, NULL, &error));
    NCL_CHECK (error != NULL && strstr (error->message, "C x 1 x 1"));
    g_clear_error (&error);
    ncl_embed_train_settings_clear (&b);
  }
  ncl_embed_train_settings_clear (&s);
}

gint
main (gint argc, gchar ** argv)
{
  test_strings ();
  test_batch_hard ();
  test_semi_hard ();
  test_random ();
  test_loss_value ();
  test_gradients ();
  test_loss_variants ();
  test_cosine_softmax ();
  test_augment ();
  test_glasses ();
  test_trainer ();
  return ncl_test_finish ();
}
