/* Model loader: YAML graph + safetensors weights -> NclModel.
 * The format is documented in docs/model-format.md. */
#include "model-private.h"

#include <neuralcl/error.h>

#include <string.h>

#define FORMAT_KEY "neuralcl-model"
#define FORMAT_VERSION 1

static const struct
{
  const gchar *name;
  NclOp op;
} op_names[] = {
  {"conv", NCL_OP_CONV},
  {"instance_norm", NCL_OP_INSTANCE_NORM},
  {"activation", NCL_OP_ACTIVATION},
  {"add", NCL_OP_ADD},
  {"upsample", NCL_OP_UPSAMPLE},
  {"pad", NCL_OP_PAD},
  {"max_pool", NCL_OP_MAX_POOL},
  {"avg_pool", NCL_OP_AVG_POOL},
  {"global_avg_pool", NCL_OP_GLOBAL_AVG_POOL},
  {"fc", NCL_OP_FC},
  {"concat", NCL_OP_CONCAT},
  {"l2_norm", NCL_OP_L2_NORM},
  {"clamp", NCL_OP_CLAMP},
};

const gchar *
ncl_op_to_string (NclOp op)
{
  for (guint i = 0; i < G_N_ELEMENTS (op_names); i++)
    if (op_names[i].op == op)
      return op_names[i].name;
  return "?";
}

static void
constant_free (gpointer p)
{
  NclConstant *c = p;

  g_free (c->data);
  g_free (c);
}

static void
node_free (gpointer p)
{
  NclNode *n = p;

  g_free (n->name);
  g_free (n->weight);
  g_free (n->bias);
  g_free (n->gamma);
  g_free (n->beta);
  g_free (n);
}

/* ---- parse state -------------------------------------------------------- */

typedef struct
{
  const gchar *path;
  NclYamlDoc *doc;
  NclSafetensors *st;
  GPtrArray *nodes;
  GHashTable *index;            /* name -> node index + 1 (aliases too) */
  GHashTable *used;             /* tensor names referenced */
} Parse;

static gint
lookup_node (Parse * ps, const gchar * name)
{
  gpointer v;

  if (g_str_equal (name, "input"))
    return NCL_NODE_INPUT;
  v = g_hash_table_lookup (ps->index, name);
  return v ? GPOINTER_TO_INT (v) - 1 : -2;
}

static gint
node_channels (Parse * ps, gint idx, gint input_channels)
{
  if (idx == NCL_NODE_INPUT)
    return input_channels;
  return ((NclNode *) g_ptr_array_index (ps->nodes, idx))->channels;
}

/* Reads the layer input reference @key (a layer name) or defaults to the
 * previous layer. */
static gboolean
parse_input (Parse * ps, const NclYamlNode * layer, const gchar * key,
    gint def, gint * out, GError ** error)
{
  const NclYamlNode *v = ncl_yaml_mapping_lookup (layer, key);
  const gchar *s;
  gint idx;

  if (v == NULL) {
    *out = def;
    return TRUE;
  }
  s = ncl_yaml_node_get_scalar (v);
  if (s == NULL)
    return ncl_yaml_set_error (ps->doc, v, error,
        "expected a layer name");
  idx = lookup_node (ps, s);
  if (idx == -2)
    return ncl_yaml_set_error (ps->doc, v, error,
        "no earlier layer named '%s'", s);
  *out = idx;
  return TRUE;
}

static gboolean
parse_inputs2 (Parse * ps, const NclYamlNode * layer, gint * a, gint * b,
    GError ** error)
{
  const NclYamlNode *v = ncl_yaml_mapping_lookup (layer, "inputs");

  if (v == NULL || ncl_yaml_node_get_type (v) != NCL_YAML_SEQUENCE ||
      ncl_yaml_node_get_n_children (v) != 2)
    return ncl_yaml_set_error (ps->doc, v ? v : layer, error,
        "expected 'inputs: [LAYER, LAYER]'");
  for (guint i = 0; i < 2; i++) {
    const NclYamlNode *e = ncl_yaml_node_get_nth (v, i);
    const gchar *s = ncl_yaml_node_get_scalar (e);
    gint idx = s ? lookup_node (ps, s) : -2;

    if (idx == -2)
      return ncl_yaml_set_error (ps->doc, e, error,
          "no earlier layer named '%s'", s ? s : "(not a name)");
    if (i == 0)
      *a = idx;
    else
      *b = idx;
  }
  return TRUE;
}

