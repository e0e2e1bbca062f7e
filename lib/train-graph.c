/* train-graph.c: a training executor over the model graph format.
 *
 * Unlike NclRunner (lib/runner.c), which runs norms and activations in place
 * to save memory, every layer here keeps its own output: backward needs the
 * forward input and output of each layer.  Convs keep their padding (the
 * conv and its backward pad internally), upsample layers are separate nodes.
 *
 * Trainable parameters live in read-write device buffers that Adam updates;
 * the forward conv (NclConv) packs its weights at creation, so a conv whose
 * weights changed is rebuilt from a host copy before its next forward. */
#include "model-private.h"

#include <neuralcl/train.h>
#include <neuralcl/error.h>

#include <string.h>

typedef struct
{
  gchar *layer;
  const gchar *op;
  const gchar *role;
  gint ndim;
  gint64 shape[4];
  gsize numel;
  gint node;
  gfloat *host;                 /* host copy of the value */
  cl_mem value, grad, m, v;
} TParam;

typedef struct
{
  NclNode *node;
  NclConvParams p;              /* conv: weight/bias point to host copies */
  NclConv *conv;
  gboolean dirty;               /* conv weights changed since conv built */
  cl_mem wbuf;                  /* conv weight (OIHW) on the device */
  cl_mem gamma, beta;           /* instance norm (may be parameters) */
  gint pw, pb;                  /* parameter indices, or -1 */
  NclTensor *out;
  NclTensor *grad;
  gboolean has_grad;
} TNode;

struct _NclTrainGraph
{
  NclContext *ctx;
  NclModel *model;
  gboolean trainable;
  TNode *nodes;
  guint n_nodes;
  GArray *params;               /* TParam */
  const NclTensor *input;
  gint last;                    /* last node of the last forward */
  NclTensor *tmp[2];
};

static void
release (cl_mem * m)
{
  if (*m != NULL) {
    clReleaseMemObject (*m);
    *m = NULL;
  }
}

void
ncl_train_graph_free (NclTrainGraph * g)
{
  if (g == NULL)
    return;
  for (guint i = 0; i < g->n_nodes; i++) {
    TNode *t = &g->nodes[i];
    gboolean own_norm = t->pw < 0;

    ncl_conv_free (t->conv);
    if (t->node->op == NCL_OP_CONV) {
      if (t->pw < 0)
        release (&t->wbuf);
    } else if (own_norm) {
      release (&t->gamma);
      release (&t->beta);
    }
    ncl_tensor_free (t->out);
    ncl_tensor_free (t->grad);
  }
  for (guint i = 0; g->params && i < g->params->len; i++) {
    TParam *p = &g_array_index (g->params, TParam, i);

    g_free (p->layer);
    g_free (p->host);
    release (&p->value);
    release (&p->grad);
    release (&p->m);
    release (&p->v);
  }
  if (g->params)
    g_array_unref (g->params);
  ncl_tensor_free (g->tmp[0]);
  ncl_tensor_free (g->tmp[1]);
  g_free (g->nodes);
  ncl_model_unref (g->model);
  ncl_context_unref (g->ctx);
  g_free (g);
}

NclContext *
ncl_train_graph_get_context (const NclTrainGraph * g)
{
  return g->ctx;
}

/* Adds a parameter of @n floats holding @data; returns its index. */
static gint
add_param (NclTrainGraph * g, gint node, const gchar * op, const gchar * role,
    const gfloat * data, gint ndim, const gint64 * shape, GError ** error)
{
  TParam p = { 0 };
  gsize n = 1;

  for (gint d = 0; d < ndim; d++)
    n *= shape[d];
  p.layer = g_strdup (g->nodes[node].node->name);
  p.op = op;
  p.role = role;
  p.ndim = ndim;
  memcpy (p.shape, shape, ndim * sizeof (gint64));
  p.numel = n;
  p.node = node;
  p.host = g_memdup2 (data, n * sizeof (gfloat));
  g_array_append_val (g->params, p);
  {
    TParam *q = &g_array_index (g->params, TParam, g->params->len - 1);

    q->value = ncl_buffer_new_rw (g->ctx, data, n, error);
    if (q->value == NULL)
      return -1;
    q->grad = ncl_buffer_new_rw (g->ctx, NULL, n, error);
    if (q->grad == NULL)
      return -1;
    q->m = ncl_buffer_new_rw (g->ctx, NULL, n, error);
    if (q->m == NULL)
      return -1;
    q->v = ncl_buffer_new_rw (g->ctx, NULL, n, error);
    if (q->v == NULL)
      return -1;
  }
  return g->params->len - 1;
}

