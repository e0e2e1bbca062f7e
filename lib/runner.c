/* Runner: executes an NclModel on a device with its own activations.
 *
 * Fusions made here, invisible in the graph:
 * - a conv's padding (and a nearest upsample that only feeds that conv) runs
 *   as one pad kernel into the conv's input scratch;
 * - instance norm / activation / clamp run in place on their input when
 *   nothing else reads it;
 * - an add whose input is a conv without activation that feeds nothing
 *   else (a ResNet block's second conv) runs inside that conv
 *   (ncl_conv_forward_residual): the conv writes the add's tensor. */
#include "model-private.h"

#include <neuralcl/error.h>

#include <string.h>

typedef struct
{
  NclNode *node;
  NclConv *conv;                /* device conv, padding removed */
  cl_mem gamma, beta;           /* instance norm */
  cl_mem fc_w, fc_b;
  NclTensor *out;               /* owned, or NULL when aliased */
  gint alias;                   /* node whose tensor is reused, or -1 */
  NclTensor *scratch;           /* padded conv input */
  gboolean fused;               /* upsample folded into its consumer */
  gint upsample_scale;          /* conv: scale of a fused upsample */
  gint src;                     /* conv: where the padded input comes from */
  gint consumers;
  gboolean conv_pads;           /* depthwise: the conv pads by itself */
  NclPadding conv_pad;          /* ... with this padding */
  gint res;                     /* conv: the add fused into it (the node
                                 * it aliases) adds this node's tensor and
                                 * applies the add's activation; -2: none */
  gboolean add_fused;           /* add: done by the conv feeding it */
  gint pad_into;                /* conv: the conv that alone reads this
                                 * output and zero-pads it (-1: none); this
                                 * conv writes into its padded input */
  gboolean prepadded;           /* conv: this run's padded input (scratch)
                                 * was written by the conv feeding it */
  gint oc, oh, ow;
  gdouble macs;
  gdouble seconds;
} RunNode;

struct _NclRunner
{
  NclModel *model;
  NclContext *ctx;
  RunNode *nodes;
  guint n_nodes;
  gboolean profiling;
  const NclTensor *last_input;  /* for outputs that are the input itself */
};

static NclTensor *
node_tensor (NclRunner * r, const NclTensor * input, gint idx)
{
  if (idx == NCL_NODE_INPUT)
    return (NclTensor *) input;
  while (r->nodes[idx].alias >= 0)
    idx = r->nodes[idx].alias;
  return r->nodes[idx].out;
}

/* A depthwise conv pads inside its kernel (the runner hands it the
 * padding instead of padding into a scratch). */
static gboolean
conv_pads_itself (const NclNode * n)
{
  return n->conv.groups > 1 && n->conv.groups == n->conv.cin
      && n->conv.cin == n->conv.cout;
}

static void
run_node_clear (RunNode * rn)
{
  ncl_conv_free (rn->conv);
  if (rn->gamma)
    clReleaseMemObject (rn->gamma);
  if (rn->beta)
    clReleaseMemObject (rn->beta);
  if (rn->fc_w)
    clReleaseMemObject (rn->fc_w);
  if (rn->fc_b)
    clReleaseMemObject (rn->fc_b);
  ncl_tensor_free (rn->out);
  ncl_tensor_free (rn->scratch);
}

void
ncl_runner_free (NclRunner * r)
{
  if (r == NULL)
    return;
  for (guint i = 0; i < r->n_nodes; i++)
    run_node_clear (&r->nodes[i]);
  g_free (r->nodes);
  ncl_model_unref (r->model);
  ncl_context_unref (r->ctx);
  g_free (r);
}

