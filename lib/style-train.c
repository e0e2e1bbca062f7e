/* style-train.c: the style-transfer losses (kernels/train.cl and their C
 * references) and NclStyleLoss, the VGG-19 loss network that evaluates
 * them with gradients.  The trainer itself is in style-trainer.c... see
 * below: ncl_style_train_*. */
#include "model-private.h"

#include <neuralcl/train.h>
#include <neuralcl/error.h>

#include "config.h"

#include <neuralcl/safetensors.h>
#include <neuralcl/config.h>
#include <glib/gstdio.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
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

/* ======================================================================== */
/* ---- the fast style trainer --------------------------------------------- */


void
ncl_style_train_settings_init (NclStyleTrainSettings * s)
{
  memset (s, 0, sizeof (*s));
  s->preset = g_strdup ("small");
  s->image_size = 256;
  s->style_size = 512;
  s->crop_scale = 1.5;
  s->batch_size = 4;
  s->iterations = 2000;
  s->learning_rate = 1e-3;
  s->seed = 1;
  s->checkpoint_every = 100;
  s->sample_size = 256;
  ncl_style_loss_settings_init (&s->loss);
}

void
ncl_style_train_settings_clear (NclStyleTrainSettings * s)
{
  g_clear_pointer (&s->style, g_free);
  g_clear_pointer (&s->content, g_free);
  g_clear_pointer (&s->output, g_free);
  g_clear_pointer (&s->name, g_free);
  g_clear_pointer (&s->preset, g_free);
  g_clear_pointer (&s->checkpoint_dir, g_free);
  g_clear_pointer (&s->samples, g_strfreev);
  g_clear_pointer (&s->loss_network, g_free);
  g_clear_pointer (&s->device, g_free);
  ncl_style_loss_settings_clear (&s->loss);
}

/* Reads a path key, resolved against the YAML file's directory. */
static gboolean
get_path (NclYamlDoc * doc, const NclYamlNode * map, const gchar * key,
    gchar ** value, GError ** error)
{
  g_autofree gchar *v = NULL;

  if (!ncl_yaml_get_string (doc, map, key, &v, error))
    return FALSE;
  if (v != NULL) {
    g_free (*value);
    *value = g_path_is_absolute (v) ? g_steal_pointer (&v) :
        ncl_yaml_doc_resolve_path (doc, v);
  }
  return TRUE;
}

/* The loss: mapping of a style/gatys YAML (shared by both). */
static gboolean
load_loss_settings (NclYamlDoc * doc, const NclYamlNode * map,
    NclStyleLossSettings * s, GError ** error)
{
  static const gchar *const keys[] = { "content-layer", "content-weight",
    "style-weight", "tv-weight", "style-layers", NULL
  };
  const NclYamlNode *layers;

  if (map == NULL)
    return TRUE;
  if (ncl_yaml_node_get_type (map) != NCL_YAML_MAPPING)
    return ncl_yaml_set_error (doc, map, error, "expected a mapping");
  if (!ncl_yaml_check_keys (doc, map, keys, error) ||
      !ncl_yaml_get_string (doc, map, "content-layer", &s->content_layer,
          error) ||
      !ncl_yaml_get_double (doc, map, "content-weight", 0, 1e12,
          &s->content_weight, error) ||
      !ncl_yaml_get_double (doc, map, "style-weight", 0, 1e12,
          &s->style_weight, error) ||
      !ncl_yaml_get_double (doc, map, "tv-weight", 0, 1e12, &s->tv_weight,
          error))
    return FALSE;
  if (s->content_layer != NULL && relu_index (s->content_layer) < 0)
    return ncl_yaml_set_error (doc, ncl_yaml_mapping_lookup (map,
            "content-layer"), error, "unknown layer '%s' (relu1_1, relu1_2, "
        "relu2_1, relu2_2, relu3_1 .. relu3_4)", s->content_layer);
  layers = ncl_yaml_mapping_lookup (map, "style-layers");
  if (layers != NULL) {
    guint n = ncl_yaml_node_get_n_children (layers);

    if (ncl_yaml_node_get_type (layers) != NCL_YAML_MAPPING || n == 0)
      return ncl_yaml_set_error (doc, layers, error, "expected a mapping "
          "of layer names to weights, e.g. {relu1_2: 1, relu2_2: 1}");
    if (n > NCL_STYLE_MAX_LAYERS)
      return ncl_yaml_set_error (doc, layers, error, "at most %d layers",
          NCL_STYLE_MAX_LAYERS);
    for (gint i = 0; i < NCL_STYLE_MAX_LAYERS; i++)
      g_clear_pointer (&s->style_layers[i], g_free);
    for (guint i = 0; i < n; i++) {
      const gchar *key = ncl_yaml_node_get_nth_key (layers, i);
      const NclYamlNode *v = ncl_yaml_node_get_nth (layers, i);

      if (relu_index (key) < 0)
        return ncl_yaml_set_error (doc, v, error, "unknown layer '%s' "
            "(relu1_1, relu1_2, relu2_1, relu2_2, relu3_1 .. relu3_4)", key);
      s->style_layers[i] = g_strdup (key);
      if (!ncl_yaml_node_to_double (doc, v, 0, 1e12,
              &s->style_layer_weights[i], error))
        return FALSE;
    }
    s->n_style_layers = n;
  }
  return TRUE;
}

static gboolean
is_synthetic (const gchar * s)
{
  return g_str_equal (s, "synthetic");
}