static TParam *
param (NclTrainGraph * g, gint i)
{
  return &g_array_index (g->params, TParam, i);
}

static gboolean
build_conv (NclTrainGraph * g, TNode * t, GError ** error)
{
  ncl_conv_free (t->conv);
  t->conv = ncl_conv_new (g->ctx, &t->p, error);
  t->dirty = FALSE;
  return t->conv != NULL;
}

NclTrainGraph *
ncl_train_graph_new (NclContext * ctx, NclModel * model, gboolean trainable,
    GError ** error)
{
  g_autoptr (NclTrainGraph) g = g_new0 (NclTrainGraph, 1);
  GPtrArray *nodes = model->nodes;

  g->ctx = ncl_context_ref (ctx);
  g->model = ncl_model_ref (model);
  g->trainable = trainable;
  g->n_nodes = nodes->len;
  g->nodes = g_new0 (TNode, nodes->len);
  g->params = g_array_new (FALSE, TRUE, sizeof (TParam));
  g->last = -1;

  for (guint i = 0; i < nodes->len; i++) {
    NclNode *n = g_ptr_array_index (nodes, i);
    TNode *t = &g->nodes[i];
    const gchar *why = NULL;

    t->node = n;
    t->pw = t->pb = -1;
    switch (n->op) {
      case NCL_OP_CONV:
        if (n->same)
          why = "'same' padding";
        else if (MAX (n->conv.dilation, 1) != 1)
          why = "dilation";
        break;
      case NCL_OP_PAD:
        if ((n->chan_before || n->chan_after) && (n->pad.top || n->pad.bottom
                || n->pad.left || n->pad.right))
          why = "spatial and channel padding in one layer";
        break;
      case NCL_OP_MAX_POOL:
      case NCL_OP_AVG_POOL:
        if (n->same)
          why = "'same' padding";
        break;
      case NCL_OP_INSTANCE_NORM:
      case NCL_OP_ACTIVATION:
      case NCL_OP_ADD:
      case NCL_OP_UPSAMPLE:
      case NCL_OP_CONCAT:
        break;
      default:
        why = "this op";
        break;
    }
    if (why != NULL) {
      g_set_error (error, NCL_ERROR, NCL_ERROR_UNSUPPORTED,
          "%s: layer '%s': training does not support %s (op %s)",
          model->path, n->name, why, ncl_op_to_string (n->op));
      return NULL;
    }

    if (n->op == NCL_OP_CONV) {
      gint64 wshape[4] = { n->conv.cout, n->conv.cin / n->conv.groups,
        n->conv.kh, n->conv.kw
      };
      gint64 bshape[1] = { n->conv.cout };
      gsize wn = wshape[0] * wshape[1] * wshape[2] * wshape[3];

      t->p = n->conv;
      if (trainable) {
        gfloat *zero_bias = NULL;

        t->pw = add_param (g, i, "conv", "weight", n->weight, 4, wshape,
            error);
        if (t->pw < 0)
          return NULL;
        /* a trainable conv always gets a bias */
        if (n->bias == NULL)
          zero_bias = g_new0 (gfloat, n->conv.cout);
        t->pb = add_param (g, i, "conv", "bias",
            n->bias ? n->bias : zero_bias, 1, bshape, error);
        g_free (zero_bias);
        if (t->pb < 0)
          return NULL;
        t->wbuf = param (g, t->pw)->value;
        t->p.weight = param (g, t->pw)->host;
        t->p.bias = param (g, t->pb)->host;
      } else {
        t->wbuf = ncl_buffer_from_host (ctx, n->weight, wn, error);
        if (t->wbuf == NULL)
          return NULL;
      }
      if (!build_conv (g, t, error))
        return NULL;
    } else if (n->op == NCL_OP_INSTANCE_NORM && n->gamma != NULL) {
      gint64 shape[1] = { n->channels };

      if (trainable) {
        t->pw = add_param (g, i, "instance_norm", "weight", n->gamma, 1,
            shape, error);
        if (t->pw < 0)
          return NULL;
        t->pb = add_param (g, i, "instance_norm", "bias", n->beta, 1, shape,
            error);
        if (t->pb < 0)
          return NULL;
        t->gamma = param (g, t->pw)->value;
        t->beta = param (g, t->pb)->value;
      } else {
        t->gamma = ncl_buffer_from_host (ctx, n->gamma, n->channels, error);
        if (t->gamma == NULL)
          return NULL;
        t->beta = ncl_buffer_from_host (ctx, n->beta, n->channels, error);
        if (t->beta == NULL)
          return NULL;
      }
    }
    t->out = ncl_tensor_new (ctx, 1, 1, 1, 1, error);
    if (t->out == NULL)
      return NULL;
    t->grad = ncl_tensor_new (ctx, 1, 1, 1, 1, error);
    if (t->grad == NULL)
      return NULL;
  }
  for (gint i = 0; i < 2; i++) {
    g->tmp[i] = ncl_tensor_new (ctx, 1, 1, 1, 1, error);
    if (g->tmp[i] == NULL)
      return NULL;
  }
  return g_steal_pointer (&g);
}

