/* Training: a graph executor that keeps what backward needs, the
 * style-transfer losses, the fast style trainer (Johnson et al. 2016) and
 * pixel optimisation (Gatys et al. 2016).  See docs/style-training.md.
 *
 * Loss conventions (all on the device, each with a C reference here):
 *  - content:  J_c = mean over N C H W of (F_G - F_C)^2 at one VGG layer;
 *  - style:    J_s = sum over layers w_l * mean over N C C of (G(F_G) -
 *              G(S))^2, with the Gram matrix G(F) = F F^T / (C H W);
 *  - TV:       J_tv = mean over N C H W of the squared differences of
 *              horizontal and vertical neighbours (0..255 pixels);
 *  - total:    J = alpha J_c + beta J_s + gamma J_tv. */
#pragma once

#include <neuralcl/backward.h>
#include <neuralcl/model.h>
#include <neuralcl/image.h>

G_BEGIN_DECLS

/* ---- loss kernels -------------------------------------------------------- */

/* g (n, c, c) = scale * F F^T per image, f (n, c, hw). */
void ncl_gram_ref (const gfloat * f, gint n, gint c, gint hw, gfloat scale,
    gfloat * g);
/* @g is reshaped to (n, 1, c, c); @f is (n, c, h, w). */
gboolean ncl_gram (NclContext * ctx, const NclTensor * f, gfloat scale,
    NclTensor * g, GError ** error);

/* df (n, c, hw) = scale * A F [+ df if @accumulate], A (n, c, c): with a
 * symmetric dL/dG = A/2 of G = s F F^T this is dL/dF for scale = s. */
void ncl_gram_backward_ref (const gfloat * a, const gfloat * f, gint n,
    gint c, gint hw, gfloat scale, gboolean accumulate, gfloat * df);
/* @df must have @f's shape. */
gboolean ncl_gram_backward (NclContext * ctx, const NclTensor * a,
    const NclTensor * f, gfloat scale, gboolean accumulate, NclTensor * df,
    GError ** error);

/* Returns sum (a - b)^2 over @n values of @a, with @b repeated every @nb
 * values (b[i % nb]: one target for a whole batch); when @grad is not NULL
 * it gets gscale * (a - b) (added to it if @accumulate). */
gdouble ncl_sq_diff_ref (const gfloat * a, gsize n, const gfloat * b,
    gsize nb, gfloat gscale, gboolean accumulate, gfloat * grad);
/* @grad (nullable) must have @a's element count; numel (@a) must be a
 * multiple of numel (@b).  Waits for the result. */
gboolean ncl_sq_diff (NclContext * ctx, const NclTensor * a,
    const NclTensor * b, gfloat gscale, gboolean accumulate,
    NclTensor * grad, gdouble * sum, GError ** error);

/* Returns the sum over planes of the squared neighbour differences of x
 * (planes, h, w); adds gscale * d(sum)/dx to @grad (nullable). */
gdouble ncl_tv_loss_ref (const gfloat * x, gint planes, gint h, gint w,
    gfloat gscale, gfloat * grad);
gboolean ncl_tv_loss (NclContext * ctx, const NclTensor * x, gfloat gscale,
    NclTensor * grad, gdouble * sum, GError ** error);

/* VGG input (Caffe convention): out[b][c] = in[b][2 - c] - mean[c], mean
 * (B, G, R) = (103.939, 116.779, 123.68), @in RGB 0..255 (n, 3, h, w). */
void ncl_rgb_to_vgg_ref (const gfloat * in, gint n, gint hw, gfloat * out);
gboolean ncl_rgb_to_vgg (NclContext * ctx, const NclTensor * in,
    NclTensor * out, GError ** error);
/* Its backward: drgb[b][c] = dvgg[b][2 - c] (+ drgb if @accumulate). */
void ncl_vgg_to_rgb_grad_ref (const gfloat * dvgg, gint n, gint hw,
    gboolean accumulate, gfloat * drgb);
