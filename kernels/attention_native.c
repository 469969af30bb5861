/* One query position over a long run of cached keys: the attention of a decode step, on a CPU.
 *
 * PyTorch's CPU attention kernels read a bf16 KV cache at 5-7 GB/s when only one query row
 * comes with it (they are built for tiles of many queries); this reads it at memory speed, in one
 * call. The keys are cut into blocks, and each (batch, KV head, block) task does, for the query
 * heads j sharing that KV head,
 *
 *     s[j, i] = scale * q[j, :] . K[i, :] + bias[i]      m[j] = max_i s[j, i]
 *     l[j] = sum_i exp(s[j, i] - m[j])                   o[j, :] = sum_i exp(s[j, i] - m[j]) V[i, :]
 *
 * with its scores kept in a small buffer (read back while still in cache); the blocks are then
 * merged exactly: with M = max m, out = sum e^(m - M) o / sum e^(m - M) l and lse = M + log of
 * that denominator. The cache may be in several segments (a question continuing a document's
 * state shares the document's keys): a table of (keys, values, n, the keys' strides b, h, n, the
 * values' strides b, h, n) per segment, in position order, rows of d contiguous. Keys and values
 * are bf16 (as uint16) or fp32; q [b, heads, d], bias [b, total positions] (or NULL), out [b,
 * heads, d] and lse [b, heads] are fp32 contiguous. Sums are in fp32. A query that sees no key
 * (every bias -inf) gets out 0 and lse -inf.
 */
#include "native_common.h"

enum { KEYS_PER_TASK = 1024, MAX_HEAD_DIM = 512, MAX_GROUP = 16, ROWS = 4, SEGMENT_FIELDS = 9 };
_Static_assert(KEYS_PER_TASK % ROWS == 0, "score_rows stores ROWS scores past a block's end");

static int attention_supported(int64_t group, int64_t d) {
    return HAVE_AVX2 && d % (2 * LANES) == 0 && d <= MAX_HEAD_DIM && group <= MAX_GROUP;
}

#if HAVE_AVX2

/* e^x, to a few ulp, for the x <= 0 of scores minus their maximum; below -87 (e^x < 2^-125),
 * -inf included, it gives 0. exp(x) = 2^n e^r with n = round(x / ln 2) and |r| <= ln(2) / 2, where
 * a degree-6 Taylor polynomial is within 2e-7 of e^r; ln 2 is split in two for an exact r. */
static inline __m256 exp8(__m256 x) {
    __m256 floor = _mm256_set1_ps(-87.0f);
    __m256 kept = _mm256_cmp_ps(x, floor, _CMP_GE_OQ);
    x = _mm256_max_ps(x, floor);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145752f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.42860677e-6f), r);
    __m256 p = _mm256_set1_ps(1.0f / 720.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i power = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_and_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(power)), kept);
}

/* Sixteen values from `offset` on, as two eight-lane vectors. A bf16 row is read 32 bytes at a time and
 * split into its even and odd positions (a shift and a mask: half the instructions of widening it
 * in order), so whatever meets it must be in that order too:
 * `pair_order` puts the queries in it and `store16` puts sums back. fp32 comes in order. */
static inline __attribute__((always_inline)) void load16(const void *base, int64_t offset, int bf16, __m256 *first,
                                                         __m256 *second) {
    if (!bf16) {
        *first = _mm256_loadu_ps((const float *)base + offset);
        *second = _mm256_loadu_ps((const float *)base + offset + LANES);
        return;
    }
    __m256i raw = _mm256_loadu_si256((const __m256i *)((const uint16_t *)base + offset));
    *first = _mm256_castsi256_ps(_mm256_slli_epi32(raw, 16));
    *second = _mm256_castsi256_ps(_mm256_and_si256(raw, _mm256_set1_epi32((int)0xffff0000u)));
}