/* Reads tensor @key of @layer with the expected shape (-1 = any). */
static gfloat *
parse_tensor (Parse * ps, const NclYamlNode * layer, const gchar * key,
    gboolean required, gint ndim, gint64 * shape, GError ** error)
{
  const NclYamlNode *v = ncl_yaml_mapping_lookup (layer, key);
  const NclSafetensor *t;
  const gchar *name;
  gfloat *data;

  if (v == NULL) {
    if (required)
      ncl_yaml_set_error (ps->doc, layer, error, "missing '%s' (a tensor name)",
          key);
    return NULL;
  }
  name = ncl_yaml_node_get_scalar (v);
  if (name == NULL) {
    ncl_yaml_set_error (ps->doc, v, error, "expected a tensor name");
    return NULL;
  }
  t = ncl_safetensors_lookup (ps->st, name);
  if (t == NULL) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
        "%s: tensor '%s': missing (needed by %s:%u:%u)",
        ncl_safetensors_get_path (ps->st), name, ps->path,
        ncl_yaml_node_get_line (v), ncl_yaml_node_get_column (v));
    return NULL;
  }
  if (t->ndim != ndim) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
        "%s: tensor '%s': %d dims, expected %d",
        ncl_safetensors_get_path (ps->st), name, t->ndim, ndim);
    return NULL;
  }
  /* fill in the free dimensions from the file, then check all */
  for (gint i = 0; i < ndim; i++)
    if (shape[i] < 0)
      shape[i] = t->shape[i];
  data = ncl_safetensors_read_f32 (ps->st, name, ndim, shape, error);
  if (data != NULL)
    g_hash_table_add (ps->used, g_strdup (name));
  return data;
}

/* "kernel: 3" or "kernel: [3, 5]" */
static gboolean
parse_pair (Parse * ps, const NclYamlNode * layer, const gchar * key,
    gint min, gint * a, gint * b, GError ** error)
{
  const NclYamlNode *v = ncl_yaml_mapping_lookup (layer, key);

  if (v == NULL)
    return TRUE;
  if (ncl_yaml_node_get_type (v) == NCL_YAML_SEQUENCE) {
    if (ncl_yaml_node_get_n_children (v) != 2)
      return ncl_yaml_set_error (ps->doc, v, error,
          "expected a number or [height, width]");
    return ncl_yaml_node_to_int (ps->doc, ncl_yaml_node_get_nth (v, 0), min,
        4096, a, error) && ncl_yaml_node_to_int (ps->doc,
        ncl_yaml_node_get_nth (v, 1), min, 4096, b, error);
  }
  if (!ncl_yaml_node_to_int (ps->doc, v, min, 4096, a, error))
    return FALSE;
  *b = *a;
  return TRUE;
}

/* "padding: 4", "[top, bottom, left, right]", "same", "valid" and
 * "pad-mode: zero|reflect|edge" */
static gboolean
parse_padding (Parse * ps, const NclYamlNode * layer, NclPadding * pad,
    gboolean * same, GError ** error)
{
  const NclYamlNode *v = ncl_yaml_mapping_lookup (layer, "padding");
  const NclYamlNode *m = ncl_yaml_mapping_lookup (layer, "pad-mode");
  const gchar *s;
  gint p;

  memset (pad, 0, sizeof (*pad));
  *same = FALSE;
  if (m != NULL) {
    NclPadMode mode;
    s = ncl_yaml_node_get_scalar (m);
    if (s == NULL || !ncl_pad_mode_from_string (s, &mode))
      return ncl_yaml_set_error (ps->doc, m, error,
          "unknown pad-mode '%s' (expected zero, reflect or edge)",
          s ? s : "");
    pad->mode = mode;
  }
  if (v == NULL)
    return TRUE;
  if (ncl_yaml_node_get_type (v) == NCL_YAML_SEQUENCE) {
    gint vals[4];
    if (ncl_yaml_node_get_n_children (v) != 4)
      return ncl_yaml_set_error (ps->doc, v, error,
          "expected [top, bottom, left, right]");
    for (guint i = 0; i < 4; i++)
      if (!ncl_yaml_node_to_int (ps->doc, ncl_yaml_node_get_nth (v, i), 0,
              1024, &vals[i], error))
        return FALSE;
    pad->top = vals[0];
    pad->bottom = vals[1];
    pad->left = vals[2];
    pad->right = vals[3];
    return TRUE;
  }
  s = ncl_yaml_node_get_scalar (v);
  if (s && g_str_equal (s, "same")) {
    *same = TRUE;
    return TRUE;
  }
  if (s && g_str_equal (s, "valid"))
    return TRUE;
  if (!ncl_yaml_node_to_int (ps->doc, v, 0, 1024, &p, error))
    return FALSE;
  pad->top = pad->bottom = pad->left = pad->right = p;
  return TRUE;
}

