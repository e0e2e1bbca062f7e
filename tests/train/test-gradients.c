/* Backward passes: (1) every C reference against central finite
 * differences of the forward reference (loss L = sum (out * R) for a random
 * R, a random subset of coordinates, relative error < 1e-2); (2) every
 * device backward against its C reference on random and odd shapes. */
#include "common.h"

#include <neuralcl/backward.h>

#include <math.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <string.h>

/* ---- finite differences ------------------------------------------------- */

/* Runs the forward reference of a layer on the current host inputs. */
typedef void (*ForwardFn) (gpointer data, gfloat * out);

static gdouble
fd_loss (ForwardFn fwd, gpointer data, gfloat * out, const gfloat * r,
    gsize nout)
{
  gdouble l = 0.0;

  fwd (data, out);
  for (gsize i = 0; i < nout; i++)
    l += (gdouble) out[i] * r[i];
  return l;
}

/* Compares @grad (the analytic dL/d@var) with central differences of step
 * @h on up to @samples coordinates of @var.  With @kinks (ReLU, max), a
 * coordinate whose one-sided differences disagree by more than 1 % straddles
 * a kink (the function is linear between kinks) and is skipped, but at most
 * a quarter of them may be. */
static void
check_fd (const gchar * label, ForwardFn fwd, gpointer data, gsize nout,
    const gfloat * r, gfloat * var, gsize nvar, const gfloat * grad,
    gint samples, gfloat h, gboolean kinks)
{
  g_autofree gfloat *out = g_new (gfloat, nout);
  gdouble rms = 0.0, worst = 0.0;
  gint checked = 0, skipped = 0, bad = 0, count;
  gdouble l0 = fd_loss (fwd, data, out, r, nout);

  for (gsize i = 0; i < nvar; i++)
    rms += (gdouble) grad[i] * grad[i];
  rms = sqrt (rms / MAX (nvar, 1));

  count = nvar <= (gsize) samples ? (gint) nvar : samples;
  for (gint s = 0; s < count; s++) {
    gsize i = nvar <= (gsize) samples ? (gsize) s
        : (gsize) g_random_int_range (0, (gint32) nvar);
    gfloat keep = var[i];
    gdouble lp, lm, fd, err;

    var[i] = keep + h;
    lp = fd_loss (fwd, data, out, r, nout);
    var[i] = keep - h;
    lm = fd_loss (fwd, data, out, r, nout);
    var[i] = keep;
    /* the step actually taken in float */
    fd = (lp - lm) / ((gdouble) (keep + h) - (gdouble) (keep - h));
    if (kinks) {
      gdouble d1 = lp - l0, d2 = l0 - lm;

      if (fabs (d1 - d2) > 1e-2 * (fabs (d1) + fabs (d2)) + 1e-9) {
        skipped++;
        continue;
      }
    }
    /* relative to the larger value, but no less than 5 % of the gradient's
     * rms: float forward passes leave ~1e-5 of noise in a difference */
    err = fabs (fd - grad[i]) / MAX (MAX (fabs (fd), fabs (grad[i])),
        0.05 * rms + 1e-12);
    worst = MAX (worst, err);
    checked++;
    if (err > 1e-2) {
      if (bad < 5)
        g_printerr ("%s: [%" G_GSIZE_FORMAT "] analytic %.7g, finite "
            "difference %.7g (rel err %.3g)\n", label, i, grad[i], fd, err);
      bad++;
    }
  }
  if (bad > 0 || skipped * 4 > count || checked == 0 || rms == 0.0) {
    g_printerr ("FAIL fd %s: %d of %d coordinates off, %d skipped at kinks, "
        "gradient rms %.3g\n", label, bad, checked, skipped, rms);
    ncl_test_failures++;
  } else {
    g_print ("ok fd %s (%d coordinates, %d at kinks, max rel err %.2g)\n",
        label, checked, skipped, worst);
  }
}

static gfloat *
random_array (gsize n, gfloat lo, gfloat hi)
{
  gfloat *a = g_new (gfloat, n);

  for (gsize i = 0; i < n; i++)
    a[i] = (gfloat) g_random_double_range (lo, hi);
  return a;
}

/* Random values with |x| in [0.1, 1) (away from ReLU's kink). */
static gfloat *
random_signed (gsize n, gfloat scale)
{
  gfloat *a = g_new (gfloat, n);

  for (gsize i = 0; i < n; i++)
    a[i] = (gfloat) (scale * g_random_double_range (0.1, 1.0)
        * (g_random_boolean ()? 1.0 : -1.0));
  return a;
}

/* ---- conv2d ------------------------------------------------------------- */

typedef struct
{
  NclConvParams p;
  gint n, h, w;
  const gfloat *x;
} ConvCase;

static void
conv_fwd (gpointer data, gfloat * out)
{
  ConvCase *c = data;

  ncl_conv2d_forward_ref (&c->p, c->x, c->n, c->h, c->w, out);
}

static void
fd_conv (gint n, gint cin, gint cout, gint h, gint w, gint kh, gint kw,
    gint sh, gint sw, gint groups, gint dil, NclPadding pad,
    NclActivation act)
{
  ConvCase c = { 0 };
  gint oh, ow;
  gsize nx = (gsize) n * cin * h * w, nw, nout;
  g_autofree gfloat *x = random_array (nx, -1.0f, 1.0f);
  g_autofree gfloat *wt = NULL;
  g_autofree gfloat *bias = random_array (cout, -0.5f, 0.5f);
  g_autofree gfloat *r = NULL;
  g_autofree gfloat *out = NULL;
  g_autofree gfloat *dz = NULL;
  g_autofree gfloat *dx = g_new (gfloat, nx);
  g_autofree gfloat *dw = NULL;
  g_autofree gfloat *db = g_new0 (gfloat, cout);
  g_autofree gchar *label = NULL;

  c.p.cin = cin;
  c.p.cout = cout;
  c.p.kh = kh;
  c.p.kw = kw;
  c.p.stride_h = sh;
  c.p.stride_w = sw;
  c.p.groups = groups;
  c.p.dilation = dil;
  c.p.pad = pad;
  c.p.act = act;
  c.p.alpha = 0.1f;
  nw = (gsize) cout * (cin / groups) * kh * kw;
  wt = random_array (nw, -0.5f, 0.5f);
  dw = g_new0 (gfloat, nw);
  c.p.weight = wt;
  c.p.bias = bias;
  c.n = n;
  c.h = h;
  c.w = w;
  c.x = x;
  ncl_conv2d_out_size (&c.p, h, w, &oh, &ow);
  nout = (gsize) n * cout * oh * ow;
  r = random_array (nout, -1.0f, 1.0f);
  out = g_new (gfloat, nout);
  dz = g_new (gfloat, nout);

  /* the documented composition: activation backward, then conv backward */
  conv_fwd (&c, out);
  ncl_activation_backward_ref (out, r, nout, act, c.p.alpha, dz);
  /* parameter gradients accumulate: start from a known offset */
  for (gsize i = 0; i < nw; i++)
    dw[i] = 1.0f;
  ncl_conv2d_backward_ref (&c.p, x, n, h, w, dz, dx, dw, db);
  for (gsize i = 0; i < nw; i++)
    dw[i] -= 1.0f;

  label = g_strdup_printf ("conv n%d %d->%d %dx%d k%dx%d s%dx%d g%d d%d "
      "pad %d/%d/%d/%d mode %d act %s", n, cin, cout, h, w, kh, kw, sh, sw,
      groups, dil, pad.top, pad.bottom, pad.left, pad.right, pad.mode,
      ncl_activation_to_string (act));
  {
    g_autofree gchar *lx = g_strconcat (label, " dx", NULL);
    g_autofree gchar *lw = g_strconcat (label, " dw", NULL);
    g_autofree gchar *lb = g_strconcat (label, " db", NULL);

    check_fd (lx, conv_fwd, &c, nout, r, x, nx, dx, 60, 1e-2f, FALSE);
    check_fd (lw, conv_fwd, &c, nout, r, wt, nw, dw, 60, 1e-2f, FALSE);
    check_fd (lb, conv_fwd, &c, nout, r, bias, cout, db, 60, 1e-2f, FALSE);
  }
}

