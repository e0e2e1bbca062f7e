/* safetensors reader and writer.
 *
 * File layout: an unsigned 64-bit little-endian header length N, then N
 * bytes of JSON, then the data section.  The JSON object maps each tensor
 * name to {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
 * offsets counted from the start of the data section; the optional
 * "__metadata__" entry maps strings to strings.
 *
 * The loader maps the file and checks every field against the file size
 * before anything reads tensor data, so later code can trust the table.
 */

#include <neuralcl/safetensors.h>
#include <neuralcl/error.h>

#include <json-glib/json-glib.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

#include <glib/gstdio.h>

/* A header bigger than this is not a weights file we want to parse. */
#define MAX_HEADER_BYTES ((guint64) 100 * 1024 * 1024)

struct _NclSafetensors
{
  gchar *path;
  GMappedFile *map;
  const guint8 *data;           /* start of the data section */
  guint64 data_size;

  GArray *tensors;              /* NclSafetensor, sorted by offset */
  GHashTable *by_name;          /* name -> index + 1 */
  GHashTable *metadata;         /* gchar* -> gchar* */

  gchar *checksum;              /* computed on first request */
};

/* ---------------------------------------------------------------------- */
/* dtypes */

static const struct
{
  NclDType dtype;
  const gchar *name;
  gsize size;
} dtype_table[] = {
  {NCL_DTYPE_F32, "F32", 4},
  {NCL_DTYPE_F16, "F16", 2},
  {NCL_DTYPE_U8, "U8", 1},
  {NCL_DTYPE_I32, "I32", 4},
  {NCL_DTYPE_I64, "I64", 8},
};

const gchar *
ncl_dtype_to_string (NclDType dtype)
{
  for (guint i = 0; i < G_N_ELEMENTS (dtype_table); i++)
    if (dtype_table[i].dtype == dtype)
      return dtype_table[i].name;
  return "invalid";
}

gsize
ncl_dtype_size (NclDType dtype)
{
  for (guint i = 0; i < G_N_ELEMENTS (dtype_table); i++)
    if (dtype_table[i].dtype == dtype)
      return dtype_table[i].size;
  return 0;
}

static gboolean
dtype_from_string (const gchar * s, NclDType * dtype)
{
  for (guint i = 0; i < G_N_ELEMENTS (dtype_table); i++) {
    if (strcmp (dtype_table[i].name, s) == 0) {
      *dtype = dtype_table[i].dtype;
      return TRUE;
    }
  }
  return FALSE;
}

/* ---------------------------------------------------------------------- */
/* IEEE 754 binary16 */

static guint32
float_bits (gfloat f)
{
  guint32 u;

  memcpy (&u, &f, sizeof (u));
  return u;
}

static gfloat
bits_float (guint32 u)
{
  gfloat f;

  memcpy (&f, &u, sizeof (f));
  return f;
}

gfloat
ncl_half_to_float (guint16 h)
{
  guint32 sign = (guint32) (h & 0x8000) << 16;
  guint32 exp = (h >> 10) & 0x1f;
  guint32 mant = h & 0x3ff;

  if (exp == 0x1f)              /* inf, or NaN keeping its payload */
    return bits_float (sign | 0x7f800000 | (mant << 13));
  if (exp == 0) {
    gint e = 1;

    if (mant == 0)
      return bits_float (sign);
    /* subnormal: normalise so the implicit bit (0x400) is set */
    while ((mant & 0x400) == 0) {
      mant <<= 1;
      e--;
    }
    return bits_float (sign | ((guint32) (e + 112) << 23) |
        ((mant & 0x3ff) << 13));
  }
  return bits_float (sign | ((exp + 112) << 23) | (mant << 13));
}

