/* Private: the parsed graph shared by model.c, runner.c and transformer.c. */
#pragma once

#include <neuralcl/model.h>
#include <neuralcl/safetensors.h>
#include <neuralcl/config.h>

G_BEGIN_DECLS

typedef enum
{
  NCL_OP_CONV,
  NCL_OP_INSTANCE_NORM,
  NCL_OP_ACTIVATION,
  NCL_OP_ADD,
  NCL_OP_UPSAMPLE,
  NCL_OP_PAD,
  NCL_OP_MAX_POOL,
  NCL_OP_AVG_POOL,
  NCL_OP_GLOBAL_AVG_POOL,
  NCL_OP_FC,
  NCL_OP_CONCAT,
  NCL_OP_L2_NORM,
  NCL_OP_CLAMP,
} NclOp;

#define NCL_NODE_INPUT (-1)     /* the graph input */

typedef struct
{
  gchar *name;
  NclOp op;
  gint in0, in1;                /* producing node, NCL_NODE_INPUT; -2: none */
  gint channels;                /* output channels */
  NclActivation act;
  gfloat alpha;

  /* conv: params.weight/bias point into weight/bias below */
  NclConvParams conv;
  gboolean same;                /* TF "same" padding, computed per size */
  gfloat *weight;               /* conv (cout, cin/g, kh, kw); fc (out, in) */
  gfloat *bias;

  /* instance norm */
  gfloat *gamma, *beta;
  gfloat eps;
  gint residual;                /* node index, NCL_NODE_INPUT, or -2: none */

  /* pad, upsample */
  NclPadding pad;
  gint scale;
  gint chan_before, chan_after; /* pad: zero channels */

  /* pools */
  NclPoolParams pool;

  /* fc */
  gint units;

  /* clamp */
  gfloat lo, hi;
} NclNode;

struct _NclModel
{
  gint ref_count;
  gchar *path;
  gchar *name;
  gchar *architecture;
  gchar *origin;
  gchar *fingerprint;
  gchar *yaml;                  /* the graph's YAML text */
  gchar *weights_path;
  gint input_channels;
  gint size_multiple;
  GPtrArray *nodes;             /* NclNode*, topological order */
  GArray *outputs;              /* gint node indices; the first is "the" output */
  GHashTable *constants;        /* name -> NclConstant*: tensors not in layers */
};

typedef struct
{
  gint ndim;
  gint64 shape[8];
  gfloat *data;
} NclConstant;

const gchar *ncl_op_to_string (NclOp op);

/* Parses a graph from YAML text with its weights already opened. */
NclModel *ncl_model_parse (const gchar * path, const gchar * yaml_text,
    NclSafetensors * weights, GError ** error);

/* Builds the YAML graph of a fast_neural_style TransformerNet from the
 * tensor names and shapes of @st (transfer full), or NULL with @error. */
gchar *ncl_transformer_net_graph (NclSafetensors * st, const gchar * name,
    GError ** error);
gboolean ncl_transformer_net_detect (NclSafetensors * st);

G_END_DECLS
