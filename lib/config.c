/* YAML helpers on top of libyaml's event API.
 *
 * The parser turns the event stream into a small tree of NclYamlNode with
 * 1-based positions (libyaml marks + 1), parent links and the key or index
 * under which each node sits, so that any later check can say where a bad
 * value is: "model.yaml:12:14: stride: 0 is out of range [1, 8] (at
 * layers[3].stride)".
 *
 * Anchors and aliases are supported by copying the anchored node; the YAML
 * 1.1 merge key "<<" is supported too.  Only one document per stream.
 */

#include <neuralcl/config.h>
#include <neuralcl/error.h>

#include <yaml.h>

#include <errno.h>
#include <math.h>
#include <string.h>

/* Limits that keep hostile input (alias bombs, deep nesting) cheap. */
#define MAX_NODES (1u << 18)
#define MAX_DEPTH 256

struct _NclYamlNode
{
  NclYamlType type;
  guint line;
  guint column;
  gchar *scalar;                /* scalars */
  gboolean plain;               /* scalar written without quotes */
  GPtrArray *children;          /* mappings and sequences: values */
  GPtrArray *keys;              /* mappings: key nodes, parallel */
  NclYamlNode *parent;
  const gchar *key;             /* key in a parent mapping */
  guint index;                  /* position in the parent */
  gboolean is_key;              /* a mapping key (its path is the map's) */
  gboolean open;                /* start seen, end not yet */
};

struct _NclYamlDoc
{
  gchar *path;
  gchar *dir;                   /* NULL for a string document */
  NclYamlNode *root;
  GPtrArray *nodes;             /* owns every node */
};

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (yaml_parser_t, yaml_parser_delete)
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (yaml_event_t, yaml_event_delete)

/* ---------------------------------------------------------------------- */
/* nodes */

static void
node_free (gpointer p)
{
  NclYamlNode *node = p;

  g_free (node->scalar);
  g_clear_pointer (&node->children, g_ptr_array_unref);
  g_clear_pointer (&node->keys, g_ptr_array_unref);
  g_free (node);
}

static NclYamlNode *
node_new (NclYamlDoc * doc, NclYamlType type, guint line, guint column)
{
  NclYamlNode *node = g_new0 (NclYamlNode, 1);

  node->type = type;
  node->line = line;
  node->column = column;
  if (type != NCL_YAML_SCALAR)
    node->children = g_ptr_array_new ();
  if (type == NCL_YAML_MAPPING)
    node->keys = g_ptr_array_new ();
  g_ptr_array_add (doc->nodes, node);
  return node;
}

static const gchar *
type_name (const NclYamlNode * node)
{
  switch (node->type) {
    case NCL_YAML_MAPPING:
      return "a mapping";
    case NCL_YAML_SEQUENCE:
      return "a sequence";
    case NCL_YAML_SCALAR:
      break;
  }
  return "a scalar";
}

static gboolean
is_null (const NclYamlNode * node)
{
  const gchar *s = node->scalar;

  return node->type == NCL_YAML_SCALAR && node->plain &&
      (s[0] == '\0' || strcmp (s, "~") == 0 || strcmp (s, "null") == 0 ||
      strcmp (s, "Null") == 0 || strcmp (s, "NULL") == 0);
}

NclYamlType
ncl_yaml_node_get_type (const NclYamlNode * node)
{
  g_return_val_if_fail (node != NULL, NCL_YAML_SCALAR);
  return node->type;
}

guint
ncl_yaml_node_get_line (const NclYamlNode * node)
{
  g_return_val_if_fail (node != NULL, 0);
  return node->line;
}

guint
ncl_yaml_node_get_column (const NclYamlNode * node)
{
  g_return_val_if_fail (node != NULL, 0);
  return node->column;
}

static void
append_key_path (GString * s, const NclYamlNode * node)
{
  const NclYamlNode *parent = node->parent;

  if (parent == NULL)
    return;
  append_key_path (s, parent);
  if (node->is_key)             /* a key is reported in its mapping */
    return;
  if (parent->type == NCL_YAML_MAPPING) {
    if (s->len > 0)
      g_string_append_c (s, '.');
    g_string_append (s, node->key);
  } else {
    g_string_append_printf (s, "[%u]", node->index);
  }
}

