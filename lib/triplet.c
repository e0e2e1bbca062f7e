/* Triplet loss with online mining, and the embedding trainer on
 * NclTrainGraph (docs/face-training.md). */
#include <neuralcl/metric.h>
#include <neuralcl/config.h>
#include <neuralcl/error.h>
#include <neuralcl/safetensors.h>

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

/* ---- mining and loss ------------------------------------------------------ */

static const gchar *const mining_names[] = {
  "batch-hard", "semi-hard", "random"
};

const gchar *
ncl_triplet_mining_to_string (NclTripletMining m)
{
  return (guint) m < G_N_ELEMENTS (mining_names) ? mining_names[m] : "?";
}

gboolean
ncl_triplet_mining_from_string (const gchar * s, NclTripletMining * m)
{
  for (guint i = 0; s != NULL && i < G_N_ELEMENTS (mining_names); i++) {
    if (g_str_equal (s, mining_names[i])) {
      *m = (NclTripletMining) i;
      return TRUE;
    }
  }
  return FALSE;
}

void
ncl_pairwise_sq_dist (const gfloat * emb, gint n, gint d, gfloat * dist)
{
  for (gint i = 0; i < n; i++) {
    dist[(gsize) i * n + i] = 0.0f;
    for (gint j = i + 1; j < n; j++) {
      gdouble s = 0;

      for (gint k = 0; k < d; k++) {
        gdouble t = (gdouble) emb[(gsize) i * d + k] - emb[(gsize) j * d + k];

        s += t * t;
      }
      dist[(gsize) i * n + j] = dist[(gsize) j * n + i] = (gfloat) s;
    }
  }
}

gsize
ncl_triplet_max_count (gint n)
{
  return n > 1 ? (gsize) n * (n - 1) : 1;
}

guint
ncl_triplet_mine (const gfloat * dist, const gint * labels, gint n,
    NclTripletMining mining, gfloat margin, GRand * rand, NclTriplet * out)
{
  guint count = 0;
  g_autofree gint *cand = g_new (gint, MAX (n, 1));

  g_return_val_if_fail (mining == NCL_TRIPLET_BATCH_HARD || rand != NULL, 0);

  for (gint a = 0; a < n; a++) {
    const gfloat *da = dist + (gsize) a * n;
    gint n_neg = 0;

    for (gint j = 0; j < n; j++)
      n_neg += labels[j] != labels[a];
    if (n_neg == 0)
      continue;

    if (mining == NCL_TRIPLET_BATCH_HARD) {
      gint hp = -1, hn = -1;

      for (gint j = 0; j < n; j++) {
        if (j == a)
          continue;
        if (labels[j] == labels[a]) {
          if (hp < 0 || da[j] > da[hp])
            hp = j;
        } else if (hn < 0 || da[j] < da[hn]) {
          hn = j;
        }
      }
      if (hp >= 0) {
        out[count].a = a;
        out[count].p = hp;
        out[count].n = hn;
        count++;
      }
      continue;
    }

    for (gint p = 0; p < n; p++) {
      gint nc = 0;

      if (p == a || labels[p] != labels[a])
        continue;
      for (gint j = 0; j < n; j++) {
        if (labels[j] == labels[a])
          continue;
        if (mining == NCL_TRIPLET_RANDOM ||
            (da[j] > da[p] && da[j] < da[p] + margin))
          cand[nc++] = j;
      }
      if (nc == 0)
        continue;
      out[count].a = a;
      out[count].p = p;
      out[count].n = cand[g_rand_int_range (rand, 0, nc)];
      count++;
    }
  }
  return count;
}

static gdouble
sq_dist (const gfloat * x, const gfloat * y, gint d)
{
  gdouble s = 0;

  for (gint k = 0; k < d; k++) {
    gdouble t = (gdouble) x[k] - y[k];

    s += t * t;
  }
  return s;
}

void
ncl_triplet_loss_params_init (NclTripletLossParams * p)
{
  memset (p, 0, sizeof (*p));
  p->margin = 0.2f;
}

/* The distance of the loss between rows @x and @y, and into @g (nullable,
 * d floats) its gradient with respect to @x (the one for @y is -@g). */
static gdouble
loss_dist (const gfloat * x, const gfloat * y, gint d, gboolean euclidean,
    gdouble * g)
{
  gdouble s = sq_dist (x, y, d), r, f;

  if (!euclidean) {
    for (gint k = 0; g != NULL && k < d; k++)
      g[k] = 2.0 * ((gdouble) x[k] - y[k]);
    return s;
  }
  /* the epsilon keeps the gradient finite for equal rows */
  r = sqrt (s + 1e-12);
  f = 1.0 / r;
  for (gint k = 0; g != NULL && k < d; k++)
    g[k] = f * ((gdouble) x[k] - y[k]);
  return r;
}

gdouble
ncl_triplet_loss_full (const gfloat * emb, gint n, gint d,
    const NclTriplet * t, guint nt, const NclTripletLossParams * lp,
    gfloat * grad, guint * n_active)
{
  g_autofree gdouble *gp = g_new (gdouble, MAX (d, 1));
  g_autofree gdouble *gn = g_new (gdouble, MAX (d, 1));
  gdouble sum = 0;
  guint active = 0;

  if (grad != NULL)
    memset (grad, 0, sizeof (gfloat) * n * d);
  for (guint i = 0; i < nt; i++) {
    const gfloat *a = emb + (gsize) t[i].a * d;
    const gfloat *p = emb + (gsize) t[i].p * d;
    const gfloat *q = emb + (gsize) t[i].n * d;
    gdouble dap = loss_dist (a, p, d, lp->euclidean, gp);
    gdouble dan = loss_dist (a, q, d, lp->euclidean, gn);
    gdouble x = dap - dan, l, s;

    if (lp->soft) {
      /* softplus, written to stay finite for large |x| */
      l = x > 0 ? x + log1p (exp (-x)) : log1p (exp (x));
      s = 1.0 / (1.0 + exp (-x));
      active += x > 0;
    } else {
      l = x + lp->margin;
      if (l <= 0)
        continue;
      s = 1.0;
      active++;
    }
    sum += l;
    if (grad != NULL) {
      gfloat *ga = grad + (gsize) t[i].a * d;
      gfloat *gpp = grad + (gsize) t[i].p * d;
      gfloat *gnn = grad + (gsize) t[i].n * d;

      s /= nt;
      /* L = f (D(a,p) - D(a,n)): dD(a,p)/da = gp, dD(a,p)/dp = -gp */
      for (gint k = 0; k < d; k++) {
        ga[k] += (gfloat) (s * (gp[k] - gn[k]));
        gpp[k] -= (gfloat) (s * gp[k]);
        gnn[k] += (gfloat) (s * gn[k]);
      }
    }
  }
  if (n_active != NULL)
    *n_active = active;
  return nt > 0 ? sum / nt : 0.0;
}

