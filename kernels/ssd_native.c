/* One decode step of the Mamba-2 recurrence, per head h and row r of the state:
 *
 *     s[r, :] = exp(dt[h] A[h]) s[r, :] + dt[h] x[h, r] B[g, :]
 *     y[h, r] = s[r, :] . C[g, :] + D[h] x[h, r]
 *
 * in one pass over the state (read once, written once), where the PyTorch path makes five (the
 * decay, the update and the read-out each walk it). The state is [b, h, p, n] fp32 contiguous;
 * x [b, h, p], dt [b, h], B and C [b, g, n] fp32 contiguous; A and D [h] fp32 (D may be NULL);
 * y [b, h, p] fp32. Heads are split over the threads.
 */
#include "native_common.h"

#if HAVE_AVX2

static void ssd_step(float *state, const float *x, const float *dt, const float *A, const float *B, const float *C,
                 const float *D, float *y, int64_t batch, int64_t heads, int64_t p, int64_t groups, int64_t n,
                 int threads) {
    int64_t per_group = heads / groups;
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t bh = 0; bh < batch * heads; bh++) {
        int64_t b = bh / heads, h = bh % heads, g = h / per_group;
        float step_size = dt[bh];
        __m256 decay = _mm256_set1_ps(expf(step_size * A[h]));
        const float *Bg = B + (b * groups + g) * n, *Cg = C + (b * groups + g) * n;
        for (int64_t r = 0; r < p; r++) {
            float xr = x[bh * p + r];
            __m256 input = _mm256_set1_ps(step_size * xr);
            float *s = state + (bh * p + r) * n;
            __m256 even = _mm256_setzero_ps(), odd = _mm256_setzero_ps(); /* two chains for the read-out */
            for (int64_t i = 0; i < n; i += 2 * LANES) {
                __m256 s0 = _mm256_fmadd_ps(input, _mm256_loadu_ps(Bg + i), _mm256_mul_ps(decay, _mm256_loadu_ps(s + i)));
                __m256 s1 = _mm256_fmadd_ps(input, _mm256_loadu_ps(Bg + i + LANES),
                                            _mm256_mul_ps(decay, _mm256_loadu_ps(s + i + LANES)));
                _mm256_storeu_ps(s + i, s0);
                _mm256_storeu_ps(s + i + LANES, s1);
                even = _mm256_fmadd_ps(s0, _mm256_loadu_ps(Cg + i), even);
                odd = _mm256_fmadd_ps(s1, _mm256_loadu_ps(Cg + i + LANES), odd);
            }
            y[bh * p + r] = lane_sum(_mm256_add_ps(even, odd)) + (D ? D[h] * xr : 0.0f);
        }
    }
}

#endif

/* The entry point (ctypes). Returns 0, or 1 when the CPU lacks AVX2/FMA or n is not a multiple
 * of 16 (the caller then takes the PyTorch path). */
int tome_ssd_step(float *state, const float *x, const float *dt, const float *A, const float *B, const float *C,
                  const float *D, float *y, int64_t batch, int64_t heads, int64_t p, int64_t groups, int64_t n,
                  int threads) {
#if HAVE_AVX2
    if (n % (2 * LANES) == 0) {
        ssd_step(state, x, dt, A, B, C, D, y, batch, heads, p, groups, n, threads);
        return 0;
    }
#endif
    return 1;
}
