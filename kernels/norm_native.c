/* RMSNorm for the few rows of a decode step, in fp32 (x, h, gate, weight and outputs contiguous fp32).
 *
 * A decoded token normalises 93 vectors of 768-1536 values on h-350m; PyTorch's CPU path makes
 * each one 8-12 small ops (square, mean, add, rsqrt, products, casts), ~40 us apiece, over a
 * millisecond of dispatch for microseconds of arithmetic. Here each norm is one call, one thread.
 *
 *     rms_norm:      out = w * x / sqrt(mean(x^2) + eps)
 *     add_rms_norm:  total = x + m * h;  out = rms_norm(total)
 *     gated_rms_norm: g = x * silu(gate), normalised over each of `groups` blocks of d / groups channels
 */
#include "native_common.h"

static float inverse_rms(const float *x, int64_t d, float eps) {
    float squares = 0.0f;
#pragma omp simd reduction(+ : squares)
    for (int64_t i = 0; i < d; i++)
        squares += x[i] * x[i];
    return 1.0f / sqrtf(squares / (float)d + eps);
}

static void scaled(const float *x, const float *w, float scale, float *out, int64_t d) {
#pragma omp simd
    for (int64_t i = 0; i < d; i++)
        out[i] = w[i] * (x[i] * scale);
}

void tome_rms_norm(const float *x, const float *w, float *out, int64_t rows, int64_t d, float eps) {
    for (int64_t r = 0; r < rows; r++)
        scaled(x + r * d, w, inverse_rms(x + r * d, d, eps), out + r * d, d);
}

void tome_add_rms_norm(const float *x, const float *h, float multiplier, const float *w, float *total, float *out,
                       int64_t rows, int64_t d, float eps) {
    for (int64_t r = 0; r < rows; r++) {
        float *t = total + r * d;
#pragma omp simd
        for (int64_t i = 0; i < d; i++)
            t[i] = x[r * d + i] + multiplier * h[r * d + i];
        scaled(t, w, inverse_rms(t, d, eps), out + r * d, d);
    }
}

void tome_gated_rms_norm(const float *x, const float *gate, const float *w, float *out, int64_t rows, int64_t d,
                         int64_t groups, float eps) {
    int64_t width = d / groups;
    for (int64_t r = 0; r < rows; r++) {
        float *o = out + r * d;
        for (int64_t i = 0; i < d; i++)
            o[i] = x[r * d + i] * silu(gate[r * d + i]);
        for (int64_t g = 0; g < groups; g++)
            scaled(o + g * width, w + g * width, inverse_rms(o + g * width, width, eps), o + g * width, width);
    }
}