gint
ncl_train_graph_find (const NclTrainGraph * g, const gchar * name)
{
  for (guint i = 0; i < g->n_nodes; i++)
    if (g_str_equal (g->nodes[i].node->name, name))
      return i;
  return -1;
}

gint
ncl_train_graph_get_output_index (const NclTrainGraph * g)
{
  return g_array_index (g->model->outputs, gint, 0);
}

NclTensor *
ncl_train_graph_get_activation (const NclTrainGraph * g, gint i)
{
  if (i == NCL_NODE_INPUT)
    return (NclTensor *) g->input;
  return g->nodes[i].out;
}

/* ---- forward ------------------------------------------------------------ */

static gboolean
forward_node (NclTrainGraph * g, gint i, GError ** error)
{
  TNode *t = &g->nodes[i];
  NclNode *n = t->node;
  NclContext *ctx = g->ctx;
  NclTensor *in = ncl_train_graph_get_activation (g, n->in0);

  switch (n->op) {
    case NCL_OP_CONV:
      if (t->dirty && !build_conv (g, t, error))
        return FALSE;
      return ncl_conv_forward (t->conv, in, t->out, error);
    case NCL_OP_INSTANCE_NORM:
      return ncl_instnorm_forward (ctx, in, t->gamma, t->beta, n->eps,
          n->residual != -2 ? ncl_train_graph_get_activation (g, n->residual)
          : NULL, n->act, n->alpha, t->out, error);
    case NCL_OP_ACTIVATION:
      return ncl_activation_forward (ctx, in, n->act, n->alpha, t->out, error);
    case NCL_OP_ADD:
      return ncl_add_forward (ctx, in, ncl_train_graph_get_activation (g,
              n->in1), n->act, n->alpha, t->out, error);
    case NCL_OP_CONCAT:
      return ncl_concat_forward (ctx, in, ncl_train_graph_get_activation (g,
              n->in1), t->out, error);
    case NCL_OP_UPSAMPLE:{
      NclPadding none = { 0 };
      return ncl_pad_forward (ctx, in, n->scale, &none, t->out, error);
    }
    case NCL_OP_PAD:
      if (n->chan_before || n->chan_after)
        return ncl_pad_channels_forward (ctx, in, n->chan_before,
            n->chan_after, t->out, error);
      return ncl_pad_forward (ctx, in, 1, &n->pad, t->out, error);
    case NCL_OP_MAX_POOL:
    case NCL_OP_AVG_POOL:
      return ncl_pool_forward (ctx, &n->pool, in, t->out, error);
    default:
      g_set_error (error, NCL_ERROR, NCL_ERROR_UNSUPPORTED,
          "training: op %s", ncl_op_to_string (n->op));
      return FALSE;
  }
}

