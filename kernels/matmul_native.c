/* y = x W^T (+ bias) for one to a few rows of x: the products of a decode step, on a CPU.
 *
 * A decoded token multiplies every weight matrix by one activation row, so each product is a
 * read of the weight; PyTorch's bf16 GEMV on CPUs without native bf16 arithmetic widens and sums
 * one row at a time and reads ~10 GB/s per core, under half of what memory gives. Here each
 * weight row is read in steps of 32 values widened eight at a time, each eight fed to its own
 * accumulator (four independent chains keep both FMA pipes busy), and the rows are split over
 * the threads: the product reads a large weight as fast as a plain sum reads memory.
 *
 * x: [m, k] fp32 contiguous; W: [n, k] bf16 (as uint16) or fp32, rows contiguous, row stride
 * free; bias: [n] fp32 or NULL; y: [m, n] fp32 contiguous. Sums are in fp32; x is never rounded.
 */
#include "native_common.h"

enum { CHAINS = 4 };

#if HAVE_AVX2

static void gemv(const float *x, const void *w, const float *bias, float *y, int64_t m, int64_t n, int64_t k,
                 int64_t stride_w, int bf16, int threads) {
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t r = 0; r < n; r++) {
        for (int64_t row = 0; row < m; row++) {
            const float *xs = x + row * k;
            __m256 acc[CHAINS];
            for (int64_t c = 0; c < CHAINS; c++)
                acc[c] = _mm256_setzero_ps();
            int64_t i = 0;
            for (; i + CHAINS * LANES <= k; i += CHAINS * LANES)
                for (int64_t c = 0; c < CHAINS; c++)
                    acc[c] = _mm256_fmadd_ps(load8(w, r * stride_w + i + c * LANES, bf16),
                                             _mm256_loadu_ps(xs + i + c * LANES), acc[c]);
            for (; i < k; i += LANES)
                acc[0] = _mm256_fmadd_ps(load8(w, r * stride_w + i, bf16), _mm256_loadu_ps(xs + i), acc[0]);
            __m256 total = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
            y[row * n + r] = lane_sum(total) + (bias ? bias[r] : 0.0f);
        }
    }
}

#endif

/* The entry point (ctypes); `bf16` says the weight's dtype (else fp32). Returns 0, or 1 when the
 * CPU lacks AVX2/FMA or k is not a multiple of 8 (the caller then takes the PyTorch path). */
int tome_gemv(const float *x, const void *w, const float *bias, float *y, int64_t m, int64_t n, int64_t k,
              int64_t stride_w, int bf16, int threads) {
#if HAVE_AVX2
    if (k % LANES == 0) {
        gemv(x, w, bias, y, m, n, k, stride_w, bf16, threads);
        return 0;
    }
#endif
    return 1;
}
