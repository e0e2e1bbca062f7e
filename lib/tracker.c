/* IoU face tracker with recognition scheduling and identity votes.
 *
 * Each frame, live tracks are predicted forward by their velocity (centre
 * motion per frame, smoothed) and matched to the detections greedily,
 * highest IoU first.  A track remembers the frame, box area and score of
 * its last recognition to decide when to recognise again, and keeps the
 * last vote_window recognitions; its identity is the weighted majority of
 * those, with ties going to the identity it already has. */
#include <neuralcl/tracker.h>
#include <neuralcl/gallery.h>

#include <math.h>

#define MIN_VOTE_WEIGHT 0.05

typedef struct
{
  gint identity;
  gfloat distance;
} Vote;

typedef struct
{
  NclTrack pub;
  gdouble vx, vy;               /* centre velocity, pixels per frame */
  gboolean has_velocity;
  guint64 last_recognition;     /* frame number */
  gdouble ref_area;             /* box area at the last recognition */
  gdouble ref_score;            /* score at the last recognition */
  GArray *votes;                /* Vote, oldest first */
} Track;

struct _NclTracker
{
  NclTrackerSettings settings;
  GPtrArray *tracks;            /* Track, by id */
  guint next_id;
  guint64 frame;
};

void
ncl_tracker_settings_init (NclTrackerSettings * s)
{
  g_return_if_fail (s != NULL);
  s->iou_threshold = 0.3;
  s->max_missed = 10;
  s->recognize_interval = 15;
  s->grow_factor = 1.2;
  s->score_gain = 0.1;
  s->vote_window = 7;
}

const gchar *
ncl_track_event_type_to_string (NclTrackEventType t)
{
  switch (t) {
    case NCL_TRACK_APPEARED:
      return "appeared";
    case NCL_TRACK_LEFT:
      return "left";
    case NCL_TRACK_IDENTITY_CHANGED:
      return "identity-changed";
  }
  return "invalid";
}

gdouble
ncl_box_iou (const NclBox * a, const NclBox * b)
{
  gdouble x0, y0, x1, y1, inter, uni;

  g_return_val_if_fail (a != NULL && b != NULL, 0);
  if (!(a->w > 0 && a->h > 0 && b->w > 0 && b->h > 0))
    return 0;
  x0 = MAX (a->x, b->x);
  y0 = MAX (a->y, b->y);
  x1 = MIN (a->x + a->w, b->x + b->w);
  y1 = MIN (a->y + a->h, b->y + b->h);
  if (x1 <= x0 || y1 <= y0)
    return 0;
  inter = (x1 - x0) * (y1 - y0);
  uni = a->w * a->h + b->w * b->h - inter;
  return uni > 0 ? inter / uni : 0;
}

static void
track_free (gpointer p)
{
  Track *tr = p;

  g_array_unref (tr->votes);
  g_free (tr);
}

NclTracker *
ncl_tracker_new (const NclTrackerSettings * settings)
{
  NclTracker *t = g_new0 (NclTracker, 1);

  if (settings != NULL)
    t->settings = *settings;
  else
    ncl_tracker_settings_init (&t->settings);
  t->tracks = g_ptr_array_new_with_free_func (track_free);
  t->next_id = 1;
  return t;
}

void
ncl_tracker_free (NclTracker * t)
{
  if (t == NULL)
    return;
  g_ptr_array_unref (t->tracks);
  g_free (t);
}

const NclTrackerSettings *
ncl_tracker_get_settings (const NclTracker * t)
{
  g_return_val_if_fail (t != NULL, NULL);
  return &t->settings;
}

void
ncl_tracker_set_settings (NclTracker * t, const NclTrackerSettings * settings)
{
  g_return_if_fail (t != NULL);
  g_return_if_fail (settings != NULL);
  t->settings = *settings;
}