gchar *
ncl_yaml_node_get_key_path (const NclYamlNode * node)
{
  GString *s;

  g_return_val_if_fail (node != NULL, NULL);
  s = g_string_new (NULL);
  append_key_path (s, node);
  return g_string_free (s, FALSE);
}

const gchar *
ncl_yaml_node_get_scalar (const NclYamlNode * node)
{
  g_return_val_if_fail (node != NULL, NULL);
  return node->scalar;
}

guint
ncl_yaml_node_get_n_children (const NclYamlNode * node)
{
  g_return_val_if_fail (node != NULL, 0);
  return node->children ? node->children->len : 0;
}

const NclYamlNode *
ncl_yaml_node_get_nth (const NclYamlNode * node, guint i)
{
  g_return_val_if_fail (node != NULL, NULL);
  if (node->children == NULL || i >= node->children->len)
    return NULL;
  return node->children->pdata[i];
}

const gchar *
ncl_yaml_node_get_nth_key (const NclYamlNode * node, guint i)
{
  const NclYamlNode *key;

  g_return_val_if_fail (node != NULL, NULL);
  if (node->keys == NULL || i >= node->keys->len)
    return NULL;
  key = node->keys->pdata[i];
  return key->scalar;
}

const NclYamlNode *
ncl_yaml_mapping_lookup (const NclYamlNode * map, const gchar * key)
{
  g_return_val_if_fail (map != NULL, NULL);
  g_return_val_if_fail (key != NULL, NULL);
  if (map->type != NCL_YAML_MAPPING)
    return NULL;
  for (guint i = 0; i < map->keys->len; i++) {
    const NclYamlNode *k = map->keys->pdata[i];

    if (strcmp (k->scalar, key) == 0)
      return map->children->pdata[i];
  }
  return NULL;
}

/* ---------------------------------------------------------------------- */
/* documents */

void
ncl_yaml_doc_free (NclYamlDoc * doc)
{
  if (doc == NULL)
    return;
  g_ptr_array_unref (doc->nodes);
  g_free (doc->dir);
  g_free (doc->path);
  g_free (doc);
}

const gchar *
ncl_yaml_doc_get_path (const NclYamlDoc * doc)
{
  g_return_val_if_fail (doc != NULL, NULL);
  return doc->path;
}

gchar *
ncl_yaml_doc_resolve_path (const NclYamlDoc * doc, const gchar * rel)
{
  g_autofree gchar *cwd = NULL;

  g_return_val_if_fail (doc != NULL, NULL);
  g_return_val_if_fail (rel != NULL, NULL);
  if (g_path_is_absolute (rel))
    return g_strdup (rel);
  if (doc->dir != NULL)
    return g_build_filename (doc->dir, rel, NULL);
  cwd = g_get_current_dir ();
  return g_build_filename (cwd, rel, NULL);
}

const NclYamlNode *
ncl_yaml_doc_get_root (const NclYamlDoc * doc)
{
  g_return_val_if_fail (doc != NULL, NULL);
  return doc->root;
}

/* ---------------------------------------------------------------------- */
/* errors */

static gchar *
format_error (const NclYamlDoc * doc, const NclYamlNode * node,
    const gchar * msg)
{
  g_autofree gchar *path = NULL;

  if (node == NULL)
    return g_strdup_printf ("%s: %s", doc->path, msg);
  path = ncl_yaml_node_get_key_path (node);
  if (path[0] == '\0')
    return g_strdup_printf ("%s:%u:%u: %s", doc->path, node->line,
        node->column, msg);
  return g_strdup_printf ("%s:%u:%u: %s (at %s)", doc->path, node->line,
      node->column, msg, path);
}

gboolean
ncl_yaml_set_error (const NclYamlDoc * doc, const NclYamlNode * node,
    GError ** error, const gchar * format, ...)
{
  g_autofree gchar *msg = NULL;
  g_autofree gchar *full = NULL;
  va_list args;

  g_return_val_if_fail (doc != NULL, FALSE);
  g_return_val_if_fail (format != NULL, FALSE);

  va_start (args, format);
  msg = g_strdup_vprintf (format, args);
  va_end (args);
  full = format_error (doc, node, msg);
  g_set_error_literal (error, NCL_ERROR, NCL_ERROR_INVALID_CONFIG, full);
  return FALSE;
}