/* out[x + k] = in[x + 2k], out[x + 8 + k] = in[x + 2k + 1] for each 16 values from x: load16's bf16 order. */
static void pair_order(const float *in, float *out, int64_t n) {
    for (int64_t x = 0; x < n; x += 2 * LANES)
        for (int64_t k = 0; k < LANES; k++)
            out[x + k] = in[x + 2 * k], out[x + LANES + k] = in[x + 2 * k + 1];
}

static inline __attribute__((always_inline)) void store16(float *out, __m256 first, __m256 second, int bf16) {
    if (bf16) { /* interleave even and odd positions back: (0 1 2 3 | 8 9 10 11), (4 5 6 7 | 12 13 14 15) */
        __m256 low = _mm256_unpacklo_ps(first, second), high = _mm256_unpackhi_ps(first, second);
        first = _mm256_permute2f128_ps(low, high, 0x20), second = _mm256_permute2f128_ps(low, high, 0x31);
    }
    _mm256_storeu_ps(out, first);
    _mm256_storeu_ps(out + LANES, second);
}

/* Scores of ROWS keys (at `offsets`; past the block's end they repeat its last key) for QUERIES
 * queries (in load16's order). Each key is loaded once for all the queries, and the QUERIES x ROWS
 * accumulators are separate variables after unrolling, so they stay in registers. All ROWS scores
 * are stored, those past the block's end too (never read; KEYS_PER_TASK is a multiple of ROWS):
 * copying only the block's, gcc's byte-wise copy took half the scores' time (13.5 -> 6.1 ns a key). */
#define SCORE_ROWS(QUERIES)                                                                                     \
    static inline __attribute__((always_inline)) void score_rows_##QUERIES(                                    \
        const float *queries, const void *k, const int64_t offsets[ROWS], int64_t d, float scale, int bf16,     \
        float *scores, int64_t n) {                                                                             \
        __m256 acc[QUERIES][ROWS];                                                                              \
        for (int j = 0; j < QUERIES; j++)                                                                       \
            for (int r = 0; r < ROWS; r++)                                                                      \
                acc[j][r] = _mm256_setzero_ps();                                                                \
        for (int64_t x = 0; x < d; x += 2 * LANES) {                                                            \
            for (int r = 0; r < ROWS; r++) {                                                                    \
                __m256 first, second;                                                                           \
                load16(k, offsets[r] + x, bf16, &first, &second);                                               \
                for (int j = 0; j < QUERIES; j++) {                                                             \
                    acc[j][r] = _mm256_fmadd_ps(_mm256_loadu_ps(queries + j * d + x), first, acc[j][r]);        \
                    acc[j][r] = _mm256_fmadd_ps(_mm256_loadu_ps(queries + j * d + x + LANES), second, acc[j][r]); \
                }                                                                                               \
            }                                                                                                   \
        }                                                                                                       \
        for (int j = 0; j < QUERIES; j++)                                                                       \
            _mm_storeu_ps(scores + j * n,                                                                       \
                          _mm_mul_ps(sum4(acc[j][0], acc[j][1], acc[j][2], acc[j][3]), _mm_set1_ps(scale)));   \
    }
SCORE_ROWS(1)
SCORE_ROWS(3)

/* A task's block of keys: positions [first, first + count) of one segment, `offset` in the whole cache. */
typedef struct {
    const void *keys, *values;
    int64_t first, count, offset, key_strides[3], value_strides[3]; /* b, h, n */
} Block;

/* Asks for `rows` rows of `row_bytes` from `row` on (`stride` bytes apart) to be brought into L2. */
static inline __attribute__((always_inline)) void prefetch_rows(const char *row, int64_t rows, int64_t stride,
                                                                int64_t row_bytes) {
    for (int64_t r = 0; r < rows; r++, row += stride)
        for (int64_t x = 0; x < row_bytes; x += 64)
            _mm_prefetch(row + x, _MM_HINT_T1);
}

