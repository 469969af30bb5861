/* One query position over a long run of cached keys: the attention of a decode step, on a CPU.
 *
 * PyTorch's CPU attention kernels read a bf16 KV cache at 5-7 GB/s when only one query row
 * comes with it (they are built for tiles of many queries); this reads it at memory speed.
 * Two passes, each over one of K and V, split over (batch x KV head x block of keys):
 *
 *     scores[b, h, j, i] = scale * q[b, h, j, :] . K[b, h, i, :]
 *     out[b, h, j, :]    = sum_i p[b, h, j, i] * V[b, h, i, :]
 *
 * where j runs over the query heads sharing KV head h, and p (the exponentiated scores) is made
 * by the caller in between. Keys and values are bf16 (passed as uint16) or fp32, each row of d
 * elements contiguous, the other strides free (a view into a growable cache); q, scores, p and
 * out are contiguous fp32. Sums are in fp32.
 */
#include "native_common.h"

enum { KEYS_PER_TASK = 1024, MAX_HEAD_DIM = 512, MAX_GROUP = 16, ROWS = 4 };

#if HAVE_AVX2

/* Scores of ROWS keys (at `offsets`; rows past `count` repeat the last key and are dropped) for
 * QUERIES queries. Each key vector is widened once for all the queries, and the QUERIES x ROWS
 * accumulators are separate variables after unrolling, so they stay in registers. */
#define SCORE_ROWS(QUERIES)                                                                                     \
    static inline __attribute__((always_inline)) void score_rows_##QUERIES(                                    \
        const float *queries, const void *k, const int64_t offsets[ROWS], int64_t count, int64_t d, float scale, \
        int bf16, float *scores, int64_t n) {                                                                   \
        __m256 acc[QUERIES][ROWS];                                                                              \
        for (int j = 0; j < QUERIES; j++)                                                                       \
            for (int r = 0; r < ROWS; r++)                                                                      \
                acc[j][r] = _mm256_setzero_ps();                                                                \
        for (int64_t x = 0; x < d; x += LANES) {                                                                \
            __m256 query[QUERIES];                                                                              \
            for (int j = 0; j < QUERIES; j++)                                                                   \
                query[j] = _mm256_loadu_ps(queries + j * d + x);                                                \
            for (int r = 0; r < ROWS; r++) {                                                                    \
                __m256 key = load8(k, offsets[r] + x, bf16);                                                    \
                for (int j = 0; j < QUERIES; j++)                                                               \
                    acc[j][r] = _mm256_fmadd_ps(query[j], key, acc[j][r]);                                      \
            }                                                                                                   \
        }                                                                                                       \
        for (int j = 0; j < QUERIES; j++) {                                                                     \
            float out[ROWS];                                                                                    \
            _mm_storeu_ps(out, _mm_mul_ps(sum4(acc[j][0], acc[j][1], acc[j][2], acc[j][3]), _mm_set1_ps(scale))); \
            for (int64_t r = 0; r < count; r++)                                                                 \
                scores[j * n + r] = out[r];                                                                     \
        }                                                                                                       \
    }
SCORE_ROWS(1)
SCORE_ROWS(3)

/* Scores of ROWS keys from `first` on for every query of the group. */
static inline __attribute__((always_inline)) void score_rows(const float *queries, const void *k, int64_t first,
                                                             int64_t stride, int64_t count, int64_t group, int64_t d,
                                                             float scale, int bf16, float *scores, int64_t n) {
    int64_t offsets[ROWS];
    for (int64_t r = 0; r < ROWS; r++)
        offsets[r] = first + min64(r, count - 1) * stride;
    int64_t j = 0;
    for (; j + 3 <= group; j += 3) /* 12 accumulators + 3 queries + 1 key: the 16 registers */
        score_rows_3(queries + j * d, k, offsets, count, d, scale, bf16, scores + j * n, n);
    for (; j < group; j++)
        score_rows_1(queries + j * d, k, offsets, count, d, scale, bf16, scores + j * n, n);
}

static void scores(const float *q, const void *k, float *out, int64_t batch, int64_t heads, int64_t group,
                   int64_t n, int64_t d, int64_t stride_b, int64_t stride_h, int64_t stride_n, float scale,
                   int bf16, int threads) {
    int64_t blocks = (n + KEYS_PER_TASK - 1) / KEYS_PER_TASK;
#pragma omp parallel for collapse(2) schedule(static) num_threads(threads)
    for (int64_t bh = 0; bh < batch * heads; bh++) {
        for (int64_t block = 0; block < blocks; block++) {
            int64_t b = bh / heads, h = bh % heads, end = min64(n, (block + 1) * KEYS_PER_TASK);
            for (int64_t i = block * KEYS_PER_TASK; i < end; i += ROWS)
                score_rows(q + bh * group * d, k, b * stride_b + h * stride_h + i * stride_n, stride_n,
                           min64(ROWS, end - i), group, d, scale, bf16, out + bh * group * n + i, n);
        }
    }
}

