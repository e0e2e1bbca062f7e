/* safetensors reader and writer: round trips through the writer, a table
 * of corrupt files built byte by byte (each must fail with the right code
 * and a message naming the file and the tensor), a real checkpoint, and
 * the half <-> float conversions checked exhaustively. */

#include "common.h"

#include <math.h>
#include <string.h>

#include <glib/gstdio.h>

static gchar *tmpdir;

static guint32
bits (gfloat f)
{
  guint32 u;

  memcpy (&u, &f, 4);
  return u;
}

static gfloat
from_bits (guint32 u)
{
  gfloat f;

  memcpy (&f, &u, 4);
  return f;
}

/* Checks that @err is NCL_ERROR/@code and its message contains every
 * string of the NULL-terminated list. */
static void
expect_error (const gchar * label, GError * err, gint code, ...)
{
  const gchar *sub;
  va_list args;

  if (err == NULL) {
    g_printerr ("%s: expected an error, got none\n", label);
    ncl_test_failures++;
    return;
  }
  g_print ("%s: %s\n", label, err->message);
  if (!g_error_matches (err, NCL_ERROR, code)) {
    g_printerr ("%s: error code %d (%s), expected %d\n", label, err->code,
        g_quark_to_string (err->domain), code);
    ncl_test_failures++;
  }
  if (strchr (err->message, '\n') != NULL) {
    g_printerr ("%s: message is not one line\n", label);
    ncl_test_failures++;
  }
  va_start (args, code);
  while ((sub = va_arg (args, const gchar *)) != NULL) {
    if (strstr (err->message, sub) == NULL) {
      g_printerr ("%s: message lacks '%s'\n", label, sub);
      ncl_test_failures++;
    }
  }
  va_end (args);
}

/* ---------------------------------------------------------------------- */

