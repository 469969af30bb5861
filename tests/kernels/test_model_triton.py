"""The whole model with every kernel op on Triton (under the interpreter) against the torch path.

Tiny random checkpoints written by transformers (the runtime tests' helper): one hybrid with
MoE, two SSM groups and attention in the middle, one dense model with attention first. Each is
run single-pass, as a chunked prefill through the cache followed by decode steps, and as greedy
generation.
"""

import pytest
import torch

import kernels
from inference import HybridModel
from tests.inference.tiny import MATRIX, close, write
from tests.kernels.triton_interpreter import interpreter

# Both paths compute in fp32 and differ only in summation order inside each op; through three
# layers that stays around 1e-6 of the largest logit, far below 1e-4 (the runtime's own bar).
REL = 1e-4
MOE, DENSE = "moe-attn-middle-g2-untied-rope", "dense-attn-first"
NAMES = [MOE, DENSE]


def bounded(default: str) -> list:
    """Both checkpoints, the one the default run does not need marked slow (the interpreter
    takes seconds per forward, and the other checkpoint covers the check by default)."""
    return [pytest.param(name, marks=() if name == default else pytest.mark.slow) for name in NAMES]

# Every kernel the model's forward and decode step launch (routing runs in the model, in torch).
KERNELS = {
    "_conv_kernel", "_conv_step_kernel", "_chunk_cumsum_kernel", "_chunk_state_kernel", "_state_passing_kernel",
    "_chunk_cb_kernel", "_chunk_scan_kernel", "_ssd_step_kernel", "_rms_norm_kernel", "_gated_rms_norm_kernel",
}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-triton")
    tinies = {tiny.name: (i, tiny) for i, tiny in enumerate(MATRIX)}
    return {
        name: HybridModel.from_pretrained(write(tinies[name][1], root / name, seed=tinies[name][0]), dtype=torch.float32)
        for name in NAMES
    }


@pytest.fixture(scope="module")
def triton_kernels():
    with interpreter() as modules:
        yield modules


@pytest.fixture
def launched(monkeypatch, triton_kernels):
    """Names of the Triton kernels launched during the test."""
    from triton.runtime.interpreter import InterpretedFunction

    names, run = set(), InterpretedFunction.run

    def spy(self, *args, **kwargs):
        names.add(self.__name__)
        return run(self, *args, **kwargs)

    monkeypatch.setattr(InterpretedFunction, "run", spy)
    return names


def prompt(batch: int, length: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(3, 320, (batch, length), generator=torch.Generator().manual_seed(seed))


def on(backend: str, step):
    with kernels.use_backend(backend):
        return step()


@pytest.mark.parametrize("name", NAMES)
def test_single_pass_equals_torch_path(models, launched, name):
    model, ids = models[name], prompt(2 if name == MOE else 1, 21)
    expected = on("torch", lambda: model(ids))
    assert not launched
    logits = on("triton", lambda: model(ids))
    close(logits, expected, REL)
    assert launched >= KERNELS - {"_conv_step_kernel", "_ssd_step_kernel"}
    if name == MOE:
        assert {"_gate_up_kernel", "_down_kernel"} <= launched


@pytest.mark.parametrize("name", bounded(MOE))
def test_chunked_prefill_and_decode_equal_torch_path(models, launched, name):
    model, ids = models[name], prompt(1, 25, seed=2)
    expected = on("torch", lambda: model(ids))  # single pass, no cache

    def chunked():
        cache, pieces = model.new_cache(), []
        for lo, hi in [(0, 9), (9, 22)]:  # 9 and 13 tokens: never whole chunks of 8 or 16
            pieces.append(model(ids[:, lo:hi], cache=cache))
        for i in range(22, 25):  # then one token at a time
            pieces.append(model(ids[:, i : i + 1], cache=cache))
        return torch.cat(pieces, dim=1)

    close(on("triton", chunked), expected, REL)
    assert launched >= KERNELS


@pytest.mark.parametrize("name", bounded(DENSE))
def test_greedy_generation_gives_identical_tokens(models, name):
    model, ids = models[name], prompt(1, 12, seed=3)

    def greedy(steps: int = 8) -> list[int]:
        cache = model.new_cache()
        logits, tokens = model(ids, cache=cache, last_only=True), []
        for _ in range(steps):
            tokens.append(int(logits.argmax(dim=-1)))
            logits = model(torch.tensor([[tokens[-1]]]), cache=cache, last_only=True)
        return tokens

    assert on("triton", greedy) == on("torch", greedy)