NclRunner *
ncl_runner_new (NclModel * model, NclContext * ctx, GError ** error)
{
  g_autoptr (NclRunner) r = g_new0 (NclRunner, 1);
  GPtrArray *nodes = model->nodes;

  r->model = ncl_model_ref (model);
  r->ctx = ncl_context_ref (ctx);
  r->n_nodes = nodes->len;
  r->nodes = g_new0 (RunNode, nodes->len);

  for (guint i = 0; i < nodes->len; i++) {
    NclNode *n = g_ptr_array_index (nodes, i);
    RunNode *rn = &r->nodes[i];

    rn->node = n;
    rn->alias = -1;
    rn->res = -2;
    rn->pad_into = -1;
    rn->src = n->in0;
    rn->upsample_scale = 1;
    if (n->in0 >= 0)
      r->nodes[n->in0].consumers++;
    if (n->in1 >= 0)
      r->nodes[n->in1].consumers++;
    if (n->residual >= 0)
      r->nodes[n->residual].consumers++;
  }
  for (guint o = 0; o < model->outputs->len; o++)
    r->nodes[g_array_index (model->outputs, gint, o)].consumers++;

  for (guint i = 0; i < nodes->len; i++) {
    RunNode *rn = &r->nodes[i];
    NclNode *n = rn->node;

    switch (n->op) {
      case NCL_OP_CONV:{
        NclConvParams p = n->conv;

        memset (&p.pad, 0, sizeof (p.pad));
        rn->conv = ncl_conv_new (ctx, &p, error);
        if (rn->conv == NULL)
          return NULL;
        if (n->in0 >= 0) {
          RunNode *src = &r->nodes[n->in0];
          if (src->node->op == NCL_OP_UPSAMPLE && src->consumers == 1) {
            src->fused = TRUE;
            rn->upsample_scale = src->node->scale;
            rn->src = src->node->in0;
          }
        }
        break;
      }
      case NCL_OP_INSTANCE_NORM:
        if (n->gamma) {
          rn->gamma = ncl_buffer_from_host (ctx, n->gamma, n->channels, error);
          if (rn->gamma == NULL)
            return NULL;
          rn->beta = ncl_buffer_from_host (ctx, n->beta, n->channels, error);
          if (rn->beta == NULL)
            return NULL;
        }
        break;
      case NCL_OP_FC:
        rn->fc_w = ncl_buffer_from_host (ctx, n->weight,
            (gsize) n->units * n->conv.cin, error);
        if (rn->fc_w == NULL)
          return NULL;
        if (n->bias) {
          rn->fc_b = ncl_buffer_from_host (ctx, n->bias, n->units, error);
          if (rn->fc_b == NULL)
            return NULL;
        }
        break;
      default:
        break;
    }

    /* add (conv (x), y) -> the conv adds y and writes the add's tensor
     * (y must be ready when the conv runs: computed before it) */
    if (n->op == NCL_OP_ADD && n->in0 != n->in1) {
      for (gint side = 0; side < 2; side++) {
        gint ci = side == 0 ? n->in0 : n->in1;
        gint other = side == 0 ? n->in1 : n->in0;
        RunNode *c = ci >= 0 ? &r->nodes[ci] : NULL;

        if (c != NULL && c->node->op == NCL_OP_CONV && c->consumers == 1
            && c->node->conv.act == NCL_ACT_NONE && c->alias < 0
            && c->node->conv.groups == 1 && other < ci) {
          c->res = other;
          c->alias = i;
          ncl_tensor_free (c->out);
          c->out = NULL;
          rn->add_fused = TRUE;
          break;
        }
      }
    }

    /* in place on an input nobody else reads (never the graph input) */
    if ((n->op == NCL_OP_INSTANCE_NORM || n->op == NCL_OP_ACTIVATION ||
            n->op == NCL_OP_CLAMP) && n->in0 >= 0 &&
        r->nodes[n->in0].consumers == 1 && !r->nodes[n->in0].fused)
      rn->alias = n->in0;
    else if (!rn->fused) {
      rn->out = ncl_tensor_new (ctx, 1, 1, 1, 1, error);
      if (rn->out == NULL)
        return NULL;
    }
  }

  /* conv -> zero-padding conv, the first conv's output read by nothing
   * else: the first writes straight into the second's padded input (where
   * its kernel can, decided per run), saving a padding pass.  (Also writing
   * the padded copy of an output that others read, such as a residual
   * block's, measured no faster than the padding pass it saves.) */
  for (guint i = 0; i < nodes->len; i++) {
    RunNode *rn = &r->nodes[i];
    RunNode *s = rn->src >= 0 ? &r->nodes[rn->src] : NULL;

    if (rn->node->op == NCL_OP_CONV && rn->upsample_scale == 1
        && rn->node->conv.pad.mode == NCL_PAD_ZERO
        && !conv_pads_itself (rn->node) && s != NULL
        && s->node->op == NCL_OP_CONV && s->consumers == 1 && s->alias < 0
        && s->upsample_scale == 1)
      s->pad_into = i;
  }
  return g_steal_pointer (&r);
}

NclModel *
ncl_runner_get_model (const NclRunner * r)
{
  return r->model;
}

void
ncl_runner_set_profiling (NclRunner * r, gboolean enable)
{
  r->profiling = enable;
}

