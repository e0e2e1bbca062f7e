/* face-detect.c: host decoding of the face networks' outputs, in double as
 * face-api does (spec 3, 4 and 5): tiny detector boxes and NMS, SSD anchor
 * decoding and NMS, landmark un-padding. */

#include "face-private.h"

#include <math.h>
#include <string.h>

/* Tiny-YOLOv2 anchors in grid cells (spec 4). */
static const gdouble tiny_anchors[5][2] = {
  {1.603231, 2.094468},
  {6.041143, 7.080126},
  {2.882459, 3.518061},
  {4.266906, 5.178857},
  {9.041765, 10.66308},
};

static inline gdouble
sigmoid (gdouble x)
{
  return 1.0 / (1.0 + exp (-x));
}

/* A candidate box as corners, with its score and where it came from. */
typedef struct
{
  gdouble x0, y0, x1, y1;
  gdouble score;
} Cand;

static gint
cand_by_score_desc (gconstpointer pa, gconstpointer pb)
{
  const Cand *a = pa, *b = pb;

  return (a->score < b->score) - (a->score > b->score);
}

/* face-api's IoU for the tiny detector: corner boxes as given. */
static gdouble
iou_plain (const Cand * a, const Cand * b)
{
  gdouble iw = MAX (0.0, MIN (a->x1, b->x1) - MAX (a->x0, b->x0));
  gdouble ih = MAX (0.0, MIN (a->y1, b->y1) - MAX (a->y0, b->y0));
  gdouble inter = iw * ih;
  gdouble ua = (a->x1 - a->x0) * (a->y1 - a->y0) +
      (b->x1 - b->x0) * (b->y1 - b->y0) - inter;

  return ua > 0 ? inter / ua : 0.0;
}

/* The SSD's IoU (TF's): coordinates min/max-ordered, 0 for empty boxes. */
static gdouble
iou_ordered (const Cand * a, const Cand * b)
{
  gdouble ax0 = MIN (a->x0, a->x1), ax1 = MAX (a->x0, a->x1);
  gdouble ay0 = MIN (a->y0, a->y1), ay1 = MAX (a->y0, a->y1);
  gdouble bx0 = MIN (b->x0, b->x1), bx1 = MAX (b->x0, b->x1);
  gdouble by0 = MIN (b->y0, b->y1), by1 = MAX (b->y0, b->y1);
  gdouble area_a = (ay1 - ay0) * (ax1 - ax0);
  gdouble area_b = (by1 - by0) * (bx1 - bx0);
  gdouble iw, ih, inter;

  if (area_a <= 0 || area_b <= 0)
    return 0.0;
  iw = MAX (MIN (ax1, bx1) - MAX (ax0, bx0), 0.0);
  ih = MAX (MIN (ay1, by1) - MAX (ay0, by0), 0.0);
  inter = iw * ih;
  return inter / (area_a + area_b - inter);
}

/* Greedy NMS over candidates sorted best first: keeps a box unless its IoU
 * with a kept one is > @thresh.  Returns the number kept, moved to the
 * front in order. */
static guint
nms (Cand * c, guint n, gdouble thresh, gboolean ordered, guint max_keep)
{
  guint kept = 0;

  for (guint i = 0; i < n && kept < max_keep; i++) {
    gboolean drop = FALSE;

    for (guint j = 0; j < kept && !drop; j++)
      drop = (ordered ? iou_ordered (&c[i], &c[j]) :
          iou_plain (&c[i], &c[j])) > thresh;
    if (!drop)
      c[kept++] = c[i];
  }
  return kept;
}

static void
append_face (GArray * faces, gdouble x, gdouble y, gdouble w, gdouble h,
    gdouble score)
{
  NclFace f;

  memset (&f, 0, sizeof (f));
  f.box.x = x;
  f.box.y = y;
  f.box.w = w;
  f.box.h = h;
  f.score = score;
  g_array_append_val (faces, f);
}

void
ncl_face_decode_tiny (const gfloat * out, gint g, gint size, gint width,
    gint height, gdouble min_score, GArray * faces)
{
  g_autoptr (GArray) cands = g_array_new (FALSE, FALSE, sizeof (Cand));
  gdouble k = (gdouble) size / MAX (width, height);
  gdouble rw = ncl_face_js_round (width * k);
  gdouble rh = ncl_face_js_round (height * k);
  gdouble fx = size / rw, fy = size / rh;
  gsize plane = (gsize) g * g;
  guint kept;

  for (gint r = 0; r < g; r++) {
    for (gint c = 0; c < g; c++) {
      for (gint a = 0; a < 5; a++) {
        const gfloat *t = out + (gsize) (a * 5) * plane + (gsize) r * g + c;
        gdouble score = sigmoid (t[4 * plane]);
        gdouble cx, cy, bw, bh;
        Cand cand;

        if (!(score > min_score))
          continue;
        cx = (c + sigmoid (t[0])) / g * fx;
        cy = (r + sigmoid (t[plane])) / g * fy;
        bw = exp (t[2 * plane]) * tiny_anchors[a][0] / g * fx;
        bh = exp (t[3 * plane]) * tiny_anchors[a][1] / g * fy;
        cand.x0 = cx - bw / 2;
        cand.y0 = cy - bh / 2;
        cand.x1 = cand.x0 + bw;
        cand.y1 = cand.y0 + bh;
        cand.score = score;
        g_array_append_val (cands, cand);
      }
    }
  }
  g_array_sort (cands, cand_by_score_desc);
  kept = nms ((Cand *) cands->data, cands->len, 0.4, FALSE, G_MAXUINT);
  for (guint i = 0; i < kept; i++) {
    const Cand *c = &g_array_index (cands, Cand, i);

    append_face (faces, c->x0 * width, c->y0 * height,
        (c->x1 - c->x0) * width, (c->y1 - c->y0) * height, c->score);
  }
}

