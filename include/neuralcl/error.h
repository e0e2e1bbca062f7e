/* Error domain of the neuralcl library. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define NCL_ERROR (ncl_error_quark ())

/**
 * NclError:
 * @NCL_ERROR_FAILED: anything not covered below
 * @NCL_ERROR_NOT_FOUND: a file, model, style or device does not exist
 * @NCL_ERROR_IO: a file exists but cannot be read or written
 * @NCL_ERROR_NO_DEVICE: no OpenCL platform or no device matches
 * @NCL_ERROR_OPENCL: an OpenCL call failed at run time
 * @NCL_ERROR_BUILD: an OpenCL program failed to build (message has the log)
 * @NCL_ERROR_INVALID_MODEL: a weights file or model graph is malformed
 * @NCL_ERROR_INVALID_CONFIG: a YAML file is malformed or has a bad value
 * @NCL_ERROR_SHAPE: tensor shapes do not fit together
 * @NCL_ERROR_UNSUPPORTED: valid, but not supported by this build
 */
typedef enum
{
  NCL_ERROR_FAILED,
  NCL_ERROR_NOT_FOUND,
  NCL_ERROR_IO,
  NCL_ERROR_NO_DEVICE,
  NCL_ERROR_OPENCL,
  NCL_ERROR_BUILD,
  NCL_ERROR_INVALID_MODEL,
  NCL_ERROR_INVALID_CONFIG,
  NCL_ERROR_SHAPE,
  NCL_ERROR_UNSUPPORTED,
} NclError;

GQuark ncl_error_quark (void);

/* Name of an OpenCL status code, e.g. "CL_OUT_OF_RESOURCES". */
const gchar *ncl_cl_status_name (gint status);

G_END_DECLS