guint
ncl_runner_get_n_layers (const NclRunner * r)
{
  return r->n_nodes;
}

void
ncl_runner_get_layer_info (const NclRunner * r, guint i, NclLayerInfo * info)
{
  const RunNode *rn = &r->nodes[i];

  info->name = rn->node->name;
  info->op = ncl_op_to_string (rn->node->op);
  info->variant = rn->conv ? ncl_conv_get_variant (rn->conv) :
      rn->fused ? "fused into next conv" : rn->add_fused ?
      "fused into its conv" : rn->alias >= 0 ? "in place" : "";
  info->out_c = rn->oc;
  info->out_h = rn->oh;
  info->out_w = rn->ow;
  info->macs = rn->macs;
  info->seconds = rn->seconds;
}

/* ---- shapes ------------------------------------------------------------- */

typedef struct
{
  gint c, h, w;
} Shape;

static gboolean
conv_padding (const NclNode * n, gint h, gint w, NclPadding * pad)
{
  if (n->same) {
    ncl_padding_tf_same (h, w, n->conv.kh, n->conv.kw, n->conv.stride_h,
        n->conv.stride_w, pad);
    pad->mode = n->conv.pad.mode;
  } else {
    *pad = n->conv.pad;
  }
  return TRUE;
}

/* Output shape of every node for an (c, h, w) input; MACs per node. */
static gboolean
infer_shapes (const NclModel * m, gint n_batch, gint h, gint w, Shape * out,
    gdouble * macs, GError ** error)
{
  for (guint i = 0; i < m->nodes->len; i++) {
    const NclNode *n = g_ptr_array_index (m->nodes, i);
    Shape in = n->in0 == NCL_NODE_INPUT ?
        (Shape) { m->input_channels, h, w } : out[n->in0];
    Shape *o = &out[i];
    gdouble mac = 0;

    *o = in;
    switch (n->op) {
      case NCL_OP_CONV:{
        NclConvParams p = n->conv;
        conv_padding (n, in.h, in.w, &p.pad);
        ncl_conv2d_out_size (&p, in.h, in.w, &o->h, &o->w);
        o->c = n->channels;
        mac = (gdouble) o->h * o->w * o->c * (p.cin / p.groups) * p.kh * p.kw;
        break;
      }
      case NCL_OP_UPSAMPLE:
        o->h = in.h * n->scale;
        o->w = in.w * n->scale;
        break;
      case NCL_OP_PAD:
        o->h = in.h + n->pad.top + n->pad.bottom;
        o->w = in.w + n->pad.left + n->pad.right;
        o->c = n->channels;
        break;
      case NCL_OP_MAX_POOL:
      case NCL_OP_AVG_POOL:{
        NclPoolParams p = n->pool;
        if (n->same)
          ncl_padding_tf_same (in.h, in.w, p.kh, p.kw, p.stride_h, p.stride_w,
              &p.pad);
        ncl_pool_out_size (&p, in.h, in.w, &o->h, &o->w);
        break;
      }
      case NCL_OP_GLOBAL_AVG_POOL:
        o->h = o->w = 1;
        break;
      case NCL_OP_FC:
        if ((gint64) in.c * in.h * in.w != n->conv.cin) {
          g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
              "%s: layer '%s': fc expects %d input features, got %d x %d x %d",
              m->path, n->name, n->conv.cin, in.c, in.h, in.w);
          return FALSE;
        }
        o->c = n->units;
        o->h = o->w = 1;
        mac = (gdouble) n->units * n->conv.cin;
        break;
      case NCL_OP_CONCAT:
        if (out[n->in1].h != in.h || out[n->in1].w != in.w)
          goto mismatch;
        o->c = n->channels;
        break;
      case NCL_OP_ADD:{
        Shape b = n->in1 == NCL_NODE_INPUT ?
            (Shape) { m->input_channels, h, w } : out[n->in1];
        if (b.c != in.c || b.h != in.h || b.w != in.w)
          goto mismatch;
        break;
      }
      case NCL_OP_INSTANCE_NORM:
        if (n->residual != -2) {
          Shape b = n->residual == NCL_NODE_INPUT ?
              (Shape) { m->input_channels, h, w } : out[n->residual];
          if (b.c != in.c || b.h != in.h || b.w != in.w)
            goto mismatch;
        }
        break;
      default:
        break;
    }
    if (o->h <= 0 || o->w <= 0) {
      g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
          "%s: layer '%s': a %dx%d input is too small for this model",
          m->path, n->name, w, h);
      return FALSE;
    }
    if (macs)
      macs[i] = mac * n_batch;
    continue;
  mismatch:
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "%s: layer '%s': input shapes differ for a %dx%d input", m->path,
        n->name, w, h);
    return FALSE;
  }
  return TRUE;
}