gboolean ncl_vgg_to_rgb_grad (NclContext * ctx, const NclTensor * dvgg,
    gboolean accumulate, NclTensor * drgb, GError ** error);

/* ---- training graph ------------------------------------------------------ */

/* Runs a model's graph (conv, instance_norm, activation, add, concat,
 * upsample, pad, max_pool, avg_pool) keeping every activation, then
 * back-propagates gradients seeded on any layers.  With @trainable, conv
 * weights and biases and instance-norm scales and shifts are parameters
 * with gradients and Adam state; otherwise the graph is frozen (a loss
 * network) and only activation gradients flow. */
typedef struct _NclTrainGraph NclTrainGraph;

NclTrainGraph *ncl_train_graph_new (NclContext * ctx, NclModel * model,
    gboolean trainable, GError ** error);
void ncl_train_graph_free (NclTrainGraph * g);
NclContext *ncl_train_graph_get_context (const NclTrainGraph * g);

/* Index of layer @name, or -1. */
gint ncl_train_graph_find (const NclTrainGraph * g, const gchar * name);
/* Index of the model's (first) output layer. */
gint ncl_train_graph_get_output_index (const NclTrainGraph * g);

/* Runs layers 0..@last (-1: up to the model's output) on @input, which
 * must stay alive and unchanged until backward. */
gboolean ncl_train_graph_forward (NclTrainGraph * g, const NclTensor * input,
    gint last, GError ** error);
/* Output of layer @i in the last forward (transfer none). */
NclTensor *ncl_train_graph_get_activation (const NclTrainGraph * g, gint i);

/* Forgets the activation gradients of the last backward. */
void ncl_train_graph_clear_grads (NclTrainGraph * g);
/* The gradient tensor of layer @i, shaped like its activation, for a loss
 * to write into; *@fresh is TRUE when it held nothing yet (write it, do
 * not add).  It counts as seeded from then on. */
NclTensor *ncl_train_graph_grad_tensor (NclTrainGraph * g, gint i,
    gboolean * fresh, GError ** error);
/* Back-propagates from the seeded layers down to the input; parameter
 * gradients accumulate.  @dinput (nullable) receives dL/d(input)
 * (overwritten; zero when nothing reaches it). */
gboolean ncl_train_graph_backward (NclTrainGraph * g, NclTensor * dinput,
    GError ** error);

/* Parameters (trainable graphs only), in layer order. */
typedef enum
{
  NCL_PARAM_VALUE,
  NCL_PARAM_GRAD,
  NCL_PARAM_ADAM_M,
  NCL_PARAM_ADAM_V,
} NclParamBuffer;

typedef struct
{
  const gchar *layer;           /* layer name */
  const gchar *op;              /* "conv" or "instance_norm" */
  const gchar *role;            /* "weight" or "bias" */
  gint ndim;
  gint64 shape[4];
  gsize numel;
} NclTrainParamInfo;

guint ncl_train_graph_get_n_params (const NclTrainGraph * g);
void ncl_train_graph_get_param_info (const NclTrainGraph * g, guint i,
    NclTrainParamInfo * info);
gboolean ncl_train_graph_read_param (NclTrainGraph * g, guint i,
    NclParamBuffer which, gfloat * data, GError ** error);
gboolean ncl_train_graph_write_param (NclTrainGraph * g, guint i,
    NclParamBuffer which, const gfloat * data, GError ** error);
gboolean ncl_train_graph_zero_param_grads (NclTrainGraph * g,
    GError ** error);
/* One Adam step (@step counts from 1) over every parameter. */
gboolean ncl_train_graph_adam_step (NclTrainGraph * g,
    const NclAdamParams * p, gint step, GError ** error);

/* ---- style losses on a VGG loss network --------------------------------- */

/* VGG-19 blocks 1-3 as a frozen train graph, with the losses above.
 * Layer names: relu1_1, relu1_2, relu2_1, relu2_2, relu3_1 .. relu3_4. */
typedef struct _NclStyleLoss NclStyleLoss;

