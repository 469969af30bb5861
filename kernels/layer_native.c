/* One decoded token through a whole decoder layer in one call (see kernels/layer.py for the math):
 *
 *     h = rms_norm(x);  mixed = mixer step(h);  x += m * mixed;  h = rms_norm(x)
 *     out = x + m * down(silu(gate(h)) * up(h))
 *
 * with the mixer a Mamba-2 step (`tome_mamba_step`) or one query's attention over the KV cache
 * (`attend`, after writing the new key and value into the cache). The kernels are those of the
 * single ops, included below; what this saves is the Python and the small PyTorch ops between
 * them. x, out and every norm weight are fp32 [b, hidden] / [hidden]; the weights of the MLP and
 * of the attention projections bf16 (as uint16) or fp32, rows contiguous; no biases there.
 * In a MoE layer the routed experts' sum joins the shared MLP's output (`experts` below).
 */
#include "attention_native.c"
#include "mamba_native.c"

#if HAVE_AVX2

enum { EXPERTS_FIELDS = 6, MAX_TOP_K = 64 };

static int experts_supported(const int64_t *experts, int64_t hidden) {
    return experts == NULL || (experts[4] % LANES == 0 && hidden % LANES == 0 && 1 <= experts[5] &&
                               experts[5] <= experts[3] && experts[5] <= MAX_TOP_K);
}

static inline float round_bf16(float value) { return bf16_to_float(float_to_bf16(value)); }

/* ffn[b] = (routed experts of h[b]) + ffn[b], as kernels/moe.py's moe_block computes it on a CPU
 * (the PyTorch path, which this must equal): logits = h router^T, the k largest (largest first),
 * a softmax over them; then with bf16 weights the token and the routing weights rounded to bf16,
 * each expert's weighted output rounded to bf16 and summed in bf16, experts in id order.
 * experts: (router [E, hidden], w_in [E, 2 * width, hidden], w_out [E, hidden, width] addresses,
 * E, width, k), the weights in the layer's dtype. scratch: E + 3 * hidden + 3 * width floats. */
static void routed_experts(const float *h, const int64_t *experts, float *ffn, float *scratch, int64_t batch,
                           int64_t hidden, int bf16, int threads) {
    const char *router = (const char *)experts[0], *w_in = (const char *)experts[1], *w_out = (const char *)experts[2];
    int64_t count = experts[3], width = experts[4], k = experts[5], size = bf16 ? 2 : 4;
    float *logits = scratch, *token = logits + count, *gate_up = token + hidden, *product = gate_up + 2 * width;
    float *y = product + width, *sum = y + hidden;
    for (int64_t b = 0; b < batch; b++) {
        const float *row = h + b * hidden;
        gemv(row, router, NULL, logits, 1, count, hidden, hidden, bf16, threads);
        int64_t chosen[MAX_TOP_K];
        float weight[MAX_TOP_K], total = 0.0f;
        for (int64_t j = 0; j < k; j++) { /* the k largest logits, largest first */
            int64_t best = -1;
            for (int64_t e = 0; e < count; e++) {
                int taken = 0;
                for (int64_t i = 0; i < j; i++)
                    taken |= chosen[i] == e;
                if (!taken && (best < 0 || logits[e] > logits[best]))
                    best = e;
            }
            chosen[j] = best;
            weight[j] = expf(logits[best] - logits[chosen[0]]);
            total += weight[j];
        }
        for (int64_t j = 0; j < k; j++)
            weight[j] = bf16 ? round_bf16(weight[j] / total) : weight[j] / total;
        for (int64_t j = 1; j < k; j++) /* the experts in id order (insertion sort of k) */
            for (int64_t i = j; i > 0 && chosen[i - 1] > chosen[i]; i--) {
                int64_t e = chosen[i];
                float w = weight[i];
                chosen[i] = chosen[i - 1], weight[i] = weight[i - 1];
                chosen[i - 1] = e, weight[i - 1] = w;
            }
        for (int64_t i = 0; i < hidden; i++)
            token[i] = bf16 ? round_bf16(row[i]) : row[i], sum[i] = 0.0f;
        for (int64_t j = 0; j < k; j++) {
            gemv(token, w_in + chosen[j] * 2 * width * hidden * size, NULL, gate_up, 1, 2 * width, hidden, hidden,
                 bf16, threads);
            for (int64_t i = 0; i < width; i++)
                product[i] = silu(gate_up[i]) * gate_up[width + i];
            gemv(product, w_out + chosen[j] * hidden * width * size, NULL, y, 1, hidden, width, width, bf16, threads);
            for (int64_t i = 0; i < hidden; i++)
                sum[i] = bf16 ? round_bf16(sum[i] + round_bf16(y[i] * weight[j])) : sum[i] + y[i] * weight[j];
        }
        for (int64_t i = 0; i < hidden; i++)
            ffn[b * hidden + i] = sum[i] + ffn[b * hidden + i];
    }
}

