"""Generation around long prompts: progress reports, closing a stream early, the state left alone."""

import pytest
import torch

from inference import Generator, HybridModel, InferenceError, Tokenizer
from inference import generate as generate_module

MESSAGES = [{"role": "system", "content": "You answer from the contract."},
            {"role": "user", "content": "List every obligation of the Supplier, with clause numbers."}]


@pytest.fixture(scope="module")
def model(model_folder):
    return HybridModel.from_pretrained(model_folder, dtype=torch.float32)


@pytest.fixture(scope="module")
def tokenizer(model_folder):
    return Tokenizer.from_pretrained(model_folder)


def test_long_prompt_reports_progress_and_short_one_does_not(model, tokenizer, monkeypatch):
    seen = []
    gen = Generator(model, tokenizer, progress=lambda done, total: seen.append((done, total)))
    monkeypatch.setattr(generate_module, "LONG_PREFILL", 30)
    model.prefill_chunk = 16
    try:
        expected = Generator(model, tokenizer, progress=False).generate(MESSAGES, max_new_tokens=6)
        result = gen.generate(MESSAGES, max_new_tokens=6)
    finally:
        model.prefill_chunk = 1024
    assert result.token_ids == expected.token_ids
    total = result.prompt_tokens
    assert seen[-1] == (total, total) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    seen.clear()
    gen.generate([{"role": "user", "content": "Hi"}], max_new_tokens=2)
    assert seen == []  # under LONG_PREFILL tokens: no progress


def test_closing_a_stream_early_sets_a_cancelled_result(model, tokenizer):
    gen = Generator(model, tokenizer)
    full = gen.generate(MESSAGES, max_new_tokens=30)
    with gen.stream(MESSAGES, max_new_tokens=30) as stream:
        pieces = []
        for piece in stream:
            pieces.append(piece)
            if len(pieces) == 3:
                break
    result = stream.result
    assert result.finish_reason == "cancelled" and result.text == "".join(pieces)
    assert full.text.startswith(result.text) and 0 < result.completion_tokens < 30
    never = gen.stream(MESSAGES, max_new_tokens=30)
    with pytest.raises(InferenceError, match="iterate the stream to the end or close"):
        never.result
    never.close()  # closed before it started: an empty, cancelled result
    assert never.result.finish_reason == "cancelled" and never.result.text == ""
    assert list(never) == []