gboolean
ncl_style_train_settings_load (NclStyleTrainSettings * s, const gchar * path,
    GError ** error)
{
  static const gchar *const keys[] = { "style", "content", "output", "name",
    "preset", "image-size", "style-size", "crop-scale", "batch-size",
    "iterations", "learning-rate", "seed", "checkpoint-every",
    "checkpoint-dir", "samples", "sample-size", "loss-network", "device",
    "loss", NULL
  };
  g_autoptr (NclYamlDoc) doc = ncl_yaml_load_file (path, error);
  const NclYamlNode *root, *samples;

  if (doc == NULL)
    return FALSE;
  root = ncl_yaml_doc_get_root (doc);
  if (root == NULL)
    return TRUE;
  if (ncl_yaml_node_get_type (root) != NCL_YAML_MAPPING)
    return ncl_yaml_set_error (doc, root, error,
        "expected a mapping of training settings");
  if (!ncl_yaml_check_keys (doc, root, keys, error) ||
      !get_path (doc, root, "style", &s->style, error) ||
      !get_path (doc, root, "content", &s->content, error) ||
      !get_path (doc, root, "output", &s->output, error) ||
      !ncl_yaml_get_string (doc, root, "name", &s->name, error) ||
      !ncl_yaml_get_string (doc, root, "preset", &s->preset, error) ||
      !ncl_yaml_get_int (doc, root, "image-size", 16, 4096, &s->image_size,
          error) ||
      !ncl_yaml_get_int (doc, root, "style-size", 0, 8192, &s->style_size,
          error) ||
      !ncl_yaml_get_double (doc, root, "crop-scale", 1.0, 4.0,
          &s->crop_scale, error) ||
      !ncl_yaml_get_int (doc, root, "batch-size", 1, 256, &s->batch_size,
          error) ||
      !ncl_yaml_get_int (doc, root, "iterations", 0, 100000000,
          &s->iterations, error) ||
      !ncl_yaml_get_double (doc, root, "learning-rate", 0, 10,
          &s->learning_rate, error) ||
      !ncl_yaml_get_int (doc, root, "seed", 0, G_MAXINT, &s->seed, error) ||
      !ncl_yaml_get_int (doc, root, "checkpoint-every", 1, 100000000,
          &s->checkpoint_every, error) ||
      !get_path (doc, root, "checkpoint-dir", &s->checkpoint_dir, error) ||
      !ncl_yaml_get_int (doc, root, "sample-size", 16, 4096,
          &s->sample_size, error) ||
      !get_path (doc, root, "loss-network", &s->loss_network, error) ||
      !ncl_yaml_get_string (doc, root, "device", &s->device, error) ||
      !load_loss_settings (doc, ncl_yaml_mapping_lookup (root, "loss"),
          &s->loss, error))
    return FALSE;
  if (s->preset != NULL && !g_str_equal (s->preset, "johnson")
      && !g_str_equal (s->preset, "small"))
    return ncl_yaml_set_error (doc, ncl_yaml_mapping_lookup (root, "preset"),
        error, "unknown preset '%s' (johnson, small)", s->preset);
  if (s->image_size % 4 != 0)
    return ncl_yaml_set_error (doc, ncl_yaml_mapping_lookup (root,
            "image-size"), error, "%d is not a multiple of 4", s->image_size);
  samples = ncl_yaml_mapping_lookup (root, "samples");
  if (samples != NULL) {
    GPtrArray *list = g_ptr_array_new ();

    if (ncl_yaml_node_get_type (samples) != NCL_YAML_SEQUENCE) {
      g_ptr_array_free (list, TRUE);
      return ncl_yaml_set_error (doc, samples, error,
          "expected a list of image paths (or 'synthetic')");
    }
    for (guint i = 0; i < ncl_yaml_node_get_n_children (samples); i++) {
      const gchar *v = ncl_yaml_node_get_scalar (ncl_yaml_node_get_nth
          (samples, i));

      if (v == NULL) {
        g_ptr_array_free (list, TRUE);
        return ncl_yaml_set_error (doc, ncl_yaml_node_get_nth (samples, i),
            error, "expected an image path");
      }
      g_ptr_array_add (list, is_synthetic (v) || g_path_is_absolute (v) ?
          g_strdup (v) : ncl_yaml_doc_resolve_path (doc, v));
    }
    g_ptr_array_add (list, NULL);
    g_strfreev (s->samples);
    s->samples = (gchar **) g_ptr_array_free (list, FALSE);
  }
  return TRUE;
}

static void
yaml_quoted (GString * out, const gchar * key, const gchar * v)
{
  if (v == NULL)
    return;
  g_string_append_printf (out, "%s: \"", key);
  for (const gchar * p = v; *p; p++) {
    if (*p == '"' || *p == '\\')
      g_string_append_c (out, '\\');
    g_string_append_c (out, *p);
  }
  g_string_append (out, "\"\n");
}

static void
loss_settings_to_yaml (GString * out, const NclStyleLossSettings * l)
{
  g_string_append (out, "loss:\n");
  if (l->content_layer)
    g_string_append_printf (out, "  content-layer: %s\n", l->content_layer);
  g_string_append_printf (out, "  content-weight: %.9g\n  style-weight: "
      "%.9g\n  tv-weight: %.9g\n  style-layers:\n", l->content_weight,
      l->style_weight, l->tv_weight);
  for (gint i = 0; i < l->n_style_layers; i++)
    g_string_append_printf (out, "    %s: %.9g\n", l->style_layers[i],
        l->style_layer_weights[i]);
}

gchar *
ncl_style_train_settings_to_yaml (const NclStyleTrainSettings * s)
{
  GString *out = g_string_new ("# neuralcl style train settings\n");

  yaml_quoted (out, "style", s->style);
  yaml_quoted (out, "content", s->content);
  yaml_quoted (out, "output", s->output);
  yaml_quoted (out, "name", s->name);
  yaml_quoted (out, "preset", s->preset);
  g_string_append_printf (out, "image-size: %d\nstyle-size: %d\n"
      "crop-scale: %.9g\nbatch-size: %d\niterations: %d\n"
      "learning-rate: %.9g\nseed: %d\ncheckpoint-every: %d\n",
      s->image_size, s->style_size, s->crop_scale, s->batch_size,
      s->iterations, s->learning_rate, s->seed, s->checkpoint_every);
  yaml_quoted (out, "checkpoint-dir", s->checkpoint_dir);
  if (s->samples != NULL && s->samples[0] != NULL) {
    g_string_append (out, "samples:\n");
    for (guint i = 0; s->samples[i]; i++) {
      g_string_append (out, "  - ");
      yaml_quoted (out, "", s->samples[i]);
    }
  }
  g_string_append_printf (out, "sample-size: %d\n", s->sample_size);
  yaml_quoted (out, "loss-network", s->loss_network);
  yaml_quoted (out, "device", s->device);
  loss_settings_to_yaml (out, &s->loss);
  return g_string_free (out, FALSE);
}

