"""Generation: greedy equals transformers' generate, stops, limits, streaming, batches, state."""

import pytest
import torch

from inference import CacheMismatchError, Generator, HybridModel, InferenceError, PromptTooLongError, Tokenizer
from tests.inference.tiny import reference

MESSAGES = [{"role": "system", "content": "You answer from the contract."},
            {"role": "user", "content": "Who must indemnify whom? Réponse brève 📄"}]


@pytest.fixture(scope="module")
def gen(model_folder):
    return Generator(HybridModel.from_pretrained(model_folder, dtype=torch.float32), Tokenizer.from_pretrained(model_folder))


def hf_greedy(folder, prompt, n, **kwargs):
    model = reference(folder)
    with torch.no_grad():
        out = model.generate(torch.tensor([prompt]), max_new_tokens=n, do_sample=False, **kwargs)
    return out[0, len(prompt):].tolist()


@pytest.mark.parametrize("penalty", [1.0, 1.3])
def test_greedy_tokens_equal_transformers_generate(gen, model_folder, penalty):
    prompt = gen.tokenizer.encode_chat(MESSAGES)
    result = gen.generate(MESSAGES, max_new_tokens=24, repetition_penalty=penalty)
    expected = hf_greedy(model_folder, prompt, 24, repetition_penalty=penalty)
    assert list(result.token_ids) == expected[: len(result.token_ids)]
    assert result.prompt_tokens == len(prompt)
    assert result.completion_tokens == len(result.token_ids)
    if result.finish_reason == "length":
        assert len(result.token_ids) == 24


def test_stream_pieces_concatenate_to_the_result(gen):
    stream = gen.stream(MESSAGES, max_new_tokens=30)
    with pytest.raises(InferenceError, match="has not finished"):
        stream.result
    pieces = list(stream)
    result = stream.result
    assert "".join(pieces) == result.text
    # A random model emits invalid byte sequences too; only the final flush may end inside a character.
    assert all(piece and not piece.endswith("\ufffd") for piece in pieces[:-1])
    assert result.text == gen.tokenizer.decode([i for i in result.token_ids if i not in gen.eos_token_ids])


def test_max_new_tokens_and_length_finish(gen):
    result = gen.generate(MESSAGES, max_new_tokens=5)
    assert result.completion_tokens <= 5
    assert result.finish_reason == ("length" if result.completion_tokens == 5 else "eos")


def test_eos_ends_generation_and_is_not_in_the_text(gen):
    ids = gen.generate(MESSAGES, max_new_tokens=12).token_ids
    eos = ids[6]  # pretend the 7th greedy token is the model's EOS
    eager = Generator(gen.model, gen.tokenizer)
    eager.eos_token_ids = frozenset({eos})
    result = eager.generate(MESSAGES, max_new_tokens=12)
    first = ids.index(eos)
    assert result.finish_reason == "eos" and result.token_ids == ids[: first + 1]
    assert result.text == gen.tokenizer.decode(ids[:first])


def test_stop_string_cuts_the_text_and_is_never_streamed(gen):
    full = gen.generate(MESSAGES, max_new_tokens=40)
    clean = full.text.replace("\ufffd", "")
    stop = next(clean[i : i + 3] for i in range(5, len(clean) - 3) if clean[i : i + 3] in full.text)
    stream = gen.stream(MESSAGES, max_new_tokens=40, stop=[stop, "never appears"])
    pieces = list(stream)
    result = stream.result
    assert result.finish_reason == "stop"
    assert result.text == full.text[: full.text.index(stop)]
    assert "".join(pieces) == result.text
    assert result.token_ids == full.token_ids[: result.completion_tokens]


def test_sampling_is_reproducible_with_a_seed_and_top_k_1_is_greedy(gen):
    first = gen.generate(MESSAGES, max_new_tokens=15, temperature=0.9, top_p=0.9, seed=7)
    again = gen.generate(MESSAGES, max_new_tokens=15, temperature=0.9, top_p=0.9, seed=7)
    assert first.token_ids == again.token_ids
    greedy = gen.generate(MESSAGES, max_new_tokens=15)
    assert gen.generate(MESSAGES, max_new_tokens=15, temperature=1.5, top_k=1, seed=3).token_ids == greedy.token_ids
    hot = {gen.generate(MESSAGES, max_new_tokens=15, temperature=5.0, seed=s).token_ids for s in range(4)}
    assert len(hot) > 1


