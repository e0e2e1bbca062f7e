/* conv.c: 2-D convolution: the plain-C reference and the device layer.
 *
 * The device path pads into a scratch tensor when the layer has padding and
 * then runs one of the valid-convolution kernels of kernels/conv.cl:
 *
 *   "generic"        conv2d_generic: anything (groups, depthwise, dilation).
 *   "direct"         conv2d_direct, 8 output channels x 32 pixels per
 *                    work-item: groups 1, dilation 1, stride_w 1 or 2,
 *                    kw <= 17.
 *   "direct_narrow"  conv2d_direct, cout (<= 4) channels x 64 pixels, for
 *                    layers with few outputs (the 9x9 32 -> 3 of the style
 *                    network).
 *   "winograd4"      conv2d_wino4: Winograd F(4x4, 3x3), 3x3 stride 1,
 *                    groups 1; picked on CPU devices when cin, cout >= 16.
 *   "depthwise"      conv2d_dw: groups = cin = cout, k <= 7, strides 1 / 2;
 *                    16 pixels x 4 rows of one channel per work-item, the
 *                    layer's padding handled in the kernel.
 *   "gemm"           conv2d_gemm (+ conv_im2col unless 1x1 stride 1
 *                    unpadded): groups 1; 8 output channels x 16 / 32
 *                    flattened output pixels per work-item.  Direct and
 *                    Winograd layers switch to it at forward time on small
 *                    maps (gemm_preferred).
 *   "chvec"          conv2d_chvec: groups 1, dilation 1; 32 output
 *                    channels (the vector lanes) x up to 14 flattened
 *                    output pixels per work-item, with an optional fused
 *                    residual.  Direct and Winograd layers switch to it at
 *                    forward time on CPU devices on narrow rows and
 *                    strided layers (chvec_preferred; before
 *                    gemm_preferred).
 *   "chblk"          conv2d_chblk: the same tile over a block of output
 *                    pixels of one image with the geometry compiled in
 *                    (16 channels x the whole map for a tiny map of one
 *                    image); what "chvec" runs on maps of 9 pixels and
 *                    more and on batches of one (chblk_preferred).
 *
 * The register tiles were measured on PoCL (2 AVX-512 cores): 8 x 32 beat
 * 16 x 16 by 10-25 % on every layer of the style network; see
 * docs/kernels.md.
 *
 * NEURALCL_CONV_VARIANT=<name> forces a variant for every conv it can run
 * (the tests use it to exercise each one); others keep the automatic choice.
 */
#include <neuralcl/layers.h>
#include <neuralcl/error.h>

#include <math.h>
#include <string.h>

typedef enum
{
  CONV_GENERIC,
  CONV_DIRECT,
  CONV_DIRECT_NARROW,
  CONV_WINO4,
  CONV_DEPTHWISE,
  CONV_GEMM,
  CONV_CHVEC,
  CONV_CHBLK,
  CONV_N_VARIANTS
} ConvVariant;

static const gchar *const variant_names[CONV_N_VARIANTS] = {
  "generic", "direct", "direct_narrow", "winograd4", "depthwise", "gemm",
  "chvec", "chblk",
};

static const gchar *const kernel_names[CONV_N_VARIANTS] = {
  "conv2d_generic", "conv2d_direct", "conv2d_direct", "conv2d_wino4",
  "conv2d_dw", "conv2d_gemm", "conv2d_chvec", "conv2d_chblk",
};

/* direct: output channels x 16-pixel vectors per work-item */
#define DIRECT_CO_TILE 8
#define DIRECT_PX_VECTORS 2
#define NARROW_MAX_COUT 4
#define NARROW_PX_VECTORS 4

/* Winograd: output channels x 16-tile vectors per GEMM register tile; the
 * input transform of all input channels sits in __local memory. */
#define WINO_CO_TILE 8
#define WINO_TILE_VECTORS 1

/* The __local buffer is sized for cin rounded up to this, so that layers
 * with similar channel counts share one program. */
#define WINO_CIN_STEP 8

/* depthwise: output rows per work-item; largest kernel side (the taps are
 * unrolled) */
#define DW_ROWS 4
#define DW_MAX_K 7

/* GEMM: output channels per register tile (the direct packing with this
 * tile is the GEMM's A operand) */
#define GEMM_CO_TILE 8

/* channel-vector: output channels (two float16) x flattened pixels per
 * work-item */
#define CHVEC_CO_TILE 32
#define CHVEC_PX 12
#define CHVEC_MAX_PX 14          /* 2 x 14 accumulators + 2 weight vectors */
#define CHBLK_WHOLE_MAP 16       /* maps up to this many pixels of one image:
                                 * one conv2d_chblk block of 16 channels */
#define CHBLK_WHOLE_MAP_BATCH 9  /* ... in a batch */
/* rows narrower than these run on it (chvec_preferred) */
#define CHVEC_MAX_OW 48
#define CHVEC_MAX_OW_STRIDED 96

static gint
wino_cin_capacity (gint cin)
{
  return (cin + WINO_CIN_STEP - 1) / WINO_CIN_STEP * WINO_CIN_STEP;
}

static gsize
wino_local_bytes (gint cin)
{
  return (gsize) 36 * 64 * WINO_TILE_VECTORS * (wino_cin_capacity (cin)
      + WINO_CO_TILE);
}

struct _NclConv
{
  NclContext *ctx;
  NclConvParams p;
  gfloat *weight;               /* (cout, cin / groups, kh, kw), host copy */
  gfloat *bias;                 /* (cout) or NULL, host copy */
  ConvVariant variant;           /* chosen at creation */
  ConvVariant used;              /* run by the last forward */
  gboolean forced;              /* NEURALCL_CONV_VARIANT picked it */
  gint co_tile, pxv;            /* direct: register tile */
  gint cout_padded;             /* cout rounded up to the channel tile */
  gchar *options;               /* build options of the conv kernel */
  cl_mem wbuf;                  /* weights in the variant's layout */
  cl_mem bbuf;                  /* (cout_padded) bias, zeros if none */
  NclTensor *padded;            /* scratch: the input after padding */
  cl_mem gbuf;                  /* GEMM weights when wbuf has another
                                 * layout (Winograd), created on demand */
  NclTensor *col;               /* scratch: im2col for the GEMM */
  cl_mem cbuf16;                /* the same with 16-channel tiles */
  cl_mem cbuf;                  /* channel-vector weights when wbuf has
                                 * another layout, created on demand */
};

/* ---- reference ---------------------------------------------------------- */

