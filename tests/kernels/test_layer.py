"""A whole decoder layer's decode step as one op: the C kernel and the PyTorch path against the references."""

import dataclasses
import math
import shutil

import pytest
import torch

from kernels import attention_native, layer, layer_native
from kernels.layer import AttentionStep, ExpertsStep, KVSlot, LayerRun, LayerStep
from tests.kernels.helpers import close
from tests.kernels.test_mamba import _step as mamba_mixer

needs_native = pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                                  reason="no C compiler: the C kernels are not built here")


def _randn(gen, *shape, scale=1.0, dtype=torch.float32):
    return (torch.randn(*shape, generator=gen) * scale).to(dtype)


def _layer(mixer, hidden, width, dtype, gen):
    return LayerStep(input_norm=1 + _randn(gen, hidden, scale=0.1), post_norm=1 + _randn(gen, hidden, scale=0.1),
                     eps=1e-5, residual=0.25, mixer=mixer,
                     mlp_in=_randn(gen, 2 * width, hidden, scale=hidden**-0.5, dtype=dtype),
                     mlp_out=_randn(gen, hidden, width, scale=width**-0.5, dtype=dtype))


def _attention_mixer(hidden, heads, kv_heads, head_dim, dtype, gen):
    return AttentionStep(q_proj=_randn(gen, heads * head_dim, hidden, scale=hidden**-0.5, dtype=dtype),
                         k_proj=_randn(gen, kv_heads * head_dim, hidden, scale=hidden**-0.5, dtype=dtype),
                         v_proj=_randn(gen, kv_heads * head_dim, hidden, scale=hidden**-0.5, dtype=dtype),
                         o_proj=_randn(gen, hidden, heads * head_dim, scale=(heads * head_dim) ** -0.5, dtype=dtype),
                         biases=(None,) * 4, heads=heads, kv_heads=kv_heads, head_dim=head_dim, scale=head_dim**-0.5)


def _no_fallback(*args):
    raise AssertionError("the C kernel declined these inputs")


@needs_native
def test_native_kernel_builds_where_a_compiler_exists():
    assert layer_native.available()


@needs_native
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("b", [1, 2])
def test_mamba_layer_steps_match_the_reference(b, dtype, monkeypatch):
    gen = torch.Generator().manual_seed(0)
    hidden, width = 40, 24
    step = _layer(mamba_mixer(hidden, 8, 16, 1, 32, dtype, biases=b == 2, limits=(0.0, math.inf)), hidden, width,
                  dtype, gen)
    conv0, ssm0 = _randn(gen, b, 8 * 16 + 64, 3, dtype=dtype), _randn(gen, b, 8, 16, 32)
    states = {name: (conv0.clone(), ssm0.clone()) for name in ("ref", "torch", "c")}
    torch_path = layer.layer_step
    for _ in range(3):
        x = _randn(gen, b, 1, hidden, scale=3.0)
        expected = layer.layer_step_ref(x, step, states["ref"])
        monkeypatch.setattr(layer, "layer_step", torch_path)
        close(torch_path(x, step, states["torch"]), expected, 2e-2 if dtype == torch.bfloat16 else 1e-4)
        monkeypatch.setattr(layer, "layer_step", _no_fallback)
        out = layer_native.layer_step(x, step, states["c"])
        assert out.shape == (b, 1, hidden) and out.dtype == torch.float32
        close(out, expected, 1e-4)
    for name in ("torch", "c"):  # the states advanced alike (the conv state holds inputs rounded to its dtype)
        close(states[name][0], states["ref"][0], 1e-2 if dtype == torch.bfloat16 else 1e-5)
        close(states[name][1], states["ref"][1], 1e-4)


def _slot(storage_k, storage_v, earlier, n):
    """The layer's own n positions plus the new one, after `earlier` segments."""
    return KVSlot(earlier, storage_k[:, :, : n + 1], storage_v[:, :, : n + 1])