static gboolean
parse_activation (Parse * ps, const NclYamlNode * layer, NclNode * n,
    GError ** error)
{
  const NclYamlNode *v = ncl_yaml_mapping_lookup (layer, "activation");
  const gchar *s;
  gdouble alpha = 0.01;

  n->act = NCL_ACT_NONE;
  if (v == NULL)
    return TRUE;
  s = ncl_yaml_node_get_scalar (v);
  if (s == NULL || !ncl_activation_from_string (s, &n->act))
    return ncl_yaml_set_error (ps->doc, v, error,
        "unknown activation '%s' (expected none, relu, leaky_relu, sigmoid "
        "or tanh)", s ? s : "");
  if (!ncl_yaml_get_double (ps->doc, layer, "alpha", -100, 100, &alpha, error))
    return FALSE;
  n->alpha = alpha;
  return TRUE;
}

static const gchar *const common_keys[] = { "name", "op", "input", NULL };

static gboolean
check_layer_keys (Parse * ps, const NclYamlNode * layer,
    const gchar * const *extra, GError ** error)
{
  g_autoptr (GPtrArray) keys = g_ptr_array_new ();

  for (guint i = 0; common_keys[i]; i++)
    g_ptr_array_add (keys, (gpointer) common_keys[i]);
  for (guint i = 0; extra[i]; i++)
    g_ptr_array_add (keys, (gpointer) extra[i]);
  g_ptr_array_add (keys, NULL);
  return ncl_yaml_check_keys (ps->doc, layer,
      (const gchar * const *) keys->pdata, error);
}

static gboolean
fold_batchnorm (Parse * ps, const NclYamlNode * layer, const gchar * name,
    GError ** error)
{
  static const gchar *const keys[] = { "weight", "bias", "mean", "var", "eps",
    NULL
  };
  gint in;
  NclNode *conv;
  gint64 shape[1];
  g_autofree gfloat *gamma = NULL, *beta = NULL, *mean = NULL, *var = NULL;
  gdouble eps = 1e-5;
  gint per_out;

  if (!check_layer_keys (ps, layer, keys, error) ||
      !parse_input (ps, layer, "input", ps->nodes->len - 1, &in, error))
    return FALSE;
  if (in < 0 || (conv = g_ptr_array_index (ps->nodes, in))->op != NCL_OP_CONV)
    return ncl_yaml_set_error (ps->doc, layer, error,
        "batch_norm must follow a conv (it is folded into it)");
  if (conv->act != NCL_ACT_NONE)
    return ncl_yaml_set_error (ps->doc, layer, error,
        "batch_norm after a conv with an activation cannot be folded");
  shape[0] = conv->channels;
  if (!(gamma = parse_tensor (ps, layer, "weight", TRUE, 1, shape, error)) ||
      !(beta = parse_tensor (ps, layer, "bias", TRUE, 1, shape, error)) ||
      !(mean = parse_tensor (ps, layer, "mean", TRUE, 1, shape, error)) ||
      !(var = parse_tensor (ps, layer, "var", TRUE, 1, shape, error)) ||
      !ncl_yaml_get_double (ps->doc, layer, "eps", 0, 1, &eps, error))
    return FALSE;
  if (conv->bias == NULL) {
    conv->bias = g_new0 (gfloat, conv->channels);
    conv->conv.bias = conv->bias;
  }
  per_out = conv->conv.cin / conv->conv.groups * conv->conv.kh * conv->conv.kw;
  ncl_conv2d_fold_batchnorm (conv->channels, per_out, conv->weight,
      conv->bias, gamma, beta, mean, var, eps);
  /* later layers referring to the batch norm get the conv */
  g_hash_table_insert (ps->index, g_strdup (name), GINT_TO_POINTER (in + 1));
  return TRUE;
}

