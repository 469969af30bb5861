/* What the C kernels share: AVX2 detection, eight-lane loads of bf16 or fp32, sums across lanes,
 * bf16 conversions, SiLU. A kernel file includes this first; `mamba_native.c` includes several kernel
 * files into one library, so the helpers live here once. */
#ifndef TOME_NATIVE_COMMON_H
#define TOME_NATIVE_COMMON_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define HAVE_AVX2 1
#else
#define HAVE_AVX2 0 /* the AVX2 entry points then decline and the caller takes the PyTorch path */
#endif

enum { LANES = 8 };

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

static inline float bf16_to_float(uint16_t bits) {
    uint32_t widened = (uint32_t)bits << 16; /* bf16 is the top half of an fp32 */
    float value;
    memcpy(&value, &widened, sizeof value);
    return value;
}

static inline float silu(float v) { return v / (1.0f + expf(-v)); }

static inline uint16_t float_to_bf16(float value) { /* round to nearest even; the inputs are finite */
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    return (uint16_t)((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

#if HAVE_AVX2

/* Eight values from `offset` on, bf16 (widened) or fp32. */
static inline __m256 load8(const void *base, int64_t offset, int bf16) {
    if (!bf16)
        return _mm256_loadu_ps((const float *)base + offset);
    __m128i half = _mm_loadu_si128((const __m128i *)((const uint16_t *)base + offset));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(half), 16));
}

/* The four lane sums of a, b, c, d, in that order. */
static inline __m128 sum4(__m256 a, __m256 b, __m256 c, __m256 d) {
    __m256 pairs = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
    return _mm_add_ps(_mm256_castps256_ps128(pairs), _mm256_extractf128_ps(pairs, 1));
}

static inline float lane_sum(__m256 v) {
    __m128 half = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    half = _mm_add_ps(half, _mm_movehl_ps(half, half));
    return _mm_cvtss_f32(_mm_add_ss(half, _mm_movehdup_ps(half)));
}

#endif
#endif
