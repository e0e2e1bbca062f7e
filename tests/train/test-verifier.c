/* Verification head: features, the logistic loss's gradient against finite
 * differences, a fit on synthetic descriptor pairs, save/load through the
 * model loader, and rejected models. */
#include "common.h"

#include <neuralcl/metric.h>

#include <math.h>
#include <string.h>

static void
test_features (void)
{
  const gfloat a[4] = { 0.5f, -0.25f, 0.0f, 1.0f };
  const gfloat b[4] = { 0.25f, 0.25f, 0.0f, -1.0f };
  gfloat f[4];
  NclVerifierFeature feat;

  ncl_verifier_features (NCL_VERIFIER_ABS, a, b, 4, f);
  NCL_CHECK (f[0] == 0.25f && f[1] == 0.5f && f[2] == 0.0f && f[3] == 2.0f);
  ncl_verifier_features (NCL_VERIFIER_CHI2, a, b, 4, f);
  NCL_CHECK (fabsf (f[0] - 0.0625f / 0.75f) < 1e-7f);
  NCL_CHECK (fabsf (f[1] - 0.25f / 0.5f) < 1e-7f);
  NCL_CHECK (f[2] == 0.0f);
  NCL_CHECK (fabsf (f[3] - 2.0f) < 1e-7f);
  NCL_CHECK (ncl_verifier_feature_from_string ("chi2", &feat) &&
      feat == NCL_VERIFIER_CHI2);
  NCL_CHECK (!ncl_verifier_feature_from_string ("l1", &feat));
}

static void
test_loss_gradient (void)
{
  enum { N = 12, D = 6 };
  g_autoptr (NclVerifier) v = ncl_verifier_new (D, NCL_VERIFIER_ABS);
  gfloat feats[N * D], gw[D], gb, num[D + 1], ana[D + 1];
  guint8 same[N];
  gfloat *w = ncl_verifier_get_weights (v), *b = ncl_verifier_get_bias (v);
  const gdouble l2 = 0.01;
  const gfloat eps = 1e-3f;

  ncl_test_fill_random (feats, N * D, 3, 0.0f, 1.0f);
  ncl_test_fill_random (w, D, 4, -2.0f, 2.0f);
  *b = 0.3f;
  for (gint i = 0; i < N; i++)
    same[i] = i % 3 == 0;
  ncl_verifier_loss (v, feats, same, N, l2, gw, &gb);
  memcpy (ana, gw, sizeof (gw));
  ana[D] = gb;
  for (gint k = 0; k <= D; k++) {
    gfloat *p = k < D ? &w[k] : b, keep = *p;
    gdouble lp, lm;

    *p = keep + eps;
    lp = ncl_verifier_loss (v, feats, same, N, l2, NULL, NULL);
    *p = keep - eps;
    lm = ncl_verifier_loss (v, feats, same, N, l2, NULL, NULL);
    *p = keep;
    num[k] = (gfloat) ((lp - lm) / (2 * eps));
  }
  NCL_CHECK (ncl_test_compare ("logistic loss gradient", ana, num, D + 1,
          1e-4f, 1e-3f));
  /* the loss of a zero head is log 2 */
  memset (w, 0, sizeof (gfloat) * D);
  *b = 0;
  NCL_CHECK (fabs (ncl_verifier_loss (v, feats, same, N, 0, NULL, NULL) -
          log (2.0)) < 1e-6);
}

/* Descriptor pairs: identities are random unit-ish vectors; a same pair
 * differs by small noise on the first half of the components only, a
 * different pair anywhere.  The head must learn to weight them. */