void
ncl_conv2d_out_size (const NclConvParams * p, gint h, gint w, gint * oh,
    gint * ow)
{
  gint d = MAX (p->dilation, 1);
  gint eh = h + p->pad.top + p->pad.bottom - d * (p->kh - 1) - 1;
  gint ew = w + p->pad.left + p->pad.right - d * (p->kw - 1) - 1;

  *oh = eh < 0 ? 0 : eh / p->stride_h + 1;
  *ow = ew < 0 ? 0 : ew / p->stride_w + 1;
}

/* Maps coordinate @i into [0, n) for reflect / edge; -1 for zero padding. */
static gint
pad_index (gint i, gint n, NclPadMode mode)
{
  gint period, m;

  if (i >= 0 && i < n)
    return i;
  if (mode == NCL_PAD_ZERO)
    return -1;
  if (mode == NCL_PAD_EDGE || n == 1)
    return CLAMP (i, 0, n - 1);
  period = 2 * (n - 1);
  m = i % period;
  if (m < 0)
    m += period;
  return m < n ? m : period - m;
}

void
ncl_conv2d_forward_ref (const NclConvParams * p, const gfloat * in, gint n,
    gint h, gint w, gfloat * out)
{
  gint d = MAX (p->dilation, 1);
  gint cin_g = p->cin / p->groups;
  gint cout_g = p->cout / p->groups;
  gint oh, ow;

  ncl_conv2d_out_size (p, h, w, &oh, &ow);

  for (gint b = 0; b < n; b++) {
    for (gint co = 0; co < p->cout; co++) {
      gint g = co / cout_g;
      const gfloat *wc = p->weight + (gsize) co * cin_g * p->kh * p->kw;

      for (gint oy = 0; oy < oh; oy++) {
        for (gint ox = 0; ox < ow; ox++) {
          gfloat sum = 0.0f;

          for (gint ci = 0; ci < cin_g; ci++) {
            const gfloat *plane = in + ((gsize) b * p->cin + g * cin_g + ci)
                * h * w;

            for (gint ky = 0; ky < p->kh; ky++) {
              gint iy = pad_index (oy * p->stride_h + ky * d - p->pad.top, h,
                  p->pad.mode);

              if (iy < 0)
                continue;
              for (gint kx = 0; kx < p->kw; kx++) {
                gint ix = pad_index (ox * p->stride_w + kx * d - p->pad.left,
                    w, p->pad.mode);

                if (ix < 0)
                  continue;
                sum += wc[(ci * p->kh + ky) * p->kw + kx]
                    * plane[(gsize) iy * w + ix];
              }
            }
          }
          if (p->bias != NULL)
            sum += p->bias[co];
          out[(((gsize) b * p->cout + co) * oh + oy) * ow + ox] =
              ncl_activate (p->act, p->alpha, sum);
        }
      }
    }
  }
}

void
ncl_conv2d_fold_batchnorm (gint cout, gint per_out, gfloat * weight,
    gfloat * bias, const gfloat * gamma, const gfloat * beta,
    const gfloat * mean, const gfloat * var, gfloat eps)
{
  for (gint co = 0; co < cout; co++) {
    gfloat scale = (gamma != NULL ? gamma[co] : 1.0f) / sqrtf (var[co] + eps);
    gfloat shift = beta != NULL ? beta[co] : 0.0f;

    for (gint i = 0; i < per_out; i++)
      weight[(gsize) co * per_out + i] *= scale;
    bias[co] = (bias[co] - mean[co]) * scale + shift;
  }
}

/* ---- device ------------------------------------------------------------- */

static gboolean
variant_applies (NclContext * ctx, const NclConvParams * p, ConvVariant v)
{
  gboolean plain = p->groups == 1 && MAX (p->dilation, 1) == 1;
  cl_ulong local_mem = 0;

  switch (v) {
    case CONV_GENERIC:
      return TRUE;
    case CONV_DIRECT:
      return plain && (p->stride_w == 1 || p->stride_w == 2) && p->kw <= 17;
    case CONV_DIRECT_NARROW:
      return variant_applies (ctx, p, CONV_DIRECT)
          && p->cout <= NARROW_MAX_COUT;
    case CONV_WINO4:
      if (!plain || p->kh != 3 || p->kw != 3 || p->stride_h != 1
          || p->stride_w != 1)
        return FALSE;
      clGetDeviceInfo (ncl_context_get_device (ctx), CL_DEVICE_LOCAL_MEM_SIZE,
          sizeof (local_mem), &local_mem, NULL);
      return wino_local_bytes (p->cin) <= local_mem;
    case CONV_DEPTHWISE:
      return p->groups == p->cin && p->cin == p->cout
          && MAX (p->dilation, 1) == 1 && p->kh <= DW_MAX_K
          && p->kw <= DW_MAX_K && (p->stride_w == 1 || p->stride_w == 2)
          && (p->stride_h == 1 || p->stride_h == 2);
    case CONV_GEMM:
      return p->groups == 1;
    case CONV_CHVEC:
    case CONV_CHBLK:
      return plain && p->kw <= 17 && p->kh <= 17;
    default:
      return FALSE;
  }
}

/* The variant NEURALCL_CONV_VARIANT names if it can run @p, else
 * CONV_N_VARIANTS. */
static ConvVariant
forced_variant (NclContext * ctx, const NclConvParams * p)
{
  const gchar *force = g_getenv ("NEURALCL_CONV_VARIANT");

  if (force != NULL && *force != '\0') {
    for (gint v = 0; v < CONV_N_VARIANTS; v++) {
      if (g_str_equal (force, variant_names[v])
          && variant_applies (ctx, p, v))
        return v;
    }
  }
  return CONV_N_VARIANTS;
}

static ConvVariant
choose_variant (NclContext * ctx, const NclConvParams * p)
{
  if (forced_variant (ctx, p) != CONV_N_VARIANTS)
    return forced_variant (ctx, p);
  if (variant_applies (ctx, p, CONV_DEPTHWISE))
    return CONV_DEPTHWISE;
  /* the Winograd kernel runs one work-item per group and keeps its
   * transform in __local memory: a CPU design */
  if (ncl_context_is_cpu (ctx) && p->cin >= 16 && p->cout >= 16
      && variant_applies (ctx, p, CONV_WINO4))
    return CONV_WINO4;
  if (variant_applies (ctx, p, CONV_DIRECT_NARROW))
    return CONV_DIRECT_NARROW;
  if (variant_applies (ctx, p, CONV_DIRECT))
    return CONV_DIRECT;
  return CONV_GENERIC;
}