/* ---------------------------------------------------------------------- */
/* parser */

typedef struct
{
  NclYamlNode *node;            /* open mapping or sequence */
  NclYamlNode *pending_key;     /* mapping: key waiting for its value */
  GHashTable *seen;             /* mapping: key text -> key node */
  GPtrArray *merges;            /* mapping: values of "<<" keys */
} Frame;

typedef struct
{
  NclYamlDoc *doc;
  const gchar *text;
  gsize len;
  GArray *stack;                /* Frame */
  GHashTable *anchors;          /* name -> node */
  guint n_docs;
} Builder;

static void
frame_clear (gpointer p)
{
  Frame *f = p;

  g_clear_pointer (&f->seen, g_hash_table_unref);
  g_clear_pointer (&f->merges, g_ptr_array_unref);
}

static gboolean
check_node_budget (Builder * b, const NclYamlNode * at, GError ** error)
{
  if (b->doc->nodes->len <= MAX_NODES)
    return TRUE;
  return ncl_yaml_set_error (b->doc, at, error, "more than %u nodes; "
      "aliases expanding without bound?", MAX_NODES);
}

static NclYamlNode *
copy_node (Builder * b, const NclYamlNode * src, GError ** error)
{
  NclYamlNode *dst = node_new (b->doc, src->type, src->line, src->column);

  if (!check_node_budget (b, src, error))
    return NULL;
  dst->scalar = g_strdup (src->scalar);
  dst->plain = src->plain;
  for (guint i = 0; src->children && i < src->children->len; i++) {
    NclYamlNode *child = copy_node (b, src->children->pdata[i], error);

    if (child == NULL)
      return NULL;
    child->parent = dst;
    child->index = i;
    if (src->keys) {
      NclYamlNode *key = copy_node (b, src->keys->pdata[i], error);

      if (key == NULL)
        return NULL;
      key->parent = dst;
      key->index = i;
      key->is_key = TRUE;
      child->key = key->scalar;
      g_ptr_array_add (dst->keys, key);
    }
    g_ptr_array_add (dst->children, child);
  }
  return dst;
}

static void
add_entry (NclYamlNode * map, NclYamlNode * key, NclYamlNode * value)
{
  key->parent = value->parent = map;
  key->is_key = TRUE;
  key->index = value->index = map->children->len;
  value->key = key->scalar;
  g_ptr_array_add (map->keys, key);
  g_ptr_array_add (map->children, value);
}

/* Attaches a new node (a scalar, a copied alias, or a just started
 * container) to the innermost open container, or makes it the root. */
static gboolean
attach (Builder * b, NclYamlNode * node, GError ** error)
{
  Frame *top;

  if (b->stack->len == 0) {
    b->doc->root = node;
    return TRUE;
  }
  top = &g_array_index (b->stack, Frame, b->stack->len - 1);

  if (top->node->type == NCL_YAML_SEQUENCE) {
    node->parent = top->node;
    node->index = top->node->children->len;
    g_ptr_array_add (top->node->children, node);
    return TRUE;
  }

  if (top->pending_key == NULL) {
    NclYamlNode *first;

    node->parent = top->node;
    node->is_key = TRUE;
    if (node->type != NCL_YAML_SCALAR)
      return ncl_yaml_set_error (b->doc, node, error, "a mapping key must "
          "be a scalar, found %s", type_name (node));
    first = g_hash_table_lookup (top->seen, node->scalar);
    if (first != NULL)
      return ncl_yaml_set_error (b->doc, node, error, "duplicate key '%s' "
          "(first defined at line %u)", node->scalar, first->line);
    if (!(node->plain && strcmp (node->scalar, "<<") == 0))
      g_hash_table_insert (top->seen, node->scalar, node);
    top->pending_key = node;
    return TRUE;
  }

  if (top->pending_key->plain && strcmp (top->pending_key->scalar, "<<") == 0) {
    /* merge key: remember the value, merged at the end of the mapping */
    if (top->merges == NULL)
      top->merges = g_ptr_array_new ();
    node->parent = top->node;
    node->key = top->pending_key->scalar;
    g_ptr_array_add (top->merges, node);
  } else {
    add_entry (top->node, top->pending_key, node);
  }
  top->pending_key = NULL;
  return TRUE;
}