/* ---- the network ---------------------------------------------------------- */

typedef struct
{
  gint c1, c2, c3, blocks;
} Preset;

static gboolean
get_preset (const gchar * name, Preset * p, GError ** error)
{
  if (name == NULL || g_str_equal (name, "small")) {
    *p = (Preset) { 16, 32, 64, 3 };
    return TRUE;
  }
  if (g_str_equal (name, "johnson")) {
    *p = (Preset) { 32, 64, 128, 5 };
    return TRUE;
  }
  g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_CONFIG,
      "unknown preset '%s' (johnson, small)", name);
  return FALSE;
}

static void
add_conv_init (NclSafetensorsWriter * w, GRand * rng, const gchar * name,
    gint cin, gint cout, gint k)
{
  gsize n = (gsize) cout * cin * k * k;
  g_autofree gfloat *wt = g_new (gfloat, n);
  g_autofree gfloat *b = g_new (gfloat, cout);
  gdouble bound = 1.0 / sqrt ((gdouble) cin * k * k);
  gint64 ws[4] = { cout, cin, k, k }, bs[1] = { cout };
  g_autofree gchar *wn = g_strconcat (name, ".conv2d.weight", NULL);
  g_autofree gchar *bn = g_strconcat (name, ".conv2d.bias", NULL);

  for (gsize i = 0; i < n; i++)
    wt[i] = (gfloat) g_rand_double_range (rng, -bound, bound);
  for (gint i = 0; i < cout; i++)
    b[i] = (gfloat) g_rand_double_range (rng, -bound, bound);
  ncl_safetensors_writer_add (w, wn, NCL_DTYPE_F32, 4, ws, wt);
  ncl_safetensors_writer_add (w, bn, NCL_DTYPE_F32, 1, bs, b);
}

static void
add_norm_init (NclSafetensorsWriter * w, const gchar * name, gint c)
{
  g_autofree gfloat *one = g_new (gfloat, c);
  g_autofree gfloat *zero = g_new0 (gfloat, c);
  gint64 s[1] = { c };
  g_autofree gchar *wn = g_strconcat (name, ".weight", NULL);
  g_autofree gchar *bn = g_strconcat (name, ".bias", NULL);

  for (gint i = 0; i < c; i++)
    one[i] = 1.0f;
  ncl_safetensors_writer_add (w, wn, NCL_DTYPE_F32, 1, s, one);
  ncl_safetensors_writer_add (w, bn, NCL_DTYPE_F32, 1, s, zero);
}

gboolean
ncl_style_write_initial_net (const gchar * preset, guint32 seed,
    const gchar * path, GError ** error)
{
  g_autoptr (NclSafetensorsWriter) w = ncl_safetensors_writer_new ();
  g_autoptr (GRand) rng = g_rand_new_with_seed (seed);
  Preset p;

  if (!get_preset (preset, &p, error))
    return FALSE;
  add_conv_init (w, rng, "conv1", 3, p.c1, 9);
  add_norm_init (w, "in1", p.c1);
  add_conv_init (w, rng, "conv2", p.c1, p.c2, 3);
  add_norm_init (w, "in2", p.c2);
  add_conv_init (w, rng, "conv3", p.c2, p.c3, 3);
  add_norm_init (w, "in3", p.c3);
  for (gint r = 1; r <= p.blocks; r++) {
    g_autofree gchar *c1 = g_strdup_printf ("res%d.conv1", r);
    g_autofree gchar *c2 = g_strdup_printf ("res%d.conv2", r);
    g_autofree gchar *n1 = g_strdup_printf ("res%d.in1", r);
    g_autofree gchar *n2 = g_strdup_printf ("res%d.in2", r);

    add_conv_init (w, rng, c1, p.c3, p.c3, 3);
    add_norm_init (w, n1, p.c3);
    add_conv_init (w, rng, c2, p.c3, p.c3, 3);
    add_norm_init (w, n2, p.c3);
  }
  add_conv_init (w, rng, "deconv1", p.c3, p.c2, 3);
  add_norm_init (w, "in4", p.c2);
  add_conv_init (w, rng, "deconv2", p.c2, p.c1, 3);
  add_norm_init (w, "in5", p.c1);
  add_conv_init (w, rng, "deconv3", p.c1, 3, 9);
  ncl_safetensors_writer_add_metadata (w, "origin", "untrained "
      "initialisation");
  ncl_safetensors_writer_add_metadata (w, "preset", preset ? preset :
      "small");
  return ncl_safetensors_writer_write (w, path, error);
}

/* Loads a TransformerNet checkpoint as a model (its graph derived from the
 * tensor names). */
static NclModel *
load_net (const gchar * path, GError ** error)
{
  g_autoptr (NclSafetensors) st = ncl_safetensors_load (path, error);
  g_autofree gchar *yaml = NULL;

  if (st == NULL)
    return NULL;
  if (!ncl_transformer_net_detect (st)) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
        "%s: not a TransformerNet checkpoint", path);
    return NULL;
  }
  yaml = ncl_transformer_net_graph (st, "training", error);
  if (yaml == NULL)
    return NULL;
  return ncl_model_parse (path, yaml, st, error);
}

/* TransformerNet tensor name of a parameter. */
static gchar *
param_tensor_name (const NclTrainParamInfo * info)
{
  if (g_str_equal (info->op, "conv"))
    return g_strdup_printf ("%s.conv2d.%s", info->layer, info->role);
  return g_strdup_printf ("%s.%s", info->layer, info->role);
}