guint16
ncl_float_to_half (gfloat f)
{
  guint32 u = float_bits (f);
  guint16 sign = (u >> 16) & 0x8000;
  guint32 a = u & 0x7fffffff;
  guint32 h, rem;

  if (a > 0x7f800000)           /* NaN: keep the top payload bits, stay NaN */
    return sign | 0x7e00 | ((a >> 13) & 0x3ff);
  if (a >= 0x477ff000)          /* >= 65520 rounds to infinity */
    return sign | 0x7c00;
  if (a < 0x38800000) {         /* below the smallest normal half (2^-14) */
    guint32 e = a >> 23;
    guint32 m, shift, half;

    if (e < 102)                /* below 2^-25: rounds to zero */
      return sign;
    /* result in units of 2^-24: m * 2^(e - 126), m with implicit bit */
    m = (a & 0x7fffff) | 0x800000;
    shift = 126 - e;            /* 14 .. 24 */
    h = m >> shift;
    rem = m & ((1u << shift) - 1);
    half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1)))
      h++;
    return sign | h;
  }
  /* normal: rebias the exponent (127 -> 15), round the low 13 bits to
   * nearest even; a carry into the exponent is the correct result */
  h = (a - 0x38000000) >> 13;
  rem = a & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
    h++;
  return sign | h;
}

/* ---------------------------------------------------------------------- */
/* loader */

static void
tensor_clear (gpointer p)
{
  NclSafetensor *t = p;

  g_free (t->name);
}

void
ncl_safetensors_free (NclSafetensors * st)
{
  if (st == NULL)
    return;
  g_clear_pointer (&st->checksum, g_free);
  g_clear_pointer (&st->metadata, g_hash_table_unref);
  g_clear_pointer (&st->by_name, g_hash_table_unref);
  g_clear_pointer (&st->tensors, g_array_unref);
  g_clear_pointer (&st->map, g_mapped_file_unref);
  g_clear_pointer (&st->path, g_free);
  g_free (st);
}

/* "[32, 3, 9, 9]" */
static gchar *
shape_to_string (gint ndim, const gint64 * shape)
{
  GString *s = g_string_new ("[");

  for (gint i = 0; i < ndim; i++)
    g_string_append_printf (s, "%s%" G_GINT64_FORMAT, i ? ", " : "",
        shape[i]);
  g_string_append_c (s, ']');
  return g_string_free (s, FALSE);
}

static const gchar *
json_type_name (JsonNode * node)
{
  switch (JSON_NODE_TYPE (node)) {
    case JSON_NODE_OBJECT:
      return "an object";
    case JSON_NODE_ARRAY:
      return "an array";
    case JSON_NODE_NULL:
      return "null";
    case JSON_NODE_VALUE:
      break;
  }
  switch (json_node_get_value_type (node)) {
    case G_TYPE_STRING:
      return "a string";
    case G_TYPE_BOOLEAN:
      return "a boolean";
    case G_TYPE_DOUBLE:
      return "a fractional number";
    default:
      return "a number";
  }
}

static gboolean
json_is_int (JsonNode * node)
{
  return JSON_NODE_HOLDS_VALUE (node) &&
      json_node_get_value_type (node) == G_TYPE_INT64;
}

static gboolean
parse_metadata (NclSafetensors * st, JsonNode * node, GError ** error)
{
  JsonObject *obj;
  g_autoptr (GList) members = NULL;

  if (!JSON_NODE_HOLDS_OBJECT (node)) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
        "%s: __metadata__ is %s, expected an object of strings", st->path,
        json_type_name (node));
    return FALSE;
  }
  obj = json_node_get_object (node);
  members = json_object_get_members (obj);
  for (GList * l = members; l; l = l->next) {
    const gchar *key = l->data;
    JsonNode *v = json_object_get_member (obj, key);

    if (!JSON_NODE_HOLDS_VALUE (v) ||
        json_node_get_value_type (v) != G_TYPE_STRING) {
      g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
          "%s: __metadata__ entry '%s' is %s, expected a string", st->path,
          key, json_type_name (v));
      return FALSE;
    }
    g_hash_table_replace (st->metadata, g_strdup (key),
        g_strdup (json_node_get_string (v)));
  }
  return TRUE;
}