static gboolean
parse_layer (Parse * ps, const NclYamlNode * layer, gint input_channels,
    GError ** error)
{
  g_autoptr (GError) local = NULL;
  g_autofree gchar *name = NULL;
  g_autofree gchar *opname = NULL;
  NclNode *n;
  gint prev = (gint) ps->nodes->len - 1;
  gint cin;
  gboolean ok = FALSE;
  guint i;

  if (ncl_yaml_node_get_type (layer) != NCL_YAML_MAPPING)
    return ncl_yaml_set_error (ps->doc, layer, error,
        "expected a layer (a mapping with 'name' and 'op')");
  if (!ncl_yaml_get_string (ps->doc, layer, "name", &name, error) ||
      !ncl_yaml_get_string (ps->doc, layer, "op", &opname, error))
    return FALSE;
  if (name == NULL || opname == NULL)
    return ncl_yaml_set_error (ps->doc, layer, error,
        "a layer needs 'name' and 'op'");
  if (lookup_node (ps, name) != -2)
    return ncl_yaml_set_error (ps->doc, ncl_yaml_mapping_lookup (layer,
            "name"), error, "duplicate layer name '%s'", name);

  if (g_str_equal (opname, "batch_norm")) {
    /* folded, not a node of its own */
    return fold_batchnorm (ps, layer, name, error);
  }

  n = g_new0 (NclNode, 1);
  n->name = g_strdup (name);
  n->residual = -2;
  n->in1 = -2;
  for (i = 0; i < G_N_ELEMENTS (op_names); i++)
    if (g_str_equal (opname, op_names[i].name))
      break;
  if (i == G_N_ELEMENTS (op_names)) {
    ncl_yaml_set_error (ps->doc, ncl_yaml_mapping_lookup (layer, "op"), error,
        "unknown op '%s' (expected conv, instance_norm, batch_norm, "
        "activation, add, upsample, pad, max_pool, avg_pool, "
        "global_avg_pool, fc, concat, l2_norm or clamp)", opname);
    goto out;
  }
  n->op = op_names[i].op;

  if (n->op == NCL_OP_ADD || n->op == NCL_OP_CONCAT) {
    if (!parse_inputs2 (ps, layer, &n->in0, &n->in1, error))
      goto out;
  } else if (!parse_input (ps, layer, "input", prev, &n->in0, error)) {
    goto out;
  }
  cin = node_channels (ps, n->in0, input_channels);
  n->channels = cin;

  switch (n->op) {
    case NCL_OP_CONV:{
      static const gchar *const keys[] = { "filters", "kernel", "stride",
        "groups", "padding", "pad-mode", "activation", "alpha", "weight",
        "bias", NULL
      };
      gint64 wshape[4] = { -1, -1, -1, -1 };
      gint64 bshape[1];
      NclConvParams *p = &n->conv;

      p->groups = 1;
      p->stride_h = p->stride_w = 1;
      p->dilation = 1;
      p->kh = p->kw = -1;
      n->channels = -1;
      if (!check_layer_keys (ps, layer, keys, error) ||
          !ncl_yaml_get_int (ps->doc, layer, "filters", 1, 65536,
              &n->channels, error) ||
          !parse_pair (ps, layer, "kernel", 1, &p->kh, &p->kw, error) ||
          !parse_pair (ps, layer, "stride", 1, &p->stride_h, &p->stride_w,
              error) ||
          !ncl_yaml_get_int (ps->doc, layer, "groups", 1, 65536, &p->groups,
              error) ||
          !parse_padding (ps, layer, &p->pad, &n->same, error) ||
          !parse_activation (ps, layer, n, error))
        goto out;
      if (cin % p->groups != 0 ||
          (n->channels > 0 && n->channels % p->groups != 0)) {
        ncl_yaml_set_error (ps->doc, layer, error,
            "groups %d must divide the input channels (%d) and filters (%d)",
            p->groups, cin, n->channels);
        goto out;
      }
      wshape[0] = n->channels;
      wshape[1] = cin / p->groups;
      wshape[2] = p->kh;
      wshape[3] = p->kw;
      n->weight = parse_tensor (ps, layer, "weight", TRUE, 4, wshape, error);
      if (n->weight == NULL)
        goto out;
      n->channels = wshape[0];
      p->kh = wshape[2];
      p->kw = wshape[3];
      bshape[0] = n->channels;
      n->bias = parse_tensor (ps, layer, "bias", FALSE, 1, bshape, &local);
      if (local) {
        g_propagate_error (error, g_steal_pointer (&local));
        goto out;
      }
      p->cin = cin;
      p->cout = n->channels;
      p->act = n->act;
      p->alpha = n->alpha;
      p->weight = n->weight;
      p->bias = n->bias;
      break;
    }
    case NCL_OP_INSTANCE_NORM:{
      static const gchar *const keys[] = { "weight", "bias", "eps",
        "activation", "alpha", "residual", NULL
      };
      gint64 shape[1] = { cin };
      gdouble eps = 1e-5;

      if (!check_layer_keys (ps, layer, keys, error) ||
          !ncl_yaml_get_double (ps->doc, layer, "eps", 0, 1, &eps, error) ||
          !parse_activation (ps, layer, n, error))
        goto out;
      n->residual = -2;         /* none */
      if (ncl_yaml_mapping_lookup (layer, "residual") && (!parse_input (ps,
                  layer, "residual", -2, &n->residual, error) ||
              node_channels (ps, n->residual, input_channels) != cin)) {
        if (error && *error)
          goto out;
        ncl_yaml_set_error (ps->doc, ncl_yaml_mapping_lookup (layer,
                "residual"), error, "residual has %d channels, expected %d",
            node_channels (ps, n->residual, input_channels), cin);
        goto out;
      }
      n->eps = eps;
      n->gamma = parse_tensor (ps, layer, "weight", FALSE, 1, shape, &local);
      if (local == NULL)
        n->beta = parse_tensor (ps, layer, "bias", FALSE, 1, shape, &local);
      if (local) {
        g_propagate_error (error, g_steal_pointer (&local));
        goto out;
      }
      if ((n->gamma == NULL) != (n->beta == NULL)) {
        ncl_yaml_set_error (ps->doc, layer, error,
            "give both 'weight' and 'bias', or neither");
        goto out;
      }
      break;
    }
    case NCL_OP_ACTIVATION:{
      static const gchar *const keys[] = { "activation", "alpha", NULL };
      if (!check_layer_keys (ps, layer, keys, error) ||
          !parse_activation (ps, layer, n, error))
        goto out;
      break;
    }
    case NCL_OP_ADD:{
      static const gchar *const keys[] = { "inputs", "activation", "alpha",
        NULL
      };
      if (!check_layer_keys (ps, layer, keys, error) ||
          !parse_activation (ps, layer, n, error))
        goto out;
      if (node_channels (ps, n->in1, input_channels) != cin) {
        ncl_yaml_set_error (ps->doc, layer, error,
            "add: inputs have %d and %d channels", cin,
            node_channels (ps, n->in1, input_channels));
        goto out;
      }
      break;
    }
    case NCL_OP_CONCAT:{
      static const gchar *const keys[] = { "inputs", NULL };
      if (!check_layer_keys (ps, layer, keys, error))
        goto out;
      n->channels = cin + node_channels (ps, n->in1, input_channels);
      break;
    }
    case NCL_OP_UPSAMPLE:{
      static const gchar *const keys[] = { "scale", NULL };
      n->scale = 2;
      if (!check_layer_keys (ps, layer, keys, error) ||
          !ncl_yaml_get_int (ps->doc, layer, "scale", 1, 16, &n->scale,
              error))
        goto out;
      break;
    }
    case NCL_OP_PAD:{
      static const gchar *const keys[] = { "padding", "pad-mode", "channels",
        NULL
      };
      if (!check_layer_keys (ps, layer, keys, error) ||
          !parse_padding (ps, layer, &n->pad, &n->same, error) ||
          !parse_pair (ps, layer, "channels", 0, &n->chan_before,
              &n->chan_after, error))
        goto out;
      n->channels = cin + n->chan_before + n->chan_after;
      if (n->same) {
        ncl_yaml_set_error (ps->doc, layer, error,
            "pad: 'same' is only meaningful for conv and pools");
        goto out;
      }
      n->scale = 1;
      break;
    }
    case NCL_OP_MAX_POOL:
    case NCL_OP_AVG_POOL:{
      static const gchar *const keys[] = { "kernel", "stride", "padding",
        NULL
      };
      NclPoolParams *p = &n->pool;
      p->type = n->op == NCL_OP_MAX_POOL ? NCL_POOL_MAX : NCL_POOL_AVG;
      p->kh = p->kw = 2;
      p->stride_h = p->stride_w = -1;
      if (!check_layer_keys (ps, layer, keys, error) ||
          !parse_pair (ps, layer, "kernel", 1, &p->kh, &p->kw, error) ||
          !parse_pair (ps, layer, "stride", 1, &p->stride_h, &p->stride_w,
              error) || !parse_padding (ps, layer, &p->pad, &n->same, error))
        goto out;
      if (p->stride_h < 0) {
        p->stride_h = p->kh;
        p->stride_w = p->kw;
      }
      break;
    }
    case NCL_OP_GLOBAL_AVG_POOL:
    case NCL_OP_L2_NORM:{
      static const gchar *const keys[] = { "eps", NULL };
      gdouble eps = 1e-12;
      if (!check_layer_keys (ps, layer, keys, error) ||
          !ncl_yaml_get_double (ps->doc, layer, "eps", 0, 1, &eps, error))
        goto out;
      n->eps = eps;
      break;
    }
    case NCL_OP_FC:{
      static const gchar *const keys[] = { "units", "activation", "alpha",
        "weight", "bias", "in-features", NULL
      };
      gint64 wshape[2] = { -1, -1 };
      gint64 bshape[1];
      n->units = -1;
      if (!check_layer_keys (ps, layer, keys, error) ||
          !ncl_yaml_get_int (ps->doc, layer, "units", 1, 1 << 20, &n->units,
              error) || !parse_activation (ps, layer, n, error))
        goto out;
      wshape[0] = n->units;
      n->weight = parse_tensor (ps, layer, "weight", TRUE, 2, wshape, error);
      if (n->weight == NULL)
        goto out;
      n->units = n->channels = wshape[0];
      /* the input size (c*h*w) is checked when the runner knows h and w */
      n->conv.cin = wshape[1];
      bshape[0] = n->units;
      n->bias = parse_tensor (ps, layer, "bias", FALSE, 1, bshape, &local);
      if (local) {
        g_propagate_error (error, g_steal_pointer (&local));
        goto out;
      }
      break;
    }
    case NCL_OP_CLAMP:{
      static const gchar *const keys[] = { "min", "max", NULL };
      gdouble lo = -G_MAXFLOAT, hi = G_MAXFLOAT;
      if (!check_layer_keys (ps, layer, keys, error) ||
          !ncl_yaml_get_double (ps->doc, layer, "min", -G_MAXFLOAT,
              G_MAXFLOAT, &lo, error) ||
          !ncl_yaml_get_double (ps->doc, layer, "max", -G_MAXFLOAT,
              G_MAXFLOAT, &hi, error))
        goto out;
      n->lo = lo;
      n->hi = hi;
      break;
    }
  }
  ok = TRUE;

out:
  if (!ok) {
    node_free (n);
    return FALSE;
  }
  g_ptr_array_add (ps->nodes, n);
  g_hash_table_insert (ps->index, g_strdup (name),
      GINT_TO_POINTER (ps->nodes->len));
  return TRUE;
}

