/* style-train.c: the style-transfer losses (kernels/train.cl and their C
 * references) and NclStyleLoss, the VGG-19 loss network that evaluates
 * them with gradients.  The trainer itself is in style-trainer.c... see
 * below: ncl_style_train_*. */
#include "model-private.h"

#include <neuralcl/train.h>
#include <neuralcl/error.h>

#include "config.h"

#include <math.h>
#include <string.h>

#define SQ_CHUNK 256            /* kernels/train.cl */

static const gfloat vgg_mean[3] = { 103.939f, 116.779f, 123.68f };

/* ---- references --------------------------------------------------------- */

void
ncl_gram_ref (const gfloat * f, gint n, gint c, gint hw, gfloat scale,
    gfloat * g)
{
  for (gint b = 0; b < n; b++) {
    const gfloat *fb = f + (gsize) b * c * hw;

    for (gint i = 0; i < c; i++) {
      for (gint j = 0; j < c; j++) {
        gdouble s = 0.0;

        for (gint k = 0; k < hw; k++)
          s += (gdouble) fb[(gsize) i * hw + k] * fb[(gsize) j * hw + k];
        g[((gsize) b * c + i) * c + j] = (gfloat) (scale * s);
      }
    }
  }
}

void
ncl_gram_backward_ref (const gfloat * a, const gfloat * f, gint n, gint c,
    gint hw, gfloat scale, gboolean accumulate, gfloat * df)
{
  for (gint b = 0; b < n; b++) {
    const gfloat *fb = f + (gsize) b * c * hw;
    const gfloat *ab = a + (gsize) b * c * c;
    gfloat *db = df + (gsize) b * c * hw;

    for (gint i = 0; i < c; i++) {
      for (gint k = 0; k < hw; k++) {
        gdouble s = 0.0;

        for (gint j = 0; j < c; j++)
          s += (gdouble) ab[(gsize) i * c + j] * fb[(gsize) j * hw + k];
        s *= scale;
        db[(gsize) i * hw + k] = accumulate ? db[(gsize) i * hw + k] + s : s;
      }
    }
  }
}

gdouble
ncl_sq_diff_ref (const gfloat * a, gsize n, const gfloat * b, gsize nb,
    gfloat gscale, gboolean accumulate, gfloat * grad)
{
  gdouble sum = 0.0;

  for (gsize i = 0; i < n; i++) {
    gfloat d = a[i] - b[i % nb];

    sum += (gdouble) d * d;
    if (grad != NULL)
      grad[i] = accumulate ? grad[i] + gscale * d : gscale * d;
  }
  return sum;
}

gdouble
ncl_tv_loss_ref (const gfloat * x, gint planes, gint h, gint w, gfloat gscale,
    gfloat * grad)
{
  gdouble sum = 0.0;

  for (gint p = 0; p < planes; p++) {
    const gfloat *xp = x + (gsize) p * h * w;
    gfloat *gp = grad ? grad + (gsize) p * h * w : NULL;

    for (gint y = 0; y < h; y++) {
      for (gint k = 0; k < w; k++) {
        gfloat v = xp[y * w + k];

        if (k + 1 < w) {
          gfloat d = xp[y * w + k + 1] - v;

          sum += (gdouble) d * d;
          if (gp) {
            gp[y * w + k] -= gscale * 2.0f * d;
            gp[y * w + k + 1] += gscale * 2.0f * d;
          }
        }
        if (y + 1 < h) {
          gfloat d = xp[(y + 1) * w + k] - v;

          sum += (gdouble) d * d;
          if (gp) {
            gp[y * w + k] -= gscale * 2.0f * d;
            gp[(y + 1) * w + k] += gscale * 2.0f * d;
          }
        }
      }
    }
  }
  return sum;
}

void
ncl_rgb_to_vgg_ref (const gfloat * in, gint n, gint hw, gfloat * out)
{
  for (gint b = 0; b < n; b++)
    for (gint c = 0; c < 3; c++)
      for (gint k = 0; k < hw; k++)
        out[((gsize) b * 3 + c) * hw + k] =
            in[((gsize) b * 3 + 2 - c) * hw + k] - vgg_mean[c];
}