/* ---- instance norm ------------------------------------------------------ */

typedef struct
{
  gint n, c, hw;
  const gfloat *x, *gamma, *beta, *res;
  NclActivation act;
} NormCase;

static void
norm_fwd (gpointer data, gfloat * out)
{
  NormCase *c = data;

  ncl_instnorm_forward_ref (c->x, c->n, c->c, c->hw, c->gamma, c->beta, 1e-5f,
      c->res, c->act, 0.1f, out);
}

static void
fd_instnorm (gint n, gint ch, gint hw, gboolean affine, gboolean residual,
    NclActivation act)
{
  NormCase c = { n, ch, hw, NULL, NULL, NULL, NULL, act };
  gsize nx = (gsize) n * ch * hw;
  g_autofree gfloat *x = random_array (nx, -2.0f, 3.0f);
  g_autofree gfloat *res = random_array (nx, -1.0f, 1.0f);
  g_autofree gfloat *gamma = random_array (ch, 0.5f, 1.5f);
  g_autofree gfloat *beta = random_array (ch, -0.5f, 0.5f);
  g_autofree gfloat *r = random_array (nx, -1.0f, 1.0f);
  g_autofree gfloat *out = g_new (gfloat, nx);
  g_autofree gfloat *dx = g_new (gfloat, nx);
  g_autofree gfloat *dres = g_new (gfloat, nx);
  g_autofree gfloat *dg = g_new0 (gfloat, ch);
  g_autofree gfloat *dbeta = g_new0 (gfloat, ch);
  g_autofree gchar *label = NULL;

  c.x = x;
  c.gamma = affine ? gamma : NULL;
  c.beta = affine ? beta : NULL;
  c.res = residual ? res : NULL;
  if (residual && act == NCL_ACT_RELU) {
    /* keep every pre-activation at least 0.3 away from ReLU's kink: the
     * residual cancels the normalised value and adds a random offset */
    g_autofree gfloat *z = random_signed (nx, 1.0f);

    c.act = NCL_ACT_NONE;
    c.res = NULL;
    norm_fwd (&c, out);
    for (gsize i = 0; i < nx; i++)
      res[i] = 0.3f * z[i] / fabsf (z[i]) + 0.7f * z[i] - out[i];
    c.act = act;
    c.res = res;
  }
  norm_fwd (&c, out);
  ncl_instnorm_backward_ref (x, out, r, n, ch, hw, c.gamma, 1e-5f, act, 0.1f,
      dx, dres, dg, dbeta);

  label = g_strdup_printf ("instnorm n%d c%d hw%d affine %d res %d act %s",
      n, ch, hw, affine, residual, ncl_activation_to_string (act));
  {
    g_autofree gchar *lx = g_strconcat (label, " dx", NULL);
    g_autofree gchar *lr = g_strconcat (label, " dresidual", NULL);
    g_autofree gchar *lg = g_strconcat (label, " dgamma", NULL);
    g_autofree gchar *lb = g_strconcat (label, " dbeta", NULL);

    check_fd (lx, norm_fwd, &c, nx, r, x, nx, dx, 60, 1e-2f, FALSE);
    if (residual)
      check_fd (lr, norm_fwd, &c, nx, r, res, nx, dres, 60, 1e-2f, FALSE);
    if (affine) {
      check_fd (lg, norm_fwd, &c, nx, r, gamma, ch, dg, 60, 1e-2f, FALSE);
      check_fd (lb, norm_fwd, &c, nx, r, beta, ch, dbeta, 60, 1e-2f, FALSE);
    }
  }
}

/* ---- element-wise ------------------------------------------------------- */

typedef struct
{
  gsize n;
  const gfloat *a, *b;
  NclActivation act;
  gfloat alpha;
} EltCase;

static void
act_fwd (gpointer data, gfloat * out)
{
  EltCase *c = data;

  ncl_activation_forward_ref (c->a, c->n, c->act, c->alpha, out);
}

static void
add_fwd (gpointer data, gfloat * out)
{
  EltCase *c = data;

  ncl_add_forward_ref (c->a, c->b, c->n, c->act, c->alpha, out);
}

static void
fd_elementwise (NclActivation act)
{
  gsize n = 203;
  g_autofree gfloat *a = random_signed (n, 4.0f);
  g_autofree gfloat *b = random_signed (n, 0.02f);
  g_autofree gfloat *r = random_array (n, -1.0f, 1.0f);
  g_autofree gfloat *out = g_new (gfloat, n);
  g_autofree gfloat *da = g_new (gfloat, n);
  g_autofree gfloat *db = g_new (gfloat, n);
  g_autofree gchar *la = NULL;
  g_autofree gchar *lb = NULL;
  g_autofree gchar *lc = NULL;
  EltCase c = { n, a, b, act, 0.1f };

  /* ReLU6 saturates at 6: keep some values above it, none near it */
  if (act == NCL_ACT_RELU6)
    for (gsize i = 0; i < n; i += 3)
      a[i] = a[i] > 0 ? a[i] + 6.5f : a[i];
  act_fwd (&c, out);
  ncl_activation_backward_ref (out, r, n, act, c.alpha, da);
  la = g_strdup_printf ("activation %s dx", ncl_activation_to_string (act));
  check_fd (la, act_fwd, &c, n, r, a, n, da, 60, 1e-2f, FALSE);

  add_fwd (&c, out);
  ncl_add_backward_ref (out, r, n, act, c.alpha, da, db);
  lb = g_strdup_printf ("add %s da", ncl_activation_to_string (act));
  lc = g_strdup_printf ("add %s db", ncl_activation_to_string (act));
  check_fd (lb, add_fwd, &c, n, r, a, n, da, 60, 1e-2f, FALSE);
  check_fd (lc, add_fwd, &c, n, r, b, n, db, 60, 1e-2f, FALSE);
}

typedef struct
{
  gint n, ca, cb, hw, before, after;
  const gfloat *a, *b;
} ChanCase;

static void
concat_fwd (gpointer data, gfloat * out)
{
  ChanCase *c = data;

  ncl_concat_forward_ref (c->a, c->ca, c->b, c->cb, c->n, c->hw, out);
}

static void
padch_fwd (gpointer data, gfloat * out)
{
  ChanCase *c = data;

  ncl_pad_channels_forward_ref (c->a, c->n, c->ca, c->hw, c->before,
      c->after, out);
}

static void
fd_channels (void)
{
  ChanCase c = { 2, 3, 5, 7, 2, 1, NULL, NULL };
  gsize na = (gsize) c.n * c.ca * c.hw, nb = (gsize) c.n * c.cb * c.hw;
  gsize nout = na + nb, npad = (gsize) c.n * (c.ca + 3) * c.hw;
  g_autofree gfloat *a = random_array (na, -1.0f, 1.0f);
  g_autofree gfloat *b = random_array (nb, -1.0f, 1.0f);
  g_autofree gfloat *r = random_array (MAX (nout, npad), -1.0f, 1.0f);
  g_autofree gfloat *da = g_new (gfloat, na);
  g_autofree gfloat *db = g_new (gfloat, nb);

  c.a = a;
  c.b = b;
  ncl_concat_backward_ref (r, c.n, c.ca, c.cb, c.hw, da, db);
  check_fd ("concat da", concat_fwd, &c, nout, r, a, na, da, 60, 1e-2f,
      FALSE);
  check_fd ("concat db", concat_fwd, &c, nout, r, b, nb, db, 60, 1e-2f,
      FALSE);
  ncl_pad_channels_backward_ref (r, c.n, c.ca, c.hw, c.before, c.after, da);
  check_fd ("pad channels dx", padch_fwd, &c, npad, r, a, na, da, 60, 1e-2f,
      FALSE);
}

typedef struct
{
  gint n;
  gsize len;
  gfloat eps;
  const gfloat *x;
} L2Case;

static void
l2_fwd (gpointer data, gfloat * out)
{
  L2Case *c = data;

  ncl_l2norm_forward_ref (c->x, c->n, c->len, c->eps, out);
}

