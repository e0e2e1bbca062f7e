/* PyTorch fast_neural_style TransformerNet checkpoints: derive the YAML
 * graph from the state_dict names and shapes, so a .safetensors file saved
 * from PyTorch loads with no conversion step.
 *
 * conv1 9x9 s1 -> in1 relu -> conv2 3x3 s2 -> in2 relu -> conv3 3x3 s2 ->
 * in3 relu -> res1..resR (conv, in relu, conv, in + input) -> upsample x2 ->
 * deconv1 -> in4 relu -> upsample x2 -> deconv2 -> in5 relu -> deconv3.
 * Every conv is preceded by reflection padding of k/2.  Channel counts and
 * kernel sizes come from the tensors, so narrower variants load too. */
#include "model-private.h"

#include <neuralcl/error.h>

static gint
kernel_size (NclSafetensors * st, const gchar * prefix)
{
  g_autofree gchar *name = g_strconcat (prefix, ".conv2d.weight", NULL);
  const NclSafetensor *t = ncl_safetensors_lookup (st, name);

  if (t == NULL || t->ndim != 4)
    return -1;
  return (gint) t->shape[2];
}

gboolean
ncl_transformer_net_detect (NclSafetensors * st)
{
  return ncl_safetensors_lookup (st, "conv1.conv2d.weight") != NULL &&
      ncl_safetensors_lookup (st, "deconv3.conv2d.weight") != NULL;
}

static gboolean
append_conv (GString * s, NclSafetensors * st, const gchar * name,
    const gchar * input, gint stride, GError ** error)
{
  gint k = kernel_size (st, name);
  g_autofree gchar *w = g_strconcat (name, ".conv2d.weight", NULL);
  g_autofree gchar *b = g_strconcat (name, ".conv2d.bias", NULL);

  if (k < 1) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_INVALID_MODEL,
        "%s: tensor '%s': missing or not 4-D (TransformerNet checkpoint)",
        ncl_safetensors_get_path (st), w);
    return FALSE;
  }
  g_string_append_printf (s, "  - name: %s\n    op: conv\n", name);
  if (input)
    g_string_append_printf (s, "    input: %s\n", input);
  g_string_append_printf (s, "    kernel: %d\n    stride: %d\n"
      "    padding: %d\n    pad-mode: reflect\n    weight: %s\n", k, stride,
      k / 2, w);
  if (ncl_safetensors_lookup (st, b))
    g_string_append_printf (s, "    bias: %s\n", b);
  return TRUE;
}

static void
append_norm (GString * s, const gchar * name, gboolean relu,
    const gchar * residual)
{
  g_string_append_printf (s, "  - name: %s\n    op: instance_norm\n"
      "    weight: %s.weight\n    bias: %s.bias\n    eps: 1e-5\n", name, name,
      name);
  if (relu)
    g_string_append (s, "    activation: relu\n");
  if (residual)
    g_string_append_printf (s, "    residual: %s\n", residual);
}

gchar *
ncl_transformer_net_graph (NclSafetensors * st, const gchar * name,
    GError ** error)
{
  g_autoptr (GString) s = g_string_new (NULL);
  const gchar *origin = ncl_safetensors_get_metadata (st, "origin");
  g_autofree gchar *wname = g_path_get_basename (ncl_safetensors_get_path
      (st));
  gint r;

  g_string_append_printf (s, "neuralcl-model: 1\nname: %s\n"
      "architecture: transformer_net\n", name);
  if (origin)
    g_string_append_printf (s, "origin: \"%s\"\n", origin);
  else
    g_string_append (s, "origin: imported checkpoint (PyTorch "
        "fast_neural_style)\n");
  g_string_append_printf (s, "weights: %s\n"
      "input:\n  channels: 3\n  size-multiple: 4\nlayers:\n", wname);

  if (!append_conv (s, st, "conv1", NULL, 1, error))
    return NULL;
  append_norm (s, "in1", TRUE, NULL);
  if (!append_conv (s, st, "conv2", NULL, 2, error))
    return NULL;
  append_norm (s, "in2", TRUE, NULL);
  if (!append_conv (s, st, "conv3", NULL, 2, error))
    return NULL;
  append_norm (s, "in3", TRUE, NULL);

  for (r = 1;; r++) {
    g_autofree gchar *c1 = g_strdup_printf ("res%d.conv1", r);
    g_autofree gchar *c2 = g_strdup_printf ("res%d.conv2", r);
    g_autofree gchar *n1 = g_strdup_printf ("res%d.in1", r);
    g_autofree gchar *n2 = g_strdup_printf ("res%d.in2", r);
    g_autofree gchar *block_in = r == 1 ? g_strdup ("in3") :
        g_strdup_printf ("res%d.in2", r - 1);

    if (kernel_size (st, c1) < 0)
      break;
    if (!append_conv (s, st, c1, NULL, 1, error))
      return NULL;
    append_norm (s, n1, TRUE, NULL);
    if (!append_conv (s, st, c2, NULL, 1, error))
      return NULL;
    append_norm (s, n2, FALSE, block_in);
  }

  g_string_append (s, "  - name: up1\n    op: upsample\n    scale: 2\n");
  if (!append_conv (s, st, "deconv1", NULL, 1, error))
    return NULL;
  append_norm (s, "in4", TRUE, NULL);
  g_string_append (s, "  - name: up2\n    op: upsample\n    scale: 2\n");
  if (!append_conv (s, st, "deconv2", NULL, 1, error))
    return NULL;
  append_norm (s, "in5", TRUE, NULL);
  if (!append_conv (s, st, "deconv3", NULL, 1, error))
    return NULL;
  return g_string_free (g_steal_pointer (&s), FALSE);
}