void
ncl_vgg_to_rgb_grad_ref (const gfloat * dvgg, gint n, gint hw,
    gboolean accumulate, gfloat * drgb)
{
  for (gint b = 0; b < n; b++)
    for (gint c = 0; c < 3; c++)
      for (gint k = 0; k < hw; k++) {
        gsize o = ((gsize) b * 3 + c) * hw + k;
        gfloat v = dvgg[((gsize) b * 3 + 2 - c) * hw + k];

        drgb[o] = accumulate ? drgb[o] + v : v;
      }
}

/* ---- device ------------------------------------------------------------- */

static cl_kernel
train_kernel (NclContext * ctx, const gchar * name, GError ** error)
{
  return ncl_context_get_kernel (ctx, "train", name, NULL, error);
}

gboolean
ncl_gram (NclContext * ctx, const NclTensor * f, gfloat scale, NclTensor * g,
    GError ** error)
{
  gint c = f->c, hw = f->h * f->w;
  gsize global[3] = { (c + 3) / 4, (c + 3) / 4, f->n };
  cl_kernel k;
  gboolean ok;

  if (!ncl_tensor_reshape (g, f->n, 1, c, c, error))
    return FALSE;
  k = train_kernel (ctx, "gram", error);
  if (k == NULL)
    return FALSE;
  ncl_context_lock (ctx);
  ok = ncl_kernel_set_args (k, error, sizeof (cl_mem), &f->buf,
      sizeof (cl_mem), &g->buf, sizeof (gint), &c, sizeof (gint), &hw,
      sizeof (gfloat), &scale, 0)
      && ncl_context_run (ctx, k, 3, global, NULL, error);
  ncl_context_unlock (ctx);
  return ok;
}

gboolean
ncl_gram_backward (NclContext * ctx, const NclTensor * a, const NclTensor * f,
    gfloat scale, gboolean accumulate, NclTensor * df, GError ** error)
{
  gint c = f->c, hw = f->h * f->w, acc = accumulate;
  gsize global[3] = { (hw + 15) / 16, (c + 7) / 8, f->n };
  cl_kernel k;
  gboolean ok;

  if (ncl_tensor_numel (a) != (gsize) f->n * c * c
      || ncl_tensor_numel (df) != ncl_tensor_numel (f)) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "gram backward: A has %" G_GSIZE_FORMAT " values, dF %"
        G_GSIZE_FORMAT ", for F (%d, %d, %d, %d)", ncl_tensor_numel (a),
        ncl_tensor_numel (df), f->n, f->c, f->h, f->w);
    return FALSE;
  }
  k = train_kernel (ctx, "gram_backward", error);
  if (k == NULL)
    return FALSE;
  ncl_context_lock (ctx);
  ok = ncl_kernel_set_args (k, error, sizeof (cl_mem), &a->buf,
      sizeof (cl_mem), &f->buf, sizeof (cl_mem), &df->buf, sizeof (gint), &c,
      sizeof (gint), &hw, sizeof (gfloat), &scale, sizeof (gint), &acc, 0)
      && ncl_context_run (ctx, k, 3, global, NULL, error);
  ncl_context_unlock (ctx);
  return ok;
}

/* Sums @n partial sums of a device buffer (waits). */
static gboolean
sum_partials (NclContext * ctx, cl_mem buf, gsize n, gdouble * sum,
    GError ** error)
{
  g_autofree gfloat *host = g_new (gfloat, n);
  cl_int st = clEnqueueReadBuffer (ncl_context_get_queue (ctx), buf, CL_TRUE,
      0, n * sizeof (gfloat), host, 0, NULL, NULL);

  if (st != CL_SUCCESS) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_OPENCL,
        "cannot read loss partial sums: %s", ncl_cl_status_name (st));
    return FALSE;
  }
  *sum = 0.0;
  for (gsize i = 0; i < n; i++)
    *sum += host[i];
  return TRUE;
}

