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
#define ACT_RELU6 5

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
    case ACT_RELU6:
      return clamp (x, 0.0f, 6.0f);
    default:
      return x;
  }
}

/* ncl_act() over 16 lanes, same formulas. */
inline float16
ncl_act16 (int act, float alpha, float16 x)
{
  switch (act) {
    case ACT_RELU:
      return fmax (x, (float16) (0.0f));
    case ACT_LEAKY_RELU:
      return select (alpha * x, x, x > (float16) (0.0f));
    case ACT_SIGMOID:
      return (float16) (1.0f) / ((float16) (1.0f) + exp (-x));
    case ACT_TANH:
      return tanh (x);
    case ACT_RELU6:
      return clamp (x, (float16) (0.0f), (float16) (6.0f));
    default:
      return x;
  }
}