/* Fills @t from the header entry @node; checks everything against the data
 * section size. */
static gboolean
parse_tensor (NclSafetensors * st, const gchar * name, JsonNode * node,
    NclSafetensor * t, GError ** error)
{
  JsonObject *obj;
  JsonNode *dtype_node, *shape_node, *offsets_node;
  JsonArray *shape_arr, *offsets_arr;
  const gchar *dtype_str;
  guint64 numel = 1, need, begin, end;
  gboolean huge = FALSE, zero = FALSE;
  g_autofree gchar *shape_str = NULL;

#define FAIL(...) G_STMT_START { \
    g_autofree gchar *msg_ = g_strdup_printf (__VA_ARGS__); \
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL, \
        "%s: tensor '%s': %s", st->path, name, msg_); \
    return FALSE; } G_STMT_END

  if (!JSON_NODE_HOLDS_OBJECT (node))
    FAIL ("entry is %s, expected an object with dtype, shape and "
        "data_offsets", json_type_name (node));
  obj = json_node_get_object (node);

  dtype_node = json_object_get_member (obj, "dtype");
  if (dtype_node == NULL)
    FAIL ("no dtype");
  if (!JSON_NODE_HOLDS_VALUE (dtype_node) ||
      json_node_get_value_type (dtype_node) != G_TYPE_STRING)
    FAIL ("dtype is %s, expected a string", json_type_name (dtype_node));
  dtype_str = json_node_get_string (dtype_node);
  if (!dtype_from_string (dtype_str, &t->dtype))
    FAIL ("unsupported dtype '%s' (supported: F32, F16, U8, I32, I64)",
        dtype_str);

  shape_node = json_object_get_member (obj, "shape");
  if (shape_node == NULL)
    FAIL ("no shape");
  if (!JSON_NODE_HOLDS_ARRAY (shape_node))
    FAIL ("shape is %s, expected an array", json_type_name (shape_node));
  shape_arr = json_node_get_array (shape_node);
  if (json_array_get_length (shape_arr) > NCL_SAFETENSOR_MAX_DIMS)
    FAIL ("shape has %u dims, at most %d are supported",
        json_array_get_length (shape_arr), NCL_SAFETENSOR_MAX_DIMS);
  t->ndim = json_array_get_length (shape_arr);
  for (gint i = 0; i < t->ndim; i++) {
    JsonNode *d = json_array_get_element (shape_arr, i);
    gint64 v;

    if (!json_is_int (d))
      FAIL ("shape[%d] is %s, expected a non-negative integer", i,
          json_type_name (d));
    v = json_node_get_int (d);
    if (v < 0)
      FAIL ("shape[%d] is %" G_GINT64_FORMAT ", dimensions must be "
          "non-negative", i, v);
    t->shape[i] = v;
    if (v == 0)
      zero = TRUE;
    else if (numel > G_MAXINT64 / (guint64) v)
      huge = TRUE;
    else
      numel *= (guint64) v;
  }
  shape_str = shape_to_string (t->ndim, t->shape);
  if (zero)
    numel = 0;
  else if (huge)
    FAIL ("shape %s has too many elements", shape_str);

  offsets_node = json_object_get_member (obj, "data_offsets");
  if (offsets_node == NULL)
    FAIL ("no data_offsets");
  if (!JSON_NODE_HOLDS_ARRAY (offsets_node) ||
      json_array_get_length (json_node_get_array (offsets_node)) != 2)
    FAIL ("data_offsets is not an array [begin, end]");
  offsets_arr = json_node_get_array (offsets_node);
  for (guint i = 0; i < 2; i++) {
    JsonNode *o = json_array_get_element (offsets_arr, i);

    if (!json_is_int (o) || json_node_get_int (o) < 0)
      FAIL ("data_offsets[%u] is not a non-negative integer", i);
  }
  begin = json_node_get_int (json_array_get_element (offsets_arr, 0));
  end = json_node_get_int (json_array_get_element (offsets_arr, 1));
  if (begin > end)
    FAIL ("data_offsets [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT "]: "
        "end is before begin", begin, end);
  if (end > st->data_size)
    FAIL ("data_offsets [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT "] "
        "run past the end of the data section (%" G_GUINT64_FORMAT " bytes); "
        "file truncated?", begin, end, st->data_size);
  /* numel is below 2^63 but numel * 8 may still wrap: compare numel with
   * the data size first, a tensor never has more elements than bytes */
  need = numel * ncl_dtype_size (t->dtype);
  if (numel > st->data_size || end - begin != need)
    FAIL ("data_offsets [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT "] "
        "span %" G_GUINT64_FORMAT " bytes, but %s %s needs %s%"
        G_GUINT64_FORMAT, begin, end, end - begin, dtype_str, shape_str,
        numel > st->data_size ? "more than " : "",
        numel > st->data_size ? st->data_size : need);
