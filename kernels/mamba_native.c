/* One decode step of a whole Mamba-2 mixer in one call (see kernels/mamba.py for the math):
 *
 *     z | xBC | dt = in_proj(h);  x | B | C = conv step (xBC);  dt = clamp(softplus(dt + dt_bias))
 *     y = SSD step (x, dt, A = -exp(A_log), B, C) + D x;  out = out_proj(gated_rms_norm(y, z))
 *
 * The kernels are the ones of the single ops (included below); what this saves is the Python and
 * the small PyTorch ops between them, ~150 us per layer of a decoded token on h-350m.
 * h [b, hidden] and out fp32; the projections bf16 (as uint16) or fp32 with rows contiguous; the
 * 1-D parameters, conv taps [conv_dim, taps] and norm weight fp32; the conv state [b, conv_dim,
 * taps-1] bf16 or fp32 and the SSM state [b, heads, head_dim, state] fp32, updated in place;
 * scratch holds b * (proj + conv_dim + heads + 2 * d_inner) + heads floats. NULL biases or D
 * are absent. */
#include "conv1d_native.c"
#include "matmul_native.c"
#include "norm_native.c"
#include "ssd_native.c"

static float softplus(float v) { return v > 20.0f ? v : log1pf(expf(v)); } /* PyTorch's threshold */

int tome_mamba_step(const float *h, const void *w_in, const float *bias_in, const float *conv_w, const float *conv_b,
                    void *conv_state, const float *dt_bias, const float *A_log, const float *D, float *ssm_state,
                    const float *norm_w, const void *w_out, const float *bias_out, float *out, float *scratch,
                    int64_t batch, int64_t hidden, int64_t heads, int64_t head_dim, int64_t groups,
                    int64_t state_size, int64_t taps, float dt_min, float dt_max, float eps, int weights_bf16,
                    int state_bf16, int threads) {
#if HAVE_AVX2
    int64_t d_inner = heads * head_dim, conv_dim = d_inner + 2 * groups * state_size;
    int64_t proj = d_inner + conv_dim + heads, kept = taps - 1;
    if (hidden % LANES || d_inner % LANES || state_size % (2 * LANES) || heads % groups || taps < 2 || taps > MAX_TAPS)
        return 1;
    float *projected = scratch, *convolved = projected + batch * proj, *dt = convolved + batch * conv_dim;
    float *A = dt + batch * heads, *y = A + heads, *normed = y + batch * d_inner;
    gemv(h, w_in, bias_in, projected, batch, proj, hidden, hidden, weights_bf16, threads);
    for (int64_t i = 0; i < heads; i++)
        A[i] = -expf(A_log[i]);
    for (int64_t b = 0; b < batch; b++) {
        const float *z = projected + b * proj, *xBC = z + d_inner, *raw_dt = xBC + conv_dim;
        float *row = convolved + b * conv_dim;
        void *state = (char *)conv_state + b * conv_dim * kept * (state_bf16 ? 2 : 4);
        conv_step(xBC, conv_w, conv_b, state, row, 1, conv_dim, taps, state_bf16);
        for (int64_t i = 0; i < heads; i++) {
            float step = softplus(raw_dt[i] + dt_bias[i]);
            dt[b * heads + i] = step < dt_min ? dt_min : (step > dt_max ? dt_max : step);
        }
        ssd_step(ssm_state + b * d_inner * state_size, row, dt + b * heads, A, row + d_inner,
                 row + d_inner + groups * state_size, D, y + b * d_inner, 1, heads, head_dim, groups, state_size,
                 threads);
        tome_gated_rms_norm(y + b * d_inner, z, norm_w, normed + b * d_inner, 1, d_inner, groups, eps);
    }
    gemv(normed, w_out, bias_out, out, batch, hidden, d_inner, d_inner, weights_bf16, threads);
    return 0;
#else
    return 1;
#endif
}