/* Packs (cout, cin, kh, kw) into [cout_padded / tile][cin][kh][kw][tile]. */
static gfloat *
pack_direct (const NclConvParams * p, gint tile, gint cout_padded)
{
  gsize taps = (gsize) p->cin * p->kh * p->kw;
  gfloat *packed = g_new0 (gfloat, (gsize) cout_padded * taps);

  for (gint co = 0; co < p->cout; co++) {
    for (gsize k = 0; k < taps; k++)
      packed[((gsize) (co / tile) * taps + k) * tile + co % tile] =
          p->weight[co * taps + k];
  }
  return packed;
}

/* The weights packed as pack_direct (@tile) on the device, made in @buf on
 * the first call (a layer created for another variant that switches to the
 * GEMM or the channel-vector kernel on small maps).  NULL on error. */
static cl_mem
packed_on_demand (NclContext * ctx, const NclConvParams * p, gint tile,
    cl_mem * buf, GError ** error)
{
  if (*buf == NULL) {
    gint cout_padded = (p->cout + tile - 1) / tile * tile;
    g_autofree gfloat *packed = pack_direct (p, tile, cout_padded);

    *buf = ncl_buffer_from_host (ctx, packed,
        (gsize) cout_padded * p->cin * p->kh * p->kw, error);
  }
  return *buf;
}

/* G of F(4x4, 3x3): U = G g G^T */
static const gdouble wino_g[6][3] = {
  {1.0 / 4, 0, 0},
  {-1.0 / 6, -1.0 / 6, -1.0 / 6},
  {-1.0 / 6, 1.0 / 6, -1.0 / 6},
  {1.0 / 24, 1.0 / 12, 1.0 / 6},
  {1.0 / 24, -1.0 / 12, 1.0 / 6},
  {0, 0, 1},
};

/* Transforms and packs (cout, cin, 3, 3) into
 * [cout_padded / tile][36][cin][tile]. */
static gfloat *
pack_wino4 (const NclConvParams * p, gint tile, gint cout_padded)
{
  gfloat *packed = g_new0 (gfloat, (gsize) cout_padded * 36 * p->cin);

  for (gint co = 0; co < p->cout; co++) {
    for (gint ci = 0; ci < p->cin; ci++) {
      const gfloat *g = p->weight + ((gsize) co * p->cin + ci) * 9;
      gdouble gg[6][3];         /* G g */

      for (gint i = 0; i < 6; i++)
        for (gint k = 0; k < 3; k++)
          gg[i][k] = wino_g[i][0] * g[k] + wino_g[i][1] * g[3 + k]
              + wino_g[i][2] * g[6 + k];
      for (gint i = 0; i < 6; i++) {
        for (gint j = 0; j < 6; j++) {
          gdouble u = gg[i][0] * wino_g[j][0] + gg[i][1] * wino_g[j][1]
              + gg[i][2] * wino_g[j][2];

          packed[(((gsize) (co / tile) * 36 + i * 6 + j) * p->cin + ci)
              * tile + co % tile] = u;
        }
      }
    }
  }
  return packed;
}

/* Build options of conv2d_gemm with @gpx 16-column vectors per work-item
 * (a static string). */
static const gchar *
gemm_options (NclContext * ctx, gint gpx)
{
  if (ncl_context_is_cpu (ctx))
    return gpx == 2 ? "-DGPX=2 -DCONV_UNALIGNED" : "-DGPX=1 -DCONV_UNALIGNED";
  return gpx == 2 ? "-DGPX=2" : "-DGPX=1";
}

/* Pixels per conv2d_chvec work-item for @npx output pixels in all:
 * CHVEC_PX on large maps; on small ones (a 4x4 or 1x1 map of one image)
 * as many as split them into equal work-items of at most CHVEC_MAX_PX, so
 * that (almost) no lane computes a clamped duplicate. */
static gint
chvec_px (gint npx)
{
  gint groups = (npx + CHVEC_MAX_PX - 1) / CHVEC_MAX_PX;

  if (npx >= 8 * CHVEC_PX)
    return CHVEC_PX;
  return (npx + groups - 1) / groups;
}

/* Output block of a conv2d_chblk work-item on an @oh x @ow map: of the
 * blocks that fit the map and the registers, the one with the least work
 * for all blocks (edge blocks overlap their neighbours), each block
 * counted with 3 lanes more for its per-tap weight loads.  Registers: 2
 * accumulators per pixel and the c + 2 input values of each row that the
 * unrolled taps share, r (3 c + 2) <= 32 (measured: 1 x 9 and 1 x 10 run
 * at 280-300 GFLOP/s here, 1 x 11 and 2 x 5 spill and lose 20 %). */
static void
chblk_block (gint oh, gint ow, gint * rows, gint * cols)
{
  gint best = G_MAXINT;

  *rows = *cols = 1;
  for (gint r = 1; r <= oh; r++) {
    for (gint c = 1; c <= ow && r * (3 * c + 2) <= 32; c++) {
      gint cost = (oh + r - 1) / r * ((ow + c - 1) / c) * (r * c + 3);

      if (cost < best || (cost == best && r * c > *rows * *cols)) {
        best = cost;
        *rows = r;
        *cols = c;
      }
    }
  }
}

/* Build options of conv2d_chvec into @buf.  (The chvec and chblk options
 * are made on every forward, into the stack: the kernel cache is keyed by
 * them anyway.) */
static const gchar *
chvec_options (const NclConvParams * p, gint px, gchar * buf, gsize size)
{
  g_snprintf (buf, size, "-DKW=%d -DCV_PX=%d", p->kw, px);
  return buf;
}

