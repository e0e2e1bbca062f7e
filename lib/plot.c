/* plot.c: the trainer's pictures: a loss-curve PNG (cairo, log y axis) and
 * a PNG grid of images.  Without cairo the curves are drawn as plain
 * polylines into an RGB image (no text). */
#include <neuralcl/train.h>
#include <neuralcl/error.h>

#include <math.h>
#include <string.h>

#ifdef NCL_HAVE_CAIRO
#include <cairo.h>
#endif

static const gdouble series_rgb[][3] = {
  {0.10, 0.10, 0.10}, {0.12, 0.47, 0.71}, {0.84, 0.15, 0.16},
  {0.17, 0.63, 0.17}, {0.58, 0.40, 0.74}, {1.00, 0.50, 0.05},
};

/* Moving average over @win points (the raw curve is noisy per batch). */
static void
smooth (const gdouble * y, guint n, guint win, gdouble * out)
{
  for (guint i = 0; i < n; i++) {
    guint a = i >= win / 2 ? i - win / 2 : 0;
    guint b = MIN (n, i + win / 2 + 1);
    gdouble s = 0;
    guint c = 0;

    for (guint k = a; k < b; k++) {
      if (y[k] > 0 && isfinite (y[k])) {
        s += log10 (y[k]);
        c++;
      }
    }
    out[i] = c ? s / c : NAN;
  }
}

#ifdef NCL_HAVE_CAIRO
gboolean
ncl_plot_curves (const gchar * path, const gchar * title, const gdouble * x,
    guint n, guint n_series, const gchar * const *names,
    const gdouble * const *ys, GError ** error)
{
  const gint W = 900, H = 540, L = 80, R = 150, T = 40, B = 50;
  cairo_surface_t *surf = cairo_image_surface_create (CAIRO_FORMAT_RGB24, W,
      H);
  cairo_t *cr = cairo_create (surf);
  g_autofree gdouble *sm = g_new (gdouble, n);
  gdouble x0 = n ? x[0] : 0, x1 = n ? x[n - 1] : 1, lo = G_MAXDOUBLE,
      hi = -G_MAXDOUBLE;
  guint win = MAX (1, n / 50);
  cairo_status_t st;

  if (x1 <= x0)
    x1 = x0 + 1;
  for (guint s = 0; s < n_series; s++) {
    smooth (ys[s], n, win, sm);
    for (guint i = 0; i < n; i++)
      if (isfinite (sm[i])) {
        lo = MIN (lo, sm[i]);
        hi = MAX (hi, sm[i]);
      }
  }
  if (lo > hi) {
    lo = 0;
    hi = 1;
  }
  lo = floor (lo);
  hi = ceil (hi);
  if (hi <= lo)
    hi = lo + 1;

  cairo_set_source_rgb (cr, 1, 1, 1);
  cairo_paint (cr);
  cairo_select_font_face (cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
      CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size (cr, 13);

  /* grid and labels: one line per decade, five x ticks */
  cairo_set_line_width (cr, 1);
  for (gint d = (gint) lo; d <= (gint) hi; d++) {
    gdouble y = T + (H - T - B) * (hi - d) / (hi - lo);
    gchar label[32];

    cairo_set_source_rgb (cr, 0.88, 0.88, 0.88);
    cairo_move_to (cr, L, y);
    cairo_line_to (cr, W - R, y);
    cairo_stroke (cr);
    cairo_set_source_rgb (cr, 0.2, 0.2, 0.2);
    g_snprintf (label, sizeof (label), "1e%d", d);
    cairo_move_to (cr, L - 45, y + 4);
    cairo_show_text (cr, label);
  }
  for (gint k = 0; k <= 5; k++) {
    gdouble xv = x0 + (x1 - x0) * k / 5;
    gdouble px = L + (W - L - R) * k / 5.0;
    gchar label[32];

    g_snprintf (label, sizeof (label), "%.0f", xv);
    cairo_set_source_rgb (cr, 0.2, 0.2, 0.2);
    cairo_move_to (cr, px - 12, H - B + 18);
    cairo_show_text (cr, label);
  }
  cairo_move_to (cr, (W - R + L) / 2.0 - 30, H - 12);
  cairo_show_text (cr, "iteration");
  cairo_move_to (cr, L, T - 15);
  cairo_set_font_size (cr, 15);
  cairo_show_text (cr, title ? title : "");
  cairo_set_font_size (cr, 13);
  cairo_rectangle (cr, L, T, W - L - R, H - T - B);
  cairo_stroke (cr);

  for (guint s = 0; s < n_series; s++) {
    const gdouble *c = series_rgb[s % G_N_ELEMENTS (series_rgb)];
    gboolean pen = FALSE;

    smooth (ys[s], n, win, sm);
    cairo_set_source_rgb (cr, c[0], c[1], c[2]);
    cairo_set_line_width (cr, 2);
    for (guint i = 0; i < n; i++) {
      gdouble px = L + (W - L - R) * (x[i] - x0) / (x1 - x0);
      gdouble py = T + (H - T - B) * (hi - sm[i]) / (hi - lo);

      if (!isfinite (sm[i])) {
        pen = FALSE;
        continue;
      }
      if (pen)
        cairo_line_to (cr, px, py);
      else
        cairo_move_to (cr, px, py);
      pen = TRUE;
    }
    cairo_stroke (cr);
    cairo_rectangle (cr, W - R + 15, T + 10 + 22 * s, 18, 4);
    cairo_fill (cr);
    cairo_set_source_rgb (cr, 0.1, 0.1, 0.1);
    cairo_move_to (cr, W - R + 40, T + 16 + 22 * s);
    cairo_show_text (cr, names[s]);
  }
  cairo_destroy (cr);
  st = cairo_surface_write_to_png (surf, path);
  cairo_surface_destroy (surf);
  if (st != CAIRO_STATUS_SUCCESS) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_IO, "%s: cannot write: %s",
        path, cairo_status_to_string (st));
    return FALSE;
  }
  return TRUE;
}
#else
static void
put (NclImage * img, gint x, gint y, const gdouble * c)
{
  guint8 *p;

  if (x < 0 || y < 0 || x >= img->width || y >= img->height)
    return;
  p = img->planes[0] + (gsize) y * img->strides[0] + 3 * x;
  p[0] = (guint8) (255 * c[0]);
  p[1] = (guint8) (255 * c[1]);
  p[2] = (guint8) (255 * c[2]);
}