static gchar *
compute_fingerprint (const gchar * yaml, NclSafetensors * st)
{
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  const gchar *w = ncl_safetensors_get_checksum (st);

  g_checksum_update (sum, (const guchar *) yaml, strlen (yaml));
  g_checksum_update (sum, (const guchar *) w, strlen (w));
  return g_strdup (g_checksum_get_string (sum));
}

NclModel *
ncl_model_parse (const gchar * path, const gchar * yaml_text,
    NclSafetensors * weights, GError ** error)
{
  static const gchar *const top_keys[] = { FORMAT_KEY, "name", "architecture",
    "origin", "weights", "input", "output", "outputs", "constants", "layers",
    "description", NULL
  };
  static const gchar *const input_keys[] = { "channels", "size-multiple",
    NULL
  };
  g_autoptr (NclYamlDoc) doc = NULL;
  g_autoptr (NclSafetensors) own_st = NULL;
  g_autoptr (GHashTable) index = NULL;
  g_autoptr (GHashTable) used = NULL;
  g_autoptr (NclModel) model = NULL;
  g_autofree gchar *weights_rel = NULL;
  g_autofree gchar *output = NULL;
  const NclYamlNode *root, *layers, *input;
  Parse ps = { 0 };
  gint version = 0;

  doc = ncl_yaml_load_string (yaml_text, path, error);
  if (doc == NULL)
    return NULL;
  root = ncl_yaml_doc_get_root (doc);
  if (root == NULL || ncl_yaml_node_get_type (root) != NCL_YAML_MAPPING) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
        "%s: not a model graph (expected a mapping with '" FORMAT_KEY
        ": 1' and 'layers')", path);
    return NULL;
  }
  if (!ncl_yaml_check_keys (doc, root, top_keys, error) ||
      !ncl_yaml_get_int (doc, root, FORMAT_KEY, 0, 1000, &version, error))
    return NULL;
  if (version != FORMAT_VERSION) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
        "%s: '" FORMAT_KEY ": %d' %s (this build reads version %d)", path,
        version, version == 0 ? "is missing" : "is not supported",
        FORMAT_VERSION);
    return NULL;
  }

  model = g_new0 (NclModel, 1);
  model->ref_count = 1;
  model->path = g_strdup (path);
  model->yaml = g_strdup (yaml_text);
  model->input_channels = 3;
  model->size_multiple = 1;
  model->nodes = g_ptr_array_new_with_free_func (node_free);
  model->outputs = g_array_new (FALSE, FALSE, sizeof (gint));
  model->constants = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      constant_free);
  if (!ncl_yaml_get_string (doc, root, "name", &model->name, error) ||
      !ncl_yaml_get_string (doc, root, "architecture", &model->architecture,
          error) ||
      !ncl_yaml_get_string (doc, root, "origin", &model->origin, error) ||
      !ncl_yaml_get_string (doc, root, "weights", &weights_rel, error) ||
      !ncl_yaml_get_string (doc, root, "output", &output, error))
    return NULL;
  if (model->name == NULL) {
    g_autofree gchar *base = g_path_get_basename (path);
    gchar *dot = strrchr (base, '.');
    if (dot)
      *dot = '\0';
    model->name = g_strdup (base);
  }
  if (model->architecture == NULL)
    model->architecture = g_strdup ("custom");
  if (model->origin == NULL)
    model->origin = g_strdup ("unknown");

  input = ncl_yaml_mapping_lookup (root, "input");
  if (input != NULL && (!ncl_yaml_check_keys (doc, input, input_keys, error)
          || !ncl_yaml_get_int (doc, input, "channels", 1, 4096,
              &model->input_channels, error)
          || !ncl_yaml_get_int (doc, input, "size-multiple", 1, 1024,
              &model->size_multiple, error)))
    return NULL;

  if (weights == NULL) {
    g_autofree gchar *wpath = NULL;
    if (weights_rel == NULL) {
      ncl_yaml_set_error (doc, root, error,
          "missing 'weights' (a .safetensors file)");
      return NULL;
    }
    if (g_path_is_absolute (weights_rel)) {
      wpath = g_strdup (weights_rel);
    } else {
      g_autofree gchar *dir = g_path_get_dirname (path);
      wpath = g_build_filename (dir, weights_rel, NULL);
    }
    own_st = ncl_safetensors_load (wpath, error);
    if (own_st == NULL)
      return NULL;
    weights = own_st;
  }
  model->weights_path = g_strdup (ncl_safetensors_get_path (weights));

  layers = ncl_yaml_mapping_lookup (root, "layers");
  if (layers == NULL || ncl_yaml_node_get_type (layers) != NCL_YAML_SEQUENCE
      || ncl_yaml_node_get_n_children (layers) == 0) {
    ncl_yaml_set_error (doc, layers ? layers : root, error,
        "expected 'layers' with at least one layer");
    return NULL;
  }

  index = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  used = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  ps.path = path;
  ps.doc = doc;
  ps.st = weights;
  ps.nodes = model->nodes;
  ps.index = index;
  ps.used = used;
  for (guint i = 0; i < ncl_yaml_node_get_n_children (layers); i++)
    if (!parse_layer (&ps, ncl_yaml_node_get_nth (layers, i),
            model->input_channels, error))
      return NULL;
  if (model->nodes->len == 0) {
    ncl_yaml_set_error (doc, layers, error, "the graph has no layers");
    return NULL;
  }

  /* constants: tensors the graph's user reads directly */
  {
    const NclYamlNode *cl = ncl_yaml_mapping_lookup (root, "constants");
    if (cl != NULL && ncl_yaml_node_get_type (cl) != NCL_YAML_SEQUENCE) {
      ncl_yaml_set_error (doc, cl, error, "expected a list of tensor names");
      return NULL;
    }
    for (guint i = 0; cl && i < ncl_yaml_node_get_n_children (cl); i++) {
      const NclYamlNode *e = ncl_yaml_node_get_nth (cl, i);
      const gchar *name = ncl_yaml_node_get_scalar (e);
      const NclSafetensor *t = name ? ncl_safetensors_lookup (weights, name) :
          NULL;
      NclConstant *c;

      if (t == NULL) {
        g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
            "%s: tensor '%s': missing (needed by %s:%u:%u)",
            ncl_safetensors_get_path (weights), name ? name : "?", path,
            ncl_yaml_node_get_line (e), ncl_yaml_node_get_column (e));
        return NULL;
      }
      c = g_new0 (NclConstant, 1);
      c->ndim = t->ndim;
      memcpy (c->shape, t->shape, sizeof (gint64) * MIN (t->ndim, 8));
      c->data = ncl_safetensors_read_f32 (weights, name, t->ndim, t->shape,
          error);
      if (c->data == NULL) {
        constant_free (c);
        return NULL;
      }
      g_hash_table_insert (model->constants, g_strdup (name), c);
      g_hash_table_add (used, g_strdup (name));
    }
  }

  /* every tensor of the file must be used */
  for (guint i = 0; i < ncl_safetensors_get_n_tensors (weights); i++) {
    const NclSafetensor *t = ncl_safetensors_get_nth (weights, i);
    if (!g_hash_table_contains (used, t->name)) {
      g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
          "%s: tensor '%s': not used by the graph %s",
          ncl_safetensors_get_path (weights), t->name, path);
      return NULL;
    }
  }

  {
    const NclYamlNode *ol = ncl_yaml_mapping_lookup (root, "outputs");
    if (output != NULL && ol != NULL) {
      ncl_yaml_set_error (doc, ol, error, "give 'output' or 'outputs', "
          "not both");
      return NULL;
    }
    if (ol != NULL && (ncl_yaml_node_get_type (ol) != NCL_YAML_SEQUENCE ||
            ncl_yaml_node_get_n_children (ol) == 0)) {
      ncl_yaml_set_error (doc, ol, error, "expected a list of layer names");
      return NULL;
    }
    if (ol == NULL && output == NULL) {
      gint o = model->nodes->len - 1;
      g_array_append_val (model->outputs, o);
    } else if (ol == NULL) {
      gint o = lookup_node (&ps, output);
      if (o < 0) {
        ncl_yaml_set_error (doc, ncl_yaml_mapping_lookup (root, "output"),
            error, "no layer named '%s'", output);
        return NULL;
      }
      g_array_append_val (model->outputs, o);
    }
    for (guint i = 0; ol && i < ncl_yaml_node_get_n_children (ol); i++) {
      const NclYamlNode *e = ncl_yaml_node_get_nth (ol, i);
      const gchar *name = ncl_yaml_node_get_scalar (e);
      gint o = name ? lookup_node (&ps, name) : -2;
      if (o < 0) {
        ncl_yaml_set_error (doc, e, error, "no layer named '%s'",
            name ? name : "?");
        return NULL;
      }
      g_array_append_val (model->outputs, o);
    }
  }
  model->fingerprint = compute_fingerprint (yaml_text, weights);
  return g_steal_pointer (&model);
}