/* Writes the net's parameters (and with @adam the optimiser state, under
 * "adam_m/" and "adam_v/") to @path.  Conv weights are F16 unless @adam. */
static gboolean
save_net (NclTrainGraph * net, const gchar * path, gboolean adam,
    GHashTable * metadata, GError ** error)
{
  g_autoptr (NclSafetensorsWriter) w = ncl_safetensors_writer_new ();
  GHashTableIter it;
  gpointer k, v;

  for (guint i = 0; i < ncl_train_graph_get_n_params (net); i++) {
    NclTrainParamInfo info;
    g_autofree gchar *name = NULL;
    g_autofree gfloat *data = NULL;

    ncl_train_graph_get_param_info (net, i, &info);
    name = param_tensor_name (&info);
    data = g_new (gfloat, info.numel);
    if (!ncl_train_graph_read_param (net, i, NCL_PARAM_VALUE, data, error))
      return FALSE;
    ncl_safetensors_writer_add (w, name, !adam && info.ndim == 4 ?
        NCL_DTYPE_F16 : NCL_DTYPE_F32, info.ndim, info.shape, data);
    if (adam) {
      static const gchar *const prefix[2] = { "adam_m/", "adam_v/" };

      for (gint b = 0; b < 2; b++) {
        g_autofree gchar *an = g_strconcat (prefix[b], name, NULL);

        if (!ncl_train_graph_read_param (net, i, b == 0 ? NCL_PARAM_ADAM_M :
                NCL_PARAM_ADAM_V, data, error))
          return FALSE;
        ncl_safetensors_writer_add (w, an, NCL_DTYPE_F32, info.ndim,
            info.shape, data);
      }
    }
  }
  g_hash_table_iter_init (&it, metadata);
  while (g_hash_table_iter_next (&it, &k, &v))
    ncl_safetensors_writer_add_metadata (w, k, v);
  return ncl_safetensors_writer_write (w, path, error);
}

/* Restores the Adam state saved by save_net(). */
static gboolean
restore_adam (NclTrainGraph * net, NclSafetensors * st, GError ** error)
{
  for (guint i = 0; i < ncl_train_graph_get_n_params (net); i++) {
    NclTrainParamInfo info;
    g_autofree gchar *name = NULL;

    ncl_train_graph_get_param_info (net, i, &info);
    name = param_tensor_name (&info);
    for (gint b = 0; b < 2; b++) {
      g_autofree gchar *an = g_strconcat (b == 0 ? "adam_m/" : "adam_v/",
          name, NULL);
      g_autofree gfloat *data = ncl_safetensors_read_f32 (st, an, info.ndim,
          info.shape, error);

      if (data == NULL || !ncl_train_graph_write_param (net, i,
              b == 0 ? NCL_PARAM_ADAM_M : NCL_PARAM_ADAM_V, data, error))
        return FALSE;
    }
  }
  return TRUE;
}

/* ---- images ------------------------------------------------------------- */

/* Planar RGB float (1, 3, h, w) of @img, transfer full. */
static gfloat *
image_planar (const NclImage * img)
{
  gfloat *out = g_new (gfloat, (gsize) 3 * img->width * img->height);

  ncl_image_to_planar_ref (img, out);
  return out;
}

/* Resizes planar @in (3, h, w) so that its longest side is @side (a
 * multiple of @mult; 0 = keep the size, rounded down to @mult). */
static gfloat *
planar_fit (const gfloat * in, gint h, gint w, gint side, gint mult,
    gint * oh, gint * ow)
{
  gdouble s = side > 0 ? (gdouble) side / MAX (h, w) : 1.0;
  gfloat *out;

  *oh = MAX (mult, (gint) (h * s + 0.5) / mult * mult);
  *ow = MAX (mult, (gint) (w * s + 0.5) / mult * mult);
  out = g_new (gfloat, (gsize) 3 * *oh * *ow);
  ncl_resize_bilinear_ref (in, 1, 3, h, w, *oh, *ow, out);
  return out;
}

/* A generated test card: colour ramps, discs and stripes (transfer full). */
static NclImage *
synthetic_image (gint w, gint h)
{
  NclImage *img = ncl_image_new_rgb (w, h);

  for (gint y = 0; y < h; y++) {
    guint8 *row = img->planes[0] + (gsize) y * img->strides[0];

    for (gint x = 0; x < w; x++) {
      gdouble u = (gdouble) x / w, v = (gdouble) y / h;
      gdouble r = 40 + 200 * u, g = 60 + 160 * v, b = 200 - 150 * u * v;
      gdouble d1 = hypot (u - 0.3, v - 0.4), d2 = hypot (u - 0.72, v - 0.6);

      if (d1 < 0.18) {
        r = 230;
        g = 200;
        b = 40;
      } else if (d2 < 0.22) {
        r = 30 + 100 * (d2 / 0.22);
        g = 90;
        b = 170;
      } else if (v > 0.8 && ((x / 12) % 2) == 0) {
        r *= 0.4;
        g *= 0.4;
        b *= 0.4;
      }
      row[3 * x] = (guint8) CLAMP (r, 0, 255);
      row[3 * x + 1] = (guint8) CLAMP (g, 0, 255);
      row[3 * x + 2] = (guint8) CLAMP (b, 0, 255);
    }
  }
  return img;
}

/* Planar float (3, h, w) -> new RGB image, clamped and rounded. */
static NclImage *
planar_to_image (const gfloat * rgb, gint h, gint w)
{
  NclImage *img = ncl_image_new_rgb (w, h);

  ncl_image_from_planar_ref (rgb, w, h, NULL, 1.0f, FALSE, img);
  return img;
}

static gint
compare_strings (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(const gchar * const *) a, *(const gchar * const *) b);
}