gdouble
ncl_triplet_loss (const gfloat * emb, gint n, gint d, const NclTriplet * t,
    guint nt, gfloat margin, gfloat * grad, guint * n_active)
{
  NclTripletLossParams lp;

  ncl_triplet_loss_params_init (&lp);
  lp.margin = margin;
  return ncl_triplet_loss_full (emb, n, d, t, nt, &lp, grad, n_active);
}

#define EMB_EPS 1e-10f

gdouble
ncl_triplet_batch_loss_full (const gfloat * x, const gint * labels, gint n,
    gint d, NclTripletMining mining, const NclTripletLossParams * lp,
    GRand * rand, gfloat * grad, guint * n_triplets, guint * n_active)
{
  g_autofree gfloat *e = g_new (gfloat, (gsize) n * d);
  g_autofree gfloat *dist = g_new (gfloat, (gsize) n * n);
  g_autofree NclTriplet *t = g_new (NclTriplet, ncl_triplet_max_count (n));
  g_autofree gfloat *ge = NULL;
  guint nt;
  gdouble loss;

  ncl_l2norm_forward_ref (x, n, d, EMB_EPS, e);
  ncl_pairwise_sq_dist (e, n, d, dist);
  /* mine on the distances of the loss (the semi-hard window is in them) */
  for (gsize i = 0; lp->euclidean && i < (gsize) n * n; i++)
    dist[i] = sqrtf (dist[i]);
  nt = ncl_triplet_mine (dist, labels, n, mining, lp->margin, rand, t);
  if (grad != NULL)
    ge = g_new (gfloat, (gsize) n * d);
  loss = ncl_triplet_loss_full (e, n, d, t, nt, lp, ge, n_active);
  if (grad != NULL)
    ncl_l2norm_backward_ref (x, ge, n, d, EMB_EPS, grad);
  if (n_triplets != NULL)
    *n_triplets = nt;
  return loss;
}

gdouble
ncl_triplet_batch_loss (const gfloat * x, const gint * labels, gint n, gint d,
    NclTripletMining mining, gfloat margin, GRand * rand, gfloat * grad,
    guint * n_triplets, guint * n_active)
{
  NclTripletLossParams lp;

  ncl_triplet_loss_params_init (&lp);
  lp.margin = margin;
  return ncl_triplet_batch_loss_full (x, labels, n, d, mining, &lp, rand,
      grad, n_triplets, n_active);
}

gdouble
ncl_cosine_softmax_loss (const gfloat * e, const gint * labels, gint n,
    gint d, const gfloat * w, gint n_classes, gfloat scale, gfloat margin,
    gfloat * grad_e, gfloat * grad_w)
{
  g_autofree gdouble *wn = g_new (gdouble, (gsize) n_classes * d);
  g_autofree gdouble *norm = g_new (gdouble, n_classes);
  g_autofree gdouble *gwn = g_new0 (gdouble, (gsize) n_classes * d);
  g_autofree gdouble *z = g_new (gdouble, n_classes);
  gdouble loss = 0;

  for (gint j = 0; j < n_classes; j++) {
    const gfloat *wj = w + (gsize) j * d;
    gdouble s2 = 0;

    for (gint k = 0; k < d; k++)
      s2 += (gdouble) wj[k] * wj[k];
    norm[j] = sqrt (s2 + 1e-12);
    for (gint k = 0; k < d; k++)
      wn[(gsize) j * d + k] = wj[k] / norm[j];
  }
  for (gint i = 0; i < n; i++) {
    const gfloat *ei = e + (gsize) i * d;
    gdouble zmax = -G_MAXDOUBLE, sum = 0, lse;

    for (gint j = 0; j < n_classes; j++) {
      gdouble c = 0;

      for (gint k = 0; k < d; k++)
        c += ei[k] * wn[(gsize) j * d + k];
      z[j] = scale * (c - (j == labels[i] ? margin : 0));
      zmax = MAX (zmax, z[j]);
    }
    for (gint j = 0; j < n_classes; j++)
      sum += exp (z[j] - zmax);
    lse = zmax + log (sum);
    loss += lse - z[labels[i]];
    if (grad_e != NULL)
      memset (grad_e + (gsize) i * d, 0, sizeof (gfloat) * d);
    for (gint j = 0; j < n_classes; j++) {
      /* dL/dz_ij, then z_ij = scale <e_i, wn_j> - const */
      gdouble dz = (exp (z[j] - lse) - (j == labels[i])) / n * scale;

      for (gint k = 0; grad_e != NULL && k < d; k++)
        grad_e[(gsize) i * d + k] += (gfloat) (dz * wn[(gsize) j * d + k]);
      for (gint k = 0; k < d; k++)
        gwn[(gsize) j * d + k] += dz * ei[k];
    }
  }
  /* through wn = w / ||w||: dL/dw = (g - wn <wn, g>) / ||w|| */
  for (gint j = 0; grad_w != NULL && j < n_classes; j++) {
    gdouble dot = 0;

    for (gint k = 0; k < d; k++)
      dot += wn[(gsize) j * d + k] * gwn[(gsize) j * d + k];
    for (gint k = 0; k < d; k++)
      grad_w[(gsize) j * d + k] = (gfloat) ((gwn[(gsize) j * d + k] -
              wn[(gsize) j * d + k] * dot) / norm[j]);
  }
  return n > 0 ? loss / n : 0.0;
}

/* ---- the template graph: shapes and initial weights ------------------------ */

typedef struct
{
  gchar *layer, *role, *tensor;
  gint ndim;
  gint64 shape[4];
  gint fan_in;                  /* 0: constant init */
  gfloat value;                 /* constant init */
} InitParam;

static void
init_param_free (gpointer p)
{
  InitParam *ip = p;

  g_free (ip->layer);
  g_free (ip->role);
  g_free (ip->tensor);
  g_free (ip);
}

/* An int or a [a, b] / [a, b, c, d] list into @v (count in *@nv). */
static gboolean
get_ints (const NclYamlDoc * doc, const NclYamlNode * map, const gchar * key,
    gint * v, gint * nv, GError ** error)
{
  const NclYamlNode *node = ncl_yaml_mapping_lookup (map, key);

  *nv = 0;
  if (node == NULL)
    return TRUE;
  if (ncl_yaml_node_get_type (node) == NCL_YAML_SCALAR) {
    const gchar *s = ncl_yaml_node_get_scalar (node);

    if (g_str_equal (key, "padding") && g_str_equal (s, "valid")) {
      v[0] = 0;
      *nv = 1;
      return TRUE;
    }
    if (!ncl_yaml_node_to_int (doc, node, 0, 4096, v, error))
      return FALSE;
    *nv = 1;
    return TRUE;
  }
  if (ncl_yaml_node_get_type (node) != NCL_YAML_SEQUENCE ||
      (ncl_yaml_node_get_n_children (node) != 2 &&
          ncl_yaml_node_get_n_children (node) != 4))
    return ncl_yaml_set_error (doc, node, error,
        "expected a number or a list of 2 or 4 numbers");
  for (guint i = 0; i < ncl_yaml_node_get_n_children (node); i++)
    if (!ncl_yaml_node_to_int (doc, ncl_yaml_node_get_nth (node, i), 0, 4096,
            &v[i], error))
      return FALSE;
  *nv = ncl_yaml_node_get_n_children (node);
  return TRUE;
}

