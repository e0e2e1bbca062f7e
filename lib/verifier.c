/* The learned verification head: p(same) = sigmoid (w . phi(f_i, f_j) + b)
 * with phi the absolute difference or the chi-square feature, fitted by
 * logistic regression and saved as a one-layer model
 * (docs/face-training.md). */
#include <neuralcl/metric.h>
#include <neuralcl/error.h>
#include <neuralcl/safetensors.h>
#include "model-private.h"
#include "config.h"

#include <math.h>
#include <string.h>

struct _NclVerifier
{
  gint dim;
  NclVerifierFeature feature;
  gfloat *w;
  gfloat b;
};

static const gchar *const feature_names[] = { "abs", "chi2" };

const gchar *
ncl_verifier_feature_to_string (NclVerifierFeature f)
{
  return (guint) f < G_N_ELEMENTS (feature_names) ? feature_names[f] : "?";
}

gboolean
ncl_verifier_feature_from_string (const gchar * s, NclVerifierFeature * f)
{
  for (guint i = 0; s != NULL && i < G_N_ELEMENTS (feature_names); i++) {
    if (g_str_equal (s, feature_names[i])) {
      *f = (NclVerifierFeature) i;
      return TRUE;
    }
  }
  return FALSE;
}

void
ncl_verifier_features (NclVerifierFeature f, const gfloat * a,
    const gfloat * b, gint d, gfloat * out)
{
  for (gint k = 0; k < d; k++) {
    gfloat t = a[k] - b[k];

    if (f == NCL_VERIFIER_ABS) {
      out[k] = fabsf (t);
    } else {
      gfloat s = fabsf (a[k]) + fabsf (b[k]);

      out[k] = s > 0 ? t * t / s : 0.0f;
    }
  }
}

NclVerifier *
ncl_verifier_new (gint dim, NclVerifierFeature feature)
{
  NclVerifier *v = g_new0 (NclVerifier, 1);

  v->dim = dim;
  v->feature = feature;
  v->w = g_new0 (gfloat, dim);
  return v;
}

void
ncl_verifier_free (NclVerifier * v)
{
  if (v == NULL)
    return;
  g_free (v->w);
  g_free (v);
}

gint
ncl_verifier_get_dim (const NclVerifier * v)
{
  return v->dim;
}

NclVerifierFeature
ncl_verifier_get_feature (const NclVerifier * v)
{
  return v->feature;
}

gfloat *
ncl_verifier_get_weights (NclVerifier * v)
{
  return v->w;
}

gfloat *
ncl_verifier_get_bias (NclVerifier * v)
{
  return &v->b;
}

static gdouble
dot_feat (const NclVerifier * v, const gfloat * f)
{
  gdouble z = v->b;

  for (gint k = 0; k < v->dim; k++)
    z += (gdouble) v->w[k] * f[k];
  return z;
}

gdouble
ncl_verifier_logit (const NclVerifier * v, const gfloat * a, const gfloat * b)
{
  g_autofree gfloat *f = g_new (gfloat, v->dim);

  ncl_verifier_features (v->feature, a, b, v->dim, f);
  return dot_feat (v, f);
}

static gdouble
sigmoid (gdouble z)
{
  return z >= 0 ? 1.0 / (1.0 + exp (-z)) : exp (z) / (1.0 + exp (z));
}

gdouble
ncl_verifier_probability (const NclVerifier * v, const gfloat * a,
    const gfloat * b)
{
  return sigmoid (ncl_verifier_logit (v, a, b));
}

/* Loss with per-sample weights @sw (NULL: 1 each; normalised by their
 * sum). */
static gdouble
weighted_loss (const NclVerifier * v, const gfloat * feats,
    const guint8 * same, guint n, const gdouble * sw, gdouble l2, gfloat * gw,
    gfloat * gb)
{
  g_autofree gdouble *acc = gw ? g_new0 (gdouble, v->dim) : NULL;
  gdouble loss = 0, accb = 0, wsum = 0;

  for (guint i = 0; i < n; i++) {
    const gfloat *f = feats + (gsize) i * v->dim;
    gdouble z = dot_feat (v, f), y = same[i] ? 1 : 0, wi = sw ? sw[i] : 1;
    /* log (1 + e^-|z|) + max (z, 0) - y z: stable BCE with logits */
    gdouble l = log1p (exp (-fabs (z))) + MAX (z, 0) - y * z;
    gdouble dz = sigmoid (z) - y;

    loss += wi * l;
    wsum += wi;
    if (acc != NULL)
      for (gint k = 0; k < v->dim; k++)
        acc[k] += wi * dz * f[k];
    accb += wi * dz;
  }
  wsum = wsum > 0 ? wsum : 1;
  loss /= wsum;
  for (gint k = 0; k < v->dim; k++)
    loss += 0.5 * l2 * v->w[k] * v->w[k];
  if (gw != NULL)
    for (gint k = 0; k < v->dim; k++)
      gw[k] = (gfloat) (acc[k] / wsum + l2 * v->w[k]);
  if (gb != NULL)
    *gb = (gfloat) (accb / wsum);
  return loss;
}

