/* YAML helpers: a table of snippets, each loaded (from a string named
 * "test.yaml", or from a real file of that name) and probed with one
 * accessor; errors must carry the right code and "test.yaml:LINE:COL",
 * successes the right value.  Then key paths, positions and the tree API. */

#include "common.h"

#include <string.h>

#include <glib/gstdio.h>

typedef enum
{
  LOAD,                         /* only parse */
  KEYS,                         /* ncl_yaml_check_keys with allowed_keys */
  INT,                          /* ncl_yaml_get_int, range [-100, 4096] */
  DOUBLE,                       /* ncl_yaml_get_double, range [0, 1] */
  BOOL,
  STRING,
} Probe;

typedef struct
{
  const gchar *label;
  const gchar *yaml;
  gboolean via_file;
  Probe probe;
  /* where to probe: "key", "map/key", "layers[1]/kernel"; for KEYS the
   * mapping itself ("" = root) */
  const gchar *at;
  gint code;                    /* -1: success */
  const gchar *where;           /* errors: "LINE:COL" of the message */
  /* errors: a substring of the message; successes: the value as text
   * ("unchanged" when the key is absent) */
  const gchar *expect;
} YamlCase;

static const gchar *const allowed_keys[] = {
  "strength", "size", "name", "enabled", "layers", "model", "kernel",
  "stride", "base", "layer", NULL
};

#define OK -1
#define BAD NCL_ERROR_INVALID_CONFIG