NclModel *
ncl_model_load (const gchar * path, GError ** error)
{
  g_autofree gchar *text = NULL;
  g_autoptr (GError) local = NULL;

  if (!g_file_test (path, G_FILE_TEST_EXISTS)) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_NOT_FOUND,
        "%s: no such model file", path);
    return NULL;
  }
  if (g_str_has_suffix (path, ".safetensors")) {
    g_autoptr (NclSafetensors) st = ncl_safetensors_load (path, error);
    g_autofree gchar *name = NULL;
    gchar *dot;

    if (st == NULL)
      return NULL;
    if (!ncl_transformer_net_detect (st)) {
      g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
          "%s: a bare weights file must be a PyTorch fast_neural_style "
          "TransformerNet (no tensor 'conv1.conv2d.weight'); other models "
          "need a YAML graph (see docs/model-format.md)", path);
      return NULL;
    }
    name = g_path_get_basename (path);
    dot = strrchr (name, '.');
    if (dot)
      *dot = '\0';
    text = ncl_transformer_net_graph (st, name, error);
    if (text == NULL)
      return NULL;
    return ncl_model_parse (path, text, st, error);
  }

  if (!g_file_get_contents (path, &text, NULL, &local)) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_IO, "%s: %s", path,
        local->message);
    return NULL;
  }
  return ncl_model_parse (path, text, NULL, error);
}

