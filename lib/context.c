/* OpenCL context: device choice, queue, program build with an in-memory and
 * an on-disk binary cache.
 *
 * On-disk cache: $XDG_CACHE_HOME/neuralcl/kernels/<sha256>.bin where the
 * key hashes NCL_CACHE_FORMAT, the full program source (tunables + common.cl
 * + <op>.cl), the build options, the device name, the driver version and the
 * platform version.  NEURALCL_KERNEL_CACHE=0 disables it; any failure to
 * read or write it falls back to a normal build.  NEURALCL_KERNEL_DIR loads
 * kernel sources from that directory instead of the embedded copies. */
#include <neuralcl/context.h>
#include <neuralcl/error.h>

#include <errno.h>
#include <stdarg.h>
#include <string.h>

#define NCL_CACHE_FORMAT "neuralcl-program-cache-1"

typedef struct
{
  const char *name;
  const char *source;
} NclEmbeddedKernel;

extern const NclEmbeddedKernel ncl_embedded_kernels[];

struct _NclContext
{
  gint ref_count;
  cl_platform_id platform;
  cl_device_id device;
  cl_context context;
  cl_command_queue queue;
  gchar *device_name;
  gchar *platform_name;
  gchar *driver_version;
  gchar *platform_version;
  cl_device_type type;

  GRecMutex lock;               /* kernel args + enqueue */
  GMutex cache_lock;            /* the two tables below */
  GHashTable *programs;         /* "program\noptions" -> cl_program */
  GHashTable *kernels;          /* "program\noptions\nkernel" -> cl_kernel */
  guint cache_hits, cache_misses;
};

static void
release_program (gpointer p)
{
  clReleaseProgram ((cl_program) p);
}

static void
release_kernel (gpointer k)
{
  clReleaseKernel ((cl_kernel) k);
}

static GMutex shared_lock;
static GHashTable *shared_contexts;     /* spec -> NclContext */

static gchar *
device_info_string (cl_device_id dev, cl_device_info what)
{
  gsize size = 0;
  gchar *s;

  if (clGetDeviceInfo (dev, what, 0, NULL, &size) != CL_SUCCESS || size == 0)
    return g_strdup ("");
  s = g_malloc0 (size + 1);
  clGetDeviceInfo (dev, what, size, s, NULL);
  return g_strstrip (s);
}

static gchar *
platform_info_string (cl_platform_id p, cl_platform_info what)
{
  gsize size = 0;
  gchar *s;

  if (clGetPlatformInfo (p, what, 0, NULL, &size) != CL_SUCCESS || size == 0)
    return g_strdup ("");
  s = g_malloc0 (size + 1);
  clGetPlatformInfo (p, what, size, s, NULL);
  return g_strstrip (s);
}

typedef struct
{
  cl_platform_id platform;
  cl_device_id device;
  cl_device_type type;
  gchar *name;
  gchar *platform_name;
} DeviceEntry;

static void
device_entry_clear (gpointer p)
{
  DeviceEntry *e = p;

  g_free (e->name);
  g_free (e->platform_name);
}

/* All devices of all platforms, in platform order. */
static GArray *
enumerate_devices (GError ** error)
{
  cl_uint n_platforms = 0;
  cl_platform_id *platforms;
  GArray *out;
  cl_int st;

  st = clGetPlatformIDs (0, NULL, &n_platforms);
  if (st != CL_SUCCESS || n_platforms == 0) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_NO_DEVICE,
        "no OpenCL platform found (%s); install an OpenCL driver such as "
        "pocl-opencl-icd", st != CL_SUCCESS ? ncl_cl_status_name (st) :
        "0 platforms");
    return NULL;
  }
  platforms = g_new0 (cl_platform_id, n_platforms);
  clGetPlatformIDs (n_platforms, platforms, NULL);

  out = g_array_new (FALSE, TRUE, sizeof (DeviceEntry));
  g_array_set_clear_func (out, device_entry_clear);
  for (cl_uint p = 0; p < n_platforms; p++) {
    cl_uint n_dev = 0;
    cl_device_id *devs;

    if (clGetDeviceIDs (platforms[p], CL_DEVICE_TYPE_ALL, 0, NULL,
            &n_dev) != CL_SUCCESS || n_dev == 0)
      continue;
    devs = g_new0 (cl_device_id, n_dev);
    clGetDeviceIDs (platforms[p], CL_DEVICE_TYPE_ALL, n_dev, devs, NULL);
    for (cl_uint d = 0; d < n_dev; d++) {
      DeviceEntry e = { 0 };

      e.platform = platforms[p];
      e.device = devs[d];
      clGetDeviceInfo (devs[d], CL_DEVICE_TYPE, sizeof (e.type), &e.type,
          NULL);
      e.name = device_info_string (devs[d], CL_DEVICE_NAME);
      e.platform_name = platform_info_string (platforms[p], CL_PLATFORM_NAME);
      g_array_append_val (out, e);
    }
    g_free (devs);
  }
  g_free (platforms);

  if (out->len == 0) {
    g_array_unref (out);
    g_set_error (error, NCL_ERROR, NCL_ERROR_NO_DEVICE,
        "OpenCL platforms found, but no devices");
    return NULL;
  }
  return out;
}

