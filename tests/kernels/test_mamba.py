"""A whole Mamba-2 mixer's decode step as one op: the C kernel and the PyTorch path against the references."""

import math

import pytest
import torch

from kernels import mamba, mamba_native
from tests.kernels.helpers import close


def _step(hidden, heads, head_dim, groups, state_size, dtype, biases, limits, seed=0):
    gen = torch.Generator().manual_seed(seed)
    d_inner = heads * head_dim
    conv_dim = d_inner + 2 * groups * state_size

    def randn(*shape, scale=1.0, dt=torch.float32):
        return (torch.randn(*shape, generator=gen) * scale).to(dt)

    return mamba.MambaStep(
        in_proj=randn(d_inner + conv_dim + heads, hidden, scale=hidden**-0.5, dt=dtype),
        in_bias=randn(d_inner + conv_dim + heads, scale=0.1) if biases else None,
        conv=randn(conv_dim, 4, scale=0.5), conv_bias=randn(conv_dim, scale=0.1) if biases else None,
        dt_bias=randn(heads) - 2, A_log=torch.rand(heads, generator=gen) * 2, D=randn(heads) if biases else None,
        norm=1 + randn(d_inner, scale=0.1), out_proj=randn(hidden, d_inner, scale=d_inner**-0.5, dt=dtype),
        out_bias=randn(hidden, scale=0.1) if biases else None, heads=heads, head_dim=head_dim, groups=groups,
        state_size=state_size, dt_limits=limits, eps=1e-5)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("b, heads, head_dim, groups, state_size, biases, limits", [
    (1, 8, 16, 1, 32, False, (0.0, math.inf)),  # the released mixers' layout, small
    (2, 6, 8, 2, 16, True, (0.01, 0.2)),        # a batch, groups, every bias, limits that clamp
])
def test_decode_steps_match_the_references(b, heads, head_dim, groups, state_size, biases, limits, dtype,
                                           monkeypatch):
    hidden = 40
    step = _step(hidden, heads, head_dim, groups, state_size, dtype, biases, limits)
    conv_dim = heads * head_dim + 2 * groups * state_size
    gen = torch.Generator().manual_seed(1)
    conv0 = torch.randn(b, conv_dim, 3, generator=gen).to(dtype)
    ssm0 = torch.randn(b, heads, head_dim, state_size, generator=gen)
    states = {name: (conv0.clone(), ssm0.clone()) for name in ("ref", "torch", "c")}
    torch_path = mamba.mamba_step

    def no_fallback(*args):
        raise AssertionError("the C kernel declined these inputs")

    for _ in range(4):
        h = torch.randn(b, 1, hidden, generator=gen)
        out_ref = mamba.mamba_step_ref(h, step, *states["ref"])
        for name, run in (("torch", torch_path), ("c", mamba_native.mamba_step)):
            monkeypatch.setattr(mamba, "mamba_step", no_fallback if name == "c" else torch_path)
            out = run(h, step, *states[name])
            assert out.shape == (b, 1, hidden) and out.dtype == torch.float32
            close(out, out_ref, 2e-2 if (dtype == torch.bfloat16 and name == "torch") else 1e-4)
    for name in ("torch", "c"):  # the states advanced alike
        assert torch.equal(states[name][0], states["ref"][0])
        close(states[name][1], states["ref"][1], 1e-4)


def test_states_of_the_wrong_shape_never_reach_the_c_code():
    step = _step(40, 8, 16, 1, 32, torch.float32, False, (0.0, math.inf))
    conv_state = torch.zeros(1, 8 * 16 + 2 * 32, 2)  # two kept inputs where the taps need three
    with pytest.raises(Exception, match="causal_conv1d"):
        mamba_native.mamba_step(torch.randn(1, 1, 40), step, conv_state, torch.zeros(1, 8, 16, 32))
