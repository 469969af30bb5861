"""The document state cache: identical answers, stale and damaged files rebuilt, LRU cap, purge."""

import os
import time

import pytest
import torch

from inference import DocumentCache, Generator, HybridModel, InferenceError, Tokenizer
from inference import document_cache as module

CONTRACT = ("1. Term. This Agreement runs for three years. 2. Fees. The Customer pays 1,000 USD per month. "
            "3. Indemnity. The Supplier indemnifies the Customer against third-party claims. ") * 6


def prefix(text: str = CONTRACT) -> list[dict]:
    return [{"role": "system", "content": "Answer from the contract below.\n\n" + text}]


QUESTION = {"role": "user", "content": "Who indemnifies whom, and under which clause?"}


@pytest.fixture(scope="module")
def model(model_folder):
    return HybridModel.from_pretrained(model_folder, dtype=torch.float32)


@pytest.fixture(scope="module")
def tokenizer(model_folder):
    return Tokenizer.from_pretrained(model_folder)


@pytest.fixture
def builds(monkeypatch):
    """Counts the prefills the cache runs (a hit runs none)."""
    count = []
    original = Generator.prefill

    def counting(self, ids):
        count.append(len(ids))
        return original(self, ids)

    monkeypatch.setattr(Generator, "prefill", counting)
    return count


def test_cached_and_uncached_greedy_answers_are_identical(model, tokenizer, tmp_path, builds):
    gen = Generator(model, tokenizer)
    expected = gen.generate(prefix() + [QUESTION], max_new_tokens=20)
    cache = DocumentCache(tmp_path, max_bytes=1 << 30)
    state = cache.get_or_build(model, tokenizer, prefix(), "doc1", prompt_version="qa-1")
    assert builds == [state.length]
    answer = gen.generate(prefix() + [QUESTION], max_new_tokens=20, state=state)
    assert answer.token_ids == expected.token_ids and answer.cached_tokens == state.length
    # A new process (a new cache object) loads the file instead of reading the document again.
    again = DocumentCache(tmp_path, max_bytes=1 << 30).get_or_build(model, tokenizer, prefix(), "doc1",
                                                                     prompt_version="qa-1")
    assert len(builds) == 1
    assert gen.generate(prefix() + [QUESTION], max_new_tokens=20, state=again).token_ids == expected.token_ids
    follow_up = {"role": "user", "content": "And the fees?"}
    assert (gen.generate(prefix() + [follow_up], max_new_tokens=12, state=again).token_ids
            == gen.generate(prefix() + [follow_up], max_new_tokens=12).token_ids)


def test_stale_and_damaged_states_are_rebuilt_never_used(model, tokenizer, tmp_path, builds, model_folder):
    cache = DocumentCache(tmp_path, max_bytes=1 << 30)
    cache.get_or_build(model, tokenizer, prefix(), "doc1", prompt_version="qa-1")
    path = cache.path(model, "doc1", "qa-1")
    edited = prefix(CONTRACT.replace("three years", "five years"))  # same version, another prompt
    fresh = DocumentCache(tmp_path, max_bytes=1 << 30)
    state = fresh.get_or_build(model, tokenizer, edited, "doc1", prompt_version="qa-1")
    assert len(builds) == 2 and state.token_ids[0].tolist() == tokenizer.encode_chat(edited, add_generation_prompt=False)
    assert model.load_cache(path).token_ids[0].tolist() == state.token_ids[0].tolist()  # replaced on disk
    path.write_bytes(path.read_bytes()[:1000])  # truncated by a crash or a full disk
    DocumentCache(tmp_path, max_bytes=1 << 30).get_or_build(model, tokenizer, edited, "doc1", prompt_version="qa-1")
    assert len(builds) == 3
    assert cache.path(model, "doc1", "qa-2") != path  # a new prompt version never reads the old file
    bf16 = HybridModel.from_pretrained(model_folder, dtype=torch.bfloat16)
    assert cache.path(bf16, "doc1", "qa-1") != path  # nor another dtype (or model: the fingerprint)


def test_least_recently_used_states_are_evicted_under_the_cap(model, tokenizer, tmp_path, builds):
    probe = DocumentCache(tmp_path / "probe", max_bytes=1 << 30)
    probe.get_or_build(model, tokenizer, prefix(), "size", prompt_version="v")
    size = probe.nbytes
    cache = DocumentCache(tmp_path / "cache", max_bytes=int(2.5 * size))  # room for two states
    texts = {name: CONTRACT.replace("Customer", name) for name in ("Alpha", "Bravo", "Gamma")}
    for name in ("Alpha", "Bravo"):
        cache.get_or_build(model, tokenizer, prefix(texts[name]), name, prompt_version="v")
        time.sleep(0.01)  # distinct modification times
    cache.get_or_build(model, tokenizer, prefix(texts["Alpha"]), "Alpha", prompt_version="v")  # a hit: now newest
    time.sleep(0.01)
    cache.get_or_build(model, tokenizer, prefix(texts["Gamma"]), "Gamma", prompt_version="v")
    kept = sorted(path.parent.name for path in (tmp_path / "cache").glob("*/*.safetensors"))
    assert kept == ["Alpha", "Gamma"] and cache.nbytes <= cache.max_bytes
    assert len(builds) == 4  # size, Alpha, Bravo, Gamma: the second Alpha was a hit


