"""Compute ops for the Granite 4.0 H runtime, each with a reference and fast paths.

Layout: one module per op family, holding the plain reference (`*_ref`, obviously correct, slow)
beside the fast PyTorch path for CPU; a Triton kernel for GPU goes in `<module>_triton.py` under
the same function name and is picked up by `dispatch.py` without further wiring.

| module | ops |
|---|---|
| `ssd.py` | `ssd_scan` (chunked SSD, state in/out), `ssd_step` (one decode step; C kernel in `ssd_native.py`) |
| `conv1d.py` | `causal_conv1d` (prefill, state in/out), `causal_conv1d_step` (decode; C kernel in `conv1d_native.py`) |
| `norm.py` | `rms_norm`, `add_rms_norm` (residual add + norm), `gated_rms_norm` (decode rows: C kernels in `norm_native.py`) |
| `moe.py` | `moe_route` (top-k + softmax over k), `moe_experts` (only the routed experts run) |
| `mamba.py` | `mamba_step` (a whole Mamba-2 mixer for one decoded token; C kernel in `mamba_native.py`) |
| `layer.py` | `layer_step` (a whole decoder layer for one decoded token), `layers_step` (all of them in one call); C kernels in `layer_native.py` |
| `attention.py` | `decode_attention` (one query over a long KV cache; C kernel in `attention_native.py`) |
| `matmul.py` | `linear` (bf16 weights on CPUs without bf16 matmuls; C GEMV in `matmul_native.py`) |

Model code calls the names exported here; `TOME_KERNELS=triton|torch|reference` picks the
implementation (see `dispatch.py`). Importing this package needs neither Triton nor CUDA.
"""

from kernels.dispatch import BACKENDS, KernelError, dispatched, selected_backend, use_backend

ssd_scan = dispatched("ssd_scan")
ssd_step = dispatched("ssd_step")
causal_conv1d = dispatched("causal_conv1d")
causal_conv1d_step = dispatched("causal_conv1d_step")
rms_norm = dispatched("rms_norm")
add_rms_norm = dispatched("add_rms_norm")
gated_rms_norm = dispatched("gated_rms_norm")
moe_route = dispatched("moe_route")
moe_experts = dispatched("moe_experts")
decode_attention = dispatched("decode_attention")
mamba_step = dispatched("mamba_step")
layer_step = dispatched("layer_step")
layers_step = dispatched("layers_step")

__all__ = [
    "BACKENDS",
    "KernelError",
    "add_rms_norm",
    "causal_conv1d",
    "causal_conv1d_step",
    "decode_attention",
    "gated_rms_norm",
    "layer_step",
    "layers_step",
    "mamba_step",
    "moe_experts",
    "moe_route",
    "rms_norm",
    "selected_backend",
    "ssd_scan",
    "ssd_step",
    "use_backend",
]