static void
fd_l2norm (gfloat scale)
{
  L2Case c = { 3, 37, 1e-3f, NULL };
  gsize nx = c.n * c.len;
  g_autofree gfloat *x = random_array (nx, -scale, scale);
  g_autofree gfloat *r = random_array (nx, -1.0f, 1.0f);
  g_autofree gfloat *dx = g_new (gfloat, nx);
  g_autofree gchar *label = g_strdup_printf ("l2norm x%g dx", scale);

  c.x = x;
  ncl_l2norm_backward_ref (x, r, c.n, c.len, c.eps, dx);
  check_fd (label, l2_fwd, &c, nx, r, x, nx, dx, 60, 1e-2f * scale, FALSE);
}

/* ---- pad / upsample / crop ---------------------------------------------- */

typedef struct
{
  gint n, c, h, w, scale;
  NclPadding pad;
  const gfloat *x;
} PadCase;

static void
pad_fwd (gpointer data, gfloat * out)
{
  PadCase *c = data;

  ncl_pad_forward_ref (c->x, c->n, c->c, c->h, c->w, c->scale, &c->pad, out);
}

static void
fd_pad (gint n, gint ch, gint h, gint w, gint scale, gint top, gint bottom,
    gint left, gint right, NclPadMode mode)
{
  PadCase c = { n, ch, h, w, scale, {top, bottom, left, right, mode}, NULL };
  gsize nx = (gsize) n * ch * h * w;
  gsize nout = (gsize) n * ch * (h * scale + top + bottom)
      * (w * scale + left + right);
  g_autofree gfloat *x = random_array (nx, -1.0f, 1.0f);
  g_autofree gfloat *r = random_array (nout, -1.0f, 1.0f);
  g_autofree gfloat *dx = g_new (gfloat, nx);
  g_autofree gchar *label = g_strdup_printf ("pad (%d,%d,%d,%d) x%d "
      "%d/%d/%d/%d mode %d dx", n, ch, h, w, scale, top, bottom, left, right,
      mode);

  c.x = x;
  ncl_pad_backward_ref (r, n, ch, h, w, scale, &c.pad, dx);
  check_fd (label, pad_fwd, &c, nout, r, x, nx, dx, 80, 1e-2f, FALSE);
}

/* ---- pooling ------------------------------------------------------------ */

typedef struct
{
  NclPoolParams p;
  gint n, c, h, w;
  const gfloat *x;
} PoolCase;

static void
pool_fwd (gpointer data, gfloat * out)
{
  PoolCase *c = data;

  ncl_pool_forward_ref (&c->p, c->x, c->n, c->c, c->h, c->w, out);
}

static void
gap_fwd (gpointer data, gfloat * out)
{
  PoolCase *c = data;

  ncl_global_avgpool_forward_ref (c->x, c->n, c->c, c->h * c->w, out);
}

static void
fd_pool (NclPoolType type, gint n, gint ch, gint h, gint w, gint k, gint s,
    gint pad)
{
  PoolCase c = { {type, k, k, s, s, {pad, pad, pad, pad, NCL_PAD_ZERO}},
  n, ch, h, w, NULL
  };
  gint oh, ow;
  gsize nx = (gsize) n * ch * h * w, nout;
  g_autofree gfloat *x = random_array (nx, -1.0f, 1.0f);
  g_autofree gfloat *r = NULL;
  g_autofree gfloat *dx = g_new (gfloat, nx);
  g_autofree gchar *label = g_strdup_printf ("%s pool (%d,%d,%d,%d) k%d s%d "
      "pad %d dx", type == NCL_POOL_MAX ? "max" : "avg", n, ch, h, w, k, s,
      pad);

  ncl_pool_out_size (&c.p, h, w, &oh, &ow);
  nout = (gsize) n * ch * oh * ow;
  r = random_array (nout, -1.0f, 1.0f);
  c.x = x;
  ncl_pool_backward_ref (&c.p, x, n, ch, h, w, r, dx);
  check_fd (label, pool_fwd, &c, nout, r, x, nx, dx, 80, 1e-3f,
      type == NCL_POOL_MAX);

  ncl_global_avgpool_backward_ref (r, n, ch, h * w, dx);
  check_fd ("global avgpool dx", gap_fwd, &c, (gsize) n * ch, r, x, nx, dx,
      40, 1e-2f, FALSE);
}

/* ---- fully connected ---------------------------------------------------- */

typedef struct
{
  gint n, in_f, out_f;
  const gfloat *x, *w, *b;
} FcCase;

static void
fc_fwd (gpointer data, gfloat * out)
{
  FcCase *c = data;

  ncl_fc_forward_ref (c->x, c->n, c->in_f, c->out_f, c->w, c->b,
      NCL_ACT_NONE, 0.0f, out);
}

static void
fd_fc (gint n, gint in_f, gint out_f)
{
  FcCase c = { n, in_f, out_f, NULL, NULL, NULL };
  g_autofree gfloat *x = random_array ((gsize) n * in_f, -1.0f, 1.0f);
  g_autofree gfloat *w = random_array ((gsize) out_f * in_f, -1.0f, 1.0f);
  g_autofree gfloat *b = random_array (out_f, -1.0f, 1.0f);
  g_autofree gfloat *r = random_array ((gsize) n * out_f, -1.0f, 1.0f);
  g_autofree gfloat *dx = g_new (gfloat, (gsize) n * in_f);
  g_autofree gfloat *dw = g_new0 (gfloat, (gsize) out_f * in_f);
  g_autofree gfloat *db = g_new0 (gfloat, out_f);

  c.x = x;
  c.w = w;
  c.b = b;
  ncl_fc_backward_ref (x, n, in_f, out_f, w, r, dx, dw, db);
  check_fd ("fc dx", fc_fwd, &c, (gsize) n * out_f, r, x, (gsize) n * in_f,
      dx, 60, 1e-2f, FALSE);
  check_fd ("fc dw", fc_fwd, &c, (gsize) n * out_f, r, w,
      (gsize) out_f * in_f, dw, 60, 1e-2f, FALSE);
  check_fd ("fc db", fc_fwd, &c, (gsize) n * out_f, r, b, out_f, db, 60,
      1e-2f, FALSE);
}

static void
finite_difference_tests (void)
{
  NclPadding none = { 0, 0, 0, 0, NCL_PAD_ZERO };
  NclPadding z1 = { 1, 1, 1, 1, NCL_PAD_ZERO };
  NclPadding r1 = { 1, 1, 1, 1, NCL_PAD_REFLECT };
  NclPadding e1 = { 1, 2, 0, 1, NCL_PAD_EDGE };
  NclPadding r4 = { 4, 4, 4, 4, NCL_PAD_REFLECT };
  NclPadding z2 = { 2, 1, 2, 0, NCL_PAD_ZERO };

  fd_conv (2, 3, 4, 7, 9, 3, 3, 1, 1, 1, 1, z1, NCL_ACT_NONE);
  fd_conv (1, 4, 5, 9, 7, 3, 3, 2, 2, 1, 1, r1, NCL_ACT_NONE);
  fd_conv (2, 6, 4, 6, 5, 3, 3, 1, 1, 2, 1, e1, NCL_ACT_NONE);
  fd_conv (1, 4, 4, 7, 7, 3, 3, 2, 2, 4, 1, z1, NCL_ACT_NONE);
  fd_conv (2, 3, 6, 5, 6, 3, 3, 1, 1, 3, 1, z1, NCL_ACT_NONE);
  fd_conv (1, 5, 3, 4, 7, 1, 1, 1, 1, 1, 1, none, NCL_ACT_NONE);
  fd_conv (1, 3, 2, 11, 10, 9, 9, 1, 1, 1, 1, r4, NCL_ACT_NONE);
  fd_conv (2, 2, 3, 9, 9, 3, 3, 2, 2, 1, 1, none, NCL_ACT_NONE);
  fd_conv (1, 2, 3, 8, 9, 3, 3, 1, 1, 1, 2, z2, NCL_ACT_NONE);
  fd_conv (1, 3, 4, 9, 8, 3, 2, 2, 1, 1, 1, z2, NCL_ACT_NONE);
  fd_conv (2, 3, 5, 7, 6, 3, 3, 1, 1, 1, 1, r1, NCL_ACT_SIGMOID);
  fd_conv (1, 4, 2, 8, 7, 3, 3, 2, 2, 2, 1, z1, NCL_ACT_TANH);

  fd_instnorm (2, 3, 17, TRUE, FALSE, NCL_ACT_NONE);
  fd_instnorm (1, 4, 25, TRUE, TRUE, NCL_ACT_RELU);
  fd_instnorm (2, 2, 9, FALSE, TRUE, NCL_ACT_NONE);
  fd_instnorm (1, 3, 35, TRUE, FALSE, NCL_ACT_TANH);
  fd_instnorm (1, 2, 16, TRUE, TRUE, NCL_ACT_SIGMOID);

  for (NclActivation act = NCL_ACT_NONE; act <= NCL_ACT_RELU6; act++)
    fd_elementwise (act);
  fd_channels ();
  fd_l2norm (1.0f);
  fd_l2norm (1e-5f);

  fd_pad (1, 2, 5, 6, 1, 1, 1, 1, 1, NCL_PAD_REFLECT);
  fd_pad (2, 1, 4, 3, 1, 4, 2, 5, 3, NCL_PAD_REFLECT);
  fd_pad (1, 2, 5, 4, 1, 2, 1, 0, 3, NCL_PAD_EDGE);
  fd_pad (1, 2, 3, 5, 2, 0, 0, 0, 0, NCL_PAD_ZERO);
  fd_pad (1, 2, 3, 5, 2, 1, 1, 1, 1, NCL_PAD_REFLECT);
  fd_pad (1, 2, 7, 6, 1, -1, -2, 2, -1, NCL_PAD_ZERO);

  fd_pool (NCL_POOL_MAX, 2, 2, 6, 6, 2, 2, 0);
  fd_pool (NCL_POOL_MAX, 1, 2, 7, 5, 2, 2, 0);
  fd_pool (NCL_POOL_MAX, 1, 3, 7, 9, 3, 2, 1);
  fd_pool (NCL_POOL_AVG, 1, 2, 7, 5, 3, 2, 1);
  fd_pool (NCL_POOL_AVG, 2, 1, 5, 5, 2, 1, 0);

  fd_fc (3, 13, 7);
}