static gboolean
get_str (const NclYamlDoc * doc, const NclYamlNode * map, const gchar * key,
    gchar ** out, GError ** error)
{
  return ncl_yaml_get_string (doc, map, key, out, error);
}

/* Walks a chain of layers from the input (c, h, w) and lists the
 * parameters with their shapes; fails on ops the trainer cannot start. */
static GPtrArray *
template_params (const gchar * path, gint h, gint w, gint * out_dim,
    GError ** error)
{
  g_autoptr (NclYamlDoc) doc = ncl_yaml_load_file (path, error);
  g_autoptr (GPtrArray) params = NULL;
  const NclYamlNode *root, *input, *layers;
  gint c = 0;
  gchar *prev = NULL;

  if (doc == NULL)
    return NULL;
  params = g_ptr_array_new_with_free_func (init_param_free);
  root = ncl_yaml_doc_get_root (doc);
  input = root ? ncl_yaml_mapping_lookup (root, "input") : NULL;
  layers = root ? ncl_yaml_mapping_lookup (root, "layers") : NULL;
  if (input == NULL || layers == NULL ||
      ncl_yaml_node_get_type (layers) != NCL_YAML_SEQUENCE) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
        "%s: a template needs 'input: {channels}' and a 'layers' list", path);
    return NULL;
  }
  if (!ncl_yaml_get_int (doc, input, "channels", 1, 65536, &c, error))
    return NULL;
  if (c <= 0) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
        "%s: input.channels is required", path);
    return NULL;
  }

  for (guint i = 0; i < ncl_yaml_node_get_n_children (layers); i++) {
    const NclYamlNode *l = ncl_yaml_node_get_nth (layers, i);
    g_autofree gchar *op = NULL, *name = NULL, *in = NULL;
    gint k[4] = { 1, 1 }, s[4] = { 1, 1 }, pad[4] = { 0 };
    gint nk, ns, np;

    if (!get_str (doc, l, "op", &op, error) ||
        !get_str (doc, l, "name", &name, error) ||
        !get_str (doc, l, "input", &in, error))
      return NULL;
    if (op == NULL || name == NULL)
      return ncl_yaml_set_error (doc, l, error, "a layer needs op and name"),
          NULL;
    if (in != NULL && (prev == NULL || !g_str_equal (in, prev)) &&
        !(prev == NULL && g_str_equal (in, "input"))) {
      ncl_yaml_set_error (doc, l, error, "the trainer initialises chains "
          "only: 'input' must name the previous layer");
      return NULL;
    }
    if (!get_ints (doc, l, "kernel", k, &nk, error) ||
        !get_ints (doc, l, "stride", s, &ns, error) ||
        !get_ints (doc, l, "padding", pad, &np, error))
      return NULL;
    if (nk == 1)
      k[1] = k[0];
    if (ns == 1)
      s[1] = s[0];
    if (np == 1)
      pad[1] = pad[2] = pad[3] = pad[0];
    else if (np == 2) {
      pad[2] = pad[3] = pad[1];
      pad[1] = pad[0];
    }

    if (g_str_equal (op, "conv")) {
      gint filters = 0, groups = 1;
      g_autofree gchar *wn = NULL, *bn = NULL;
      InitParam *ip;

      if (!ncl_yaml_get_int (doc, l, "filters", 1, 65536, &filters, error) ||
          !ncl_yaml_get_int (doc, l, "groups", 1, 65536, &groups, error) ||
          !get_str (doc, l, "weight", &wn, error) ||
          !get_str (doc, l, "bias", &bn, error))
        return NULL;
      if (filters == 0 || nk == 0 || wn == NULL || c % groups != 0) {
        ncl_yaml_set_error (doc, l, error, "a conv to initialise needs "
            "filters, kernel and weight (and channels divisible by groups)");
        return NULL;
      }
      ip = g_new0 (InitParam, 1);
      ip->layer = g_strdup (name);
      ip->role = g_strdup ("weight");
      ip->tensor = g_strdup (wn);
      ip->ndim = 4;
      ip->shape[0] = filters;
      ip->shape[1] = c / groups;
      ip->shape[2] = k[0];
      ip->shape[3] = k[1];
      ip->fan_in = c / groups * k[0] * k[1];
      g_ptr_array_add (params, ip);
      if (bn != NULL) {
        ip = g_new0 (InitParam, 1);
        ip->layer = g_strdup (name);
        ip->role = g_strdup ("bias");
        ip->tensor = g_strdup (bn);
        ip->ndim = 1;
        ip->shape[0] = filters;
        g_ptr_array_add (params, ip);
      }
      h = (h + pad[0] + pad[1] - k[0]) / s[0] + 1;
      w = (w + pad[2] + pad[3] - k[1]) / s[1] + 1;
      c = filters;
    } else if (g_str_equal (op, "max_pool") || g_str_equal (op, "avg_pool")) {
      if (nk == 0)
        return ncl_yaml_set_error (doc, l, error, "pooling needs a kernel"),
            NULL;
      if (ns == 0) {
        s[0] = k[0];
        s[1] = k[1];
      }
      h = (h + pad[0] + pad[1] - k[0]) / s[0] + 1;
      w = (w + pad[2] + pad[3] - k[1]) / s[1] + 1;
    } else if (g_str_equal (op, "instance_norm")) {
      g_autofree gchar *wn = NULL, *bn = NULL;

      if (!get_str (doc, l, "weight", &wn, error) ||
          !get_str (doc, l, "bias", &bn, error))
        return NULL;
      for (gint r = 0; r < 2; r++) {
        InitParam *ip;

        if ((r == 0 ? wn : bn) == NULL)
          continue;
        ip = g_new0 (InitParam, 1);
        ip->layer = g_strdup (name);
        ip->role = g_strdup (r == 0 ? "weight" : "bias");
        ip->tensor = g_strdup (r == 0 ? wn : bn);
        ip->ndim = 1;
        ip->shape[0] = c;
        ip->value = r == 0 ? 1.0f : 0.0f;
        g_ptr_array_add (params, ip);
      }
    } else if (!g_str_equal (op, "activation")) {
      ncl_yaml_set_error (doc, l, error, "the trainer does not initialise "
          "op '%s' (conv, max_pool, avg_pool, instance_norm, activation; "
          "write an fc as a conv whose kernel covers its input)", op);
      return NULL;
    }
    if (h <= 0 || w <= 0) {
      ncl_yaml_set_error (doc, l, error, "the input is too small: nothing "
          "left after layer '%s'", name);
      return NULL;
    }
    g_free (prev);
    prev = g_strdup (name);
  }
  g_free (prev);
  if (h != 1 || w != 1) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "%s: the last layer gives %d x %d x %d for this input size; an "
        "embedder must end in C x 1 x 1 (make the last conv's kernel cover "
        "its input)", path, c, h, w);
    return NULL;
  }
  *out_dim = c;
  return g_steal_pointer (&params);
}