/* s[j, :count] (row stride KEYS_PER_TASK) for the group's queries over the block's keys, bias added. */
static inline __attribute__((always_inline)) void block_scores(const float *queries, const Block *blk, int64_t b,
                                                               int64_t h, int64_t group, int64_t d, float scale,
                                                               const float *bias, int bf16, float *s) {
    for (int64_t i = 0; i < blk->count; i += ROWS) {
        int64_t count = min64(ROWS, blk->count - i), offsets[ROWS];
        for (int64_t r = 0; r < ROWS; r++)
            offsets[r] = b * blk->key_strides[0] + h * blk->key_strides[1] + (blk->first + i + min64(r, count - 1)) * blk->key_strides[2];
        /* the block's values, which the weighted sum reads next, are fetched while the scores are
         * computed (left to the hardware prefetcher, the kernel read an L3-resident cache at half
         * the speed of this): 1.6 -> 1.2 ms per layer at 16K keys from DRAM */
        int64_t size = bf16 ? 2 : 4;
        prefetch_rows((const char *)blk->values + (b * blk->value_strides[0] + h * blk->value_strides[1] +
                                                   (blk->first + i) * blk->value_strides[2]) * size,
                      count, blk->value_strides[2] * size, d * size);
        int64_t j = 0;
        for (; j + 3 <= group; j += 3) /* 12 accumulators + a key's two halves + the mask: 15 of 16 registers */
            score_rows_3(queries + j * d, blk->keys, offsets, d, scale, bf16, s + j * KEYS_PER_TASK + i,
                         KEYS_PER_TASK);
        for (; j < group; j++)
            score_rows_1(queries + j * d, blk->keys, offsets, d, scale, bf16, s + j * KEYS_PER_TASK + i,
                         KEYS_PER_TASK);
    }
    if (bias != NULL)
        for (int64_t j = 0; j < group; j++)
            for (int64_t i = 0; i < blk->count; i++)
                s[j * KEYS_PER_TASK + i] += bias[blk->offset + i];
}

/* Per query j: m[j] = max s, s <- exp(s - m), l[j] = sum; m = -inf and l = 0 when every key is masked. */
static void block_softmax(float *s, int64_t count, int64_t group, float *m, float *l) {
    for (int64_t j = 0; j < group; j++) {
        float *row = s + j * KEYS_PER_TASK, top = -INFINITY, total = 0.0f;
        __m256 tops = _mm256_set1_ps(-INFINITY); /* gcc leaves a scalar max loop unvectorised (NaN rules) */
        int64_t i = 0;
        for (; i + LANES <= count; i += LANES)
            tops = _mm256_max_ps(tops, _mm256_loadu_ps(row + i));
        for (; i < count; i++)
            top = row[i] > top ? row[i] : top;
        float lanes[LANES];
        _mm256_storeu_ps(lanes, tops);
        for (int64_t k = 0; k < LANES; k++)
            top = lanes[k] > top ? lanes[k] : top;
        if (top == -INFINITY) {
            m[j] = top, l[j] = 0.0f;
            memset(row, 0, (size_t)count * sizeof(float));
            continue;
        }
        __m256 shift = _mm256_set1_ps(top), sums = _mm256_setzero_ps();
        for (i = 0; i + LANES <= count; i += LANES) {
            __m256 p = exp8(_mm256_sub_ps(_mm256_loadu_ps(row + i), shift));
            _mm256_storeu_ps(row + i, p);
            sums = _mm256_add_ps(sums, p);
        }
        total = lane_sum(sums);
        for (; i < count; i++) {
            row[i] = expf(row[i] - top);
            total += row[i];
        }
        m[j] = top, l[j] = total;
    }
}

/* o[j, :] = sum_i p[j, i] V[i, :] over the block, 16 of the d columns at a time: the group's sums of
 * those columns stay in registers over all the block's keys (the block's values are read d / 16
 * times, from L2 after the first). */