static const YamlCase cases[] = {
  /* syntax */
  {"unclosed flow sequence", "a: [1, 2\nb: 3\n", FALSE, LOAD, NULL, BAD,
      "2:2", "did not find expected ',' or ']' (while parsing a flow "
        "sequence at 1:4)"},
  {"unclosed quote", "name: \"abc\n", TRUE, LOAD, NULL, BAD, "2:1",
      "found unexpected end of stream"},
  {"mapping in a scalar", "a: b: c\n", FALSE, LOAD, NULL, BAD, "1:5",
      "mapping values are not allowed in this context"},
  {"bad dedent", "a:\n  b: 1\n c: 2\n", FALSE, LOAD, NULL, BAD, "3:2",
      "did not find expected key"},
  {"tab indentation", "model:\n\tkernel: 3\n", FALSE, LOAD, NULL, BAD,
      "2:1", "tabs are not allowed for indentation; use spaces"},
  {"tab after a value", "size: 1\n\tname: x\n", TRUE, LOAD, NULL, BAD,
      "2:1", "tabs are not allowed for indentation"},
  {"tab deeper", "model:\n  kernel: 1\n  \tstride: 2\n", FALSE, LOAD, NULL,
      BAD, "3:3", "tabs are not allowed for indentation"},
  {"tab after a dash", "- a\n-\tb\n", FALSE, LOAD, NULL, BAD, "2:2",
      "tabs are not allowed"},
  {"invalid UTF-8", "name: ab\xff\n", FALSE, LOAD, NULL, BAD, "1:9",
      "invalid"},
  {"undefined alias", "size: *nope\n", FALSE, LOAD, NULL, BAD, "1:7",
      "undefined alias '*nope'"},
  {"recursive alias", "layers: &x [1, *x]\n", FALSE, LOAD, NULL, BAD,
      "1:16", "recursive alias '*x'"},
  {"two documents", "size: 1\n---\nsize: 2\n", FALSE, LOAD, NULL, BAD,
      "2:1", "second YAML document"},
  {"complex key", "? [a, b]\n: 1\n", FALSE, LOAD, NULL, BAD, "1:3",
      "a mapping key must be a scalar, found a sequence"},
  {"duplicate key", "size: 1\nname: a\nsize: 2\n", FALSE, LOAD, NULL, BAD,
      "3:1", "duplicate key 'size' (first defined at line 1)"},
  {"duplicate nested key", "model:\n  kernel: 1\n  kernel: 2\n", TRUE, LOAD,
      NULL, BAD, "3:3", "duplicate key 'kernel' (first defined at line 2) "
        "(at model)"},
  {"bad merge", "model:\n  <<: 3\n", FALSE, LOAD, NULL, BAD, "2:7",
      "merge key ('<<') needs a mapping"},

  /* unknown keys */
  {"unknown key with hint", "strength: 0.5\nstrenght: 0.7\n", FALSE, KEYS,
      "", BAD, "2:1", "unknown key 'strenght' (did you mean 'strength'?)"},
  {"unknown key, case", "Size: 3\n", FALSE, KEYS, "", BAD, "1:1",
      "unknown key 'Size' (did you mean 'size'?)"},
  {"unknown nested key", "model:\n  kernal: 3\n", TRUE, KEYS, "model", BAD,
      "2:3", "unknown key 'kernal' (did you mean 'kernel'?) (at model)"},
  {"unknown key, no hint", "colour: red\n", FALSE, KEYS, "", BAD, "1:1",
      "unknown key 'colour' (expected one of: strength, size,"},
  {"keys of a sequence", "model: [1]\n", FALSE, KEYS, "model", BAD, "1:8",
      "expected a mapping, found a sequence (at model)"},
  {"known keys", "strength: 1\nmodel: {kernel: 3}\n", FALSE, KEYS, "", OK,
      NULL, NULL},

  /* integers */
  {"int", "size: 42\n", FALSE, INT, "size", OK, NULL, "42"},
  {"int with signs", "size: -12\n", FALSE, INT, "size", OK, NULL, "-12"},
  {"int plus", "size: +7\n", FALSE, INT, "size", OK, NULL, "7"},
  {"int quoted", "size: '9'\n", FALSE, INT, "size", OK, NULL, "9"},
  {"int absent", "name: x\n", FALSE, INT, "size", OK, NULL, "unchanged"},
  {"int, empty document", "", FALSE, INT, "size", OK, NULL, "unchanged"},
  {"int fraction", "size: 1.5\n", FALSE, INT, "size", BAD, "1:7",
      "expected an integer, found '1.5'"},
  {"int word", "size: abc\n", TRUE, INT, "size", BAD, "1:7",
      "expected an integer, found 'abc'"},
  {"int hex", "size: 0x10\n", FALSE, INT, "size", BAD, "1:7",
      "expected an integer, found '0x10'"},
  {"int sign only", "size: '-'\n", FALSE, INT, "size", BAD, "1:7",
      "expected an integer"},
  {"int empty", "size:\nname: x\n", FALSE, INT, "size", BAD, "1:6",
      "expected an integer, found an empty value"},
  {"int null", "size: ~\n", FALSE, INT, "size", BAD, "1:7",
      "expected an integer, found null"},
  {"int mapping", "size:\n  a: 1\n", FALSE, INT, "size", BAD, "2:3",
      "expected an integer, found a mapping (at size)"},
  {"int out of range", "size: 5000\n", FALSE, INT, "size", BAD, "1:7",
      "size: 5000 is out of range [-100, 4096] (at size)"},
  {"int below range", "size: -101\n", FALSE, INT, "size", BAD, "1:7",
      "size: -101 is out of range [-100, 4096]"},
  {"int overflow", "size: 99999999999999999999999\n", FALSE, INT, "size",
      BAD, "1:7", "is out of range [-100, 4096]"},
  {"int gint overflow", "size: -4294967296\n", FALSE, INT, "size", BAD,
      "1:7", "out of range"},
  {"int in a sequence", "layers:\n  - kernel: 3\n  - kernel: x\n", TRUE,
      INT, "layers[1]/kernel", BAD, "3:13", "expected an integer, found 'x' "
        "(at layers[1].kernel)"},
  {"int from a non-mapping", "layers: [1, 2]\n", FALSE, INT, "layers/size",
      BAD, "1:9", "expected a mapping, found a sequence (at layers)"},

  /* doubles */
  {"double", "strength: 0.25\n", FALSE, DOUBLE, "strength", OK, NULL,
      "0.25"},
  {"double int", "strength: 1\n", FALSE, DOUBLE, "strength", OK, NULL, "1"},
  {"double exponent", "strength: 1e-1\n", FALSE, DOUBLE, "strength", OK,
      NULL, "0.1"},
  {"double out of range", "strength: 1.5\n", FALSE, DOUBLE, "strength", BAD,
      "1:11", "strength: 1.5 is out of range [0, 1]"},
  {"double nested out of range", "model:\n  strength: -0.5\n", FALSE,
      DOUBLE, "model/strength", BAD, "2:13",
      "strength: -0.5 is out of range [0, 1] (at model.strength)"},
  {"double junk", "strength: 0.5x\n", FALSE, DOUBLE, "strength", BAD,
      "1:11", "expected a number, found '0.5x'"},
  {"double nan", "strength: nan\n", FALSE, DOUBLE, "strength", BAD, "1:11",
      "expected a number, found 'nan'"},
  {"double yaml nan", "strength: .nan\n", FALSE, DOUBLE, "strength", BAD,
      "1:11", "expected a number"},
  {"double huge", "strength: 1e999\n", FALSE, DOUBLE, "strength", BAD,
      "1:11", "out of range"},
  {"double sequence", "strength: [1]\n", FALSE, DOUBLE, "strength", BAD,
      "1:11", "expected a number, found a sequence"},

  /* booleans */
  {"bool true", "enabled: true\n", FALSE, BOOL, "enabled", OK, NULL, "true"},
  {"bool Yes", "enabled: Yes\n", FALSE, BOOL, "enabled", OK, NULL, "true"},
  {"bool ON", "enabled: ON\n", FALSE, BOOL, "enabled", OK, NULL, "true"},
  {"bool off", "enabled: off\n", FALSE, BOOL, "enabled", OK, NULL, "false"},
  {"bool No", "enabled: No\n", FALSE, BOOL, "enabled", OK, NULL, "false"},
  {"bool absent", "size: 1\n", FALSE, BOOL, "enabled", OK, NULL,
      "unchanged"},
  {"bool bad", "size: 1\nenabled: maybe\n", TRUE, BOOL, "enabled", BAD,
      "2:10", "expected a boolean (true or false), found 'maybe'"},
  {"bool number", "enabled: 1\n", FALSE, BOOL, "enabled", BAD, "1:10",
      "expected a boolean"},

  /* strings */
  {"string", "name: \"hi there\"\n", FALSE, STRING, "name", OK, NULL,
      "hi there"},
  {"string plain", "name: mosaic.safetensors\n", FALSE, STRING, "name", OK,
      NULL, "mosaic.safetensors"},
  {"string number", "name: 12\n", FALSE, STRING, "name", OK, NULL, "12"},
  {"string empty quoted", "name: ''\n", FALSE, STRING, "name", OK, NULL, ""},
  {"string block", "name: |\n  two\n  lines\n", FALSE, STRING, "name", OK,
      NULL, "two\nlines\n"},
  {"string mapping", "name:\n  first: x\n", FALSE, STRING, "name", BAD,
      "2:3", "expected a string, found a mapping (at name)"},
  {"string sequence", "name: [a, b]\n", TRUE, STRING, "name", BAD, "1:7",
      "expected a string, found a sequence"},
  {"string null", "name: null\n", FALSE, STRING, "name", BAD, "1:7",
      "expected a string, found null"},

  /* anchors, aliases and merges are copies */
  {"alias", "base: &b\n  kernel: 3\nlayer: *b\n", FALSE, INT, "layer/kernel",
      OK, NULL, "3"},
  {"alias scalar", "base: &n 17\nsize: *n\n", FALSE, INT, "size", OK, NULL,
      "17"},
  {"merge", "base: &b {kernel: 3, stride: 1}\nlayer:\n  <<: *b\n  stride: 2\n",
      FALSE, INT, "layer/stride", OK, NULL, "2"},
  {"merged value", "base: &b {kernel: 3, stride: 1}\nlayer:\n  <<: *b\n"
        "  stride: 2\n", FALSE, INT, "layer/kernel", OK, NULL, "3"},
  {"merged keys are checked", "base: &b {kernal: 3}\nlayer:\n  <<: *b\n",
      FALSE, KEYS, "layer", BAD, "1:11", "unknown key 'kernal' (did you mean "
        "'kernel'?) (at layer)"},
  {"bad value through an alias", "base: &b {size: 9999}\nlayer: *b\n", FALSE,
      INT, "layer/size", BAD, "1:17", "(at layer.size)"},
};