static void
list_images (const gchar * dir, GPtrArray * out)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const gchar *name;

  if (d == NULL)
    return;
  while ((name = g_dir_read_name (d)) != NULL) {
    g_autofree gchar *path = g_build_filename (dir, name, NULL);
    g_autofree gchar *lower = g_ascii_strdown (name, -1);

    if (g_file_test (path, G_FILE_TEST_IS_DIR))
      list_images (path, out);
    else if (g_str_has_suffix (lower, ".jpg") || g_str_has_suffix (lower,
            ".jpeg") || g_str_has_suffix (lower, ".png"))
      g_ptr_array_add (out, g_steal_pointer (&path));
  }
}

/* One training crop: the short side scaled to size x U(1, crop_scale), a
 * random size x size window, mirrored half of the time. */
static gboolean
load_crop (const gchar * path, gint size, gdouble crop_scale, GRand * rng,
    gfloat * out, GError ** error)
{
  g_autoptr (NclImage) img = ncl_image_load (path, error);
  g_autofree gfloat *planar = NULL;
  g_autofree gfloat *scaled = NULL;
  gdouble s;
  gint sh, sw, y0, x0;
  gboolean flip;

  if (img == NULL)
    return FALSE;
  planar = image_planar (img);
  s = size * g_rand_double_range (rng, 1.0, MAX (crop_scale, 1.0 + 1e-9)) /
      MIN (img->width, img->height);
  sh = MAX (size, (gint) ceil (img->height * s));
  sw = MAX (size, (gint) ceil (img->width * s));
  scaled = g_new (gfloat, (gsize) 3 * sh * sw);
  ncl_resize_bilinear_ref (planar, 1, 3, img->height, img->width, sh, sw,
      scaled);
  y0 = g_rand_int_range (rng, 0, sh - size + 1);
  x0 = g_rand_int_range (rng, 0, sw - size + 1);
  flip = g_rand_boolean (rng);
  for (gint c = 0; c < 3; c++)
    for (gint y = 0; y < size; y++)
      for (gint x = 0; x < size; x++)
        out[((gsize) c * size + y) * size + x] =
            scaled[((gsize) c * sh + y0 + y) * sw + x0 +
            (flip ? size - 1 - x : x)];
  return TRUE;
}

/* ---- the training loop -------------------------------------------------- */

typedef struct
{
  gchar *label;
  gint h, w;
  gfloat *rgb;                  /* (3, h, w) */
  gdouble input_style;          /* style loss of the input */
} Sample;

typedef struct
{
  const NclStyleTrainSettings *s;
  NclContext *ctx;
  NclStyleLoss *loss;
  NclTrainGraph *net;
  gchar *dir;
  gchar *weights_path;          /* output .safetensors */
  GPtrArray *files;
  GArray *log;                  /* LogRow */
  Sample *samples;
  guint n_samples;
  NclImage *style_thumb;
  NclStyleTrainCallback cb;
  gpointer user_data;
} Trainer;

typedef struct
{
  gdouble iteration, content, style, tv, total, images_per_s;
} LogRow;

static void
trainer_clear (Trainer * t)
{
  for (guint i = 0; i < t->n_samples; i++) {
    g_free (t->samples[i].label);
    g_free (t->samples[i].rgb);
  }
  g_free (t->samples);
  ncl_image_free (t->style_thumb);
  ncl_style_loss_free (t->loss);
  ncl_train_graph_free (t->net);
  if (t->ctx)
    ncl_context_unref (t->ctx);
  g_free (t->dir);
  g_free (t->weights_path);
  if (t->files)
    g_ptr_array_unref (t->files);
  if (t->log)
    g_array_unref (t->log);
}

static gboolean
message (Trainer * t, const NclStyleTrainProgress * base, const gchar * text)
{
  NclStyleTrainProgress p = *base;

  p.message = text;
  return t->cb == NULL || t->cb (&p, t->user_data);
}

/* Runs the net on one (3, h, w) image, returns the clamped RGB result. */
static gfloat *
stylise (Trainer * t, const gfloat * rgb, gint h, gint w, GError ** error)
{
  g_autoptr (NclTensor) in = ncl_tensor_new (t->ctx, 1, 3, h, w, error);
  gfloat *out;
  NclTensor *o;

  if (in == NULL || !ncl_tensor_upload (in, rgb, error) ||
      !ncl_train_graph_forward (t->net, in, -1, error))
    return NULL;
  o = ncl_train_graph_get_activation (t->net,
      ncl_train_graph_get_output_index (t->net));
  out = g_new (gfloat, ncl_tensor_numel (o));
  if (!ncl_tensor_download (o, out, error)) {
    g_free (out);
    return NULL;
  }
  for (gsize i = 0; i < ncl_tensor_numel (o); i++)
    out[i] = CLAMP (out[i], 0.0f, 255.0f);
  return out;
}

static gboolean
write_log (Trainer * t, GError ** error)
{
  g_autoptr (GString) csv = g_string_new ("iteration,content,style,tv,total,"
      "images_per_s\n");
  g_autofree gchar *path = g_build_filename (t->dir, "losses.csv", NULL);
  g_autofree gchar *png = g_build_filename (t->dir, "loss-curve.png", NULL);
  guint n = t->log->len;
  g_autofree gdouble *x = g_new (gdouble, n);
  g_autofree gdouble *ys = g_new (gdouble, 4 * n);
  const gdouble *series[4] = { ys, ys + n, ys + 2 * n, ys + 3 * n };
  const gchar *names[4] = { "total", "content", "style", "tv" };
  g_autofree gchar *title = NULL;
  g_autofree gchar *base = g_path_get_basename (t->s->style);

  for (guint i = 0; i < n; i++) {
    LogRow *r = &g_array_index (t->log, LogRow, i);

    g_string_append_printf (csv, "%.0f,%.6g,%.6g,%.6g,%.6g,%.4g\n",
        r->iteration, r->content, r->style, r->tv, r->total, r->images_per_s);
    x[i] = r->iteration;
    ys[i] = r->total;
    ys[n + i] = r->content;
    ys[2 * n + i] = r->style;
    ys[3 * n + i] = r->tv;
  }
  if (!g_file_set_contents (path, csv->str, csv->len, error))
    return FALSE;
  if (n < 2)
    return TRUE;
  title = g_strdup_printf ("%s, %s preset, batch %d, %dx%d crops", base,
      t->s->preset, t->s->batch_size, t->s->image_size, t->s->image_size);
  return ncl_plot_curves (png, title, x, n, 4, names, series, error);
}