gboolean
ncl_sq_diff (NclContext * ctx, const NclTensor * a, const NclTensor * b,
    gfloat gscale, gboolean accumulate, NclTensor * grad, gdouble * sum,
    GError ** error)
{
  gsize n = ncl_tensor_numel (a), nb = ncl_tensor_numel (b);
  gsize chunks = (n + SQ_CHUNK - 1) / SQ_CHUNK;
  gint in = (gint) n, inb = (gint) nb, write = grad != NULL, acc = accumulate;
  cl_mem gbuf = grad != NULL ? grad->buf : a->buf;
  cl_mem partial;
  cl_kernel k;
  gboolean ok;

  if (nb == 0 || n % nb != 0 || n > G_MAXINT
      || (grad != NULL && ncl_tensor_numel (grad) != n)) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "squared difference: %" G_GSIZE_FORMAT " values against %"
        G_GSIZE_FORMAT " (or a gradient of another size)", n, nb);
    return FALSE;
  }
  k = train_kernel (ctx, "sq_diff", error);
  if (k == NULL)
    return FALSE;
  partial = ncl_buffer_new_rw (ctx, NULL, chunks, error);
  if (partial == NULL)
    return FALSE;
  ncl_context_lock (ctx);
  ok = ncl_kernel_set_args (k, error, sizeof (cl_mem), &a->buf,
      sizeof (cl_mem), &b->buf, sizeof (gint), &in, sizeof (gint), &inb,
      sizeof (cl_mem), &gbuf, sizeof (gfloat), &gscale, sizeof (gint), &write,
      sizeof (gint), &acc, sizeof (cl_mem), &partial, 0)
      && ncl_context_run (ctx, k, 1, &chunks, NULL, error);
  ncl_context_unlock (ctx);
  ok = ok && sum_partials (ctx, partial, chunks, sum, error);
  clReleaseMemObject (partial);
  return ok;
}

gboolean
ncl_tv_loss (NclContext * ctx, const NclTensor * x, gfloat gscale,
    NclTensor * grad, gdouble * sum, GError ** error)
{
  gint planes = x->n * x->c, write = grad != NULL;
  gsize rows = (gsize) planes * x->h;
  cl_mem gbuf = grad != NULL ? grad->buf : x->buf;
  cl_mem partial;
  cl_kernel k;
  gboolean ok;

  if (grad != NULL && ncl_tensor_numel (grad) != ncl_tensor_numel (x)) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "total variation: gradient of another size");
    return FALSE;
  }
  k = train_kernel (ctx, "tv_loss", error);
  if (k == NULL)
    return FALSE;
  partial = ncl_buffer_new_rw (ctx, NULL, rows, error);
  if (partial == NULL)
    return FALSE;
  ncl_context_lock (ctx);
  ok = ncl_kernel_set_args (k, error, sizeof (cl_mem), &x->buf,
      sizeof (gint), &planes, sizeof (gint), &x->h, sizeof (gint), &x->w,
      sizeof (cl_mem), &gbuf, sizeof (gfloat), &gscale, sizeof (gint), &write,
      sizeof (cl_mem), &partial, 0)
      && ncl_context_run (ctx, k, 1, &rows, NULL, error);
  ncl_context_unlock (ctx);
  ok = ok && sum_partials (ctx, partial, rows, sum, error);
  clReleaseMemObject (partial);
  return ok;
}

gboolean
ncl_rgb_to_vgg (NclContext * ctx, const NclTensor * in, NclTensor * out,
    GError ** error)
{
  gint hw = in->h * in->w;
  gsize global[3] = { hw, 3, in->n };
  cl_kernel k;
  gboolean ok;

  if (in->c != 3) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "VGG input: %d channels, expected 3 (RGB)", in->c);
    return FALSE;
  }
  if (!ncl_tensor_reshape (out, in->n, 3, in->h, in->w, error))
    return FALSE;
  k = train_kernel (ctx, "rgb_to_vgg", error);
  if (k == NULL)
    return FALSE;
  ncl_context_lock (ctx);
  ok = ncl_kernel_set_args (k, error, sizeof (cl_mem), &in->buf,
      sizeof (cl_mem), &out->buf, sizeof (gint), &hw, sizeof (gfloat),
      &vgg_mean[0], sizeof (gfloat), &vgg_mean[1], sizeof (gfloat),
      &vgg_mean[2], 0)
      && ncl_context_run (ctx, k, 3, global, NULL, error);
  ncl_context_unlock (ctx);
  return ok;
}