static void
test_round_trip (void)
{
  g_autoptr (NclSafetensorsWriter) w = ncl_safetensors_writer_new ();
  g_autoptr (NclSafetensors) st = NULL;
  g_autoptr (GError) err = NULL;
  g_autofree gchar *path = g_build_filename (tmpdir, "rt.safetensors", NULL);
  g_autofree gchar *contents = NULL;
  g_autofree gchar *sum = NULL;
  g_autofree gfloat *a = NULL, *b = NULL, *scalar = NULL;
  const gint64 a_shape[] = { 2, 3 }, b_shape[] = { 7 }, u_shape[] = { 4 };
  const gint64 i_shape[] = { 2 }, e_shape[] = { 0, 3 };
  const gfloat a_data[] = { 1.0f, -2.5f, 3.25f, 1e-30f, 65504.0f, -0.0f };
  /* F16: exact halves, a subnormal, a value that must round, out of range */
  const gfloat b_data[] = { 0.5f, -1.0f, 5.9604645e-08f, 1.0007f,
    0.1f, 70000.0f, -3.0f
  };
  const gfloat u_data[] = { 0.0f, 1.4f, 254.6f, 300.0f };
  const gfloat i_data[] = { -3.0f, 123456.0f };
  const gfloat one = 42.0f;
  const NclSafetensor *t;
  const guint8 *raw;
  gsize len;
  guint64 header_len = 0;

  ncl_safetensors_writer_add_metadata (w, "format", "pt");
  ncl_safetensors_writer_add_metadata (w, "note", "quotes \" and \\ and é");
  ncl_safetensors_writer_add_metadata (w, "format", "neuralcl");
  ncl_safetensors_writer_add (w, "a.weight", NCL_DTYPE_F32, 2, a_shape,
      a_data);
  ncl_safetensors_writer_add (w, "b.bias", NCL_DTYPE_F16, 1, b_shape, b_data);
  ncl_safetensors_writer_add (w, "u8", NCL_DTYPE_U8, 1, u_shape, u_data);
  ncl_safetensors_writer_add (w, "i64", NCL_DTYPE_I64, 1, i_shape, i_data);
  ncl_safetensors_writer_add (w, "empty", NCL_DTYPE_F32, 2, e_shape, NULL);
  ncl_safetensors_writer_add (w, "scalar", NCL_DTYPE_F32, 0, NULL, &one);
  NCL_CHECK (ncl_safetensors_writer_write (w, path, &err));
  NCL_CHECK_NO_ERROR (err);

  /* the data section starts 8-byte aligned */
  NCL_CHECK (g_file_get_contents (path, &contents, &len, NULL));
  NCL_CHECK (len >= 8);
  for (gint i = 7; i >= 0; i--)
    header_len = (header_len << 8) | (guint8) contents[i];
  NCL_CHECK ((8 + header_len) % 8 == 0);
  NCL_CHECK (len == 8 + header_len + 6 * 4 + 7 * 2 + 4 + 2 * 8 + 4);

  st = ncl_safetensors_load (path, &err);
  NCL_CHECK_NO_ERROR (err);
  if (st == NULL)
    return;
  NCL_CHECK (strcmp (ncl_safetensors_get_path (st), path) == 0);
  NCL_CHECK (ncl_safetensors_get_n_tensors (st) == 6);
  NCL_CHECK (g_strcmp0 (ncl_safetensors_get_metadata (st, "format"),
          "neuralcl") == 0);
  NCL_CHECK (g_strcmp0 (ncl_safetensors_get_metadata (st, "note"),
          "quotes \" and \\ and é") == 0);
  NCL_CHECK (ncl_safetensors_get_metadata (st, "missing") == NULL);

  /* file order is insertion order (the empty tensor sorts by offset) */
  t = ncl_safetensors_get_nth (st, 0);
  NCL_CHECK (t != NULL && strcmp (t->name, "a.weight") == 0);
  t = ncl_safetensors_get_nth (st, 1);
  NCL_CHECK (t != NULL && strcmp (t->name, "b.bias") == 0);
  NCL_CHECK (ncl_safetensors_get_nth (st, 6) == NULL);
  for (guint i = 1; i < ncl_safetensors_get_n_tensors (st); i++)
    NCL_CHECK (ncl_safetensors_get_nth (st, i - 1)->offset <=
        ncl_safetensors_get_nth (st, i)->offset);

  t = ncl_safetensors_lookup (st, "a.weight");
  NCL_CHECK (t && t->dtype == NCL_DTYPE_F32 && t->ndim == 2 &&
      t->shape[0] == 2 && t->shape[1] == 3 && t->offset == 0 &&
      t->nbytes == 24);
  a = ncl_safetensors_read_f32 (st, "a.weight", 2, a_shape, &err);
  NCL_CHECK_NO_ERROR (err);
  NCL_CHECK (a != NULL && memcmp (a, a_data, sizeof (a_data)) == 0);

  t = ncl_safetensors_lookup (st, "b.bias");
  NCL_CHECK (t && t->dtype == NCL_DTYPE_F16 && t->nbytes == 14 &&
      t->offset == 24);
  b = ncl_safetensors_read_f32 (st, "b.bias", 0, NULL, &err);
  NCL_CHECK_NO_ERROR (err);
  if (b != NULL) {
    NCL_CHECK (b[0] == 0.5f && b[1] == -1.0f && b[6] == -3.0f);
    NCL_CHECK (b[2] == ldexpf (1.0f, -24));
    NCL_CHECK (b[3] == 1.0f + ldexpf (1.0f, -10));
    NCL_CHECK (fabsf (b[4] - 0.1f) < 1e-4f && b[4] != 0.1f);
    NCL_CHECK (isinf (b[5]) && b[5] > 0);
  }

  t = ncl_safetensors_lookup (st, "u8");
  NCL_CHECK (t && t->dtype == NCL_DTYPE_U8 && t->nbytes == 4);
  raw = t ? ncl_safetensors_get_data (st, t) : NULL;
  NCL_CHECK (raw && raw[0] == 0 && raw[1] == 1 && raw[2] == 255 &&
      raw[3] == 255);
  t = ncl_safetensors_lookup (st, "i64");
  raw = t ? ncl_safetensors_get_data (st, t) : NULL;
  if (raw != NULL) {
    gint64 v0, v1;

    memcpy (&v0, raw, 8);
    memcpy (&v1, raw + 8, 8);
    NCL_CHECK (GINT64_FROM_LE (v0) == -3 && GINT64_FROM_LE (v1) == 123456);
  }
  t = ncl_safetensors_lookup (st, "empty");
  NCL_CHECK (t && t->nbytes == 0 && t->ndim == 2 && t->shape[0] == 0);
  t = ncl_safetensors_lookup (st, "scalar");
  NCL_CHECK (t && t->ndim == 0 && t->nbytes == 4);
  scalar = ncl_safetensors_read_f32 (st, "scalar", 0, NULL, &err);
  NCL_CHECK_NO_ERROR (err);
  NCL_CHECK (scalar && scalar[0] == 42.0f);

  /* reader errors */
  NCL_CHECK (ncl_safetensors_read_f32 (st, "nope", 0, NULL, &err) == NULL);
  expect_error ("read missing", err, NCL_ERROR_INVALID_MODEL,
      "rt.safetensors: tensor 'nope': missing", NULL);
  g_clear_error (&err);
  {
    const gint64 wrong[] = { 3, 2 };

    NCL_CHECK (ncl_safetensors_read_f32 (st, "a.weight", 2, wrong,
            &err) == NULL);
    expect_error ("read wrong shape", err, NCL_ERROR_INVALID_MODEL,
        "rt.safetensors: tensor 'a.weight': shape [2, 3], expected [3, 2]",
        NULL);
    g_clear_error (&err);
    NCL_CHECK (ncl_safetensors_read_f32 (st, "a.weight", 1, wrong,
            &err) == NULL);
    expect_error ("read wrong rank", err, NCL_ERROR_INVALID_MODEL,
        "shape [2, 3], expected [3]", NULL);
    g_clear_error (&err);
  }
  NCL_CHECK (ncl_safetensors_read_f32 (st, "i64", 0, NULL, &err) == NULL);
  expect_error ("read wrong dtype", err, NCL_ERROR_INVALID_MODEL,
      "tensor 'i64': dtype I64, expected F32 or F16", NULL);
  g_clear_error (&err);

  /* checksum: SHA-256 of the whole file, stable across calls */
  sum = g_compute_checksum_for_data (G_CHECKSUM_SHA256,
      (const guchar *) contents, len);
  NCL_CHECK (g_strcmp0 (ncl_safetensors_get_checksum (st), sum) == 0);
  NCL_CHECK (ncl_safetensors_get_checksum (st) ==
      ncl_safetensors_get_checksum (st));
  NCL_CHECK (strlen (ncl_safetensors_get_checksum (st)) == 64);

  NCL_CHECK (ncl_dtype_size (NCL_DTYPE_I64) == 8);
  NCL_CHECK (strcmp (ncl_dtype_to_string (NCL_DTYPE_F16), "F16") == 0);
  g_print ("ok round trip\n");
}