static gboolean
merge_one (Builder * b, Frame * f, const NclYamlNode * src, GError ** error)
{
  if (src->type != NCL_YAML_MAPPING)
    return ncl_yaml_set_error (b->doc, src, error, "a merge key ('<<') "
        "needs a mapping or a sequence of mappings, found %s",
        type_name (src));
  for (guint i = 0; i < src->keys->len; i++) {
    const NclYamlNode *k = src->keys->pdata[i];
    NclYamlNode *key, *value;

    /* keys written in the mapping itself, or merged earlier, win */
    if (g_hash_table_contains (f->seen, k->scalar))
      continue;
    key = copy_node (b, k, error);
    value = key ? copy_node (b, src->children->pdata[i], error) : NULL;
    if (value == NULL)
      return FALSE;
    add_entry (f->node, key, value);
    g_hash_table_insert (f->seen, key->scalar, key);
  }
  return TRUE;
}

static gboolean
apply_merges (Builder * b, Frame * f, GError ** error)
{
  for (guint i = 0; f->merges && i < f->merges->len; i++) {
    const NclYamlNode *m = f->merges->pdata[i];

    if (m->type == NCL_YAML_SEQUENCE) {
      for (guint j = 0; j < m->children->len; j++)
        if (!merge_one (b, f, m->children->pdata[j], error))
          return FALSE;
    } else if (!merge_one (b, f, m, error)) {
      return FALSE;
    }
  }
  return TRUE;
}

/* Line and column (1-based, in characters) of byte @offset of the text. */
static void
offset_position (const Builder * b, gsize offset, guint * line, guint * col)
{
  *line = 1;
  *col = 1;
  for (gsize i = 0; i < offset && i < b->len; i++) {
    if (b->text[i] == '\n') {
      (*line)++;
      *col = 1;
    } else if (((guchar) b->text[i] & 0xc0) != 0x80) {
      (*col)++;
    }
  }
}

/* Start of 1-based line @line in the text, or NULL. */
static const gchar *
line_start (const Builder * b, gsize line)
{
  const gchar *p = b->text, *end = b->text + b->len;

  for (gsize l = 1; l < line; l++) {
    p = memchr (p, '\n', end - p);
    if (p == NULL)
      return NULL;
    p++;
  }
  return p;
}

/* If a tab in the indentation of line @line (or at @col on it) is what
 * libyaml tripped over, the column of that tab, else 0. */
static guint
find_tab (const Builder * b, gsize line, gsize col)
{
  const gchar *p = line_start (b, line), *end = b->text + b->len;
  gsize c = 1;

  if (p == NULL)
    return 0;
  for (; p < end && (*p == ' ' || *p == '\t'); p++, c++)
    if (*p == '\t')
      return c;
  /* "-\tvalue", "key:\n\t..." : the offending tab right at the mark */
  p = line_start (b, line);
  for (c = 1; p < end && *p != '\n' && c < col; c++) {
    p++;
    while (p < end && ((guchar) * p & 0xc0) == 0x80)
      p++;
  }
  if (p < end && *p == '\t' && c == col)
    return c;
  return 0;
}

static gboolean
set_syntax_error (Builder * b, const yaml_parser_t * parser, GError ** error)
{
  const gchar *path = b->doc->path;
  guint line, col, tab;

  switch (parser->error) {
    case YAML_READER_ERROR:
      offset_position (b, parser->problem_offset, &line, &col);
      if (parser->problem_value != -1)
        g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_CONFIG,
            "%s:%u:%u: %s (byte 0x%02x)", path, line, col, parser->problem,
            parser->problem_value);
      else
        g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_CONFIG,
            "%s:%u:%u: %s", path, line, col, parser->problem);
      return FALSE;
    case YAML_SCANNER_ERROR:
    case YAML_PARSER_ERROR:
      line = parser->problem_mark.line + 1;
      col = parser->problem_mark.column + 1;
      tab = find_tab (b, line, col);
      if (tab != 0) {
        g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_CONFIG,
            "%s:%u:%u: tabs are not allowed for indentation; use spaces",
            path, line, tab);
      } else if (parser->context != NULL) {
        g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_CONFIG,
            "%s:%u:%u: %s (%s at %u:%u)", path, line, col, parser->problem,
            parser->context, (guint) parser->context_mark.line + 1,
            (guint) parser->context_mark.column + 1);
      } else {
        g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_CONFIG,
            "%s:%u:%u: %s", path, line, col, parser->problem);
      }
      return FALSE;
    default:
      g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_CONFIG,
          "%s: YAML parser failed: %s", path,
          parser->problem ? parser->problem : "out of memory");
      return FALSE;
  }
}