/* Finds the mapping named by @at's leading segments ("a/b[2]/key" ->
 * root.a.b[2]) and returns the last segment as the key. */
static const NclYamlNode *
find_map (const NclYamlDoc * doc, const gchar * at, const gchar ** key)
{
  const NclYamlNode *node = ncl_yaml_doc_get_root (doc);
  g_auto (GStrv) parts = g_strsplit (at, "/", -1);
  guint n = g_strv_length (parts);
  static gchar last[64];

  for (guint i = 0; i + 1 < n && node; i++) {
    gchar *bracket = strchr (parts[i], '[');
    guint index = 0;

    if (bracket) {
      index = atoi (bracket + 1);
      *bracket = '\0';
    }
    node = ncl_yaml_mapping_lookup (node, parts[i]);
    if (node && bracket)
      node = ncl_yaml_node_get_nth (node, index);
  }
  g_strlcpy (last, n ? parts[n - 1] : "", sizeof (last));
  *key = last;
  return node;
}

static gboolean
probe (const NclYamlDoc * doc, const YamlCase * c, gchar ** got,
    GError ** err)
{
  const gchar *key = NULL;
  const NclYamlNode *map;

  if (c->probe == LOAD)
    return TRUE;
  if (c->probe == KEYS) {
    map = ncl_yaml_doc_get_root (doc);
    if (c->at[0] != '\0')
      map = ncl_yaml_mapping_lookup (map, c->at);
    return ncl_yaml_check_keys (doc, map, allowed_keys, err);
  }
  map = find_map (doc, c->at, &key);
  switch (c->probe) {
    case INT:{
      gint v = -12345;

      if (!ncl_yaml_get_int (doc, map, key, -100, 4096, &v, err))
        return FALSE;
      *got = v == -12345 ? g_strdup ("unchanged") : g_strdup_printf ("%d", v);
      return TRUE;
    }
    case DOUBLE:{
      gdouble v = -1.0;

      if (!ncl_yaml_get_double (doc, map, key, 0.0, 1.0, &v, err))
        return FALSE;
      *got = v == -1.0 ? g_strdup ("unchanged") : g_strdup_printf ("%g", v);
      return TRUE;
    }
    case BOOL:{
      gboolean v = 7;

      if (!ncl_yaml_get_bool (doc, map, key, &v, err))
        return FALSE;
      *got = g_strdup (v == 7 ? "unchanged" : v ? "true" : "false");
      return TRUE;
    }
    case STRING:{
      gchar *v = g_strdup ("unchanged");

      if (!ncl_yaml_get_string (doc, map, key, &v, err)) {
        g_free (v);
        return FALSE;
      }
      *got = v;
      return TRUE;
    }
    default:
      g_assert_not_reached ();
  }
}