static gfloat
gauss (GRand * r)
{
  gdouble u1 = g_rand_double (r), u2 = g_rand_double (r);

  return (gfloat) (sqrt (-2.0 * log (1.0 - u1)) * cos (2 * G_PI * u2));
}

/* The template's text with top-level 'weights:' and 'origin:' rewritten. */
static gchar *
rewrite_graph (const gchar * text, const gchar * weights,
    const gchar * origin)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  GString *out = g_string_new (NULL);
  gboolean w_done = FALSE, o_done = FALSE;

  for (guint i = 0; lines[i] != NULL; i++) {
    if (g_str_has_prefix (lines[i], "weights:")) {
      g_string_append_printf (out, "weights: %s\n", weights);
      w_done = TRUE;
    } else if (g_str_has_prefix (lines[i], "origin:")) {
      g_string_append_printf (out, "origin: \"%s\"\n", origin);
      o_done = TRUE;
    } else if (lines[i + 1] != NULL || lines[i][0] != '\0') {
      g_string_append_printf (out, "%s\n", lines[i]);
      if (g_str_has_prefix (lines[i], "neuralcl-model:")) {
        if (!w_done && strstr (text, "\nweights:") == NULL) {
          g_string_append_printf (out, "weights: %s\n", weights);
          w_done = TRUE;
        }
        if (!o_done && strstr (text, "\norigin:") == NULL) {
          g_string_append_printf (out, "origin: \"%s\"\n", origin);
          o_done = TRUE;
        }
      }
    }
  }
  return g_string_free (out, FALSE);
}

/* ---- trainer ---------------------------------------------------------------- */

void
ncl_embed_train_settings_init (NclEmbedTrainSettings * s)
{
  memset (s, 0, sizeof (*s));
  s->mining = NCL_TRIPLET_BATCH_HARD;
  s->margin = 0.2;
  s->identities_per_batch = 8;
  s->images_per_identity = 4;
  s->iterations = 1000;
  s->learning_rate = 1e-3;
  s->flip = TRUE;
  s->seed = 1;
  s->checkpoint_every = 200;
  s->softmax_scale = 16;
  s->softmax_margin = 0.1;
}

void
ncl_embed_train_settings_clear (NclEmbedTrainSettings * s)
{
  g_free (s->graph);
  g_free (s->output);
  g_free (s->origin);
  g_free (s->device);
  memset (s, 0, sizeof (*s));
}

/* ---- augmentation ------------------------------------------------------- */

void
ncl_augment_init (NclAugment * a)
{
  memset (a, 0, sizeof (*a));
  a->scale = 1.0;
  a->gain = 1.0;
}

/* Uniform in [-1, 1). */
static gdouble
sym_rand (GRand * r)
{
  return 2.0 * g_rand_double (r) - 1.0;
}

void
ncl_augment_draw (const NclEmbedTrainSettings * s, gint h, gint w,
    GRand * rand, NclAugment * a)
{
  ncl_augment_init (a);
  if (h <= 1 && w <= 1)
    return;
  a->flip = s->flip && w > 1 && g_rand_boolean (rand);
  if (s->shift > 0) {
    a->dx = s->shift * w * sym_rand (rand);
    a->dy = s->shift * h * sym_rand (rand);
  }
  if (s->zoom > 0)
    a->scale = 1.0 + s->zoom * sym_rand (rand);
  if (s->rotate > 0)
    a->angle = s->rotate * G_PI / 180.0 * sym_rand (rand);
  if (s->contrast > 0)
    a->gain = 1.0 + s->contrast * sym_rand (rand);
  if (s->brightness > 0)
    a->offset = s->brightness * sym_rand (rand);
  /* drawn only when asked for: the stream of a run without them stays */
  if (s->glasses > 0 && g_rand_double (rand) < s->glasses) {
    /* ORL-like framing: eyes about 40 % down, a third of the width apart */
    a->glasses = TRUE;
    a->glasses_x = w * (0.5 + 0.05 * sym_rand (rand));
    a->glasses_y = h * (0.40 + 0.05 * sym_rand (rand));
    a->glasses_sep = w * (0.17 + 0.03 * sym_rand (rand));
    a->glasses_rx = w * (0.12 + 0.03 * sym_rand (rand));
    a->glasses_ry = h * (0.07 + 0.02 * sym_rand (rand));
    a->glasses_width = MAX (w / 46.0, 0.5) * (1.0 + 0.5 * sym_rand (rand));
    /* mostly dark frames, sometimes light ones (inputs are -1 .. 1) */
    a->glasses_value = g_rand_double (rand) < 0.8 ?
        -1.0 + 0.5 * g_rand_double (rand) : 0.4 + 0.6 * g_rand_double (rand);
  }
  if (s->erase > 0 && g_rand_double (rand) < s->erase) {
    gdouble area = (0.02 + 0.23 * g_rand_double (rand)) * h * w;
    gdouble aspect = exp (log (0.3) + (log (3.3) - log (0.3)) *
        g_rand_double (rand));

    a->erase_h = CLAMP ((gint) round (sqrt (area * aspect)), 1, h);
    a->erase_w = CLAMP ((gint) round (sqrt (area / aspect)), 1, w);
    a->erase_y = g_rand_int_range (rand, 0, h - a->erase_h + 1);
    a->erase_x = g_rand_int_range (rand, 0, w - a->erase_w + 1);
  }
}

/* Distance from (x, y) to the segment (x0, y0) - (x1, y1). */
static gdouble
segment_distance (gdouble x, gdouble y, gdouble x0, gdouble y0, gdouble x1,
    gdouble y1)
{
  gdouble dx = x1 - x0, dy = y1 - y0, l2 = dx * dx + dy * dy;
  gdouble t = l2 > 0 ? CLAMP (((x - x0) * dx + (y - y0) * dy) / l2, 0, 1) : 0;

  return hypot (x - x0 - t * dx, y - y0 - t * dy);
}