@needs_native
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("b, heads, kv_heads, head_dim, earlier_lengths, own", [
    (1, 12, 4, 64, (), 2500),          # h-350m's heads; several blocks of keys
    (2, 4, 2, 32, (700, 1), 3),        # a batch continuing two shared segments
    (1, 6, 6, 16, (), 0),              # the first position: the new key is the only one
])
def test_attention_layer_steps_match_the_reference(b, heads, kv_heads, head_dim, earlier_lengths, own, dtype,
                                                   monkeypatch):
    gen = torch.Generator().manual_seed(1)
    hidden, width = 48, 32
    step = _layer(_attention_mixer(hidden, heads, kv_heads, head_dim, dtype, gen), hidden, width, dtype, gen)
    earlier = tuple((_randn(gen, b, kv_heads, n, head_dim, dtype=dtype), _randn(gen, b, kv_heads, n, head_dim, dtype=dtype))
                    for n in earlier_lengths)
    room = own + 5  # growable storage: capacity beyond the slot
    storages = {name: (_randn(torch.Generator().manual_seed(2), b, kv_heads, room, head_dim, dtype=dtype),
                       _randn(torch.Generator().manual_seed(3), b, kv_heads, room, head_dim, dtype=dtype))
                for name in ("ref", "torch", "c")}
    x = _randn(gen, b, 1, hidden, scale=3.0)
    expected = layer.layer_step_ref(x, step, _slot(*storages["ref"], earlier, own))
    torch_out = layer.layer_step(x, step, _slot(*storages["torch"], earlier, own))
    close(torch_out, expected, 2e-2 if dtype == torch.bfloat16 else 1e-4)
    monkeypatch.setattr(layer, "layer_step", _no_fallback)
    out = layer_native.layer_step(x, step, _slot(*storages["c"], earlier, own))
    assert out.shape == (b, 1, hidden) and out.dtype == torch.float32
    close(out, expected, 1e-4)
    for name in ("torch", "c"):  # the new key and value were written at the slot, and only there
        for mine, reference in zip(storages[name], storages["ref"]):
            close(mine[:, :, own], reference[:, :, own], 1e-2 if dtype == torch.bfloat16 else 1e-5)
            assert torch.equal(mine[:, :, :own], reference[:, :, :own])
            assert torch.equal(mine[:, :, own + 1 :], reference[:, :, own + 1 :])


def _experts(hidden, count, width, k, dtype, gen):
    return ExpertsStep(router=_randn(gen, count, hidden, scale=hidden**-0.5, dtype=dtype),
                       w_in=_randn(gen, count, 2 * width, hidden, scale=hidden**-0.5, dtype=dtype),
                       w_out=_randn(gen, count, hidden, width, scale=width**-0.5, dtype=dtype), top_k=k)


@needs_native
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("b", [1, 3])
@pytest.mark.parametrize("kind", ["mamba", "attention"])
def test_moe_layer_steps_match_the_torch_path_and_the_reference(kind, b, dtype, monkeypatch):
    """A MoE layer (h-tiny's kind): the routed experts' sum joins the shared MLP's. The C kernel rounds
    where the PyTorch path does (tokens, routing weights and the experts' sum in bf16), so it is held
    to that path closely and to the reference (which sums every expert densely) loosely."""
    gen = torch.Generator().manual_seed(5)
    hidden, width = 48, 32
    if kind == "mamba":
        mixer = mamba_mixer(hidden, 8, 16, 1, 32, dtype, biases=False, limits=(0.0, math.inf))
        state = lambda: (_randn(torch.Generator().manual_seed(6), b, 8 * 16 + 64, 3, dtype=dtype),  # noqa: E731
                         _randn(torch.Generator().manual_seed(7), b, 8, 16, 32))
    else:
        mixer = _attention_mixer(hidden, 6, 2, 16, dtype, gen)
        state = lambda: KVSlot((), _randn(torch.Generator().manual_seed(6), b, 2, 41, 16, dtype=dtype),  # noqa: E731
                               _randn(torch.Generator().manual_seed(7), b, 2, 41, 16, dtype=dtype))
    step = dataclasses.replace(_layer(mixer, hidden, width, dtype, gen), experts=_experts(hidden, 8, 16, 3, dtype, gen))
    torch_path = layer.layer_step
    for _ in range(2):
        x = _randn(gen, b, 1, hidden, scale=3.0)
        expected = layer.layer_step_ref(x, step, state())
        monkeypatch.setattr(layer, "layer_step", torch_path)
        by_torch = torch_path(x, step, state())
        monkeypatch.setattr(layer, "layer_step", _no_fallback)
        out = layer_native.layer_step(x, step, state())
        assert out.shape == (b, 1, hidden) and out.dtype == torch.float32
        close(out, by_torch, 1e-4)
        close(out, expected, 2e-2 if dtype == torch.bfloat16 else 1e-4)
        assert not torch.allclose(out, layer_native.layer_step(x, dataclasses.replace(step, experts=None), state()))


def test_inputs_the_c_code_declines_take_the_torch_path():
    gen = torch.Generator().manual_seed(4)
    hidden, width = 40, 20  # hidden is a multiple of 8 but the MLP's width 20 is not
    step = _layer(_attention_mixer(hidden, 4, 2, 16, torch.float32, gen), hidden, width, torch.float32, gen)
    k, v = _randn(gen, 1, 2, 9, 16), _randn(gen, 1, 2, 9, 16)
    k2, v2 = k.clone(), v.clone()
    x = _randn(gen, 1, 1, hidden)
    close(layer_native.layer_step(x, step, KVSlot((), k[:, :, :5], v[:, :, :5])),
          layer.layer_step_ref(x, step, KVSlot((), k2[:, :, :5], v2[:, :, :5])), 1e-4)
    assert torch.equal(k, k2) and torch.equal(v, v2)