#undef FAIL

  t->name = g_strdup (name);
  t->offset = begin;
  t->nbytes = end - begin;
  return TRUE;
}

static gint
compare_by_offset (gconstpointer a, gconstpointer b)
{
  const NclSafetensor *ta = a, *tb = b;

  if (ta->offset != tb->offset)
    return ta->offset < tb->offset ? -1 : 1;
  if (ta->nbytes != tb->nbytes)
    return ta->nbytes < tb->nbytes ? -1 : 1;
  return strcmp (ta->name, tb->name);
}

static gboolean
check_overlaps (NclSafetensors * st, GError ** error)
{
  const NclSafetensor *prev = NULL;

  for (guint i = 0; i < st->tensors->len; i++) {
    const NclSafetensor *t = &g_array_index (st->tensors, NclSafetensor, i);

    if (t->nbytes == 0)         /* an empty range overlaps nothing */
      continue;
    if (prev && t->offset < prev->offset + prev->nbytes) {
      g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
          "%s: tensor '%s': data_offsets [%" G_GSIZE_FORMAT ", %"
          G_GSIZE_FORMAT "] overlap tensor '%s' [%" G_GSIZE_FORMAT ", %"
          G_GSIZE_FORMAT "]", st->path, t->name, t->offset,
          t->offset + t->nbytes, prev->name, prev->offset,
          prev->offset + prev->nbytes);
      return FALSE;
    }
    if (prev == NULL || t->offset + t->nbytes > prev->offset + prev->nbytes)
      prev = t;
  }
  return TRUE;
}

static gboolean
parse_header (NclSafetensors * st, const gchar * json, gsize len,
    GError ** error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) json_error = NULL;
  g_autoptr (GList) members = NULL;
  JsonNode *root;
  JsonObject *obj;

  /* json-glib stops at a NUL; the header must not contain one */
  if (memchr (json, '\0', len) != NULL) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
        "%s: header contains a NUL byte; not a safetensors file?", st->path);
    return FALSE;
  }
  if (!json_parser_load_from_data (parser, json, len, &json_error)) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
        "%s: header is not valid JSON: %s", st->path, json_error->message);
    return FALSE;
  }
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root)) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
        "%s: header is %s, expected a JSON object", st->path,
        root ? json_type_name (root) : "empty");
    return FALSE;
  }
  obj = json_node_get_object (root);
  members = json_object_get_members (obj);
  for (GList * l = members; l; l = l->next) {
    const gchar *name = l->data;
    JsonNode *node = json_object_get_member (obj, name);
    NclSafetensor t = { 0 };

    if (strcmp (name, "__metadata__") == 0) {
      if (!parse_metadata (st, node, error))
        return FALSE;
      continue;
    }
    if (!parse_tensor (st, name, node, &t, error))
      return FALSE;
    g_array_append_val (st->tensors, t);
  }

  g_array_sort (st->tensors, compare_by_offset);
  for (guint i = 0; i < st->tensors->len; i++) {
    NclSafetensor *t = &g_array_index (st->tensors, NclSafetensor, i);

    g_hash_table_insert (st->by_name, t->name, GUINT_TO_POINTER (i + 1));
  }
  return check_overlaps (st, error);
}