static const gchar *
type_name (cl_device_type t)
{
  if (t & CL_DEVICE_TYPE_GPU)
    return "gpu";
  if (t & CL_DEVICE_TYPE_CPU)
    return "cpu";
  if (t & CL_DEVICE_TYPE_ACCELERATOR)
    return "accelerator";
  return "other";
}

static gint
choose_device (GArray * devs, const gchar * spec, GError ** error)
{
  gchar *end = NULL;
  gint64 idx;

  if (spec == NULL || *spec == '\0') {
    for (guint i = 0; i < devs->len; i++)
      if (g_array_index (devs, DeviceEntry, i).type & CL_DEVICE_TYPE_GPU)
        return i;
    return 0;
  }

  idx = g_ascii_strtoll (spec, &end, 10);
  if (end != spec && *end == '\0') {
    if (idx < 0 || idx >= devs->len) {
      g_set_error (error, NCL_ERROR, NCL_ERROR_NO_DEVICE,
          "OpenCL device index %s out of range: %u device(s) found", spec,
          devs->len);
      return -1;
    }
    return (gint) idx;
  }

  for (guint i = 0; i < devs->len; i++) {
    DeviceEntry *e = &g_array_index (devs, DeviceEntry, i);
    if (g_ascii_strcasecmp (spec, type_name (e->type)) == 0)
      return i;
  }
  for (guint i = 0; i < devs->len; i++) {
    DeviceEntry *e = &g_array_index (devs, DeviceEntry, i);
    g_autofree gchar *hay = g_ascii_strdown (e->name, -1);
    g_autofree gchar *hay2 = g_ascii_strdown (e->platform_name, -1);
    g_autofree gchar *needle = g_ascii_strdown (spec, -1);

    if (strstr (hay, needle) || strstr (hay2, needle))
      return i;
  }
  g_set_error (error, NCL_ERROR, NCL_ERROR_NO_DEVICE,
      "no OpenCL device matches '%s' (try an index, 'cpu', 'gpu' or a name; "
      "`neuralcl devices` lists them)", spec);
  return -1;
}

gchar *
ncl_context_list_devices (GError ** error)
{
  g_autoptr (GArray) devs = enumerate_devices (error);
  GString *s;

  if (devs == NULL)
    return NULL;
  s = g_string_new (NULL);
  for (guint i = 0; i < devs->len; i++) {
    DeviceEntry *e = &g_array_index (devs, DeviceEntry, i);
    g_string_append_printf (s, "%u: %s (%s, %s)\n", i, e->name,
        e->platform_name, type_name (e->type));
  }
  return g_string_free (s, FALSE);
}

NclContext *
ncl_context_new (const gchar * device_spec, GError ** error)
{
  g_autoptr (GArray) devs = NULL;
  DeviceEntry *e;
  NclContext *ctx;
  cl_context_properties props[3];
  cl_int st;
  gint i;

  if (device_spec == NULL || *device_spec == '\0')
    device_spec = g_getenv ("NEURALCL_DEVICE");

  devs = enumerate_devices (error);
  if (devs == NULL)
    return NULL;
  i = choose_device (devs, device_spec, error);
  if (i < 0)
    return NULL;
  e = &g_array_index (devs, DeviceEntry, i);

  props[0] = CL_CONTEXT_PLATFORM;
  props[1] = (cl_context_properties) e->platform;
  props[2] = 0;

  ctx = g_new0 (NclContext, 1);
  ctx->ref_count = 1;
  ctx->platform = e->platform;
  ctx->device = e->device;
  ctx->type = e->type;
  ctx->device_name = g_strdup (e->name);
  ctx->platform_name = g_strdup (e->platform_name);
  ctx->driver_version = device_info_string (e->device, CL_DRIVER_VERSION);
  ctx->platform_version = platform_info_string (e->platform,
      CL_PLATFORM_VERSION);
  g_rec_mutex_init (&ctx->lock);
  g_mutex_init (&ctx->cache_lock);
  ctx->programs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      release_program);
  ctx->kernels = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      release_kernel);

  ctx->context = clCreateContext (props, 1, &e->device, NULL, NULL, &st);
  if (st != CL_SUCCESS) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_NO_DEVICE,
        "cannot create an OpenCL context on '%s': %s", e->name,
        ncl_cl_status_name (st));
    ncl_context_unref (ctx);
    return NULL;
  }
  ctx->queue = clCreateCommandQueueWithProperties (ctx->context, e->device,
      NULL, &st);
  if (st != CL_SUCCESS) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_NO_DEVICE,
        "cannot create an OpenCL queue on '%s': %s", e->name,
        ncl_cl_status_name (st));
    ncl_context_unref (ctx);
    return NULL;
  }
  g_debug ("OpenCL device: %s (%s, driver %s)", ctx->device_name,
      ctx->platform_name, ctx->driver_version);
  return ctx;
}