/* ---- device vs reference ------------------------------------------------ */

static NclContext *ctx;

/* Compares with atol = @tol * max |want| and rtol = @tol. */
static void
compare (const gchar * label, const gfloat * got, const gfloat * want,
    gsize n, gfloat tol)
{
  gfloat m = 0.0f;

  for (gsize i = 0; i < n; i++)
    m = MAX (m, fabsf (want[i]));
  ncl_test_compare (label, got, want, n, tol * m + 1e-30f, tol);
}

static cl_mem
device_buffer (const gfloat * data, gsize n)
{
  g_autoptr (GError) error = NULL;
  cl_mem buf = ncl_buffer_new_rw (ctx, data, n, &error);

  if (buf == NULL) {
    g_printerr ("buffer: %s\n", error->message);
    exit (1);
  }
  return buf;
}

static gfloat *
download_buffer (cl_mem buf, gsize n)
{
  gfloat *data = g_new (gfloat, n);
  cl_int st = clEnqueueReadBuffer (ncl_context_get_queue (ctx), buf, CL_TRUE,
      0, n * sizeof (gfloat), data, 0, NULL, NULL);

  if (st != CL_SUCCESS) {
    g_printerr ("read buffer: %d\n", st);
    exit (1);
  }
  return data;
}

static void
dev_conv (gint n, gint cin, gint cout, gint h, gint w, gint kh, gint kw,
    gint sh, gint sw, gint groups, gint dil, NclPadding pad)
{
  NclConvParams p = { 0 };
  gint oh, ow;
  gsize nx = (gsize) n * cin * h * w, nw, nout;
  g_autofree gfloat *x = random_array (nx, -1.0f, 1.0f);
  g_autofree gfloat *wt = NULL;
  g_autofree gfloat *dz = NULL;
  g_autofree gfloat *dx = g_new (gfloat, nx);
  g_autofree gfloat *dw = NULL;
  g_autofree gfloat *db = random_array (cout, -1.0f, 1.0f);
  g_autofree gfloat *dw0 = NULL;
  g_autofree gfloat *db0 = g_memdup2 (db, cout * sizeof (gfloat));
  g_autoptr (NclTensor) tx = NULL;
  g_autoptr (NclTensor) tdz = NULL;
  g_autoptr (NclTensor) tdx = NULL;
  g_autoptr (GError) error = NULL;
  const gchar *variants[] = { NULL, "direct", "generic" };
  gboolean transposed;

  p.cin = cin;
  p.cout = cout;
  p.kh = kh;
  p.kw = kw;
  p.stride_h = sh;
  p.stride_w = sw;
  p.groups = groups;
  p.dilation = dil;
  p.pad = pad;
  nw = (gsize) cout * (cin / groups) * kh * kw;
  wt = random_array (nw, -0.5f, 0.5f);
  dw = random_array (nw, -1.0f, 1.0f);
  dw0 = g_memdup2 (dw, nw * sizeof (gfloat));
  p.weight = wt;
  ncl_conv2d_out_size (&p, h, w, &oh, &ow);
  nout = (gsize) n * cout * oh * ow;
  dz = random_array (nout, -1.0f, 1.0f);
  ncl_conv2d_backward_ref (&p, x, n, h, w, dz, dx, dw, db);

  tx = ncl_test_tensor (ctx, x, n, cin, h, w);
  tdz = ncl_test_tensor (ctx, dz, n, cout, oh, ow);
  g_unsetenv ("NEURALCL_CONV_BWD_VARIANT");
  transposed = g_str_equal (ncl_conv2d_backward_variant (ctx, &p, FALSE),
      "transposed");
  for (guint v = 0; v < G_N_ELEMENTS (variants); v++) {
    cl_mem bw, bdw, bdb;
    g_autofree gfloat *got_dx = NULL;
    g_autofree gfloat *got_dw = NULL;
    g_autofree gfloat *got_db = NULL;
    g_autofree gchar *label = NULL;

    /* "direct" differs from the default only where that is "transposed" */
    if (v == 1 && !transposed)
      continue;
    bw = device_buffer (wt, nw);
    bdw = device_buffer (dw0, nw);
    bdb = device_buffer (db0, cout);
    if (variants[v] != NULL)
      g_setenv ("NEURALCL_CONV_BWD_VARIANT", variants[v], TRUE);
    else
      g_unsetenv ("NEURALCL_CONV_BWD_VARIANT");
    label = g_strdup_printf ("conv n%d %d->%d %dx%d k%dx%d s%dx%d g%d d%d "
        "pad %d/%d/%d/%d mode %d [%s/%s]", n, cin, cout, h, w, kh, kw, sh,
        sw, groups, dil, pad.top, pad.bottom, pad.left, pad.right, pad.mode,
        ncl_conv2d_backward_variant (ctx, &p, FALSE),
        ncl_conv2d_backward_variant (ctx, &p, TRUE));
    /* din is overwritten: start from garbage of the right shape */
    tdx = ncl_test_tensor (ctx, x, n, cin, h, w);
    NCL_CHECK (ncl_conv2d_backward_data (ctx, &p, bw, tdz, tdx, &error));
    NCL_CHECK_NO_ERROR (error);
    NCL_CHECK (ncl_conv2d_backward_weights (ctx, &p, tx, tdz, bdw, bdb,
            &error));
    NCL_CHECK_NO_ERROR (error);
    got_dx = ncl_test_download (tdx);
    got_dw = download_buffer (bdw, nw);
    got_db = download_buffer (bdb, cout);
    {
      g_autofree gchar *lx = g_strconcat (label, " dx", NULL);
      g_autofree gchar *lw = g_strconcat (label, " dw", NULL);
      g_autofree gchar *lb = g_strconcat (label, " db", NULL);

      compare (lx, got_dx, dx, nx, 1e-5f);
      compare (lw, got_dw, dw, nw, 1e-5f);
      compare (lb, got_db, db, cout, 1e-5f);
    }
    g_clear_pointer (&tdx, ncl_tensor_free);
    clReleaseMemObject (bdb);
    clReleaseMemObject (bdw);
    clReleaseMemObject (bw);
  }
  g_unsetenv ("NEURALCL_CONV_BWD_VARIANT");
}