static Track *
find_track (const NclTracker * t, guint id)
{
  for (guint i = 0; i < t->tracks->len; i++) {
    Track *tr = t->tracks->pdata[i];

    if (tr->pub.id == id)
      return tr;
  }
  return NULL;
}

static void
emit (GArray * events, NclTrackEventType type, const Track * tr,
    gint previous)
{
  NclTrackEvent ev;

  if (events == NULL)
    return;
  ev.type = type;
  ev.track_id = tr->pub.id;
  ev.identity = tr->pub.identity;
  ev.previous_identity = previous;
  g_array_append_val (events, ev);
}

/* ---- update ------------------------------------------------------------- */

typedef struct
{
  guint track;                  /* index in t->tracks */
  guint det;
  gdouble iou;
} Pair;

static gint
compare_pairs (gconstpointer pa, gconstpointer pb)
{
  const Pair *a = pa, *b = pb;

  if (a->iou != b->iou)
    return a->iou > b->iou ? -1 : 1;
  /* ties: older track, then earlier detection */
  if (a->track != b->track)
    return a->track < b->track ? -1 : 1;
  return a->det < b->det ? -1 : a->det > b->det;
}

/* The box where @tr is expected this frame. */
static NclBox
predict (const Track * tr)
{
  NclBox b = tr->pub.box;
  gdouble steps = tr->pub.missed + 1;

  if (tr->has_velocity) {
    b.x += tr->vx * steps;
    b.y += tr->vy * steps;
  }
  return b;
}

static void
track_observe (Track * tr, const NclBox * box, gdouble score)
{
  gdouble steps = tr->pub.missed + 1;
  gdouble mx = (box->x + box->w / 2 - tr->pub.box.x - tr->pub.box.w / 2) /
      steps;
  gdouble my = (box->y + box->h / 2 - tr->pub.box.y - tr->pub.box.h / 2) /
      steps;

  if (tr->has_velocity) {
    tr->vx = 0.5 * tr->vx + 0.5 * mx;
    tr->vy = 0.5 * tr->vy + 0.5 * my;
  } else {
    tr->vx = mx;
    tr->vy = my;
    tr->has_velocity = TRUE;
  }
  tr->pub.box = *box;
  tr->pub.score = score;
  tr->pub.missed = 0;
}

void
ncl_tracker_update (NclTracker * t, const NclBox * boxes,
    const gdouble * scores, guint n, guint * track_ids, GArray * events)
{
  g_autoptr (GArray) pairs = NULL;
  g_autofree gboolean *track_used = NULL;
  g_autofree gint *det_track = NULL;
  guint n_tracks;

  g_return_if_fail (t != NULL);
  g_return_if_fail (n == 0 || boxes != NULL);

  t->frame++;
  n_tracks = t->tracks->len;
  track_used = g_new0 (gboolean, n_tracks + 1);
  det_track = g_new (gint, n + 1);
  for (guint d = 0; d < n; d++)
    det_track[d] = -1;

  pairs = g_array_new (FALSE, FALSE, sizeof (Pair));
  for (guint i = 0; i < n_tracks; i++) {
    NclBox pred = predict (t->tracks->pdata[i]);

    for (guint d = 0; d < n; d++) {
      Pair p = { i, d, ncl_box_iou (&pred, &boxes[d]) };

      if (p.iou > 0 && p.iou >= t->settings.iou_threshold)
        g_array_append_val (pairs, p);
    }
  }
  g_array_sort (pairs, compare_pairs);
  for (guint k = 0; k < pairs->len; k++) {
    const Pair *p = &g_array_index (pairs, Pair, k);

    if (track_used[p->track] || det_track[p->det] >= 0)
      continue;
    track_used[p->track] = TRUE;
    det_track[p->det] = p->track;
  }

  /* advance existing tracks */
  for (guint d = 0; d < n; d++)
    if (det_track[d] >= 0)
      track_observe (t->tracks->pdata[det_track[d]], &boxes[d],
          scores ? scores[d] : 1.0);
  for (guint i = 0; i < n_tracks; i++) {
    Track *tr = t->tracks->pdata[i];

    tr->pub.age++;
    if (!track_used[i])
      tr->pub.missed++;
  }
  for (guint d = 0; d < n; d++)
    if (det_track[d] >= 0 && track_ids != NULL)
      track_ids[d] = ((Track *) t->tracks->pdata[det_track[d]])->pub.id;

  /* end lost tracks (indices above shift, so after reading det_track) */
  for (guint i = t->tracks->len; i-- > 0;) {
    Track *tr = t->tracks->pdata[i];

    if (tr->pub.missed > t->settings.max_missed) {
      emit (events, NCL_TRACK_LEFT, tr, tr->pub.identity);
      g_ptr_array_remove_index (t->tracks, i);
    }
  }

  /* start new ones */
  for (guint d = 0; d < n; d++) {
    Track *tr;

    if (det_track[d] >= 0)
      continue;
    tr = g_new0 (Track, 1);
    tr->pub.id = t->next_id++;
    tr->pub.box = boxes[d];
    tr->pub.score = scores ? scores[d] : 1.0;
    tr->pub.identity = NCL_TRACK_PENDING;
    tr->pub.distance = INFINITY;
    tr->votes = g_array_new (FALSE, FALSE, sizeof (Vote));
    g_ptr_array_add (t->tracks, tr);
    if (track_ids != NULL)
      track_ids[d] = tr->pub.id;
    emit (events, NCL_TRACK_APPEARED, tr, NCL_TRACK_PENDING);
  }
}