static void
run_case (const YamlCase * c, const gchar * tmpdir)
{
  g_autoptr (NclYamlDoc) doc = NULL;
  g_autoptr (GError) err = NULL;
  g_autofree gchar *got = NULL;
  g_autofree gchar *path = NULL;
  g_autofree gchar *where = NULL;
  gboolean ok;

  if (c->via_file) {
    path = g_build_filename (tmpdir, "test.yaml", NULL);
    g_assert_true (g_file_set_contents (path, c->yaml, -1, NULL));
    doc = ncl_yaml_load_file (path, &err);
  } else {
    doc = ncl_yaml_load_string (c->yaml, "test.yaml", &err);
  }
  ok = doc != NULL && probe (doc, c, &got, &err);

  if (c->code == OK) {
    if (!ok) {
      g_printerr ("%s: unexpected error: %s\n", c->label,
          err ? err->message : "(none)");
      ncl_test_failures++;
    } else if (c->expect && g_strcmp0 (got, c->expect) != 0) {
      g_printerr ("%s: got '%s', expected '%s'\n", c->label, got, c->expect);
      ncl_test_failures++;
    } else {
      g_print ("ok %s%s%s\n", c->label, got ? " = " : "", got ? got : "");
    }
    return;
  }

  if (ok || err == NULL) {
    g_printerr ("%s: expected an error, got %s\n", c->label,
        got ? got : "success");
    ncl_test_failures++;
    return;
  }
  g_print ("%s: %s\n", c->label, err->message);
  if (!g_error_matches (err, NCL_ERROR, c->code)) {
    g_printerr ("%s: error code %d, expected %d\n", c->label, err->code,
        c->code);
    ncl_test_failures++;
  }
  /* the message starts with the file name and position */
  where = g_strdup_printf ("%s:%s: ", path ? path : "test.yaml", c->where);
  if (!g_str_has_prefix (err->message, where)) {
    g_printerr ("%s: message does not start with '%s'\n", c->label, where);
    ncl_test_failures++;
  }
  if (strstr (err->message, c->expect) == NULL) {
    g_printerr ("%s: message lacks '%s'\n", c->label, c->expect);
    ncl_test_failures++;
  }
  if (strchr (err->message, '\n') != NULL) {
    g_printerr ("%s: message is not one line\n", c->label);
    ncl_test_failures++;
  }
}