static void
dev_instnorm (gint n, gint c, gint h, gint w, gboolean affine,
    gboolean residual, NclActivation act, gboolean in_place)
{
  gsize nx = (gsize) n * c * h * w;
  gint hw = h * w;
  g_autofree gfloat *x = random_array (nx, -2.0f, 5.0f);
  g_autofree gfloat *res = random_array (nx, -1.0f, 1.0f);
  g_autofree gfloat *gamma = random_array (c, 0.5f, 1.5f);
  g_autofree gfloat *beta = random_array (c, -0.5f, 0.5f);
  g_autofree gfloat *dy = random_array (nx, -1.0f, 1.0f);
  g_autofree gfloat *out = g_new (gfloat, nx);
  g_autofree gfloat *dx = g_new (gfloat, nx);
  g_autofree gfloat *dres = g_new (gfloat, nx);
  g_autofree gfloat *dg = random_array (c, -1.0f, 1.0f);
  g_autofree gfloat *dbt = random_array (c, -1.0f, 1.0f);
  g_autofree gfloat *got = NULL;
  g_autofree gchar *label = NULL;
  g_autoptr (NclTensor) tx = NULL;
  g_autoptr (NclTensor) tout = NULL;
  g_autoptr (NclTensor) tdy = NULL;
  g_autoptr (NclTensor) tdx = NULL;
  g_autoptr (NclTensor) tdres = NULL;
  g_autoptr (GError) error = NULL;
  cl_mem bg = device_buffer (gamma, c);
  cl_mem bdg = device_buffer (dg, c);
  cl_mem bdb = device_buffer (dbt, c);

  ncl_instnorm_forward_ref (x, n, c, hw, affine ? gamma : NULL,
      affine ? beta : NULL, 1e-5f, residual ? res : NULL, act, 0.1f, out);
  ncl_instnorm_backward_ref (x, out, dy, n, c, hw, affine ? gamma : NULL,
      1e-5f, act, 0.1f, dx, residual ? dres : NULL, affine ? dg : NULL,
      affine ? dbt : NULL);

  tx = ncl_test_tensor (ctx, x, n, c, h, w);
  tout = ncl_test_tensor (ctx, out, n, c, h, w);
  tdy = ncl_test_tensor (ctx, dy, n, c, h, w);
  tdx = ncl_test_tensor (ctx, NULL, 1, 1, 1, 1);
  tdres = ncl_test_tensor (ctx, NULL, 1, 1, 1, 1);
  NCL_CHECK (ncl_instnorm_backward (ctx, tx, act == NCL_ACT_NONE ? NULL
          : tout, tdy, affine ? bg : NULL, 1e-5f, act, 0.1f,
          in_place ? tdy : tdx, residual ? tdres : NULL,
          affine ? bdg : NULL, affine ? bdb : NULL, &error));
  NCL_CHECK_NO_ERROR (error);
  label = g_strdup_printf ("instnorm (%d,%d,%d,%d) affine %d res %d act %s%s",
      n, c, h, w, affine, residual, ncl_activation_to_string (act),
      in_place ? " in place" : "");
  {
    g_autofree gchar *lx = g_strconcat (label, " dx", NULL);
    g_autofree gchar *lr = g_strconcat (label, " dresidual", NULL);
    g_autofree gchar *lg = g_strconcat (label, " dgamma", NULL);
    g_autofree gchar *lb = g_strconcat (label, " dbeta", NULL);

    got = ncl_test_download (in_place ? tdy : tdx);
    compare (lx, got, dx, nx, 1e-4f);
    g_free (got);
    if (residual) {
      got = ncl_test_download (tdres);
      compare (lr, got, dres, nx, 1e-6f);
      g_free (got);
    }
    got = download_buffer (bdg, c);
    compare (lg, got, dg, c, 1e-4f);
    g_free (got);
    got = download_buffer (bdb, c);
    compare (lb, got, dbt, c, 1e-4f);
  }
  clReleaseMemObject (bdb);
  clReleaseMemObject (bdg);
  clReleaseMemObject (bg);
}

static void
dev_elementwise (gsize n, NclActivation act)
{
  g_autofree gfloat *x = random_array (n, -8.0f, 8.0f);
  g_autofree gfloat *out = g_new (gfloat, n);
  g_autofree gfloat *dy = random_array (n, -1.0f, 1.0f);
  g_autofree gfloat *want = g_new (gfloat, n);
  g_autofree gfloat *got = NULL;
  g_autofree gchar *label = NULL;
  g_autoptr (NclTensor) tout = NULL;
  g_autoptr (NclTensor) tdy = NULL;
  g_autoptr (NclTensor) ta = NULL;
  g_autoptr (NclTensor) tb = NULL;
  g_autoptr (GError) error = NULL;

  ncl_activation_forward_ref (x, n, act, 0.1f, out);
  ncl_activation_backward_ref (out, dy, n, act, 0.1f, want);
  tout = ncl_test_tensor (ctx, out, 1, 1, 1, n);
  tdy = ncl_test_tensor (ctx, dy, 1, 1, 1, n);
  ta = ncl_test_tensor (ctx, NULL, 1, 1, 1, 1);
  tb = ncl_test_tensor (ctx, NULL, 1, 1, 1, 1);

  label = g_strdup_printf ("activation %s backward n=%" G_GSIZE_FORMAT,
      ncl_activation_to_string (act), n);
  NCL_CHECK (ncl_activation_backward (ctx, tout, tdy, act, 0.1f, ta,
          &error));
  NCL_CHECK_NO_ERROR (error);
  got = ncl_test_download (ta);
  compare (label, got, want, n, 1e-6f);
  g_free (got);

  NCL_CHECK (ncl_add_backward (ctx, tout, tdy, act, 0.1f, ta, tb, &error));
  NCL_CHECK_NO_ERROR (error);
  got = ncl_test_download (tb);
  compare ("  add backward db", got, want, n, 1e-6f);
  g_free (got);

  /* in place */
  NCL_CHECK (ncl_activation_backward (ctx, tout, tdy, act, 0.1f, tdy,
          &error));
  NCL_CHECK_NO_ERROR (error);
  got = ncl_test_download (tdy);
  compare ("  in place", got, want, n, 1e-6f);
  g_free (got);

  /* grad add: dy (now want) += out */
  NCL_CHECK (ncl_grad_add (ctx, tout, tdy, &error));
  NCL_CHECK_NO_ERROR (error);
  ncl_grad_add_ref (out, n, want);
  got = ncl_test_download (tdy);
  compare ("  grad add", got, want, n, 1e-6f);
}

static void
dev_channels (gint n, gint ca, gint cb, gint hw)
{
  gsize na = (gsize) n * ca * hw, nb = (gsize) n * cb * hw;
  g_autofree gfloat *dy = random_array (na + nb, -1.0f, 1.0f);
  g_autofree gfloat *da = g_new (gfloat, na);
  g_autofree gfloat *db = g_new (gfloat, nb);
  g_autofree gfloat *got = NULL;
  g_autoptr (NclTensor) tdy = ncl_test_tensor (ctx, dy, n, ca + cb, 1, hw);
  g_autoptr (NclTensor) ta = ncl_test_tensor (ctx, NULL, 1, 1, 1, 1);
  g_autoptr (NclTensor) tb = ncl_test_tensor (ctx, NULL, 1, 1, 1, 1);
  g_autoptr (GError) error = NULL;

  ncl_concat_backward_ref (dy, n, ca, cb, hw, da, db);
  NCL_CHECK (ncl_concat_backward (ctx, tdy, ca, ta, tb, &error));
  NCL_CHECK_NO_ERROR (error);
  NCL_CHECK (ta->c == ca && tb->c == cb && ta->w == hw && tb->n == n);
  got = ncl_test_download (ta);
  compare ("concat backward da", got, da, na, 0.0f);
  g_free (got);
  got = ncl_test_download (tb);
  compare ("concat backward db", got, db, nb, 0.0f);
  g_free (got);

  ncl_pad_channels_backward_ref (dy, n, cb, hw, ca / 2, ca - ca / 2, db);
  NCL_CHECK (ncl_pad_channels_backward (ctx, tdy, ca / 2, ca - ca / 2, tb,
          &error));
  NCL_CHECK_NO_ERROR (error);
  got = ncl_test_download (tb);
  compare ("pad channels backward", got, db, nb, 0.0f);
}