gboolean
ncl_train_graph_forward (NclTrainGraph * g, const NclTensor * input,
    gint last, GError ** error)
{
  if (last < 0)
    last = ncl_train_graph_get_output_index (g);
  if (last >= (gint) g->n_nodes) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_FAILED,
        "training: layer %d out of range", last);
    return FALSE;
  }
  if (input->c != g->model->input_channels) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "%s: input has %d channels, the model takes %d", g->model->path,
        input->c, g->model->input_channels);
    return FALSE;
  }
  g->input = input;
  g->last = last;
  for (gint i = 0; i <= last; i++) {
    if (!forward_node (g, i, error)) {
      g_prefix_error (error, "%s: layer '%s': ", g->model->path,
          g->nodes[i].node->name);
      return FALSE;
    }
  }
  return TRUE;
}

/* ---- backward ----------------------------------------------------------- */

void
ncl_train_graph_clear_grads (NclTrainGraph * g)
{
  for (guint i = 0; i < g->n_nodes; i++)
    g->nodes[i].has_grad = FALSE;
}

static gboolean
shape_like (NclTensor * t, const NclTensor * like, GError ** error)
{
  return ncl_tensor_reshape (t, like->n, like->c, like->h, like->w, error);
}

NclTensor *
ncl_train_graph_grad_tensor (NclTrainGraph * g, gint i, gboolean * fresh,
    GError ** error)
{
  TNode *t = &g->nodes[i];

  *fresh = !t->has_grad;
  if (!t->has_grad && !shape_like (t->grad, t->out, error))
    return NULL;
  t->has_grad = TRUE;
  return t->grad;
}

/* Where the gradient of node @idx (or the graph input) goes. */
typedef struct
{
  NclTensor *dst;               /* write here */
  NclTensor *sum;               /* then add into this, unless NULL */
  gboolean *flag;               /* set when done */
} Target;

/* Picks a destination for dL/d(activation @idx): the node's own gradient
 * tensor when it holds nothing yet, else scratch @k that is added to it.
 * Returns FALSE with dst NULL when nothing needs this gradient. */
static gboolean
target_for (NclTrainGraph * g, gint idx, gint k, NclTensor * dinput,
    gboolean * input_done, Target * tg, GError ** error)
{
  const NclTensor *like = ncl_train_graph_get_activation (g, idx);
  NclTensor *own;
  gboolean *flag;

  memset (tg, 0, sizeof (*tg));
  if (idx == NCL_NODE_INPUT) {
    if (dinput == NULL)
      return TRUE;
    own = dinput;
    flag = input_done;
  } else {
    own = g->nodes[idx].grad;
    flag = &g->nodes[idx].has_grad;
  }
  tg->flag = flag;
  if (!*flag) {
    tg->dst = own;
  } else {
    tg->dst = g->tmp[k];
    tg->sum = own;
  }
  return shape_like (tg->dst, like, error);
}

static gboolean
target_commit (NclTrainGraph * g, Target * tg, GError ** error)
{
  if (tg->dst == NULL)
    return TRUE;
  *tg->flag = TRUE;
  if (tg->sum != NULL)
    return ncl_grad_add (g->ctx, tg->dst, tg->sum, error);
  return TRUE;
}