/* The glasses of @a over every plane of @img (c, h, w), in place. */
static void
draw_glasses (const NclAugment * a, gfloat * img, gint c, gint h, gint w)
{
  gdouble half = a->glasses_width / 2;
  gdouble inner = a->glasses_sep - a->glasses_rx;
  gdouble outer = a->glasses_sep + a->glasses_rx;

  for (gint y = 0; y < h; y++) {
    for (gint x = 0; x < w; x++) {
      gdouble dist = G_MAXDOUBLE, cover;

      for (gint side = -1; side <= 1; side += 2) {
        gdouble u = (x - (a->glasses_x + side * a->glasses_sep)) /
            a->glasses_rx;
        gdouble v = (y - a->glasses_y) / a->glasses_ry;
        gdouble r = sqrt (u * u + v * v);

        /* first-order distance to the rim, in pixels */
        dist = MIN (dist, fabs (r - 1) * MIN (a->glasses_rx,
                a->glasses_ry));
        /* temple: from the rim's outer side to the edge of the image */
        dist = MIN (dist, segment_distance (x, y, a->glasses_x + side *
                outer, a->glasses_y, side < 0 ? 0 : w - 1, a->glasses_y));
      }
      dist = MIN (dist, segment_distance (x, y, a->glasses_x - inner,
              a->glasses_y - 0.3 * a->glasses_ry, a->glasses_x + inner,
              a->glasses_y - 0.3 * a->glasses_ry));
      cover = CLAMP (half + 0.5 - dist, 0.0, 1.0);
      if (cover <= 0)
        continue;
      for (gint p = 0; p < c; p++) {
        gfloat *v = img + ((gsize) p * h + y) * w + x;

        *v = (gfloat) ((1 - cover) * *v + cover * a->glasses_value);
      }
    }
  }
}

static void
augment_apply_plain (const NclAugment * a, const gfloat * src, gint c,
    gint h, gint w, gfloat * dst)
{
  gdouble cx = (w - 1) / 2.0, cy = (h - 1) / 2.0;
  /* output -> source: undo the translation, the rotation, the scale */
  gdouble co = cos (a->angle) / a->scale, si = sin (a->angle) / a->scale;
  gboolean geometric = a->flip || a->dx != 0 || a->dy != 0 ||
      a->scale != 1.0 || a->angle != 0;
  gsize hw = (gsize) h * w;

  for (gint p = 0; p < c; p++) {
    const gfloat *sp = src + p * hw;
    gfloat *dp = dst + p * hw;
    gdouble mean = 0;

    if (!geometric) {
      memcpy (dp, sp, sizeof (gfloat) * hw);
    } else {
      for (gint y = 0; y < h; y++) {
        for (gint x = 0; x < w; x++) {
          gdouble u = x - cx - a->dx, v = y - cy - a->dy;
          /* the rotation counter-clockwise on the screen (y down) is
           * (u, v) -> (u cos + v sin, -u sin + v cos); its inverse: */
          gdouble su = co * u - si * v, sv = si * u + co * v;
          gdouble sx, sy, fx, fy;
          gint x0, y0, x1, y1;

          if (a->flip)
            su = -su;
          sx = CLAMP (cx + su, 0.0, (gdouble) (w - 1));
          sy = CLAMP (cy + sv, 0.0, (gdouble) (h - 1));
          x0 = (gint) sx;
          y0 = (gint) sy;
          x1 = MIN (x0 + 1, w - 1);
          y1 = MIN (y0 + 1, h - 1);
          fx = sx - x0;
          fy = sy - y0;
          dp[(gsize) y * w + x] = (gfloat)
              ((1 - fy) * ((1 - fx) * sp[(gsize) y0 * w + x0] +
                  fx * sp[(gsize) y0 * w + x1]) +
              fy * ((1 - fx) * sp[(gsize) y1 * w + x0] +
                  fx * sp[(gsize) y1 * w + x1]));
        }
      }
    }
    if (a->gain == 1.0 && a->offset == 0 && (a->erase_w <= 0 ||
            a->erase_h <= 0))
      continue;
    for (gsize i = 0; i < hw; i++)
      mean += dp[i];
    mean /= MAX (hw, 1);
    for (gsize i = 0; i < hw; i++)
      dp[i] = (gfloat) (mean + a->gain * (dp[i] - mean) + a->offset);
    mean += a->offset;
    for (gint y = MAX (a->erase_y, 0);
        y < MIN (a->erase_y + a->erase_h, h); y++)
      for (gint x = MAX (a->erase_x, 0);
          x < MIN (a->erase_x + a->erase_w, w); x++)
        dp[(gsize) y * w + x] = (gfloat) mean;
  }
}

void
ncl_augment_apply (const NclAugment * a, const gfloat * src, gint c, gint h,
    gint w, gfloat * dst)
{
  g_autofree gfloat *drawn = NULL;

  if (a->glasses) {
    /* on the source: the glasses move with the face */
    drawn = g_memdup2 (src, sizeof (gfloat) * c * h * w);
    draw_glasses (a, drawn, c, h, w);
    src = drawn;
  }
  augment_apply_plain (a, src, c, h, w, dst);
}

typedef struct
{
  gint it;
  gdouble loss, active;
} LogRow;

/* Parameter tensor names from the template, by (layer, role). */
static const gchar *
param_name (GPtrArray * params, const NclTrainParamInfo * info)
{
  for (guint i = 0; i < params->len; i++) {
    InitParam *ip = g_ptr_array_index (params, i);

    if (g_str_equal (ip->layer, info->layer) &&
        g_str_equal (ip->role, info->role))
      return ip->tensor;
  }
  return NULL;
}

static gboolean
save_params (NclTrainGraph * net, GPtrArray * params, const gchar * path,
    gboolean adam, gint iteration, gdouble seconds, GError ** error)
{
  g_autoptr (NclSafetensorsWriter) w = ncl_safetensors_writer_new ();
  g_autofree gchar *its = g_strdup_printf ("%d", iteration);
  g_autofree gchar *secs = g_strdup_printf ("%.1f", seconds);

  for (guint i = 0; i < ncl_train_graph_get_n_params (net); i++) {
    NclTrainParamInfo info;
    const gchar *name;
    g_autofree gfloat *data = NULL;

    ncl_train_graph_get_param_info (net, i, &info);
    name = param_name (params, &info);
    data = g_new (gfloat, info.numel);
    if (!ncl_train_graph_read_param (net, i, NCL_PARAM_VALUE, data, error))
      return FALSE;
    ncl_safetensors_writer_add (w, name, NCL_DTYPE_F32, info.ndim,
        info.shape, data);
    for (gint b = 0; adam && b < 2; b++) {
      g_autofree gchar *an = g_strconcat (b ? "adam_v/" : "adam_m/", name,
          NULL);

      if (!ncl_train_graph_read_param (net, i, b ? NCL_PARAM_ADAM_V :
              NCL_PARAM_ADAM_M, data, error))
        return FALSE;
      ncl_safetensors_writer_add (w, an, NCL_DTYPE_F32, info.ndim,
          info.shape, data);
    }
  }
  ncl_safetensors_writer_add_metadata (w, "iteration", its);
  ncl_safetensors_writer_add_metadata (w, "train_seconds", secs);
  return ncl_safetensors_writer_write (w, path, error);
}