static void
dev_l2norm (gint n, gint len, gfloat scale)
{
  gsize nx = (gsize) n * len;
  g_autofree gfloat *x = random_array (nx, -scale, scale);
  g_autofree gfloat *dy = random_array (nx, -1.0f, 1.0f);
  g_autofree gfloat *want = g_new (gfloat, nx);
  g_autofree gfloat *got = NULL;
  g_autoptr (NclTensor) tx = ncl_test_tensor (ctx, x, n, len, 1, 1);
  g_autoptr (NclTensor) tdy = ncl_test_tensor (ctx, dy, n, len, 1, 1);
  g_autoptr (NclTensor) tdx = ncl_test_tensor (ctx, NULL, 1, 1, 1, 1);
  g_autoptr (GError) error = NULL;
  g_autofree gchar *label = g_strdup_printf ("l2norm backward (%d, %d) x%g",
      n, len, scale);

  ncl_l2norm_backward_ref (x, dy, n, len, 1e-3f, want);
  NCL_CHECK (ncl_l2norm_backward (ctx, tx, tdy, 1e-3f, tdx, &error));
  NCL_CHECK_NO_ERROR (error);
  got = ncl_test_download (tdx);
  compare (label, got, want, nx, 1e-5f);
}

static void
dev_pad (gint n, gint c, gint h, gint w, gint scale, gint top, gint bottom,
    gint left, gint right, NclPadMode mode)
{
  NclPadding pad = { top, bottom, left, right, mode };
  gint oh = h * scale + top + bottom, ow = w * scale + left + right;
  gsize nx = (gsize) n * c * h * w, nout = (gsize) n * c * oh * ow;
  g_autofree gfloat *dy = random_array (nout, -1.0f, 1.0f);
  g_autofree gfloat *want = g_new (gfloat, nx);
  g_autofree gfloat *got = NULL;
  g_autoptr (NclTensor) tdy = ncl_test_tensor (ctx, dy, n, c, oh, ow);
  g_autoptr (NclTensor) tdx = ncl_test_tensor (ctx, NULL, 1, 1, 1, 1);
  g_autoptr (GError) error = NULL;
  g_autofree gchar *label = g_strdup_printf ("pad backward (%d,%d,%d,%d) x%d "
      "%d/%d/%d/%d mode %d", n, c, h, w, scale, top, bottom, left, right,
      mode);

  ncl_pad_backward_ref (dy, n, c, h, w, scale, &pad, want);
  NCL_CHECK (ncl_pad_backward (ctx, tdy, scale, &pad, tdx, &error));
  NCL_CHECK_NO_ERROR (error);
  NCL_CHECK (tdx->n == n && tdx->c == c && tdx->h == h && tdx->w == w);
  got = ncl_test_download (tdx);
  compare (label, got, want, nx, 1e-6f);
}

static void
dev_pool (NclPoolType type, gint n, gint c, gint h, gint w, gint k, gint s,
    gint pad)
{
  NclPoolParams p = { type, k, k, s, s, {pad, pad, pad, pad, NCL_PAD_ZERO} };
  gint oh, ow;
  gsize nx = (gsize) n * c * h * w, nout;
  g_autofree gfloat *x = random_array (nx, -1.0f, 1.0f);
  g_autofree gfloat *dy = NULL;
  g_autofree gfloat *want = g_new (gfloat, nx);
  g_autofree gfloat *got = NULL;
  g_autoptr (NclTensor) tx = NULL;
  g_autoptr (NclTensor) tdy = NULL;
  g_autoptr (NclTensor) tdx = ncl_test_tensor (ctx, NULL, 1, 1, 1, 1);
  g_autoptr (GError) error = NULL;
  g_autofree gchar *label = g_strdup_printf ("%s pool backward (%d,%d,%d,%d) "
      "k%d s%d pad %d", type == NCL_POOL_MAX ? "max" : "avg", n, c, h, w, k,
      s, pad);

  ncl_pool_out_size (&p, h, w, &oh, &ow);
  nout = (gsize) n * c * oh * ow;
  dy = random_array (nout, -1.0f, 1.0f);
  /* a few ties: the first maximum must win on both sides */
  for (gsize i = 0; i + 1 < nx; i += 11)
    x[i + 1] = x[i];
  ncl_pool_backward_ref (&p, x, n, c, h, w, dy, want);
  tx = ncl_test_tensor (ctx, x, n, c, h, w);
  tdy = ncl_test_tensor (ctx, dy, n, c, oh, ow);
  NCL_CHECK (ncl_pool_backward (ctx, &p, tx, tdy, tdx, &error));
  NCL_CHECK_NO_ERROR (error);
  got = ncl_test_download (tdx);
  compare (label, got, want, nx, 1e-6f);
  g_free (got);

  /* global average pool of the same input */
  ncl_global_avgpool_backward_ref (dy, n, c, h * w, want);
  g_clear_pointer (&tdy, ncl_tensor_free);
  tdy = ncl_test_tensor (ctx, dy, n, c, 1, 1);
  NCL_CHECK (ncl_global_avgpool_backward (ctx, tdy, tx, &error));
  NCL_CHECK_NO_ERROR (error);
  got = ncl_test_download (tx);
  compare ("  global avgpool backward", got, want, nx, 1e-6f);
}

static void
dev_fc (gint n, gint c, gint hw, gint out_f)
{
  gint in_f = c * hw;
  g_autofree gfloat *x = random_array ((gsize) n * in_f, -1.0f, 1.0f);
  g_autofree gfloat *wt = random_array ((gsize) out_f * in_f, -1.0f, 1.0f);
  g_autofree gfloat *dy = random_array ((gsize) n * out_f, -1.0f, 1.0f);
  g_autofree gfloat *dx = g_new (gfloat, (gsize) n * in_f);
  g_autofree gfloat *dw = random_array ((gsize) out_f * in_f, -1.0f, 1.0f);
  g_autofree gfloat *db = random_array (out_f, -1.0f, 1.0f);
  g_autofree gfloat *got = NULL;
  g_autofree gchar *label = g_strdup_printf ("fc backward n%d %d->%d", n,
      in_f, out_f);
  g_autoptr (NclTensor) tx = ncl_test_tensor (ctx, x, n, c, 1, hw);
  g_autoptr (NclTensor) tdy = ncl_test_tensor (ctx, dy, n, out_f, 1, 1);
  g_autoptr (NclTensor) tdx = ncl_test_tensor (ctx, NULL, 1, 1, 1, 1);
  g_autoptr (GError) error = NULL;
  cl_mem bw = device_buffer (wt, (gsize) out_f * in_f);
  cl_mem bdw = device_buffer (dw, (gsize) out_f * in_f);
  cl_mem bdb = device_buffer (db, out_f);

  ncl_fc_backward_ref (x, n, in_f, out_f, wt, dy, dx, dw, db);
  NCL_CHECK (ncl_fc_backward (ctx, tx, bw, out_f, tdy, tdx, bdw, bdb,
          &error));
  NCL_CHECK_NO_ERROR (error);
  NCL_CHECK (tdx->c == c && tdx->w == hw);
  got = ncl_test_download (tdx);
  compare (label, got, dx, (gsize) n * in_f, 1e-5f);
  g_free (got);
  got = download_buffer (bdw, (gsize) out_f * in_f);
  compare ("  dw", got, dw, (gsize) out_f * in_f, 1e-5f);
  g_free (got);
  got = download_buffer (bdb, out_f);
  compare ("  db", got, db, out_f, 1e-5f);
  clReleaseMemObject (bdb);
  clReleaseMemObject (bdw);
  clReleaseMemObject (bw);
}

