"""Tiny random Granite 4.0 H checkpoints written by transformers, and its reference logits.

transformers is the numerical reference (a test-only dependency). The SSM parameters and norms are
drawn from wide ranges so agreement means something: decays from nearly 1 to nearly 0 per token,
negative and positive skips, norms far from 1.
"""

import dataclasses
import os
from pathlib import Path

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@dataclasses.dataclass(frozen=True)
class Tiny:
    """One point of the config matrix (pairwise over the dimensions the issue lists)."""

    name: str
    layer_types: tuple[str, ...]
    experts: int = 0  # 0: dense (no MoE tensors at all)
    groups: int = 1
    tied: bool = True
    rope: bool = False
    chunk: int = 8  # the tests use 21 and 37 tokens: never a multiple

    def hf_config(self):
        from transformers import GraniteMoeHybridConfig

        return GraniteMoeHybridConfig(
            vocab_size=320, hidden_size=64, intermediate_size=24, shared_intermediate_size=48,
            num_hidden_layers=len(self.layer_types), layer_types=list(self.layer_types),
            num_attention_heads=4, num_key_value_heads=2, attention_multiplier=1 / 16,
            num_local_experts=self.experts, num_experts_per_tok=2 if self.experts else 0,
            mamba_n_heads=8, mamba_d_head=16, mamba_d_state=12, mamba_n_groups=self.groups,
            mamba_d_conv=4, mamba_expand=2, mamba_chunk_size=self.chunk,
            embedding_multiplier=12.0, residual_multiplier=0.246, logits_scaling=3.0, rms_norm_eps=1e-5,
            position_embedding_type="rope" if self.rope else "nope",
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
            tie_word_embeddings=self.tied, max_position_embeddings=4096, initializer_range=0.1,
            pad_token_id=0, bos_token_id=1, eos_token_id=1,  # <|pad|>, <|end_of_text|> of granite_style
        )


M, A = "mamba", "attention"
MATRIX = [
    Tiny("dense-attn-first", (A, M, M)),
    Tiny("moe-attn-middle-g2-untied-rope", (M, A, M), experts=4, groups=2, tied=False, rope=True),
    Tiny("moe-attn-last-untied-rope", (M, M, A), experts=4, tied=False, rope=True),
    Tiny("dense-attn-last-g2-untied", (M, M, A), groups=2, tied=False),
    Tiny("moe-attn-first-g2", (A, M, M), experts=4, groups=2, chunk=16),
    Tiny("dense-all-attention-rope", (A, A), rope=True),  # the non-hybrid micro's shape
]


def randomize(model, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)

    def uniform(p, low, high):
        p.data = torch.empty(p.shape).uniform_(low, high, generator=gen)

    for name, p in model.named_parameters():
        if name.endswith("A_log"):
            uniform(p, -3.0, 2.0)  # A = -exp(A_log) in [-7.4, -0.05]
        elif name.endswith("dt_bias"):
            uniform(p, -4.0, 2.0)  # softplus -> dt in [0.02, 2.1]
        elif name.endswith(".D"):
            uniform(p, -2.0, 2.0)
        elif "norm" in name or name.endswith("conv1d.bias"):
            uniform(p, -1.5, 1.5)
        elif p.dim() >= 2:
            p.data = torch.randn(p.shape, generator=gen) * 0.1


def write(tiny: Tiny, folder: Path, seed: int = 0) -> Path:
    from transformers import GraniteMoeHybridForCausalLM

    torch.manual_seed(seed)
    model = GraniteMoeHybridForCausalLM(tiny.hf_config())
    randomize(model, seed)
    if tiny.tied:
        model.tie_weights()
    model.save_pretrained(folder)
    return folder


def reference(folder: Path, dtype=torch.float32):
    """transformers' model on the bit-stable paths (eager attention, eager experts)."""
    from transformers import GraniteMoeHybridForCausalLM

    return GraniteMoeHybridForCausalLM.from_pretrained(
        folder, dtype=dtype, attn_implementation="eager", experts_implementation="eager"
    ).eval()


def close(actual: torch.Tensor, expected: torch.Tensor, rel: float = 1e-4) -> None:
    """The issue's relative error: max|ours - ref| <= rel * max|ref|."""
    error = (actual.float() - expected.float()).abs().max().item()
    scale = expected.float().abs().max().item()
    assert error <= rel * scale, f"max error {error:.3g} exceeds {rel:g} x max|ref| {scale:.3g}"
