"""The released sizes built on the meta device: exact tensor names and shapes, parameter counts.

Configs and shapes come from ../shared/reference/granite-4.0-h.md (§2, §3), written out here
independently of the model code. Assumptions where the reference says UNVERIFIED:
- tie_word_embeddings is true for every size (verified for h-350m and h-small; the untied counts
  would miss the advertised sizes by 0.08-0.4B, the tied ones match to within 1%);
- h-micro: vocab_size 100352 and shared_intermediate_size 8192;
- h-tiny: num_key_value_heads 4; h-tiny and h-small: the 4 attention layers at 5, 15, 25, 35
  (positions change names, never counts).
"""

import pytest
import torch

from inference import HybridConfig, HybridModel

V = 100352
SIZES = {  # H, L, attention layers, heads, kv heads, mamba heads, mamba head dim, E, k, I, S
    "h-350m": (768, 32, (10, 13, 17, 27), 12, 4, 48, 32, 0, 0, 2048, 2048),
    "h-1b": (1536, 40, (5, 15, 25, 35), 12, 4, 48, 64, 0, 0, 4096, 4096),
    "h-micro": (2048, 40, (5, 15, 25, 35), 32, 8, 64, 64, 0, 0, 8192, 8192),
    "h-tiny": (1536, 40, (5, 15, 25, 35), 12, 4, 48, 64, 64, 6, 512, 1024),
    "h-small": (4096, 40, (5, 15, 25, 35), 32, 8, 128, 64, 72, 10, 768, 1536),
}
# Advertised sizes in billions: total, active (the reference, §2).
ADVERTISED = {"h-350m": (0.34, 0.34), "h-1b": (1.46, 1.46), "h-micro": (3.2, 3.2), "h-tiny": (7.0, None),
              "h-small": (32.0, 9.0)}
N, G, K = 128, 1, 4  # mamba_d_state, mamba_n_groups, mamba_d_conv for every size


def config(size: str) -> HybridConfig:
    H, L, attention, nh, nkv, mh, md, E, k, I, S = SIZES[size]
    return HybridConfig.from_dict(dict(
        model_type="granitemoehybrid", vocab_size=V, hidden_size=H, num_hidden_layers=L,
        layer_types=["attention" if i in attention else "mamba" for i in range(L)],
        num_attention_heads=nh, num_key_value_heads=nkv, mamba_n_heads=mh, mamba_d_head=md, mamba_d_state=N,
        mamba_n_groups=G, mamba_d_conv=K, mamba_expand=2, num_local_experts=E, num_experts_per_tok=k,
        intermediate_size=I, shared_intermediate_size=S, tie_word_embeddings=True,
    ))


def expected_tensors(size: str) -> dict[str, tuple[int, ...]]:
    """The reference's §2 table for one size."""
    H, L, attention, nh, nkv, mh, md, E, k, I, S = SIZES[size]
    Di, hd = mh * md, H // nh
    tensors = {"model.embed_tokens.weight": (V, H), "model.norm.weight": (H,)}
    for i in range(L):
        p = f"model.layers.{i}."
        tensors |= {p + "input_layernorm.weight": (H,), p + "post_attention_layernorm.weight": (H,),
                    p + "shared_mlp.input_linear.weight": (2 * S, H), p + "shared_mlp.output_linear.weight": (H, S)}
        if i in attention:
            tensors |= {p + "self_attn.q_proj.weight": (nh * hd, H), p + "self_attn.k_proj.weight": (nkv * hd, H),
                        p + "self_attn.v_proj.weight": (nkv * hd, H), p + "self_attn.o_proj.weight": (H, nh * hd)}
        else:
            Cd = Di + 2 * G * N
            tensors |= {p + "mamba.in_proj.weight": (2 * Di + 2 * G * N + mh, H), p + "mamba.conv1d.weight": (Cd, 1, K),
                        p + "mamba.conv1d.bias": (Cd,), p + "mamba.dt_bias": (mh,), p + "mamba.A_log": (mh,),
                        p + "mamba.D": (mh,), p + "mamba.norm.weight": (Di,), p + "mamba.out_proj.weight": (H, Di)}
        if E:
            tensors |= {p + "block_sparse_moe.router.layer.weight": (E, H),
                        p + "block_sparse_moe.input_linear.weight": (E, 2 * I, H),
                        p + "block_sparse_moe.output_linear.weight": (E, H, I)}
    return tensors


@pytest.mark.parametrize("size", list(SIZES))
def test_meta_model_has_exactly_the_checkpoint_tensors(size):
    with torch.device("meta"):
        model = HybridModel(config(size))
    built = {name: tuple(p.shape) for name, p in model.named_parameters()}
    expected = expected_tensors(size)
    assert sorted(built.keys() - expected.keys()) == [], "unexpected tensors"
    assert sorted(expected.keys() - built.keys()) == [], "missing tensors"
    assert built == expected


@pytest.mark.parametrize("size", list(SIZES))
def test_parameter_counts_match_the_advertised_sizes(size):
    with torch.device("meta"):
        model = HybridModel(config(size))
    total = sum(p.numel() for p in model.parameters())
    assert total == sum(torch.Size(shape).numel() for shape in expected_tensors(size).values())
    experts = sum(p.numel() for name, p in model.named_parameters() if "block_sparse_moe.i" in name
                  or "block_sparse_moe.o" in name)
    E, k = SIZES[size][7:9]
    active = total - experts + (experts * k // E if E else 0)
    advertised_total, advertised_active = ADVERTISED[size]
    # Advertised figures carry two or three significant digits: allow 3%.
    assert total / 1e9 == pytest.approx(advertised_total, rel=0.03)
    if advertised_active:
        assert active / 1e9 == pytest.approx(advertised_active, rel=0.03)
