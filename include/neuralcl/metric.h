/* Metric learning for faces: the triplet loss with online mining, an
 * embedding trainer on NclTrainGraph, and a learned verification head
 * (logistic regression on descriptor differences).  See
 * docs/face-training.md.
 *
 * Conventions: an embedding batch is @n rows of @d floats (host memory),
 * L2-normalised before the loss; distances in the loss are SQUARED
 * Euclidean distances, D[i][j] = ||e_i - e_j||^2. */
#pragma once

#include <neuralcl/train.h>
#include <neuralcl/face-config.h>

G_BEGIN_DECLS

/* ---- triplet loss and mining (host, pure functions) --------------------- */

/**
 * NclTripletMining:
 * @NCL_TRIPLET_BATCH_HARD: one triplet per anchor: its farthest positive
 *   and its nearest negative in the batch (Hermans et al. 2017)
 * @NCL_TRIPLET_SEMI_HARD: every anchor-positive pair, with a negative drawn
 *   at random among the semi-hard ones, D(a,p) < D(a,n) < D(a,p) + margin
 *   (Schroff et al. 2015, FaceNet); pairs without one give no triplet
 * @NCL_TRIPLET_RANDOM: every anchor-positive pair with a random negative
 */
typedef enum
{
  NCL_TRIPLET_BATCH_HARD,
  NCL_TRIPLET_SEMI_HARD,
  NCL_TRIPLET_RANDOM,
} NclTripletMining;

/* "batch-hard", "semi-hard", "random" */
const gchar *ncl_triplet_mining_to_string (NclTripletMining m);
gboolean ncl_triplet_mining_from_string (const gchar * s,
    NclTripletMining * m);

typedef struct
{
  gint a, p, n;                 /* rows of the batch */
} NclTriplet;

/* D (n x n) = squared Euclidean distances between the rows of @emb. */
void ncl_pairwise_sq_dist (const gfloat * emb, gint n, gint d, gfloat * dist);

/* The most triplets ncl_triplet_mine() can write for @n rows. */
gsize ncl_triplet_max_count (gint n);

/**
 * ncl_triplet_mine:
 * @dist: n x n squared distances (ncl_pairwise_sq_dist)
 * @labels: identity of each row
 * @rand: (nullable): random source for semi-hard and random mining
 *   (required by those two)
 * @out: room for ncl_triplet_max_count (@n) triplets
 *
 * Anchors without a positive or without a negative in the batch give no
 * triplet.  Returns: the number of triplets written.
 */
guint ncl_triplet_mine (const gfloat * dist, const gint * labels, gint n,
    NclTripletMining mining, gfloat margin, GRand * rand, NclTriplet * out);

/**
 * ncl_triplet_loss:
 * @emb: n x d embeddings (normally L2-normalised)
 * @grad: (nullable): n x d, OVERWRITTEN with dL/d(emb)
 * @n_active: (out) (optional): triplets with a positive loss
 *
 * L = mean over the @nt triplets of max (D(a,p) - D(a,n) + margin, 0);
 * 0 when there is no triplet.
 */
gdouble ncl_triplet_loss (const gfloat * emb, gint n, gint d,
    const NclTriplet * t, guint nt, gfloat margin, gfloat * grad,
    guint * n_active);

/**
 * ncl_triplet_batch_loss:
 * @x: n x d raw (unnormalised) embeddings
 * @grad: (nullable): n x d, OVERWRITTEN with dL/dx (through the L2
 *   normalisation)
 * @n_triplets: (out) (optional)
 * @n_active: (out) (optional)
 *
 * L2-normalises @x (eps 1e-10), mines and returns the triplet loss.
 */
gdouble ncl_triplet_batch_loss (const gfloat * x, const gint * labels, gint n,
    gint d, NclTripletMining mining, gfloat margin, GRand * rand,
    gfloat * grad, guint * n_triplets, guint * n_active);

/**
 * NclTripletLossParams:
 * @margin: alpha of the hinge (and the width of the semi-hard window)
 * @soft: the soft margin of Hermans et al.: softplus (x) = log (1 + exp
 *   (x)) of x = D(a,p) - D(a,n) instead of max (x + margin, 0); a triplet
 *   counts as active when x > 0
 * @euclidean: D is the plain Euclidean distance instead of its square
 *
 * ncl_triplet_loss_params_init() gives margin 0.2, hinge, squared: the
 * loss of ncl_triplet_loss().
 */