/* ---------------------------------------------------------------------- */

/* The tree: types, positions, keys, key paths. */
static void
test_tree (void)
{
  static const gchar yaml[] =
      "# a model\n"
      "name: demo\n"
      "layers:\n"
      "  - type: conv\n"
      "    kernel: [3, 3]\n"
      "  - {type: relu, \"in place\": yes}\n"
      "empty:\n";
  g_autoptr (NclYamlDoc) doc = NULL;
  g_autoptr (GError) err = NULL;
  const NclYamlNode *root, *layers, *l0, *kernel, *k1, *l1, *empty;
  g_autofree gchar *p_k1 = NULL, *p_l1 = NULL, *p_root = NULL;
  g_autofree gchar *p_inplace = NULL;

  doc = ncl_yaml_load_string (yaml, "tree.yaml", &err);
  NCL_CHECK_NO_ERROR (err);
  if (doc == NULL)
    return;
  NCL_CHECK (strcmp (ncl_yaml_doc_get_path (doc), "tree.yaml") == 0);
  root = ncl_yaml_doc_get_root (doc);
  NCL_CHECK (root && ncl_yaml_node_get_type (root) == NCL_YAML_MAPPING);
  NCL_CHECK (ncl_yaml_node_get_line (root) == 2);
  NCL_CHECK (ncl_yaml_node_get_column (root) == 1);
  NCL_CHECK (ncl_yaml_node_get_n_children (root) == 3);
  NCL_CHECK (g_strcmp0 (ncl_yaml_node_get_nth_key (root, 0), "name") == 0);
  NCL_CHECK (g_strcmp0 (ncl_yaml_node_get_nth_key (root, 2), "empty") == 0);
  NCL_CHECK (ncl_yaml_node_get_nth_key (root, 3) == NULL);
  NCL_CHECK (ncl_yaml_node_get_nth (root, 3) == NULL);
  NCL_CHECK (ncl_yaml_node_get_scalar (root) == NULL);
  NCL_CHECK (g_strcmp0 (ncl_yaml_node_get_scalar (ncl_yaml_node_get_nth
              (root, 0)), "demo") == 0);
  p_root = ncl_yaml_node_get_key_path (root);
  NCL_CHECK (strcmp (p_root, "") == 0);

  layers = ncl_yaml_mapping_lookup (root, "layers");
  NCL_CHECK (layers && ncl_yaml_node_get_type (layers) == NCL_YAML_SEQUENCE);
  NCL_CHECK (ncl_yaml_mapping_lookup (root, "missing") == NULL);
  NCL_CHECK (ncl_yaml_mapping_lookup (layers, "type") == NULL);
  if (layers == NULL)
    return;
  NCL_CHECK (ncl_yaml_node_get_n_children (layers) == 2);
  NCL_CHECK (ncl_yaml_node_get_nth_key (layers, 0) == NULL);
  l0 = ncl_yaml_node_get_nth (layers, 0);
  NCL_CHECK (ncl_yaml_node_get_line (l0) == 4);
  NCL_CHECK (ncl_yaml_node_get_column (l0) == 5);
  kernel = ncl_yaml_mapping_lookup (l0, "kernel");
  NCL_CHECK (kernel && ncl_yaml_node_get_type (kernel) == NCL_YAML_SEQUENCE);
  k1 = kernel ? ncl_yaml_node_get_nth (kernel, 1) : NULL;
  NCL_CHECK (k1 && ncl_yaml_node_get_line (k1) == 5 &&
      ncl_yaml_node_get_column (k1) == 17);
  p_k1 = k1 ? ncl_yaml_node_get_key_path (k1) : NULL;
  NCL_CHECK (g_strcmp0 (p_k1, "layers[0].kernel[1]") == 0);

  l1 = ncl_yaml_node_get_nth (layers, 1);
  p_l1 = ncl_yaml_node_get_key_path (l1);
  NCL_CHECK (g_strcmp0 (p_l1, "layers[1]") == 0);
  NCL_CHECK (ncl_yaml_node_get_column (l1) == 5);
  p_inplace = ncl_yaml_node_get_key_path (ncl_yaml_mapping_lookup (l1,
          "in place"));
  NCL_CHECK (g_strcmp0 (p_inplace, "layers[1].in place") == 0);

  /* "empty:" is an empty plain scalar */
  empty = ncl_yaml_mapping_lookup (root, "empty");
  NCL_CHECK (empty && ncl_yaml_node_get_type (empty) == NCL_YAML_SCALAR);
  NCL_CHECK (empty && g_strcmp0 (ncl_yaml_node_get_scalar (empty), "") == 0);

  /* ncl_yaml_set_error: position and key path, none for the root */
  NCL_CHECK (!ncl_yaml_set_error (doc, k1, &err, "bad %s", "kernel"));
  NCL_CHECK (err && g_error_matches (err, NCL_ERROR,
          NCL_ERROR_INVALID_CONFIG));
  NCL_CHECK (err && strcmp (err->message,
          "tree.yaml:5:17: bad kernel (at layers[0].kernel[1])") == 0);
  g_clear_error (&err);
  NCL_CHECK (!ncl_yaml_set_error (doc, root, &err, "no %d", 3));
  NCL_CHECK (err && strcmp (err->message, "tree.yaml:2:1: no 3") == 0);
  g_clear_error (&err);
  NCL_CHECK (!ncl_yaml_set_error (doc, NULL, &err, "whole file"));
  NCL_CHECK (err && strcmp (err->message, "tree.yaml: whole file") == 0);
  g_clear_error (&err);
  NCL_CHECK (!ncl_yaml_set_error (doc, k1, NULL, "ignored"));

  /* conversions of one node */
  {
    gint i = 0;
    gdouble d = 0;

    NCL_CHECK (ncl_yaml_node_to_int (doc, k1, 1, 7, &i, &err) && i == 3);
    NCL_CHECK_NO_ERROR (err);
    NCL_CHECK (!ncl_yaml_node_to_int (doc, k1, 4, 7, &i, &err) && i == 3);
    NCL_CHECK (err && strstr (err->message,
            "tree.yaml:5:17: kernel[1]: 3 is out of range [4, 7]"));
    g_clear_error (&err);
    NCL_CHECK (ncl_yaml_node_to_double (doc, k1, 0, 10, &d, &err) &&
        d == 3.0);
    NCL_CHECK_NO_ERROR (err);
    NCL_CHECK (!ncl_yaml_node_to_double (doc, kernel, 0, 10, &d, &err));
    NCL_CHECK (err && strstr (err->message, "found a sequence"));
    g_clear_error (&err);
  }
  g_print ("ok tree\n");
}