#define NCL_STYLE_MAX_LAYERS 8

typedef struct
{
  gchar *content_layer;         /* "relu2_2" */
  gint n_style_layers;
  gchar *style_layers[NCL_STYLE_MAX_LAYERS];    /* relu1_2, relu2_2, relu3_3 */
  gdouble style_layer_weights[NCL_STYLE_MAX_LAYERS];    /* 1 each */
  gdouble content_weight;       /* alpha */
  gdouble style_weight;         /* beta */
  gdouble tv_weight;            /* gamma */
} NclStyleLossSettings;

void ncl_style_loss_settings_init (NclStyleLossSettings * s);
void ncl_style_loss_settings_clear (NclStyleLossSettings * s);
void ncl_style_loss_settings_copy (NclStyleLossSettings * dst,
    const NclStyleLossSettings * src);

/* The default loss network: $NEURALCL_LOSS_NETWORK, else
 * ../shared/data/style/loss/vgg19-block1-3.safetensors beside the source
 * tree (transfer full). */
gchar *ncl_style_loss_default_network (void);

/* @vgg_path: the VGG-19 block 1-3 safetensors. */
NclStyleLoss *ncl_style_loss_new (NclContext * ctx, const gchar * vgg_path,
    const NclStyleLossSettings * s, GError ** error);
void ncl_style_loss_free (NclStyleLoss * l);

/* Computes the Gram targets of a style image (1, 3, h, w), RGB 0..255. */
gboolean ncl_style_loss_set_style (NclStyleLoss * l, const NclTensor * style,
    GError ** error);
/* Computes the content targets of @content (n, 3, h, w) (the batch the
 * next evaluate compares against); NULL: no content term. */
gboolean ncl_style_loss_set_content (NclStyleLoss * l,
    const NclTensor * content, GError ** error);

typedef struct
{
  gdouble content, style, tv;   /* weighted terms */
  gdouble total;
  gdouble style_raw;            /* unweighted sum over layers of w_l J_s,l */
} NclStyleLossValues;

/* Evaluates the loss of @gen (n, 3, h, w), RGB 0..255, and when @dgen is
 * not NULL writes dJ/dgen into it (reshaped like @gen). */
gboolean ncl_style_loss_evaluate (NclStyleLoss * l, const NclTensor * gen,
    NclStyleLossValues * values, NclTensor * dgen, GError ** error);

/* Style loss of @img against the style target, unweighted over
 * relu1_2/relu2_2/relu3_3 with weight 1 each (the style-models spec's
 * figure), whatever the settings; used for output/input ratios. */
gboolean ncl_style_loss_measure (NclStyleLoss * l, const NclTensor * img,
    gdouble * value, GError ** error);

/* ---- fast style training (Johnson et al.) ------------------------------- */

typedef struct
{
  gchar *style;                 /* the painting */
  gchar *content;               /* directory of training photos (recursive) */
  gchar *output;                /* model graph path (.yaml); weights beside */
  gchar *name;                  /* model name; default: output's basename */
  gchar *preset;                /* "johnson" (32/64/128, 5 residual blocks),
                                 * "small" (16/32/64, 3 blocks) */
  gint image_size;              /* square training crops, 256 */
  gint style_size;              /* longest side of the style image, 512;
                                 * 0 = as is */
  gdouble crop_scale;           /* photos are scaled so the short side is
                                 * image_size x U(1, crop_scale), 1.5 */
  gint batch_size;              /* 4 */
  gint iterations;              /* 2000 */
  gdouble learning_rate;        /* 1e-3 */
  gint seed;                    /* 1 */
  gint checkpoint_every;        /* iterations, 100 */
  gchar *checkpoint_dir;        /* default: OUTPUT without .yaml + ".train" */
  gboolean resume;              /* continue from checkpoint_dir */
  gchar **samples;              /* sample images for the grid; "synthetic"
                                 * is a generated test card */
  gint sample_size;             /* longest side of samples, 256 */
  gchar *loss_network;          /* NULL: ncl_style_loss_default_network() */
  gchar *device;
  NclStyleLossSettings loss;
} NclStyleTrainSettings;

