"""A decoded token through `kernels.layer_step` (one C call per layer on a CPU) equals the op-by-op path."""

import shutil
import types

import pytest
import torch

import kernels
from inference import HybridModel
from inference.model import DecoderLayer
from inference.shapes import write_random_checkpoint
from kernels import layer_native
from tests.inference.tiny import close

pytestmark = pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                                reason="no C compiler: the C kernels are not built here")


@pytest.fixture(scope="module")
def smoke_folder(tmp_path_factory):
    # Mamba and attention layers in sizes the C kernels take (the tiny checkpoints' d_state 12 is not one)
    return write_random_checkpoint("smoke", tmp_path_factory.mktemp("smoke"), torch.float32)


@pytest.fixture(scope="module")
def moe_folder(tmp_path_factory):
    return write_random_checkpoint("smoke-moe", tmp_path_factory.mktemp("smoke-moe"), torch.float32)


def _decode(model, prompt, steps, fork):
    """Greedy tokens and their logits; with fork, the decode continues a copy of the prompt's state
    (its attention then reads the shared segment of the prompt and its own positions)."""
    cache = model.new_cache()
    logits = model(prompt, cache=cache, last_only=True)
    if fork:
        cache = cache.copy()
    tokens, seen = [], []
    for _ in range(steps):
        token = logits.argmax(-1, keepdim=True)
        tokens.append(int(token))
        logits = model(token, cache=cache, last_only=True)
        seen.append(logits)
    return tokens, torch.cat(seen)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("fork", [False, True])
@pytest.mark.parametrize("folder", ["smoke_folder", "moe_folder"])
def test_c_layer_steps_equal_the_op_by_op_path(folder, dtype, fork, monkeypatch, request):
    model = HybridModel.from_pretrained(request.getfixturevalue(folder), dtype=dtype)
    prompt = torch.randint(3, 4000, (1, 37), generator=torch.Generator().manual_seed(0))
    with kernels.use_backend("torch"):
        expected_tokens, expected = _decode(model, prompt, 12, fork)

    def no_fallback(*args):
        raise AssertionError("the C layer kernel declined a layer of the smoke model")

    monkeypatch.setattr(layer_native, "layer", types.SimpleNamespace(layer_step=no_fallback))
    tokens, logits = _decode(model, prompt, 12, fork)
    monkeypatch.undo()
    with kernels.use_backend("torch"):  # the op-by-op path itself (a MoE layer's decode used to take it)
        monkeypatch.setattr(DecoderLayer, "_decodes_in_one_op", lambda layer, attention: False)
        by_op_tokens, by_op = _decode(model, prompt, 12, fork)
    assert tokens == expected_tokens == by_op_tokens
    close(logits, expected, rel=1e-4 if dtype == torch.float32 else 2e-2)
    close(logits, by_op, rel=1e-4 if dtype == torch.float32 else 2e-2)


def test_a_converted_model_decodes_with_its_new_weights(smoke_folder):
    """The layers keep their decode parameters between tokens; converting the model must drop them."""
    model = HybridModel.from_pretrained(smoke_folder, dtype=torch.bfloat16)
    prompt = torch.randint(3, 4000, (1, 9), generator=torch.Generator().manual_seed(1))
    _decode(model, prompt, 2, fork=False)  # the bf16 steps are now kept
    model.float()
    tokens, logits = _decode(model, prompt, 4, fork=False)
    with kernels.use_backend("torch"):
        expected_tokens, expected = _decode(model, prompt, 4, fork=False)
    assert tokens == expected_tokens
    close(logits, expected, rel=1e-4)


@pytest.mark.parametrize("folder", ["smoke_folder", "moe_folder"])
def test_parameters_replaced_under_a_kept_step_are_seen(folder, monkeypatch, request):
    """New storage for a layer's parameters (`p.data = ...`, as converting one sub-module does) under
    the kept step: the C call must use the new weights, not the old addresses (freed memory) nor
    the old conv taps (a view kept by the step)."""
    model = HybridModel.from_pretrained(request.getfixturevalue(folder), dtype=torch.bfloat16)
    prompt = torch.randint(3, 4000, (1, 9), generator=torch.Generator().manual_seed(2))
    _decode(model, prompt, 2, fork=False)
    for layer in model.model.layers:
        mixer, experts = layer.mamba if hasattr(layer, "mamba") else layer.self_attn, layer.block_sparse_moe
        for part in (mixer, layer.shared_mlp) + ((experts,) if experts is not None else ()):
            for p in part.parameters():
                p.data = p.data.flip(0).clone()  # other values, new storage
        if hasattr(layer, "mamba"):  # taps large enough to matter (the random ones are ~0.02)
            conv = layer.mamba.conv1d.weight
            conv.data = torch.randn(conv.shape, generator=torch.Generator().manual_seed(3)).to(conv.dtype)
    tokens, logits = _decode(model, prompt, 4, fork=False)
    monkeypatch.setattr(DecoderLayer, "_decodes_in_one_op", lambda layer, attention: False)  # no kept step at all
    expected_tokens, expected = _decode(model, prompt, 4, fork=False)
    assert tokens == expected_tokens
    close(logits, expected, rel=2e-2)


def test_a_long_inputs_last_piece_of_one_token_reports_its_progress(smoke_folder, monkeypatch):
    """A piece of one token goes through all the layers in one call: its progress is reported after it."""
    model = HybridModel.from_pretrained(smoke_folder, dtype=torch.float32)
    ids = torch.randint(3, 4000, (1, 17), generator=torch.Generator().manual_seed(4))
    whole = model(ids, cache=model.new_cache(), last_only=True)
    one_call, calls = kernels.layers_step, []
    monkeypatch.setattr(kernels, "layers_step", lambda *args: calls.append(1) or one_call(*args))
    model.prefill_chunk, seen = 8, []
    pieces = model(ids, cache=model.new_cache(), last_only=True, progress=lambda done, total: seen.append((done, total)))
    assert calls == [1]  # pieces of 8, 8 and 1 tokens: the last took the one call
    assert seen[-1] == (17, 17) and [done for done, _ in seen] == sorted(done for done, _ in seen)
    close(pieces, whole, rel=1e-4)
