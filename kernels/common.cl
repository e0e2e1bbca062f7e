/* common.cl: prepended to every program (after the -D tunables).
 *
 * Layout conventions: tensors are NCHW float32, addressed as
 * ((n * C + c) * H + y) * W + x.  Every kernel checks its own bounds so the
 * host may round global sizes up.  Activation codes match NclActivation. */

#define ACT_NONE 0
#define ACT_RELU 1
#define ACT_LEAKY_RELU 2
#define ACT_SIGMOID 3
#define ACT_TANH 4

inline float
ncl_act (int act, float alpha, float x)
{
  switch (act) {
    case ACT_RELU:
      return fmax (x, 0.0f);
    case ACT_LEAKY_RELU:
      return x > 0.0f ? x : alpha * x;
    case ACT_SIGMOID:
      return 1.0f / (1.0f + exp (-x));
    case ACT_TANH:
      return tanh (x);
    default:
      return x;
  }
}