static int weighted_sum(const float *p, const void *v, float *out, int64_t batch, int64_t heads, int64_t group,
                        int64_t n, int64_t d, int64_t stride_b, int64_t stride_h, int64_t stride_n, int bf16,
                        int threads) {
    int64_t blocks = (n + KEYS_PER_TASK - 1) / KEYS_PER_TASK;
    /* each task sums its block of keys into its own slot; the slots are added up after */
    float *partial = calloc((size_t)(batch * heads * blocks * group * d), sizeof(float));
    if (partial == NULL)
        return 1;
#pragma omp parallel for collapse(2) schedule(static) num_threads(threads)
    for (int64_t bh = 0; bh < batch * heads; bh++) {
        for (int64_t block = 0; block < blocks; block++) {
            int64_t b = bh / heads, h = bh % heads, end = min64(n, (block + 1) * KEYS_PER_TASK);
            const float *weights = p + bh * group * n;
            float *sums = partial + (bh * blocks + block) * group * d;
            for (int64_t i = block * KEYS_PER_TASK; i < end; i += ROWS) {
                int64_t count = min64(ROWS, end - i), offsets[ROWS];
                __m256 w[MAX_GROUP][ROWS]; /* keys past `count` weigh 0 */
                for (int64_t r = 0; r < ROWS; r++) {
                    offsets[r] = b * stride_b + h * stride_h + (i + min64(r, count - 1)) * stride_n;
                    for (int64_t j = 0; j < group; j++)
                        w[j][r] = _mm256_set1_ps(r < count ? weights[j * n + i + r] : 0.0f);
                }
                for (int64_t x = 0; x < d; x += LANES) {
                    __m256 value[ROWS];
                    for (int64_t r = 0; r < ROWS; r++)
                        value[r] = load8(v, offsets[r] + x, bf16);
                    for (int64_t j = 0; j < group; j++) {
                        __m256 sum = _mm256_loadu_ps(sums + j * d + x);
                        for (int64_t r = 0; r < ROWS; r++)
                            sum = _mm256_fmadd_ps(w[j][r], value[r], sum);
                        _mm256_storeu_ps(sums + j * d + x, sum);
                    }
                }
            }
        }
    }
    for (int64_t bh = 0; bh < batch * heads; bh++) {
        float *result = out + bh * group * d;
        memset(result, 0, (size_t)(group * d) * sizeof(float));
        for (int64_t block = 0; block < blocks; block++) {
            const float *sums = partial + (bh * blocks + block) * group * d;
            for (int64_t x = 0; x < group * d; x++)
                result[x] += sums[x];
        }
    }
    free(partial);
    return 0;
}

#else

static void scores(const float *q, const void *k, float *out, int64_t batch, int64_t heads, int64_t group,
                   int64_t n, int64_t d, int64_t stride_b, int64_t stride_h, int64_t stride_n, float scale,
                   int bf16, int threads) {}

static int weighted_sum(const float *p, const void *v, float *out, int64_t batch, int64_t heads, int64_t group,
                        int64_t n, int64_t d, int64_t stride_b, int64_t stride_h, int64_t stride_n, int bf16,
                        int threads) { return 1; }

#endif

static int supported(int64_t group, int64_t d) {
    return HAVE_AVX2 && d % LANES == 0 && d <= MAX_HEAD_DIM && group <= MAX_GROUP;
}

/* The entry points (ctypes), one per pass; `bf16` says the keys' and values' dtype (else fp32).
 * They return 0, or 1 when the CPU lacks AVX2/FMA, d is not a multiple of 8 up to 512, a KV head
 * has more than 16 query heads, or memory ran out (the caller then takes the PyTorch path). */

int tome_scores(const float *q, const void *k, float *out, int64_t batch, int64_t heads, int64_t group, int64_t n,
                int64_t d, int64_t stride_b, int64_t stride_h, int64_t stride_n, float scale, int bf16, int threads) {
    if (!supported(group, d))
        return 1;
    scores(q, k, out, batch, heads, group, n, d, stride_b, stride_h, stride_n, scale, bf16, threads);
    return 0;
}

int tome_weighted_sum(const float *p, const void *v, float *out, int64_t batch, int64_t heads, int64_t group,
                      int64_t n, int64_t d, int64_t stride_b, int64_t stride_h, int64_t stride_n, int bf16,
                      int threads) {
    if (!supported(group, d))
        return 1;
    return weighted_sum(p, v, out, batch, heads, group, n, d, stride_b, stride_h, stride_n, bf16, threads);
}