static GMappedFile *
map_file (const gchar * path, GError ** error)
{
  GMappedFile *map;
  GStatBuf sb;
  gint fd, saved;

  fd = g_open (path, O_RDONLY, 0);
  if (fd < 0) {
    saved = errno;
    if (saved == ENOENT || saved == ENOTDIR)
      g_set_error (error, NCL_ERROR, NCL_ERROR_NOT_FOUND,
          "%s: No such file", path);
    else
      g_set_error (error, NCL_ERROR, NCL_ERROR_IO, "%s: cannot open: %s",
          path, g_strerror (saved));
    return NULL;
  }
  if (fstat (fd, &sb) == 0 && !S_ISREG (sb.st_mode)) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_IO, "%s: not a regular file",
        path);
    g_close (fd, NULL);
    return NULL;
  }
  map = g_mapped_file_new_from_fd (fd, FALSE, NULL);
  saved = errno;
  g_close (fd, NULL);
  if (map == NULL)
    g_set_error (error, NCL_ERROR, NCL_ERROR_IO, "%s: cannot map: %s", path,
        g_strerror (saved));
  return map;
}

NclSafetensors *
ncl_safetensors_load (const gchar * path, GError ** error)
{
  g_autoptr (NclSafetensors) st = NULL;
  const guint8 *contents;
  guint64 size, header_len = 0;

  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  st = g_new0 (NclSafetensors, 1);
  st->path = g_strdup (path);
  st->tensors = g_array_new (FALSE, TRUE, sizeof (NclSafetensor));
  g_array_set_clear_func (st->tensors, tensor_clear);
  st->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  st->metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      g_free);

  st->map = map_file (path, error);
  if (st->map == NULL)
    return NULL;
  contents = (const guint8 *) g_mapped_file_get_contents (st->map);
  size = g_mapped_file_get_length (st->map);

  if (size < 8) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
        "%s: file is %" G_GUINT64_FORMAT " bytes, too short for the 8-byte "
        "safetensors header length", path, size);
    return NULL;
  }
  for (gint i = 7; i >= 0; i--)
    header_len = (header_len << 8) | contents[i];
  if (header_len > size - 8) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
        "%s: header length %" G_GUINT64_FORMAT " is larger than the rest "
        "of the file (%" G_GUINT64_FORMAT " bytes); truncated, or not a "
        "safetensors file?", path, header_len, size - 8);
    return NULL;
  }
  if (header_len > MAX_HEADER_BYTES) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
        "%s: header length %" G_GUINT64_FORMAT " exceeds the limit of %"
        G_GUINT64_FORMAT " bytes", path, header_len, MAX_HEADER_BYTES);
    return NULL;
  }
  if (header_len < 2) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
        "%s: header length %" G_GUINT64_FORMAT " is too small for a JSON "
        "object", path, header_len);
    return NULL;
  }
  st->data = contents + 8 + header_len;
  st->data_size = size - 8 - header_len;

  if (!parse_header (st, (const gchar *) contents + 8, header_len, error))
    return NULL;
  return g_steal_pointer (&st);
}

const gchar *
ncl_safetensors_get_path (const NclSafetensors * st)
{
  g_return_val_if_fail (st != NULL, NULL);
  return st->path;
}

guint
ncl_safetensors_get_n_tensors (const NclSafetensors * st)
{
  g_return_val_if_fail (st != NULL, 0);
  return st->tensors->len;
}

const NclSafetensor *
ncl_safetensors_get_nth (const NclSafetensors * st, guint i)
{
  g_return_val_if_fail (st != NULL, NULL);
  if (i >= st->tensors->len)
    return NULL;
  return &g_array_index (st->tensors, NclSafetensor, i);
}