static void
test_empty_and_comments (void)
{
  static const gchar *const texts[] = { "", "# only a comment\n", "\n\n",
    "---\n", "---\n...\n"
  };

  for (guint i = 0; i < G_N_ELEMENTS (texts); i++) {
    g_autoptr (NclYamlDoc) doc = NULL;
    g_autoptr (GError) err = NULL;

    doc = ncl_yaml_load_string (texts[i], "empty.yaml", &err);
    NCL_CHECK_NO_ERROR (err);
    NCL_CHECK (doc != NULL && ncl_yaml_doc_get_root (doc) == NULL);
    NCL_CHECK (doc && ncl_yaml_check_keys (doc, NULL, allowed_keys, &err));
  }
  g_print ("ok empty documents\n");
}

static void
test_files (const gchar * tmpdir)
{
  g_autofree gchar *missing = g_build_filename (tmpdir, "nope.yaml", NULL);
  g_autofree gchar *sub = g_build_filename (tmpdir, "sub", NULL);
  g_autofree gchar *path = g_build_filename (sub, "model.yaml", NULL);
  g_autofree gchar *want = g_build_filename (sub, "w.safetensors", NULL);
  g_autofree gchar *resolved = NULL, *abs = NULL, *cwd_rel = NULL;
  g_autofree gchar *cwd = g_get_current_dir ();
  g_autofree gchar *want_cwd = g_build_filename (cwd, "w.safetensors", NULL);
  g_autoptr (NclYamlDoc) doc = NULL;
  g_autoptr (NclYamlDoc) sdoc = NULL;
  g_autoptr (GError) err = NULL;
  g_autofree gchar *message = NULL;

  NCL_CHECK (ncl_yaml_load_file (missing, &err) == NULL);
  NCL_CHECK (g_error_matches (err, NCL_ERROR, NCL_ERROR_NOT_FOUND));
  message = g_strdup_printf ("%s: No such file", missing);
  NCL_CHECK (err && strcmp (err->message, message) == 0);
  g_print ("missing file: %s\n", err ? err->message : "(no error)");
  g_clear_error (&err);

  NCL_CHECK (ncl_yaml_load_file (tmpdir, &err) == NULL);
  NCL_CHECK (g_error_matches (err, NCL_ERROR, NCL_ERROR_IO));
  g_print ("directory: %s\n", err ? err->message : "(no error)");
  g_clear_error (&err);

  g_mkdir (sub, 0755);
  NCL_CHECK (g_file_set_contents (path, "weights: w.safetensors\n", -1,
          NULL));
  doc = ncl_yaml_load_file (path, &err);
  NCL_CHECK_NO_ERROR (err);
  if (doc != NULL) {
    NCL_CHECK (strcmp (ncl_yaml_doc_get_path (doc), path) == 0);
    resolved = ncl_yaml_doc_resolve_path (doc, "w.safetensors");
    NCL_CHECK (g_strcmp0 (resolved, want) == 0);
    abs = ncl_yaml_doc_resolve_path (doc, "/abs/w.safetensors");
    NCL_CHECK (g_strcmp0 (abs, "/abs/w.safetensors") == 0);
  }
  sdoc = ncl_yaml_load_string ("a: 1\n", "inline", &err);
  NCL_CHECK_NO_ERROR (err);
  if (sdoc != NULL) {
    cwd_rel = ncl_yaml_doc_resolve_path (sdoc, "w.safetensors");
    NCL_CHECK (g_strcmp0 (cwd_rel, want_cwd) == 0);
  }
  g_unlink (path);
  g_rmdir (sub);
  g_print ("ok files and paths\n");
}

