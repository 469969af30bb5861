/* One token through the depthwise causal conv of a Mamba-2 mixer, in one pass over the channels:
 *
 *     y[c] = silu(bias[c] + sum_j w[c, j] window[c, j]),  window[c] = (state[c, 0 .. k-2], x[c])
 *
 * and the state shifts by one, keeping the last k-1 inputs. PyTorch's path is seven ops per
 * layer (build the window, multiply, sum, shift, bias, silu) on a few thousand values.
 * x [b, c] and y fp32; w [c, k] and bias [c] fp32 (bias may be NULL); the state [b, c, k-1] is
 * fp32 or bf16 (as uint16, rounded to nearest even when written), all contiguous.
 */
#include "native_common.h"

enum { MAX_TAPS = 16 };

/* The released models' four taps, the state kept as bf16 bits: the three kept inputs shift as
 * they are (already bf16), only the new input rounds. */
static void step4_bf16(const float *x, const float *w, const float *bias, uint16_t *state, float *y, int64_t rows,
                       int64_t channels) {
    for (int64_t i = 0; i < rows * channels; i++) {
        int64_t c = i % channels;
        uint16_t *s = state + i * 3;
        const float *t = w + c * 4;
        float sum = t[0] * bf16_to_float(s[0]) + t[1] * bf16_to_float(s[1]) + t[2] * bf16_to_float(s[2]) + t[3] * x[i];
        y[i] = silu(bias ? sum + bias[c] : sum);
        s[0] = s[1];
        s[1] = s[2];
        s[2] = float_to_bf16(x[i]);
    }
}

static int conv_step(const float *x, const float *w, const float *bias, void *state, float *y, int64_t batch,
                int64_t channels, int64_t taps, int bf16) {
    if (taps < 2 || taps > MAX_TAPS)
        return 1;
    if (bf16 && taps == 4) {
        step4_bf16(x, w, bias, state, y, batch, channels);
        return 0;
    }
    int64_t kept = taps - 1;
    for (int64_t b = 0; b < batch; b++) {
        for (int64_t c = 0; c < channels; c++) {
            float window[MAX_TAPS];
            int64_t row = (b * channels + c) * kept;
            for (int64_t j = 0; j < kept; j++)
                window[j] = bf16 ? bf16_to_float(((const uint16_t *)state)[row + j]) : ((const float *)state)[row + j];
            window[kept] = x[b * channels + c];
            float sum = 0.0f;
            for (int64_t j = 0; j < taps; j++)
                sum += w[c * taps + j] * window[j];
            y[b * channels + c] = silu(bias ? sum + bias[c] : sum);
            for (int64_t j = 0; j < kept; j++) {
                if (bf16)
                    ((uint16_t *)state)[row + j] = float_to_bf16(window[j + 1]);
                else
                    ((float *)state)[row + j] = window[j + 1];
            }
        }
    }
    return 0;
}

/* The entry point (ctypes); `bf16` says the state's dtype (else fp32). Returns 0, or 1 for more
 * than 16 taps. */
int tome_conv_step(const float *x, const float *w, const float *bias, void *state, float *y, int64_t batch,
                   int64_t channels, int64_t taps, int bf16) {
    return conv_step(x, w, bias, state, y, batch, channels, taps, bf16);
}