typedef struct
{
  gfloat margin;
  gboolean soft;
  gboolean euclidean;
} NclTripletLossParams;

void ncl_triplet_loss_params_init (NclTripletLossParams * p);

/* ncl_triplet_loss() with the variants of @lp (the mean over the @nt
 * triplets either way). */
gdouble ncl_triplet_loss_full (const gfloat * emb, gint n, gint d,
    const NclTriplet * t, guint nt, const NclTripletLossParams * lp,
    gfloat * grad, guint * n_active);

/* ncl_triplet_batch_loss() with the variants of @lp; mining sees the
 * distances of the loss. */
gdouble ncl_triplet_batch_loss_full (const gfloat * x, const gint * labels,
    gint n, gint d, NclTripletMining mining, const NclTripletLossParams * lp,
    GRand * rand, gfloat * grad, guint * n_triplets, guint * n_active);

/**
 * ncl_cosine_softmax_loss:
 * @e: n x d embeddings (normally L2-normalised)
 * @labels: the class of each row, 0 .. @n_classes - 1
 * @w: n_classes x d class weights (any length; normalised inside)
 * @grad_e: (nullable): n x d, OVERWRITTEN with dL/d(e)
 * @grad_w: (nullable): n_classes x d, OVERWRITTEN with dL/d(w)
 *
 * The large-margin cosine loss (CosFace, Wang et al. 2018): with
 * c_ij = <e_i, w_j / ||w_j||>, the logits are @scale (c_ij - @margin
 * [j = y_i]) and L is the mean over the rows of their softmax cross
 * entropy.
 */
gdouble ncl_cosine_softmax_loss (const gfloat * e, const gint * labels,
    gint n, gint d, const gfloat * w, gint n_classes, gfloat scale,
    gfloat margin, gfloat * grad_e, gfloat * grad_w);

/* ---- embedding trainer ------------------------------------------------- */

/* A labelled training set in host memory: (n, c, h, w) inputs (images
 * after preprocessing, or descriptors as (n, 128, 1, 1)). */
typedef struct
{
  gint n, c, h, w;
  gfloat *x;                    /* n * c * h * w */
  gint *labels;                 /* n, identities 0..n_identities-1 */
  gint n_identities;
} NclEmbedDataset;

typedef struct
{
  gchar *graph;                 /* template graph YAML (layers: conv,
                                 * max_pool, avg_pool, activation,
                                 * instance_norm; the output's C x 1 x 1 is
                                 * the embedding) */
  gchar *output;                /* OUTPUT.yaml; weights OUTPUT.safetensors */
  gchar *origin;                /* written into the graph; NULL: generic */
  NclTripletMining mining;      /* batch-hard */
  gdouble margin;               /* 0.2 */
  gint identities_per_batch;    /* P, 8 */
  gint images_per_identity;     /* K, 4 */
  gint iterations;              /* 1000 */
  gdouble learning_rate;        /* 1e-3 */
  gdouble weight_decay;         /* 0 (decoupled, as AdamW: the Adam
                                 * defaults of ncl_adam_params_init) */
  gboolean flip;                /* random horizontal flips (images), TRUE */
  gint seed;                    /* 1 */
  gint checkpoint_every;        /* 200; checkpoints in OUTPUT.train/ */
  gboolean resume;              /* continue from OUTPUT.train/ */
  gchar *device;
  /* augmentation of each image of a batch (seeded, see NclAugment); none
   * for 1 x 1 inputs (descriptors) */
  gdouble shift;                /* translation up to +-shift x the size, 0 */
  gdouble zoom;                 /* scale in [1 - zoom, 1 + zoom], 0 */
  gdouble rotate;               /* rotation up to +-rotate degrees, 0 */
  gdouble brightness;           /* offset in +-brightness (input units), 0 */
  gdouble contrast;             /* gain in [1 - contrast, 1 + contrast], 0 */
  gint warmup;                  /* iterations of random mining before
                                 * @mining (batch-hard collapses from a
                                 * fresh start under augmentation), 0 */
  gboolean cosine;              /* anneal the learning rate to 0 along a
                                 * half cosine over the iterations, FALSE */
  gdouble erase;                /* probability of erasing a random
                                 * rectangle (random erasing, Zhong et al.
                                 * 2020: 2-25 % of the area, aspect 0.3 to
                                 * 3.3), 0 */
  gboolean soft_margin;         /* NclTripletLossParams.soft, FALSE */
  gboolean euclidean;           /* NclTripletLossParams.euclidean, FALSE */
  /* an auxiliary cosine-softmax loss over the training identities
   * (ncl_cosine_softmax_loss), added to the triplet loss with this weight;
   * its class weights are trained by Adam beside the net, 0: off */
  gdouble softmax_weight;
  gdouble softmax_scale;        /* s, 16 */
  gdouble softmax_margin;       /* m, 0.1 */
  /* weight averaging (SWA, Izmailov et al. 2018): from this iteration on,
   * the weights of every 10th iteration are averaged and the mean is
   * written as the trained weights (the checkpoint keeps the last ones;
   * a resumed run averages from where it resumes), 0: off */
  gint average_from;
  gdouble glasses;              /* probability of drawing a synthetic pair
                                 * of glasses (NclAugment), 0 */
} NclEmbedTrainSettings;