static inline __attribute__((always_inline)) void block_weighted_sum(const float *p, const Block *blk, int64_t b,
                                                                     int64_t h, int64_t group, int64_t d, int bf16,
                                                                     float *o) {
    int64_t first = b * blk->value_strides[0] + h * blk->value_strides[1] + blk->first * blk->value_strides[2];
    for (int64_t x = 0; x < d; x += 2 * LANES) {
        __m256 sums[MAX_GROUP][2];
        for (int64_t j = 0; j < group; j++)
            sums[j][0] = sums[j][1] = _mm256_setzero_ps();
        for (int64_t i = 0; i < blk->count; i++) {
            __m256 low, high;
            load16(blk->values, first + i * blk->value_strides[2] + x, bf16, &low, &high);
            for (int64_t j = 0; j < group; j++) {
                __m256 weight = _mm256_broadcast_ss(p + j * KEYS_PER_TASK + i);
                sums[j][0] = _mm256_fmadd_ps(weight, low, sums[j][0]);
                sums[j][1] = _mm256_fmadd_ps(weight, high, sums[j][1]);
            }
        }
        for (int64_t j = 0; j < group; j++)
            store16(o + j * d + x, sums[j][0], sums[j][1], bf16);
    }
}

/* One task: a block's scores, softmax and weighted sum, into o[group][d], m[group], l[group]. */
static inline __attribute__((always_inline)) void block_task(const float *queries, const Block *blk, int64_t b,
                                                             int64_t h, int64_t group, int64_t d, float scale,
                                                             const float *bias, int bf16, float *o) {
    float s[MAX_GROUP * KEYS_PER_TASK], paired[MAX_GROUP * MAX_HEAD_DIM], *m = o + group * d, *l = m + group;
    if (bf16)
        pair_order(queries, paired, group * d), queries = paired;
    block_scores(queries, blk, b, h, group, d, scale, bias, bf16, s);
    block_softmax(s, blk->count, group, m, l);
    block_weighted_sum(s, blk, b, h, group, d, bf16, o);
}

/* block_task is instantiated with the cache's dtype, and with the (group, d) of the released Granite
 * 4.0 H shapes (3 x 64: h-350m; 3 x 128: h-1b, h-tiny; 4 x 64: h-micro), as constants. With the dtype
 * a run-time flag, gcc kept the test inside the inner loops and spilled their accumulators (4x
 * slower); with group and d constants the loops unroll and the weights stay in registers (~1.5x). */
typedef void (*BlockTask)(const float *queries, const Block *blk, int64_t b, int64_t h, int64_t group, int64_t d,
                          float scale, const float *bias, float *o);
#define BLOCK_TASK(NAME, GROUP, D, BF16)                                                                       \
    static void NAME(const float *queries, const Block *blk, int64_t b, int64_t h, int64_t group, int64_t d,   \
                     float scale, const float *bias, float *o) {                                               \
        block_task(queries, blk, b, h, GROUP, D, scale, bias, BF16, o);                                        \
    }
BLOCK_TASK(block_task_bf16, group, d, 1)
BLOCK_TASK(block_task_fp32, group, d, 0)
BLOCK_TASK(block_task_bf16_3x64, 3, 64, 1)
BLOCK_TASK(block_task_fp32_3x64, 3, 64, 0)
BLOCK_TASK(block_task_bf16_3x128, 3, 128, 1)
BLOCK_TASK(block_task_fp32_3x128, 3, 128, 0)
BLOCK_TASK(block_task_bf16_4x64, 4, 64, 1)
BLOCK_TASK(block_task_fp32_4x64, 4, 64, 0)

static BlockTask pick_block_task(int64_t group, int64_t d, int bf16) {
    if (group == 3 && d == 64)
        return bf16 ? block_task_bf16_3x64 : block_task_fp32_3x64;
    if (group == 3 && d == 128)
        return bf16 ? block_task_bf16_3x128 : block_task_fp32_3x128;
    if (group == 4 && d == 64)
        return bf16 ? block_task_bf16_4x64 : block_task_fp32_4x64;
    return bf16 ? block_task_bf16 : block_task_fp32;
}

