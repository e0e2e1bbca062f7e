/* Tracker: scripted sequences of boxes.  Slow motion keeps a track, faces
 * crossing (also with one occluded) keep theirs, a face gone for more than
 * max_missed frames ends with LEFT, recognition is asked for at the start,
 * after the interval, on growth and on a score rise, and the vote keeps an
 * identity against a stray recognition and changes it (once) only when the
 * majority changes. */

#include "common.h"

#include <math.h>

static NclBox
box (gdouble x, gdouble y, gdouble w, gdouble h)
{
  NclBox b = { x, y, w, h };

  return b;
}

static guint
count_events (GArray * events, NclTrackEventType type, guint id)
{
  guint n = 0;

  for (guint i = 0; i < events->len; i++) {
    NclTrackEvent *e = &g_array_index (events, NclTrackEvent, i);

    n += e->type == type && (id == 0 || e->track_id == id);
  }
  return n;
}

static GArray *
new_events (void)
{
  return g_array_new (FALSE, FALSE, sizeof (NclTrackEvent));
}

/* IoU of simple cases, including empty boxes. */
static void
test_iou (void)
{
  NclBox a = box (0, 0, 10, 10), b = box (5, 0, 10, 10);
  NclBox c = box (20, 20, 5, 5), e = box (0, 0, 0, 10);

  NCL_CHECK (fabs (ncl_box_iou (&a, &a) - 1) < 1e-12);
  NCL_CHECK (fabs (ncl_box_iou (&a, &b) - 1.0 / 3) < 1e-12);
  NCL_CHECK (ncl_box_iou (&a, &c) == 0);
  NCL_CHECK (ncl_box_iou (&a, &e) == 0);
}

/* A face drifting 5 px per frame keeps its id for 30 frames; a jump to
 * a far place is a new track. */
static void
test_slow_motion (void)
{
  g_autoptr (NclTracker) t = ncl_tracker_new (NULL);
  g_autoptr (GArray) events = new_events ();
  guint first = 0, id = 0;
  const NclTrack *tr;
  NclBox far = box (600, 400, 100, 100);

  for (guint f = 0; f < 30; f++) {
    NclBox b = box (100 + 5 * f, 80 + 2 * f, 100, 100);

    ncl_tracker_update (t, &b, NULL, 1, &id, events);
    if (f == 0)
      first = id;
    NCL_CHECK (id == first);
  }
  NCL_CHECK (first > 0);
  NCL_CHECK (events->len == 1);
  NCL_CHECK (count_events (events, NCL_TRACK_APPEARED, first) == 1);
  NCL_CHECK (ncl_tracker_get_n_tracks (t) == 1);
  tr = ncl_tracker_get_track (t, first);
  NCL_CHECK (tr != NULL);
  if (tr) {
    NCL_CHECK (tr->age == 29);
    NCL_CHECK (tr->missed == 0);
    NCL_CHECK (tr->box.x == 100 + 5 * 29);
    NCL_CHECK (tr->identity == NCL_TRACK_PENDING);
  }

  ncl_tracker_update (t, &far, NULL, 1, &id, events);
  NCL_CHECK (id != first);
  NCL_CHECK (count_events (events, NCL_TRACK_APPEARED, id) == 1);
  NCL_CHECK (ncl_tracker_get_n_tracks (t) == 2);
}

/* Two faces on the same row cross at 8 px per frame each.  Near the
 * crossing the other face's box overlaps a track's last box more than its
 * own face does; the velocity prediction keeps them apart.  With
 * @occlude, the face behind is not detected while they overlap and is
 * picked up again by its own track.  The detection order alternates. */
static void
run_crossing (gboolean occlude)
{
  g_autoptr (NclTracker) t = ncl_tracker_new (NULL);
  g_autoptr (GArray) events = new_events ();
  guint id_a = 0, id_b = 0, n_hidden = 0;

  for (guint f = 0; f < 40; f++) {
    gdouble xa = 8.0 * f, xb = 300 - 8.0 * f;
    NclBox boxes[2];
    guint ids[2] = { 0, 0 };
    gboolean hidden = occlude && fabs (xa - xb) < 40;
    guint n = hidden ? 1 : 2, ia = f % 2 == 0 || hidden ? 0 : 1;

    boxes[ia] = box (xa, 100, 60, 60);
    if (!hidden)
      boxes[1 - ia] = box (xb, 100, 60, 60);
    n_hidden += hidden;
    ncl_tracker_update (t, boxes, NULL, n, ids, events);
    if (f == 0) {
      id_a = ids[ia];
      id_b = ids[1 - ia];
    }
    NCL_CHECK (ids[ia] == id_a);
    if (!hidden)
      NCL_CHECK (ids[1 - ia] == id_b);
  }
  NCL_CHECK (id_a != id_b);
  NCL_CHECK (!occlude || n_hidden >= 4);
  NCL_CHECK (count_events (events, NCL_TRACK_APPEARED, 0) == 2);
  NCL_CHECK (count_events (events, NCL_TRACK_LEFT, 0) == 0);
}