void ncl_embed_train_settings_init (NclEmbedTrainSettings * s);
void ncl_embed_train_settings_clear (NclEmbedTrainSettings * s);

/**
 * NclAugment:
 * @flip: mirror left-right
 * @dx, @dy: translation in pixels (the content moves right / down)
 * @scale: magnification about the centre (> 1 crops, < 1 shrinks with the
 *   edges replicated)
 * @angle: rotation about the centre in radians (counter-clockwise on the
 *   screen)
 * @gain, @offset: per plane v' = m + gain (v - m) + offset, m the plane's
 *   mean after the geometric part
 * @erase_x, @erase_y, @erase_w, @erase_h: a rectangle (pixels) set to the
 *   plane's mean at the end; none when @erase_w or @erase_h is 0
 * @glasses: draw a pair of glasses on the source before the geometric
 *   part: two elliptic rims of radii @glasses_rx x @glasses_ry (pixels)
 *   centred at (@glasses_x -+ @glasses_sep, @glasses_y), a bridge between
 *   them and temples out to the edges, lines @glasses_width pixels wide
 *   of value @glasses_value (antialiased)
 *
 * One image's augmentation: the geometric part samples the source
 * bilinearly with the edges replicated; the identity copies exactly.
 */
typedef struct
{
  gboolean flip;
  gdouble dx, dy, scale, angle;
  gdouble gain, offset;
  gint erase_x, erase_y, erase_w, erase_h;
  gboolean glasses;
  gdouble glasses_x, glasses_y, glasses_sep, glasses_rx, glasses_ry;
  gdouble glasses_width, glasses_value;
} NclAugment;

void ncl_augment_init (NclAugment * a);
/* Draws an augmentation for an image of @h x @w within the ranges of @s
 * (the identity for 1 x 1 inputs). */
void ncl_augment_draw (const NclEmbedTrainSettings * s, gint h, gint w,
    GRand * rand, NclAugment * a);
/* @dst (c, h, w) = @a applied to @src (c, h, w); they must not overlap. */
void ncl_augment_apply (const NclAugment * a, const gfloat * src, gint c,
    gint h, gint w, gfloat * dst);

typedef struct
{
  gint iteration, iterations, start_iteration;
  gdouble loss;                 /* of the last batch */
  gdouble loss_avg;             /* running mean (0.95) */
  gdouble active;               /* fraction of triplets with a loss > 0 */
  guint n_triplets;
  gdouble elapsed_s, eta_s;
  const gchar *message;         /* a line to print, or NULL */
} NclEmbedTrainProgress;

typedef gboolean (*NclEmbedTrainCallback) (const NclEmbedTrainProgress * p,
    gpointer user_data);

/**
 * ncl_embed_train:
 *
 * Writes the template's initial weights (He-normal convs, zero biases,
 * seeded), then trains with the triplet loss on P x K batches and Adam;
 * writes OUTPUT.yaml/.safetensors (the template with its weights line
 * pointing at the trained weights), checkpoints with the Adam state in
 * OUTPUT.train/, a loss log OUTPUT.train/loss.tsv and a loss curve
 * OUTPUT-loss.png.  Deterministic for a seed on one device.
 */
gboolean ncl_embed_train (const NclEmbedTrainSettings * s,
    const NclEmbedDataset * data, NclEmbedTrainCallback cb,
    gpointer user_data, GError ** error);

