/* OpenCL context: device choice, command queue, program build and caches. */
#pragma once

#include <glib.h>
#define CL_TARGET_OPENCL_VERSION 300
#include <CL/cl.h>

G_BEGIN_DECLS

typedef struct _NclContext NclContext;

/**
 * ncl_context_new:
 * @device_spec: (nullable): which device: NULL or "" picks $NEURALCL_DEVICE,
 *   then the first GPU, then the first device of any type.  Otherwise an
 *   index ("0", "1"; counted over all platforms), a type ("cpu", "gpu",
 *   "accelerator"), or a case-insensitive substring of the device or
 *   platform name ("pthread", "NVIDIA").
 *
 * Creates a context and an in-order queue on the chosen device.
 * Returns: (transfer full): the context, or NULL with @error set
 *   (NCL_ERROR_NO_DEVICE when nothing matches).
 */
NclContext *ncl_context_new (const gchar * device_spec, GError ** error);

/* Returns a shared context for @device_spec (one per spec per process). */
NclContext *ncl_context_get_shared (const gchar * device_spec,
    GError ** error);

NclContext *ncl_context_ref (NclContext * ctx);
void ncl_context_unref (NclContext * ctx);

const gchar *ncl_context_get_device_name (const NclContext * ctx);
const gchar *ncl_context_get_platform_name (const NclContext * ctx);
cl_context ncl_context_get_cl_context (const NclContext * ctx);
cl_device_id ncl_context_get_device (const NclContext * ctx);
cl_command_queue ncl_context_get_queue (const NclContext * ctx);
gboolean ncl_context_is_cpu (const NclContext * ctx);

/**
 * ncl_context_get_kernel:
 * @program: kernel family, the file name in kernels/ without ".cl"
 * @kernel: kernel function name
 * @options: (nullable): extra build options, usually "-DNAME=value" tunables
 *
 * Builds (once per @program and @options, with the on-disk binary cache) and
 * returns a kernel.  The kernel object is cached and shared: set its
 * arguments and enqueue it between ncl_context_lock() and
 * ncl_context_unlock().
 * Returns: (transfer none): the kernel, or NULL with @error set
 *   (NCL_ERROR_BUILD carries the build log).
 */
cl_kernel ncl_context_get_kernel (NclContext * ctx, const gchar * program,
    const gchar * kernel, const gchar * options, GError ** error);

void ncl_context_lock (NclContext * ctx);
void ncl_context_unlock (NclContext * ctx);

/* Sets kernel arguments from a list of (size, pointer) pairs ended by 0. */
gboolean ncl_kernel_set_args (cl_kernel kernel, GError ** error, ...);

/* Enqueues @kernel over @work_dim global sizes (rounded up to @local when
 * @local is non-NULL).  Kernels check their own bounds. */
gboolean ncl_context_run (NclContext * ctx, cl_kernel kernel, guint work_dim,
    const gsize * global, const gsize * local, GError ** error);

/* Waits for the queue to drain. */
gboolean ncl_context_finish (NclContext * ctx, GError ** error);

/* One line per device: "INDEX: DEVICE (PLATFORM, TYPE)". */
gchar *ncl_context_list_devices (GError ** error);

/* Statistics of the on-disk program cache, for tests and debugging. */
void ncl_context_get_cache_stats (const NclContext * ctx, guint * hits,
    guint * misses);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (NclContext, ncl_context_unref)

G_END_DECLS