gdouble
ncl_verifier_loss (const NclVerifier * v, const gfloat * feats,
    const guint8 * same, guint n, gdouble l2, gfloat * gw, gfloat * gb)
{
  return weighted_loss (v, feats, same, n, NULL, l2, gw, gb);
}

void
ncl_verifier_train_settings_init (NclVerifierTrainSettings * s)
{
  s->iterations = 3000;
  s->learning_rate = 0.01;
  s->l2 = 1e-4;
  s->balance = TRUE;
}

gboolean
ncl_verifier_train (NclVerifier * v, const gfloat * feats,
    const guint8 * same, guint n, const NclVerifierTrainSettings * s,
    gdouble * losses, GError ** error)
{
  gint d1 = v->dim + 1;
  g_autofree gfloat *param = g_new0 (gfloat, d1);
  g_autofree gfloat *grad = g_new0 (gfloat, d1);
  g_autofree gfloat *m = g_new0 (gfloat, d1);
  g_autofree gfloat *vv = g_new0 (gfloat, d1);
  g_autofree gdouble *sw = NULL;
  NclAdamParams adam;
  guint n_same = 0;

  for (guint i = 0; i < n; i++)
    n_same += same[i] != 0;
  if (n_same == 0 || n_same == n) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_CONFIG,
        "training a verifier needs same and different pairs (got %u same "
        "of %u)", n_same, n);
    return FALSE;
  }
  if (s->balance) {
    sw = g_new (gdouble, n);
    for (guint i = 0; i < n; i++)
      sw[i] = same[i] ? 0.5 / n_same : 0.5 / (n - n_same);
  }
  ncl_adam_params_init (&adam);
  adam.lr = (gfloat) s->learning_rate;
  memset (v->w, 0, sizeof (gfloat) * v->dim);
  v->b = 0;
  for (gint it = 1; it <= s->iterations; it++) {
    gdouble l = weighted_loss (v, feats, same, n, sw, s->l2, grad,
        grad + v->dim);

    if (losses != NULL)
      losses[it - 1] = l;
    memcpy (param, v->w, sizeof (gfloat) * v->dim);
    param[v->dim] = v->b;
    ncl_adam_step_ref (&adam, it, d1, param, grad, m, vv);
    memcpy (v->w, param, sizeof (gfloat) * v->dim);
    v->b = param[v->dim];
  }
  return TRUE;
}

gboolean
ncl_verifier_save (const NclVerifier * v, const gchar * path,
    const gchar * origin, GError ** error)
{
  g_autoptr (NclSafetensorsWriter) w = ncl_safetensors_writer_new ();
  g_autofree gchar *base = NULL, *wpath = NULL, *wname = NULL;
  g_autofree gchar *yaml = NULL;
  gint64 wshape[2] = { 1, v->dim }, bshape[1] = { 1 };

  if (!g_str_has_suffix (path, ".yaml")) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_CONFIG,
        "%s: a verifier model is saved as NAME.yaml", path);
    return FALSE;
  }
  base = g_strndup (path, strlen (path) - 5);
  wpath = g_strconcat (base, ".safetensors", NULL);
  wname = g_path_get_basename (wpath);
  ncl_safetensors_writer_add (w, "head.weight", NCL_DTYPE_F32, 2, wshape,
      v->w);
  ncl_safetensors_writer_add (w, "head.bias", NCL_DTYPE_F32, 1, bshape,
      &v->b);
  ncl_safetensors_writer_add_metadata (w, "feature",
      ncl_verifier_feature_to_string (v->feature));
  yaml = g_strdup_printf ("# Face verification head: p(same) = sigmoid (w . "
      "phi(f_i, f_j) + b),\n# phi = %s (docs/face-training.md).\n"
      "neuralcl-model: 1\n"
      "architecture: face-verifier-%s\n"
      "origin: \"%s\"\n"
      "weights: %s\n"
      "input:\n  channels: %d\n"
      "layers:\n"
      "  - name: head\n    op: fc\n    units: 1\n    weight: head.weight\n"
      "    bias: head.bias\n    activation: sigmoid\n",
      v->feature == NCL_VERIFIER_ABS ? "|f_i - f_j|" :
      "(f_i - f_j)^2 / (|f_i| + |f_j|)",
      ncl_verifier_feature_to_string (v->feature),
      origin ? origin : "trained here (logistic regression)", wname, v->dim);
  if (!ncl_safetensors_writer_write (w, wpath, error) ||
      !g_file_set_contents (path, yaml, -1, error))
    return FALSE;
  return TRUE;
}