/* Runs a trained embedder (conv graph) on @data in batches of @batch:
 * @emb (n x d) receives L2-normalised embeddings; *@d the dimension. */
gboolean ncl_embed_compute (NclContext * ctx, NclModel * model,
    const NclEmbedDataset * data, gint batch, gfloat ** emb, gint * d,
    GError ** error);

/* ---- verification head ------------------------------------------------- */

/**
 * NclVerifierFeature:
 * @NCL_VERIFIER_ABS: |f_i - f_j| per component
 * @NCL_VERIFIER_CHI2: (f_i - f_j)^2 / (|f_i| + |f_j|) per component (0
 *   where both are 0); the absolute values keep it defined for signed
 *   descriptors
 */
typedef enum
{
  NCL_VERIFIER_ABS,
  NCL_VERIFIER_CHI2,
} NclVerifierFeature;

const gchar *ncl_verifier_feature_to_string (NclVerifierFeature f);
gboolean ncl_verifier_feature_from_string (const gchar * s,
    NclVerifierFeature * f);
void ncl_verifier_features (NclVerifierFeature f, const gfloat * a,
    const gfloat * b, gint d, gfloat * out);

/* p(same) = sigmoid (sum_k w_k feature_k + b).  Immutable once trained. */
typedef struct _NclVerifier NclVerifier;

NclVerifier *ncl_verifier_new (gint dim, NclVerifierFeature feature);
void ncl_verifier_free (NclVerifier * v);
gint ncl_verifier_get_dim (const NclVerifier * v);
NclVerifierFeature ncl_verifier_get_feature (const NclVerifier * v);
/* w (dim floats) and b (transfer none). */
gfloat *ncl_verifier_get_weights (NclVerifier * v);
gfloat *ncl_verifier_get_bias (NclVerifier * v);

gdouble ncl_verifier_logit (const NclVerifier * v, const gfloat * a,
    const gfloat * b);
gdouble ncl_verifier_probability (const NclVerifier * v, const gfloat * a,
    const gfloat * b);

/**
 * ncl_verifier_loss:
 * @feats: n x dim features, @same: n labels (0/1)
 * @gw, @gb: (nullable): OVERWRITTEN with the gradient
 *
 * Mean logistic loss (binary cross-entropy) plus l2/2 * ||w||^2.
 */
gdouble ncl_verifier_loss (const NclVerifier * v, const gfloat * feats,
    const guint8 * same, guint n, gdouble l2, gfloat * gw, gfloat * gb);

typedef struct
{
  gint iterations;              /* full-batch Adam steps, 3000 */
  gdouble learning_rate;        /* 0.01 */
  gdouble l2;                   /* 1e-4 */
  gboolean balance;             /* weight classes to equal mass, TRUE */
} NclVerifierTrainSettings;

void ncl_verifier_train_settings_init (NclVerifierTrainSettings * s);

/* Fits w and b from zero (deterministic); @losses (nullable) receives
 * the loss of every iteration (iterations doubles). */
gboolean ncl_verifier_train (NclVerifier * v, const gfloat * feats,
    const guint8 * same, guint n, const NclVerifierTrainSettings * s,
    gdouble * losses, GError ** error);

/* Saves as a model: PATH.yaml (one fc layer dim -> 1 with a sigmoid,
 * architecture "face-verifier-abs" or "-chi2") and PATH.safetensors
 * beside it; @path ends in .yaml. */
gboolean ncl_verifier_save (const NclVerifier * v, const gchar * path,
    const gchar * origin, GError ** error);
/* Loads what ncl_verifier_save() wrote (through ncl_model_load). */
NclVerifier *ncl_verifier_load (const gchar * path, GError ** error);

/* The bundled head for the face_recognition descriptor:
 * $NEURALCL_VERIFIER_MODEL, else models/verifier/face-verifier.yaml in
 * the source tree or the installed datadir (transfer full), or NULL. */
gchar *ncl_verifier_find_default (void);

/* The head a face config asks for: NULL without error for "verifier:
 * distance"; for "classifier", verifier-model or the bundled default
 * (NCL_ERROR_NOT_FOUND when there is none). */
NclVerifier *ncl_verifier_from_config (const NclFaceConfig * c,
    GError ** error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (NclVerifier, ncl_verifier_free)

G_END_DECLS