gboolean
ncl_vgg_to_rgb_grad (NclContext * ctx, const NclTensor * dvgg,
    gboolean accumulate, NclTensor * drgb, GError ** error)
{
  gint hw = dvgg->h * dvgg->w, acc = accumulate;
  gsize global[3] = { hw, 3, dvgg->n };
  cl_kernel k;
  gboolean ok;

  if (dvgg->c != 3) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "VGG input gradient: %d channels, expected 3", dvgg->c);
    return FALSE;
  }
  if (accumulate) {
    if (ncl_tensor_numel (drgb) != ncl_tensor_numel (dvgg)) {
      g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
          "VGG input gradient: cannot add into a tensor of another size");
      return FALSE;
    }
  } else if (!ncl_tensor_reshape (drgb, dvgg->n, 3, dvgg->h, dvgg->w,
          error)) {
    return FALSE;
  }
  k = train_kernel (ctx, "vgg_to_rgb_grad", error);
  if (k == NULL)
    return FALSE;
  ncl_context_lock (ctx);
  ok = ncl_kernel_set_args (k, error, sizeof (cl_mem), &dvgg->buf,
      sizeof (cl_mem), &drgb->buf, sizeof (gint), &hw, sizeof (gint), &acc, 0)
      && ncl_context_run (ctx, k, 3, global, NULL, error);
  ncl_context_unlock (ctx);
  return ok;
}

/* ---- settings ----------------------------------------------------------- */

void
ncl_style_loss_settings_init (NclStyleLossSettings * s)
{
  static const gchar *const layers[] = { "relu1_2", "relu2_2", "relu3_3" };

  memset (s, 0, sizeof (*s));
  s->content_layer = g_strdup ("relu2_2");
  s->n_style_layers = 3;
  for (gint i = 0; i < 3; i++) {
    s->style_layers[i] = g_strdup (layers[i]);
    s->style_layer_weights[i] = 1.0;
  }
  s->content_weight = 1.0;
  s->style_weight = 10.0;
  s->tv_weight = 1e-3;
}

void
ncl_style_loss_settings_clear (NclStyleLossSettings * s)
{
  g_clear_pointer (&s->content_layer, g_free);
  for (gint i = 0; i < NCL_STYLE_MAX_LAYERS; i++)
    g_clear_pointer (&s->style_layers[i], g_free);
  s->n_style_layers = 0;
}

void
ncl_style_loss_settings_copy (NclStyleLossSettings * dst,
    const NclStyleLossSettings * src)
{
  *dst = *src;
  dst->content_layer = g_strdup (src->content_layer);
  for (gint i = 0; i < NCL_STYLE_MAX_LAYERS; i++)
    dst->style_layers[i] = g_strdup (src->style_layers[i]);
}

gchar *
ncl_style_loss_default_network (void)
{
  const gchar *env = g_getenv ("NEURALCL_LOSS_NETWORK");

  if (env != NULL && *env != '\0')
    return g_strdup (env);
  return g_build_filename (NCL_SOURCE_DATADIR, "..", "..", "shared", "data",
      "style", "loss", "vgg19-block1-3.safetensors", NULL);
}

/* ---- the loss network --------------------------------------------------- */

#define N_VGG_RELU 8
static const gchar *const vgg_relu[N_VGG_RELU] = { "relu1_1", "relu1_2",
  "relu2_1", "relu2_2", "relu3_1", "relu3_2", "relu3_3", "relu3_4"
};

static const gchar *const vgg_tensor[N_VGG_RELU] = { "block1_conv1",
  "block1_conv2", "block2_conv1", "block2_conv2", "block3_conv1",
  "block3_conv2", "block3_conv3", "block3_conv4"
};

/* The spec's measurement: relu1_2, relu2_2, relu3_3 with weight 1. */
static const gint measure_layers[3] = { 1, 3, 6 };

