/* YAML helpers: a node tree with positions, typed getters, and errors of
 * the form "FILE:LINE:COL: message (at key.path)". */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum
{
  NCL_YAML_SCALAR,
  NCL_YAML_MAPPING,
  NCL_YAML_SEQUENCE,
} NclYamlType;

typedef struct _NclYamlDoc NclYamlDoc;
typedef struct _NclYamlNode NclYamlNode;

/* Parses a file / string into a tree.  Syntax errors (with a specific
 * diagnosis for tabs) are NCL_ERROR_INVALID_CONFIG "FILE:LINE:COL: ...";
 * a missing file is NCL_ERROR_NOT_FOUND.  An empty document has a NULL
 * root. */
NclYamlDoc *ncl_yaml_load_file (const gchar * path, GError ** error);
NclYamlDoc *ncl_yaml_load_string (const gchar * text, const gchar * name,
    GError ** error);
void ncl_yaml_doc_free (NclYamlDoc * doc);

const gchar *ncl_yaml_doc_get_path (const NclYamlDoc * doc);
/* Directory of the file, for resolving relative paths (transfer full). */
gchar *ncl_yaml_doc_resolve_path (const NclYamlDoc * doc, const gchar * rel);
const NclYamlNode *ncl_yaml_doc_get_root (const NclYamlDoc * doc);

NclYamlType ncl_yaml_node_get_type (const NclYamlNode * node);
/* 1-based position of the node */
guint ncl_yaml_node_get_line (const NclYamlNode * node);
guint ncl_yaml_node_get_column (const NclYamlNode * node);
/* Dotted key path ("layers[3].kernel"), transfer full. */
gchar *ncl_yaml_node_get_key_path (const NclYamlNode * node);
/* Scalar text, or NULL for a non-scalar. */
const gchar *ncl_yaml_node_get_scalar (const NclYamlNode * node);

/* Mappings and sequences. */
guint ncl_yaml_node_get_n_children (const NclYamlNode * node);
const NclYamlNode *ncl_yaml_node_get_nth (const NclYamlNode * node, guint i);
/* For mappings: key text of the nth entry. */
const gchar *ncl_yaml_node_get_nth_key (const NclYamlNode * node, guint i);
const NclYamlNode *ncl_yaml_mapping_lookup (const NclYamlNode * map,
    const gchar * key);

/* Sets @error to "FILE:LINE:COL: MESSAGE (at KEY.PATH)" for @node
 * (NCL_ERROR_INVALID_CONFIG).  Always returns FALSE. */
gboolean ncl_yaml_set_error (const NclYamlDoc * doc, const NclYamlNode * node,
    GError ** error, const gchar * format, ...) G_GNUC_PRINTF (4, 5);

/* Checks that @node is a mapping whose keys are all in @allowed (NULL
 * terminated); an unknown key is reported at that key, with the closest
 * allowed name as a hint. */
gboolean ncl_yaml_check_keys (const NclYamlDoc * doc, const NclYamlNode * map,
    const gchar * const *allowed, GError ** error);

/* Typed getters: the key may be absent (value left unchanged, TRUE);
 * present with a wrong type or out of range is an error at the value. */
gboolean ncl_yaml_get_int (const NclYamlDoc * doc, const NclYamlNode * map,
    const gchar * key, gint min, gint max, gint * value, GError ** error);
gboolean ncl_yaml_get_double (const NclYamlDoc * doc, const NclYamlNode * map,
    const gchar * key, gdouble min, gdouble max, gdouble * value,
    GError ** error);
gboolean ncl_yaml_get_bool (const NclYamlDoc * doc, const NclYamlNode * map,
    const gchar * key, gboolean * value, GError ** error);
/* *value is replaced (g_free'd first) when the key is present. */
gboolean ncl_yaml_get_string (const NclYamlDoc * doc, const NclYamlNode * map,
    const gchar * key, gchar ** value, GError ** error);

/* Scalar conversions of one node. */
gboolean ncl_yaml_node_to_int (const NclYamlDoc * doc,
    const NclYamlNode * node, gint min, gint max, gint * value,
    GError ** error);
gboolean ncl_yaml_node_to_double (const NclYamlDoc * doc,
    const NclYamlNode * node, gdouble min, gdouble max, gdouble * value,
    GError ** error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (NclYamlDoc, ncl_yaml_doc_free)

G_END_DECLS