static gboolean
restore_params (NclTrainGraph * net, GPtrArray * params, const gchar * path,
    gint * iteration, GError ** error)
{
  g_autoptr (NclSafetensors) st = ncl_safetensors_load (path, error);
  const gchar *its;

  if (st == NULL)
    return FALSE;
  for (guint i = 0; i < ncl_train_graph_get_n_params (net); i++) {
    NclTrainParamInfo info;
    const gchar *name;

    ncl_train_graph_get_param_info (net, i, &info);
    name = param_name (params, &info);
    for (gint b = 0; b < 3; b++) {
      g_autofree gchar *tn = g_strconcat (b == 0 ? "" : b == 1 ? "adam_m/" :
          "adam_v/", name, NULL);
      g_autofree gfloat *data = ncl_safetensors_read_f32 (st, tn, info.ndim,
          info.shape, error);

      if (data == NULL || !ncl_train_graph_write_param (net, i, b == 0 ?
              NCL_PARAM_VALUE : b == 1 ? NCL_PARAM_ADAM_M : NCL_PARAM_ADAM_V,
              data, error))
        return FALSE;
    }
  }
  its = ncl_safetensors_get_metadata (st, "iteration");
  *iteration = its ? atoi (its) : 0;
  return TRUE;
}

static gboolean
write_curve (const gchar * path, GArray * log, GError ** error)
{
  g_autofree gdouble *x = g_new (gdouble, MAX (log->len, 1));
  g_autofree gdouble *y0 = g_new (gdouble, MAX (log->len, 1));
  g_autofree gdouble *y1 = g_new (gdouble, MAX (log->len, 1));
  const gdouble *ys[2] = { y0, y1 };
  const gchar *names[2] = { "loss (running mean)", "active triplets" };
  gdouble avg = 0;

  if (log->len < 2)
    return TRUE;
  for (guint i = 0; i < log->len; i++) {
    LogRow *r = &g_array_index (log, LogRow, i);

    avg = i == 0 ? r->loss : 0.95 * avg + 0.05 * r->loss;
    x[i] = r->it;
    y0[i] = MAX (avg, 1e-4);
    y1[i] = MAX (r->active, 1e-4);
  }
  return ncl_plot_curves (path, "triplet training", x, log->len, 2, names,
      ys, error);
}

static gboolean
write_log (const gchar * path, GArray * log, GError ** error)
{
  g_autoptr (GString) s = g_string_new ("iteration\tloss\tactive\n");

  for (guint i = 0; i < log->len; i++) {
    LogRow *r = &g_array_index (log, LogRow, i);

    g_string_append_printf (s, "%d\t%.6f\t%.4f\n", r->it, r->loss,
        r->active);
  }
  return g_file_set_contents (path, s->str, s->len, error);
}

/* Reads back a loss log (resume), keeping rows before @upto. */
static void
read_log (const gchar * path, gint upto, GArray * log)
{
  g_autofree gchar *text = NULL;
  g_auto (GStrv) lines = NULL;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return;
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 1; lines[i] != NULL; i++) {
    LogRow r;

    if (sscanf (lines[i], "%d\t%lf\t%lf", &r.it, &r.loss, &r.active) == 3
        && r.it <= upto)
      g_array_append_val (log, r);
  }
}

static gchar *
strip_yaml (const gchar * path)
{
  return g_str_has_suffix (path, ".yaml") ?
      g_strndup (path, strlen (path) - 5) : g_strdup (path);
}