NclConv *
ncl_conv_new (NclContext * ctx, const NclConvParams * p, GError ** error)
{
  g_autoptr (NclConv) conv = NULL;
  g_autofree gfloat *packed = NULL;
  g_autofree gfloat *bias = NULL;
  const gfloat *wsrc;
  const gchar *unaligned =
      ncl_context_is_cpu (ctx) ? " -DCONV_UNALIGNED" : "";
  gsize wlen = (gsize) p->cout * (p->cin / MAX (p->groups, 1)) * p->kh
      * p->kw;
  gint nbias;

  if (p->cin <= 0 || p->cout <= 0 || p->kh <= 0 || p->kw <= 0
      || p->stride_h <= 0 || p->stride_w <= 0 || p->groups <= 0
      || p->pad.top < 0 || p->pad.bottom < 0 || p->pad.left < 0
      || p->pad.right < 0 || p->weight == NULL) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "conv: invalid parameters (cin %d, cout %d, kernel %dx%d, stride "
        "%dx%d, groups %d, padding %d/%d/%d/%d%s)", p->cin, p->cout, p->kh,
        p->kw, p->stride_h, p->stride_w, p->groups, p->pad.top,
        p->pad.bottom, p->pad.left, p->pad.right,
        p->weight == NULL ? ", no weights" : "");
    return NULL;
  }
  if (p->cin % p->groups != 0 || p->cout % p->groups != 0) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "conv: %d input and %d output channels do not split into %d groups",
        p->cin, p->cout, p->groups);
    return NULL;
  }

  conv = g_new0 (NclConv, 1);
  conv->ctx = ncl_context_ref (ctx);
  conv->p = *p;
  conv->weight = g_memdup2 (p->weight, wlen * sizeof (gfloat));
  conv->p.weight = conv->weight;
  if (p->bias != NULL) {
    conv->bias = g_memdup2 (p->bias, p->cout * sizeof (gfloat));
    conv->p.bias = conv->bias;
  }
  conv->variant = choose_variant (ctx, p);
  conv->used = conv->variant;
  conv->forced = forced_variant (ctx, p) != CONV_N_VARIANTS;

  switch (conv->variant) {
    case CONV_DIRECT:
    case CONV_DIRECT_NARROW:
    case CONV_GEMM:
      if (conv->variant != CONV_DIRECT_NARROW) {
        conv->co_tile = DIRECT_CO_TILE;
        conv->pxv = DIRECT_PX_VECTORS;
      } else {
        conv->co_tile = p->cout;
        conv->pxv = NARROW_PX_VECTORS;
      }
      conv->cout_padded = (p->cout + conv->co_tile - 1) / conv->co_tile
          * conv->co_tile;
      packed = pack_direct (p, conv->co_tile, conv->cout_padded);
      wsrc = packed;
      wlen = (gsize) conv->cout_padded * p->cin * p->kh * p->kw;
      conv->options = g_strdup_printf ("-DCO_TILE=%d -DPXV=%d -DKW=%d "
          "-DSTRIDE_W=%d%s", conv->co_tile, conv->pxv, p->kw, p->stride_w,
          unaligned);
      break;
    case CONV_WINO4:
      conv->co_tile = WINO_CO_TILE;
      conv->pxv = WINO_TILE_VECTORS;
      conv->cout_padded = (p->cout + conv->co_tile - 1) / conv->co_tile
          * conv->co_tile;
      packed = pack_wino4 (p, conv->co_tile, conv->cout_padded);
      wsrc = packed;
      wlen = (gsize) conv->cout_padded * 36 * p->cin;
      conv->options = g_strdup_printf ("-DWCO=%d -DWTV=%d -DWINO_CIN=%d%s",
          conv->co_tile, conv->pxv, wino_cin_capacity (p->cin), unaligned);
      break;
    case CONV_CHVEC:
    case CONV_CHBLK:
      conv->co_tile = CHVEC_CO_TILE;
      conv->cout_padded = (p->cout + CHVEC_CO_TILE - 1) / CHVEC_CO_TILE
          * CHVEC_CO_TILE;
      packed = pack_direct (p, CHVEC_CO_TILE, conv->cout_padded);
      wsrc = packed;
      wlen = (gsize) conv->cout_padded * p->cin * p->kh * p->kw;
      {
        gchar opts[64];

        conv->options = g_strdup (chvec_options (p, CHVEC_PX, opts,
                sizeof (opts)));
      }
      break;
    case CONV_DEPTHWISE:
      conv->cout_padded = p->cout;
      wsrc = p->weight;
      conv->options = g_strdup_printf ("-DKW=%d -DDW_KH=%d -DSTRIDE_W=%d "
          "-DDW_SH=%d -DDW_ROWS=%d%s", p->kw, p->kh, p->stride_w,
          p->stride_h, DW_ROWS, unaligned);
      break;
    default:
      conv->cout_padded = p->cout;
      wsrc = p->weight;
      conv->options = g_strdup_printf ("-DCOT=%d%s",
          MIN (4, p->cout / p->groups), unaligned);
      break;
  }

  /* room for the channel-vector tile whatever the variant (small maps
   * switch to it at run time) */
  nbias = MAX (conv->cout_padded, (p->cout + CHVEC_CO_TILE - 1)
      / CHVEC_CO_TILE * CHVEC_CO_TILE);
  bias = g_new0 (gfloat, nbias);
  if (p->bias != NULL)
    memcpy (bias, p->bias, p->cout * sizeof (gfloat));

  conv->wbuf = ncl_buffer_from_host (ctx, wsrc, wlen, error);
  if (conv->wbuf == NULL)
    return NULL;
  conv->bbuf = ncl_buffer_from_host (ctx, bias, nbias, error);
  if (conv->bbuf == NULL)
    return NULL;

  /* build now, so that a kernel problem shows up at load time (the
   * channel-vector program: conv2d_chblk's geometry is known at run time) */
  if (ncl_context_get_kernel (ctx, "conv", kernel_names[conv->variant ==
              CONV_CHBLK ? CONV_CHVEC : conv->variant],
          conv->variant == CONV_GEMM ? gemm_options (ctx, 1) : conv->options,
          error) == NULL)
    return NULL;

  return g_steal_pointer (&conv);
}

void
ncl_conv_free (NclConv * conv)
{
  if (conv == NULL)
    return;
  g_clear_pointer (&conv->padded, ncl_tensor_free);
  g_clear_pointer (&conv->col, ncl_tensor_free);
  if (conv->gbuf != NULL)
    clReleaseMemObject (conv->gbuf);
  if (conv->cbuf != NULL)
    clReleaseMemObject (conv->cbuf);
  if (conv->cbuf16 != NULL)
    clReleaseMemObject (conv->cbuf16);
  if (conv->bbuf != NULL)
    clReleaseMemObject (conv->bbuf);
  if (conv->wbuf != NULL)
    clReleaseMemObject (conv->wbuf);
  g_free (conv->options);
  g_free (conv->bias);
  g_free (conv->weight);
  if (conv->ctx != NULL)
    ncl_context_unref (conv->ctx);
  g_free (conv);
}

const NclConvParams *
ncl_conv_get_params (const NclConv * conv)
{
  return &conv->p;
}

/* The variant of the last forward (layers on small maps may switch to the
 * GEMM at run time), or the one chosen at creation before any. */
const gchar *
ncl_conv_get_variant (const NclConv * conv)
{
  return variant_names[conv->used];
}