static void
test_crossing (void)
{
  run_crossing (FALSE);
  run_crossing (TRUE);
}

/* A face gone for max_missed frames is kept; one frame more ends it with
 * LEFT, and a face in the same place later gets a new id. */
static void
test_disappear (void)
{
  NclTrackerSettings s;
  g_autoptr (NclTracker) t = NULL;
  g_autoptr (GArray) events = new_events ();
  NclBox b = box (50, 50, 80, 80);
  guint id = 0, id2 = 0;
  const NclTrack *tr;

  ncl_tracker_settings_init (&s);
  s.max_missed = 10;
  t = ncl_tracker_new (&s);
  for (guint f = 0; f < 5; f++)
    ncl_tracker_update (t, &b, NULL, 1, &id, events);
  for (guint f = 0; f < 10; f++)
    ncl_tracker_update (t, NULL, NULL, 0, NULL, events);
  tr = ncl_tracker_get_track (t, id);
  NCL_CHECK (tr != NULL);
  NCL_CHECK (tr && tr->missed == 10);
  NCL_CHECK (count_events (events, NCL_TRACK_LEFT, id) == 0);
  NCL_CHECK (!ncl_tracker_needs_recognition (t, id));

  ncl_tracker_update (t, NULL, NULL, 0, NULL, events);
  NCL_CHECK (ncl_tracker_get_track (t, id) == NULL);
  NCL_CHECK (ncl_tracker_get_n_tracks (t) == 0);
  NCL_CHECK (count_events (events, NCL_TRACK_LEFT, id) == 1);
  if (events->len > 0) {
    NclTrackEvent *e = &g_array_index (events, NclTrackEvent,
        events->len - 1);
    NCL_CHECK (e->type == NCL_TRACK_LEFT && e->track_id == id);
  }

  ncl_tracker_update (t, &b, NULL, 1, &id2, events);
  NCL_CHECK (id2 != id && id2 > id);

  /* a face back within max_missed frames keeps its track */
  for (guint f = 0; f < 3; f++)
    ncl_tracker_update (t, NULL, NULL, 0, NULL, events);
  ncl_tracker_update (t, &b, NULL, 1, &id, events);
  NCL_CHECK (id == id2);
}

/* Recognition: at the start, not twice in a frame, again after the
 * interval, when the area grew by grow_factor, when the score rose by
 * score_gain; not for small changes or undetected tracks. */
static void
test_recognition_schedule (void)
{
  NclTrackerSettings s;
  g_autoptr (NclTracker) t = NULL;
  NclBox b = box (100, 100, 100, 100);
  gdouble score = 0.6;
  guint id = 0;

  ncl_tracker_settings_init (&s);
  s.recognize_interval = 15;
  s.grow_factor = 1.2;
  s.score_gain = 0.1;
  t = ncl_tracker_new (&s);

  /* frame 1: new */
  ncl_tracker_update (t, &b, &score, 1, &id, NULL);
  NCL_CHECK (ncl_tracker_needs_recognition (t, id));
  NCL_CHECK (ncl_tracker_needs_recognition (t, id));    /* no side effect */
  NCL_CHECK (ncl_tracker_add_result (t, id, 0, 0.3f, NULL));
  NCL_CHECK (!ncl_tracker_needs_recognition (t, id));
  NCL_CHECK (!ncl_tracker_needs_recognition (t, id + 100));
  NCL_CHECK (!ncl_tracker_add_result (t, id + 100, 0, 0.3f, NULL));

  /* frames 2..15: nothing; frame 16: the interval */
  for (guint f = 2; f <= 15; f++) {
    ncl_tracker_update (t, &b, &score, 1, &id, NULL);
    NCL_CHECK (!ncl_tracker_needs_recognition (t, id));
  }
  ncl_tracker_update (t, &b, &score, 1, &id, NULL);
  NCL_CHECK (ncl_tracker_needs_recognition (t, id));
  ncl_tracker_add_result (t, id, 0, 0.3f, NULL);

  /* area x1.1025: no; x1.2544: yes */
  b.w = b.h = 105;
  ncl_tracker_update (t, &b, &score, 1, &id, NULL);
  NCL_CHECK (!ncl_tracker_needs_recognition (t, id));
  b.w = b.h = 112;
  ncl_tracker_update (t, &b, &score, 1, &id, NULL);
  NCL_CHECK (ncl_tracker_needs_recognition (t, id));
  ncl_tracker_add_result (t, id, 0, 0.3f, NULL);
  /* the reference is now the larger box */
  ncl_tracker_update (t, &b, &score, 1, &id, NULL);
  NCL_CHECK (!ncl_tracker_needs_recognition (t, id));

  /* score +0.05: no; +0.15: yes */
  score = 0.65;
  ncl_tracker_update (t, &b, &score, 1, &id, NULL);
  NCL_CHECK (!ncl_tracker_needs_recognition (t, id));
  score = 0.75;
  ncl_tracker_update (t, &b, &score, 1, &id, NULL);
  NCL_CHECK (ncl_tracker_needs_recognition (t, id));
  ncl_tracker_add_result (t, id, 0, 0.3f, NULL);

  /* not detected this frame: even when due */
  for (guint f = 0; f < 3; f++)
    ncl_tracker_update (t, NULL, NULL, 0, NULL, NULL);
  b.w = b.h = 180;
  NCL_CHECK (!ncl_tracker_needs_recognition (t, id));
  ncl_tracker_update (t, &b, &score, 1, &id, NULL);
  NCL_CHECK (ncl_tracker_needs_recognition (t, id));
  NCL_CHECK (ncl_tracker_get_track (t, id)->n_recognitions == 4);
}