/* The whole attention (see the top of the file); 1 when memory ran out. */
static int attend(const float *q, const int64_t *segments, int64_t segment_count, const float *key_bias, float *out,
                  float *lse, int64_t batch, int64_t heads, int64_t group, int64_t d, float scale, int bf16,
                  int threads) {
    int64_t blocks = 0, total = 0;
    for (int64_t s = 0; s < segment_count; s++)
        blocks += (segments[s * SEGMENT_FIELDS + 2] + KEYS_PER_TASK - 1) / KEYS_PER_TASK;
    Block *table = malloc((size_t)(blocks > 0 ? blocks : 1) * sizeof(Block));
    /* per task and query: o[d], m, l */
    float *partial = malloc((size_t)((batch * heads * blocks + 1) * group * (d + 2)) * sizeof(float));
    if (table == NULL || partial == NULL) {
        free(table), free(partial);
        return 1;
    }
    for (int64_t s = 0, k = 0; s < segment_count; s++) {
        const int64_t *f = segments + s * SEGMENT_FIELDS;
        for (int64_t first = 0; first < f[2]; first += KEYS_PER_TASK, k++)
            table[k] = (Block){(const void *)f[0], (const void *)f[1], first, min64(KEYS_PER_TASK, f[2] - first),
                               total + first, {f[3], f[4], f[5]}, {f[6], f[7], f[8]}};
        total += f[2];
    }
    BlockTask task = pick_block_task(group, d, bf16);
#pragma omp parallel for collapse(2) schedule(static) num_threads(threads)
    for (int64_t bh = 0; bh < batch * heads; bh++) {
        for (int64_t k = 0; k < blocks; k++) {
            int64_t b = bh / heads, h = bh % heads;
            task(q + bh * group * d, &table[k], b, h, group, d, scale, key_bias == NULL ? NULL : key_bias + b * total,
                 partial + (bh * blocks + k) * group * (d + 2));
        }
    }
    for (int64_t bh = 0; bh < batch * heads; bh++) {
        for (int64_t j = 0; j < group; j++) {
            float top = -INFINITY, denominator = 0.0f, *result = out + (bh * group + j) * d;
            for (int64_t k = 0; k < blocks; k++) {
                float m = partial[(bh * blocks + k) * group * (d + 2) + group * d + j];
                top = m > top ? m : top;
            }
            memset(result, 0, (size_t)d * sizeof(float));
            for (int64_t k = 0; k < blocks && top > -INFINITY; k++) {
                const float *o = partial + (bh * blocks + k) * group * (d + 2);
                float weight = expf(o[group * d + j] - top); /* 0 for a block that saw no key */
                denominator += weight * o[group * d + group + j];
                for (int64_t x = 0; x < d; x++)
                    result[x] += weight * o[j * d + x];
            }
            if (denominator > 0.0f)
                for (int64_t x = 0; x < d; x++)
                    result[x] /= denominator;
            lse[bh * group + j] = denominator > 0.0f ? top + logf(denominator) : -INFINITY;
        }
    }
    free(table), free(partial);
    return 0;
}

#else

static int attend(const float *q, const int64_t *segments, int64_t segment_count, const float *key_bias, float *out,
                  float *lse, int64_t batch, int64_t heads, int64_t group, int64_t d, float scale, int bf16,
                  int threads) { return 1; }

#endif

/* The entry point (ctypes). `heads` counts KV heads, each shared by `group` query heads; `bf16`
 * says the cache's dtype (else fp32). Returns 0, or 1 when the CPU lacks AVX2/FMA, d is not a
 * multiple of 16 up to 512, a KV head has more than 16 query heads, or memory ran out (the caller
 * then takes the PyTorch path). */
int tome_decode_attention(const float *q, const int64_t *segments, int64_t segment_count, const float *key_bias,
                          float *out, float *lse, int64_t batch, int64_t heads, int64_t group, int64_t d, float scale,
                          int bf16, int threads) {
    if (!attention_supported(group, d))
        return 1;
    return attend(q, segments, segment_count, key_bias, out, lse, batch, heads, group, d, scale, bf16, threads);
}