/* Pads @in into conv->padded (pad.cl). */
static gboolean
conv_pad (NclConv * conv, const NclTensor * in, GError ** error)
{
  if (conv->padded == NULL) {
    conv->padded = ncl_tensor_new (conv->ctx, 1, 1, 1, 1, error);
    if (conv->padded == NULL)
      return FALSE;
  }
  return ncl_pad_forward (conv->ctx, in, 1, &conv->p.pad, conv->padded,
      error);
}

/* Whether a groups-1 layer on @variant producing @ow columns runs faster
 * as a GEMM (measured on PoCL, docs/kernels.md).  1x1 stride-1 layers:
 * when the direct kernel's 32-pixel row tiles waste lanes (the GEMM's
 * columns run across rows and images: 5-8x on 13x13 and 16x16 maps,
 * 1.3x at 104 and 207 pixels), but not on wide rows that are a multiple of
 * 32 (64-256 pixels: direct is 1.1-1.5x faster there).  Direct layers:
 * rows shorter than the tile.  Winograd layers: fewer than 8 columns, or
 * 8 columns in a small batch (at 17x17 Winograd is faster; at 8x8 they tie
 * for one image and Winograd wins 1.7x for eight (face ResNet, 128
 * channels); at 4x4 the GEMM is 3x faster). */
static gboolean
gemm_preferred (const NclConvParams * p, ConvVariant variant, gint n,
    gint ow)
{
  if (p->kh == 1 && p->kw == 1 && p->stride_h == 1 && p->stride_w == 1)
    return ow < 64 || ow % (16 * DIRECT_PX_VECTORS) != 0;
  if (variant == CONV_WINO4)
    return ow < 8 || (ow == 8 && n < 4);
  return ow < 16 * DIRECT_PX_VECTORS;
}

/* Whether a layer chosen as direct or Winograd runs faster on the channel-
 * vector kernel (CPU devices; measured on PoCL, docs/kernels.md):
 * - strided layers up to CHVEC_MAX_OW_STRIDED columns, and strided wide
 *   kernels at any width (3x3/2 32->64 at 80 columns: 1.4x, 64->128 at 40:
 *   2.5x; the face ResNet's 7x7/2 input layer: 1.8x; at 160 columns the
 *   direct kernel is 1.2x faster);
 * - Winograd layers on rows narrower than 32, which its 32-column
 *   half-blocks fill badly (the face ResNet's 17x17 .. 1x1 maps: 1.3-3x),
 *   or narrower than CHVEC_MAX_OW with at most 32 input channels (35x35
 *   32->32: a tie, but the residual add fuses into this kernel only; at
 *   40x30 with 128 channels Winograd is 1.5x faster);
 * - other direct layers on rows narrower than CHVEC_MAX_OW. */
static gboolean
chvec_preferred (NclConv * conv, gint ow)
{
  const NclConvParams *p = &conv->p;

  if (!ncl_context_is_cpu (conv->ctx) || p->cout < 16
      || !variant_applies (conv->ctx, p, CONV_CHVEC))
    return FALSE;
  if (p->stride_w > 1)
    return ow <= CHVEC_MAX_OW_STRIDED || p->kw >= 5;
  if (conv->variant == CONV_WINO4)
    return ow < 32 || (ow < CHVEC_MAX_OW && p->cin <= 32);
  return ow < CHVEC_MAX_OW;
}

static gboolean
forward_depthwise (NclConv * conv, const NclTensor * in, NclTensor * out,
    GError ** error)
{
  const NclConvParams *p = &conv->p;
  gint mode = p->pad.mode, act = p->act;
  gsize global[3];
  cl_kernel k;
  gboolean ok;

  k = ncl_context_get_kernel (conv->ctx, "conv", "conv2d_dw", conv->options,
      error);
  if (k == NULL)
    return FALSE;
  global[0] = (out->w + 15) / 16;
  global[1] = (out->h + DW_ROWS - 1) / DW_ROWS;
  global[2] = (gsize) in->n * in->c;
  ncl_context_lock (conv->ctx);
  ok = ncl_kernel_set_args (k, error, sizeof (cl_mem), &in->buf,
      sizeof (cl_mem), &conv->wbuf, sizeof (cl_mem), &conv->bbuf,
      sizeof (cl_mem), &out->buf, sizeof (gint), &p->cin, sizeof (gint),
      &in->h, sizeof (gint), &in->w, sizeof (gint), &out->h, sizeof (gint),
      &out->w, sizeof (gint), &p->pad.top, sizeof (gint), &p->pad.left,
      sizeof (gint), &mode, sizeof (gint), &act, sizeof (gfloat), &p->alpha,
      0)
      && ncl_context_run (conv->ctx, k, 3, global, NULL, error);
  ncl_context_unlock (conv->ctx);
  return ok;
}