/* out = x + m * mixed; h = rms_norm(out); out += m * (down(silu(gate(h)) * up(h)) + routed experts of h).
 * scratch: b * (hidden + 3 * width + hidden) floats, and routed_experts' after them; experts NULL in a
 * dense layer. */
static void mlp_block(const float *x, const float *mixed, const float *post_norm, const void *mlp_in,
                      const void *mlp_out, const int64_t *experts, float *out, float *scratch, int64_t batch,
                      int64_t hidden, int64_t width, float residual, float eps, int bf16, int threads) {
    float *h = scratch, *gate_up = h + batch * hidden, *product = gate_up + batch * 2 * width;
    float *down = product + batch * width;
    tome_add_rms_norm(x, mixed, residual, post_norm, out, h, batch, hidden, eps);
    gemv(h, mlp_in, NULL, gate_up, batch, 2 * width, hidden, hidden, bf16, threads);
    for (int64_t b = 0; b < batch; b++)
        for (int64_t i = 0; i < width; i++)
            product[b * width + i] = silu(gate_up[b * 2 * width + i]) * gate_up[b * 2 * width + width + i];
    gemv(product, mlp_out, NULL, down, batch, hidden, width, width, bf16, threads);
    if (experts != NULL)
        routed_experts(h, experts, down, down + batch * hidden, batch, hidden, bf16, threads);
    for (int64_t i = 0; i < batch * hidden; i++)
        out[i] += residual * down[i];
}

/* The new position's key or value rows [b, kv_heads, d] into the cache (rounded to bf16 there). */
static void store_rows(const float *rows, void *cache, int64_t batch, int64_t heads, int64_t d, int64_t stride_b,
                       int64_t stride_h, int bf16) {
    for (int64_t b = 0; b < batch; b++)
        for (int64_t h = 0; h < heads; h++) {
            const float *row = rows + (b * heads + h) * d;
            int64_t at = b * stride_b + h * stride_h;
            for (int64_t x = 0; x < d; x++) {
                if (bf16)
                    ((uint16_t *)cache)[at + x] = float_to_bf16(row[x]);
                else
                    ((float *)cache)[at + x] = row[x];
            }
        }
}

#endif

/* The entry points (ctypes). They return 0, or 1 when the C code cannot run these sizes or
 * memory ran out: the caller then takes the PyTorch path, the states untouched (an attention
 * layer's new slot may hold its key and value already; the PyTorch path writes the same). */

/* A Mamba layer. h (b * hidden floats of scratch) and the arguments after it are exactly
 * tome_mamba_step's, whose `out` receives the mixer's output; `scratch` serves the MLP (and the
 * routed experts of a MoE layer, whose table `experts` is, or NULL: see routed_experts). */
int tome_mamba_layer(const float *x, float *out, const float *input_norm, const float *post_norm, const void *mlp_in,
                     const void *mlp_out, float *scratch, const int64_t *experts, int64_t width, float residual,
                     float layer_eps, float *h, const void *w_in, const float *bias_in, const float *conv_w,
                     const float *conv_b, void *conv_state, const float *dt_bias, const float *A_log, const float *D,
                     float *ssm_state, const float *norm_w, const void *w_out, const float *bias_out, float *mixed,
                     float *mamba_scratch, int64_t batch, int64_t hidden, int64_t heads, int64_t head_dim,
                     int64_t groups, int64_t state_size, int64_t taps, float dt_min, float dt_max, float eps,
                     int weights_bf16, int state_bf16, int threads) {
#if HAVE_AVX2
    if (hidden % LANES || width % LANES || !experts_supported(experts, hidden))
        return 1;
    tome_rms_norm(x, input_norm, h, batch, hidden, layer_eps);
    if (tome_mamba_step(h, w_in, bias_in, conv_w, conv_b, conv_state, dt_bias, A_log, D, ssm_state, norm_w, w_out,
                        bias_out, mixed, mamba_scratch, batch, hidden, heads, head_dim, groups, state_size, taps,
                        dt_min, dt_max, eps, weights_bf16, state_bf16, threads))
        return 1;
    mlp_block(x, mixed, post_norm, mlp_in, mlp_out, experts, out, scratch, batch, hidden, width, residual, layer_eps,
              weights_bf16, threads);
    return 0;
#else
    return 1;
#endif
}

/* An attention layer (no biases, no RoPE). The new key and value go to `new_key` / `new_value`
 * (the cache's slot for this position: element strides per batch and per KV head given); then
 * the query attends over `segments` (attention_native.c's table), which must already include
 * that slot. scratch: b * (4 * hidden + 2 * q_size + 2 * kv_size + kv_heads * group + 3 * width)
 * floats, q_size = kv_heads * group * head_dim, kv_size = kv_heads * head_dim, then the routed
 * experts' of a MoE layer (`experts`, or NULL: see routed_experts). */