NclContext *
ncl_context_get_shared (const gchar * device_spec, GError ** error)
{
  const gchar *key;
  NclContext *ctx;

  if (device_spec == NULL || *device_spec == '\0')
    device_spec = g_getenv ("NEURALCL_DEVICE");
  key = device_spec ? device_spec : "";

  g_mutex_lock (&shared_lock);
  if (shared_contexts == NULL)
    shared_contexts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
        NULL);
  ctx = g_hash_table_lookup (shared_contexts, key);
  if (ctx != NULL) {
    ncl_context_ref (ctx);
  } else {
    ctx = ncl_context_new (device_spec, error);
    /* the table keeps one reference for the life of the process */
    if (ctx != NULL)
      g_hash_table_insert (shared_contexts, g_strdup (key),
          ncl_context_ref (ctx));
  }
  g_mutex_unlock (&shared_lock);
  return ctx;
}

NclContext *
ncl_context_ref (NclContext * ctx)
{
  g_atomic_int_inc (&ctx->ref_count);
  return ctx;
}

void
ncl_context_unref (NclContext * ctx)
{
  if (ctx == NULL || !g_atomic_int_dec_and_test (&ctx->ref_count))
    return;
  if (ctx->queue)
    clFinish (ctx->queue);
  g_hash_table_destroy (ctx->kernels);
  g_hash_table_destroy (ctx->programs);
  if (ctx->queue)
    clReleaseCommandQueue (ctx->queue);
  if (ctx->context)
    clReleaseContext (ctx->context);
  g_rec_mutex_clear (&ctx->lock);
  g_mutex_clear (&ctx->cache_lock);
  g_free (ctx->device_name);
  g_free (ctx->platform_name);
  g_free (ctx->driver_version);
  g_free (ctx->platform_version);
  g_free (ctx);
}

const gchar *
ncl_context_get_device_name (const NclContext * ctx)
{
  return ctx->device_name;
}

const gchar *
ncl_context_get_platform_name (const NclContext * ctx)
{
  return ctx->platform_name;
}

cl_context
ncl_context_get_cl_context (const NclContext * ctx)
{
  return ctx->context;
}

cl_device_id
ncl_context_get_device (const NclContext * ctx)
{
  return ctx->device;
}

cl_command_queue
ncl_context_get_queue (const NclContext * ctx)
{
  return ctx->queue;
}

gboolean
ncl_context_is_cpu (const NclContext * ctx)
{
  return (ctx->type & CL_DEVICE_TYPE_CPU) != 0;
}

void
ncl_context_lock (NclContext * ctx)
{
  g_rec_mutex_lock (&ctx->lock);
}

void
ncl_context_unlock (NclContext * ctx)
{
  g_rec_mutex_unlock (&ctx->lock);
}

void
ncl_context_get_cache_stats (const NclContext * ctx, guint * hits,
    guint * misses)
{
  if (hits)
    *hits = ctx->cache_hits;
  if (misses)
    *misses = ctx->cache_misses;
}

/* ---- program sources ---------------------------------------------------- */

static gchar *
kernel_source (const gchar * name, GError ** error)
{
  const gchar *dir = g_getenv ("NEURALCL_KERNEL_DIR");

  if (dir != NULL && *dir != '\0') {
    g_autofree gchar *file = g_strconcat (name, ".cl", NULL);
    g_autofree gchar *path = g_build_filename (dir, file, NULL);
    gchar *text = NULL;

    if (!g_file_get_contents (path, &text, NULL, error))
      return NULL;
    return text;
  }
  for (const NclEmbeddedKernel * k = ncl_embedded_kernels; k->name; k++)
    if (strcmp (k->name, name) == 0)
      return g_strdup (k->source);
  g_set_error (error, NCL_ERROR, NCL_ERROR_NOT_FOUND,
      "no kernel program named '%s'", name);
  return NULL;
}

