"""The released Granite 4.0 H shapes, and checkpoints of random weights in them (no download).

Values come from ../shared/reference/granite-4.0-h.md §3. Where it says UNVERIFIED, the choice is
the one that matches the advertised parameter counts: tied embeddings everywhere; h-tiny and
h-micro with 4 KV heads and attention at layers 5, 15, 25, 35; h-micro's shared MLP 8192 wide.
"""

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from inference.config import HybridConfig

V = 100352  # vocabulary of every release
# name: hidden, layers, attention layers, heads, KV heads, Mamba heads, Mamba head dim, experts,
#       experts per token, expert width, shared MLP width, attention_multiplier, residual, logits_scaling
RELEASED = {
    "h-350m": (768, 32, (10, 13, 17, 27), 12, 4, 48, 32, 0, 0, 2048, 2048, 0.015625, 0.246, 3.0),
    "h-1b": (1536, 40, (5, 15, 25, 35), 12, 4, 48, 64, 0, 0, 4096, 4096, 0.0078125, 0.22, 6.0),
    "h-micro": (2048, 40, (5, 15, 25, 35), 32, 8, 64, 64, 0, 0, 8192, 8192, 0.015625, 0.22, 8.0),
    "h-tiny": (1536, 40, (5, 15, 25, 35), 12, 4, 48, 64, 64, 6, 512, 1024, 0.0078125, 0.22, 6.0),
}
# Small hybrids for smoke runs of the benchmark (seconds, not hours) and tests: dense, and with
# eight routed experts of which two run per token, as h-tiny routes.
SMOKES = {"smoke": (128, 4, (2,), 4, 2, 4, 64, 0, 0, 256, 256, 0.03125, 0.25, 2.0),
          "smoke-moe": (128, 4, (2,), 4, 2, 4, 64, 8, 2, 64, 256, 0.03125, 0.25, 2.0)}


def config_dict(name: str) -> dict:
    """The config.json of a released shape (or of a smoke shape: a tiny hybrid)."""
    smoke = name in SMOKES
    H, L, attention, nh, nkv, mh, md, E, k, I, S, attn_mult, residual, logits = SMOKES[name] if smoke else RELEASED[name]
    return {
        "model_type": "granitemoehybrid", "architectures": ["GraniteMoeHybridForCausalLM"],
        "vocab_size": 4096 if smoke else V, "hidden_size": H, "num_hidden_layers": L,
        "layer_types": ["attention" if i in attention else "mamba" for i in range(L)],
        "num_attention_heads": nh, "num_key_value_heads": nkv, "mamba_n_heads": mh, "mamba_d_head": md,
        "mamba_d_state": 128, "mamba_n_groups": 1, "mamba_d_conv": 4, "mamba_expand": 2, "mamba_chunk_size": 256,
        "mamba_conv_bias": True, "mamba_proj_bias": False, "num_local_experts": E, "num_experts_per_tok": k,
        "intermediate_size": I, "shared_intermediate_size": S, "embedding_multiplier": 12.0,
        "attention_multiplier": attn_mult, "residual_multiplier": residual, "logits_scaling": logits,
        "rms_norm_eps": 1e-5, "position_embedding_type": "nope", "tie_word_embeddings": True,
        "max_position_embeddings": 1 << 20, "bos_token_id": 100257, "eos_token_id": 100257, "pad_token_id": 100256,
    } | ({"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0} if smoke else {})


def config(name: str) -> HybridConfig:
    return HybridConfig.from_dict(config_dict(name))


def write_random_checkpoint(name: str, folder: Path, dtype: torch.dtype, seed: int = 0) -> Path:
    """config.json + model.safetensors of random weights in the ranges real checkpoints have."""
    from inference.model import HybridModel

    with torch.device("meta"):
        model = HybridModel(config(name))
    model = model.to(dtype).to_empty(device="cpu")
    gen = torch.Generator().manual_seed(seed)
    for pname, param in model.named_parameters():
        if pname.endswith("A_log"):
            param.data.uniform_(0.0, 2.7, generator=gen)  # A in [-16, -1]
        elif pname.endswith("dt_bias"):
            param.data.uniform_(-4.6, -2.3, generator=gen)  # softplus -> dt in [0.01, 0.1]
        elif param.dim() >= 2:
            param.data.normal_(0.0, 0.02, generator=gen)
        else:
            param.data.uniform_(0.5, 1.5, generator=gen)  # norms, D, conv bias
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config_dict(name) | {"torch_dtype": str(dtype)[6:]}, indent=1))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    return folder
