/* Style transfer on frames: the library half of the styletransfer element
 * and of `neuralcl style`. */
#pragma once

#include <neuralcl/model.h>
#include <neuralcl/image.h>

G_BEGIN_DECLS

typedef struct
{
  gchar *model;                 /* path or bundled style name */
  gchar *device;                /* device spec, NULL = default */
  gint inference_width;         /* 0 = frame width */
  gint inference_height;        /* 0 = frame height */
  gdouble strength;             /* 0..1 */
  gboolean preserve_colors;
} NclStyleSettings;

/* Defaults: model "mosaic", any device, frame size, strength 1. */
void ncl_style_settings_init (NclStyleSettings * s);
void ncl_style_settings_clear (NclStyleSettings * s);
/* Reads a style YAML (keys: model, device, inference-width,
 * inference-height, strength, preserve-colors) over @s; relative model paths
 * resolve against the file's directory. */
gboolean ncl_style_settings_load (NclStyleSettings * s, const gchar * path,
    GError ** error);

/* Directories searched for bundled styles, in order: $NEURALCL_STYLE_PATH
 * (colon-separated), $XDG_DATA_HOME/neuralcl/styles, the installed
 * datadir, the source tree's models/styles. (transfer full) */
gchar **ncl_style_get_search_path (void);
/* Resolves a name ("mosaic") or a path to a model file. (transfer full) */
gchar *ncl_style_resolve (const gchar * name_or_path, GError ** error);
/* Bundled style names, sorted (transfer full). */
gchar **ncl_style_list (void);

typedef struct _NclStylizer NclStylizer;

NclStylizer *ncl_stylizer_new (NclContext * ctx, NclModel * model,
    GError ** error);
void ncl_stylizer_free (NclStylizer * st);
NclModel *ncl_stylizer_get_model (const NclStylizer * st);
NclRunner *ncl_stylizer_get_runner (const NclStylizer * st);

/* Stylises @img in place. */
gboolean ncl_stylizer_process (NclStylizer * st, const NclStyleSettings * s,
    NclImage * img, GError ** error);

/* Runs the network alone on a (n, 3, h, w) host tensor, without clamping;
 * sizes that are not a multiple of the model's are reflect-padded up and
 * cropped back. @out has the input's shape. */
gboolean ncl_stylizer_run_tensor (NclStylizer * st, const gfloat * in,
    gint n, gint h, gint w, gfloat * out, GError ** error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (NclStylizer, ncl_stylizer_free)

G_END_DECLS
