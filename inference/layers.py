"""The model's building blocks other than the mixers: linear, norm, shared MLP, MoE.

Module and attribute names mirror the checkpoint's tensor names (`../shared/reference`, §2), so
loading a checkpoint is an identity mapping of names.
"""

import torch
import torch.nn.functional as F
from torch import nn

import kernels
from inference.config import HybridConfig
from kernels.matmul import linear
from kernels.moe import moe_block


class Linear(nn.Linear):
    """nn.Linear whose product follows `kernels.matmul.linear` (bf16 weights on CPUs without fast
    bf16 matmuls multiply in fp32); same parameters and checkpoint names."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)


class RMSNorm(nn.Module):
    def __init__(self, size: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return kernels.rms_norm(x, self.weight, self.eps)


class SharedMLP(nn.Module):
    """SwiGLU with a fused [gate; up] input projection."""

    def __init__(self, hidden: int, width: int):
        super().__init__()
        self.input_linear = Linear(hidden, 2 * width, bias=False)
        self.output_linear = Linear(width, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.input_linear(x).chunk(2, dim=-1)
        return self.output_linear(F.silu(gate).mul_(up))


class Weight(nn.Module):
    """A bare parameter under the name `weight` (the expert tensors are stored this way)."""

    def __init__(self, *shape: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(*shape))


class Router(nn.Module):
    def __init__(self, hidden: int, experts: int):
        super().__init__()
        self.layer = Linear(hidden, experts, bias=False)


class MoE(nn.Module):
    """Top-k routing on the raw router logits, softmax over the k, routed SwiGLU experts."""

    def __init__(self, config: HybridConfig):
        super().__init__()
        e, i, h = config.num_local_experts, config.intermediate_size, config.hidden_size
        self.top_k = config.num_experts_per_tok
        self.router = Router(h, e)
        self.input_linear = Weight(e, 2 * i, h)  # [gate; up] per expert
        self.output_linear = Weight(e, h, i)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = x.reshape(-1, x.shape[-1])  # [b*t, H]
        out = moe_block(tokens, self.router.layer.weight, self.input_linear.weight, self.output_linear.weight,
                        self.top_k, kernels.moe_route, kernels.moe_experts)
        return out.view(x.shape)