static gchar *
cache_path (NclContext * ctx, const gchar * source, const gchar * options)
{
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autofree gchar *dir = NULL;
  gchar *file;
  const gchar *parts[] = { NCL_CACHE_FORMAT, source, options,
    ctx->device_name, ctx->driver_version, ctx->platform_version,
    ctx->platform_name
  };

  for (guint i = 0; i < G_N_ELEMENTS (parts); i++) {
    g_checksum_update (sum, (const guchar *) parts[i], strlen (parts[i]));
    g_checksum_update (sum, (const guchar *) "\n\0", 2);
  }
  dir = g_build_filename (g_get_user_cache_dir (), "neuralcl", "kernels",
      NULL);
  file = g_strconcat (g_checksum_get_string (sum), ".bin", NULL);
  return g_build_filename (dir, file, NULL);
}

static gboolean
cache_enabled (void)
{
  const gchar *v = g_getenv ("NEURALCL_KERNEL_CACHE");
  return !(v && (g_str_equal (v, "0") || g_ascii_strcasecmp (v, "off") == 0));
}

static cl_program
program_from_cache (NclContext * ctx, const gchar * path, const gchar * opts)
{
  g_autofree gchar *data = NULL;
  gsize len = 0;
  const unsigned char *bin;
  cl_int st, bst;
  cl_program prog;

  if (!g_file_get_contents (path, &data, &len, NULL) || len == 0)
    return NULL;
  bin = (const unsigned char *) data;
  prog = clCreateProgramWithBinary (ctx->context, 1, &ctx->device, &len, &bin,
      &bst, &st);
  if (st != CL_SUCCESS || bst != CL_SUCCESS)
    return NULL;
  if (clBuildProgram (prog, 1, &ctx->device, opts, NULL, NULL) != CL_SUCCESS) {
    clReleaseProgram (prog);
    return NULL;
  }
  return prog;
}

static void
program_to_cache (NclContext * ctx, cl_program prog, const gchar * path)
{
  gsize size = 0;
  g_autofree unsigned char *bin = NULL;
  g_autofree gchar *dir = g_path_get_dirname (path);
  g_autoptr (GError) error = NULL;

  if (clGetProgramInfo (prog, CL_PROGRAM_BINARY_SIZES, sizeof (size), &size,
          NULL) != CL_SUCCESS || size == 0)
    return;
  bin = g_malloc (size);
  if (clGetProgramInfo (prog, CL_PROGRAM_BINARIES, sizeof (bin), &bin,
          NULL) != CL_SUCCESS)
    return;
  if (g_mkdir_with_parents (dir, 0755) != 0 ||
      !g_file_set_contents (path, (const gchar *) bin, size, &error))
    g_debug ("kernel cache not written (%s): %s", path,
        error ? error->message : g_strerror (errno));
}

static cl_program
build_program (NclContext * ctx, const gchar * name, const gchar * options,
    GError ** error)
{
  g_autofree gchar *common = NULL;
  g_autofree gchar *body = NULL;
  g_autofree gchar *source = NULL;
  g_autofree gchar *path = NULL;
  g_autofree gchar *opts = NULL;
  const gchar *src;
  cl_program prog;
  cl_int st;

  common = kernel_source ("common", error);
  if (common == NULL)
    return NULL;
  body = kernel_source (name, error);
  if (body == NULL)
    return NULL;
  source = g_strconcat (common, "\n#line 1 \"", name, ".cl\"\n", body, NULL);
  opts = g_strdup_printf ("-cl-std=CL1.2 %s", options ? options : "");

  if (cache_enabled ()) {
    path = cache_path (ctx, source, opts);
    prog = program_from_cache (ctx, path, opts);
    if (prog != NULL) {
      ctx->cache_hits++;
      g_debug ("kernel cache hit: %s [%s]", name, opts);
      return prog;
    }
    ctx->cache_misses++;
    g_debug ("kernel cache miss: %s [%s]", name, opts);
  }

  src = source;
  prog = clCreateProgramWithSource (ctx->context, 1, &src, NULL, &st);
  if (st != CL_SUCCESS) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_BUILD,
        "cannot create OpenCL program '%s': %s", name,
        ncl_cl_status_name (st));
    return NULL;
  }
  st = clBuildProgram (prog, 1, &ctx->device, opts, NULL, NULL);
  if (st != CL_SUCCESS) {
    gsize log_size = 0;
    g_autofree gchar *log = NULL;

    clGetProgramBuildInfo (prog, ctx->device, CL_PROGRAM_BUILD_LOG, 0, NULL,
        &log_size);
    log = g_malloc0 (log_size + 1);
    clGetProgramBuildInfo (prog, ctx->device, CL_PROGRAM_BUILD_LOG, log_size,
        log, NULL);
    g_set_error (error, NCL_ERROR, NCL_ERROR_BUILD,
        "OpenCL program '%s' failed to build on '%s' (%s), options '%s'; "
        "build log:\n%s", name, ctx->device_name, ncl_cl_status_name (st),
        opts, g_strstrip (log));
    clReleaseProgram (prog);
    return NULL;
  }
  if (path != NULL)
    program_to_cache (ctx, prog, path);
  return prog;
}