static gboolean
read_log (Trainer * t, gint upto)
{
  g_autofree gchar *path = g_build_filename (t->dir, "losses.csv", NULL);
  g_autofree gchar *text = NULL;
  g_auto (GStrv) lines = NULL;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return FALSE;
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 1; lines[i]; i++) {
    LogRow r;

    if (sscanf (lines[i], "%lf,%lf,%lf,%lf,%lf,%lf", &r.iteration,
            &r.content, &r.style, &r.tv, &r.total, &r.images_per_s) == 6
        && r.iteration <= upto)
      g_array_append_val (t->log, r);
  }
  return TRUE;
}

/* Model files, training state, loss curve and sample grid. */
static gboolean
checkpoint (Trainer * t, gint iteration, const NclStyleTrainProgress * prog,
    GError ** error)
{
  const NclStyleTrainSettings *s = t->s;
  g_autoptr (GHashTable) meta = g_hash_table_new (g_str_hash, g_str_equal);
  g_autofree gchar *state = g_build_filename (t->dir, "state.safetensors",
      NULL);
  g_autofree gchar *state_tmp = g_strconcat (state, ".tmp", NULL);
  g_autofree gchar *style_base = g_path_get_basename (s->style);
  g_autofree gchar *origin = g_strdup_printf ("trained here from %s",
      style_base);
  g_autofree gchar *it_str = g_strdup_printf ("%d", iteration);
  g_autofree gchar *details = g_strdup_printf ("preset %s, %d iterations of "
      "batch %d at %dx%d, lr %g, content %g x %s, style %g, tv %g, seed %d",
      s->preset, iteration, s->batch_size, s->image_size, s->image_size,
      s->learning_rate, s->loss.content_weight, s->loss.content_layer ?
      s->loss.content_layer : "-", s->loss.style_weight, s->loss.tv_weight,
      s->seed);
  g_autofree gchar *graph = NULL;
  g_autofree gchar *name = NULL;
  g_autofree gchar *grid_path = g_build_filename (t->dir, "samples.png",
      NULL);
  g_autoptr (GString) ratios = g_string_new (NULL);
  g_autoptr (NclSafetensors) st = NULL;
  NclImage **cells;
  gboolean ok = TRUE;

  g_hash_table_insert (meta, "origin", origin);
  g_hash_table_insert (meta, "training", details);
  g_hash_table_insert (meta, "iteration", it_str);
  g_hash_table_insert (meta, "preset", s->preset);

  /* the training state first (atomically), then the model */
  if (!save_net (t->net, state_tmp, TRUE, meta, error) ||
      g_rename (state_tmp, state) != 0) {
    if (error && *error == NULL)
      g_set_error (error, NCL_ERROR, NCL_ERROR_IO, "%s: cannot rename: %s",
          state, g_strerror (errno));
    return FALSE;
  }
  if (!save_net (t->net, t->weights_path, FALSE, meta, error))
    return FALSE;
  if (s->name != NULL) {
    name = g_strdup (s->name);
  } else {
    gchar *dot;
    name = g_path_get_basename (s->output);
    dot = strrchr (name, '.');
    if (dot)
      *dot = '\0';
  }
  st = ncl_safetensors_load (t->weights_path, error);
  if (st == NULL)
    return FALSE;
  graph = ncl_transformer_net_graph (st, name, error);
  if (graph == NULL || !g_file_set_contents (s->output, graph, -1, error))
    return FALSE;

  if (!write_log (t, error))
    return FALSE;

  /* samples: input | output (| style) per row */
  cells = g_new0 (NclImage *, t->n_samples * 3);
  for (guint i = 0; i < t->n_samples && ok; i++) {
    Sample *sm = &t->samples[i];
    g_autofree gfloat *out = stylise (t, sm->rgb, sm->h, sm->w, error);
    g_autoptr (NclTensor) tt = NULL;
    gdouble ls = 0;

    if (out == NULL) {
      ok = FALSE;
      break;
    }
    cells[i * 3] = planar_to_image (sm->rgb, sm->h, sm->w);
    cells[i * 3 + 1] = planar_to_image (out, sm->h, sm->w);
    if (i == 0 && t->style_thumb)
      cells[2] = t->style_thumb;
    tt = ncl_tensor_new (t->ctx, 1, 3, sm->h, sm->w, error);
    ok = tt != NULL && ncl_tensor_upload (tt, out, error) &&
        ncl_style_loss_measure (t->loss, tt, &ls, error);
    if (ok)
      g_string_append_printf (ratios, "%s%s %.3f", i ? ", " : "",
          sm->label, ls / MAX (sm->input_style, 1e-30));
  }
  if (ok && t->n_samples > 0)
    ok = ncl_plot_image_grid (grid_path, cells, t->n_samples, 3,
        s->sample_size, error);
  for (guint i = 0; i < t->n_samples * 3; i++)
    if (cells[i] != t->style_thumb)
      ncl_image_free (cells[i]);
  g_free (cells);
  if (!ok)
    return FALSE;

  {
    g_autofree gchar *line = g_strdup_printf ("checkpoint at iteration %d: "
        "%s, %s%s%s%s", iteration, s->output, t->dir,
        ratios->len ? " (style-loss ratio output/input: " : "",
        ratios->str, ratios->len ? ")" : "");
    message (t, prog, line);
  }
  return TRUE;
}