gdouble
ncl_model_get_macs_per_pixel (const NclModel * model, gint h, gint w)
{
  g_autofree Shape *shapes = g_new0 (Shape, model->nodes->len);
  g_autofree gdouble *macs = g_new0 (gdouble, model->nodes->len);
  gdouble total = 0;

  if (!infer_shapes (model, 1, h, w, shapes, macs, NULL))
    return 0;
  for (guint i = 0; i < model->nodes->len; i++)
    total += macs[i];
  return total / ((gdouble) h * w);
}

/* ---- execution ---------------------------------------------------------- */

static gboolean
run_node (NclRunner * r, guint i, const NclTensor * input, GError ** error)
{
  RunNode *rn = &r->nodes[i];
  NclNode *n = rn->node;
  NclContext *ctx = r->ctx;
  NclTensor *in;
  NclTensor *out = node_tensor (r, input, i);

  if (rn->fused || rn->add_fused)
    return TRUE;
  in = node_tensor (r, input, n->op == NCL_OP_CONV ? rn->src : n->in0);

  switch (n->op) {
    case NCL_OP_CONV:{
      NclPadding pad;
      NclTensor *src = in;

      conv_padding (n, in->h * rn->upsample_scale, in->w * rn->upsample_scale,
          &pad);
      /* a depthwise conv pads inside its kernel: hand it the padding (it
       * depends on the size for "same", so rebuild when that changes) */
      if (rn->upsample_scale == 1 && conv_pads_itself (n)) {
        if (!rn->conv_pads || memcmp (&pad, &rn->conv_pad, sizeof (pad))) {
          NclConvParams p = n->conv;
          NclConv *c;

          p.pad = pad;
          c = ncl_conv_new (ctx, &p, error);
          if (c == NULL)
            return FALSE;
          ncl_conv_free (rn->conv);
          rn->conv = c;
          rn->conv_pad = pad;
          rn->conv_pads = TRUE;
        }
        return ncl_conv_forward (rn->conv, in, out, error);
      }
      if (rn->prepadded) {
        rn->prepadded = FALSE;
        src = rn->scratch;
      } else if (rn->upsample_scale > 1 || pad.top || pad.bottom || pad.left
          || pad.right) {
        if (rn->scratch == NULL) {
          rn->scratch = ncl_tensor_new (ctx, 1, 1, 1, 1, error);
          if (rn->scratch == NULL)
            return FALSE;
        }
        if (!ncl_pad_forward (ctx, src, rn->upsample_scale, &pad,
                rn->scratch, error))
          return FALSE;
        src = rn->scratch;
      }
      if (rn->pad_into >= 0) {
        RunNode *next = &r->nodes[rn->pad_into];
        NclPadding npad;

        /* write into the next conv's padded input instead, its border
         * kept zero (zeroed when its shape changes; a zero padding pass
         * there leaves it zero too) */
        conv_padding (next->node, rn->oh, rn->ow, &npad);
        if ((npad.top || npad.bottom || npad.left || npad.right)
            && ncl_conv_can_pad_output (rn->conv, src->n, src->h, src->w)) {
          gint ph = rn->oh + npad.top + npad.bottom;
          gint pw = rn->ow + npad.left + npad.right;

          if (next->scratch == NULL &&
              !(next->scratch = ncl_tensor_new (ctx, 1, 1, 1, 1, error)))
            return FALSE;
          if (next->scratch->n != src->n || next->scratch->c != rn->oc
              || next->scratch->h != ph || next->scratch->w != pw) {
            if (!ncl_tensor_reshape (next->scratch, src->n, rn->oc, ph, pw,
                    error) || !ncl_tensor_zero (next->scratch, error))
              return FALSE;
          }
          next->prepadded = TRUE;
          return ncl_conv_forward_padded_out (rn->conv, src, NULL,
              NCL_ACT_NONE, 0.0f, &npad, next->scratch, NULL, error);
        }
      }
      if (rn->res != -2) {
        const NclNode *add = r->nodes[rn->alias].node;

        return ncl_conv_forward_residual (rn->conv, src,
            node_tensor (r, input, rn->res), add->act, add->alpha, out,
            error);
      }
      return ncl_conv_forward (rn->conv, src, out, error);
    }
    case NCL_OP_INSTANCE_NORM:
      return ncl_instnorm_forward (ctx, in, rn->gamma, rn->beta, n->eps,
          n->residual != -2 ? node_tensor (r, input, n->residual) : NULL,
          n->act, n->alpha, out, error);
    case NCL_OP_ACTIVATION:
      return ncl_activation_forward (ctx, in, n->act, n->alpha, out, error);
    case NCL_OP_ADD:
      return ncl_add_forward (ctx, in, node_tensor (r, input, n->in1), n->act,
          n->alpha, out, error);
    case NCL_OP_UPSAMPLE:{
      NclPadding none = { 0 };
      return ncl_pad_forward (ctx, in, n->scale, &none, out, error);
    }
    case NCL_OP_PAD:{
      gboolean spatial = n->pad.top || n->pad.bottom || n->pad.left ||
          n->pad.right;
      gboolean chans = n->chan_before || n->chan_after;
      if (spatial && chans) {
        if (rn->scratch == NULL &&
            !(rn->scratch = ncl_tensor_new (ctx, 1, 1, 1, 1, error)))
          return FALSE;
        return ncl_pad_forward (ctx, in, 1, &n->pad, rn->scratch, error) &&
            ncl_pad_channels_forward (ctx, rn->scratch, n->chan_before,
            n->chan_after, out, error);
      }
      if (chans)
        return ncl_pad_channels_forward (ctx, in, n->chan_before,
            n->chan_after, out, error);
      return ncl_pad_forward (ctx, in, 1, &n->pad, out, error);
    }
    case NCL_OP_MAX_POOL:
    case NCL_OP_AVG_POOL:{
      NclPoolParams p = n->pool;
      if (n->same)
        ncl_padding_tf_same (in->h, in->w, p.kh, p.kw, p.stride_h, p.stride_w,
            &p.pad);
      return ncl_pool_forward (ctx, &p, in, out, error);
    }
    case NCL_OP_GLOBAL_AVG_POOL:
      return ncl_global_avgpool_forward (ctx, in, out, error);
    case NCL_OP_FC:
      return ncl_fc_forward (ctx, in, rn->fc_w, rn->fc_b, n->units, n->act,
          n->alpha, out, error);
    case NCL_OP_CONCAT:
      return ncl_concat_forward (ctx, in, node_tensor (r, input, n->in1), out,
          error);
    case NCL_OP_L2_NORM:
      return ncl_l2norm_forward (ctx, in, n->eps, out, error);
    case NCL_OP_CLAMP:
      return ncl_clamp_forward (ctx, in, n->lo, n->hi, out, error);
  }
  return TRUE;
}