static void
test_fit_and_io (NclVerifierFeature feature)
{
  enum { D = 16, N = 400 };
  g_autoptr (NclVerifier) v = ncl_verifier_new (D, feature);
  g_autoptr (NclVerifier) back = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GRand) r = g_rand_new_with_seed (9);
  g_autofree gfloat *fa = g_new (gfloat, N * D);
  g_autofree gfloat *fb = g_new (gfloat, N * D);
  g_autofree gfloat *feats = g_new (gfloat, N * D);
  g_autofree gdouble *losses = NULL;
  g_autofree gchar *dir = g_dir_make_tmp ("ncl-verifier-XXXXXX", NULL);
  g_autofree gchar *path = g_build_filename (dir, "head.yaml", NULL);
  guint8 same[N];
  NclVerifierTrainSettings s;
  guint right = 0;

  for (gint i = 0; i < N; i++) {
    same[i] = i % 2;
    for (gint k = 0; k < D; k++) {
      fa[i * D + k] = (gfloat) g_rand_double_range (r, -0.3, 0.3);
      if (same[i])
        fb[i * D + k] = fa[i * D + k] + (gfloat) g_rand_double_range (r,
            k < D / 2 ? -0.05 : -0.3, k < D / 2 ? 0.05 : 0.3);
      else
        fb[i * D + k] = (gfloat) g_rand_double_range (r, -0.3, 0.3);
    }
    ncl_verifier_features (feature, fa + i * D, fb + i * D, D,
        feats + i * D);
  }
  ncl_verifier_train_settings_init (&s);
  s.iterations = 1500;
  s.learning_rate = 0.05;
  losses = g_new (gdouble, s.iterations);
  NCL_CHECK (ncl_verifier_train (v, feats, same, N, &s, losses, &error));
  NCL_CHECK_NO_ERROR (error);
  NCL_CHECK (losses[s.iterations - 1] < 0.5 * losses[0]);
  for (gint i = 0; i < N; i++)
    right += (ncl_verifier_probability (v, fa + i * D, fb + i * D) > 0.5) ==
        same[i];
  g_print ("%s: training accuracy %.3f, loss %.4f -> %.4f\n",
      ncl_verifier_feature_to_string (feature), (gdouble) right / N,
      losses[0], losses[s.iterations - 1]);
  NCL_CHECK (right > 0.9 * N);
  /* the informative components get the large negative weights */
  {
    gdouble lo = 0, hi = 0;
    gfloat *w = ncl_verifier_get_weights (v);

    for (gint k = 0; k < D; k++)
      *(k < D / 2 ? &lo : &hi) += w[k];
    NCL_CHECK (lo < hi && lo < 0);
  }

  NCL_CHECK (ncl_verifier_save (v, path, "test", &error));
  NCL_CHECK_NO_ERROR (error);
  back = ncl_verifier_load (path, &error);
  NCL_CHECK_NO_ERROR (error);
  if (back != NULL) {
    NCL_CHECK (ncl_verifier_get_dim (back) == D);
    NCL_CHECK (ncl_verifier_get_feature (back) == feature);
    for (gint i = 0; i < 10; i++)
      NCL_CHECK (fabs (ncl_verifier_logit (back, fa + i * D, fb + i * D) -
              ncl_verifier_logit (v, fa + i * D, fb + i * D)) < 1e-5);
  }
  /* the same graph as a model runs on the device to the same p */
  {
    g_autoptr (NclContext) ctx = ncl_test_context ();
    g_autoptr (NclModel) model = ncl_model_load (path, &error);
    g_autoptr (NclRunner) runner = model ? ncl_runner_new (model, ctx,
        &error) : NULL;
    g_autoptr (NclTensor) in = NULL;
    NclTensor *out = NULL;
    gfloat p[4];

    NCL_CHECK_NO_ERROR (error);
    if (runner != NULL) {
      in = ncl_test_tensor (ctx, feats, 4, D, 1, 1);
      NCL_CHECK (ncl_runner_run (runner, in, &out, &error));
      NCL_CHECK_NO_ERROR (error);
      NCL_CHECK (out != NULL && ncl_tensor_download (out, p, NULL));
      for (gint i = 0; i < 4; i++)
        NCL_CHECK (fabs (p[i] - ncl_verifier_probability (v, fa + i * D,
                    fb + i * D)) < 1e-4);
    }
  }
}

static void
test_errors (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *dir = g_dir_make_tmp ("ncl-verifier-XXXXXX", NULL);
  g_autofree gchar *path = g_build_filename (dir, "h.yaml", NULL);
  g_autoptr (NclVerifier) v = ncl_verifier_new (4, NCL_VERIFIER_ABS);
  NclVerifierTrainSettings s;
  gfloat feats[8] = { 0 };
  guint8 same[2] = { 1, 1 };
  gchar *text = NULL;

  /* one class only */
  ncl_verifier_train_settings_init (&s);
  NCL_CHECK (!ncl_verifier_train (v, feats, same, 2, &s, NULL, &error));
  NCL_CHECK (error != NULL);
  g_clear_error (&error);
  /* not .yaml */
  NCL_CHECK (!ncl_verifier_save (v, "/tmp/x.bin", NULL, &error));
  g_clear_error (&error);
  /* another architecture */
  NCL_CHECK (ncl_verifier_save (v, path, NULL, &error));
  NCL_CHECK (g_file_get_contents (path, &text, NULL, NULL));
  {
    g_autofree gchar *t2 = NULL;
    gchar *at = strstr (text, "face-verifier-abs");

    NCL_CHECK (at != NULL);
    if (at != NULL) {
      memcpy (at, "face-verifier-xyz", 17);
      t2 = text;
      text = NULL;
      NCL_CHECK (g_file_set_contents (path, t2, -1, NULL));
    }
  }
  g_free (text);
  NCL_CHECK (ncl_verifier_load (path, &error) == NULL);
  NCL_CHECK (error != NULL && strstr (error->message, "not a face "
          "verifier"));
  g_clear_error (&error);
  NCL_CHECK (ncl_verifier_load ("/nonexistent/v.yaml", &error) == NULL);
  NCL_CHECK (error != NULL);
}