static gboolean
load_samples (Trainer * t, GError ** error)
{
  const NclStyleTrainSettings *s = t->s;
  guint n = s->samples ? g_strv_length (s->samples) : 0;

  t->samples = g_new0 (Sample, MAX (n, 1));
  for (guint i = 0; i < n; i++) {
    Sample *sm = &t->samples[t->n_samples];
    g_autoptr (NclImage) img = NULL;
    g_autofree gfloat *planar = NULL;
    g_autoptr (NclTensor) tt = NULL;

    if (is_synthetic (s->samples[i])) {
      img = synthetic_image (s->sample_size, s->sample_size * 3 / 4);
      sm->label = g_strdup ("synthetic");
    } else {
      img = ncl_image_load (s->samples[i], error);
      if (img == NULL)
        return FALSE;
      sm->label = g_path_get_basename (s->samples[i]);
    }
    planar = image_planar (img);
    sm->rgb = planar_fit (planar, img->height, img->width, s->sample_size, 4,
        &sm->h, &sm->w);
    t->n_samples++;
    tt = ncl_tensor_new (t->ctx, 1, 3, sm->h, sm->w, error);
    if (tt == NULL || !ncl_tensor_upload (tt, sm->rgb, error) ||
        !ncl_style_loss_measure (t->loss, tt, &sm->input_style, error))
      return FALSE;
  }
  return TRUE;
}