static gboolean
start_container (Builder * b, NclYamlType type, const yaml_event_t * ev,
    const yaml_char_t * anchor, GError ** error)
{
  NclYamlNode *node = node_new (b->doc, type, ev->start_mark.line + 1,
      ev->start_mark.column + 1);
  Frame f = { node, NULL, NULL, NULL };

  if (!check_node_budget (b, node, error) || !attach (b, node, error))
    return FALSE;
  if (b->stack->len >= MAX_DEPTH)
    return ncl_yaml_set_error (b->doc, node, error, "nesting deeper than "
        "%d levels", MAX_DEPTH);
  node->open = TRUE;
  if (anchor != NULL)
    g_hash_table_replace (b->anchors, g_strdup ((const gchar *) anchor),
        node);
  if (type == NCL_YAML_MAPPING)
    f.seen = g_hash_table_new (g_str_hash, g_str_equal);
  g_array_append_val (b->stack, f);
  return TRUE;
}

static gboolean
end_container (Builder * b, GError ** error)
{
  Frame *f = &g_array_index (b->stack, Frame, b->stack->len - 1);
  gboolean ok = TRUE;

  if (f->node->type == NCL_YAML_MAPPING)
    ok = apply_merges (b, f, error);
  f->node->open = FALSE;
  g_array_set_size (b->stack, b->stack->len - 1);
  return ok;
}

static gboolean
handle_event (Builder * b, const yaml_event_t * ev, GError ** error)
{
  guint line = ev->start_mark.line + 1, col = ev->start_mark.column + 1;
  NclYamlNode *node;

  switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
      if (b->n_docs++ > 0) {
        g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_CONFIG,
            "%s:%u:%u: a second YAML document; only one is supported",
            b->doc->path, line, col);
        return FALSE;
      }
      return TRUE;
    case YAML_SCALAR_EVENT:
      node = node_new (b->doc, NCL_YAML_SCALAR, line, col);
      node->scalar = g_strndup ((const gchar *) ev->data.scalar.value,
          ev->data.scalar.length);
      node->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
      if (ev->data.scalar.anchor != NULL)
        g_hash_table_replace (b->anchors,
            g_strdup ((const gchar *) ev->data.scalar.anchor), node);
      return check_node_budget (b, node, error) && attach (b, node, error);
    case YAML_ALIAS_EVENT:{
      const gchar *name = (const gchar *) ev->data.alias.anchor;
      NclYamlNode *target = g_hash_table_lookup (b->anchors, name);

      if (target == NULL || target->open) {
        g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_CONFIG,
            "%s:%u:%u: %s '*%s'", b->doc->path, line, col,
            target ? "recursive alias" : "undefined alias", name);
        return FALSE;
      }
      node = copy_node (b, target, error);
      if (node == NULL)
        return FALSE;
      node->line = line;
      node->column = col;
      return attach (b, node, error);
    }
    case YAML_SEQUENCE_START_EVENT:
      return start_container (b, NCL_YAML_SEQUENCE, ev,
          ev->data.sequence_start.anchor, error);
    case YAML_MAPPING_START_EVENT:
      return start_container (b, NCL_YAML_MAPPING, ev,
          ev->data.mapping_start.anchor, error);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
      return end_container (b, error);
    default:
      return TRUE;
  }
}