cl_kernel
ncl_context_get_kernel (NclContext * ctx, const gchar * program,
    const gchar * kernel, const gchar * options, GError ** error)
{
  g_autofree gchar *pkey = g_strconcat (program, "\n", options ? options : "",
      NULL);
  g_autofree gchar *kkey = g_strconcat (pkey, "\n", kernel, NULL);
  cl_program prog;
  cl_kernel k;
  cl_int st;

  g_mutex_lock (&ctx->cache_lock);
  k = g_hash_table_lookup (ctx->kernels, kkey);
  if (k != NULL)
    goto out;

  prog = g_hash_table_lookup (ctx->programs, pkey);
  if (prog == NULL) {
    prog = build_program (ctx, program, options, error);
    if (prog == NULL)
      goto out;
    g_hash_table_insert (ctx->programs, g_strdup (pkey), prog);
  }
  k = clCreateKernel (prog, kernel, &st);
  if (st != CL_SUCCESS) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_BUILD,
        "no kernel '%s' in OpenCL program '%s': %s", kernel, program,
        ncl_cl_status_name (st));
    k = NULL;
    goto out;
  }
  g_hash_table_insert (ctx->kernels, g_strdup (kkey), k);
out:
  g_mutex_unlock (&ctx->cache_lock);
  return k;
}

gboolean
ncl_kernel_set_args (cl_kernel kernel, GError ** error, ...)
{
  va_list ap;
  cl_uint i = 0;
  gsize size;

  va_start (ap, error);
  /* Sizes are read as gsize but only their low 32 bits are used, so a plain
   * int 0 terminator (which may be passed as 4 bytes) is still read as 0. */
  while ((size = (guint32) va_arg (ap, gsize)) != 0) {
    const void *ptr = va_arg (ap, const void *);
    cl_int st = clSetKernelArg (kernel, i, size, ptr);

    if (st != CL_SUCCESS) {
      gchar name[128] = "";
      clGetKernelInfo (kernel, CL_KERNEL_FUNCTION_NAME, sizeof (name) - 1,
          name, NULL);
      g_set_error (error, NCL_ERROR, NCL_ERROR_OPENCL,
          "kernel '%s': argument %u: %s", name, i, ncl_cl_status_name (st));
      va_end (ap);
      return FALSE;
    }
    i++;
  }
  va_end (ap);
  return TRUE;
}

gboolean
ncl_context_run (NclContext * ctx, cl_kernel kernel, guint work_dim,
    const gsize * global, const gsize * local, GError ** error)
{
  gsize g[3];
  cl_int st;

  for (guint d = 0; d < work_dim; d++) {
    g[d] = MAX (global[d], 1);
    if (local != NULL && local[d] > 0)
      g[d] = (g[d] + local[d] - 1) / local[d] * local[d];
  }
  st = clEnqueueNDRangeKernel (ctx->queue, kernel, work_dim, NULL, g, local,
      0, NULL, NULL);
  if (st != CL_SUCCESS) {
    gchar name[128] = "";
    clGetKernelInfo (kernel, CL_KERNEL_FUNCTION_NAME, sizeof (name) - 1, name,
        NULL);
    g_set_error (error, NCL_ERROR, NCL_ERROR_OPENCL,
        "cannot run kernel '%s': %s", name, ncl_cl_status_name (st));
    return FALSE;
  }
  return TRUE;
}

gboolean
ncl_context_finish (NclContext * ctx, GError ** error)
{
  cl_int st = clFinish (ctx->queue);

  if (st != CL_SUCCESS) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_OPENCL,
        "OpenCL queue failed: %s", ncl_cl_status_name (st));
    return FALSE;
  }
  return TRUE;
}
