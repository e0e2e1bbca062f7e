/* Face tracks across frames: an IoU tracker that says when a face needs
 * (re-)recognition and turns recognitions into one stable identity per
 * track by a vote (docs/gallery.md).  Host only; not thread-safe. */
#pragma once

#include <neuralcl/face.h>

G_BEGIN_DECLS

/* Identity of a track that has not been recognised yet (the gallery's
 * NCL_IDENTITY_UNKNOWN, -1, is "recognised as nobody"). */
#define NCL_TRACK_PENDING (-2)

/**
 * NclTrackerSettings:
 * @iou_threshold: a detection continues a track when their IoU is at least
 *   this (default 0.3)
 * @max_missed: a track ends when it has gone undetected for more than this
 *   many frames in a row (default 10)
 * @recognize_interval: re-recognise a track every this many frames
 *   (default 15; 0 = only on the other triggers)
 * @grow_factor: re-recognise when the box area is this many times the area
 *   at the last recognition (default 1.2; 0 = never)
 * @score_gain: re-recognise when the detection score rose by this much
 *   since the last recognition (default 0.1; 0 = never).  The detector's
 *   confidence is the proxy for a sharper, more frontal face: it drops on
 *   blur, turned heads and occlusion.
 * @vote_window: recognitions kept per track for the vote (default 7)
 */
typedef struct
{
  gdouble iou_threshold;
  guint max_missed;
  guint recognize_interval;
  gdouble grow_factor;
  gdouble score_gain;
  guint vote_window;
} NclTrackerSettings;

void ncl_tracker_settings_init (NclTrackerSettings * s);

typedef enum
{
  NCL_TRACK_APPEARED,           /* a detection started a track */
  NCL_TRACK_LEFT,               /* the track ended (missed too long/reset) */
  NCL_TRACK_IDENTITY_CHANGED,   /* the voted identity changed */
} NclTrackEventType;

const gchar *ncl_track_event_type_to_string (NclTrackEventType t);

/**
 * NclTrackEvent:
 * @identity: the identity after the event (APPEARED: %NCL_TRACK_PENDING;
 *   LEFT: the last one)
 * @previous_identity: IDENTITY_CHANGED: the one before; otherwise the same
 *   as @identity
 */
typedef struct
{
  NclTrackEventType type;
  guint track_id;
  gint identity;
  gint previous_identity;
} NclTrackEvent;

/**
 * NclTrack:
 * @id: > 0, never reused by a tracker
 * @box: the last detection's box
 * @score: the last detection's score
 * @identity: the voted identity: %NCL_TRACK_PENDING before the first
 *   recognition, then a gallery index or %NCL_IDENTITY_UNKNOWN (-1)
 * @distance: mean distance of the votes for @identity in the window
 *   (+infinity while pending)
 * @age: frames since the track appeared (0 on its first frame)
 * @missed: frames since it was last detected (0 = detected this frame)
 * @n_recognitions: recognitions added since it appeared
 *
 * Read-only; owned by the tracker and valid until the next update.
 */
typedef struct
{
  guint id;
  NclBox box;
  gdouble score;
  gint identity;
  gfloat distance;
  guint age;
  guint missed;
  guint n_recognitions;
} NclTrack;

typedef struct _NclTracker NclTracker;

/* @settings: (nullable): NULL for the defaults. (transfer full) */
NclTracker *ncl_tracker_new (const NclTrackerSettings * settings);
void ncl_tracker_free (NclTracker * t);
const NclTrackerSettings *ncl_tracker_get_settings (const NclTracker * t);
/* Applies from the next update; a shorter vote window drops the oldest
 * votes at a track's next recognition. */
void ncl_tracker_set_settings (NclTracker * t,
    const NclTrackerSettings * settings);

/**
 * ncl_tracker_update:
 * @boxes: (array length=n): this frame's detections
 * @scores: (array length=n) (nullable): their scores (NULL: all 1)
 * @track_ids: (out) (array length=n) (nullable): the track of each
 *   detection
 * @events: (element-type NclTrackEvent) (nullable): events appended
 *
 * Advances one frame.  Detections are matched to live tracks greedily,
 * highest IoU first, pairs below the IoU threshold never; a track is
 * compared at the box it is predicted at (its last box moved by its
 * recent velocity), so faces that pass each other keep their tracks.
 * Unmatched detections start tracks (APPEARED); tracks undetected for more
 * than max_missed frames end (LEFT).
 */
void ncl_tracker_update (NclTracker * t, const NclBox * boxes,
    const gdouble * scores, guint n, guint * track_ids, GArray * events);

/**
 * ncl_tracker_needs_recognition:
 *
 * Whether the face of track @id, detected this frame, should be
 * recognised now: TRUE when it has no recognition yet, when
 * recognize_interval frames have passed since the last one, when its box
 * area grew by grow_factor or its score by score_gain since then.  FALSE
 * for a track not detected this frame or not live.
 */
gboolean ncl_tracker_needs_recognition (const NclTracker * t, guint id);

/**
 * ncl_tracker_add_result:
 * @identity: a gallery index or %NCL_IDENTITY_UNKNOWN
 * @distance: the distance of the match (to @identity, or to the nearest
 *   identity when unknown)
 *
 * Adds a recognition of track @id (made this frame) to its vote window.
 * The track's identity becomes the one with the largest summed weight
 * over the window, a vote weighing 1 - distance (clamped to 0.05..1);
 * the current identity stays on a tie.  Emits IDENTITY_CHANGED when the
 * result differs from before.  Returns FALSE for an unknown track.
 */
gboolean ncl_tracker_add_result (NclTracker * t, guint id, gint identity,
    gfloat distance, GArray * events);

/* Ends all tracks (LEFT events), e.g. on a flush or a new gallery. */
void ncl_tracker_reset (NclTracker * t, GArray * events);
/* Forgets the votes of every track, so each is recognised again
 * (identities become pending, with IDENTITY_CHANGED events). */
void ncl_tracker_clear_votes (NclTracker * t, GArray * events);

/* The live track with @id, or NULL. (transfer none) */
const NclTrack *ncl_tracker_get_track (const NclTracker * t, guint id);
/* Live tracks, oldest first. */
guint ncl_tracker_get_n_tracks (const NclTracker * t);
const NclTrack *ncl_tracker_get_nth_track (const NclTracker * t, guint i);

/* Intersection over union of two boxes (0 when either is empty). */
gdouble ncl_box_iou (const NclBox * a, const NclBox * b);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (NclTracker, ncl_tracker_free)

G_END_DECLS