static NclYamlDoc *
parse_text (const gchar * text, gsize len, const gchar * name,
    const gchar * dir, GError ** error)
{
  g_auto (yaml_parser_t) parser = { 0 };
  g_autoptr (NclYamlDoc) doc = g_new0 (NclYamlDoc, 1);
  g_autoptr (GArray) stack = g_array_new (FALSE, TRUE, sizeof (Frame));
  g_autoptr (GHashTable) anchors = g_hash_table_new_full (g_str_hash,
      g_str_equal, g_free, NULL);
  Builder b = { doc, text, len, stack, anchors, 0 };

  doc->path = g_strdup (name);
  doc->dir = g_strdup (dir);
  doc->nodes = g_ptr_array_new_with_free_func (node_free);
  g_array_set_clear_func (stack, frame_clear);

  if (!yaml_parser_initialize (&parser)) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_FAILED,
        "%s: cannot create a YAML parser", name);
    return NULL;
  }
  yaml_parser_set_input_string (&parser, (const guchar *) text, len);

  while (TRUE) {
    g_auto (yaml_event_t) ev = { 0 };

    if (!yaml_parser_parse (&parser, &ev)) {
      set_syntax_error (&b, &parser, error);
      return NULL;
    }
    if (ev.type == YAML_STREAM_END_EVENT)
      break;
    if (!handle_event (&b, &ev, error))
      return NULL;
  }
  /* "---" alone is an empty document too */
  if (doc->root && doc->root->type == NCL_YAML_SCALAR && doc->root->plain &&
      doc->root->scalar[0] == '\0')
    doc->root = NULL;
  return g_steal_pointer (&doc);
}

NclYamlDoc *
ncl_yaml_load_string (const gchar * text, const gchar * name,
    GError ** error)
{
  g_return_val_if_fail (text != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  if (name == NULL)
    name = "<string>";
  return parse_text (text, strlen (text), name, NULL, error);
}

NclYamlDoc *
ncl_yaml_load_file (const gchar * path, GError ** error)
{
  g_autoptr (GError) file_error = NULL;
  g_autofree gchar *text = NULL;
  g_autofree gchar *dir = NULL;
  gsize len;

  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!g_file_get_contents (path, &text, &len, &file_error)) {
    if (g_error_matches (file_error, G_FILE_ERROR, G_FILE_ERROR_NOENT) ||
        g_error_matches (file_error, G_FILE_ERROR, G_FILE_ERROR_NOTDIR))
      g_set_error (error, NCL_ERROR, NCL_ERROR_NOT_FOUND, "%s: No such file",
          path);
    else
      g_set_error (error, NCL_ERROR, NCL_ERROR_IO, "%s: cannot read: %s",
          path, file_error->message);
    return NULL;
  }
  dir = g_path_get_dirname (path);
  return parse_text (text, len, path, dir, error);
}

/* ---------------------------------------------------------------------- */
/* key checks */

/* Optimal string alignment distance (Levenshtein plus adjacent swaps),
 * ignoring ASCII case. */
static guint
edit_distance (const gchar * a, const gchar * b)
{
  gsize la = strlen (a), lb = strlen (b);
  g_autofree guint *d = g_new (guint, (la + 1) * (lb + 1));

#define D(i, j) d[(i) * (lb + 1) + (j)]
  for (gsize i = 0; i <= la; i++)
    D (i, 0) = i;
  for (gsize j = 0; j <= lb; j++)
    D (0, j) = j;
  for (gsize i = 1; i <= la; i++) {
    for (gsize j = 1; j <= lb; j++) {
      guint cost = g_ascii_tolower (a[i - 1]) != g_ascii_tolower (b[j - 1]);
      guint v = MIN (D (i - 1, j) + 1, D (i, j - 1) + 1);

      v = MIN (v, D (i - 1, j - 1) + cost);
      if (i > 1 && j > 1 &&
          g_ascii_tolower (a[i - 1]) == g_ascii_tolower (b[j - 2]) &&
          g_ascii_tolower (a[i - 2]) == g_ascii_tolower (b[j - 1]))
        v = MIN (v, D (i - 2, j - 2) + 1);
      D (i, j) = v;
    }
  }
  return D (la, lb);
#undef D
}

static const gchar *
closest_key (const gchar * key, const gchar * const *allowed)
{
  gsize len = strlen (key);
  guint limit = CLAMP (len / 3, 1, 2), best = G_MAXUINT;
  const gchar *match = NULL;

  /* very long keys only: the matrix is len x len */
  if (len > 256)
    return NULL;
  for (guint i = 0; allowed[i]; i++) {
    guint d = edit_distance (key, allowed[i]);

    if (d <= limit && d < best) {
      best = d;
      match = allowed[i];
    }
  }
  return match;
}

