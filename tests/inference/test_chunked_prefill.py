"""Reading long inputs in pieces: chunked == single pass, attention in parts, shared state K/V."""

import contextlib
import io

import pytest
import torch

from inference import HybridModel
from inference import attention
from inference.progress import ProgressBar
from kernels.attention import merge
from tests.inference.tiny import close


@pytest.fixture(scope="module")
def model(tiny_folder):
    return HybridModel.from_pretrained(tiny_folder, dtype=torch.float32)


@pytest.fixture(scope="module")
def ids():
    return torch.randint(3, 320, (2, 90), generator=torch.Generator().manual_seed(11))


def single_pass(model, ids, **kwargs):
    chunk, model.prefill_chunk = model.prefill_chunk, 1 << 30
    try:
        return model(ids, **kwargs)
    finally:
        model.prefill_chunk = chunk


@pytest.mark.parametrize("chunk", [1, 7, 32, 89])
def test_chunked_forward_equals_one_pass(model, ids, chunk):
    model.prefill_chunk = chunk
    try:
        seen = []
        chunked = model(ids, progress=lambda done, total: seen.append((done, total)))
        last = model(ids, last_only=True)
    finally:
        model.prefill_chunk = 1024
    full = single_pass(model, ids)
    close(chunked, full)
    close(last, full[:, -1])
    layers = model.config.num_hidden_layers  # reported after each layer, in proportion
    spans = [(start, min(start + chunk, 90)) for start in range(0, 90, chunk)]
    assert [done for done, _ in seen] == [a + (b - a) * (i + 1) // layers for a, b in spans for i in range(layers)]
    assert {total for _, total in seen} == {90}


class Stop(Exception):
    pass


@contextlib.contextmanager
def layers_finished_in_pieces_of(model, tokens: int):
    """Reads in pieces of `tokens`; yields the list that gets one entry per layer that finished."""
    layers_run = []
    hooks = [layer.register_forward_hook(lambda *_: layers_run.append(1)) for layer in model.model.layers]
    model.prefill_chunk = tokens
    try:
        yield layers_run
    finally:
        model.prefill_chunk = 1024
        for hook in hooks:
            hook.remove()


def test_a_progress_callback_stops_a_read_between_layers(model, ids):
    def stop_after_the_first_layer(done, total):
        raise Stop

    with layers_finished_in_pieces_of(model, 32) as layers_run, pytest.raises(Stop):
        model(ids, cache=model.new_cache(2), progress=stop_after_the_first_layer)
    assert len(layers_run) == 1  # of the 3 layers x 3 pieces: stopped within the first piece


def test_a_progress_callback_stops_a_long_attention_between_parts(model, ids, monkeypatch):
    monkeypatch.setattr(attention, "STOP_BLOCK", 8)  # the second piece's attention: 32 cached keys, 4 parts
    seen = []

    def stop_inside_attention(done, total):
        if seen and seen[-1] == done:  # reported again without a layer finishing: between attention parts
            raise Stop
        seen.append(done)

    with layers_finished_in_pieces_of(model, 32) as layers_run, pytest.raises(Stop):
        model(ids, cache=model.new_cache(2), progress=stop_inside_attention)
    assert model.config.layer_types[:2] == ("mamba", "attention")
    assert len(layers_run) == 4  # the first piece's 3 layers and the second's Mamba layer
    assert seen == [10, 21, 32, 42]  # the attention layer of the second piece never finished


@pytest.mark.parametrize("name", ["dense-attn-first", "dense-all-attention-rope", "moe-attn-first-g2"])
def test_chunked_prefill_into_a_cache_across_the_matrix(name, tiny_folders, ids):
    model = HybridModel.from_pretrained(tiny_folders[name], dtype=torch.float32)
    full = single_pass(model, ids[:, :60])
    model.prefill_chunk = 16
    cache = model.new_cache(batch_size=2)
    last = model(ids[:, :50], cache=cache, last_only=True)
    close(last, full[:, 49])
    close(model(ids[:, 50:60], cache=cache), full[:, 50:60])


def test_padded_batch_in_pieces_equals_each_prompt_alone(model):
    gen = torch.Generator().manual_seed(5)
    short, long = torch.randint(3, 320, (1, 9), generator=gen), torch.randint(3, 320, (1, 40), generator=gen)
    batch = torch.cat([torch.cat([torch.zeros(1, 31, dtype=torch.long), short], dim=1), long])
    mask = torch.ones_like(batch)
    mask[0, :31] = 0
    model.prefill_chunk = 8  # the first pieces of row 0 are padding only
    try:
        cache = model.new_cache(batch_size=2)
        first = model(batch, cache=cache, attention_mask=mask, last_only=True)
        step = model(torch.tensor([[11], [12]]), cache=cache, last_only=True)
    finally:
        model.prefill_chunk = 1024
    for row, (prompt, token) in enumerate([(short, 11), (long, 12)]):
        alone = single_pass(model, torch.cat([prompt, torch.tensor([[token]])], dim=1))
        close(first[row], alone[0, -2])
        close(step[row], alone[0, -1])


def test_forked_state_shares_the_keys_and_leaves_the_state_untouched(model, ids):
    state = model.new_cache(batch_size=2)
    model(ids[:, :40], cache=state)
    attention = next(i for i, kind in enumerate(model.config.layer_types) if kind == "attention")
    keys_before = state.layers[attention].keys.view().clone()
    fork = state.copy(headroom=4)
    shared_keys = fork.layers[attention].segments()[0][0]
    assert shared_keys.data_ptr() == state.layers[attention].keys.view().data_ptr()  # no copy
    close(model(ids[:, 40:50], cache=fork), single_pass(model, ids[:, :50])[:, 40:])
    assert state.length == 40 and torch.equal(state.layers[attention].keys.view(), keys_before)
    again = state.copy()  # a second question from the same state sees only the state
    close(model(ids[:, 40:41], cache=again), single_pass(model, ids[:, :41])[:, 40:])
    assert fork.nbytes > state.nbytes


def test_a_fork_of_a_fork_saves_and_loads_as_one_cache(model, ids, tmp_path):
    state = model.new_cache(batch_size=2)
    model(ids[:, :20], cache=state)
    fork = state.copy()
    model(ids[:, 20:30], cache=fork)
    grandchild = fork.copy()
    model(ids[:, 30:35], cache=grandchild)
    grandchild.save(tmp_path / "three.safetensors")
    loaded = model.load_cache(tmp_path / "three.safetensors")
    assert loaded.length == 35 and len(loaded.layers[1].segments()) == 1
    # Three segments merged by their log-sum-exp vs one: equal up to fp32 rounding.
    close(model(ids[:, 35:36], cache=loaded), model(ids[:, 35:36], cache=grandchild), rel=1e-6)


@pytest.mark.parametrize("path", ["flash", "reference"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_attention_in_parts_equals_plain_softmax_attention(dtype, path, monkeypatch):
    if path == "reference":  # what non-CPU devices run, in blocks of REFERENCE_BLOCK keys
        monkeypatch.setattr(attention, "flash_available", lambda q: False)
        monkeypatch.setattr(attention, "REFERENCE_BLOCK", 5)
    gen = torch.Generator().manual_seed(0)
    b, nh, nkv, d, t = 2, 6, 2, 16, 5
    segments = [(torch.randn(b, nkv, s, d, generator=gen).to(dtype), torch.randn(b, nkv, s, d, generator=gen).to(dtype))
                for s in (7, 1, 12)]  # the last segment ends with the t queries' own positions
    q = torch.randn(b, nh, t, d, generator=gen).to(dtype)
    bias = torch.zeros(b, 20, dtype=dtype)
    bias[1, :9] = -torch.inf  # row 1 is left-padded: its first two segments are all padding
    keys, values = (torch.cat([s[i] for s in segments], dim=2).float().repeat_interleave(3, dim=1) for i in (0, 1))
    allowed = torch.ones(t, 20, dtype=torch.bool).tril(diagonal=20 - t)
    scores = (q.float() @ keys.transpose(-1, -2)) / 4 + bias.float()[:, None, None]
    expected = scores.masked_fill(~allowed, -torch.inf).softmax(dim=-1) @ values
    tolerance = 1e-5 if dtype == torch.float32 else 2e-2  # bf16: q, k, v and the output are rounded to 8 bits
    close(attention.attend(q, segments, t, 1 / 4, bias), expected, rel=tolerance)
    close(attention.attend(q[:, :, -1:], segments, 1, 1 / 4, bias), expected[:, :, -1:], rel=tolerance)
    monkeypatch.setattr(attention, "STOP_BLOCK", 4)  # a stoppable read takes the earlier keys in parts
    checks = []
    close(attention.attend(q, segments, t, 1 / 4, bias, check=lambda: checks.append(1)), expected, rel=tolerance)
    assert len(checks) == 4  # between the parts of the 7, 1 and 7 earlier keys: 4+3 | 1 | 4+3


def test_merge_of_one_part_is_that_part():
    out, lse = torch.randn(1, 2, 3, 4), torch.randn(1, 2, 3)
    assert merge([(out, lse)]) is out


def test_progress_bar_lines():
    terminal = io.StringIO()
    terminal.isatty = lambda: True
    bar = ProgressBar(terminal)
    bar(1024, 4096)
    bar(4096, 4096)
    text = terminal.getvalue()
    assert text.startswith("\rreading  [#####...............]  1,024 / 4,096 tokens")
    assert "tok/s  ETA " in text and text.endswith("tok/s  done in 0s\n")
    log = io.StringIO()
    quiet = ProgressBar(log)
    quiet(1024, 4096)  # not a terminal: nothing until LOG_EVERY seconds pass or the end
    quiet(4096, 4096)
    assert log.getvalue().count("\n") == 1 and "4,096 / 4,096 tokens" in log.getvalue()