static gboolean
backward_node (NclTrainGraph * g, gint i, NclTensor * dinput,
    gboolean * input_done, GError ** error)
{
  TNode *t = &g->nodes[i];
  NclNode *n = t->node;
  NclContext *ctx = g->ctx;
  NclTensor *in = ncl_train_graph_get_activation (g, n->in0);
  NclTensor *dout = t->grad;
  Target a, b;

  if (!target_for (g, n->in0, 0, dinput, input_done, &a, error))
    return FALSE;

  switch (n->op) {
    case NCL_OP_CONV:
      if (n->act != NCL_ACT_NONE && !ncl_activation_backward (ctx, t->out,
              dout, n->act, n->alpha, dout, error))
        return FALSE;
      if (t->pw >= 0 && !ncl_conv2d_backward_weights (ctx, &t->p, in, dout,
              param (g, t->pw)->grad, param (g, t->pb)->grad, error))
        return FALSE;
      if (a.dst != NULL && !ncl_conv2d_backward_data (ctx, &t->p, t->wbuf,
              dout, a.dst, error))
        return FALSE;
      break;
    case NCL_OP_INSTANCE_NORM:{
      NclTensor *res = NULL;

      memset (&b, 0, sizeof (b));
      if (n->residual != -2) {
        if (!target_for (g, n->residual, 1, dinput, input_done, &b, error))
          return FALSE;
        /* both targets the same fresh tensor: the residual goes through
         * the scratch */
        if (b.dst != NULL && b.dst == a.dst) {
          b.dst = g->tmp[1];
          b.sum = a.dst;
          if (!shape_like (b.dst, a.dst, error))
            return FALSE;
        }
        res = b.dst;
      }
      if ((a.dst != NULL || res != NULL || t->pw >= 0)) {
        NclTensor *din = a.dst;

        /* the reference needs a din; use the scratch when nobody wants it */
        if (din == NULL) {
          din = g->tmp[0];
          if (!shape_like (din, in, error))
            return FALSE;
        }
        if (!ncl_instnorm_backward (ctx, in, t->out, dout, t->gamma, n->eps,
                n->act, n->alpha, din, res,
                t->pw >= 0 ? param (g, t->pw)->grad : NULL,
                t->pb >= 0 ? param (g, t->pb)->grad : NULL, error))
          return FALSE;
      }
      if (!target_commit (g, &a, error))
        return FALSE;
      return target_commit (g, &b, error);
    }
    case NCL_OP_ACTIVATION:
      if (a.dst != NULL && !ncl_activation_backward (ctx, t->out, dout,
              n->act, n->alpha, a.dst, error))
        return FALSE;
      break;
    case NCL_OP_ADD:
    case NCL_OP_CONCAT:
      if (!target_for (g, n->in1, 1, dinput, input_done, &b, error))
        return FALSE;
      if (b.dst != NULL && b.dst == a.dst) {
        b.dst = g->tmp[1];
        b.sum = a.dst;
        if (!shape_like (b.dst, a.dst, error))
          return FALSE;
      }
      if (a.dst == NULL && b.dst == NULL)
        break;
      if (a.dst == NULL) {
        a.dst = g->tmp[0];
        a.flag = NULL;
        if (!shape_like (a.dst, in, error))
          return FALSE;
      }
      if (n->op == NCL_OP_ADD) {
        if (!ncl_add_backward (ctx, t->out, dout, n->act, n->alpha, a.dst,
                b.dst, error))
          return FALSE;
      } else if (!ncl_concat_backward (ctx, dout, in->c, a.dst, b.dst,
              error)) {
        return FALSE;
      }
      if (a.flag != NULL && !target_commit (g, &a, error))
        return FALSE;
      return target_commit (g, &b, error);
    case NCL_OP_UPSAMPLE:{
      NclPadding none = { 0 };
      if (a.dst != NULL && !ncl_pad_backward (ctx, dout, n->scale, &none,
              a.dst, error))
        return FALSE;
      break;
    }
    case NCL_OP_PAD:
      if (a.dst == NULL)
        break;
      if (n->chan_before || n->chan_after) {
        if (!ncl_pad_channels_backward (ctx, dout, n->chan_before,
                n->chan_after, a.dst, error))
          return FALSE;
      } else if (!ncl_pad_backward (ctx, dout, 1, &n->pad, a.dst, error)) {
        return FALSE;
      }
      break;
    case NCL_OP_MAX_POOL:
    case NCL_OP_AVG_POOL:
      if (a.dst != NULL && !ncl_pool_backward (ctx, &n->pool, in, dout,
              a.dst, error))
        return FALSE;
      break;
    default:
      g_set_error (error, NCL_ERROR, NCL_ERROR_UNSUPPORTED,
          "training: op %s", ncl_op_to_string (n->op));
      return FALSE;
  }
  return target_commit (g, &a, error);
}

