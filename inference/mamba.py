"""The Mamba-2 mixer (checkpoint attribute `mamba`):

    z | xBC | dt = in_proj(h)
    x | B | C   = silu(causal_conv1d(xBC))               (conv carries state across calls)
    y           = SSD(x, softplus(dt + dt_bias), A = -exp(A_log), B, C) + D * x
    out         = out_proj(gated_rms_norm(y, z))         (gate before the norm, grouped by G)
"""

import torch
from torch import nn

import kernels
from inference.cache import MambaState
from inference.config import HybridConfig
from inference.layers import Linear, Weight
from kernels.mamba import MambaStep, decay_rates, time_step


class Mamba2Mixer(nn.Module):
    def __init__(self, config: HybridConfig):
        super().__init__()
        h, bias = config.hidden_size, config.mamba_proj_bias
        self.n_heads, self.d_head = config.mamba_n_heads, config.mamba_d_head
        self.n_groups, self.d_state = config.mamba_n_groups, config.mamba_d_state
        self.d_inner, self.conv_dim = config.mamba_d_inner, config.mamba_conv_dim
        self.chunk_size, self.eps = config.mamba_chunk_size, config.rms_norm_eps
        self.time_step_limit = config.time_step_limit
        self.in_proj = Linear(h, self.d_inner + self.conv_dim + self.n_heads, bias=bias)
        self.conv1d = nn.Conv1d(self.conv_dim, self.conv_dim, config.mamba_d_conv, groups=self.conv_dim,
                                bias=config.mamba_conv_bias)
        self.dt_bias = nn.Parameter(torch.empty(self.n_heads))
        self.A_log = nn.Parameter(torch.empty(self.n_heads))
        self.D = nn.Parameter(torch.empty(self.n_heads))
        self.norm = Weight(self.d_inner)  # the gated RMSNorm's weight
        self.out_proj = Linear(self.d_inner, h, bias=bias)

    def forward(self, h: torch.Tensor, state: MambaState | None, pad: torch.Tensor | None) -> torch.Tensor:
        """h [b, t, H] -> [b, t, H]; `state` (if any) is continued and updated; `pad` [b, t] zeroes padding."""
        if pad is not None:
            h = h * pad[..., None]  # padding must leave the conv and SSM states at zero
        if state is not None and h.shape[1] == 1:  # a decoded token: one op (one C call on a CPU)
            return kernels.mamba_step(h, self.decode_step(), state.conv, state.ssm)
        z, xBC, dt = self.in_proj(h).split([self.d_inner, self.conv_dim, self.n_heads], dim=-1)
        y = self._scan(xBC, time_step(dt, self.dt_bias, self.time_step_limit), state, pad)
        y = kernels.gated_rms_norm(y, z, self.norm.weight, self.n_groups, self.eps)
        return self.out_proj(y)

    def _scan(self, xBC: torch.Tensor, dt: torch.Tensor, state: MambaState | None,
              pad: torch.Tensor | None) -> torch.Tensor:
        b, t, _ = xBC.shape
        weight, bias = self._conv_parameters(xBC.dtype)
        xBC, conv_state = kernels.causal_conv1d(xBC.transpose(1, 2), weight, bias, None if state is None else state.conv)
        xBC = xBC.transpose(1, 2)  # [b, t, conv_dim]
        if pad is not None:
            xBC = xBC * pad[..., None]
        x, B, C = xBC.split([self.d_inner, self.n_groups * self.d_state, self.n_groups * self.d_state], dim=-1)
        y, ssm_state = kernels.ssd_scan(
            x.view(b, t, self.n_heads, self.d_head), dt, self.A, B.view(b, t, self.n_groups, self.d_state),
            C.view(b, t, self.n_groups, self.d_state), self.D, self.chunk_size, None if state is None else state.ssm,
        )
        if state is not None:
            state.conv.copy_(conv_state)  # in place, in the cache's dtype
            state.ssm = ssm_state
        return y.flatten(2)  # [b, t, d_inner] fp32

    def decode_step(self) -> MambaStep:
        """The parameters a decoded token's step reads (`kernels.mamba_step`, `kernels.layer_step`)."""
        # The taps and 1-D parameters as stored: the ops promote 16-bit ones themselves.
        return MambaStep(
            self.in_proj.weight, self.in_proj.bias, self.conv1d.weight[:, 0], self.conv1d.bias, self.dt_bias,
            self.A_log, self.D, self.norm.weight, self.out_proj.weight, self.out_proj.bias, self.n_heads,
            self.d_head, self.n_groups, self.d_state, self.time_step_limit, self.eps)

    def _conv_parameters(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The depthwise conv's taps [conv_dim, d_conv] and bias in the activations' dtype."""
        bias = None if self.conv1d.bias is None else self.conv1d.bias.to(dtype)
        return self.conv1d.weight[:, 0].to(dtype), bias

    @property
    def A(self) -> torch.Tensor:
        return decay_rates(self.A_log)
