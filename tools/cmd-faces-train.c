/* neuralcl faces train / train-verifier: metric learning for faces
 * (docs/face-training.md).
 *
 *   neuralcl faces train [--config faces-train.yaml] [OPTIONS]
 *   neuralcl faces train-verifier --labels LABELS.tsv... --output V.yaml
 */
#include "neuralcl-cli.h"
#include "face-eval.h"
#include "cmd-faces-train.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* ---- labelled data ---------------------------------------------------------- */

typedef struct
{
  gchar *path;                  /* resolved */
  gint identity;
} Item;

typedef struct
{
  GArray *items;                /* Item */
  GPtrArray *names;             /* identity names */
} Labelled;

static void
labelled_clear (Labelled * l)
{
  for (guint i = 0; l->items && i < l->items->len; i++)
    g_free (g_array_index (l->items, Item, i).path);
  g_clear_pointer (&l->items, g_array_unref);
  g_clear_pointer (&l->names, g_ptr_array_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Labelled, labelled_clear)

/* Appends a labels file (identities prefixed by @prefix to keep datasets
 * apart); files resolve against @root (default: the file's directory). */
static gboolean
labelled_add (Labelled * l, const gchar * labels, const gchar * root,
    const gchar * prefix, GError ** error)
{
  g_autoptr (GArray) rows = face_eval_read_labels (labels, error);
  g_autofree gchar *rel = root ? g_strdup (root) :
      g_path_get_dirname (labels);
  g_autofree gchar *dir = g_canonicalize_filename (rel, NULL);

  if (rows == NULL)
    return FALSE;
  if (l->items == NULL) {
    l->items = g_array_new (FALSE, FALSE, sizeof (Item));
    l->names = g_ptr_array_new_with_free_func (g_free);
  }
  for (guint i = 0; i < rows->len; i++) {
    FaceEvalLabel *r = &g_array_index (rows, FaceEvalLabel, i);
    g_autofree gchar *name = g_strconcat (prefix, r->identity, NULL);
    Item it = { 0 };
    guint k;

    for (k = 0; k < l->names->len; k++)
      if (g_str_equal (g_ptr_array_index (l->names, k), name))
        break;
    if (k == l->names->len)
      g_ptr_array_add (l->names, g_steal_pointer (&name));
    it.identity = k;
    /* canonical: descriptor caches are keyed by it */
    it.path = g_canonicalize_filename (r->file, dir);
    g_array_append_val (l->items, it);
  }
  return TRUE;
}

/* Identity split: a seeded shuffle of the identities, the first
 * @n_test go to the test side.  Returns is_test per identity. */
static gboolean *
split_identities (guint n_ids, guint n_test, gint seed)
{
  g_autoptr (GRand) r = g_rand_new_with_seed ((guint32) seed);
  g_autofree guint *perm = g_new (guint, n_ids);
  gboolean *test = g_new0 (gboolean, n_ids);

  for (guint i = 0; i < n_ids; i++)
    perm[i] = i;
  for (guint i = 0; i + 1 < n_ids; i++) {
    guint j = g_rand_int_range (r, i, n_ids), t = perm[i];

    perm[i] = perm[j];
    perm[j] = t;
  }
  for (guint i = 0; i < MIN (n_test, n_ids); i++)
    test[perm[i]] = TRUE;
  return test;
}

typedef struct
{
  guint a, b;
  gboolean same;
} Pair;

/* Every same pair among @sel rows, plus as many different pairs drawn at
 * random (seeded, no repeats). */
static GArray *
make_pairs (const gint * ids, const guint * sel, guint n, gint seed)
{
  GArray *pairs = g_array_new (FALSE, FALSE, sizeof (Pair));
  g_autoptr (GRand) r = g_rand_new_with_seed ((guint32) seed);
  g_autoptr (GHashTable) seen = g_hash_table_new (g_direct_hash,
      g_direct_equal);
  guint n_same = 0, n_diff = 0, tries = 0;

  for (guint i = 0; i < n; i++)
    for (guint j = i + 1; j < n; j++)
      if (ids[sel[i]] == ids[sel[j]]) {
        Pair p = { sel[i], sel[j], TRUE };

        g_array_append_val (pairs, p);
        n_same++;
      }
  while (n_diff < n_same && tries++ < 100 * n_same + 1000) {
    guint i = g_rand_int_range (r, 0, n), j = g_rand_int_range (r, 0, n);
    guint lo = MIN (i, j), hi = MAX (i, j);
    gpointer key = GUINT_TO_POINTER (lo * 65536u + hi + 1);
    Pair p = { sel[lo], sel[hi], FALSE };

    if (ids[sel[i]] == ids[sel[j]] || g_hash_table_contains (seen, key))
      continue;
    g_hash_table_add (seen, key);
    g_array_append_val (pairs, p);
    n_diff++;
  }
  return pairs;
}

static gdouble
euclid (const gfloat * a, const gfloat * b, gint d)
{
  gdouble s = 0;

  for (gint k = 0; k < d; k++)
    s += ((gdouble) a[k] - b[k]) * ((gdouble) a[k] - b[k]);
  return sqrt (s);
}

/* ---- descriptors through the face engine, cached -------------------------- */

typedef struct
{
  gboolean found;
  gfloat d[NCL_FACE_DESCRIPTOR_LEN];
} Desc;

/* Computes the main face's descriptor of every item, reusing @cache_path
 * (lines PATH<TAB>found<TAB>128 values; first line the engine fingerprint). */
static Desc *
compute_descriptors (const Labelled * l, const NclFaceSettings * fs,
    const gchar * device, const gchar * cache_path, const gchar * name,
    GError ** error)
{
  g_autoptr (NclContext) ctx = ncl_context_new (device, error);
  g_autoptr (NclFaceEngine) engine = NULL;
  g_autoptr (GHashTable) cache = g_hash_table_new_full (g_str_hash,
      g_str_equal, g_free, g_free);
  g_autoptr (GArray) faces = g_array_new (FALSE, TRUE, sizeof (NclFace));
  g_autofree Desc *out = g_new0 (Desc, l->items->len);
  g_autoptr (GString) text = NULL;
  const gchar *fp;
  guint computed = 0;
  gboolean tty = isatty (fileno (stderr));

  if (ctx == NULL || !(engine = ncl_face_engine_new (ctx, fs, error)))
    return NULL;
  fp = ncl_face_engine_get_fingerprint (engine);
  if (cache_path != NULL) {
    g_autofree gchar *c = NULL;

    if (g_file_get_contents (cache_path, &c, NULL, NULL)) {
      g_auto (GStrv) lines = g_strsplit (c, "\n", -1);

      if (lines[0] && g_str_has_prefix (lines[0], "# ") &&
          g_str_equal (lines[0] + 2, fp)) {
        for (guint i = 1; lines[i] != NULL; i++) {
          g_auto (GStrv) f = g_strsplit (lines[i], "\t", -1);
          Desc *d;

          if (g_strv_length (f) != 2 + NCL_FACE_DESCRIPTOR_LEN)
            continue;
          d = g_new0 (Desc, 1);
          d->found = atoi (f[1]);
          for (gint k = 0; k < NCL_FACE_DESCRIPTOR_LEN; k++)
            d->d[k] = (gfloat) g_ascii_strtod (f[2 + k], NULL);
          g_hash_table_insert (cache, g_strdup (f[0]), d);
        }
      }
    }
  }
  text = g_string_new (NULL);
  g_string_append_printf (text, "# %s\n", fp);
  for (guint i = 0; i < l->items->len; i++) {
    const Item *it = &g_array_index (l->items, Item, i);
    Desc *d = g_hash_table_lookup (cache, it->path);

    if (d == NULL) {
      g_autoptr (NclImage) img = ncl_image_load (it->path, error);
      gint m;

      if (img == NULL)
        return NULL;
      /* analyze appends to the array */
      g_array_set_size (faces, 0);
      if (!ncl_face_engine_analyze (engine, img, faces, error))
        return NULL;
      d = g_new0 (Desc, 1);
      m = ncl_face_pick_main ((NclFace *) faces->data, faces->len,
          img->width, img->height);
      if (m >= 0) {
        d->found = TRUE;
        memcpy (d->d, g_array_index (faces, NclFace, m).descriptor,
            sizeof (d->d));
      }
      g_hash_table_insert (cache, g_strdup (it->path), d);
      computed++;
    }
    out[i] = *d;
    g_string_append_printf (text, "%s\t%d", it->path, d->found);
    for (gint k = 0; k < NCL_FACE_DESCRIPTOR_LEN; k++)
      g_string_append_printf (text, "\t%.8g", d->d[k]);
    g_string_append_c (text, '\n');
    if (tty) {
      fprintf (stderr, "\r\033[K%s: descriptors %u/%u", name, i + 1,
          l->items->len);
      if (i + 1 == l->items->len)
        fputc ('\n', stderr);
    }
  }
  if (cache_path != NULL && computed > 0 &&
      !g_file_set_contents (cache_path, text->str, text->len, error))
    return NULL;
  return g_steal_pointer (&out);
}

/* ---- faces train -------------------------------------------------------------- */

typedef struct
{
  gchar *labels, *root, *graph, *output, *mining, *input, *cache;
  gchar *detector, *device, *distance;
  gdouble margin, lr, wd, border;
  gdouble shift, zoom, rotate, brightness, contrast, erase, eval_shift, glasses, eval_zoom;
  gdouble sm_weight, sm_scale, sm_margin;
  gint p, k, iterations, seed, split_seed, test_ids, width, height;
  gint checkpoint_every, warmup, average_from;
  gboolean flip, resume, cosine, soft_margin, eval_flip;
} TrainOpts;

static void
train_opts_clear (TrainOpts * o)
{
  g_free (o->labels);
  g_free (o->root);
  g_free (o->graph);
  g_free (o->output);
  g_free (o->mining);
  g_free (o->input);
  g_free (o->cache);
  g_free (o->detector);
  g_free (o->device);
  g_free (o->distance);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (TrainOpts, train_opts_clear)

static gboolean
path_key (const NclYamlDoc * doc, const NclYamlNode * root, const gchar * key,
    gchar ** out, GError ** error)
{
  g_autofree gchar *v = NULL;

  if (!ncl_yaml_get_string (doc, root, key, &v, error))
    return FALSE;
  if (v != NULL) {
    g_free (*out);
    *out = ncl_yaml_doc_resolve_path (doc, v);
  }
  return TRUE;
}

/* Reads faces-train.yaml over @o (see config/faces-train.yaml). */
static gboolean
train_opts_load (TrainOpts * o, const gchar * path, GError ** error)
{
  static const gchar *const keys[] = {
    "labels", "root", "graph", "output", "input", "descriptor-cache",
    "mining", "margin", "identities-per-batch", "images-per-identity",
    "iterations", "learning-rate", "weight-decay", "seed", "flip",
    "input-size", "test-identities", "split-seed", "checkpoint-every",
    "detector", "border", "device", "augment", "warmup", "cosine",
    "soft-margin", "distance", "eval-flip", "eval-shift", "eval-zoom",
    "softmax-weight", "softmax-scale", "softmax-margin", "average-from",
    NULL
  };
  static const gchar *const aug_keys[] = {
    "shift", "zoom", "rotate", "brightness", "contrast", "erase", "glasses",
    NULL
  };
  g_autoptr (NclYamlDoc) doc = ncl_yaml_load_file (path, error);
  const NclYamlNode *root, *size, *aug;

  if (doc == NULL)
    return FALSE;
  root = ncl_yaml_doc_get_root (doc);
  if (!ncl_yaml_check_keys (doc, root, keys, error) ||
      !path_key (doc, root, "labels", &o->labels, error) ||
      !path_key (doc, root, "root", &o->root, error) ||
      !path_key (doc, root, "graph", &o->graph, error) ||
      !path_key (doc, root, "output", &o->output, error) ||
      !path_key (doc, root, "descriptor-cache", &o->cache, error) ||
      !ncl_yaml_get_string (doc, root, "input", &o->input, error) ||
      !ncl_yaml_get_string (doc, root, "mining", &o->mining, error) ||
      !ncl_yaml_get_double (doc, root, "margin", 0, 4, &o->margin, error) ||
      !ncl_yaml_get_int (doc, root, "identities-per-batch", 2, 1024, &o->p,
          error) ||
      !ncl_yaml_get_int (doc, root, "images-per-identity", 2, 1024, &o->k,
          error) ||
      !ncl_yaml_get_int (doc, root, "iterations", 0, 10000000,
          &o->iterations, error) ||
      !ncl_yaml_get_double (doc, root, "learning-rate", 0, 1, &o->lr, error)
      || !ncl_yaml_get_double (doc, root, "weight-decay", 0, 1, &o->wd,
          error) || !ncl_yaml_get_int (doc, root, "seed", 0, G_MAXINT,
          &o->seed, error) || !ncl_yaml_get_bool (doc, root, "flip",
          &o->flip, error) || !ncl_yaml_get_int (doc, root,
          "test-identities", 0, 100000, &o->test_ids, error) ||
      !ncl_yaml_get_int (doc, root, "split-seed", 0, G_MAXINT,
          &o->split_seed, error) || !ncl_yaml_get_int (doc, root,
          "checkpoint-every", 1, 10000000, &o->checkpoint_every, error) ||
      !ncl_yaml_get_string (doc, root, "detector", &o->detector, error) ||
      !ncl_yaml_get_double (doc, root, "border", 0, 2, &o->border, error) ||
      !ncl_yaml_get_string (doc, root, "device", &o->device, error) ||
      !ncl_yaml_get_int (doc, root, "warmup", 0, 10000000, &o->warmup,
          error) || !ncl_yaml_get_bool (doc, root, "cosine", &o->cosine,
          error) || !ncl_yaml_get_bool (doc, root, "soft-margin",
          &o->soft_margin, error) || !ncl_yaml_get_string (doc, root,
          "distance", &o->distance, error) || !ncl_yaml_get_bool (doc, root,
          "eval-flip", &o->eval_flip, error) || !ncl_yaml_get_double (doc,
          root, "eval-shift", 0, 0.5, &o->eval_shift, error) ||
      !ncl_yaml_get_double (doc, root, "eval-zoom", 0, 1, &o->eval_zoom,
          error) ||
      !ncl_yaml_get_double (doc, root, "softmax-weight", 0, 100,
          &o->sm_weight, error) || !ncl_yaml_get_double (doc, root,
          "softmax-scale", 0, 1000, &o->sm_scale, error) ||
      !ncl_yaml_get_double (doc, root, "softmax-margin", 0, 1,
          &o->sm_margin, error) || !ncl_yaml_get_int (doc, root,
          "average-from", 0, 10000000, &o->average_from, error))
    return FALSE;
  aug = ncl_yaml_mapping_lookup (root, "augment");
  if (aug != NULL) {
    if (ncl_yaml_node_get_type (aug) != NCL_YAML_MAPPING)
      return ncl_yaml_set_error (doc, aug, error, "expected a mapping "
          "(shift, zoom, rotate, brightness, contrast, erase, glasses)");
    if (!ncl_yaml_check_keys (doc, aug, aug_keys, error) ||
        !ncl_yaml_get_double (doc, aug, "shift", 0, 0.5, &o->shift, error) ||
        !ncl_yaml_get_double (doc, aug, "zoom", 0, 0.9, &o->zoom, error) ||
        !ncl_yaml_get_double (doc, aug, "rotate", 0, 180, &o->rotate,
            error) || !ncl_yaml_get_double (doc, aug, "brightness", 0, 2,
            &o->brightness, error) || !ncl_yaml_get_double (doc, aug,
            "contrast", 0, 0.9, &o->contrast, error) ||
        !ncl_yaml_get_double (doc, aug, "erase", 0, 1, &o->erase, error) ||
        !ncl_yaml_get_double (doc, aug, "glasses", 0, 1, &o->glasses,
            error))
      return FALSE;
  }
  size = ncl_yaml_mapping_lookup (root, "input-size");
  if (size != NULL) {
    if (ncl_yaml_node_get_type (size) != NCL_YAML_SEQUENCE ||
        ncl_yaml_node_get_n_children (size) != 2)
      return ncl_yaml_set_error (doc, size, error,
          "expected [width, height]");
    if (!ncl_yaml_node_to_int (doc, ncl_yaml_node_get_nth (size, 0), 1,
            4096, &o->width, error) || !ncl_yaml_node_to_int (doc,
            ncl_yaml_node_get_nth (size, 1), 1, 4096, &o->height, error))
      return FALSE;
  }
  return TRUE;
}

/* A photo as a (c, h, w) tensor: gray (BT.601 luma) or RGB, bilinear to
 * w x h, scaled to x / 127.5 - 1. */
static gboolean
load_pixels (const gchar * path, gint c, gint w, gint h, gfloat * out,
    GError ** error)
{
  g_autoptr (NclImage) img = ncl_image_load (path, error);
  g_autofree gfloat *rgb = NULL, *src = NULL;
  gint hw;

  if (img == NULL)
    return FALSE;
  hw = img->width * img->height;
  rgb = g_new (gfloat, 3 * hw);
  ncl_image_to_planar_ref (img, rgb);
  if (c == 1) {
    src = g_new (gfloat, hw);
    for (gint i = 0; i < hw; i++)
      src[i] = 0.299f * rgb[i] + 0.587f * rgb[hw + i] + 0.114f * rgb[2 * hw
          + i];
  } else {
    src = g_steal_pointer (&rgb);
  }
  ncl_resize_bilinear_ref (src, 1, c, img->height, img->width, h, w, out);
  for (gint i = 0; i < c * w * h; i++)
    out[i] = out[i] / 127.5f - 1.0f;
  return TRUE;
}

typedef struct
{
  gdouble auc, best_acc, acc_at_train_t, train_t;
  guint n_same, n_diff;
} SplitEval;

/* Appends "split, file a, file b, same, distance" rows to @out. */
static void
pairs_tsv (GString * out, const gchar * split, GArray * pairs,
    const FaceEvalScore * s, const gchar * const *files)
{
  for (guint i = 0; out != NULL && i < pairs->len; i++) {
    Pair *p = &g_array_index (pairs, Pair, i);

    g_string_append_printf (out, "%s\t%s\t%s\t%d\t%.6f\n", split,
        files[p->a], files[p->b], p->same, s[i].distance);
  }
}

/* Verification on the unseen identities, threshold from the training
 * identities' pairs (best accuracy there); every pair's distance goes to
 * @out (nullable) with the rows' @files. */
static void
evaluate (const gfloat * emb, gint d, const gint * ids, const gboolean
    * is_test, guint n, gint seed, GString * out, const gchar * const *files,
    SplitEval * ev)
{
  g_autofree guint *tr = g_new (guint, n), *te = g_new (guint, n);
  guint ntr = 0, nte = 0;
  g_autoptr (GArray) ptr = NULL, pte = NULL;
  g_autofree FaceEvalScore *s = NULL;
  FaceEvalSummary sum;

  for (guint i = 0; i < n; i++) {
    if (is_test[i])
      te[nte++] = i;
    else
      tr[ntr++] = i;
  }
  ptr = make_pairs (ids, tr, ntr, seed);
  pte = make_pairs (ids, te, nte, seed + 1);
  s = g_new (FaceEvalScore, MAX (ptr->len, pte->len) + 1);
  for (guint i = 0; i < ptr->len; i++) {
    Pair *p = &g_array_index (ptr, Pair, i);

    s[i].distance = euclid (emb + (gsize) p->a * d, emb + (gsize) p->b * d,
        d);
    s[i].same = p->same;
  }
  face_eval_summarize (s, ptr->len, &sum);
  pairs_tsv (out, "train", ptr, s, files);
  ev->train_t = sum.best_threshold;
  for (guint i = 0; i < pte->len; i++) {
    Pair *p = &g_array_index (pte, Pair, i);

    s[i].distance = euclid (emb + (gsize) p->a * d, emb + (gsize) p->b * d,
        d);
    s[i].same = p->same;
  }
  face_eval_summarize (s, pte->len, &sum);
  pairs_tsv (out, "test", pte, s, files);
  ev->auc = sum.auc;
  ev->best_acc = pte->len ? (gdouble) sum.best_correct / pte->len : NAN;
  ev->acc_at_train_t = pte->len ? (gdouble) face_eval_count_correct (s,
      pte->len, ev->train_t) / pte->len : NAN;
  ev->n_same = sum.n_same;
  ev->n_diff = sum.n_different;
}

/* Test-time views: @emb (L2-normalised) becomes the normalised sum of
 * itself and the normalised embeddings of each photo's other views: its
 * mirror image (@flip), the photo moved by +-@shift of its width and of its
 * height (edges repeated), the photo magnified by 1 + @zoom and by
 * 1 / (1 + @zoom), and with @flip the mirror of each of those. */
static gboolean
add_views (NclContext * ctx, NclModel * model, const NclEmbedDataset
    * data, gfloat * emb, gint d, gboolean flip, gdouble shift,
    gdouble zoom, GError ** error)
{
  gsize per = (gsize) data->c * data->h * data->w;
  g_autofree gfloat *vx = g_new (gfloat, per * data->n);
  NclEmbedDataset view = *data;
  /* (dx, dy) in fractions of the size, then the log of the scale (in
   * units of log (1 + zoom)); flipped copies after each */
  static const gdouble moves[7][3] = {
    {0, 0, 0}, {1, 0, 0}, {-1, 0, 0}, {0, 1, 0}, {0, -1, 0}, {0, 0, 1},
    {0, 0, -1}
  };

  view.x = vx;
  for (gint m = 0; m < 7; m++) {
    if ((m >= 1 && m <= 4 && shift <= 0) || (m >= 5 && zoom <= 0))
      continue;
    for (gint f = 0; f < (flip ? 2 : 1); f++) {
      g_autofree gfloat *ve = NULL;
      NclAugment a;
      gint vd = 0;

      if (m == 0 && f == 0)
        continue;               /* the photo itself: already in @emb */
      ncl_augment_init (&a);
      a.flip = f == 1;
      a.dx = moves[m][0] * shift * data->w;
      a.dy = moves[m][1] * shift * data->h;
      a.scale = pow (1 + MAX (zoom, 0), moves[m][2]);
      for (gint i = 0; i < data->n; i++)
        ncl_augment_apply (&a, data->x + per * i, data->c, data->h, data->w,
            vx + per * i);
      if (!ncl_embed_compute (ctx, model, &view, 32, &ve, &vd, error))
        return FALSE;
      for (gsize k = 0; k < (gsize) data->n * d; k++)
        emb[k] += ve[k];
    }
  }
  for (gint i = 0; i < data->n; i++) {
    gfloat *e = emb + (gsize) i * d;
    gdouble norm = 0;

    for (gint k = 0; k < d; k++)
      norm += (gdouble) e[k] * e[k];
    norm = sqrt (norm) + 1e-10;
    for (gint k = 0; k < d; k++)
      e[k] = (gfloat) (e[k] / norm);
  }
  return TRUE;
}

static void
print_eval (const gchar * what, const SplitEval * ev, gboolean json)
{
  if (json) {
    printf ("{\"model\": \"%s\", \"test_pairs_same\": %u, "
        "\"test_pairs_different\": %u, \"threshold_from_train\": %.4f, "
        "\"accuracy\": %.4f, \"best_accuracy_on_test\": %.4f, "
        "\"auc\": %.4f}\n", what, ev->n_same, ev->n_diff, ev->train_t,
        ev->acc_at_train_t, ev->best_acc, ev->auc);
  } else {
    printf ("%s: unseen identities, %u same + %u different pairs: accuracy "
        "%.4f at threshold %.3f (chosen on the training identities), best "
        "on test %.4f, AUC %.4f\n", what, ev->n_same, ev->n_diff,
        ev->acc_at_train_t, ev->train_t, ev->best_acc, ev->auc);
  }
}

static gboolean
train_progress (const NclEmbedTrainProgress * p, gpointer user_data)
{
  static gint tty = -1;
  gint width = 24, fill;

  if (tty < 0)
    tty = isatty (fileno (stderr));
  if (p->message != NULL) {
    fprintf (stderr, "%s%s\n", tty ? "\r\033[K" : "", p->message);
    return TRUE;
  }
  fill = p->iterations ? width * p->iteration / p->iterations : width;
  if (tty || p->iteration % 50 == 0 || p->iteration == p->iterations) {
    gchar bar[64];

    memset (bar, '#', fill);
    memset (bar + fill, '.', width - fill);
    bar[width] = '\0';
    fprintf (stderr, "%s[%s] %d/%d loss %.4f (avg %.4f) active %.1f%% "
        "ETA %d:%02d%s", tty ? "\r\033[K" : "", bar, p->iteration,
        p->iterations, p->loss, p->loss_avg, 100 * p->active,
        (gint) p->eta_s / 60, (gint) p->eta_s % 60, tty ? "" : "\n");
    if (tty && p->iteration == p->iterations)
      fputc ('\n', stderr);
  }
  return TRUE;
}

gint
ncl_cli_faces_train (gint argc, gchar ** argv)
{
  g_auto (TrainOpts) o = { 0 };
  g_auto (Labelled) l = { 0 };
  g_autofree gchar *config = NULL, *size = NULL, *pairs_out = NULL;
  g_autoptr (GError) error = NULL;
  gboolean json = FALSE, eval_only = FALSE, no_flip = FALSE;
  gboolean cosine = FALSE, soft_margin = FALSE, eval_flip = FALSE;
  gboolean no_eval_flip = FALSE;
  GOptionEntry entries[] = {
    {"config", 'c', 0, G_OPTION_ARG_FILENAME, &config,
        "Training settings YAML (config/faces-train.yaml); options override",
          "YAML"},
    {"labels", 'l', 0, G_OPTION_ARG_FILENAME, &o.labels,
        "Labelled photos: file<TAB>identity per line", "TSV"},
    {"root", 0, 0, G_OPTION_ARG_FILENAME, &o.root,
        "Directory the labels' files are relative to (default: its own)",
        "DIR"},
    {"graph", 'g', 0, G_OPTION_ARG_FILENAME, &o.graph,
        "Embedder template graph (config/embedder-small.yaml)", "YAML"},
    {"output", 'o', 0, G_OPTION_ARG_FILENAME, &o.output,
        "Trained model graph (.yaml; weights, checkpoints and loss curve "
          "beside it)", "YAML"},
    {"input", 0, 0, G_OPTION_ARG_STRING, &o.input,
        "What the net sees: images (train from scratch) or descriptors "
          "(a head on the frozen face_recognition descriptor)",
        "images|descriptors"},
    {"mining", 'm', 0, G_OPTION_ARG_STRING, &o.mining,
        "Triplet mining: batch-hard, semi-hard or random", "MODE"},
    {"margin", 0, 0, G_OPTION_ARG_DOUBLE, &o.margin, "Triplet margin alpha",
        "A"},
    {"soft-margin", 0, 0, G_OPTION_ARG_NONE, &soft_margin,
        "Soft margin: log (1 + exp (D(a,p) - D(a,n))) instead of the hinge",
        NULL},
    {"distance", 0, 0, G_OPTION_ARG_STRING, &o.distance,
        "Distance in the loss: squared (default) or euclidean",
        "squared|euclidean"},
    {"batch", 'b', 0, G_OPTION_ARG_STRING, &size,
        "Identities x images per batch (default 8x4)", "PxK"},
    {"iterations", 'n', 0, G_OPTION_ARG_INT, &o.iterations, "Iterations",
        "N"},
    {"warmup", 0, 0, G_OPTION_ARG_INT, &o.warmup,
        "Random mining for the first N iterations", "N"},
    {"cosine", 0, 0, G_OPTION_ARG_NONE, &cosine,
        "Anneal the learning rate to 0 along a half cosine", NULL},
    {"learning-rate", 0, 0, G_OPTION_ARG_DOUBLE, &o.lr, "Adam step", "LR"},
    {"weight-decay", 0, 0, G_OPTION_ARG_DOUBLE, &o.wd,
        "Decoupled weight decay (AdamW)", "WD"},
    {"seed", 0, 0, G_OPTION_ARG_INT, &o.seed, "Random seed", "N"},
    {"test-identities", 't', 0, G_OPTION_ARG_INT, &o.test_ids,
        "Hold out this many identities (seeded) and report verification "
          "on them", "N"},
    {"no-flip", 0, 0, G_OPTION_ARG_NONE, &no_flip,
        "No random horizontal flips", NULL},
    {"shift", 0, 0, G_OPTION_ARG_DOUBLE, &o.shift,
        "Augmentation: random translation up to +-F of the size", "F"},
    {"zoom", 0, 0, G_OPTION_ARG_DOUBLE, &o.zoom,
        "Augmentation: random scale in [1 - F, 1 + F]", "F"},
    {"rotate", 0, 0, G_OPTION_ARG_DOUBLE, &o.rotate,
        "Augmentation: random rotation up to +-DEG degrees", "DEG"},
    {"brightness", 0, 0, G_OPTION_ARG_DOUBLE, &o.brightness,
        "Augmentation: random offset up to +-B (inputs are -1..1)", "B"},
    {"contrast", 0, 0, G_OPTION_ARG_DOUBLE, &o.contrast,
        "Augmentation: random gain in [1 - F, 1 + F]", "F"},
    {"erase", 0, 0, G_OPTION_ARG_DOUBLE, &o.erase,
        "Augmentation: erase a random rectangle with probability P", "P"},
    {"glasses", 0, 0, G_OPTION_ARG_DOUBLE, &o.glasses,
        "Augmentation: draw synthetic glasses with probability P", "P"},
    {"eval-flip", 0, 0, G_OPTION_ARG_NONE, &eval_flip,
        "Evaluate on the mean of the embeddings of each photo and its "
          "mirror image", NULL},
    {"no-eval-flip", 0, 0, G_OPTION_ARG_NONE, &no_eval_flip,
        "Evaluate on the photos' embeddings alone", NULL},
    {"eval-shift", 0, 0, G_OPTION_ARG_DOUBLE, &o.eval_shift,
        "Also average the embeddings of each photo moved by +-F of its "
          "width and height (0: off)", "F"},
    {"eval-zoom", 0, 0, G_OPTION_ARG_DOUBLE, &o.eval_zoom,
        "Also average the embeddings of each photo magnified by 1 + F and "
          "by 1 / (1 + F) (0: off)", "F"},
    {"softmax-weight", 0, 0, G_OPTION_ARG_DOUBLE, &o.sm_weight,
        "Add a cosine-softmax loss over the training identities with this "
          "weight (0: off)", "W"},
    {"softmax-scale", 0, 0, G_OPTION_ARG_DOUBLE, &o.sm_scale,
        "Its logit scale s (default 16)", "S"},
    {"softmax-margin", 0, 0, G_OPTION_ARG_DOUBLE, &o.sm_margin,
        "Its cosine margin m (default 0.1)", "M"},
    {"average-from", 0, 0, G_OPTION_ARG_INT, &o.average_from,
        "Average the weights of every 10th iteration from N on and keep "
          "the mean (0: off)", "N"},
    {"resume", 0, 0, G_OPTION_ARG_NONE, &o.resume,
        "Continue from the last checkpoint", NULL},
    {"descriptor-cache", 0, 0, G_OPTION_ARG_FILENAME, &o.cache,
        "Descriptor cache (default OUTPUT.descriptors.tsv)", "TSV"},
    {"eval-only", 0, 0, G_OPTION_ARG_NONE, &eval_only,
        "Evaluate the existing --output model (and the raw descriptors) "
          "without training", NULL},
    {"device", 'd', 0, G_OPTION_ARG_STRING, &o.device, "OpenCL device",
        "DEV"},
    {"json", 'j', 0, G_OPTION_ARG_NONE, &json,
        "Print the evaluation as JSON lines", NULL},
    {"pairs", 0, 0, G_OPTION_ARG_FILENAME, &pairs_out,
        "Write every evaluation pair's distance of the trained model here",
        "TSV"},
    {NULL}
  };
  GOptionContext *octx = g_option_context_new (NULL);
  const gchar *name = ncl_cli_name (argv[0]);
  NclEmbedTrainSettings s;
  NclEmbedDataset data = { 0 };
  g_autofree gfloat *x = NULL;
  g_autofree gint *ids = NULL;
  g_autofree gboolean *test_id = NULL, *is_test = NULL;
  g_autofree Desc *desc = NULL;
  g_autofree guint *keep = NULL;
  gboolean descriptors;
  TrainOpts cli;
  guint n = 0;
  gint c = 1;

  /* sentinels: unset CLI values */
  o.margin = o.lr = o.wd = -1;
  o.shift = o.zoom = o.rotate = o.brightness = o.contrast = o.erase = -1;
  o.glasses = o.eval_zoom = -1;
  o.eval_shift = o.sm_weight = o.sm_scale = o.sm_margin = -1;
  o.iterations = o.seed = o.test_ids = o.warmup = o.average_from = -1;
  g_option_context_set_summary (octx,
      "Trains a face embedding with the triplet loss (P identities x K\n"
      "images per batch, online mining, L2-normalised embeddings, Adam),\n"
      "either a small CNN from scratch on photos or a projection head on\n"
      "the frozen face_recognition descriptor.  With --test-identities,\n"
      "those people are left out of training and verification accuracy\n"
      "on them is printed at the end.");
  g_option_context_add_main_entries (octx, entries, NULL);
  if (!ncl_cli_parse (octx, &argc, &argv, 0))
    return NCL_CLI_EXIT_FAILURE;

  /* defaults < config < options */
  cli = o;
  memset (&o, 0, sizeof (o));
  o.mining = g_strdup ("batch-hard");
  o.input = g_strdup ("images");
  o.margin = 0.2;
  o.lr = 1e-3;
  o.p = 8;
  o.k = 4;
  o.iterations = 1000;
  o.seed = 1;
  o.split_seed = 1;
  o.flip = TRUE;
  o.width = 46;
  o.height = 56;
  o.checkpoint_every = 200;
  o.sm_scale = 16;
  o.sm_margin = 0.1;
  o.border = 0.5;
  o.detector = g_strdup ("ssd");
  if (config != NULL && !train_opts_load (&o, config, &error)) {
    train_opts_clear (&cli);
    return ncl_cli_fail_error (error);
  }
#define TAKE(f) if (cli.f != NULL) { g_free (o.f); o.f = cli.f; }
  TAKE (labels);
  TAKE (root);
  TAKE (graph);
  TAKE (output);
  TAKE (input);
  TAKE (mining);
  TAKE (device);
  TAKE (cache);
  TAKE (distance);
#undef TAKE
  if (cli.margin >= 0)
    o.margin = cli.margin;
  if (cli.lr >= 0)
    o.lr = cli.lr;
  if (cli.wd >= 0)
    o.wd = cli.wd;
  if (cli.warmup >= 0)
    o.warmup = cli.warmup;
  if (cli.average_from >= 0)
    o.average_from = cli.average_from;
  if (cli.shift >= 0)
    o.shift = cli.shift;
  if (cli.zoom >= 0)
    o.zoom = cli.zoom;
  if (cli.rotate >= 0)
    o.rotate = cli.rotate;
  if (cli.brightness >= 0)
    o.brightness = cli.brightness;
  if (cli.contrast >= 0)
    o.contrast = cli.contrast;
  if (cli.erase >= 0)
    o.erase = cli.erase;
  if (cli.glasses >= 0)
    o.glasses = cli.glasses;
  if (cli.eval_zoom >= 0)
    o.eval_zoom = cli.eval_zoom;
  if (cli.eval_shift >= 0)
    o.eval_shift = cli.eval_shift;
  if (cli.sm_weight >= 0)
    o.sm_weight = cli.sm_weight;
  if (cli.sm_scale >= 0)
    o.sm_scale = cli.sm_scale;
  if (cli.sm_margin >= 0)
    o.sm_margin = cli.sm_margin;
  if (cli.iterations >= 0)
    o.iterations = cli.iterations;
  if (cli.seed >= 0)
    o.seed = cli.seed;
  if (cli.test_ids >= 0)
    o.test_ids = cli.test_ids;
  if (no_flip)
    o.flip = FALSE;
  if (cosine)
    o.cosine = TRUE;
  if (soft_margin)
    o.soft_margin = TRUE;
  if (eval_flip)
    o.eval_flip = TRUE;
  if (no_eval_flip)
    o.eval_flip = FALSE;
  o.resume = cli.resume;
  if (size != NULL && (sscanf (size, "%dx%d", &o.p, &o.k) != 2 || o.p < 2
          || o.k < 2))
    return ncl_cli_fail ("%s: --batch: '%s' is not PxK (2 or more each)",
        name, size);
  if (o.shift > 0.5 || o.zoom >= 1 || o.rotate > 180 || o.brightness > 2 ||
      o.contrast >= 1 || o.erase > 1 || o.glasses > 1 || o.wd > 1 || o.eval_shift > 0.5 || o.eval_zoom > 1)
    return ncl_cli_fail ("%s: augmentation out of range (shift <= 0.5, "
        "zoom < 1, rotate <= 180, brightness <= 2, contrast < 1, "
        "erase <= 1, glasses <= 1; weight-decay <= 1, eval-shift <= 0.5, eval-zoom <= 1)", name);

  if (o.labels == NULL || o.output == NULL || o.graph == NULL)
    return ncl_cli_fail ("%s: --labels, --graph and --output are required "
        "(or a --config that sets them)", name);
  descriptors = g_str_equal (o.input, "descriptors");
  if (!descriptors && !g_str_equal (o.input, "images"))
    return ncl_cli_fail ("%s: input: '%s' is not images or descriptors",
        name, o.input);
  ncl_embed_train_settings_init (&s);
  if (!ncl_triplet_mining_from_string (o.mining, &s.mining))
    return ncl_cli_fail ("%s: mining: '%s' is not batch-hard, semi-hard or "
        "random", name, o.mining);
  if (o.distance != NULL && !g_str_equal (o.distance, "squared") &&
      !g_str_equal (o.distance, "euclidean"))
    return ncl_cli_fail ("%s: distance: '%s' is not squared or euclidean",
        name, o.distance);
  if (!labelled_add (&l, o.labels, o.root, "", &error))
    return ncl_cli_fail_error (error);

  /* the split, then the data (training identities only) */
  test_id = split_identities (l.names->len, MAX (o.test_ids, 0),
      o.split_seed);
  n = l.items->len;
  ids = g_new (gint, n);
  is_test = g_new (gboolean, n);
  keep = g_new (guint, n);
  if (descriptors) {
    NclFaceSettings fs;
    g_autofree gchar *cache = o.cache ? g_strdup (o.cache) :
        g_strconcat (o.output, ".descriptors.tsv", NULL);

    ncl_face_settings_init (&fs);
    if (!ncl_face_detector_from_string (o.detector, &fs.detector))
      return ncl_cli_fail ("%s: detector: '%s' is not tiny or ssd", name,
          o.detector);
    fs.border = o.border;
    desc = compute_descriptors (&l, &fs, o.device, cache, name, &error);
    if (desc == NULL)
      return ncl_cli_fail_error (error);
    c = NCL_FACE_DESCRIPTOR_LEN;
    o.width = o.height = 1;
    o.flip = FALSE;
  } else {
    g_autoptr (NclYamlDoc) doc = ncl_yaml_load_file (o.graph, &error);
    const NclYamlNode *in = doc ? ncl_yaml_mapping_lookup
        (ncl_yaml_doc_get_root (doc), "input") : NULL;

    if (doc == NULL)
      return ncl_cli_fail_error (error);
    if (in != NULL && !ncl_yaml_get_int (doc, in, "channels", 1, 3, &c,
            &error))
      return ncl_cli_fail_error (error);
  }

  {
    gsize per = (gsize) c * o.width * o.height;
    guint m = 0, missing = 0;

    x = g_new (gfloat, per * n);
    for (guint i = 0; i < n; i++) {
      const Item *it = &g_array_index (l.items, Item, i);

      if (descriptors) {
        if (!desc[i].found) {
          missing++;
          continue;
        }
        memcpy (x + per * m, desc[i].d, sizeof (gfloat) * per);
      } else if (!load_pixels (it->path, c, o.width, o.height, x + per * m,
              &error)) {
        return ncl_cli_fail_error (error);
      }
      ids[m] = it->identity;
      is_test[m] = test_id[it->identity];
      keep[m] = i;
      m++;
    }
    if (missing > 0)
      fprintf (stderr, "%s: %u of %u photos without a face are left out\n",
          name, missing, n);
    n = m;
  }

  /* training set: the rows of training identities, relabelled 0.. */
  {
    gsize per = (gsize) c * o.width * o.height;
    g_autofree gint *remap = g_new (gint, l.names->len);
    guint m = 0;
    gint nid = 0;

    for (guint k = 0; k < l.names->len; k++)
      remap[k] = test_id[k] ? -1 : nid++;
    data.c = c;
    data.h = o.height;
    data.w = o.width;
    data.x = g_new (gfloat, per * n);
    data.labels = g_new (gint, n);
    for (guint i = 0; i < n; i++) {
      if (is_test[i])
        continue;
      memcpy (data.x + per * m, x + per * i, sizeof (gfloat) * per);
      data.labels[m++] = remap[ids[i]];
    }
    data.n = m;
    data.n_identities = nid;
  }

  s.graph = g_strdup (o.graph);
  s.output = g_strdup (o.output);
  s.margin = o.margin;
  s.identities_per_batch = o.p;
  s.images_per_identity = o.k;
  s.iterations = o.iterations;
  s.learning_rate = o.lr;
  s.weight_decay = o.wd;
  s.flip = o.flip;
  s.warmup = o.warmup;
  s.cosine = o.cosine;
  s.soft_margin = o.soft_margin;
  s.euclidean = o.distance != NULL && g_str_equal (o.distance, "euclidean");
  s.softmax_weight = o.sm_weight;
  s.softmax_scale = o.sm_scale;
  s.softmax_margin = o.sm_margin;
  s.average_from = o.average_from;
  if (!descriptors) {
    s.shift = o.shift;
    s.zoom = o.zoom;
    s.rotate = o.rotate;
    s.brightness = o.brightness;
    s.contrast = o.contrast;
    s.erase = o.erase;
    s.glasses = o.glasses;
  }
  s.seed = o.seed;
  s.checkpoint_every = o.checkpoint_every;
  s.resume = o.resume;
  s.device = g_strdup (o.device);
  {
    g_autofree gchar *base = g_path_get_basename (o.labels);
    g_autofree gchar *dir = g_path_get_dirname (o.labels);
    g_autofree gchar *dn = g_path_get_basename (dir);
    g_autofree gchar *av = s.average_from > 0 ? g_strdup_printf (", "
        "weights averaged from iteration %d", s.average_from) :
        g_strdup ("");
    g_autofree gchar *sm = s.softmax_weight > 0 ? g_strdup_printf (", plus "
        "%g x a cosine softmax (scale %g, margin %g)", s.softmax_weight,
        s.softmax_scale, s.softmax_margin) : g_strdup ("");

    s.origin = g_strdup_printf ("trained here with `neuralcl faces train` "
        "on %s/%s (%d identities%s), %s triplets (random for the first "
        "%d), %s %s distances, margin %g, %d iterations of %dx%d, "
        "learning rate %g%s, "
        "weight decay %g, "
        "augmentation flip %s shift %g zoom %g rotate %g brightness %g "
        "contrast %g erase %g glasses %g%s%s, seed %d", dn, base, data.n_identities,
        o.test_ids > 0 ? ", others held out" : "",
        ncl_triplet_mining_to_string (s.mining), s.warmup,
        s.soft_margin ? "soft margin on" : "hinge on",
        s.euclidean ? "Euclidean" : "squared", s.margin,
        s.iterations, s.identities_per_batch, s.images_per_identity,
        s.learning_rate, s.cosine ? " (cosine)" : "", s.weight_decay,
        s.flip ? "on" : "off", s.shift, s.zoom, s.rotate, s.brightness,
        s.contrast, s.erase, s.glasses, sm, av, s.seed);
  }
  fprintf (stderr, "%s: %d photos of %d identities for training, %u held "
      "out; input %d x %d x %d\n", name, data.n, data.n_identities,
      n - data.n, c, o.height, o.width);

  if (!eval_only && !ncl_embed_train (&s, &data, train_progress, NULL,
          &error)) {
    g_free (data.x);
    g_free (data.labels);
    ncl_embed_train_settings_clear (&s);
    return ncl_cli_fail_error (error);
  }
  g_free (data.x);
  g_free (data.labels);

  if (o.test_ids > 0) {
    g_autoptr (NclContext) ctx = ncl_context_new (o.device, &error);
    g_autoptr (NclModel) model = NULL;
    NclEmbedDataset all = { (gint) n, c, o.height, o.width, x, ids,
      (gint) l.names->len
    };
    g_autoptr (GString) tsv = pairs_out ? g_string_new ("split\tfile_a\t"
        "file_b\tsame\tdistance\n") : NULL;
    g_autofree const gchar **files = g_new (const gchar *, n + 1);
    g_autofree gfloat *emb = NULL;
    gint d = 0;
    SplitEval ev;

    for (guint i = 0; i < n; i++)
      files[i] = g_array_index (l.items, Item, keep[i]).path;
    if (ctx == NULL || !(model = ncl_model_load (o.output, &error)) ||
        !ncl_embed_compute (ctx, model, &all, 32, &emb, &d, &error) ||
        ((o.eval_flip || o.eval_shift > 0 || o.eval_zoom > 0) &&
            !descriptors && !add_views (ctx, model, &all, emb, d,
                o.eval_flip, o.eval_shift, o.eval_zoom, &error))) {
      ncl_embed_train_settings_clear (&s);
      return ncl_cli_fail_error (error);
    }
    if (descriptors) {
      evaluate (x, c, ids, is_test, n, o.split_seed, NULL, files, &ev);
      print_eval ("descriptor", &ev, json);
    }
    evaluate (emb, d, ids, is_test, n, o.split_seed, tsv, files, &ev);
    print_eval (descriptors ? "descriptor+head" : "embedder", &ev, json);
    if (tsv != NULL && !g_file_set_contents (pairs_out, tsv->str, tsv->len,
            &error)) {
      ncl_embed_train_settings_clear (&s);
      return ncl_cli_fail_error (error);
    }
  }
  ncl_embed_train_settings_clear (&s);
  return NCL_CLI_EXIT_OK;
}

/* ---- faces train-verifier ------------------------------------------------- */

static void
fill_features (NclVerifierFeature f, const Desc * desc, const Pair * p,
    guint np, gfloat * feats, guint8 * same)
{
  for (guint i = 0; i < np; i++) {
    ncl_verifier_features (f, desc[p[i].a].d, desc[p[i].b].d,
        NCL_FACE_DESCRIPTOR_LEN, feats + (gsize) i * NCL_FACE_DESCRIPTOR_LEN);
    same[i] = p[i].same;
  }
}

typedef struct
{
  gdouble acc_head, acc_default_t, acc_train_t, auc_head, auc_dist, train_t;
  guint n_same, n_diff;
} VerEval;

static void
verifier_eval (const NclVerifier * v, const Desc * desc, GArray * train,
    GArray * test, VerEval * ev)
{
  g_autofree FaceEvalScore *s = g_new (FaceEvalScore, MAX (train->len,
          test->len) + 1);
  g_autofree FaceEvalScore *h = g_new (FaceEvalScore, test->len + 1);
  FaceEvalSummary sum;
  guint right = 0;

  for (guint i = 0; i < train->len; i++) {
    Pair *p = &g_array_index (train, Pair, i);

    s[i].distance = ncl_face_distance (desc[p->a].d, desc[p->b].d);
    s[i].same = p->same;
  }
  face_eval_summarize (s, train->len, &sum);
  ev->train_t = sum.best_threshold;
  for (guint i = 0; i < test->len; i++) {
    Pair *p = &g_array_index (test, Pair, i);
    gdouble prob = ncl_verifier_probability (v, desc[p->a].d, desc[p->b].d);

    s[i].distance = ncl_face_distance (desc[p->a].d, desc[p->b].d);
    s[i].same = p->same;
    h[i].distance = 1 - prob;
    h[i].same = p->same;
    right += (prob > 0.5) == p->same;
  }
  face_eval_summarize (s, test->len, &sum);
  ev->auc_dist = sum.auc;
  ev->n_same = sum.n_same;
  ev->n_diff = sum.n_different;
  ev->acc_default_t = (gdouble) face_eval_count_correct (s, test->len,
      NCL_GALLERY_DEFAULT_THRESHOLD) / MAX (test->len, 1);
  ev->acc_train_t = (gdouble) face_eval_count_correct (s, test->len,
      ev->train_t) / MAX (test->len, 1);
  face_eval_summarize (h, test->len, &sum);
  ev->auc_head = sum.auc;
  ev->acc_head = (gdouble) right / MAX (test->len, 1);
}

gint
ncl_cli_faces_train_verifier (gint argc, gchar ** argv)
{
  g_auto (GStrv) labels = NULL;
  g_autofree gchar *output = NULL, *feature = NULL, *cache = NULL;
  g_autofree gchar *detector = NULL, *device = NULL;
  gdouble holdout = 0.3, border = 0.5, lr = -1, l2 = -1;
  gint seed = 1, iterations = -1;
  gboolean json = FALSE;
  GOptionEntry entries[] = {
    {"labels", 'l', 0, G_OPTION_ARG_FILENAME_ARRAY, &labels,
        "Labelled photos (file<TAB>identity, relative to the file); "
          "repeatable, identities of different files are different people",
        "TSV"},
    {"output", 'o', 0, G_OPTION_ARG_FILENAME, &output,
        "The head as a model graph (.yaml, weights beside it)", "YAML"},
    {"feature", 'f', 0, G_OPTION_ARG_STRING, &feature,
        "Pair feature: abs |f_i - f_j| (default) or chi2 "
          "(f_i - f_j)^2 / (|f_i| + |f_j|)", "abs|chi2"},
    {"holdout", 0, 0, G_OPTION_ARG_DOUBLE, &holdout,
        "Fraction of identities held out for the report (default 0.3)",
        "F"},
    {"seed", 0, 0, G_OPTION_ARG_INT, &seed, "Split and pair seed", "N"},
    {"iterations", 'n', 0, G_OPTION_ARG_INT, &iterations,
        "Full-batch Adam steps (default 3000)", "N"},
    {"learning-rate", 0, 0, G_OPTION_ARG_DOUBLE, &lr, "Adam step (0.01)",
        "LR"},
    {"l2", 0, 0, G_OPTION_ARG_DOUBLE, &l2, "Weight decay (1e-4)", "L"},
    {"descriptor-cache", 0, 0, G_OPTION_ARG_FILENAME, &cache,
        "Descriptor cache (default OUTPUT.descriptors.tsv)", "TSV"},
    {"detector", 0, 0, G_OPTION_ARG_STRING, &detector,
        "Face detector for the photos (default ssd)", "tiny|ssd"},
    {"border", 0, 0, G_OPTION_ARG_DOUBLE, &border,
        "Border added before detection (default 0.5; tight crops)", "F"},
    {"device", 'd', 0, G_OPTION_ARG_STRING, &device, "OpenCL device", "DEV"},
    {"json", 'j', 0, G_OPTION_ARG_NONE, &json, "Print the report as JSON",
        NULL},
    {NULL}
  };
  GOptionContext *octx = g_option_context_new (NULL);
  const gchar *name = ncl_cli_name (argv[0]);
  g_auto (Labelled) l = { 0 };
  g_autoptr (GError) error = NULL;
  g_autoptr (NclVerifier) v = NULL;
  g_autoptr (GArray) ptr = NULL, pte = NULL;
  g_autofree Desc *desc = NULL;
  g_autofree gint *ids = NULL;
  g_autofree guint *tr = NULL, *te = NULL;
  g_autofree gboolean *test_id = NULL;
  g_autofree gfloat *feats = NULL;
  g_autofree guint8 *same = NULL;
  g_autofree gchar *origin = NULL;
  NclVerifierFeature feat = NCL_VERIFIER_ABS;
  NclVerifierTrainSettings ts;
  NclFaceSettings fs;
  VerEval ev;
  guint ntr = 0, nte = 0, n_test_ids;

  g_option_context_set_summary (octx,
      "Learns the verification head p(same) = sigmoid (w . phi + b) on the\n"
      "face_recognition descriptors of labelled photos (logistic loss on\n"
      "all same pairs and as many random different pairs), holding out a\n"
      "seeded fraction of the identities, and reports it against the\n"
      "distance threshold on the held-out pairs.");
  g_option_context_add_main_entries (octx, entries, NULL);
  if (!ncl_cli_parse (octx, &argc, &argv, 0))
    return NCL_CLI_EXIT_FAILURE;
  if (labels == NULL || output == NULL)
    return ncl_cli_fail ("%s: --labels and --output are required", name);
  if (feature != NULL && !ncl_verifier_feature_from_string (feature, &feat))
    return ncl_cli_fail ("%s: --feature: '%s' is not abs or chi2", name,
        feature);
  if (!(holdout >= 0 && holdout < 1))
    return ncl_cli_fail ("%s: --holdout: %g is not in 0..1", name, holdout);
  ncl_verifier_train_settings_init (&ts);
  if (iterations > 0)
    ts.iterations = iterations;
  if (lr > 0)
    ts.learning_rate = lr;
  if (l2 >= 0)
    ts.l2 = l2;
  for (guint i = 0; labels[i] != NULL; i++) {
    g_autofree gchar *prefix = g_strdup_printf ("%u:", i);

    if (!labelled_add (&l, labels[i], NULL, prefix, &error))
      return ncl_cli_fail_error (error);
  }
  ncl_face_settings_init (&fs);
  if (!ncl_face_detector_from_string (detector ? detector : "ssd",
          &fs.detector))
    return ncl_cli_fail ("%s: --detector: '%s' is not tiny or ssd", name,
        detector);
  fs.border = border;
  if (cache == NULL)
    cache = g_strconcat (output, ".descriptors.tsv", NULL);
  desc = compute_descriptors (&l, &fs, device, cache, name, &error);
  if (desc == NULL)
    return ncl_cli_fail_error (error);

  n_test_ids = (guint) floor (holdout * l.names->len + 0.5);
  test_id = split_identities (l.names->len, n_test_ids, seed);
  ids = g_new (gint, l.items->len);
  tr = g_new (guint, l.items->len);
  te = g_new (guint, l.items->len);
  for (guint i = 0; i < l.items->len; i++) {
    const Item *it = &g_array_index (l.items, Item, i);

    ids[i] = it->identity;
    if (!desc[i].found)
      continue;
    if (test_id[it->identity])
      te[nte++] = i;
    else
      tr[ntr++] = i;
  }
  ptr = make_pairs (ids, tr, ntr, seed);
  pte = make_pairs (ids, te, nte, seed + 1);
  feats = g_new (gfloat, (gsize) ptr->len * NCL_FACE_DESCRIPTOR_LEN);
  same = g_new (guint8, ptr->len);
  fill_features (feat, desc, (Pair *) ptr->data, ptr->len, feats, same);
  v = ncl_verifier_new (NCL_FACE_DESCRIPTOR_LEN, feat);
  if (!ncl_verifier_train (v, feats, same, ptr->len, &ts, NULL, &error))
    return ncl_cli_fail_error (error);
  origin = g_strdup_printf ("trained here with `neuralcl faces train-verifier"
      "` on %u pairs of %u identities (seed %d, %s feature)", ptr->len,
      l.names->len - n_test_ids, seed, ncl_verifier_feature_to_string (feat));
  if (!ncl_verifier_save (v, output, origin, &error))
    return ncl_cli_fail_error (error);

  verifier_eval (v, desc, ptr, pte, &ev);
  if (json) {
    printf ("{\"output\": \"%s\", \"feature\": \"%s\", \"train_pairs\": %u, "
        "\"heldout_pairs_same\": %u, \"heldout_pairs_different\": %u, "
        "\"classifier_accuracy\": %.4f, \"classifier_auc\": %.4f, "
        "\"threshold_default\": %g, \"threshold_default_accuracy\": %.4f, "
        "\"threshold_train\": %.4f, \"threshold_train_accuracy\": %.4f, "
        "\"distance_auc\": %.4f}\n", output,
        ncl_verifier_feature_to_string (feat), ptr->len, ev.n_same,
        ev.n_diff, ev.acc_head, ev.auc_head, NCL_GALLERY_DEFAULT_THRESHOLD,
        ev.acc_default_t, ev.train_t, ev.acc_train_t, ev.auc_dist);
  } else {
    printf ("%s: %u training pairs, %u + %u held-out pairs (%u identities "
        "held out)\n", output, ptr->len, ev.n_same, ev.n_diff, n_test_ids);
    printf ("classifier (p > 0.5): accuracy %.4f, AUC %.4f\n", ev.acc_head,
        ev.auc_head);
    printf ("distance < %g (default): accuracy %.4f\n",
        NCL_GALLERY_DEFAULT_THRESHOLD, ev.acc_default_t);
    printf ("distance < %.3f (best on training pairs): accuracy %.4f, AUC "
        "%.4f\n", ev.train_t, ev.acc_train_t, ev.auc_dist);
  }
  return NCL_CLI_EXIT_OK;
}