const NclSafetensor *
ncl_safetensors_lookup (const NclSafetensors * st, const gchar * name)
{
  guint idx;

  g_return_val_if_fail (st != NULL, NULL);
  g_return_val_if_fail (name != NULL, NULL);
  idx = GPOINTER_TO_UINT (g_hash_table_lookup (st->by_name, name));
  if (idx == 0)
    return NULL;
  return &g_array_index (st->tensors, NclSafetensor, idx - 1);
}

const gchar *
ncl_safetensors_get_metadata (const NclSafetensors * st, const gchar * key)
{
  g_return_val_if_fail (st != NULL, NULL);
  g_return_val_if_fail (key != NULL, NULL);
  return g_hash_table_lookup (st->metadata, key);
}

const guint8 *
ncl_safetensors_get_data (const NclSafetensors * st, const NclSafetensor * t)
{
  g_return_val_if_fail (st != NULL, NULL);
  g_return_val_if_fail (t != NULL, NULL);
  g_return_val_if_fail (t->offset + t->nbytes <= st->data_size, NULL);
  return st->data + t->offset;
}

const gchar *
ncl_safetensors_get_checksum (const NclSafetensors * st)
{
  gchar **slot;

  g_return_val_if_fail (st != NULL, NULL);
  /* lazily computed; g_once makes that safe on a shared, const object */
  slot = (gchar **) & st->checksum;
  if (g_once_init_enter (slot)) {
    gchar *sum = g_compute_checksum_for_data (G_CHECKSUM_SHA256,
        (const guchar *) g_mapped_file_get_contents (st->map),
        g_mapped_file_get_length (st->map));

    g_once_init_leave (slot, sum);
  }
  return st->checksum;
}

gfloat *
ncl_safetensors_read_f32 (const NclSafetensors * st, const gchar * name,
    gint ndim, const gint64 * shape, GError ** error)
{
  const NclSafetensor *t;
  const guint8 *src;
  gfloat *out;
  gsize numel;

  g_return_val_if_fail (st != NULL, NULL);
  g_return_val_if_fail (name != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  t = ncl_safetensors_lookup (st, name);
  if (t == NULL) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
        "%s: tensor '%s': missing", st->path, name);
    return NULL;
  }
  if (t->dtype != NCL_DTYPE_F32 && t->dtype != NCL_DTYPE_F16) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
        "%s: tensor '%s': dtype %s, expected F32 or F16", st->path, name,
        ncl_dtype_to_string (t->dtype));
    return NULL;
  }
  if (shape != NULL) {
    gboolean same = ndim == t->ndim;

    for (gint i = 0; same && i < ndim; i++)
      same = shape[i] == t->shape[i];
    if (!same) {
      g_autofree gchar *got = shape_to_string (t->ndim, t->shape);
      g_autofree gchar *want = shape_to_string (ndim, shape);

      g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
          "%s: tensor '%s': shape %s, expected %s", st->path, name, got,
          want);
      return NULL;
    }
  }

  numel = t->nbytes / ncl_dtype_size (t->dtype);
  out = g_new (gfloat, MAX (numel, 1));
  src = st->data + t->offset;
  if (t->dtype == NCL_DTYPE_F32) {
    for (gsize i = 0; i < numel; i++) {
      guint32 u;

      memcpy (&u, src + 4 * i, 4);
      out[i] = bits_float (GUINT32_FROM_LE (u));
    }
  } else {
    for (gsize i = 0; i < numel; i++) {
      guint16 h;

      memcpy (&h, src + 2 * i, 2);
      out[i] = ncl_half_to_float (GUINT16_FROM_LE (h));
    }
  }
  return out;
}

/* ---------------------------------------------------------------------- */
/* writer */

typedef struct
{
  gchar *name;
  NclDType dtype;
  gint ndim;
  gint64 shape[NCL_SAFETENSOR_MAX_DIMS];
  GBytes *bytes;                /* little-endian, in @dtype */
} WriterEntry;