/* A file with no metadata and no tensors is valid. */
static void
test_empty_writer (void)
{
  g_autoptr (NclSafetensorsWriter) w = ncl_safetensors_writer_new ();
  g_autoptr (NclSafetensors) st = NULL;
  g_autoptr (GError) err = NULL;
  g_autofree gchar *path = g_build_filename (tmpdir, "none.safetensors",
      NULL);

  NCL_CHECK (ncl_safetensors_writer_write (w, path, &err));
  NCL_CHECK_NO_ERROR (err);
  st = ncl_safetensors_load (path, &err);
  NCL_CHECK_NO_ERROR (err);
  NCL_CHECK (st && ncl_safetensors_get_n_tensors (st) == 0);
  NCL_CHECK (st && ncl_safetensors_get_metadata (st, "format") == NULL);
}

/* Writer errors: duplicate names, unwritable path. */
static void
test_writer_errors (void)
{
  g_autoptr (NclSafetensorsWriter) w = ncl_safetensors_writer_new ();
  g_autoptr (GError) err = NULL;
  g_autofree gchar *path = g_build_filename (tmpdir, "dup.safetensors", NULL);
  g_autofree gchar *bad = g_build_filename (tmpdir, "no-such-dir",
      "x.safetensors", NULL);
  const gint64 shape[] = { 1 };
  const gfloat v = 1.0f;

  ncl_safetensors_writer_add (w, "x", NCL_DTYPE_F32, 1, shape, &v);
  NCL_CHECK (ncl_safetensors_writer_write (w, bad, &err) == FALSE);
  expect_error ("write to a missing dir", err, NCL_ERROR_IO, "x.safetensors",
      NULL);
  g_clear_error (&err);

  ncl_safetensors_writer_add (w, "x", NCL_DTYPE_F32, 1, shape, &v);
  NCL_CHECK (ncl_safetensors_writer_write (w, path, &err) == FALSE);
  expect_error ("write duplicate", err, NCL_ERROR_FAILED, "tensor 'x'", NULL);
  NCL_CHECK (!g_file_test (path, G_FILE_TEST_EXISTS));
}