/* Bad calls fail with the right code instead of computing garbage. */
static void
error_tests (void)
{
  NclConvParams p = { 0 };
  NclPadding pad = { 1, 1, 1, 1, NCL_PAD_REFLECT };
  gfloat w[4 * 3 * 9] = { 0 };
  g_autoptr (NclTensor) x = ncl_test_tensor (ctx, NULL, 1, 3, 8, 8);
  g_autoptr (NclTensor) dz = ncl_test_tensor (ctx, NULL, 1, 4, 8, 8);
  g_autoptr (NclTensor) dx = ncl_test_tensor (ctx, NULL, 1, 3, 7, 8);
  g_autoptr (GError) error = NULL;
  cl_mem small = device_buffer (w, 5);
  cl_mem wbuf = device_buffer (w, G_N_ELEMENTS (w));

  p.cin = 3;
  p.cout = 4;
  p.kh = p.kw = 3;
  p.stride_h = p.stride_w = 1;
  p.groups = 1;
  p.pad = pad;
  /* din of the wrong shape */
  NCL_CHECK (!ncl_conv2d_backward_data (ctx, &p, wbuf, dz, dx, &error));
  NCL_CHECK (g_error_matches (error, NCL_ERROR, NCL_ERROR_SHAPE));
  g_clear_error (&error);
  /* a weight gradient buffer too small for (4, 3, 3, 3) (5 floats and the
   * slack) */
  NCL_CHECK (!ncl_conv2d_backward_weights (ctx, &p, x, dz, small, NULL,
          &error));
  NCL_CHECK (g_error_matches (error, NCL_ERROR, NCL_ERROR_SHAPE));
  g_clear_error (&error);
  /* groups that do not divide the channels */
  p.groups = 3;
  p.cin = 4;
  NCL_CHECK (!ncl_conv2d_backward_weights (ctx, &p, x, dz, wbuf, NULL,
          &error));
  NCL_CHECK (g_error_matches (error, NCL_ERROR, NCL_ERROR_SHAPE));
  g_clear_error (&error);
  /* 8 rows less 1 + 2 padding rows is not an input upsampled x2 */
  pad.bottom = 2;
  NCL_CHECK (!ncl_pad_backward (ctx, dz, 2, &pad, dx, &error));
  NCL_CHECK (g_error_matches (error, NCL_ERROR, NCL_ERROR_SHAPE));
  g_clear_error (&error);
  /* a fused activation needs the forward output */
  NCL_CHECK (!ncl_instnorm_backward (ctx, x, NULL, x, NULL, 1e-5f,
          NCL_ACT_RELU, 0.0f, dx, NULL, NULL, NULL, &error));
  NCL_CHECK (g_error_matches (error, NCL_ERROR, NCL_ERROR_FAILED));
  g_clear_error (&error);
  NCL_CHECK (!ncl_activation_backward (ctx, NULL, x, NCL_ACT_TANH, 0.0f, dx,
          &error));
  NCL_CHECK (g_error_matches (error, NCL_ERROR, NCL_ERROR_FAILED));
  g_clear_error (&error);
  g_print ("ok error cases\n");
  clReleaseMemObject (wbuf);
  clReleaseMemObject (small);
}

static void
device_tests (void)
{
  NclPadding none = { 0, 0, 0, 0, NCL_PAD_ZERO };
  NclPadding z1 = { 1, 1, 1, 1, NCL_PAD_ZERO };
  NclPadding r1 = { 1, 1, 1, 1, NCL_PAD_REFLECT };
  NclPadding e1 = { 2, 1, 0, 1, NCL_PAD_EDGE };
  NclPadding r4 = { 4, 4, 4, 4, NCL_PAD_REFLECT };
  NclPadding z4 = { 4, 4, 4, 4, NCL_PAD_ZERO };
  NclPadding z2 = { 2, 1, 0, 1, NCL_PAD_ZERO };

  dev_conv (2, 16, 16, 19, 23, 3, 3, 1, 1, 1, 1, r1);
  dev_conv (1, 32, 24, 17, 35, 3, 3, 2, 2, 1, 1, z1);
  dev_conv (1, 3, 8, 21, 20, 9, 9, 1, 1, 1, 1, r4);
  dev_conv (2, 8, 3, 18, 17, 9, 9, 1, 1, 1, 1, z4);
  dev_conv (1, 16, 32, 9, 9, 1, 1, 1, 1, 1, 1, none);
  dev_conv (1, 12, 12, 13, 11, 3, 3, 2, 2, 12, 1, z1);
  dev_conv (2, 8, 16, 10, 12, 3, 3, 1, 1, 4, 1, z1);
  dev_conv (1, 5, 7, 15, 40, 3, 3, 1, 1, 1, 1, none);
  dev_conv (1, 6, 4, 11, 13, 3, 3, 2, 1, 1, 1, z2);
  dev_conv (1, 6, 5, 12, 11, 3, 3, 1, 2, 1, 1, e1);
  dev_conv (1, 4, 6, 14, 13, 3, 3, 1, 1, 1, 2, z2);
  dev_conv (1, 4, 4, 10, 11, 3, 3, 3, 3, 1, 1, none);
  dev_conv (1, 7, 9, 16, 33, 2, 2, 2, 2, 1, 1, none);
  dev_conv (3, 32, 32, 40, 33, 3, 3, 1, 1, 1, 1, r1);
  dev_conv (1, 16, 24, 13, 37, 3, 3, 1, 1, 1, 1, z2);
  dev_conv (2, 24, 16, 9, 10, 3, 3, 1, 1, 1, 1, none);
  dev_conv (1, 16, 16, 11, 12, 3, 3, 1, 1, 1, 1, e1);
  dev_conv (1, 64, 64, 32, 48, 3, 3, 1, 1, 1, 1, z1);

  dev_instnorm (2, 3, 7, 9, TRUE, FALSE, NCL_ACT_NONE, FALSE);
  dev_instnorm (1, 16, 32, 32, TRUE, TRUE, NCL_ACT_RELU, FALSE);
  dev_instnorm (2, 5, 1, 17, FALSE, TRUE, NCL_ACT_NONE, TRUE);
  dev_instnorm (1, 4, 13, 11, TRUE, FALSE, NCL_ACT_TANH, TRUE);
  dev_instnorm (2, 3, 16, 16, TRUE, TRUE, NCL_ACT_LEAKY_RELU, FALSE);

  for (NclActivation act = NCL_ACT_NONE; act <= NCL_ACT_RELU6; act++) {
    dev_elementwise (1000, act);
    dev_elementwise (37, act);
  }
  dev_channels (2, 3, 5, 37);
  dev_channels (1, 16, 8, 64);
  dev_l2norm (3, 37, 1.0f);
  dev_l2norm (4, 128, 1e-5f);

  dev_pad (1, 2, 5, 6, 1, 1, 1, 1, 1, NCL_PAD_REFLECT);
  dev_pad (2, 3, 17, 19, 1, 4, 4, 4, 4, NCL_PAD_REFLECT);
  dev_pad (2, 1, 4, 3, 1, 4, 2, 5, 3, NCL_PAD_REFLECT);
  dev_pad (1, 2, 5, 4, 1, 2, 1, 0, 3, NCL_PAD_EDGE);
  dev_pad (1, 2, 9, 13, 2, 0, 0, 0, 0, NCL_PAD_ZERO);
  dev_pad (1, 3, 9, 13, 2, 1, 1, 1, 1, NCL_PAD_REFLECT);
  dev_pad (1, 2, 6, 7, 3, 2, 1, -2, 3, NCL_PAD_REFLECT);
  dev_pad (1, 2, 7, 6, 1, -1, -2, 2, -1, NCL_PAD_ZERO);
  dev_pad (1, 2, 7, 6, 2, -3, 0, -1, -4, NCL_PAD_EDGE);

  dev_pool (NCL_POOL_MAX, 2, 3, 16, 16, 2, 2, 0);
  dev_pool (NCL_POOL_MAX, 1, 2, 17, 15, 2, 2, 0);
  dev_pool (NCL_POOL_MAX, 2, 2, 13, 14, 3, 3, 0);
  dev_pool (NCL_POOL_MAX, 1, 3, 17, 19, 3, 2, 1);
  dev_pool (NCL_POOL_AVG, 1, 2, 7, 5, 3, 2, 1);
  dev_pool (NCL_POOL_AVG, 2, 4, 9, 9, 2, 1, 0);

  dev_fc (3, 37, 1, 10);
  dev_fc (5, 4, 16, 17);
  dev_fc (1, 8, 49, 128);
  error_tests ();
}

/* ---- benchmark (NCL_BENCH=1) -------------------------------------------- */

/* CPU seconds of this process (all threads): steadier than wall time on a
 * shared machine. */