gboolean
ncl_embed_train (const NclEmbedTrainSettings * s, const NclEmbedDataset * data,
    NclEmbedTrainCallback cb, gpointer user_data, GError ** error)
{
  g_autoptr (GPtrArray) params = NULL;
  g_autofree gchar *base = NULL, *wpath = NULL, *wname = NULL;
  g_autofree gchar *tdir = NULL, *ckpt = NULL, *logpath = NULL, *png = NULL;
  g_autofree gchar *tmpl = NULL, *graph = NULL, *msg = NULL;
  g_autoptr (NclContext) ctx = NULL;
  g_autoptr (NclModel) model = NULL;
  g_autoptr (NclTrainGraph) net = NULL;
  g_autoptr (NclTensor) batch = NULL;
  g_autoptr (GArray) log = g_array_new (FALSE, FALSE, sizeof (LogRow));
  g_autoptr (GRand) rand = NULL;
  g_autofree gint *per_id = NULL, *start_of = NULL, *order = NULL;
  g_autofree gint *ids = NULL, *blabels = NULL, *eligible = NULL;
  g_autofree gfloat *bx = NULL, *out = NULL, *grad = NULL;
  g_autofree gint *bclass = NULL;
  g_autofree gfloat *cw = NULL, *cw_g = NULL, *cw_m = NULL, *cw_v = NULL;
  g_autofree gfloat *se = NULL, *sg = NULL, *sx = NULL;
  gsize ncw = 0;
  g_autoptr (GPtrArray) avg_w = NULL;   /* gdouble sums per parameter */
  gint n_avg = 0;
  NclAdamParams adam;
  NclTripletLossParams lp;
  NclEmbedTrainProgress prog = { 0 };
  gint dim = 0, P = s->identities_per_batch, K = s->images_per_identity;
  gint n_eligible = 0, start = 0, nb;
  gsize per = (gsize) data->c * data->h * data->w;
  gint64 t0;
  gdouble avg = 0;

  if (P < 2 || K < 2) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_CONFIG,
        "a batch needs at least 2 identities x 2 images (got %d x %d)", P, K);
    return FALSE;
  }
  /* identities with at least two images */
  per_id = g_new0 (gint, data->n_identities);
  start_of = g_new0 (gint, data->n_identities + 1);
  order = g_new (gint, data->n);
  for (gint i = 0; i < data->n; i++)
    per_id[data->labels[i]]++;
  for (gint k = 0; k < data->n_identities; k++)
    start_of[k + 1] = start_of[k] + per_id[k];
  {
    g_autofree gint *fill = g_new0 (gint, data->n_identities);

    for (gint i = 0; i < data->n; i++) {
      gint l = data->labels[i];

      order[start_of[l] + fill[l]++] = i;
    }
  }
  eligible = g_new (gint, data->n_identities);
  for (gint k = 0; k < data->n_identities; k++)
    if (per_id[k] >= 2)
      eligible[n_eligible++] = k;
  if (n_eligible < P) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_CONFIG,
        "only %d identities have two images or more; a batch needs %d",
        n_eligible, P);
    return FALSE;
  }

  params = template_params (s->graph, data->h, data->w, &dim, error);
  if (params == NULL)
    return FALSE;
  if (!g_file_get_contents (s->graph, &tmpl, NULL, error))
    return FALSE;
  base = strip_yaml (s->output);
  wpath = g_strconcat (base, ".safetensors", NULL);
  wname = g_path_get_basename (wpath);
  tdir = g_strconcat (base, ".train", NULL);
  ckpt = g_build_filename (tdir, "checkpoint.safetensors", NULL);
  logpath = g_build_filename (tdir, "loss.tsv", NULL);
  png = g_strconcat (base, "-loss.png", NULL);
  if (g_mkdir_with_parents (tdir, 0755) != 0) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_IO, "%s: cannot create: %s",
        tdir, g_strerror (errno));
    return FALSE;
  }
  {
    g_autofree gchar *origin = s->origin ? g_strdup (s->origin) :
        g_strdup_printf ("trained here with the triplet loss (%s, margin "
        "%g, seed %d)", ncl_triplet_mining_to_string (s->mining), s->margin,
        s->seed);

    graph = rewrite_graph (tmpl, wname, origin);
  }

  /* initial weights, then the graph that reads them */
  rand = g_rand_new_with_seed ((guint32) s->seed);
  {
    g_autoptr (NclSafetensorsWriter) w = ncl_safetensors_writer_new ();

    for (guint i = 0; i < params->len; i++) {
      InitParam *ip = g_ptr_array_index (params, i);
      gsize numel = 1;
      g_autofree gfloat *v = NULL;

      for (gint k = 0; k < ip->ndim; k++)
        numel *= ip->shape[k];
      v = g_new (gfloat, numel);
      for (gsize k = 0; k < numel; k++)
        v[k] = ip->fan_in > 0 ? gauss (rand) * sqrtf (2.0f / ip->fan_in) :
            ip->value;
      ncl_safetensors_writer_add (w, ip->tensor, NCL_DTYPE_F32, ip->ndim,
          ip->shape, v);
    }
    if (!ncl_safetensors_writer_write (w, wpath, error) ||
        !g_file_set_contents (s->output, graph, -1, error))
      return FALSE;
  }
  model = ncl_model_load (s->output, error);
  if (model == NULL)
    return FALSE;
  if (ncl_model_get_input_channels (model) != data->c) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "%s: the graph takes %d channels, the data has %d", s->graph,
        ncl_model_get_input_channels (model), data->c);
    return FALSE;
  }
  ctx = ncl_context_new (s->device, error);
  if (ctx == NULL)
    return FALSE;
  net = ncl_train_graph_new (ctx, model, TRUE, error);
  if (net == NULL)
    return FALSE;
  if (s->resume && g_file_test (ckpt, G_FILE_TEST_EXISTS)) {
    if (!restore_params (net, params, ckpt, &start, error))
      return FALSE;
    read_log (logpath, start, log);
    /* the random stream continues as if never stopped: replay its draws */
    msg = g_strdup_printf ("resumed from %s at iteration %d", ckpt, start);
    prog.message = msg;
    if (cb != NULL)
      cb (&prog, user_data);
    prog.message = NULL;
    g_rand_set_seed (rand, (guint32) (s->seed * 7919 + start));
  }

  ncl_triplet_loss_params_init (&lp);
  lp.margin = (gfloat) s->margin;
  lp.soft = s->soft_margin;
  lp.euclidean = s->euclidean;
  ncl_adam_params_init (&adam);
  adam.lr = (gfloat) s->learning_rate;
  adam.weight_decay = (gfloat) s->weight_decay;
  nb = P * K;
  batch = ncl_tensor_new (ctx, nb, data->c, data->h, data->w, error);
  if (batch == NULL)
    return FALSE;
  ids = g_new (gint, n_eligible);
  blabels = g_new (gint, nb);
  bx = g_new (gfloat, nb * per);
  out = g_new (gfloat, (gsize) nb * dim);
  grad = g_new (gfloat, (gsize) nb * dim);
  bclass = g_new (gint, nb);
  if (s->softmax_weight > 0) {
    /* class weights: their own random stream (the batches stay those of
     * a run without them); not in the checkpoint, so --resume starts
     * them afresh */
    g_autoptr (GRand) wr = g_rand_new_with_seed ((guint32) s->seed ^
        0x50f7u);

    ncw = (gsize) data->n_identities * dim;
    cw = g_new (gfloat, ncw);
    cw_g = g_new (gfloat, ncw);
    cw_m = g_new0 (gfloat, ncw);
    cw_v = g_new0 (gfloat, ncw);
    for (gsize k = 0; k < ncw; k++)
      cw[k] = gauss (wr);
    se = g_new (gfloat, (gsize) nb * dim);
    sg = g_new (gfloat, (gsize) nb * dim);
    sx = g_new (gfloat, (gsize) nb * dim);
  }
  t0 = g_get_monotonic_time ();
  prog.iterations = s->iterations;
  prog.start_iteration = start;

  for (gint it = start + 1; it <= s->iterations; it++) {
    gint oi = ncl_train_graph_get_output_index (net);
    NclTensor *o, *dout;
    gboolean fresh, go_on;
    guint nt, na;

    /* P identities, K images each (without replacement when possible) */
    memcpy (ids, eligible, sizeof (gint) * n_eligible);
    for (gint p = 0; p < P; p++) {
      gint j = g_rand_int_range (rand, p, n_eligible), id, cnt;
      g_autofree gint *pick = NULL;

      id = ids[j];
      ids[j] = ids[p];
      ids[p] = id;
      cnt = per_id[id];
      pick = g_memdup2 (order + start_of[id], sizeof (gint) * cnt);
      for (gint k = 0; k < K; k++) {
        gint b = p * K + k, src;
        NclAugment aug;

        if (k < cnt) {
          gint r = g_rand_int_range (rand, k, cnt), t = pick[r];

          pick[r] = pick[k];
          pick[k] = t;
          src = t;
        } else {
          src = pick[g_rand_int_range (rand, 0, cnt)];
        }
        ncl_augment_draw (s, data->h, data->w, rand, &aug);
        blabels[b] = p;
        bclass[b] = id;
        ncl_augment_apply (&aug, data->x + src * per, data->c, data->h,
            data->w, bx + b * per);
      }
    }

    if (!ncl_tensor_upload (batch, bx, error) ||
        !ncl_train_graph_forward (net, batch, -1, error))
      return FALSE;
    o = ncl_train_graph_get_activation (net, oi);
    if (ncl_tensor_numel (o) != (gsize) nb * dim) {
      g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
          "%s: output has %d x %d x %d values per image, expected %d",
          s->output, o->c, o->h, o->w, dim);
      return FALSE;
    }
    if (!ncl_tensor_download (o, out, error))
      return FALSE;
    prog.loss = ncl_triplet_batch_loss_full (out, blabels, nb, dim,
        it <= s->warmup ? NCL_TRIPLET_RANDOM : s->mining, &lp, rand, grad,
        &nt, &na);
    if (cw != NULL) {
      /* + weight x the cosine softmax, through the same normalisation */
      ncl_l2norm_forward_ref (out, nb, dim, EMB_EPS, se);
      prog.loss += s->softmax_weight * ncl_cosine_softmax_loss (se, bclass,
          nb, dim, cw, data->n_identities, (gfloat) s->softmax_scale,
          (gfloat) s->softmax_margin, sg, cw_g);
      ncl_l2norm_backward_ref (out, sg, nb, dim, EMB_EPS, sx);
      for (gsize k = 0; k < (gsize) nb * dim; k++)
        grad[k] += (gfloat) s->softmax_weight * sx[k];
      for (gsize k = 0; k < ncw; k++)
        cw_g[k] *= (gfloat) s->softmax_weight;
    }
    if (!isfinite (prog.loss)) {
      g_set_error (error, NCL_ERROR, NCL_ERROR_FAILED,
          "iteration %d: the loss is not finite; lower the learning rate",
          it);
      return FALSE;
    }
    ncl_train_graph_clear_grads (net);
    dout = ncl_train_graph_grad_tensor (net, oi, &fresh, error);
    if (dout == NULL || !ncl_tensor_upload (dout, grad, error) ||
        !ncl_train_graph_zero_param_grads (net, error) ||
        !ncl_train_graph_backward (net, NULL, error))
      return FALSE;
    if (s->cosine)
      adam.lr = (gfloat) (s->learning_rate * 0.5 *
          (1 + cos (G_PI * (it - 1) / MAX (s->iterations, 1))));
    if (!ncl_train_graph_adam_step (net, &adam, it, error))
      return FALSE;
    if (s->average_from > 0 && it >= s->average_from &&
        (it - s->average_from) % 10 == 0) {
      if (avg_w == NULL) {
        avg_w = g_ptr_array_new_with_free_func (g_free);
        for (guint i = 0; i < ncl_train_graph_get_n_params (net); i++) {
          NclTrainParamInfo info;

          ncl_train_graph_get_param_info (net, i, &info);
          g_ptr_array_add (avg_w, g_new0 (gdouble, info.numel));
        }
      }
      for (guint i = 0; i < avg_w->len; i++) {
        NclTrainParamInfo info;
        gdouble *sum = g_ptr_array_index (avg_w, i);
        g_autofree gfloat *v = NULL;

        ncl_train_graph_get_param_info (net, i, &info);
        v = g_new (gfloat, info.numel);
        if (!ncl_train_graph_read_param (net, i, NCL_PARAM_VALUE, v, error))
          return FALSE;
        for (gsize k = 0; k < info.numel; k++)
          sum[k] += v[k];
      }
      n_avg++;
    }
    if (cw != NULL) {
      NclAdamParams ca = adam;

      ca.weight_decay = 0;
      ncl_adam_step_ref (&ca, it - start, ncw, cw, cw_g, cw_m, cw_v);
    }

    prog.iteration = it;
    prog.n_triplets = nt;
    prog.active = nt ? (gdouble) na / nt : 0;
    avg = it == start + 1 ? prog.loss : 0.95 * avg + 0.05 * prog.loss;
    prog.loss_avg = avg;
    prog.elapsed_s = (g_get_monotonic_time () - t0) / 1e6;
    prog.eta_s = prog.elapsed_s / (it - start) * (s->iterations - it);
    {
      LogRow r = { it, prog.loss, prog.active };

      g_array_append_val (log, r);
    }
    go_on = cb == NULL || cb (&prog, user_data);
    if (it % MAX (s->checkpoint_every, 1) == 0 || it == s->iterations ||
        !go_on) {
      g_autofree gchar *m = NULL;

      if (!save_params (net, params, ckpt, TRUE, it, prog.elapsed_s, error)
          || !save_params (net, params, wpath, FALSE, it, prog.elapsed_s,
              error) || !write_log (logpath, log, error)
          || !write_curve (png, log, error))
        return FALSE;
      m = g_strdup_printf ("checkpoint %d: %s", it, ckpt);
      prog.message = m;
      if (cb != NULL)
        cb (&prog, user_data);
      prog.message = NULL;
    }
    if (!go_on)
      break;
  }
  if (start >= s->iterations &&
      !save_params (net, params, wpath, FALSE, start, 0, error))
    return FALSE;
  if (n_avg > 0) {
    /* the averaged weights become the trained ones (after the checkpoint,
     * which keeps the last weights to resume from) */
    for (guint i = 0; i < avg_w->len; i++) {
      NclTrainParamInfo info;
      gdouble *sum = g_ptr_array_index (avg_w, i);
      g_autofree gfloat *v = NULL;

      ncl_train_graph_get_param_info (net, i, &info);
      v = g_new (gfloat, info.numel);
      for (gsize k = 0; k < info.numel; k++)
        v[k] = (gfloat) (sum[k] / n_avg);
      if (!ncl_train_graph_write_param (net, i, NCL_PARAM_VALUE, v, error))
        return FALSE;
    }
    if (!save_params (net, params, wpath, FALSE, s->iterations,
            (g_get_monotonic_time () - t0) / 1e6, error))
      return FALSE;
  }
  return TRUE;
}