/* ---------------------------------------------------------------------- */
/* corrupt files */

typedef struct
{
  const gchar *file;
  const gchar *header;          /* JSON; NULL: the file is data_len bytes */
  gint64 header_len;            /* -1: the JSON's length */
  gsize data_len;
  NclError code;
  const gchar *tensor;          /* must be named, or NULL */
  const gchar *expect;          /* another substring of the message */
} CorruptCase;

#define T4 "\"dtype\":\"F32\",\"shape\":[4]"

static const CorruptCase corrupt_cases[] = {
  {"empty.safetensors", NULL, 0, 0, NCL_ERROR_INVALID_MODEL, NULL,
      "too short"},
  {"tiny.safetensors", NULL, 0, 5, NCL_ERROR_INVALID_MODEL, NULL,
      "5 bytes"},
  {"len-too-big.safetensors", "{}", 1000, 10, NCL_ERROR_INVALID_MODEL, NULL,
      "header length 1000 is larger"},
  {"len-huge.safetensors", "{}", G_MAXINT64, 10, NCL_ERROR_INVALID_MODEL,
      NULL, "header length"},
  {"len-zero.safetensors", "", 0, 10, NCL_ERROR_INVALID_MODEL, NULL,
      "too small"},
  {"bad-json.safetensors", "{\"a\": {\"dtype\": ", -1, 0,
      NCL_ERROR_INVALID_MODEL, NULL, "not valid JSON"},
  {"array.safetensors", "[1, 2, 3]", -1, 0, NCL_ERROR_INVALID_MODEL, NULL,
      "expected a JSON object"},
  {"nul.safetensors", "{\"a\"\0:1}", 9, 0, NCL_ERROR_INVALID_MODEL, NULL,
      "NUL"},
  {"bf16.safetensors", "{\"w.bf\":{\"dtype\":\"BF16\",\"shape\":[2],"
        "\"data_offsets\":[0,4]}}", -1, 4, NCL_ERROR_INVALID_MODEL, "w.bf",
      "unsupported dtype 'BF16'"},
  {"dtype-num.safetensors", "{\"w\":{\"dtype\":4,\"shape\":[1],"
        "\"data_offsets\":[0,4]}}", -1, 4, NCL_ERROR_INVALID_MODEL, "w",
      "dtype is a number"},
  {"no-dtype.safetensors", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}",
      -1, 4, NCL_ERROR_INVALID_MODEL, "w", "no dtype"},
  {"no-shape.safetensors", "{\"w\":{\"dtype\":\"F32\","
        "\"data_offsets\":[0,4]}}", -1, 4, NCL_ERROR_INVALID_MODEL, "w",
      "no shape"},
  {"no-offsets.safetensors", "{\"w\":{" T4 "}}", -1, 16,
      NCL_ERROR_INVALID_MODEL, "w", "no data_offsets"},
  {"entry-string.safetensors", "{\"w\":\"F32\"}", -1, 0,
      NCL_ERROR_INVALID_MODEL, "w", "entry is a string"},
  {"out-of-range.safetensors", "{\"conv.w\":{" T4 ",\"data_offsets\":"
        "[0,16]}}", -1, 12, NCL_ERROR_INVALID_MODEL, "conv.w",
      "past the end of the data section (12 bytes)"},
  {"mismatch.safetensors", "{\"conv1.weight\":{\"dtype\":\"F32\","
        "\"shape\":[4,6],\"data_offsets\":[0,100]}}", -1, 100,
        NCL_ERROR_INVALID_MODEL, "conv1.weight",
      "data_offsets [0, 100] span 100 bytes, but F32 [4, 6] needs 96"},
  {"f16-size.safetensors", "{\"h\":{\"dtype\":\"F16\",\"shape\":[4],"
        "\"data_offsets\":[0,16]}}", -1, 16, NCL_ERROR_INVALID_MODEL, "h",
      "needs 8"},
  {"reversed.safetensors", "{\"w\":{" T4 ",\"data_offsets\":[16,0]}}", -1,
      16, NCL_ERROR_INVALID_MODEL, "w", "end is before begin"},
  {"overlap.safetensors", "{\"first\":{" T4 ",\"data_offsets\":[0,16]},"
        "\"second\":{" T4 ",\"data_offsets\":[8,24]}}", -1, 24,
      NCL_ERROR_INVALID_MODEL, "second", "overlap tensor 'first' [0, 16]"},
  {"contained.safetensors", "{\"big\":{\"dtype\":\"F32\",\"shape\":[8],"
        "\"data_offsets\":[0,32]},\"mid\":{" T4 ",\"data_offsets\":[4,20]},"
        "\"tail\":{" T4 ",\"data_offsets\":[20,36]}}", -1, 36,
      NCL_ERROR_INVALID_MODEL, "mid", "overlap tensor 'big'"},
  {"negative-shape.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1,4],"
        "\"data_offsets\":[0,16]}}", -1, 16, NCL_ERROR_INVALID_MODEL, "w",
      "shape[0] is -1"},
  {"float-shape.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4.0],"
        "\"data_offsets\":[0,16]}}", -1, 16, NCL_ERROR_INVALID_MODEL, "w",
      "shape[0] is a fractional number"},
  {"shape-9d.safetensors", "{\"w\":{\"dtype\":\"F32\","
        "\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", -1, 4,
      NCL_ERROR_INVALID_MODEL, "w", "9 dims"},
  {"shape-overflow.safetensors", "{\"w\":{\"dtype\":\"F32\","
        "\"shape\":[4294967296,4294967296,4],\"data_offsets\":[0,16]}}", -1,
        16, NCL_ERROR_INVALID_MODEL, "w", "too many elements"},
  {"shape-wrap.safetensors", "{\"w\":{\"dtype\":\"I64\","
        "\"shape\":[2305843009213693952],\"data_offsets\":[0,0]}}", -1, 16,
      NCL_ERROR_INVALID_MODEL, "w", "needs more than"},
  {"offsets-3.safetensors", "{\"w\":{" T4 ",\"data_offsets\":[0,8,16]}}",
        -1, 16, NCL_ERROR_INVALID_MODEL, "w", "data_offsets"},
  {"offsets-neg.safetensors", "{\"w\":{" T4 ",\"data_offsets\":[-16,0]}}",
        -1, 16, NCL_ERROR_INVALID_MODEL, "w", "data_offsets[0]"},
  {"meta-int.safetensors", "{\"__metadata__\":{\"epochs\":3}}", -1, 0,
      NCL_ERROR_INVALID_MODEL, NULL, "entry 'epochs' is a number"},
  {"meta-array.safetensors", "{\"__metadata__\":[]}", -1, 0,
      NCL_ERROR_INVALID_MODEL, NULL, "__metadata__ is an array"},
};