gboolean
ncl_yaml_check_keys (const NclYamlDoc * doc, const NclYamlNode * map,
    const gchar * const *allowed, GError ** error)
{
  g_return_val_if_fail (doc != NULL, FALSE);
  g_return_val_if_fail (allowed != NULL, FALSE);

  if (map == NULL)
    return TRUE;
  if (map->type != NCL_YAML_MAPPING)
    return ncl_yaml_set_error (doc, map, error, "expected a mapping, found "
        "%s", type_name (map));

  for (guint i = 0; i < map->keys->len; i++) {
    const NclYamlNode *key = map->keys->pdata[i];
    const gchar *hint;
    g_autofree gchar *list = NULL;

    if (g_strv_contains (allowed, key->scalar))
      continue;
    hint = closest_key (key->scalar, allowed);
    if (hint != NULL)
      return ncl_yaml_set_error (doc, key, error, "unknown key '%s' (did "
          "you mean '%s'?)", key->scalar, hint);
    list = g_strjoinv (", ", (gchar **) allowed);
    if (allowed[0] == NULL)
      return ncl_yaml_set_error (doc, key, error, "unknown key '%s' (no "
          "keys are allowed here)", key->scalar);
    return ncl_yaml_set_error (doc, key, error, "unknown key '%s' (expected "
        "one of: %s)", key->scalar, list);
  }
  return TRUE;
}

/* ---------------------------------------------------------------------- */
/* typed getters */

/* What range errors call the value: its key, "key[2]" inside a sequence,
 * "value" at the root. */
static gchar *
value_label (const NclYamlNode * node)
{
  g_autofree gchar *parent = NULL;

  if (node->key != NULL)
    return g_strdup (node->key);
  if (node->parent == NULL)
    return g_strdup ("value");
  parent = value_label (node->parent);
  return g_strdup_printf ("%s[%u]", parent, node->index);
}

/* Finds @key in @map.  *node is NULL (and TRUE returned) when absent. */
static gboolean
lookup_value (const NclYamlDoc * doc, const NclYamlNode * map,
    const gchar * key, const NclYamlNode ** node, GError ** error)
{
  *node = NULL;
  if (map == NULL)
    return TRUE;
  if (map->type != NCL_YAML_MAPPING)
    return ncl_yaml_set_error (doc, map, error, "expected a mapping, found "
        "%s", type_name (map));
  *node = ncl_yaml_mapping_lookup (map, key);
  return TRUE;
}

static gboolean
expect_scalar (const NclYamlDoc * doc, const NclYamlNode * node,
    const gchar * what, GError ** error)
{
  if (node->type != NCL_YAML_SCALAR)
    return ncl_yaml_set_error (doc, node, error, "expected %s, found %s",
        what, type_name (node));
  if (is_null (node))
    return ncl_yaml_set_error (doc, node, error, "expected %s, found %s",
        what, node->scalar[0] ? "null" : "an empty value");
  return TRUE;
}

gboolean
ncl_yaml_node_to_int (const NclYamlDoc * doc, const NclYamlNode * node,
    gint min, gint max, gint * value, GError ** error)
{
  g_autofree gchar *label = NULL;
  const gchar *p;
  gboolean neg = FALSE;
  gint64 v = 0;

  g_return_val_if_fail (doc != NULL, FALSE);
  g_return_val_if_fail (node != NULL, FALSE);
  g_return_val_if_fail (value != NULL, FALSE);

  if (!expect_scalar (doc, node, "an integer", error))
    return FALSE;
  p = node->scalar;
  if (*p == '+' || *p == '-')
    neg = *p++ == '-';
  if (!g_ascii_isdigit (*p))
    return ncl_yaml_set_error (doc, node, error, "expected an integer, "
        "found '%s'", node->scalar);
  /* saturate far outside the gint range; the range check catches it */
  for (; g_ascii_isdigit (*p); p++)
    v = MIN (v * 10 + (*p - '0'), G_GINT64_CONSTANT (1) << 40);
  if (*p != '\0')
    return ncl_yaml_set_error (doc, node, error, "expected an integer, "
        "found '%s'", node->scalar);
  if (neg)
    v = -v;
  if (v < min || v > max) {
    label = value_label (node);
    return ncl_yaml_set_error (doc, node, error, "%s: %s is out of range "
        "[%d, %d]", label, node->scalar, min, max);
  }
  *value = (gint) v;
  return TRUE;
}