/* Votes: the first recognition decides; one stray result does not flip
 * the identity; the change comes (with one event) when the other identity
 * outweighs; unknown votes count with their weight; ties keep the current
 * identity; the window forgets old votes. */
static void
test_votes (void)
{
  NclTrackerSettings s;
  g_autoptr (NclTracker) t = NULL;
  g_autoptr (GArray) events = new_events ();
  NclBox b = box (10, 10, 50, 50);
  const NclTrack *tr;
  guint id = 0;

  ncl_tracker_settings_init (&s);
  s.vote_window = 7;
  t = ncl_tracker_new (&s);
  ncl_tracker_update (t, &b, NULL, 1, &id, events);
  g_array_set_size (events, 0);

  ncl_tracker_add_result (t, id, 0, 0.4f, events);
  tr = ncl_tracker_get_track (t, id);
  NCL_CHECK (tr->identity == 0);
  NCL_CHECK (events->len == 1);
  if (events->len == 1) {
    NclTrackEvent *e = &g_array_index (events, NclTrackEvent, 0);
    NCL_CHECK (e->type == NCL_TRACK_IDENTITY_CHANGED);
    NCL_CHECK (e->track_id == id);
    NCL_CHECK (e->identity == 0);
    NCL_CHECK (e->previous_identity == NCL_TRACK_PENDING);
  }
  ncl_tracker_add_result (t, id, 0, 0.4f, events);
  ncl_tracker_add_result (t, id, 0, 0.4f, events);
  /* A: 3 x 0.6 = 1.8 */
  NCL_CHECK (fabsf (tr->distance - 0.4f) < 1e-6f);

  /* one stray B (0.7) */
  ncl_tracker_add_result (t, id, 1, 0.3f, events);
  NCL_CHECK (tr->identity == 0);
  NCL_CHECK (events->len == 1);
  /* B 1.4 < 1.8 */
  ncl_tracker_add_result (t, id, 1, 0.3f, events);
  NCL_CHECK (tr->identity == 0);
  NCL_CHECK (events->len == 1);
  /* B 2.1 > 1.8: changes once */
  ncl_tracker_add_result (t, id, 1, 0.3f, events);
  NCL_CHECK (tr->identity == 1);
  NCL_CHECK (fabsf (tr->distance - 0.3f) < 1e-6f);
  NCL_CHECK (events->len == 2);
  if (events->len == 2) {
    NclTrackEvent *e = &g_array_index (events, NclTrackEvent, 1);
    NCL_CHECK (e->type == NCL_TRACK_IDENTITY_CHANGED);
    NCL_CHECK (e->identity == 1 && e->previous_identity == 0);
  }
  /* window now A A A B B B + unknown (0.3): B still */
  ncl_tracker_add_result (t, id, NCL_IDENTITY_UNKNOWN, 0.7f, events);
  NCL_CHECK (tr->identity == 1);
  NCL_CHECK (events->len == 2);
  /* the window slides: A B B B ? ? ? (B 2.1, unknown 0.9) */
  ncl_tracker_add_result (t, id, NCL_IDENTITY_UNKNOWN, 0.7f, events);
  ncl_tracker_add_result (t, id, NCL_IDENTITY_UNKNOWN, 0.7f, events);
  NCL_CHECK (tr->identity == 1);
  /* B B B ? ? ? ? (2.1 vs 1.2), then B B ? ? ? ? ? (1.4 vs 1.5): unknown */
  ncl_tracker_add_result (t, id, NCL_IDENTITY_UNKNOWN, 0.7f, events);
  NCL_CHECK (tr->identity == 1);
  ncl_tracker_add_result (t, id, NCL_IDENTITY_UNKNOWN, 0.7f, events);
  NCL_CHECK (tr->identity == NCL_IDENTITY_UNKNOWN);
  NCL_CHECK (events->len == 3);
  NCL_CHECK (fabsf (tr->distance - 0.7f) < 1e-6f);

  /* clear: pending again, needs recognition, one event */
  ncl_tracker_clear_votes (t, events);
  NCL_CHECK (tr->identity == NCL_TRACK_PENDING);
  NCL_CHECK (tr->n_recognitions == 0);
  NCL_CHECK (isinf (tr->distance));
  NCL_CHECK (ncl_tracker_needs_recognition (t, id));
  NCL_CHECK (events->len == 4);

  /* reset: LEFT for every track */
  ncl_tracker_reset (t, events);
  NCL_CHECK (ncl_tracker_get_n_tracks (t) == 0);
  NCL_CHECK (count_events (events, NCL_TRACK_LEFT, id) == 1);
}