/* Writes the 8-byte length, the header and @data_len bytes of data. */
static gchar *
write_corrupt (const CorruptCase * c)
{
  g_autoptr (GByteArray) bytes = g_byte_array_new ();
  gchar *path = g_build_filename (tmpdir, c->file, NULL);
  g_autoptr (GError) err = NULL;

  if (c->header != NULL) {
    /* a small declared length is the real one (a header with a NUL in
     * it); a large one lies about the JSON that follows */
    gsize json_len = c->header_len > 0 && c->header_len < 64 ?
        (gsize) c->header_len : strlen (c->header);
    guint64 len = c->header_len >= 0 ? (guint64) c->header_len : json_len;
    guint8 le[8];

    for (gint i = 0; i < 8; i++)
      le[i] = (len >> (8 * i)) & 0xff;
    g_byte_array_append (bytes, le, 8);
    g_byte_array_append (bytes, (const guint8 *) c->header, json_len);
  }
  for (gsize i = 0; i < c->data_len; i++) {
    guint8 b = 0x3c;

    g_byte_array_append (bytes, &b, 1);
  }
  if (!g_file_set_contents (path, (const gchar *) bytes->data, bytes->len,
          &err))
    g_error ("%s: %s", path, err->message);
  return path;
}

static void
test_corrupt (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (corrupt_cases); i++) {
    const CorruptCase *c = &corrupt_cases[i];
    g_autofree gchar *path = write_corrupt (c);
    g_autofree gchar *quoted = NULL;
    g_autoptr (NclSafetensors) st = NULL;
    g_autoptr (GError) err = NULL;

    st = ncl_safetensors_load (path, &err);
    NCL_CHECK (st == NULL);
    if (c->tensor)
      quoted = g_strdup_printf ("tensor '%s'", c->tensor);
    expect_error (c->file, err, c->code, c->file, c->expect,
        quoted ? quoted : c->file, NULL);
  }
}