/* ---- recognition -------------------------------------------------------- */

gboolean
ncl_tracker_needs_recognition (const NclTracker * t, guint id)
{
  const NclTrackerSettings *s;
  const Track *tr;
  gdouble area;

  g_return_val_if_fail (t != NULL, FALSE);
  s = &t->settings;
  tr = find_track (t, id);
  if (tr == NULL || tr->pub.missed > 0)
    return FALSE;
  if (tr->pub.n_recognitions == 0)
    return TRUE;
  if (tr->last_recognition == t->frame)
    return FALSE;
  if (s->recognize_interval > 0 &&
      t->frame - tr->last_recognition >= s->recognize_interval)
    return TRUE;
  area = tr->pub.box.w * tr->pub.box.h;
  if (s->grow_factor > 0 && area >= tr->ref_area * s->grow_factor)
    return TRUE;
  if (s->score_gain > 0 && tr->pub.score >= tr->ref_score + s->score_gain)
    return TRUE;
  return FALSE;
}

static gdouble
vote_weight (gfloat distance)
{
  if (!isfinite (distance))
    return MIN_VOTE_WEIGHT;
  return CLAMP (1.0 - distance, MIN_VOTE_WEIGHT, 1.0);
}

typedef struct
{
  gint identity;
  gdouble weight;
  guint last;                   /* index of its latest vote */
} Tally;

/* The weighted majority of the window; on a tie the current identity
 * stays, else the one voted for most recently wins. */