gboolean
ncl_train_graph_backward (NclTrainGraph * g, NclTensor * dinput,
    GError ** error)
{
  gboolean input_done = FALSE;

  if (g->input == NULL || g->last < 0) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_FAILED,
        "training: backward without a forward");
    return FALSE;
  }
  for (gint i = g->last; i >= 0; i--) {
    if (!g->nodes[i].has_grad)
      continue;
    if (!backward_node (g, i, dinput, &input_done, error)) {
      g_prefix_error (error, "%s: layer '%s' (backward): ", g->model->path,
          g->nodes[i].node->name);
      return FALSE;
    }
  }
  if (dinput != NULL && !input_done) {
    if (!shape_like (dinput, g->input, error))
      return FALSE;
    return ncl_buffer_zero (g->ctx, dinput->buf, ncl_tensor_numel (dinput),
        error);
  }
  return TRUE;
}

/* ---- parameters --------------------------------------------------------- */

guint
ncl_train_graph_get_n_params (const NclTrainGraph * g)
{
  return g->params->len;
}

void
ncl_train_graph_get_param_info (const NclTrainGraph * g, guint i,
    NclTrainParamInfo * info)
{
  const TParam *p = &g_array_index (g->params, TParam, i);

  info->layer = p->layer;
  info->op = p->op;
  info->role = p->role;
  info->ndim = p->ndim;
  memcpy (info->shape, p->shape, sizeof (info->shape));
  info->numel = p->numel;
}

static cl_mem
param_buffer (TParam * p, NclParamBuffer which)
{
  switch (which) {
    case NCL_PARAM_GRAD:
      return p->grad;
    case NCL_PARAM_ADAM_M:
      return p->m;
    case NCL_PARAM_ADAM_V:
      return p->v;
    default:
      return p->value;
  }
}

gboolean
ncl_train_graph_read_param (NclTrainGraph * g, guint i, NclParamBuffer which,
    gfloat * data, GError ** error)
{
  TParam *p = param (g, i);
  cl_int st = clEnqueueReadBuffer (ncl_context_get_queue (g->ctx),
      param_buffer (p, which), CL_TRUE, 0, p->numel * sizeof (gfloat), data,
      0, NULL, NULL);

  if (st != CL_SUCCESS) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_OPENCL,
        "training: cannot read parameter %s.%s: %s", p->layer, p->role,
        ncl_cl_status_name (st));
    return FALSE;
  }
  return TRUE;
}

gboolean
ncl_train_graph_write_param (NclTrainGraph * g, guint i,
    NclParamBuffer which, const gfloat * data, GError ** error)
{
  TParam *p = param (g, i);
  cl_int st = clEnqueueWriteBuffer (ncl_context_get_queue (g->ctx),
      param_buffer (p, which), CL_TRUE, 0, p->numel * sizeof (gfloat), data,
      0, NULL, NULL);

  if (st != CL_SUCCESS) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_OPENCL,
        "training: cannot write parameter %s.%s: %s", p->layer, p->role,
        ncl_cl_status_name (st));
    return FALSE;
  }
  if (which == NCL_PARAM_VALUE) {
    memcpy (p->host, data, p->numel * sizeof (gfloat));
    g->nodes[p->node].dirty = TRUE;
  }
  return TRUE;
}

gboolean
ncl_train_graph_zero_param_grads (NclTrainGraph * g, GError ** error)
{
  for (guint i = 0; i < g->params->len; i++) {
    TParam *p = param (g, i);

    if (!ncl_buffer_zero (g->ctx, p->grad, p->numel, error))
      return FALSE;
  }
  return TRUE;
}

gboolean
ncl_train_graph_adam_step (NclTrainGraph * g, const NclAdamParams * ap,
    gint step, GError ** error)
{
  for (guint i = 0; i < g->params->len; i++) {
    TParam *p = param (g, i);

    if (!ncl_adam_step (g->ctx, ap, step, p->numel, p->value, p->grad, p->m,
            p->v, error))
      return FALSE;
  }
  /* conv weights: refresh the host copies the forward conv is built from */
  for (guint i = 0; i < g->params->len; i++) {
    TParam *p = param (g, i);

    if (!g_str_equal (p->op, "conv"))
      continue;
    if (!ncl_train_graph_read_param (g, i, NCL_PARAM_VALUE, p->host, error))
      return FALSE;
    g->nodes[p->node].dirty = TRUE;
  }
  return TRUE;
}