def test_purge_removes_every_state_of_a_document(model, tokenizer, tmp_path):
    cache = DocumentCache(tmp_path, max_bytes=1 << 30)
    cache.get_or_build(model, tokenizer, prefix(), "doc1", prompt_version="qa-1")
    cache.get_or_build(model, tokenizer, prefix(), "doc1", prompt_version="qa-2")
    cache.get_or_build(model, tokenizer, prefix(CONTRACT[:200]), "doc2", prompt_version="qa-1")
    total = cache.nbytes
    assert cache.contains(model, "doc1", "qa-2") and not cache.contains(model, "doc1", "qa-3")
    freed = cache.purge("doc1")
    assert freed > 0 and cache.nbytes == total - freed
    assert not (tmp_path / "doc1").exists() and (tmp_path / "doc2").is_dir()
    assert cache.purge("doc1") == 0  # nothing left: not an error


def test_a_state_larger_than_the_cap_is_kept_in_memory_until_purged(model, tokenizer, tmp_path, builds):
    cache = DocumentCache(tmp_path, max_bytes=1000)
    state = cache.get_or_build(model, tokenizer, prefix(), "doc1")
    assert state.length > 0 and cache.nbytes == 0
    assert cache.get_or_build(model, tokenizer, prefix(), "doc1") is state and len(builds) == 1
    assert cache.contains(model, "doc1") and not DocumentCache(tmp_path, max_bytes=1000).contains(model, "doc1")
    DocumentCache(tmp_path, max_bytes=1000).purge("doc1")  # e.g. `tome rm` in another process
    assert not cache.contains(model, "doc1")
    assert cache.get_or_build(model, tokenizer, prefix(), "doc1") is not state and len(builds) == 2


def test_a_repeat_question_encodes_nothing(model, tokenizer, tmp_path, builds, monkeypatch):
    cache = DocumentCache(tmp_path, max_bytes=1 << 30)
    state = cache.get_or_build(model, tokenizer, prefix(), "doc1")
    encoded = []
    original = Tokenizer.encode
    monkeypatch.setattr(Tokenizer, "encode", lambda self, text, *args: encoded.append(text) or original(self, text, *args))
    assert cache.get_or_build(model, tokenizer, prefix(), "doc1") is state and encoded == []
    edited = prefix(CONTRACT.replace("three years", "five years"))  # same key, another text: read again
    assert cache.get_or_build(model, tokenizer, edited, "doc1").token_ids[0].tolist() == original(
        tokenizer, tokenizer.render_chat(edited, add_generation_prompt=False, sanitize=True))
    assert len(builds) == 2
    state = cache.get_or_build(model, tokenizer, prefix(), "doc1")
    model(torch.tensor([[5, 6]]), cache=state)  # continued by someone: no longer the prefix's state
    assert cache.get_or_build(model, tokenizer, prefix(), "doc1").length == state.length - 2


def test_a_read_stopped_mid_piece_saves_nothing_and_the_next_read_is_whole(model, tokenizer, tmp_path, monkeypatch):
    monkeypatch.setattr(model, "prefill_chunk", 64)  # several pieces of several layers
    calls = []

    def stop_mid_piece(done, total):
        calls.append(done)
        if len(calls) == 2:  # after the second layer of the first piece
            raise KeyboardInterrupt

    cache = DocumentCache(tmp_path, max_bytes=1 << 30)
    with pytest.raises(KeyboardInterrupt):
        cache.get_or_build(model, tokenizer, prefix(), "doc1", progress=stop_mid_piece)
    assert calls[-1] < 64 and cache.nbytes == 0 and not list(tmp_path.glob("*/*"))
    gen = Generator(model, tokenizer, progress=False)
    state = cache.get_or_build(model, tokenizer, prefix(), "doc1", progress=False)
    assert state.token_ids[0].tolist() == tokenizer.encode_chat(prefix(), add_generation_prompt=False)
    assert (gen.generate(prefix() + [QUESTION], max_new_tokens=12, state=state).token_ids
            == gen.generate(prefix() + [QUESTION], max_new_tokens=12).token_ids)


@pytest.mark.parametrize("bad", ["", "../etc", "a/b", ".hidden", "x" * 200])
def test_bad_document_hashes_and_sizes_are_refused(tmp_path, bad):
    with pytest.raises(InferenceError, match="doc_hash .* must be 1-128 letters"):
        DocumentCache(tmp_path, max_bytes=100).purge(bad)
    with pytest.raises(InferenceError, match="max_bytes = 0 must be a positive number of bytes"):
        DocumentCache(tmp_path, max_bytes=0)


def test_partial_files_of_another_writer_are_left_alone(model, tokenizer, tmp_path):
    cache = DocumentCache(tmp_path, max_bytes=1)
    (tmp_path / "doc1").mkdir()
    partial = tmp_path / "doc1" / f".partial-x{module.SUFFIX}"
    partial.write_bytes(b"0" * 5000)
    cache.get_or_build(model, tokenizer, prefix(), "doc2")
    assert partial.exists() and cache.nbytes == 0
    os.remove(partial)
