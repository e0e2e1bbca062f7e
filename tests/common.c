#include "common.h"

#include <math.h>
#include <stdlib.h>

gint ncl_test_failures = 0;

NclContext *
ncl_test_context (void)
{
  g_autoptr (GError) error = NULL;
  NclContext *ctx = ncl_context_new (NULL, &error);

  if (ctx == NULL) {
    if (g_error_matches (error, NCL_ERROR, NCL_ERROR_NO_DEVICE)) {
      g_print ("SKIP: %s\n", error->message);
      exit (NCL_TEST_SKIP);
    }
    g_printerr ("cannot create an OpenCL context: %s\n", error->message);
    exit (1);
  }
  g_print ("device: %s (%s)\n", ncl_context_get_device_name (ctx),
      ncl_context_get_platform_name (ctx));
  return ctx;
}

void
ncl_test_fill_random (gfloat * data, gsize n, guint32 seed, gfloat lo,
    gfloat hi)
{
  guint32 s = seed * 2654435761u + 12345u;

  for (gsize i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    data[i] = lo + (hi - lo) * ((s >> 8) / 16777216.0f);
  }
}

gboolean
ncl_test_compare (const gchar * label, const gfloat * got, const gfloat * want,
    gsize n, gfloat atol, gfloat rtol)
{
  gsize bad = 0;
  gdouble max_err = 0.0;

  for (gsize i = 0; i < n; i++) {
    gfloat err = fabsf (got[i] - want[i]);
    gboolean ok = err <= atol + rtol * fabsf (want[i]);

    if (isnan (got[i]) != isnan (want[i]))
      ok = FALSE;
    if (err > max_err)
      max_err = err;
    if (!ok) {
      if (bad < 5)
        g_printerr ("%s: mismatch at [%" G_GSIZE_FORMAT "]: got %.6g want "
            "%.6g\n", label, i, got[i], want[i]);
      bad++;
    }
  }
  if (bad > 0) {
    g_printerr ("%s: %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " differ "
        "(max abs error %.3g)\n", label, bad, n, max_err);
    ncl_test_failures++;
    return FALSE;
  }
  g_print ("ok %s (%" G_GSIZE_FORMAT " values, max abs error %.3g)\n", label,
      n, max_err);
  return TRUE;
}

static gchar *
env_path (const gchar * var, const gchar * rel)
{
  const gchar *dir = g_getenv (var);

  if (dir == NULL) {
    g_printerr ("%s is not set (run the tests through meson test)\n", var);
    exit (1);
  }
  return g_build_filename (dir, rel, NULL);
}

gchar *
ncl_test_shared_path (const gchar * rel)
{
  return env_path ("NCL_SHARED_DIR", rel);
}

gchar *
ncl_test_data_path (const gchar * rel)
{
  return env_path ("NCL_TEST_DATA_DIR", rel);
}

NclTensor *
ncl_test_tensor (NclContext * ctx, const gfloat * data, gint n, gint c, gint h,
    gint w)
{
  g_autoptr (GError) error = NULL;
  NclTensor *t = ncl_tensor_new (ctx, n, c, h, w, &error);

  if (t == NULL || (data && !ncl_tensor_upload (t, data, &error))) {
    g_printerr ("tensor (%d,%d,%d,%d): %s\n", n, c, h, w, error->message);
    exit (1);
  }
  return t;
}

gfloat *
ncl_test_download (const NclTensor * t)
{
  g_autoptr (GError) error = NULL;
  gfloat *data = g_new (gfloat, ncl_tensor_numel (t));

  if (!ncl_tensor_download (t, data, &error)) {
    g_printerr ("download: %s\n", error->message);
    exit (1);
  }
  return data;
}

gint
ncl_test_finish (void)
{
  if (ncl_test_failures > 0) {
    g_printerr ("%d check(s) failed\n", ncl_test_failures);
    return 1;
  }
  return 0;
}