int tome_attention_layer(const float *x, float *out, const float *input_norm, const float *post_norm,
                         const void *mlp_in, const void *mlp_out, const void *wq, const void *wk, const void *wv,
                         const void *wo, void *new_key, void *new_value, const int64_t *segments,
                         int64_t segment_count, float *scratch, const int64_t *experts, int64_t batch,
                         int64_t hidden, int64_t kv_heads, int64_t group, int64_t head_dim, int64_t width,
                         int64_t key_stride_b, int64_t key_stride_h, int64_t value_stride_b, int64_t value_stride_h,
                         float scale, float residual, float eps, int weights_bf16, int cache_bf16, int threads) {
#if HAVE_AVX2
    int64_t q_size = kv_heads * group * head_dim, kv_size = kv_heads * head_dim;
    if (!attention_supported(group, head_dim) || hidden % LANES || width % LANES || !experts_supported(experts, hidden))
        return 1;
    float *h = scratch, *q = h + batch * hidden, *k = q + batch * q_size, *v = k + batch * kv_size;
    float *attended = v + batch * kv_size, *lse = attended + batch * q_size, *mixed = lse + batch * kv_heads * group;
    float *mlp_scratch = mixed + batch * hidden;
    tome_rms_norm(x, input_norm, h, batch, hidden, eps);
    gemv(h, wq, NULL, q, batch, q_size, hidden, hidden, weights_bf16, threads);
    gemv(h, wk, NULL, k, batch, kv_size, hidden, hidden, weights_bf16, threads);
    gemv(h, wv, NULL, v, batch, kv_size, hidden, hidden, weights_bf16, threads);
    store_rows(k, new_key, batch, kv_heads, head_dim, key_stride_b, key_stride_h, cache_bf16);
    store_rows(v, new_value, batch, kv_heads, head_dim, value_stride_b, value_stride_h, cache_bf16);
    if (cache_bf16) /* the query meets the keys in their dtype, as in the prefill's attention */
        for (int64_t i = 0; i < batch * q_size; i++)
            q[i] = bf16_to_float(float_to_bf16(q[i]));
    if (attend(q, segments, segment_count, NULL, attended, lse, batch, kv_heads, group, head_dim, scale, cache_bf16,
               threads))
        return 1;
    gemv(attended, wo, NULL, mixed, batch, hidden, q_size, q_size, weights_bf16, threads);
    mlp_block(x, mixed, post_norm, mlp_in, mlp_out, experts, out, mlp_scratch, batch, hidden, width, residual, eps,
              weights_bf16, threads);
    return 0;
#else
    return 1;
#endif
}

/* A decoded token through consecutive layers in one call (`layers_step`, kernels/layer.py): layer
 * i's arguments are those of its entry point above, in order, packed as int64 at
 * packed + offsets[i] (pointers and integers as they are, a float by its bits in the low 32),
 * kinds[i] saying which entry point (0 Mamba, 1 attention). Each layer's `out` must be the next
 * one's `x`. Returns the number of layers done: `count`, or the index of the first layer that
 * declined (the caller goes on from there on the per-layer path, from that layer's `x`). */
static float packed_float(int64_t value) {
    uint32_t bits = (uint32_t)value;
    float result;
    memcpy(&result, &bits, sizeof result);
    return result;
}

#define P(i) ((void *)(intptr_t)a[i])
#define F(i) packed_float(a[i])
#define N(i) ((int)a[i])

static int mamba_layer_packed(const int64_t *a) {
    return tome_mamba_layer(P(0), P(1), P(2), P(3), P(4), P(5), P(6), P(7), a[8], F(9), F(10), P(11), P(12), P(13),
                            P(14), P(15), P(16), P(17), P(18), P(19), P(20), P(21), P(22), P(23), P(24), P(25), a[26],
                            a[27], a[28], a[29], a[30], a[31], a[32], F(33), F(34), F(35), N(36), N(37), N(38));
}

static int attention_layer_packed(const int64_t *a) {
    return tome_attention_layer(P(0), P(1), P(2), P(3), P(4), P(5), P(6), P(7), P(8), P(9), P(10), P(11), P(12),
                                a[13], P(14), P(15), a[16], a[17], a[18], a[19], a[20], a[21], a[22], a[23], a[24],
                                a[25], F(26), F(27), F(28), N(29), N(30), N(31));
}

#undef P
#undef F
#undef N

int tome_layers(int64_t count, const int64_t *kinds, const int64_t *packed, const int64_t *offsets) {
    for (int64_t i = 0; i < count; i++)
        if ((kinds[i] == 0 ? mamba_layer_packed : attention_layer_packed)(packed + offsets[i]))
            return (int)i;
    return (int)count;
}