def test_batch_equals_single_prompts(gen):
    conversations = [MESSAGES, [{"role": "user", "content": "Hi"}],
                     [{"role": "user", "content": "Summarise clause 14.2 on liability caps in two sentences."}]]
    batch = gen.generate_batch(conversations, max_new_tokens=12)
    for messages, result in zip(conversations, batch):
        alone = gen.generate(messages, max_new_tokens=12)
        assert result.token_ids == alone.token_ids and result.text == alone.text
        assert result.prompt_tokens == alone.prompt_tokens


def test_state_gives_identical_tokens_and_is_left_untouched(gen, tmp_path):
    documents = [{"doc_id": 1, "title": "MSA", "text": "The Supplier indemnifies the Customer. " * 20}]
    first = [MESSAGES[0], {"role": "user", "content": "Who indemnifies?"}]
    prefix_text = gen.tokenizer.render_chat(first[:1], documents, add_generation_prompt=False, sanitize=True)
    state = gen.prefill(gen.tokenizer.encode(prefix_text))
    state.save(tmp_path / "doc.safetensors")
    expected = gen.generate(first, documents, max_new_tokens=16)
    with_state = gen.generate(first, documents, max_new_tokens=16, state=state)
    assert with_state.token_ids == expected.token_ids and with_state.cached_tokens == state.length
    assert state.length == len(gen.tokenizer.encode(prefix_text))  # unchanged by generation
    loaded = gen.model.load_cache(tmp_path / "doc.safetensors")
    second = [MESSAGES[0], {"role": "user", "content": "And the notice period?"}]
    assert (gen.generate(second, documents, max_new_tokens=10, state=loaded).token_ids
            == gen.generate(second, documents, max_new_tokens=10).token_ids)


def test_state_of_another_prompt_is_refused(gen):
    state = gen.prefill(gen.tokenizer.encode("<|start_of_role|>system<|end_of_role|>Another document"))
    with pytest.raises(CacheMismatchError, match=r"the prompt does not extend the state's \d+ cached tokens"):
        gen.stream(MESSAGES, state=state)


def test_prompt_over_the_budget_and_bad_options(model_folder):
    model = HybridModel.from_pretrained(model_folder, dtype=torch.float32, context_budget=40)
    gen = Generator(model, Tokenizer.from_pretrained(model_folder))
    with pytest.raises(PromptTooLongError, match=r"prompt is \d+ tokens, but the context budget is 40 tokens"):
        gen.stream(MESSAGES)
    short = gen.tokenizer.encode("Hello")
    result = gen.stream_ids(short, max_new_tokens=100)
    list(result)
    assert result.result.completion_tokens <= 40 - len(short)
    with pytest.raises(InferenceError, match="temperature = -1 must be >= 0"):
        gen.stream_text("Hi", temperature=-1)
    with pytest.raises(InferenceError, match="max_new_tokens = 0 must be at least 1"):
        gen.stream_text("Hi", max_new_tokens=0)
    with pytest.raises(InferenceError, match="token id 999 is out of range for vocab_size 320"):
        gen.stream_ids([5, 999])
    with pytest.raises(TypeError):
        gen.stream_text("Hi", temprature=0.5)  # a misspelt option is an error, never silently dropped


def test_a_prompt_continuing_the_state_text_encodes_only_its_new_part(gen, monkeypatch):
    documents = [{"doc_id": 1, "title": "Vertrag", "text": "Überweisung <|end_of_text|> 契約 📄 " * 30}]
    start = [{"role": "system", "content": "Answer from the contract <|start_of_role|>."}]
    prefix_text = gen.tokenizer.render_chat(start, documents, add_generation_prompt=False, sanitize=True)
    state = gen.prefill(gen.tokenizer.encode(prefix_text))
    state.prompt_text = prefix_text  # as DocumentCache keeps it
    question = start + [{"role": "user", "content": "Was gilt? <|end_of_text|>"}]
    expected = gen.generate(question, documents, max_new_tokens=12)
    encoded = []
    original = Tokenizer.encode
    monkeypatch.setattr(Tokenizer, "encode", lambda self, text, *args: encoded.append(text) or original(self, text, *args))
    result = gen.generate(question, documents, max_new_tokens=12, state=state)
    assert result.token_ids == expected.token_ids and result.cached_tokens == state.length
    assert encoded == [gen.tokenizer.render_chat(question, documents, sanitize=True)[len(prefix_text):]]
    encoded.clear()
    gen.model(torch.tensor([gen.tokenizer.encode("more")]), cache=state)  # continued: its text no longer says it all
    assert state.prompt_text is None
    with pytest.raises(CacheMismatchError):
        gen.stream(question, documents, state=state)
    assert max(map(len, encoded)) > len(prefix_text)  # the whole prompt was encoded to check it