def test_segment_table_refuses_mixed_dtypes():
    k = torch.zeros(1, 2, 4, 8)
    assert attention_native.segment_table([(k, k), (k.bfloat16(), k.bfloat16())]) is None
    assert attention_native.segment_table([(k, k)]).tolist()[0][2:] == [4, 64, 32, 8, 64, 32, 8]
    assert attention_native.segment_table([(k[0], k[0])]) is None  # not [b, kv_heads, n, d]


def _run_of_layers(hidden, width, dtype, gen):
    """Four layers as the hybrids mix them: Mamba, attention, a MoE Mamba layer, Mamba with biases."""
    mamba = [mamba_mixer(hidden, 8, 16, 1, 32, dtype, biases=seed == 3, limits=(0.0, math.inf), seed=seed)
             for seed in (1, 2, 3)]
    experts = _experts(hidden, 8, 16, 3, dtype, gen)
    return LayerRun((_layer(mamba[0], hidden, width, dtype, gen),
                     _layer(_attention_mixer(hidden, 6, 2, 16, dtype, gen), hidden, width, dtype, gen),
                     dataclasses.replace(_layer(mamba[1], hidden, width, dtype, gen), experts=experts),
                     _layer(mamba[2], hidden, width, dtype, gen)))


def _run_states(b, dtype, gen, room):
    """The run's states: (conv, ssm) per Mamba layer; the attention layer's earlier segment and storage."""
    def mamba():
        return _randn(gen, b, 8 * 16 + 64, 3, dtype=dtype), _randn(gen, b, 8, 16, 32)
    earlier = ((_randn(gen, b, 2, 30, 16, dtype=dtype), _randn(gen, b, 2, 30, 16, dtype=dtype)),)
    return [mamba(), (earlier, _randn(gen, b, 2, room, 16, dtype=dtype), _randn(gen, b, 2, room, 16, dtype=dtype)),
            mamba(), mamba()]


def _token_states(states, position):
    """What a token at the layer's own `position` hands each layer (an attention layer gets its slot)."""
    return [_slot(state[1], state[2], state[0], position) if len(state) == 3 else state for state in states]


def _copied(states):
    return [tuple(t.clone() if isinstance(t, torch.Tensor) else t for t in state) for state in states]


@needs_native
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("b", [1, 3])
def test_a_run_of_layers_in_one_call_equals_its_layers_one_by_one(b, dtype, monkeypatch):
    """`layers_step` in one C call against the same C kernel called per layer (bit for bit: the same
    arithmetic) and the reference, over tokens whose packed calls are reused, then on states given
    new storage (the calls must be packed again: a stale address would read the old states)."""
    gen = torch.Generator().manual_seed(8)
    hidden, width = 48, 32
    run = _run_of_layers(hidden, width, dtype, gen)
    states = _run_states(b, dtype, gen, room=12)
    mine, by_layer, ref = states, _copied(states), _copied(states)
    monkeypatch.setattr(layer, "layer_step", _no_fallback)
    monkeypatch.setattr(layer, "layers_step", _no_fallback)
    for position in range(6):
        if position == 3:
            mine = _copied(mine)
        x = _randn(gen, b, 1, hidden, scale=3.0)
        out = layer_native.layers_step(x, run, _token_states(mine, position))
        one_by_one = x
        for step, state in zip(run.steps, _token_states(by_layer, position)):
            one_by_one = layer_native.layer_step(one_by_one, step, state)
        expected = layer.layers_step_ref(x, run, _token_states(ref, position))
        assert out.shape == (b, 1, hidden) and out.dtype == torch.float32
        assert torch.equal(out, one_by_one)
        close(out, expected, 2e-2 if dtype == torch.bfloat16 else 1e-4)
    for state, other in zip(mine, by_layer):
        for t, u in zip(state, other):
            assert t is u or torch.equal(t, u)  # (an attention layer's shared segment is the same tensor)


def test_a_run_with_a_layer_the_c_code_declines_takes_the_per_layer_path():
    gen = torch.Generator().manual_seed(9)
    hidden = 48
    run = _run_of_layers(hidden, 32, torch.float32, gen)
    declined = _layer(_attention_mixer(hidden, 4, 2, 16, torch.float32, gen), hidden, 20, torch.float32, gen)
    run = LayerRun((*run.steps, declined))  # the MLP's width 20 is not a multiple of 8
    states = _run_states(1, torch.float32, gen, room=4) + [((), _randn(gen, 1, 2, 4, 16), _randn(gen, 1, 2, 4, 16))]
    ref = _copied(states)
    x = _randn(gen, 1, 1, hidden)
    close(layer_native.layers_step(x, run, _token_states(states, 2)),
          layer.layers_step_ref(x, run, _token_states(ref, 2)), 1e-4)