/* Ties keep the current identity; with a window of 1 every result wins. */
static void
test_vote_ties (void)
{
  NclTrackerSettings s;
  g_autoptr (NclTracker) t = NULL;
  g_autoptr (GArray) events = new_events ();
  NclBox b = box (10, 10, 50, 50);
  const NclTrack *tr;
  guint id = 0;

  ncl_tracker_settings_init (&s);
  s.vote_window = 2;
  t = ncl_tracker_new (&s);
  ncl_tracker_update (t, &b, NULL, 1, &id, NULL);
  tr = ncl_tracker_get_track (t, id);
  ncl_tracker_add_result (t, id, 3, 0.2f, events);
  ncl_tracker_add_result (t, id, 5, 0.2f, events);
  NCL_CHECK (tr->identity == 3);
  /* window 5 5: */
  ncl_tracker_add_result (t, id, 5, 0.2f, events);
  NCL_CHECK (tr->identity == 5);
  NCL_CHECK (events->len == 2);

  s.vote_window = 1;
  ncl_tracker_set_settings (t, &s);
  ncl_tracker_add_result (t, id, 2, 0.5f, events);
  NCL_CHECK (tr->identity == 2);
  NCL_CHECK (events->len == 3);
}

/* Several new faces in one frame get distinct, increasing ids in detection
 * order; a detection matches at most one track. */
static void
test_ids (void)
{
  g_autoptr (NclTracker) t = ncl_tracker_new (NULL);
  g_autoptr (GArray) events = new_events ();
  NclBox boxes[3] = { box (0, 0, 40, 40), box (100, 0, 40, 40),
    box (200, 0, 40, 40)
  };
  NclBox merged = box (50, 0, 40, 40);
  guint ids[3] = { 0, 0, 0 };
  guint ids2[3] = { 0, 0, 0 };

  ncl_tracker_update (t, boxes, NULL, 3, ids, events);
  NCL_CHECK (ids[0] > 0 && ids[1] == ids[0] + 1 && ids[2] == ids[1] + 1);
  NCL_CHECK (ncl_tracker_get_n_tracks (t) == 3);
  NCL_CHECK (ncl_tracker_get_nth_track (t, 0)->id == ids[0]);
  NCL_CHECK (ncl_tracker_get_nth_track (t, 3) == NULL);

  /* same boxes, reversed order */
  {
    NclBox rev[3] = { boxes[2], boxes[1], boxes[0] };

    ncl_tracker_update (t, rev, NULL, 3, ids2, events);
    NCL_CHECK (ids2[0] == ids[2] && ids2[1] == ids[1] && ids2[2] == ids[0]);
  }
  /* one box between the first two overlapping neither enough: new */
  ncl_tracker_update (t, &merged, NULL, 1, ids2, events);
  NCL_CHECK (ids2[0] == ids[2] + 1);
  NCL_CHECK (count_events (events, NCL_TRACK_APPEARED, 0) == 4);
}

int
main (void)
{
  test_iou ();
  test_slow_motion ();
  test_crossing ();
  test_disappear ();
  test_recognition_schedule ();
  test_votes ();
  test_vote_ties ();
  test_ids ();
  return ncl_test_finish ();
}