/* Aliases expand by copying; an alias bomb must stop, not eat memory. */
static void
test_alias_bomb (void)
{
  GString *s = g_string_new ("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
  g_autoptr (NclYamlDoc) doc = NULL;
  g_autoptr (GError) err = NULL;

  for (gint i = 1; i < 10; i++) {
    g_string_append_printf (s, "a%d: &a%d [", i, i);
    for (gint j = 0; j < 10; j++)
      g_string_append_printf (s, "%s*a%d", j ? ", " : "", i - 1);
    g_string_append (s, "]\n");
  }
  doc = ncl_yaml_load_string (s->str, "bomb.yaml", &err);
  NCL_CHECK (doc == NULL);
  NCL_CHECK (g_error_matches (err, NCL_ERROR, NCL_ERROR_INVALID_CONFIG));
  g_print ("alias bomb: %s\n", err ? err->message : "(no error)");
  g_string_free (s, TRUE);
}

int
main (void)
{
  g_autoptr (GError) err = NULL;
  g_autofree gchar *tmpdir = g_dir_make_tmp ("ncl-yaml-XXXXXX", &err);
  g_autofree gchar *file = NULL;

  g_assert_no_error (err);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    run_case (&cases[i], tmpdir);
  test_tree ();
  test_empty_and_comments ();
  test_files (tmpdir);
  test_alias_bomb ();

  file = g_build_filename (tmpdir, "test.yaml", NULL);
  g_unlink (file);
  g_rmdir (tmpdir);
  return ncl_test_finish ();
}
