/* Face recognition settings from YAML (include/neuralcl/face-config.h). */
#include <neuralcl/face-config.h>
#include <neuralcl/config.h>
#include <neuralcl/error.h>

#include <string.h>

void
ncl_face_config_init (NclFaceConfig * c)
{
  memset (c, 0, sizeof (*c));
  ncl_face_settings_init (&c->face);
  ncl_tracker_settings_init (&c->tracker);
  c->threshold = -1;
  c->margin = -1;
  c->verifier = g_strdup ("distance");
  c->overlay = TRUE;
}

void
ncl_face_config_clear (NclFaceConfig * c)
{
  g_clear_pointer (&c->device, g_free);
  g_clear_pointer (&c->gallery, g_free);
  g_clear_pointer (&c->verifier, g_free);
  g_clear_pointer (&c->verifier_model, g_free);
}

static gboolean
get_path (const NclYamlDoc * doc, const NclYamlNode * root, const gchar * key,
    gchar ** out, GError ** error)
{
  g_autofree gchar *rel = NULL;

  if (!ncl_yaml_get_string (doc, root, key, &rel, error))
    return FALSE;
  if (rel != NULL) {
    g_free (*out);
    *out = ncl_yaml_doc_resolve_path (doc, rel);
  }
  return TRUE;
}

static gboolean
get_choice (const NclYamlDoc * doc, const NclYamlNode * root,
    const gchar * key, const gchar * const *choices, gint * value,
    GError ** error)
{
  const NclYamlNode *v = ncl_yaml_mapping_lookup (root, key);
  const gchar *s;

  if (v == NULL)
    return TRUE;
  s = ncl_yaml_node_get_scalar (v);
  for (gint i = 0; s && choices[i]; i++)
    if (g_str_equal (s, choices[i])) {
      *value = i;
      return TRUE;
    }
  {
    g_autofree gchar *list = g_strjoinv (", ", (gchar **) choices);
    return ncl_yaml_set_error (doc, v, error,
        "%s: '%s' is not one of %s", key, s ? s : "(not a string)", list);
  }
}

gboolean
ncl_face_config_load (NclFaceConfig * c, const gchar * path, GError ** error)
{
  static const gchar *const keys[] = { "device", "detector", "detector-size",
    "min-score", "border", "landmarks", "align", "max-faces", "gallery",
    "threshold", "margin", "verifier", "verifier-model", "overlay", "tracker",
    NULL
  };
  static const gchar *const tracker_keys[] = { "iou-threshold", "max-missed",
    "recognize-interval", "grow-factor", "score-gain", "vote-window", NULL
  };
  static const gchar *const detectors[] = { "tiny", "ssd", NULL };
  static const gchar *const landmarks[] = { "full", "tiny", NULL };
  static const gchar *const aligns[] = { "warp", "crop", NULL };
  static const gchar *const verifiers[] = { "distance", "classifier", NULL };
  g_autoptr (NclYamlDoc) doc = ncl_yaml_load_file (path, error);
  const NclYamlNode *root, *tr;
  gint detector = c->face.detector, lm = c->face.tiny_landmarks ? 1 : 0;
  gint align = c->face.align, verifier = 0;
  gint size = c->face.detector_size, max_faces = c->face.max_faces;
  gdouble min_score = c->face.min_score, border = c->face.border;

  if (doc == NULL)
    return FALSE;
  root = ncl_yaml_doc_get_root (doc);
  if (root == NULL)
    return TRUE;
  if (ncl_yaml_node_get_type (root) != NCL_YAML_MAPPING)
    return ncl_yaml_set_error (doc, root, error,
        "expected a mapping of face recognition settings");
  if (c->verifier && g_str_equal (c->verifier, "classifier"))
    verifier = 1;
  if (!ncl_yaml_check_keys (doc, root, keys, error) ||
      !ncl_yaml_get_string (doc, root, "device", &c->device, error) ||
      !get_choice (doc, root, "detector", detectors, &detector, error) ||
      !ncl_yaml_get_int (doc, root, "detector-size", 32, 2048, &size, error)
      || !ncl_yaml_get_double (doc, root, "min-score", 0, 1, &min_score,
          error)
      || !ncl_yaml_get_double (doc, root, "border", 0, 2, &border, error)
      || !get_choice (doc, root, "landmarks", landmarks, &lm, error)
      || !get_choice (doc, root, "align", aligns, &align, error)
      || !ncl_yaml_get_int (doc, root, "max-faces", 0, 1000, &max_faces,
          error)
      || !get_path (doc, root, "gallery", &c->gallery, error)
      || !ncl_yaml_get_double (doc, root, "threshold", 0, 4, &c->threshold,
          error)
      || !ncl_yaml_get_double (doc, root, "margin", 0, 4, &c->margin, error)
      || !get_choice (doc, root, "verifier", verifiers, &verifier, error)
      || !get_path (doc, root, "verifier-model", &c->verifier_model, error)
      || !ncl_yaml_get_bool (doc, root, "overlay", &c->overlay, error))
    return FALSE;
  if (size % 32 != 0)
    return ncl_yaml_set_error (doc, ncl_yaml_mapping_lookup (root,
            "detector-size"), error,
        "detector-size: %d is not a multiple of 32", size);

  tr = ncl_yaml_mapping_lookup (root, "tracker");
  if (tr != NULL) {
    gint max_missed = c->tracker.max_missed;
    gint interval = c->tracker.recognize_interval;
    gint window = c->tracker.vote_window;

    if (ncl_yaml_node_get_type (tr) != NCL_YAML_MAPPING)
      return ncl_yaml_set_error (doc, tr, error,
          "tracker: expected a mapping");
    if (!ncl_yaml_check_keys (doc, tr, tracker_keys, error) ||
        !ncl_yaml_get_double (doc, tr, "iou-threshold", 0, 1,
            &c->tracker.iou_threshold, error) ||
        !ncl_yaml_get_int (doc, tr, "max-missed", 0, 10000, &max_missed,
            error) ||
        !ncl_yaml_get_int (doc, tr, "recognize-interval", 1, 100000,
            &interval, error) ||
        !ncl_yaml_get_double (doc, tr, "grow-factor", 1, 100,
            &c->tracker.grow_factor, error) ||
        !ncl_yaml_get_double (doc, tr, "score-gain", 0, 1,
            &c->tracker.score_gain, error) ||
        !ncl_yaml_get_int (doc, tr, "vote-window", 1, 1000, &window, error))
      return FALSE;
    c->tracker.max_missed = max_missed;
    c->tracker.recognize_interval = interval;
    c->tracker.vote_window = window;
  }

  c->face.detector = detector;
  c->face.detector_size = size;
  c->face.min_score = min_score;
  c->face.border = border;
  c->face.tiny_landmarks = lm == 1;
  c->face.align = align;
  c->face.max_faces = max_faces;
  g_free (c->verifier);
  c->verifier = g_strdup (verifiers[verifier]);
  return TRUE;
}