static gint
count_votes (const Track * tr, gfloat * mean_distance)
{
  const GArray *votes = tr->votes;
  g_autoptr (GArray) tally = g_array_new (FALSE, FALSE, sizeof (Tally));
  gdouble top = 0, sum = 0;
  gint best = tr->pub.identity;
  guint best_last = 0, n = 0;
  gboolean found = FALSE;

  for (guint i = 0; i < votes->len; i++) {
    const Vote *v = &g_array_index (votes, Vote, i);
    Tally *slot = NULL;

    for (guint k = 0; k < tally->len && slot == NULL; k++)
      if (g_array_index (tally, Tally, k).identity == v->identity)
        slot = &g_array_index (tally, Tally, k);
    if (slot == NULL) {
      Tally empty = { v->identity, 0, 0 };

      g_array_append_val (tally, empty);
      slot = &g_array_index (tally, Tally, tally->len - 1);
    }
    slot->weight += vote_weight (v->distance);
    slot->last = i;
    top = MAX (top, slot->weight);
  }

  for (guint k = 0; k < tally->len; k++) {
    const Tally *c = &g_array_index (tally, Tally, k);

    /* equal sums added in another order still count as a tie */
    if (c->weight < top * (1 - 1e-9))
      continue;
    if (c->identity == tr->pub.identity) {
      best = c->identity;
      break;
    }
    if (!found || c->last > best_last) {
      best = c->identity;
      best_last = c->last;
      found = TRUE;
    }
  }

  for (guint i = 0; i < votes->len; i++) {
    const Vote *v = &g_array_index (votes, Vote, i);

    if (v->identity == best) {
      sum += v->distance;
      n++;
    }
  }
  *mean_distance = n > 0 ? sum / n : INFINITY;
  return best;
}

gboolean
ncl_tracker_add_result (NclTracker * t, guint id, gint identity,
    gfloat distance, GArray * events)
{
  Track *tr;
  Vote v = { identity, distance };
  guint window;
  gint previous;

  g_return_val_if_fail (t != NULL, FALSE);
  g_return_val_if_fail (identity >= NCL_IDENTITY_UNKNOWN, FALSE);
  tr = find_track (t, id);
  if (tr == NULL)
    return FALSE;

  tr->last_recognition = t->frame;
  tr->ref_area = tr->pub.box.w * tr->pub.box.h;
  tr->ref_score = tr->pub.score;
  tr->pub.n_recognitions++;
  g_array_append_val (tr->votes, v);
  window = MAX (t->settings.vote_window, 1);
  if (tr->votes->len > window)
    g_array_remove_range (tr->votes, 0, tr->votes->len - window);

  previous = tr->pub.identity;
  tr->pub.identity = count_votes (tr, &tr->pub.distance);
  if (tr->pub.identity != previous)
    emit (events, NCL_TRACK_IDENTITY_CHANGED, tr, previous);
  return TRUE;
}

void
ncl_tracker_reset (NclTracker * t, GArray * events)
{
  g_return_if_fail (t != NULL);
  for (guint i = 0; i < t->tracks->len; i++) {
    Track *tr = t->tracks->pdata[i];

    emit (events, NCL_TRACK_LEFT, tr, tr->pub.identity);
  }
  g_ptr_array_set_size (t->tracks, 0);
}

void
ncl_tracker_clear_votes (NclTracker * t, GArray * events)
{
  g_return_if_fail (t != NULL);
  for (guint i = 0; i < t->tracks->len; i++) {
    Track *tr = t->tracks->pdata[i];
    gint previous = tr->pub.identity;

    g_array_set_size (tr->votes, 0);
    tr->pub.n_recognitions = 0;
    tr->pub.identity = NCL_TRACK_PENDING;
    tr->pub.distance = INFINITY;
    if (previous != NCL_TRACK_PENDING)
      emit (events, NCL_TRACK_IDENTITY_CHANGED, tr, previous);
  }
}

/* ---- getters ------------------------------------------------------------ */

const NclTrack *
ncl_tracker_get_track (const NclTracker * t, guint id)
{
  Track *tr;

  g_return_val_if_fail (t != NULL, NULL);
  tr = find_track (t, id);
  return tr ? &tr->pub : NULL;
}

guint
ncl_tracker_get_n_tracks (const NclTracker * t)
{
  g_return_val_if_fail (t != NULL, 0);
  return t->tracks->len;
}

const NclTrack *
ncl_tracker_get_nth_track (const NclTracker * t, guint i)
{
  g_return_val_if_fail (t != NULL, NULL);
  if (i >= t->tracks->len)
    return NULL;
  return &((Track *) t->tracks->pdata[i])->pub;
}