struct _NclStyleLoss
{
  NclContext *ctx;
  NclStyleLossSettings s;
  NclModel *model;
  NclTrainGraph *vgg;
  gint relu_node[N_VGG_RELU];   /* graph node of each relu */
  gint content;                 /* relu index, -1: none */
  gint style[NCL_STYLE_MAX_LAYERS];     /* relu indices */
  gint last;                    /* deepest relu index needed */
  NclTensor *vin, *dvin;
  NclTensor *content_target;
  gboolean has_content;
  NclTensor *target[N_VGG_RELU];       /* style Gram targets (1, 1, c, c) */
  gboolean has_style;
  NclTensor *gram, *dgram;
};

void
ncl_style_loss_free (NclStyleLoss * l)
{
  if (l == NULL)
    return;
  ncl_train_graph_free (l->vgg);
  ncl_model_unref (l->model);
  ncl_tensor_free (l->vin);
  ncl_tensor_free (l->dvin);
  ncl_tensor_free (l->content_target);
  for (gint i = 0; i < N_VGG_RELU; i++)
    ncl_tensor_free (l->target[i]);
  ncl_tensor_free (l->gram);
  ncl_tensor_free (l->dgram);
  ncl_style_loss_settings_clear (&l->s);
  if (l->ctx)
    ncl_context_unref (l->ctx);
  g_free (l);
}

static gint
relu_index (const gchar * name)
{
  for (gint i = 0; i < N_VGG_RELU; i++)
    if (g_str_equal (name, vgg_relu[i]))
      return i;
  return -1;
}

/* The VGG-19 block 1-3 graph (all eight convs, so that every tensor of the
 * file is used; forward stops at the deepest layer a loss needs). */
static gchar *
vgg_graph (void)
{
  GString *s = g_string_new ("neuralcl-model: 1\nname: vgg19-block1-3\n"
      "architecture: vgg19\norigin: Oxford VGG ImageNet weights\n"
      "input:\n  channels: 3\nlayers:\n");

  for (gint i = 0; i < N_VGG_RELU; i++) {
    g_string_append_printf (s, "  - name: %s\n    op: conv\n    kernel: 3\n"
        "    padding: 1\n    activation: relu\n    weight: %s.weight\n"
        "    bias: %s.bias\n", vgg_relu[i], vgg_tensor[i], vgg_tensor[i]);
    if (i == 1 || i == 3)
      g_string_append_printf (s, "  - name: pool%d\n    op: max_pool\n"
          "    kernel: 2\n    stride: 2\n", i == 1 ? 1 : 2);
  }
  return g_string_free (s, FALSE);
}

NclStyleLoss *
ncl_style_loss_new (NclContext * ctx, const gchar * vgg_path,
    const NclStyleLossSettings * s, GError ** error)
{
  g_autoptr (NclStyleLoss) l = g_new0 (NclStyleLoss, 1);
  g_autoptr (NclSafetensors) st = NULL;
  g_autofree gchar *yaml = vgg_graph ();

  l->ctx = ncl_context_ref (ctx);
  ncl_style_loss_settings_copy (&l->s, s);
  l->content = -1;
  l->last = 6;                  /* relu3_3, for ncl_style_loss_measure() */

  if (s->content_layer != NULL && s->content_weight > 0.0) {
    l->content = relu_index (s->content_layer);
    if (l->content < 0) {
      g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_CONFIG,
          "content layer '%s': not a layer of the loss network (relu1_1, "
          "relu1_2, relu2_1, relu2_2, relu3_1 .. relu3_4)", s->content_layer);
      return NULL;
    }
    l->last = MAX (l->last, l->content);
  }
  if (s->n_style_layers < 0 || s->n_style_layers > NCL_STYLE_MAX_LAYERS) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_CONFIG,
        "%d style layers (at most %d)", s->n_style_layers,
        NCL_STYLE_MAX_LAYERS);
    return NULL;
  }
  for (gint i = 0; i < s->n_style_layers; i++) {
    l->style[i] = relu_index (s->style_layers[i]);
    if (l->style[i] < 0) {
      g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_CONFIG,
          "style layer '%s': not a layer of the loss network (relu1_1, "
          "relu1_2, relu2_1, relu2_2, relu3_1 .. relu3_4)",
          s->style_layers[i]);
      return NULL;
    }
    l->last = MAX (l->last, l->style[i]);
  }

  st = ncl_safetensors_load (vgg_path, error);
  if (st == NULL)
    return NULL;
  l->model = ncl_model_parse (vgg_path, yaml, st, error);
  if (l->model == NULL)
    return NULL;
  l->vgg = ncl_train_graph_new (ctx, l->model, FALSE, error);
  if (l->vgg == NULL)
    return NULL;
  for (gint i = 0; i < N_VGG_RELU; i++)
    l->relu_node[i] = ncl_train_graph_find (l->vgg, vgg_relu[i]);

  if (!(l->vin = ncl_tensor_new (ctx, 1, 3, 1, 1, error))
      || !(l->dvin = ncl_tensor_new (ctx, 1, 3, 1, 1, error))
      || !(l->content_target = ncl_tensor_new (ctx, 1, 1, 1, 1, error))
      || !(l->gram = ncl_tensor_new (ctx, 1, 1, 1, 1, error))
      || !(l->dgram = ncl_tensor_new (ctx, 1, 1, 1, 1, error)))
    return NULL;
  return g_steal_pointer (&l);
}