NclModel *
ncl_model_ref (NclModel * model)
{
  g_atomic_int_inc (&model->ref_count);
  return model;
}

void
ncl_model_unref (NclModel * model)
{
  if (model == NULL || !g_atomic_int_dec_and_test (&model->ref_count))
    return;
  if (model->nodes)
    g_ptr_array_unref (model->nodes);
  if (model->outputs)
    g_array_unref (model->outputs);
  if (model->constants)
    g_hash_table_unref (model->constants);
  g_free (model->path);
  g_free (model->name);
  g_free (model->architecture);
  g_free (model->origin);
  g_free (model->fingerprint);
  g_free (model->yaml);
  g_free (model->weights_path);
  g_free (model);
}

const gchar *
ncl_model_get_path (const NclModel * model)
{
  return model->path;
}

const gchar *
ncl_model_get_name (const NclModel * model)
{
  return model->name;
}

const gchar *
ncl_model_get_architecture (const NclModel * model)
{
  return model->architecture;
}

const gchar *
ncl_model_get_origin (const NclModel * model)
{
  return model->origin;
}

const gchar *
ncl_model_get_fingerprint (const NclModel * model)
{
  return model->fingerprint;
}

gint
ncl_model_get_input_channels (const NclModel * model)
{
  return model->input_channels;
}