struct _NclSafetensorsWriter
{
  GPtrArray *entries;           /* WriterEntry, insertion order */
  GPtrArray *meta;              /* key, value, key, value, ... */
};

static void
writer_entry_free (gpointer p)
{
  WriterEntry *e = p;

  g_free (e->name);
  g_bytes_unref (e->bytes);
  g_free (e);
}

NclSafetensorsWriter *
ncl_safetensors_writer_new (void)
{
  NclSafetensorsWriter *w = g_new0 (NclSafetensorsWriter, 1);

  w->entries = g_ptr_array_new_with_free_func (writer_entry_free);
  w->meta = g_ptr_array_new_with_free_func (g_free);
  return w;
}

void
ncl_safetensors_writer_free (NclSafetensorsWriter * w)
{
  if (w == NULL)
    return;
  g_ptr_array_unref (w->meta);
  g_ptr_array_unref (w->entries);
  g_free (w);
}

void
ncl_safetensors_writer_add_metadata (NclSafetensorsWriter * w,
    const gchar * key, const gchar * value)
{
  g_return_if_fail (w != NULL);
  g_return_if_fail (key != NULL && value != NULL);

  /* a repeated key keeps its place and takes the new value */
  for (guint i = 0; i < w->meta->len; i += 2) {
    if (strcmp (w->meta->pdata[i], key) == 0) {
      g_free (w->meta->pdata[i + 1]);
      w->meta->pdata[i + 1] = g_strdup (value);
      return;
    }
  }
  g_ptr_array_add (w->meta, g_strdup (key));
  g_ptr_array_add (w->meta, g_strdup (value));
}

static gint64
round_clamp (gfloat f, gdouble lo, gdouble hi)
{
  gdouble d = isnan (f) ? 0.0 : rint (f);

  return (gint64) CLAMP (d, lo, hi);
}

void
ncl_safetensors_writer_add (NclSafetensorsWriter * w, const gchar * name,
    NclDType dtype, gint ndim, const gint64 * shape, const gfloat * data)
{
  WriterEntry *e;
  gsize numel = 1, esize = ncl_dtype_size (dtype);
  guint8 *buf;

  g_return_if_fail (w != NULL);
  g_return_if_fail (name != NULL);
  g_return_if_fail (esize != 0);
  g_return_if_fail (ndim >= 0 && ndim <= NCL_SAFETENSOR_MAX_DIMS);
  g_return_if_fail (ndim == 0 || shape != NULL);
  for (gint i = 0; i < ndim; i++) {
    g_return_if_fail (shape[i] >= 0);
    numel *= shape[i];
  }
  g_return_if_fail (numel == 0 || data != NULL);

  e = g_new0 (WriterEntry, 1);
  e->name = g_strdup (name);
  e->dtype = dtype;
  e->ndim = ndim;
  for (gint i = 0; i < ndim; i++)
    e->shape[i] = shape[i];

  buf = g_malloc (numel * esize + 1);
  for (gsize i = 0; i < numel; i++) {
    guint8 *p = buf + i * esize;

    switch (dtype) {
      case NCL_DTYPE_F32:{
        guint32 u = GUINT32_TO_LE (float_bits (data[i]));
        memcpy (p, &u, 4);
        break;
      }
      case NCL_DTYPE_F16:{
        guint16 h = GUINT16_TO_LE (ncl_float_to_half (data[i]));
        memcpy (p, &h, 2);
        break;
      }
      case NCL_DTYPE_U8:
        *p = (guint8) round_clamp (data[i], 0, 255);
        break;
      case NCL_DTYPE_I32:{
        guint32 u = GUINT32_TO_LE ((guint32) (gint32) round_clamp (data[i],
                G_MININT32, G_MAXINT32));
        memcpy (p, &u, 4);
        break;
      }
      case NCL_DTYPE_I64:{
        /* 2^63 is not representable as int64: clamp just below it */
        guint64 u = GUINT64_TO_LE ((guint64) round_clamp (data[i],
                (gdouble) G_MININT64, 9223372036854774784.0));
        memcpy (p, &u, 8);
        break;
      }
    }
  }
  e->bytes = g_bytes_new_take (buf, numel * esize);
  g_ptr_array_add (w->entries, e);
}

