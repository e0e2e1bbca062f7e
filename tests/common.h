/* Helpers shared by the C tests. */
#pragma once

#include <neuralcl/neuralcl.h>

G_BEGIN_DECLS

/* Exit code that meson reports as SKIP. */
#define NCL_TEST_SKIP 77

/* A context on the default device; exits 77 (skip) if there is no OpenCL
 * device at all, and fails if one exists but cannot be used. */
NclContext *ncl_test_context (void);

/* Deterministic uniform floats in [lo, hi). */
void ncl_test_fill_random (gfloat * data, gsize n, guint32 seed, gfloat lo,
    gfloat hi);

/* Compares @got with @want; on mismatch prints "LABEL: N of M differ;
 * first at [i]: got X want Y" for the first few and returns FALSE.  An
 * element passes if |got - want| <= atol + rtol * |want|. */
gboolean ncl_test_compare (const gchar * label, const gfloat * got,
    const gfloat * want, gsize n, gfloat atol, gfloat rtol);

/* Path under ../shared (env NCL_SHARED_DIR), transfer full. */
gchar *ncl_test_shared_path (const gchar * rel);
/* Path under tests/data (env NCL_TEST_DATA_DIR), transfer full. */
gchar *ncl_test_data_path (const gchar * rel);

/* Uploads host data into a new tensor, or aborts the test. */
NclTensor *ncl_test_tensor (NclContext * ctx, const gfloat * data, gint n,
    gint c, gint h, gint w);
/* Downloads a tensor into a new array (g_free it). */
gfloat *ncl_test_download (const NclTensor * t);

/* Counts failures; tests end with `return ncl_test_finish ();`. */
#define NCL_CHECK(cond) \
  G_STMT_START { if (!(cond)) { \
    g_printerr ("%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
    ncl_test_failures++; } } G_STMT_END
#define NCL_CHECK_NO_ERROR(err) \
  G_STMT_START { if ((err) != NULL) { \
    g_printerr ("%s:%d: unexpected error: %s\n", __FILE__, __LINE__, \
        (err)->message); ncl_test_failures++; g_clear_error (&(err)); } \
  } G_STMT_END

extern gint ncl_test_failures;
gint ncl_test_finish (void);

G_END_DECLS