gboolean
ncl_embed_compute (NclContext * ctx, NclModel * model,
    const NclEmbedDataset * data, gint batch, gfloat ** emb, gint * d,
    GError ** error)
{
  g_autoptr (NclRunner) runner = ncl_runner_new (model, ctx, error);
  g_autoptr (NclTensor) in = NULL;
  g_autofree gfloat *res = NULL, *tmp = NULL;
  gsize per = (gsize) data->c * data->h * data->w;
  gint dim = 0;

  if (runner == NULL)
    return FALSE;
  batch = MAX (batch, 1);
  for (gint i = 0; i < data->n; i += batch) {
    gint nb = MIN (batch, data->n - i);
    NclTensor *o;

    if (in == NULL)
      in = ncl_tensor_new (ctx, nb, data->c, data->h, data->w, error);
    if (in == NULL || !ncl_tensor_reshape (in, nb, data->c, data->h,
            data->w, error) || !ncl_tensor_upload (in, data->x + i * per,
            error) || !ncl_runner_run (runner, in, &o, error))
      return FALSE;
    if (res == NULL) {
      dim = o->c * o->h * o->w;
      res = g_new (gfloat, (gsize) data->n * dim);
      tmp = g_new (gfloat, (gsize) batch * dim);
    }
    if (!ncl_tensor_download (o, tmp, error))
      return FALSE;
    ncl_l2norm_forward_ref (tmp, nb, dim, EMB_EPS, res + (gsize) i * dim);
  }
  *emb = g_steal_pointer (&res);
  *d = dim;
  return TRUE;
}