gint
ncl_model_get_size_multiple (const NclModel * model)
{
  return model->size_multiple;
}

guint
ncl_model_get_n_outputs (const NclModel * model)
{
  return model->outputs->len;
}

const gchar *
ncl_model_get_output_name (const NclModel * model, guint i)
{
  gint idx;

  if (i >= model->outputs->len)
    return NULL;
  idx = g_array_index (model->outputs, gint, i);
  return ((NclNode *) g_ptr_array_index (model->nodes, idx))->name;
}

const gfloat *
ncl_model_get_constant (const NclModel * model, const gchar * name,
    gint * ndim, gint64 * shape)
{
  NclConstant *c = g_hash_table_lookup (model->constants, name);

  if (c == NULL)
    return NULL;
  if (ndim)
    *ndim = c->ndim;
  if (shape)
    memcpy (shape, c->shape, sizeof (gint64) * c->ndim);
  return c->data;
}

gchar *
ncl_model_to_yaml (const NclModel * model, const gchar * weights_name)
{
  GString *s = g_string_new (NULL);
  gchar **lines = g_strsplit (model->yaml, "\n", -1);

  /* replace the weights line, keep everything else */
  for (guint i = 0; lines[i]; i++) {
    if (g_str_has_prefix (lines[i], "weights:") && weights_name)
      g_string_append_printf (s, "weights: %s\n", weights_name);
    else if (lines[i][0] != '\0' || lines[i + 1] != NULL)
      g_string_append_printf (s, "%s\n", lines[i]);
  }
  g_strfreev (lines);
  return g_string_free (s, FALSE);
}