static void
test_missing_and_unreadable (void)
{
  g_autofree gchar *missing = g_build_filename (tmpdir, "missing.safetensors",
      NULL);
  g_autoptr (GError) err = NULL;

  NCL_CHECK (ncl_safetensors_load (missing, &err) == NULL);
  expect_error ("missing file", err, NCL_ERROR_NOT_FOUND,
      "missing.safetensors: No such file", NULL);
  g_clear_error (&err);

  NCL_CHECK (ncl_safetensors_load (tmpdir, &err) == NULL);
  expect_error ("directory", err, NCL_ERROR_IO, tmpdir, NULL);
  g_clear_error (&err);
}

/* A valid file with a tensor of every supported dtype and padding between
 * tensors (allowed: only overlaps are errors). */
static void
test_hand_built (void)
{
  static const CorruptCase ok = { "hand.safetensors",
    "{\"__metadata__\":{\"k\":\"v\"},"
        "\"i\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[8,16]},"
        "\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
        "\"f\":{\"dtype\":\"F32\",\"shape\":[1,1],\"data_offsets\":[0,4]}}",
    -1, 16, 0, NULL, NULL
  };
  g_autofree gchar *path = write_corrupt (&ok);
  g_autoptr (NclSafetensors) st = NULL;
  g_autoptr (GError) err = NULL;
  g_autofree gfloat *f = NULL;

  st = ncl_safetensors_load (path, &err);
  NCL_CHECK_NO_ERROR (err);
  if (st == NULL)
    return;
  NCL_CHECK (ncl_safetensors_get_n_tensors (st) == 3);
  NCL_CHECK (strcmp (ncl_safetensors_get_nth (st, 0)->name, "f") == 0);
  NCL_CHECK (strcmp (ncl_safetensors_get_nth (st, 1)->name, "z") == 0);
  NCL_CHECK (strcmp (ncl_safetensors_get_nth (st, 2)->name, "i") == 0);
  NCL_CHECK (g_strcmp0 (ncl_safetensors_get_metadata (st, "k"), "v") == 0);
  f = ncl_safetensors_read_f32 (st, "f", 0, NULL, &err);
  NCL_CHECK_NO_ERROR (err);
  /* bytes 3c 3c 3c 3c, little endian */
  NCL_CHECK (f && bits (f[0]) == 0x3c3c3c3c);
}

/* ---------------------------------------------------------------------- */

