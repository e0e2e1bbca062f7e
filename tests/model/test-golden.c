/* The style network end to end against the golden output of an independent
 * float32 implementation (../shared/data/style/golden): the PyTorch
 * checkpoint loaded directly, and the bundled YAML graph of the same
 * weights, both within 0.5 on the 0..255 scale before clamping. */
#include "common.h"

#include <math.h>

static void
check_model (NclContext * ctx, const gchar * model_path, const gfloat * in,
    const gfloat * want, gint h, gint w)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (NclModel) model = ncl_model_load (model_path, &error);
  g_autoptr (NclStylizer) st = NULL;
  g_autofree gfloat *got = g_new (gfloat, 3 * h * w);
  g_autofree gchar *label = NULL;

  NCL_CHECK_NO_ERROR (error);
  if (model == NULL)
    return;
  st = ncl_stylizer_new (ctx, model, &error);
  NCL_CHECK_NO_ERROR (error);
  if (st == NULL)
    return;
  NCL_CHECK (ncl_stylizer_run_tensor (st, in, 1, h, w, got, &error));
  NCL_CHECK_NO_ERROR (error);
  label = g_strdup_printf ("golden mosaic via %s", model_path);
  ncl_test_compare (label, got, want, 3 * h * w, 0.5f, 0.0f);
}

int
main (void)
{
  g_autoptr (NclContext) ctx = ncl_test_context ();
  g_autofree gchar *golden = ncl_test_shared_path
      ("data/style/golden/mosaic-dog-160x120.safetensors");
  g_autofree gchar *ckpt = ncl_test_shared_path
      ("data/style/pretrained/mosaic.safetensors");
  g_autofree gchar *bundled = g_build_filename (g_getenv ("NCL_SOURCE_DIR"),
      "models", "styles", "mosaic.yaml", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (NclSafetensors) st = ncl_safetensors_load (golden, &error);
  const gint64 shape[4] = { 1, 3, 120, 160 };
  g_autofree gfloat *in = NULL;
  g_autofree gfloat *want = NULL;

  if (st == NULL) {
    g_printerr ("%s\n", error->message);
    return 1;
  }
  in = ncl_safetensors_read_f32 (st, "input", 4, shape, &error);
  want = ncl_safetensors_read_f32 (st, "output", 4, shape, &error);
  if (in == NULL || want == NULL) {
    g_printerr ("%s\n", error->message);
    return 1;
  }
  check_model (ctx, ckpt, in, want, 120, 160);
  if (g_file_test (bundled, G_FILE_TEST_EXISTS))
    check_model (ctx, bundled, in, want, 120, 160);
  else {
    g_printerr ("bundled style missing: %s\n", bundled);
    ncl_test_failures++;
  }
  return ncl_test_finish ();
}