gboolean
ncl_runner_run (NclRunner * r, const NclTensor * input, NclTensor ** output,
    GError ** error)
{
  g_autofree Shape *shapes = g_new0 (Shape, r->n_nodes);
  g_autofree gdouble *macs = g_new0 (gdouble, r->n_nodes);

  if (input->c != r->model->input_channels) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "%s: input has %d channels, the model takes %d", r->model->path,
        input->c, r->model->input_channels);
    return FALSE;
  }
  if (!infer_shapes (r->model, input->n, input->h, input->w, shapes, macs,
          error))
    return FALSE;

  for (guint i = 0; i < r->n_nodes; i++) {
    RunNode *rn = &r->nodes[i];
    gint64 t0 = 0;

    rn->oc = shapes[i].c;
    rn->oh = shapes[i].h;
    rn->ow = shapes[i].w;
    rn->macs = macs[i];
    if (r->profiling)
      t0 = g_get_monotonic_time ();
    if (!run_node (r, i, input, error)) {
      g_prefix_error (error, "layer '%s': ", rn->node->name);
      return FALSE;
    }
    if (r->profiling) {
      if (!ncl_context_finish (r->ctx, error))
        return FALSE;
      rn->seconds = (g_get_monotonic_time () - t0) / 1e6;
    }
  }
  r->last_input = input;
  *output = ncl_runner_get_output (r, 0);
  return TRUE;
}

NclTensor *
ncl_runner_get_output (const NclRunner * r, guint i)
{
  if (i >= r->model->outputs->len || r->last_input == NULL)
    return NULL;
  return node_tensor ((NclRunner *) r, r->last_input,
      g_array_index (r->model->outputs, gint, i));
}