static gboolean
vgg_forward (NclStyleLoss * l, const NclTensor * img, gint last_relu,
    GError ** error)
{
  return ncl_rgb_to_vgg (l->ctx, img, l->vin, error) &&
      ncl_train_graph_forward (l->vgg, l->vin, l->relu_node[last_relu],
      error);
}

static gfloat
gram_scale (const NclTensor * f)
{
  return (gfloat) (1.0 / ((gdouble) f->c * f->h * f->w));
}

gboolean
ncl_style_loss_set_style (NclStyleLoss * l, const NclTensor * style,
    GError ** error)
{
  if (style->n != 1) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "style image: batch of %d, expected 1", style->n);
    return FALSE;
  }
  if (!vgg_forward (l, style, l->last, error))
    return FALSE;
  for (gint i = 0; i <= l->last; i++) {
    NclTensor *f = ncl_train_graph_get_activation (l->vgg, l->relu_node[i]);

    if (l->target[i] == NULL &&
        !(l->target[i] = ncl_tensor_new (l->ctx, 1, 1, 1, 1, error)))
      return FALSE;
    if (!ncl_gram (l->ctx, f, gram_scale (f), l->target[i], error))
      return FALSE;
  }
  l->has_style = TRUE;
  return TRUE;
}

/* Copies @src into @dst (reshaped). */
static gboolean
tensor_copy (NclContext * ctx, const NclTensor * src, NclTensor * dst,
    GError ** error)
{
  cl_int st;

  if (!ncl_tensor_reshape (dst, src->n, src->c, src->h, src->w, error))
    return FALSE;
  st = clEnqueueCopyBuffer (ncl_context_get_queue (ctx), src->buf, dst->buf,
      0, 0, ncl_tensor_numel (src) * sizeof (gfloat), 0, NULL, NULL);
  if (st != CL_SUCCESS) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_OPENCL,
        "cannot copy a tensor: %s", ncl_cl_status_name (st));
    return FALSE;
  }
  return TRUE;
}

gboolean
ncl_style_loss_set_content (NclStyleLoss * l, const NclTensor * content,
    GError ** error)
{
  l->has_content = FALSE;
  if (content == NULL || l->content < 0)
    return TRUE;
  if (!vgg_forward (l, content, l->content, error) ||
      !tensor_copy (l->ctx, ncl_train_graph_get_activation (l->vgg,
              l->relu_node[l->content]), l->content_target, error))
    return FALSE;
  l->has_content = TRUE;
  return TRUE;
}

/* Adds the Gram loss of relu @r (weight @w, 0 allowed for measuring) and,
 * when @grads, its gradient into the graph.  Returns the unweighted mean
 * squared difference in *@value. */