static gdouble
cpu_seconds (void)
{
  struct rusage ru;

  getrusage (RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec
      + ru.ru_stime.tv_usec / 1e6;
}

/* Times the conv backwards (and, for scale, the forward) of one layer;
 * returns the wall seconds of the backwards. */
static gdouble
bench_conv (const gchar * name, gint n, gint cin, gint cout, gint h, gint w,
    gint k, gint s, NclPadMode mode, gboolean data, gboolean weights)
{
  NclConvParams p = { 0 };
  gint oh, ow, pad = k / 2, reps = 3;
  g_autoptr (NclTensor) tx = NULL;
  g_autoptr (NclTensor) tdz = NULL;
  g_autoptr (NclTensor) tdx = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree gfloat *wt = NULL;
  gsize nw;
  cl_mem bw, bdw, bdb;
  gdouble flops, td = 0.0, tw = 0.0, cd = 0.0, cw = 0.0, tf = 0.0, cf = 0.0;
  g_autoptr (NclConv) conv = NULL;
  g_autoptr (NclTensor) ty = NULL;

  p.cin = cin;
  p.cout = cout;
  p.kh = p.kw = k;
  p.stride_h = p.stride_w = s;
  p.groups = 1;
  p.dilation = 1;
  p.pad = (NclPadding) {
  pad, pad, pad, pad, mode};
  nw = (gsize) cout * cin * k * k;
  wt = random_array (nw, -0.1f, 0.1f);
  ncl_conv2d_out_size (&p, h, w, &oh, &ow);
  tx = ncl_test_tensor (ctx, NULL, n, cin, h, w);
  tdx = ncl_test_tensor (ctx, NULL, n, cin, h, w);
  tdz = ncl_test_tensor (ctx, NULL, n, cout, oh, ow);
  bw = device_buffer (wt, nw);
  bdw = device_buffer (NULL, nw);
  bdb = device_buffer (NULL, cout);
  flops = 2.0 * n * cout * cin * k * k * oh * ow;

  p.weight = wt;
  conv = ncl_conv_new (ctx, &p, &error);
  NCL_CHECK_NO_ERROR (error);
  ty = ncl_test_tensor (ctx, NULL, n, cout, oh, ow);
  for (gint r = 0; r <= reps; r++) {
    gint64 t0, t1, t2;
    gdouble c0, c1, c2;

    c0 = cpu_seconds ();
    t0 = g_get_monotonic_time ();
    NCL_CHECK (ncl_conv_forward (conv, tx, ty, &error));
    ncl_context_finish (ctx, NULL);
    c1 = cpu_seconds ();
    t1 = g_get_monotonic_time ();
    tf += r > 0 ? (t1 - t0) / 1e6 / reps : 0.0;
    cf += r > 0 ? (c1 - c0) / reps : 0.0;
    t0 = t1;
    c0 = c1;
    if (data)
      NCL_CHECK (ncl_conv2d_backward_data (ctx, &p, bw, tdz, tdx, &error));
    ncl_context_finish (ctx, NULL);
    t1 = g_get_monotonic_time ();
    c1 = cpu_seconds ();
    if (weights)
      NCL_CHECK (ncl_conv2d_backward_weights (ctx, &p, tx, tdz, bdw, bdb,
              &error));
    ncl_context_finish (ctx, NULL);
    t2 = g_get_monotonic_time ();
    c2 = cpu_seconds ();
    NCL_CHECK_NO_ERROR (error);
    if (r > 0) {                /* the first run builds the kernels */
      td += (t1 - t0) / 1e6 / reps;
      tw += (t2 - t1) / 1e6 / reps;
      cd += (c1 - c0) / reps;
      cw += (c2 - c1) / reps;
    }
  }
  /* GFLOP per CPU second: about half the two-core rate when idle */
  g_print ("%-10s n%d %3d->%3d %3dx%3d k%d s%d | fwd %6.1f ms %5.1f | data "
      "%6.1f ms %5.1f | weights %6.1f ms %5.1f GFLOP/cpu-s\n", name, n, cin,
      cout, h, w, k, s, tf * 1e3, flops / cf / 1e9, td * 1e3,
      data ? flops / cd / 1e9 : 0.0, tw * 1e3,
      weights ? flops / cw / 1e9 : 0.0);
  clReleaseMemObject (bdb);
  clReleaseMemObject (bdw);
  clReleaseMemObject (bw);
  return td + tw;
}

static void
bench (void)
{
  const gchar *only = g_getenv ("NCL_BENCH_ONLY");
  gint n = g_getenv ("NCL_BENCH_N") ? atoi (g_getenv ("NCL_BENCH_N")) : 1;
  gint size = g_getenv ("NCL_BENCH_SIZE") ? atoi (g_getenv ("NCL_BENCH_SIZE"))
      : 256;
  gdouble johnson = 0.0, vgg = 0.0;
  NclPadMode r = NCL_PAD_REFLECT, z = NCL_PAD_ZERO;

  if (only == NULL || g_str_equal (only, "johnson")) {
    /* Johnson TransformerNet: weights everywhere, data except the input */
    johnson += bench_conv ("j.conv1", n, 3, 32, size, size, 9, 1, r, FALSE,
        TRUE);
    johnson += bench_conv ("j.conv2", n, 32, 64, size, size, 3, 2, r, TRUE,
        TRUE);
    johnson += bench_conv ("j.conv3", n, 64, 128, size / 2, size / 2, 3, 2, r,
        TRUE, TRUE);
    johnson += 10 * bench_conv ("j.res x10", n, 128, 128, size / 4, size / 4,
        3, 1, r, TRUE, TRUE);
    johnson += bench_conv ("j.up1", n, 128, 64, size / 2, size / 2, 3, 1, r,
        TRUE, TRUE);
    johnson += bench_conv ("j.up2", n, 64, 32, size, size, 3, 1, r, TRUE,
        TRUE);
    johnson += bench_conv ("j.out", n, 32, 3, size, size, 9, 1, r, TRUE,
        TRUE);
    g_print ("Johnson net conv backward: %.3f s per batch of %d\n", johnson,
        n);
  }
  if (only == NULL || g_str_equal (only, "vgg")) {
    /* VGG-19 to relu4_1, frozen: data gradients only */
    vgg += bench_conv ("v.conv1_1", n, 3, 64, size, size, 3, 1, z, TRUE,
        FALSE);
    vgg += bench_conv ("v.conv1_2", n, 64, 64, size, size, 3, 1, z, TRUE,
        FALSE);
    vgg += bench_conv ("v.conv2_1", n, 64, 128, size / 2, size / 2, 3, 1, z,
        TRUE, FALSE);
    vgg += bench_conv ("v.conv2_2", n, 128, 128, size / 2, size / 2, 3, 1, z,
        TRUE, FALSE);
    vgg += bench_conv ("v.conv3_1", n, 128, 256, size / 4, size / 4, 3, 1, z,
        TRUE, FALSE);
    vgg += 3 * bench_conv ("v.conv3_x3", n, 256, 256, size / 4, size / 4, 3,
        1, z, TRUE, FALSE);
    vgg += bench_conv ("v.conv4_1", n, 256, 512, size / 8, size / 8, 3, 1, z,
        TRUE, FALSE);
    g_print ("VGG-19 (to relu4_1) conv backward: %.3f s per batch of %d\n",
        vgg, n);
  }
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;

  /* NCL_SEED=n varies the random shapes' contents */
  g_random_set_seed (g_getenv ("NCL_SEED") ? atoi (g_getenv ("NCL_SEED"))
      : 1234);

  if (g_getenv ("NCL_BENCH") != NULL) {
    ctx = ncl_test_context ();
    bench ();
    ncl_context_unref (ctx);
    return ncl_test_finish ();
  }
  finite_difference_tests ();
  ctx = ncl_context_new (NULL, &error);
  if (ctx == NULL) {
    g_print ("no device: %s\n", error->message);
    if (ncl_test_failures == 0 && g_error_matches (error, NCL_ERROR,
            NCL_ERROR_NO_DEVICE))
      return NCL_TEST_SKIP;
    return 1;
  }
  device_tests ();
  ncl_context_unref (ctx);
  return ncl_test_finish ();
}