gboolean
ncl_plot_curves (const gchar * path, const gchar * title, const gdouble * x,
    guint n, guint n_series, const gchar * const *names,
    const gdouble * const *ys, GError ** error)
{
  const gint W = 900, H = 540, M = 40;
  g_autoptr (NclImage) img = ncl_image_new_rgb (W, H);
  g_autofree gdouble *sm = g_new (gdouble, n);
  gdouble x0 = n ? x[0] : 0, x1 = n ? x[n - 1] : 1, lo = G_MAXDOUBLE,
      hi = -G_MAXDOUBLE;
  guint win = MAX (1, n / 50);

  memset (img->planes[0], 255, (gsize) img->strides[0] * H);
  if (x1 <= x0)
    x1 = x0 + 1;
  for (guint s = 0; s < n_series; s++) {
    smooth (ys[s], n, win, sm);
    for (guint i = 0; i < n; i++)
      if (isfinite (sm[i])) {
        lo = MIN (lo, sm[i]);
        hi = MAX (hi, sm[i]);
      }
  }
  if (hi <= lo)
    hi = lo + 1;
  for (guint s = 0; s < n_series; s++) {
    smooth (ys[s], n, win, sm);
    for (guint i = 0; i < n; i++) {
      if (isfinite (sm[i]))
        put (img, M + (gint) ((W - 2 * M) * (x[i] - x0) / (x1 - x0)),
            M + (gint) ((H - 2 * M) * (hi - sm[i]) / (hi - lo)),
            series_rgb[s % G_N_ELEMENTS (series_rgb)]);
    }
  }
  return ncl_image_save_png (img, path, error);
}
#endif

gboolean
ncl_plot_image_grid (const gchar * path, NclImage * const *cells, gint rows,
    gint cols, gint cell, GError ** error)
{
  const gint gap = 4;
  gint W = cols * cell + (cols + 1) * gap, H = rows * cell + (rows + 1) * gap;
  g_autoptr (NclImage) img = ncl_image_new_rgb (W, H);

  memset (img->planes[0], 96, (gsize) img->strides[0] * H);
  for (gint r = 0; r < rows; r++) {
    for (gint c = 0; c < cols; c++) {
      const NclImage *src = cells[r * cols + c];
      gdouble s;
      gint w, h, ox, oy;

      if (src == NULL)
        continue;
      s = MIN ((gdouble) cell / src->width, (gdouble) cell / src->height);
      w = MAX (1, (gint) (src->width * s));
      h = MAX (1, (gint) (src->height * s));
      ox = gap + c * (cell + gap) + (cell - w) / 2;
      oy = gap + r * (cell + gap) + (cell - h) / 2;
      /* nearest-neighbour: the cells are already about this size */
      for (gint y = 0; y < h; y++) {
        gint sy = MIN (src->height - 1, (gint) (y / s));
        guint8 *d = img->planes[0] + (gsize) (oy + y) * img->strides[0] +
            3 * ox;
        const guint8 *srow = src->planes[0] + (gsize) sy * src->strides[0];

        for (gint x = 0; x < w; x++) {
          gint sx = MIN (src->width - 1, (gint) (x / s));

          memcpy (d + 3 * x, srow + 3 * sx, 3);
        }
      }
    }
  }
  return ncl_image_save_png (img, path, error);
}