/* The JSON header, padded with spaces so the data section starts 8-byte
 * aligned in the file. */
static gchar *
writer_header (NclSafetensorsWriter * w, gsize * len)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = NULL;
  GString *s;
  guint64 offset = 0;
  gsize n;
  gchar *json;

  json_builder_begin_object (b);
  if (w->meta->len > 0) {
    json_builder_set_member_name (b, "__metadata__");
    json_builder_begin_object (b);
    for (guint i = 0; i < w->meta->len; i += 2) {
      json_builder_set_member_name (b, w->meta->pdata[i]);
      json_builder_add_string_value (b, w->meta->pdata[i + 1]);
    }
    json_builder_end_object (b);
  }
  for (guint i = 0; i < w->entries->len; i++) {
    WriterEntry *e = w->entries->pdata[i];
    gsize nbytes = g_bytes_get_size (e->bytes);

    json_builder_set_member_name (b, e->name);
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "dtype");
    json_builder_add_string_value (b, ncl_dtype_to_string (e->dtype));
    json_builder_set_member_name (b, "shape");
    json_builder_begin_array (b);
    for (gint d = 0; d < e->ndim; d++)
      json_builder_add_int_value (b, e->shape[d]);
    json_builder_end_array (b);
    json_builder_set_member_name (b, "data_offsets");
    json_builder_begin_array (b);
    json_builder_add_int_value (b, offset);
    json_builder_add_int_value (b, offset + nbytes);
    json_builder_end_array (b);
    json_builder_end_object (b);
    offset += nbytes;
  }
  json_builder_end_object (b);

  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  json = json_generator_to_data (gen, &n);
  s = g_string_new_len (json, n);
  g_free (json);
  while (s->len % 8 != 0)
    g_string_append_c (s, ' ');
  *len = s->len;
  return g_string_free (s, FALSE);
}

gboolean
ncl_safetensors_writer_write (NclSafetensorsWriter * w, const gchar * path,
    GError ** error)
{
  g_autoptr (GHashTable) names = NULL;
  g_autoptr (GByteArray) out = NULL;
  g_autoptr (GError) file_error = NULL;
  g_autofree gchar *header = NULL;
  gsize header_len;
  guint64 len_le;

  g_return_val_if_fail (w != NULL, FALSE);
  g_return_val_if_fail (path != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  names = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < w->entries->len; i++) {
    WriterEntry *e = w->entries->pdata[i];

    if (strcmp (e->name, "__metadata__") == 0 ||
        !g_hash_table_add (names, e->name)) {
      g_set_error (error, NCL_ERROR, NCL_ERROR_FAILED,
          "%s: tensor '%s': %s", path, e->name,
          g_hash_table_contains (names, e->name) ? "added twice" :
          "reserved name");
      return FALSE;
    }
  }

  header = writer_header (w, &header_len);
  out = g_byte_array_new ();
  len_le = GUINT64_TO_LE ((guint64) header_len);
  g_byte_array_append (out, (const guint8 *) &len_le, 8);
  g_byte_array_append (out, (const guint8 *) header, header_len);
  for (guint i = 0; i < w->entries->len; i++) {
    WriterEntry *e = w->entries->pdata[i];
    gsize n;
    gconstpointer p = g_bytes_get_data (e->bytes, &n);

    g_byte_array_append (out, p, n);
  }

  if (!g_file_set_contents (path, (const gchar *) out->data, out->len,
          &file_error)) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_IO, "%s: cannot write: %s",
        path, file_error->message);
    return FALSE;
  }
  return TRUE;
}