static gboolean
forward_gemm (NclConv * conv, const NclTensor * in, NclTensor * out,
    GError ** error)
{
  const NclConvParams *p = &conv->p;
  gint kdim = p->cin * p->kh * p->kw;
  gint ohw = out->h * out->w;
  gint ncols = in->n * ohw;
  gint gpx = ncols >= 64 ? 2 : 1;
  gint act = p->act, lsize, bstride, ldb;
  gboolean plain = p->kh == 1 && p->kw == 1 && p->stride_h == 1
      && p->stride_w == 1 && !p->pad.top && !p->pad.bottom && !p->pad.left
      && !p->pad.right;
  cl_mem bm, am = conv->wbuf;
  gsize global[2];
  cl_kernel k;
  gboolean ok;

  /* direct layers share the GEMM's packing (tile 8) */
  if (conv->variant != CONV_DIRECT && conv->variant != CONV_GEMM) {
    am = packed_on_demand (conv->ctx, p, GEMM_CO_TILE, &conv->gbuf, error);
    if (am == NULL)
      return FALSE;
  }

  if (plain) {
    bm = in->buf;
    lsize = ohw;
    bstride = p->cin * ohw;
    ldb = ohw;
  } else {
    gint npad = (ncols + 16 * gpx - 1) / (16 * gpx) * (16 * gpx);
    gint dil = MAX (p->dilation, 1), mode = p->pad.mode;
    gsize gcol[2] = { kdim, (gsize) in->n * out->h + 1 };

    if (conv->col == NULL) {
      conv->col = ncl_tensor_new (conv->ctx, 1, 1, kdim, npad, error);
      if (conv->col == NULL)
        return FALSE;
    } else if (!ncl_tensor_reshape (conv->col, 1, 1, kdim, npad, error)) {
      return FALSE;
    }
    k = ncl_context_get_kernel (conv->ctx, "conv", "conv_im2col", NULL,
        error);
    if (k == NULL)
      return FALSE;
    ncl_context_lock (conv->ctx);
    ok = ncl_kernel_set_args (k, error, sizeof (cl_mem), &in->buf,
        sizeof (cl_mem), &conv->col->buf, sizeof (gint), &in->n,
        sizeof (gint), &p->cin, sizeof (gint), &in->h, sizeof (gint), &in->w,
        sizeof (gint), &p->kh, sizeof (gint), &p->kw, sizeof (gint),
        &p->stride_h, sizeof (gint), &p->stride_w, sizeof (gint), &dil,
        sizeof (gint), &p->pad.top, sizeof (gint), &p->pad.left,
        sizeof (gint), &mode, sizeof (gint), &out->h, sizeof (gint), &out->w,
        sizeof (gint), &npad, 0)
        && ncl_context_run (conv->ctx, k, 2, gcol, NULL, error);
    ncl_context_unlock (conv->ctx);
    if (!ok)
      return FALSE;
    bm = conv->col->buf;
    lsize = npad;
    bstride = 0;
    ldb = npad;
  }

  k = ncl_context_get_kernel (conv->ctx, "conv", "conv2d_gemm",
      gemm_options (conv->ctx, gpx), error);
  if (k == NULL)
    return FALSE;
  global[0] = (p->cout + GEMM_CO_TILE - 1) / GEMM_CO_TILE;
  global[1] = (ncols + 16 * gpx - 1) / (16 * gpx);
  ncl_context_lock (conv->ctx);
  ok = ncl_kernel_set_args (k, error, sizeof (cl_mem), &bm, sizeof (cl_mem),
      &am, sizeof (cl_mem), &conv->bbuf, sizeof (cl_mem), &out->buf,
      sizeof (gint), &kdim, sizeof (gint), &p->cout, sizeof (gint), &ncols,
      sizeof (gint), &lsize, sizeof (gint), &bstride, sizeof (gint), &ldb,
      sizeof (gint), &ohw, sizeof (gint), &act, sizeof (gfloat), &p->alpha, 0)
      && ncl_context_run (conv->ctx, k, 2, global, NULL, error);
  ncl_context_unlock (conv->ctx);
  return ok;
}

/* conv2d_chblk on the padded input @src with the channel-vector weights
 * @wm; @res (nullable) is added before the activation. */
static gboolean
forward_chblk (NclConv * conv, const NclTensor * src, cl_mem wm,
    const NclTensor * res, gint act, gfloat alpha, NclTensor * out,
    const NclPadding * opad, NclTensor * outp, GError ** error)
{
  const NclConvParams *p = &conv->p;
  gint has_res = res != NULL, rows, cols, co = CHVEC_CO_TILE, unroll = 17;
  gboolean single = src->n == 1, plain = out != NULL, batch_first;
  cl_mem om = plain ? out->buf : outp->buf;
  cl_mem pm = opad != NULL ? outp->buf : om;
  cl_mem rm = res != NULL ? res->buf : om;
  gchar opts[384], padded_opts[128] = "";
  gint oh, ow;
  gsize global[3], local1[3] = { 1, 1, 1 };
  cl_kernel k;
  gboolean ok;

  /* @src is already padded */
  oh = (src->h - p->kh) / p->stride_h + 1;
  ow = (src->w - p->kw) / p->stride_w + 1;
  if (oh * ow <= (single ? CHBLK_WHOLE_MAP : CHBLK_WHOLE_MAP_BATCH)) {
    /* a tiny map (the face ResNet's 4x4 .. 1x1 layers of one image, 3x3 of
     * a batch, whose 256-channel weights do not fit the cache): the whole
     * map in one work-item of 16 channels, so each weight is read once per
     * image and there are twice as many work-items; the taps rolled, no
     * register to spare */
    rows = oh;
    cols = ow;
    co = 16;
    unroll = 1;
    wm = packed_on_demand (conv->ctx, p, 16, &conv->cbuf16, error);
    if (wm == NULL)
      return FALSE;
  } else {
    chblk_block (oh, ow, &rows, &cols);
  }
  /* on a batch, when a work-item's weights outweigh its image's input, the
   * images of one channel tile run one after the other, so the tile's
   * weights stay in the core's cache (3x3 256->256 at 4x4, 8 images: 1.46x;
   * 35x35 and 17x17 maps, where the input weighs more: 0.75-0.85x) */
  batch_first = !single && (gint64) p->kh * p->kw * co > (gint64) src->h
      * src->w;
  /* the geometry is compiled in */
  if (opad != NULL)
    g_snprintf (padded_opts, sizeof (padded_opts), " -DCB_OPT=%d -DCB_OPL=%d "
        "-DCB_OPH=%d -DCB_OPW=%d%s", opad->top, opad->left,
        oh + opad->top + opad->bottom, ow + opad->left + opad->right,
        plain ? "" : " -DCB_NO_PLAIN");
  g_snprintf (opts, sizeof (opts), "-DCB_R=%d -DCB_C=%d -DCB_H=%d -DCB_W=%d "
      "-DCB_OH=%d -DCB_OW=%d -DCB_KH=%d -DKW=%d -DCB_SH=%d -DCB_SW=%d "
      "-DCB_CO=%d -DCB_UNROLL=%d%s%s", rows, cols, src->h, src->w, oh, ow,
      p->kh, p->kw, p->stride_h, p->stride_w, co, unroll, padded_opts,
      batch_first ? " -DCB_BATCH_FIRST" : "");
  k = ncl_context_get_kernel (conv->ctx, "conv", "conv2d_chblk", opts,
      error);
  if (k == NULL)
    return FALSE;
  global[0] = (p->cout + co - 1) / co;
  global[1] = (gsize) ((oh + rows - 1) / rows) * ((ow + cols - 1) / cols);
  global[2] = src->n;
  if (batch_first) {
    global[2] = global[0];
    global[0] = src->n;
  }
  ncl_context_lock (conv->ctx);
  ok = ncl_kernel_set_args (k, error, sizeof (cl_mem), &src->buf,
      sizeof (cl_mem), &wm, sizeof (cl_mem), &conv->bbuf, sizeof (cl_mem),
      &rm, sizeof (cl_mem), &om, sizeof (cl_mem), &pm, sizeof (gint),
      &p->cin, sizeof (gint), &p->cout, sizeof (gint), &has_res,
      sizeof (gint), &act, sizeof (gfloat), &alpha, 0)
      && ncl_context_run (conv->ctx, k, 3, global, local1, error);
  ncl_context_unlock (conv->ctx);
  return ok;
}