static void
test_mosaic (void)
{
  g_autofree gchar *path =
      ncl_test_shared_path ("data/style/pretrained/mosaic.safetensors");
  g_autoptr (NclSafetensors) st = NULL;
  g_autoptr (GError) err = NULL;
  g_autofree gfloat *w = NULL;
  const gint64 shape[] = { 32, 3, 9, 9 }, wrong[] = { 32, 3, 3, 3 };
  const NclSafetensor *t;
  gsize nonzero = 0, n = 32 * 3 * 9 * 9;

  st = ncl_safetensors_load (path, &err);
  NCL_CHECK_NO_ERROR (err);
  if (st == NULL)
    return;
  t = ncl_safetensors_lookup (st, "conv1.conv2d.weight");
  NCL_CHECK (t != NULL);
  if (t == NULL)
    return;
  NCL_CHECK (t->dtype == NCL_DTYPE_F16 && t->ndim == 4);
  NCL_CHECK (t->shape[0] == 32 && t->shape[1] == 3 && t->shape[2] == 9 &&
      t->shape[3] == 9);
  NCL_CHECK (t->nbytes == n * 2);
  NCL_CHECK (ncl_safetensors_get_metadata (st, "format") != NULL);

  w = ncl_safetensors_read_f32 (st, "conv1.conv2d.weight", 4, shape, &err);
  NCL_CHECK_NO_ERROR (err);
  for (gsize i = 0; w && i < n; i++) {
    NCL_CHECK (isfinite (w[i]));
    NCL_CHECK (fabsf (w[i]) < 100.0f);
    nonzero += w[i] != 0.0f;
  }
  NCL_CHECK (nonzero > n / 2);

  NCL_CHECK (ncl_safetensors_read_f32 (st, "conv1.conv2d.weight", 4, wrong,
          &err) == NULL);
  expect_error ("mosaic wrong shape", err, NCL_ERROR_INVALID_MODEL,
      "mosaic.safetensors: tensor 'conv1.conv2d.weight': shape [32, 3, 9, 9],"
      " expected [32, 3, 3, 3]", NULL);
  g_print ("ok mosaic (%" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT
      " weights non-zero, %u tensors)\n", nonzero, n,
      ncl_safetensors_get_n_tensors (st));
}

/* ---------------------------------------------------------------------- */