NclVerifier *
ncl_verifier_load (const gchar * path, GError ** error)
{
  g_autoptr (NclModel) model = ncl_model_load (path, error);
  const gchar *arch;
  NclVerifierFeature f;
  NclNode *node;
  NclVerifier *v;

  if (model == NULL)
    return NULL;
  arch = ncl_model_get_architecture (model);
  if (arch == NULL || !g_str_has_prefix (arch, "face-verifier-") ||
      !ncl_verifier_feature_from_string (arch + strlen ("face-verifier-"),
          &f)) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
        "%s: not a face verifier (architecture '%s', expected "
        "face-verifier-abs or face-verifier-chi2)", path, arch ? arch : "");
    return NULL;
  }
  node = model->nodes->len == 1 ? g_ptr_array_index (model->nodes, 0) : NULL;
  if (node == NULL || node->op != NCL_OP_FC || node->units != 1 ||
      node->act != NCL_ACT_SIGMOID || node->weight == NULL ||
      node->bias == NULL) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
        "%s: a verifier is one fc layer with 1 unit, a bias and a sigmoid",
        path);
    return NULL;
  }
  v = ncl_verifier_new (model->input_channels, f);
  memcpy (v->w, node->weight, sizeof (gfloat) * v->dim);
  v->b = node->bias[0];
  return v;
}

/* DIR/verifier/face-verifier.yaml when it exists (transfer full). */
static gchar *
verifier_in (const gchar * dir)
{
  gchar *p = g_build_filename (dir, "verifier", "face-verifier.yaml", NULL);

  if (g_file_test (p, G_FILE_TEST_IS_REGULAR))
    return p;
  g_free (p);
  return NULL;
}

/* $NEURALCL_VERIFIER_MODEL; then verifier/face-verifier.yaml in the face
 * model search path ($NEURALCL_MODEL_PATH, the user's data dir, the
 * installed datadir/models), in the source tree's models/, and in the
 * system data dirs' neuralcl/models. */
gchar *
ncl_verifier_find_default (void)
{
  const gchar *env = g_getenv ("NEURALCL_VERIFIER_MODEL");
  g_auto (GStrv) dirs = NULL;
  const gchar *const *sys;
  gchar *p;

  if (env != NULL && *env != '\0')
    return g_strdup (env);
  dirs = ncl_face_get_model_search_path ();
  for (guint i = 0; dirs[i] != NULL; i++)
    if ((p = verifier_in (dirs[i])) != NULL)
      return p;
  if ((p = verifier_in (NCL_SOURCE_DATADIR)) != NULL)
    return p;
  sys = g_get_system_data_dirs ();
  for (guint i = 0; sys[i] != NULL; i++) {
    g_autofree gchar *d = g_build_filename (sys[i], "neuralcl", "models",
        NULL);

    if ((p = verifier_in (d)) != NULL)
      return p;
  }
  return NULL;
}

NclVerifier *
ncl_verifier_from_config (const NclFaceConfig * c, GError ** error)
{
  g_autofree gchar *path = NULL;
  NclVerifier *v;

  if (c->verifier == NULL || !g_str_equal (c->verifier, "classifier"))
    return NULL;
  path = c->verifier_model ? g_strdup (c->verifier_model) :
      ncl_verifier_find_default ();
  if (path == NULL) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_NOT_FOUND,
        "verifier: classifier: no verifier-model given and no bundled head "
        "(models/verifier/face-verifier.yaml; $NEURALCL_VERIFIER_MODEL)");
    return NULL;
  }
  v = ncl_verifier_load (path, error);
  if (v != NULL && ncl_verifier_get_dim (v) != NCL_FACE_DESCRIPTOR_LEN) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
        "%s: the head takes %d values, descriptors have %d", path,
        ncl_verifier_get_dim (v), NCL_FACE_DESCRIPTOR_LEN);
    ncl_verifier_free (v);
    return NULL;
  }
  return v;
}