/* The default head: $NEURALCL_VERIFIER_MODEL, then verifier/ in the model
 * search path, then the source tree's models/verifier (the bundled head,
 * which `verifier: classifier` then loads without verifier-model). */
static void
test_default (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *dir = g_dir_make_tmp ("ncl-verifier-XXXXXX", NULL);
  g_autofree gchar *vdir = g_build_filename (dir, "verifier", NULL);
  g_autofree gchar *path = g_build_filename (vdir, "face-verifier.yaml",
      NULL);
  g_autofree gchar *empty = g_build_filename (dir, "empty", NULL);
  g_autofree gchar *old_mp = g_strdup (g_getenv ("NEURALCL_MODEL_PATH"));
  g_autofree gchar *old_vm = g_strdup (g_getenv ("NEURALCL_VERIFIER_MODEL"));
  g_autofree gchar *found = NULL;
  g_autoptr (NclVerifier) v = ncl_verifier_new (NCL_FACE_DESCRIPTOR_LEN,
      NCL_VERIFIER_ABS);
  const gchar *src = g_getenv ("NCL_SOURCE_DIR");
  NclFaceConfig c;

  NCL_CHECK (g_mkdir_with_parents (vdir, 0755) == 0);
  NCL_CHECK (g_mkdir_with_parents (empty, 0755) == 0);
  NCL_CHECK (ncl_verifier_save (v, path, NULL, &error));
  NCL_CHECK_NO_ERROR (error);
  g_setenv ("XDG_DATA_HOME", empty, TRUE);
  g_unsetenv ("NEURALCL_VERIFIER_MODEL");
  g_setenv ("NEURALCL_MODEL_PATH", dir, TRUE);
  found = ncl_verifier_find_default ();
  NCL_CHECK (found != NULL && g_str_equal (found, path));
  g_clear_pointer (&found, g_free);

  g_setenv ("NEURALCL_VERIFIER_MODEL", "/some/where.yaml", TRUE);
  found = ncl_verifier_find_default ();
  NCL_CHECK (found != NULL && g_str_equal (found, "/some/where.yaml"));
  g_clear_pointer (&found, g_free);
  g_unsetenv ("NEURALCL_VERIFIER_MODEL");

  /* nothing in the search path: the bundled head of the source tree */
  g_setenv ("NEURALCL_MODEL_PATH", empty, TRUE);
  found = ncl_verifier_find_default ();
  if (src != NULL) {
    g_autofree gchar *bundled = g_build_filename (src, "models", "verifier",
        "face-verifier.yaml", NULL);

    NCL_CHECK (g_file_test (bundled, G_FILE_TEST_EXISTS));
    NCL_CHECK (found != NULL && g_str_has_suffix (found,
            "models/verifier/face-verifier.yaml"));
  }
  ncl_face_config_init (&c);
  g_free (c.verifier);
  c.verifier = g_strdup ("classifier");
  {
    g_autoptr (NclVerifier) d = ncl_verifier_from_config (&c, &error);

    NCL_CHECK_NO_ERROR (error);
    NCL_CHECK (d != NULL && ncl_verifier_get_dim (d) ==
        NCL_FACE_DESCRIPTOR_LEN);
  }
  ncl_face_config_clear (&c);

  if (old_mp != NULL)
    g_setenv ("NEURALCL_MODEL_PATH", old_mp, TRUE);
  else
    g_unsetenv ("NEURALCL_MODEL_PATH");
  if (old_vm != NULL)
    g_setenv ("NEURALCL_VERIFIER_MODEL", old_vm, TRUE);
}

gint
main (gint argc, gchar ** argv)
{
  test_features ();
  test_loss_gradient ();
  test_fit_and_io (NCL_VERIFIER_ABS);
  test_fit_and_io (NCL_VERIFIER_CHI2);
  test_errors ();
  test_default ();
  return ncl_test_finish ();
}
