/* Tensors: NCHW float32 device buffers. */
#include <neuralcl/tensor.h>
#include <neuralcl/error.h>
#include <string.h>

/* Enqueues zeros over the first @bytes of @buf. */
static gboolean
fill_zero (NclContext * ctx, cl_mem buf, gsize bytes, GError ** error)
{
  const gfloat zero = 0.0f;
  cl_int st = clEnqueueFillBuffer (ncl_context_get_queue (ctx), buf, &zero,
      sizeof (zero), 0, bytes, 0, NULL, NULL);

  if (st != CL_SUCCESS) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_OPENCL,
        "cannot clear a device buffer: %s", ncl_cl_status_name (st));
    return FALSE;
  }
  return TRUE;
}

static cl_mem
alloc_zeroed (NclContext * ctx, gsize floats, GError ** error)
{
  gsize bytes = (floats + NCL_TENSOR_SLACK) * sizeof (gfloat);
  cl_int st;
  cl_mem buf;

  buf = clCreateBuffer (ncl_context_get_cl_context (ctx), CL_MEM_READ_WRITE,
      bytes, NULL, &st);
  if (st != CL_SUCCESS) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_OPENCL,
        "cannot allocate %" G_GSIZE_FORMAT " bytes on the device: %s", bytes,
        ncl_cl_status_name (st));
    return NULL;
  }
  if (!fill_zero (ctx, buf, bytes, error)) {
    clReleaseMemObject (buf);
    return NULL;
  }
  return buf;
}

static gboolean
check_dims (gint n, gint c, gint h, gint w, GError ** error)
{
  if (n <= 0 || c <= 0 || h <= 0 || w <= 0 ||
      (gdouble) n * c * h * w > (gdouble) (G_MAXINT32 / 2)) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_SHAPE,
        "invalid tensor shape (%d, %d, %d, %d)", n, c, h, w);
    return FALSE;
  }
  return TRUE;
}

NclTensor *
ncl_tensor_new (NclContext * ctx, gint n, gint c, gint h, gint w,
    GError ** error)
{
  NclTensor *t;
  cl_mem buf;

  if (!check_dims (n, c, h, w, error))
    return NULL;
  buf = alloc_zeroed (ctx, (gsize) n * c * h * w, error);
  if (buf == NULL)
    return NULL;
  t = g_new0 (NclTensor, 1);
  t->ctx = ncl_context_ref (ctx);
  t->buf = buf;
  t->n = n;
  t->c = c;
  t->h = h;
  t->w = w;
  t->capacity = (gsize) n * c * h * w;
  return t;
}

void
ncl_tensor_free (NclTensor * t)
{
  if (t == NULL)
    return;
  if (t->buf)
    clReleaseMemObject (t->buf);
  ncl_context_unref (t->ctx);
  g_free (t);
}

gboolean
ncl_tensor_reshape (NclTensor * t, gint n, gint c, gint h, gint w,
    GError ** error)
{
  gsize need;

  if (!check_dims (n, c, h, w, error))
    return FALSE;
  need = (gsize) n * c * h * w;
  if (need > t->capacity) {
    cl_mem buf = alloc_zeroed (t->ctx, need, error);
    if (buf == NULL)
      return FALSE;
    clReleaseMemObject (t->buf);
    t->buf = buf;
    t->capacity = need;
  }
  t->n = n;
  t->c = c;
  t->h = h;
  t->w = w;
  return TRUE;
}

gboolean
ncl_tensor_zero (NclTensor * t, GError ** error)
{
  return fill_zero (t->ctx, t->buf, ncl_tensor_numel (t) * sizeof (gfloat),
      error);
}

gboolean
ncl_tensor_upload (NclTensor * t, const gfloat * data, GError ** error)
{
  cl_int st = clEnqueueWriteBuffer (ncl_context_get_queue (t->ctx), t->buf,
      CL_TRUE, 0, ncl_tensor_numel (t) * sizeof (gfloat), data, 0, NULL,
      NULL);

  if (st != CL_SUCCESS) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_OPENCL,
        "cannot upload a (%d, %d, %d, %d) tensor: %s", t->n, t->c, t->h, t->w,
        ncl_cl_status_name (st));
    return FALSE;
  }
  return TRUE;
}

gboolean
ncl_tensor_download (const NclTensor * t, gfloat * data, GError ** error)
{
  cl_int st = clEnqueueReadBuffer (ncl_context_get_queue (t->ctx), t->buf,
      CL_TRUE, 0, ncl_tensor_numel (t) * sizeof (gfloat), data, 0, NULL,
      NULL);

  if (st != CL_SUCCESS) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_OPENCL,
        "cannot download a (%d, %d, %d, %d) tensor: %s", t->n, t->c, t->h,
        t->w, ncl_cl_status_name (st));
    return FALSE;
  }
  return TRUE;
}

cl_mem
ncl_buffer_from_host (NclContext * ctx, const gfloat * data, gsize n,
    GError ** error)
{
  cl_int st;
  gsize bytes = (n + NCL_TENSOR_SLACK) * sizeof (gfloat);
  g_autofree gfloat *padded = g_new0 (gfloat, n + NCL_TENSOR_SLACK);
  cl_mem buf;

  if (n > 0)
    memcpy (padded, data, n * sizeof (gfloat));
  buf = clCreateBuffer (ncl_context_get_cl_context (ctx),
      CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, bytes, padded, &st);
  if (st != CL_SUCCESS) {
    g_set_error (error, NCL_ERROR, NCL_ERROR_OPENCL,
        "cannot allocate %" G_GSIZE_FORMAT " bytes on the device: %s", bytes,
        ncl_cl_status_name (st));
    return NULL;
  }
  return buf;
}
