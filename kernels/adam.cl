/* adam.cl: one Adam / AdamW step over a flat parameter buffer.
 *
 * param, grad, m, v: @n floats each.  Bias corrections come from the host:
 * c1 = 1 / (1 - beta1^t), c2 = 1 / sqrt (1 - beta2^t).  Exactly one of
 * wd_l2 (added to the gradient) and wd_dec (decoupled decay) is non-zero.
 * One work-item per 16 values (float16); the last, partial group goes
 * through the same formula lane by lane.  Global size: ceil (n / 16). */

inline float16
adam16 (float16 x, float16 g, __private float16 * m, __private float16 * v,
    float lr, float beta1, float beta2, float eps, float wd_l2, float wd_dec,
    float c1, float c2)
{
  g = mad ((float16) (wd_l2), x, g);
  *m = beta1 * *m + (1.0f - beta1) * g;
  *v = beta2 * *v + (1.0f - beta2) * g * g;
  x -= lr * wd_dec * x;
  return x - lr * (*m * c1) / (sqrt (*v) * c2 + eps);
}

__kernel void
adam_step_16 (__global float *param, __global const float *grad,
    __global float *m, __global float *v, const int n, const float lr,
    const float beta1, const float beta2, const float eps, const float wd_l2,
    const float wd_dec, const float grad_scale, const float c1,
    const float c2)
{
  const int i = get_global_id (0) * 16;

  if (i >= n)
    return;
  if (i + 16 <= n) {
    float16 mv = vload16 (0, m + i), vv = vload16 (0, v + i);
    float16 x = adam16 (vload16 (0, param + i),
        vload16 (0, grad + i) * grad_scale, &mv, &vv, lr, beta1, beta2, eps,
        wd_l2, wd_dec, c1, c2);

    vstore16 (x, 0, param + i);
    vstore16 (mv, 0, m + i);
    vstore16 (vv, 0, v + i);
  } else {
    for (int j = i; j < n; j++) {
      float g = grad[j] * grad_scale + wd_l2 * param[j];
      float x = param[j];
      float mj = beta1 * m[j] + (1.0f - beta1) * g;
      float vj = beta2 * v[j] + (1.0f - beta2) * g * g;

      x -= lr * wd_dec * x;
      param[j] = x - lr * (mj * c1) / (sqrt (vj) * c2 + eps);
      m[j] = mj;
      v[j] = vj;
    }
  }
}
