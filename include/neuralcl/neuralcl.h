/* gst-neuralcl: OpenCL inference for video.  Umbrella header. */
#pragma once

#include <neuralcl/error.h>
#include <neuralcl/context.h>
#include <neuralcl/tensor.h>
#include <neuralcl/layers.h>
#include <neuralcl/backward.h>
#include <neuralcl/safetensors.h>
#include <neuralcl/config.h>
#include <neuralcl/model.h>
#include <neuralcl/image.h>
#include <neuralcl/style.h>
#include <neuralcl/face.h>
#include <neuralcl/gallery.h>
#include <neuralcl/tracker.h>
#include <neuralcl/tfjs.h>
#include <neuralcl/face-config.h>
#include <neuralcl/metric.h>