/* Whether the channel-vector tile runs as blocks (conv2d_chblk) rather
 * than flattened pixel groups (conv2d_chvec) on @n images of @oh x @ow
 * outputs.  Measured (docs/kernels.md): blocks 1.1-1.7x faster from 8x8
 * maps up; a tiny map as one 16-channel block 1.4x faster at 4x4 on one
 * image, 1.3x at 3x3 on 8 images (batch-first order); flattened groups
 * 1.5-2x faster on 1x1 and 2x2 maps of a batch, where they pack pixels of
 * several images into one work-item. */
static gboolean
chblk_preferred (gint n, gint oh, gint ow)
{
  return n == 1 || oh * ow >= 9;
}

/* conv2d_chvec (@blk: conv2d_chblk) on @in (padded first if the layer
 * pads); @res (nullable) is added before the activation. */
static gboolean
forward_chvec (NclConv * conv, const NclTensor * in, const NclTensor * res,
    gint act, gfloat alpha, NclTensor * out, const NclPadding * opad,
    NclTensor * outp, gboolean blk, GError ** error)
{
  const NclConvParams *p = &conv->p;
  const NclTensor *src = in;
  gint npx, has_res = res != NULL, px;
  gchar opts[64];
  cl_mem wm = conv->wbuf, rm;
  gsize global[2], local1[2] = { 1, 1 };
  cl_kernel k;
  gboolean ok;

  if (conv->variant != CONV_CHVEC && conv->variant != CONV_CHBLK) {
    wm = packed_on_demand (conv->ctx, p, CHVEC_CO_TILE, &conv->cbuf, error);
    if (wm == NULL)
      return FALSE;
  }
  if (p->pad.top || p->pad.bottom || p->pad.left || p->pad.right) {
    if (!conv_pad (conv, in, error))
      return FALSE;
    src = conv->padded;
  }
  if (blk)
    return forward_chblk (conv, src, wm, res, act, alpha, out, opad, outp,
        error);
  npx = in->n * out->h * out->w;
  px = chvec_px (npx);
  /* the tile follows the map size */
  k = ncl_context_get_kernel (conv->ctx, "conv", "conv2d_chvec",
      chvec_options (p, px, opts, sizeof (opts)), error);
  if (k == NULL)
    return FALSE;
  rm = res != NULL ? res->buf : out->buf;
  global[0] = (p->cout + CHVEC_CO_TILE - 1) / CHVEC_CO_TILE;
  global[1] = (npx + px - 1) / px;
  ncl_context_lock (conv->ctx);
  ok = ncl_kernel_set_args (k, error, sizeof (cl_mem), &src->buf,
      sizeof (cl_mem), &wm, sizeof (cl_mem), &conv->bbuf, sizeof (cl_mem),
      &rm, sizeof (cl_mem), &out->buf, sizeof (gint), &p->cin, sizeof (gint),
      &src->h, sizeof (gint), &src->w, sizeof (gint), &p->cout,
      sizeof (gint), &out->h, sizeof (gint), &out->w, sizeof (gint), &p->kh,
      sizeof (gint), &p->stride_h, sizeof (gint), &p->stride_w,
      sizeof (gint), &npx, sizeof (gint), &has_res, sizeof (gint), &act,
      sizeof (gfloat), &alpha, 0)
      && ncl_context_run (conv->ctx, k, 2, global, local1, error);
  ncl_context_unlock (conv->ctx);
  return ok;
}

static gboolean conv_forward (NclConv * conv, const NclTensor * in,
    const NclTensor * res, NclActivation act, gfloat alpha, NclTensor * out,
    const NclPadding * opad, NclTensor * outp, GError ** error);

gboolean
ncl_conv_forward (NclConv * conv, const NclTensor * in, NclTensor * out,
    GError ** error)
{
  return conv_forward (conv, in, NULL, conv->p.act, conv->p.alpha, out, NULL,
      NULL, error);
}

gboolean
ncl_conv_forward_residual (NclConv * conv, const NclTensor * in,
    const NclTensor * res, NclActivation act, gfloat alpha, NclTensor * out,
    GError ** error)
{
  if (conv->p.act != NCL_ACT_NONE || res == out || res == in) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_FAILED,
        "conv: a residual needs a conv without activation and a residual "
        "tensor that is neither its input nor its output");
    return FALSE;
  }
  return conv_forward (conv, in, res, act, alpha, out, NULL, NULL, error);
}

/* The variant a forward on @n images with @oh x @ow outputs runs: the one
 * chosen at creation, or on CPU devices the channel-vector or GEMM kernel
 * for the map (see chvec_preferred, gemm_preferred). */
static ConvVariant
pick_variant (NclConv * conv, gint n, gint oh, gint ow)
{
  ConvVariant v = conv->variant;

  if (!conv->forced && (v == CONV_DIRECT || v == CONV_WINO4)
      && chvec_preferred (conv, ow))
    v = chblk_preferred (n, oh, ow) ? CONV_CHBLK : CONV_CHVEC;
  else if (!conv->forced && (v == CONV_DIRECT || v == CONV_WINO4)
      && gemm_preferred (&conv->p, v, n, ow))
    v = CONV_GEMM;
  return v;
}

gboolean
ncl_conv_can_pad_output (NclConv * conv, gint n, gint h, gint w)
{
  gint oh, ow;

  ncl_conv2d_out_size (&conv->p, h, w, &oh, &ow);
  return n > 0 && oh > 0 && ow > 0
      && pick_variant (conv, n, oh, ow) == CONV_CHBLK;
}

gboolean
ncl_conv_forward_padded_out (NclConv * conv, const NclTensor * in,
    const NclTensor * res, NclActivation act, gfloat alpha,
    const NclPadding * pad, NclTensor * padded, NclTensor * out,
    GError ** error)
{
  if ((res != NULL && (conv->p.act != NCL_ACT_NONE || res == out
              || res == padded || res == in)) || padded == in || out == in
      || padded == out || pad->top < 0 || pad->bottom < 0 || pad->left < 0
      || pad->right < 0) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_FAILED,
        "conv: a padded output needs non-negative padding and tensors "
        "distinct from the input, and a residual a conv without activation "
        "and a tensor that is neither its input nor an output");
    return FALSE;
  }
  if (!ncl_conv_can_pad_output (conv, in->n, in->h, in->w)) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_UNSUPPORTED,
        "conv: the %s kernel of this layer cannot write a padded output",
        variant_names[conv->variant]);
    return FALSE;
  }
  return conv_forward (conv, in, res, res != NULL ? act : conv->p.act,
      res != NULL ? alpha : conv->p.alpha, out, pad, padded, error);
}