void ncl_style_train_settings_init (NclStyleTrainSettings * s);
void ncl_style_train_settings_clear (NclStyleTrainSettings * s);
/* Reads a training YAML over @s (see config/style-train.yaml); relative
 * paths resolve against the file's directory. */
gboolean ncl_style_train_settings_load (NclStyleTrainSettings * s,
    const gchar * path, GError ** error);
/* The settings as YAML that _load() reads back (transfer full). */
gchar *ncl_style_train_settings_to_yaml (const NclStyleTrainSettings * s);

typedef struct
{
  gint iteration;               /* done so far */
  gint iterations;
  gint start_iteration;         /* where this run started (resume) */
  gdouble elapsed_s;            /* this run */
  gdouble images_per_s;         /* recent */
  gdouble eta_s;
  NclStyleLossValues loss;      /* of the last batch */
  const gchar *message;         /* a line to print (checkpoint...), or NULL */
} NclStyleTrainProgress;

/* Called after every iteration and with each message; returning FALSE
 * stops training after writing a checkpoint. */
typedef gboolean (*NclStyleTrainCallback) (const NclStyleTrainProgress * p,
    gpointer user_data);

gboolean ncl_style_train (const NclStyleTrainSettings * s,
    NclStyleTrainCallback callback, gpointer user_data, GError ** error);

/* A TransformerNet of @preset with PyTorch's default initialisation
 * (uniform +-1/sqrt(fan_in) weights and biases, unit norm scales) written
 * to @path as a .safetensors checkpoint. */
gboolean ncl_style_write_initial_net (const gchar * preset, guint32 seed,
    const gchar * path, GError ** error);

/* ---- pixel optimisation (Gatys et al.) ---------------------------------- */

typedef struct
{
  gchar *content;               /* image */
  gchar *style;                 /* painting */
  gchar *output;                /* PNG */
  gint size;                    /* longest side of the result, 384 */
  gint style_size;              /* longest side of the style image, 512 */
  gint iterations;              /* 300 */
  gchar *optimizer;             /* "adam" or "lbfgs" */
  gdouble learning_rate;        /* Adam step in pixel units, 2 */
  gchar *init;                  /* "content" or "noise" */
  gint seed;
  gchar *loss_network;
  gchar *device;
  NclStyleLossSettings loss;
} NclGatysSettings;

void ncl_gatys_settings_init (NclGatysSettings * s);
void ncl_gatys_settings_clear (NclGatysSettings * s);

typedef struct
{
  gint iteration, iterations;
  gdouble elapsed_s, eta_s;
  NclStyleLossValues loss;
} NclGatysProgress;

typedef gboolean (*NclGatysCallback) (const NclGatysProgress * p,
    gpointer user_data);

/* Optimises the pixels of the output image; @ratio (nullable) receives
 * the style-loss ratio result / content (ncl_style_loss_measure). */
gboolean ncl_gatys_run (const NclGatysSettings * s, NclGatysCallback cb,
    gpointer user_data, gdouble * ratio, GError ** error);

/* ---- plots (lib/plot.c) -------------------------------------------------- */

/* A loss-curve PNG: @n_series curves of @n points over @x, log y axis. */
gboolean ncl_plot_curves (const gchar * path, const gchar * title,
    const gdouble * x, guint n, guint n_series, const gchar * const *names,
    const gdouble * const *ys, GError ** error);
/* A PNG grid of RGB images, row-major (@rows x @cols cells, NULL cells are
 * left grey), each cell scaled to fit @cell x @cell. */
gboolean ncl_plot_image_grid (const gchar * path, NclImage * const *cells,
    gint rows, gint cols, gint cell, GError ** error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (NclTrainGraph, ncl_train_graph_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (NclStyleLoss, ncl_style_loss_free)

G_END_DECLS