static gboolean
style_term (NclStyleLoss * l, gint r, gdouble w, gboolean grads,
    gdouble * value, GError ** error)
{
  gint node = l->relu_node[r];
  NclTensor *f = ncl_train_graph_get_activation (l->vgg, node);
  gdouble cc = (gdouble) f->n * f->c * f->c, sum;
  gfloat s = gram_scale (f);

  if (!ncl_gram (l->ctx, f, s, l->gram, error))
    return FALSE;
  if (grads) {
    gboolean fresh;
    NclTensor *df;

    if (!ncl_tensor_reshape (l->dgram, l->gram->n, 1, f->c, f->c, error) ||
        !ncl_sq_diff (l->ctx, l->gram, l->target[r], (gfloat) (w * 2.0 / cc),
            FALSE, l->dgram, &sum, error))
      return FALSE;
    df = ncl_train_graph_grad_tensor (l->vgg, node, &fresh, error);
    if (df == NULL || !ncl_gram_backward (l->ctx, l->dgram, f, 2.0f * s,
            !fresh, df, error))
      return FALSE;
  } else if (!ncl_sq_diff (l->ctx, l->gram, l->target[r], 0.0f, FALSE, NULL,
          &sum, error)) {
    return FALSE;
  }
  *value = sum / cc;
  return TRUE;
}

gboolean
ncl_style_loss_evaluate (NclStyleLoss * l, const NclTensor * gen,
    NclStyleLossValues * v, NclTensor * dgen, GError ** error)
{
  gboolean grads = dgen != NULL;
  gint last = 0;

  memset (v, 0, sizeof (*v));
  if (!l->has_style && l->s.n_style_layers > 0 && l->s.style_weight > 0) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_FAILED,
        "style loss: no style image set");
    return FALSE;
  }
  if (l->has_content && l->content_target->n != gen->n) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "style loss: content batch of %d, generated batch of %d",
        l->content_target->n, gen->n);
    return FALSE;
  }
  if (l->has_content)
    last = l->content;
  for (gint i = 0; i < l->s.n_style_layers; i++)
    last = MAX (last, l->style[i]);
  if (!vgg_forward (l, gen, last, error))
    return FALSE;
  ncl_train_graph_clear_grads (l->vgg);

  if (l->has_content) {
    gint node = l->relu_node[l->content];
    NclTensor *f = ncl_train_graph_get_activation (l->vgg, node);
    gdouble n = (gdouble) ncl_tensor_numel (f), sum;
    gboolean fresh = TRUE;
    NclTensor *df = NULL;

    if (grads && !(df = ncl_train_graph_grad_tensor (l->vgg, node, &fresh,
                error)))
      return FALSE;
    if (!ncl_sq_diff (l->ctx, f, l->content_target,
            (gfloat) (l->s.content_weight * 2.0 / n), !fresh, df, &sum,
            error))
      return FALSE;
    v->content = l->s.content_weight * sum / n;
  }
  if (l->s.style_weight > 0) {
    for (gint i = 0; i < l->s.n_style_layers; i++) {
      gdouble w = l->s.style_layer_weights[i], term;

      if (w <= 0)
        continue;
      if (!style_term (l, l->style[i], l->s.style_weight * w, grads, &term,
              error))
        return FALSE;
      v->style_raw += w * term;
    }
    v->style = l->s.style_weight * v->style_raw;
  }
  if (grads) {
    if (!ncl_train_graph_backward (l->vgg, l->dvin, error) ||
        !ncl_vgg_to_rgb_grad (l->ctx, l->dvin, FALSE, dgen, error))
      return FALSE;
  }
  if (l->s.tv_weight > 0) {
    gdouble n = (gdouble) ncl_tensor_numel (gen), sum;

    if (!ncl_tv_loss (l->ctx, gen, (gfloat) (l->s.tv_weight / n),
            grads ? dgen : NULL, &sum, error))
      return FALSE;
    v->tv = l->s.tv_weight * sum / n;
  }
  v->total = v->content + v->style + v->tv;
  return TRUE;
}

gboolean
ncl_style_loss_measure (NclStyleLoss * l, const NclTensor * img,
    gdouble * value, GError ** error)
{
  *value = 0.0;
  if (!l->has_style) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_FAILED,
        "style loss: no style image set");
    return FALSE;
  }
  if (!vgg_forward (l, img, 6, error))
    return FALSE;
  for (gint i = 0; i < 3; i++) {
    gdouble term;

    if (!style_term (l, measure_layers[i], 0.0, FALSE, &term, error))
      return FALSE;
    *value += term;
  }
  return TRUE;
}