/* out = act (conv (in) [+ res]); without @res, @act is the layer's own.
 * @opad (nullable, chblk only): the output is also written into the
 * interior of @outp, padded by @opad; @out may then be NULL. */
static gboolean
conv_forward (NclConv * conv, const NclTensor * in, const NclTensor * res,
    NclActivation act, gfloat alpha, NclTensor * out,
    const NclPadding * opad, NclTensor * outp, GError ** error)
{
  const NclConvParams *p = &conv->p;
  const NclTensor *src = in;
  gint oh, ow, h, w, n, iact = act, dil = MAX (p->dilation, 1);
  gsize global[3];
  cl_kernel k;
  gboolean ok;
  ConvVariant v;

  if (in->c != p->cin) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "conv: input has %d channels, expected %d", in->c, p->cin);
    return FALSE;
  }
  ncl_conv2d_out_size (p, in->h, in->w, &oh, &ow);
  if (oh <= 0 || ow <= 0) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "conv: input %dx%d is smaller than the %dx%d kernel", in->h, in->w,
        p->kh, p->kw);
    return FALSE;
  }
  if (out == in) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_FAILED,
        "conv: cannot run in place");
    return FALSE;
  }
  if (out != NULL && !ncl_tensor_reshape (out, in->n, p->cout, oh, ow,
          error))
    return FALSE;
  if (opad != NULL && !ncl_tensor_reshape (outp, in->n, p->cout, oh +
          opad->top + opad->bottom, ow + opad->left + opad->right, error))
    return FALSE;
  if (res != NULL && (res->n != in->n || res->c != p->cout || res->h != oh
          || res->w != ow)) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "conv: residual (%d, %d, %d, %d) differs from the output (%d, %d, "
        "%d, %d)", res->n, res->c, res->h, res->w, in->n, p->cout, oh, ow);
    return FALSE;
  }
  if (in->n == 0)
    return TRUE;

  v = pick_variant (conv, in->n, oh, ow);
  conv->used = v;
  if (v == CONV_CHVEC || v == CONV_CHBLK)
    return forward_chvec (conv, in, res, act, alpha, out, opad, outp,
        v == CONV_CHBLK, error);
  if (res != NULL) {
    /* the other kernels: the conv (no activation of its own), then the
     * add in place */
    return ncl_conv_forward (conv, in, out, error)
        && ncl_add_forward (conv->ctx, out, res, act, alpha, out, error);
  }
  if (v == CONV_DEPTHWISE)
    return forward_depthwise (conv, in, out, error);
  if (v == CONV_GEMM)
    return forward_gemm (conv, in, out, error);

  if (p->pad.top || p->pad.bottom || p->pad.left || p->pad.right) {
    if (!conv_pad (conv, in, error))
      return FALSE;
    src = conv->padded;
  }
  n = src->n;
  h = src->h;
  w = src->w;

  if (conv->variant == CONV_GENERIC) {
    gint cout_g = p->cout / p->groups;
    gint cot = MIN (4, cout_g);

    k = ncl_context_get_kernel (conv->ctx, "conv", "conv2d_generic",
        conv->options, error);
    if (k == NULL)
      return FALSE;
    global[0] = (gsize) p->groups * ((cout_g + cot - 1) / cot);
    global[1] = (ow + 15) / 16;
    global[2] = (gsize) n * oh;
    ncl_context_lock (conv->ctx);
    ok = ncl_kernel_set_args (k, error, sizeof (cl_mem), &src->buf,
        sizeof (cl_mem), &conv->wbuf, sizeof (cl_mem), &conv->bbuf,
        sizeof (cl_mem), &out->buf, sizeof (gint), &n, sizeof (gint), &p->cin,
        sizeof (gint), &h, sizeof (gint), &w, sizeof (gint), &p->cout,
        sizeof (gint), &oh, sizeof (gint), &ow, sizeof (gint), &p->kh,
        sizeof (gint), &p->kw, sizeof (gint), &p->stride_h, sizeof (gint),
        &p->stride_w, sizeof (gint), &dil, sizeof (gint), &p->groups,
        sizeof (gint), &iact, sizeof (gfloat), &alpha, 0)
        && ncl_context_run (conv->ctx, k, 3, global, NULL, error);
    ncl_context_unlock (conv->ctx);
    return ok;
  }

  if (conv->variant == CONV_WINO4) {
    gint th = (oh + 3) / 4, hbw = (ow + 31) / 32;
    gsize nhb = (gsize) n * th * hbw;
    gsize local1[1] = { 1 };

    k = ncl_context_get_kernel (conv->ctx, "conv", "conv2d_wino4",
        conv->options, error);
    if (k == NULL)
      return FALSE;
    global[0] = (nhb + 2 * conv->pxv - 1) / (2 * conv->pxv);
    ncl_context_lock (conv->ctx);
    ok = ncl_kernel_set_args (k, error, sizeof (cl_mem), &src->buf,
        sizeof (cl_mem), &conv->wbuf, sizeof (cl_mem), &conv->bbuf,
        sizeof (cl_mem), &out->buf, sizeof (gint), &n, sizeof (gint),
        &p->cin, sizeof (gint), &h, sizeof (gint), &w, sizeof (gint),
        &p->cout, sizeof (gint), &oh, sizeof (gint), &ow, sizeof (gint), &iact,
        sizeof (gfloat), &alpha, 0)
        && ncl_context_run (conv->ctx, k, 1, global, local1, error);
    ncl_context_unlock (conv->ctx);
    return ok;
  }

  k = ncl_context_get_kernel (conv->ctx, "conv", "conv2d_direct",
      conv->options, error);
  if (k == NULL)
    return FALSE;
  global[0] = conv->cout_padded / conv->co_tile;
  global[1] = (ow + 16 * conv->pxv - 1) / (16 * conv->pxv);
  global[2] = (gsize) n * oh;
  ncl_context_lock (conv->ctx);
  ok = ncl_kernel_set_args (k, error, sizeof (cl_mem), &src->buf,
      sizeof (cl_mem), &conv->wbuf, sizeof (cl_mem), &conv->bbuf,
      sizeof (cl_mem), &out->buf, sizeof (gint), &n, sizeof (gint), &p->cin,
      sizeof (gint), &h, sizeof (gint), &w, sizeof (gint), &p->cout,
      sizeof (gint), &oh, sizeof (gint), &ow, sizeof (gint), &p->kh,
      sizeof (gint), &p->stride_h, sizeof (gint), &iact, sizeof (gfloat),
      &alpha, 0)
      && ncl_context_run (conv->ctx, k, 3, global, NULL, error);
  ncl_context_unlock (conv->ctx);
  return ok;
}