void
ncl_face_decode_ssd (const NclFaceSsdOutput * o, const gfloat * anchors,
    gint width, gint height, gdouble min_score, gint max_results,
    GArray * faces)
{
  g_autoptr (GArray) cands = g_array_new (FALSE, FALSE, sizeof (Cand));
  gdouble k = (gdouble) NCL_FACE_SSD_SIZE / MAX (width, height);
  gdouble px = NCL_FACE_SSD_SIZE / ncl_face_js_round (width * k);
  gdouble py = NCL_FACE_SSD_SIZE / ncl_face_js_round (height * k);
  gint idx = 0;
  guint kept;

  for (gint p = 0; p < 6; p++) {
    gint g = o->grid[p], na = o->anchors[p];
    gsize plane = (gsize) g * g;

    for (gint y = 0; y < g; y++) {
      for (gint x = 0; x < g; x++) {
        for (gint a = 0; a < na; a++, idx++) {
          gsize at = (gsize) y * g + x;
          const gfloat *an = anchors + 4 * idx;
          gdouble logit = o->classes[p][(gsize) (a * 3 + 1) * plane + at];
          gdouble score = sigmoid (logit);
          gdouble ty, tx, th, tw, ha, wa, yca, xca, yc, xc, h, w;
          Cand cand;

          if (!(score > min_score))
            continue;
          ty = o->boxes[p][(gsize) (a * 4) * plane + at];
          tx = o->boxes[p][(gsize) (a * 4 + 1) * plane + at];
          th = o->boxes[p][(gsize) (a * 4 + 2) * plane + at];
          tw = o->boxes[p][(gsize) (a * 4 + 3) * plane + at];
          ha = (gdouble) an[2] - an[0];
          wa = (gdouble) an[3] - an[1];
          yca = an[0] + ha / 2;
          xca = an[1] + wa / 2;
          yc = ty / 10 * ha + yca;
          xc = tx / 10 * wa + xca;
          h = exp (th / 5) * ha;
          w = exp (tw / 5) * wa;
          cand.y0 = yc - h / 2;
          cand.x0 = xc - w / 2;
          cand.y1 = yc + h / 2;
          cand.x1 = xc + w / 2;
          cand.score = score;
          g_array_append_val (cands, cand);
        }
      }
    }
  }
  g_array_sort (cands, cand_by_score_desc);
  kept = nms ((Cand *) cands->data, cands->len, 0.5, TRUE,
      max_results > 0 ? (guint) max_results : G_MAXUINT);
  for (guint i = 0; i < kept; i++) {
    const Cand *c = &g_array_index (cands, Cand, i);
    gdouble top = MAX (0.0, c->y0) * py, bottom = MIN (1.0, c->y1) * py;
    gdouble left = MAX (0.0, c->x0) * px, right = MIN (1.0, c->x1) * px;

    append_face (faces, left * width, top * height, (right - left) * width,
        (bottom - top) * height, c->score);
  }
}

void
ncl_face_decode_landmarks (const gfloat * o, const NclBox * box,
    const NclFaceCrop * crop, NclPoint * points)
{
  gdouble s = (gdouble) NCL_FACE_LANDMARK_SIZE / MAX (crop->w, crop->h);
  gdouble sw = crop->w * s, sh = crop->h * s;
  gdouble pad_x = sw < sh ? (sh - sw) / 2 : 0.0;
  gdouble pad_y = sh < sw ? (sw - sh) / 2 : 0.0;
  /* face-api's origin is the unfloored box corner; where the box starts
   * outside the frame its crop starts at 0, and so do we */
  gdouble ox = box->x >= 0 ? box->x : 0.0;
  gdouble oy = box->y >= 0 ? box->y : 0.0;

  for (gint i = 0; i < NCL_FACE_N_LANDMARKS; i++) {
    gdouble xr = (o[2 * i] * (gdouble) NCL_FACE_LANDMARK_SIZE - pad_x) / sw;
    gdouble yr = (o[2 * i + 1] * (gdouble) NCL_FACE_LANDMARK_SIZE - pad_y) /
        sh;

    points[i].x = xr * crop->w + ox;
    points[i].y = yr * crop->h + oy;
  }
}

void
ncl_face_shift_faces (GArray * faces, guint from, gdouble dx, gdouble dy)
{
  for (guint i = from; i < faces->len; i++) {
    NclFace *f = &g_array_index (faces, NclFace, i);

    f->box.x -= dx;
    f->box.y -= dy;
    for (gint j = 0; f->has_landmarks && j < NCL_FACE_N_LANDMARKS; j++) {
      f->landmarks[j].x -= dx;
      f->landmarks[j].y -= dy;
    }
  }
}
