/* Models: a YAML graph plus safetensors weights, and runners that execute
 * them.  See docs/model-format.md. */
#pragma once

#include <neuralcl/tensor.h>
#include <neuralcl/layers.h>

G_BEGIN_DECLS

/* An immutable, refcounted model: graph and host weights (float32). */
typedef struct _NclModel NclModel;

/**
 * ncl_model_load:
 * @path: a model YAML graph, or a PyTorch fast_neural_style TransformerNet
 *   checkpoint saved as .safetensors (its graph is derived from its tensor
 *   names and shapes).
 *
 * Loads and validates a model: every weight present with the shape the
 * graph needs, no extra weights, every layer's parameters valid.
 * Returns: (transfer full): the model, or NULL with @error naming the file
 *   and the tensor or YAML position at fault.
 */
NclModel *ncl_model_load (const gchar * path, GError ** error);
NclModel *ncl_model_ref (NclModel * model);
void ncl_model_unref (NclModel * model);

const gchar *ncl_model_get_path (const NclModel * model);
const gchar *ncl_model_get_name (const NclModel * model);
/* "transformer_net", or the graph's "architecture" field */
const gchar *ncl_model_get_architecture (const NclModel * model);
/* "imported checkpoint", "trained here from starry_night.jpg", ... */
const gchar *ncl_model_get_origin (const NclModel * model);
/* SHA-256 over the graph and the weights, hex. */
const gchar *ncl_model_get_fingerprint (const NclModel * model);
gint ncl_model_get_input_channels (const NclModel * model);
/* Input and output sizes must be multiples of this (1 = any). */
gint ncl_model_get_size_multiple (const NclModel * model);
/* Total multiply-accumulates per input pixel (all layers). */
gdouble ncl_model_get_macs_per_pixel (const NclModel * model, gint h, gint w);
/* Outputs: a graph may name several ("outputs: [a, b]"). */
guint ncl_model_get_n_outputs (const NclModel * model);
const gchar *ncl_model_get_output_name (const NclModel * model, guint i);
/* A tensor listed under "constants:" (anchors, tables), as float32, or NULL
 * (transfer none; @shape receives up to 8 dims). */
const gfloat *ncl_model_get_constant (const NclModel * model,
    const gchar * name, gint * ndim, gint64 * shape);
/* The graph as YAML (weights: @weights_name), transfer full. */
gchar *ncl_model_to_yaml (const NclModel * model, const gchar * weights_name);

/* Per-instance execution state: prepared layers and activations. */
typedef struct _NclRunner NclRunner;

NclRunner *ncl_runner_new (NclModel * model, NclContext * ctx,
    GError ** error);
void ncl_runner_free (NclRunner * runner);
NclModel *ncl_runner_get_model (const NclRunner * runner);

/**
 * ncl_runner_run:
 * @input: (1..n, C, H, W) on the runner's context
 * @output: (out) (transfer none): the result, valid until the next run
 *
 * Enqueues every layer; does not wait (download the output to wait).
 */
gboolean ncl_runner_run (NclRunner * runner, const NclTensor * input,
    NclTensor ** output, GError ** error);

/* Output @i of the last run (ncl_runner_run returns output 0). */
NclTensor *ncl_runner_get_output (const NclRunner * runner, guint i);

/* Per-layer timing: when enabled, run() waits after each layer. */
void ncl_runner_set_profiling (NclRunner * runner, gboolean enable);
guint ncl_runner_get_n_layers (const NclRunner * runner);
typedef struct
{
  const gchar *name;
  const gchar *op;
  const gchar *variant;         /* kernel variant, or "" */
  gint out_c, out_h, out_w;
  gdouble macs;                 /* in the last run */
  gdouble seconds;              /* in the last run (profiling only) */
} NclLayerInfo;
void ncl_runner_get_layer_info (const NclRunner * runner, guint i,
    NclLayerInfo * info);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (NclModel, ncl_model_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (NclRunner, ncl_runner_free)

G_END_DECLS