static void
test_half (void)
{
  guint bad = 0;

  /* every half value: widening is exact, narrowing gives it back */
  for (guint h = 0; h < 65536; h++) {
    gfloat f = ncl_half_to_float (h);
    guint16 back = ncl_float_to_half (f);
    gboolean is_nan = ((h >> 10) & 0x1f) == 0x1f && (h & 0x3ff) != 0;

    if (is_nan) {
      if (!isnan (f) || ((back >> 10) & 0x1f) != 0x1f || !(back & 0x3ff) ||
          (back & 0x8000) != (h & 0x8000))
        bad++;
    } else if (back != h) {
      if (bad < 5)
        g_printerr ("half 0x%04x -> %g -> 0x%04x\n", h, f, back);
      bad++;
    }
  }
  NCL_CHECK (bad == 0);

  /* reference points */
  NCL_CHECK (ncl_half_to_float (0x3c00) == 1.0f);
  NCL_CHECK (ncl_half_to_float (0xc000) == -2.0f);
  NCL_CHECK (ncl_half_to_float (0x7bff) == 65504.0f);
  NCL_CHECK (ncl_half_to_float (0x0400) == ldexpf (1.0f, -14));
  NCL_CHECK (ncl_half_to_float (0x0001) == ldexpf (1.0f, -24));
  NCL_CHECK (ncl_half_to_float (0x03ff) == ldexpf (1023.0f, -24));
  NCL_CHECK (ncl_half_to_float (0x3555) == 0.333251953125f);
  NCL_CHECK (isinf (ncl_half_to_float (0x7c00)) &&
      ncl_half_to_float (0x7c00) > 0);
  NCL_CHECK (isinf (ncl_half_to_float (0xfc00)) &&
      ncl_half_to_float (0xfc00) < 0);
  NCL_CHECK (isnan (ncl_half_to_float (0x7e00)));
  NCL_CHECK (bits (ncl_half_to_float (0x8000)) == 0x80000000u);

  /* rounding to nearest, ties to even */
  NCL_CHECK (ncl_float_to_half (65504.0f) == 0x7bff);
  NCL_CHECK (ncl_float_to_half (65519.99f) == 0x7bff);
  NCL_CHECK (ncl_float_to_half (65520.0f) == 0x7c00);
  NCL_CHECK (ncl_float_to_half (1e10f) == 0x7c00);
  NCL_CHECK (ncl_float_to_half (-1e10f) == 0xfc00);
  NCL_CHECK (ncl_float_to_half (INFINITY) == 0x7c00);
  NCL_CHECK (ncl_float_to_half (-INFINITY) == 0xfc00);
  NCL_CHECK ((ncl_float_to_half (NAN) & 0x7fff) > 0x7c00);
  NCL_CHECK (ncl_float_to_half (1.0f + ldexpf (1.0f, -11)) == 0x3c00);
  NCL_CHECK (ncl_float_to_half (1.0f + 3 * ldexpf (1.0f, -11)) == 0x3c02);
  NCL_CHECK (ncl_float_to_half (nextafterf (1.0f + ldexpf (1.0f, -11),
              2.0f)) == 0x3c01);
  NCL_CHECK (ncl_float_to_half (ldexpf (1.0f, -25)) == 0x0000);
  NCL_CHECK (ncl_float_to_half (nextafterf (ldexpf (1.0f, -25), 1.0f)) ==
      0x0001);
  NCL_CHECK (ncl_float_to_half (-ldexpf (1.0f, -26)) == 0x8000);
  NCL_CHECK (ncl_float_to_half (ldexpf (1.5f, -24)) == 0x0002);
  NCL_CHECK (ncl_float_to_half (ldexpf (2.5f, -24)) == 0x0002);
  NCL_CHECK (ncl_float_to_half (ldexpf (1023.5f, -24)) == 0x0400);
  NCL_CHECK (ncl_float_to_half (ldexpf (1.0f, -14)) == 0x0400);
  NCL_CHECK (ncl_float_to_half (1e-30f) == 0x0000);
  NCL_CHECK (ncl_float_to_half (0.1f) == 0x2e66);

#ifdef __FLT16_MANT_DIG__
  /* the compiler's own conversion agrees on a spread of float patterns */
  {
    guint32 s = 12345;
    guint mismatch = 0;

    for (guint i = 0; i < 2000000; i++) {
      gfloat f;
      _Float16 ref;
      guint16 rb;

      s ^= s << 13;
      s ^= s >> 17;
      s ^= s << 5;
      /* bias towards the half range: exponents around 2^-30 .. 2^20 */
      f = from_bits ((s & 0x807fffff) | ((97u + (s >> 8) % 50u) << 23));
      if (i % 4 == 0)
        f = from_bits (s);
      if (isnan (f))
        continue;
      ref = (_Float16) f;
      memcpy (&rb, &ref, 2);
      if (rb != ncl_float_to_half (f)) {
        if (mismatch < 5)
          g_printerr ("float %a: got 0x%04x, compiler 0x%04x\n", f,
              ncl_float_to_half (f), rb);
        mismatch++;
      }
    }
    NCL_CHECK (mismatch == 0);
    g_print ("ok half vs _Float16 (2M values)\n");
  }
#else
  (void) from_bits;
#endif
  g_print ("ok half conversions (65536 values)\n");
}

int
main (void)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (GDir) dir = NULL;
  const gchar *name;

  tmpdir = g_dir_make_tmp ("ncl-safetensors-XXXXXX", &err);
  g_assert_no_error (err);

  test_half ();
  test_round_trip ();
  test_empty_writer ();
  test_writer_errors ();
  test_corrupt ();
  test_missing_and_unreadable ();
  test_hand_built ();
  test_mosaic ();

  dir = g_dir_open (tmpdir, 0, NULL);
  while (dir && (name = g_dir_read_name (dir)) != NULL) {
    g_autofree gchar *p = g_build_filename (tmpdir, name, NULL);

    g_unlink (p);
  }
  g_rmdir (tmpdir);
  g_free (tmpdir);
  return ncl_test_finish ();
}