gboolean
ncl_style_train (const NclStyleTrainSettings * s,
    NclStyleTrainCallback cb, gpointer user_data, GError ** error)
{
  Trainer t = { 0 };
  gboolean ok = FALSE;
  g_autofree gchar *vgg = NULL;
  g_autofree gchar *init_path = NULL;
  g_autofree gchar *state = NULL;
  g_autofree gchar *settings_yaml = NULL;
  g_autofree gchar *settings_path = NULL;
  g_autofree gchar *out_base = NULL;
  g_autoptr (NclModel) model = NULL;
  g_autoptr (NclImage) style_img = NULL;
  g_autofree gfloat *style_planar = NULL;
  g_autofree gfloat *style_rgb = NULL;
  g_autoptr (NclTensor) style_t = NULL;
  g_autoptr (NclTensor) batch = NULL;
  g_autofree gfloat *batch_host = NULL;
  NclStyleTrainProgress prog = { 0 };
  NclAdamParams adam;
  gint start = 0, sh, sw, size = s->image_size;
  gsize per = (gsize) 3 * size * size;
  gdouble rate = 0;
  gint64 t0;

  t.s = s;
  t.cb = cb;
  t.user_data = user_data;
  t.log = g_array_new (FALSE, FALSE, sizeof (LogRow));

  if (s->style == NULL || s->content == NULL || s->output == NULL) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_CONFIG,
        "training needs a style image, a content directory and an output "
        "path");
    goto out;
  }
  if (!g_str_has_suffix (s->output, ".yaml")) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_CONFIG,
        "%s: the output is a model graph and must end in .yaml", s->output);
    goto out;
  }
  if (size % 4 != 0 || size < 16) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_CONFIG,
        "image size %d: must be a multiple of 4, at least 16", size);
    goto out;
  }
  out_base = g_strndup (s->output, strlen (s->output) - 5);
  t.weights_path = g_strconcat (out_base, ".safetensors", NULL);
  t.dir = s->checkpoint_dir ? g_strdup (s->checkpoint_dir) :
      g_strconcat (out_base, ".train", NULL);
  if (g_mkdir_with_parents (t.dir, 0755) != 0) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_IO, "%s: cannot create: %s",
        t.dir, g_strerror (errno));
    goto out;
  }
  {
    g_autofree gchar *odir = g_path_get_dirname (s->output);
    g_mkdir_with_parents (odir, 0755);
  }

  t.files = g_ptr_array_new_with_free_func (g_free);
  list_images (s->content, t.files);
  if (t.files->len == 0) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_NOT_FOUND,
        "%s: no .jpg/.png training images found", s->content);
    goto out;
  }
  g_ptr_array_sort (t.files, compare_strings);

  t.ctx = ncl_context_new (s->device, error);
  if (t.ctx == NULL)
    goto out;
  vgg = s->loss_network ? g_strdup (s->loss_network) :
      ncl_style_loss_default_network ();
  t.loss = ncl_style_loss_new (t.ctx, vgg, &s->loss, error);
  if (t.loss == NULL)
    goto out;

  /* the style targets */
  style_img = ncl_image_load (s->style, error);
  if (style_img == NULL)
    goto out;
  style_planar = image_planar (style_img);
  style_rgb = planar_fit (style_planar, style_img->height, style_img->width,
      s->style_size, 1, &sh, &sw);
  style_t = ncl_tensor_new (t.ctx, 1, 3, sh, sw, error);
  if (style_t == NULL || !ncl_tensor_upload (style_t, style_rgb, error) ||
      !ncl_style_loss_set_style (t.loss, style_t, error))
    goto out;
  {
    gint th, tw;
    g_autofree gfloat *thumb = planar_fit (style_planar, style_img->height,
        style_img->width, s->sample_size, 1, &th, &tw);
    t.style_thumb = planar_to_image (thumb, th, tw);
  }

  /* the network: resumed or fresh */
  state = g_build_filename (t.dir, "state.safetensors", NULL);
  if (s->resume && g_file_test (state, G_FILE_TEST_EXISTS)) {
    g_autoptr (NclSafetensors) st = ncl_safetensors_load (state, error);
    const gchar *it;

    if (st == NULL)
      goto out;
    it = ncl_safetensors_get_metadata (st, "iteration");
    start = it ? atoi (it) : 0;
    /* the graph from the parameter names (the Adam tensors are not part of
     * it): write the weights alone first */
    model = NULL;
    {
      g_autoptr (NclSafetensorsWriter) w = ncl_safetensors_writer_new ();

      init_path = g_build_filename (t.dir, "resume.safetensors", NULL);
      for (guint i = 0; i < ncl_safetensors_get_n_tensors (st); i++) {
        const NclSafetensor *ti = ncl_safetensors_get_nth (st, i);
        g_autofree gfloat *data = NULL;

        if (g_str_has_prefix (ti->name, "adam_"))
          continue;
        data = ncl_safetensors_read_f32 (st, ti->name, ti->ndim, ti->shape,
            error);
        if (data == NULL)
          goto out;
        ncl_safetensors_writer_add (w, ti->name, NCL_DTYPE_F32, ti->ndim,
            ti->shape, data);
      }
      if (!ncl_safetensors_writer_write (w, init_path, error))
        goto out;
    }
    model = load_net (init_path, error);
    if (model == NULL)
      goto out;
    t.net = ncl_train_graph_new (t.ctx, model, TRUE, error);
    if (t.net == NULL || !restore_adam (t.net, st, error))
      goto out;
    read_log (&t, start);
  } else {
    init_path = g_build_filename (t.dir, "init.safetensors", NULL);
    if (!ncl_style_write_initial_net (s->preset, s->seed, init_path, error))
      goto out;
    model = load_net (init_path, error);
    if (model == NULL)
      goto out;
    t.net = ncl_train_graph_new (t.ctx, model, TRUE, error);
    if (t.net == NULL)
      goto out;
  }
  g_unlink (init_path);

  settings_yaml = ncl_style_train_settings_to_yaml (s);
  settings_path = g_build_filename (t.dir, "config.yaml", NULL);
  if (!g_file_set_contents (settings_path, settings_yaml, -1, error))
    goto out;
  if (!load_samples (&t, error))
    goto out;

  batch = ncl_tensor_new (t.ctx, s->batch_size, 3, size, size, error);
  if (batch == NULL)
    goto out;
  batch_host = g_new (gfloat, per * s->batch_size);
  ncl_adam_params_init (&adam);
  adam.lr = (gfloat) s->learning_rate;

  prog.iterations = s->iterations;
  prog.start_iteration = start;
  prog.iteration = start;
  {
    g_autofree gchar *line = g_strdup_printf ("%u training images, style "
        "%s at %dx%d, preset %s, %s, start at iteration %d",
        t.files->len, s->style, sw, sh, s->preset,
        ncl_context_get_device_name (t.ctx), start);
    if (!message (&t, &prog, line))
      goto out;
  }
  t0 = g_get_monotonic_time ();

  for (gint it = start + 1; it <= s->iterations; it++) {
    gint64 s0 = g_get_monotonic_time ();
    g_autoptr (GRand) rng = g_rand_new_with_seed ((guint32) (s->seed * 7919u
            + it * 104729u));
    NclTensor *out, *dout;
    gboolean fresh, go_on;
    gdouble dt;

    /* the batch: epoch-shuffled file order, deterministic for resume */
    for (gint b = 0; b < s->batch_size; b++) {
      guint64 idx = (guint64) (it - 1) * s->batch_size + b;
      guint epoch = (guint) (idx / t.files->len);
      guint pos = (guint) (idx % t.files->len);
      g_autoptr (GRand) er = g_rand_new_with_seed ((guint32) (s->seed +
              epoch * 2654435761u));
      g_autofree guint *perm = g_new (guint, t.files->len);
      g_autoptr (GError) local = NULL;

      for (guint i = 0; i < t.files->len; i++)
        perm[i] = i;
      for (guint i = t.files->len - 1; i > 0; i--) {
        guint j = g_rand_int_range (er, 0, i + 1), tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
      }
      if (!load_crop (g_ptr_array_index (t.files, perm[pos]), size,
              s->crop_scale, rng, batch_host + b * per, &local)) {
        /* a broken photo: use the next one */
        g_autofree gchar *line = g_strdup_printf ("skipping: %s",
            local->message);
        message (&t, &prog, line);
        if (!load_crop (g_ptr_array_index (t.files, (perm[pos] + 1) %
                    t.files->len), size, s->crop_scale, rng,
                batch_host + b * per, error))
          goto out;
      }
    }
    if (!ncl_tensor_upload (batch, batch_host, error) ||
        !ncl_style_loss_set_content (t.loss, batch, error) ||
        !ncl_train_graph_forward (t.net, batch, -1, error))
      goto out;
    out = ncl_train_graph_get_activation (t.net,
        ncl_train_graph_get_output_index (t.net));
    ncl_train_graph_clear_grads (t.net);
    dout = ncl_train_graph_grad_tensor (t.net,
        ncl_train_graph_get_output_index (t.net), &fresh, error);
    if (dout == NULL ||
        !ncl_style_loss_evaluate (t.loss, out, &prog.loss, dout, error) ||
        !ncl_train_graph_zero_param_grads (t.net, error) ||
        !ncl_train_graph_backward (t.net, NULL, error) ||
        !ncl_train_graph_adam_step (t.net, &adam, it, error))
      goto out;
    if (!isfinite (prog.loss.total)) {
      g_set_error (error, NCL_ERROR, NCL_ERROR_FAILED,
          "iteration %d: the loss is not finite (%g); lower the learning "
          "rate or the loss weights", it, prog.loss.total);
      goto out;
    }

    dt = (g_get_monotonic_time () - s0) / 1e6;
    rate = rate == 0 ? s->batch_size / dt :
        0.9 * rate + 0.1 * s->batch_size / dt;
    prog.iteration = it;
    prog.elapsed_s = (g_get_monotonic_time () - t0) / 1e6;
    prog.images_per_s = rate;
    prog.eta_s = (s->iterations - it) * s->batch_size / rate;
    {
      LogRow r = { it, prog.loss.content, prog.loss.style, prog.loss.tv,
        prog.loss.total, rate
      };
      g_array_append_val (t.log, r);
    }
    go_on = cb == NULL || cb (&prog, user_data);
    if (it % s->checkpoint_every == 0 || it == s->iterations || !go_on) {
      if (!checkpoint (&t, it, &prog, error))
        goto out;
    }
    if (!go_on)
      break;
  }
  if (start >= s->iterations && !checkpoint (&t, start, &prog, error))
    goto out;
  ok = TRUE;
out:
  trainer_clear (&t);
  return ok;
}