gboolean
ncl_yaml_node_to_double (const NclYamlDoc * doc, const NclYamlNode * node,
    gdouble min, gdouble max, gdouble * value, GError ** error)
{
  g_autofree gchar *label = NULL;
  const gchar *s;
  gchar *end = NULL;
  gdouble v;

  g_return_val_if_fail (doc != NULL, FALSE);
  g_return_val_if_fail (node != NULL, FALSE);
  g_return_val_if_fail (value != NULL, FALSE);

  if (!expect_scalar (doc, node, "a number", error))
    return FALSE;
  s = node->scalar;
  /* plain decimal or exponent notation only: no hex, inf, nan or spaces */
  if (s[strspn (s, "0123456789+-.eE")] != '\0')
    return ncl_yaml_set_error (doc, node, error, "expected a number, found "
        "'%s'", s);
  errno = 0;
  v = g_ascii_strtod (s, &end);
  if (end == s || *end != '\0')
    return ncl_yaml_set_error (doc, node, error, "expected a number, found "
        "'%s'", s);
  label = value_label (node);
  if (!isfinite (v))
    return ncl_yaml_set_error (doc, node, error, "%s: %s is out of range "
        "[%g, %g]", label, s, min, max);
  if (v < min || v > max)
    return ncl_yaml_set_error (doc, node, error, "%s: %s is out of range "
        "[%g, %g]", label, s, min, max);
  *value = v;
  return TRUE;
}

gboolean
ncl_yaml_get_int (const NclYamlDoc * doc, const NclYamlNode * map,
    const gchar * key, gint min, gint max, gint * value, GError ** error)
{
  const NclYamlNode *node;

  g_return_val_if_fail (key != NULL, FALSE);
  if (!lookup_value (doc, map, key, &node, error))
    return FALSE;
  return node == NULL || ncl_yaml_node_to_int (doc, node, min, max, value,
      error);
}

gboolean
ncl_yaml_get_double (const NclYamlDoc * doc, const NclYamlNode * map,
    const gchar * key, gdouble min, gdouble max, gdouble * value,
    GError ** error)
{
  const NclYamlNode *node;

  g_return_val_if_fail (key != NULL, FALSE);
  if (!lookup_value (doc, map, key, &node, error))
    return FALSE;
  return node == NULL || ncl_yaml_node_to_double (doc, node, min, max, value,
      error);
}

gboolean
ncl_yaml_get_bool (const NclYamlDoc * doc, const NclYamlNode * map,
    const gchar * key, gboolean * value, GError ** error)
{
  static const gchar *const yes[] = { "true", "yes", "on" };
  static const gchar *const no[] = { "false", "no", "off" };
  const NclYamlNode *node;

  g_return_val_if_fail (key != NULL, FALSE);
  g_return_val_if_fail (value != NULL, FALSE);
  if (!lookup_value (doc, map, key, &node, error))
    return FALSE;
  if (node == NULL)
    return TRUE;
  if (!expect_scalar (doc, node, "a boolean", error))
    return FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (yes); i++) {
    if (g_ascii_strcasecmp (node->scalar, yes[i]) == 0) {
      *value = TRUE;
      return TRUE;
    }
    if (g_ascii_strcasecmp (node->scalar, no[i]) == 0) {
      *value = FALSE;
      return TRUE;
    }
  }
  return ncl_yaml_set_error (doc, node, error, "expected a boolean (true or "
      "false), found '%s'", node->scalar);
}

gboolean
ncl_yaml_get_string (const NclYamlDoc * doc, const NclYamlNode * map,
    const gchar * key, gchar ** value, GError ** error)
{
  const NclYamlNode *node;

  g_return_val_if_fail (key != NULL, FALSE);
  g_return_val_if_fail (value != NULL, FALSE);
  if (!lookup_value (doc, map, key, &node, error))
    return FALSE;
  if (node == NULL)
    return TRUE;
  if (!expect_scalar (doc, node, "a string", error))
    return FALSE;
  g_free (*value);
  *value = g_strdup (node->scalar);
  return TRUE;
}
