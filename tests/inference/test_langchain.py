"""ChatGranite's own behaviour: the same tokens as the Generator, usage, stops, roles, tool calls
and structured output (on scripted replies: a random model writes no JSON), async, loading."""

import asyncio
import time

import pytest
import torch
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from pydantic import BaseModel, Field

from inference import Generator, GenerationResult, HybridModel, InferenceError, Tokenizer
from inference.langchain import ChatGranite, ReplyReader, template_messages

MESSAGES = [SystemMessage("You answer from the contract."), HumanMessage("Who must indemnify whom? Réponse brève 📄")]
DICTS = [{"role": "system", "content": "You answer from the contract."},
         {"role": "user", "content": "Who must indemnify whom? Réponse brève 📄"}]


@pytest.fixture(scope="module")
def llm(model_folder):
    return ChatGranite(model_path=str(model_folder), dtype="float32", max_tokens=16)


class Scripted:
    """A stand-in Generator whose reply is fixed text, streamed in the given pieces."""

    def __init__(self, *pieces: str, finish: str = "eos"):
        self.pieces, self.finish = pieces, finish
        self.prompt, self.options, self.stream = None, None, None

    def stream_ids(self, prompt_ids, **options):
        self.prompt, self.options = list(prompt_ids), options
        self.stream = ScriptedStream(self.pieces, len(self.prompt), self.finish)
        return self.stream


class ScriptedStream:
    def __init__(self, pieces, prompt_tokens, finish):
        self.pieces, self.prompt_tokens, self.finish = pieces, prompt_tokens, finish
        self.result, self.sent = None, []

    def __iter__(self):
        for piece in self.pieces:
            self.sent.append(piece)
            yield piece
        self._end(self.finish)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.result is None:
            self._end("cancelled")

    def _end(self, finish):
        self.result = GenerationResult("".join(self.sent), self.prompt_tokens, len(self.sent), finish)


def scripted(llm, *pieces, **params) -> tuple[ChatGranite, Scripted]:
    generator = Scripted(*pieces)
    return ChatGranite.from_runtime(llm.model, llm.tokenizer, generator=generator, **params), generator


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


class Party(BaseModel):
    """A party to the contract."""

    name: str = Field(description="the party's name")
    role: str


# --- the same reply as the runtime -----------------------------------------------------------------


def test_greedy_reply_and_usage_equal_the_generators(llm, model_folder):
    gen = Generator(HybridModel.from_pretrained(model_folder, dtype=torch.float32), Tokenizer.from_pretrained(model_folder))
    expected = gen.generate(DICTS, max_new_tokens=16)
    reply = llm.invoke(MESSAGES)
    assert reply.content == expected.text
    assert reply.usage_metadata == {"input_tokens": len(gen.tokenizer.encode_chat(DICTS)),
                                    "output_tokens": len(expected.token_ids),
                                    "total_tokens": len(gen.tokenizer.encode_chat(DICTS)) + len(expected.token_ids)}
    assert reply.response_metadata["finish_reason"] == expected.finish_reason
    assert reply.response_metadata["model_name"] == model_folder.name


def test_stream_pieces_concatenate_to_invokes_text(llm):
    chunks = list(llm.stream(MESSAGES))
    assert len([c for c in chunks if c.content]) > 1  # token by token, not one block
    assert "".join(c.content for c in chunks) == llm.invoke(MESSAGES).content
    usage = [c.usage_metadata for c in chunks if c.usage_metadata]
    assert len(usage) == 1 and chunks[-1].usage_metadata == usage[0] and chunks[-1].chunk_position == "last"


def test_stop_strings_cut_the_reply(llm, model_folder):
    full = llm.invoke(MESSAGES).content
    stop = full[5:8]
    assert stop and full.find(stop) == 5, "pick a stop string the greedy reply holds once"
    cut = llm.invoke(MESSAGES, stop=[stop])
    assert cut.content == full[:5] and cut.response_metadata["finish_reason"] == "stop"
    built_with_stop = ChatGranite(model_path=str(model_folder), dtype="float32", max_tokens=16, stop=[stop])
    assert built_with_stop.invoke(MESSAGES).content == full[:5]


def test_call_options_override_the_models(llm):
    short = llm.invoke(MESSAGES, max_tokens=3)
    assert short.usage_metadata["output_tokens"] == 3 and short.response_metadata["finish_reason"] == "length"
    sampled = [llm.invoke(MESSAGES, temperature=1.0, top_k=50, seed=7).content for _ in range(2)]
    assert sampled[0] == sampled[1]  # a seed makes sampling reproducible


def test_batch_equals_single_calls(llm):
    questions = ["Hello", "What is the term of the agreement?"]
    assert [m.content for m in llm.batch(questions)] == [llm.invoke(q).content for q in questions]


class Counting(BaseCallbackHandler):
    def __init__(self):
        self.starts, self.ends = 0, []

    def on_chat_model_start(self, serialized, messages, **kwargs):
        self.starts += 1

    def on_llm_end(self, response, **kwargs):
        self.ends.append(response.generations[0][0].message.usage_metadata)


def test_a_batch_of_conversations_is_one_batched_generation(llm, monkeypatch):
    inputs = ["Hello", MESSAGES, [HumanMessage("What is the term? " * 5)]]
    singles = [llm.invoke(item) for item in inputs]
    calls = []
    for name in ("stream_ids", "generate_batch_ids"):
        original = getattr(Generator, name)
        monkeypatch.setattr(Generator, name, lambda self, *a, _f=original, _n=name, **k: calls.append(_n) or _f(self, *a, **k))
    counting = Counting()
    replies = llm.batch(inputs, {"callbacks": [counting]})
    assert calls == ["generate_batch_ids"]  # one padded forward per step, no invoke ran the model
    assert [r.content for r in replies] == [s.content for s in singles]
    assert [r.usage_metadata for r in replies] == [s.usage_metadata for s in singles] == counting.ends
    assert counting.starts == 3 and {r.response_metadata["finish_reason"] for r in replies} <= {"eos", "length"}
    calls.clear()
    assert [r.content for r in asyncio.run(llm.abatch(inputs))] == [s.content for s in singles]
    assert calls == ["generate_batch_ids"]
    calls.clear()
    bound = llm.bind_tools([add])  # a reply prefix and tool-call parsing per input: separate calls
    assert [r.content for r in bound.batch(inputs[:2])] == [bound.invoke(i).content for i in inputs[:2]]
    assert "generate_batch_ids" not in calls
    calls.clear()
    outcome = llm.batch(["Hello", 42], return_exceptions=True)  # a bad input fails alone
    assert outcome[0].content == singles[0].content and isinstance(outcome[1], ValueError)
    assert "generate_batch_ids" not in calls


# --- messages -------------------------------------------------------------------------------------


def test_roles_tool_calls_and_tool_results_reach_the_template(llm):
    history = [
        SystemMessage("Be brief."), HumanMessage("What is 1 + 2?"),
        AIMessage("", tool_calls=[{"name": "add", "args": {"a": 1, "b": 2}, "id": "c1", "type": "tool_call"}]),
        ToolMessage("3", tool_call_id="c1"), HumanMessage([{"type": "text", "text": "Thanks."}]),
    ]
    assert [t["role"] for t in template_messages(history)] == ["system", "user", "assistant", "tool", "user"]
    text = llm.tokenizer.render_chat(template_messages(history))
    assert '<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>' in text
    assert "<tool_response>\n3\n</tool_response>" in text and "Thanks." in text
    assert text.startswith("<|start_of_role|>system<|end_of_role|>Be brief.")


def test_bad_input_is_one_clear_line(llm, tmp_path):
    with pytest.raises(InferenceError, match=r"nowhere: not a model folder"):
        ChatGranite(model_path=str(tmp_path / "nowhere"))
    with pytest.raises(InferenceError, match=r"unknown options \['temprature'\]"):
        llm.invoke("hi", temprature=0.5)
    with pytest.raises(InferenceError, match="text only, not a 'image_url' block"):
        llm.invoke([HumanMessage([{"type": "image_url", "image_url": {"url": "data:,"}}])])
    with pytest.raises(InferenceError, match="tool_choice 'subtract'"):
        llm.bind_tools([add], tool_choice="subtract")
    with pytest.raises(InferenceError, match="needs model_path="):
        ChatGranite().invoke("hi")


# --- tool calls (scripted replies) -----------------------------------------------------------------

CALL = '<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>'


def test_tool_calls_are_parsed_from_the_reply(llm):
    # Markers split across pieces, as tokens split them.
    chat, gen = scripted(llm, "Let me add.\n<tool", "_call>\n{\"name\": \"add\", ", '"arguments": {"a": 1, "b": 2}}\n</to',
                         "ol_call>\n<tool_call>\n", '{"name": "add", "arguments": {"a": 5, "b": 6}}\n</tool_call>')
    reply = chat.bind_tools([add]).invoke("What is 1 + 2 and 5 + 6?")
    assert reply.content == "Let me add.\n\n"
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [("add", {"a": 1, "b": 2}), ("add", {"a": 5, "b": 6})]
    assert reply.invalid_tool_calls == [] and len({c["id"] for c in reply.tool_calls}) == 2
    prompt = llm.tokenizer.decode(gen.prompt, skip_special_tokens=False)
    assert '"name": "add"' in prompt and "Add two integers." in prompt and "<tools>" in prompt


def test_the_reply_reader_gives_the_same_split_wherever_the_pieces_break():
    reply = "If a < b then <tool" + CALL + " done <"

    def read(pieces):
        reader = ReplyReader(parse_calls=True)
        chunks = [c for piece in pieces for c in reader.feed(piece)] + list(reader.end())
        calls = [(t["name"], t["args"]) for c in chunks for t in c.message.tool_call_chunks]
        return "".join(c.text for c in chunks), calls

    whole = read([reply])
    assert whole == ("If a < b then <tool done <", [("add", '{"a": 1, "b": 2}')])
    for i in range(len(reply)):
        for j in range(i, len(reply), 7):
            assert read([reply[:i], reply[i:j], reply[j:]]) == whole, (i, j)


def test_streamed_tool_calls_arrive_as_chunks(llm):
    chat, _ = scripted(llm, "<tool_", "call>\n", '{"name": "add", "arguments": {"a": 1, "b": 2}}', "\n</tool_call>")
    chunks = list(chat.bind_tools([add]).stream("What is 1 + 2?"))
    calls = [c.tool_call_chunks for c in chunks if c.tool_call_chunks]
    assert len(calls) == 1 and calls[0][0]["name"] == "add" and calls[0][0]["index"] == 0
    full = sum(chunks[1:], chunks[0])
    assert full.content == "" and [(c["name"], c["args"]) for c in full.tool_calls] == [("add", {"a": 1, "b": 2})]


def test_invalid_tool_call_json_becomes_an_invalid_tool_call(llm):
    chat, _ = scripted(llm, '<tool_call>\n{"name": "add", "arguments": {a: 1}}\n</tool_call>')
    reply = chat.bind_tools([add]).invoke("What is 1 + 2?")
    assert reply.tool_calls == []
    assert reply.invalid_tool_calls[0]["args"] == '<tool_call>\n{"name": "add", "arguments": {a: 1}}\n</tool_call>'
    chat, _ = scripted(llm, '<tool_call>\n{"name": "add", "arguments": {"a": 1')
    cut = chat.bind_tools([add]).invoke("What is 1 + 2?")  # a call cut short is not completed by guessing
    assert cut.tool_calls == [] and len(cut.invalid_tool_calls) == 1


def test_without_tools_a_tool_call_is_just_text(llm):
    chat, _ = scripted(llm, CALL)
    reply = chat.invoke("What is 1 + 2?")
    assert reply.content == CALL and reply.tool_calls == []


def test_a_named_tool_choice_starts_the_call_and_stops_after_it(llm):
    chat, gen = scripted(llm, '{"a": 1, "b": 2}}\n')
    reply = chat.bind_tools([add], tool_choice="add").invoke("What is 1 + 2?")
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [("add", {"a": 1, "b": 2})]
    prefix = '<tool_call>\n{"name": "add", "arguments": '
    assert llm.tokenizer.decode(gen.prompt, skip_special_tokens=False).endswith(prefix)
    assert "</tool_call>" in gen.options["stop"]
    chat, gen = scripted(llm, '{"a": 1, "b": 2}}')
    reply = chat.bind_tools([add], tool_choice={"type": "function", "function": {"name": "add"}}).invoke("1 + 2?")
    assert reply.tool_calls[0]["args"] == {"a": 1, "b": 2}
    chat, gen = scripted(llm, "Hello")
    chat.bind_tools([add], tool_choice="none").invoke("What is 1 + 2?")
    assert "<tools>" not in llm.tokenizer.decode(gen.prompt, skip_special_tokens=False)


def test_documents_go_into_the_templates_documents_block(llm):
    chat, gen = scripted(llm, "Ninety days [1].")
    documents = [{"doc_id": "1", "title": "MSA | 12. TERMINATION", "text": "ninety (90) days' notice"}]
    chat.invoke("How much notice?", documents=documents)
    prompt = llm.tokenizer.decode(gen.prompt, skip_special_tokens=False)
    assert '<documents>\n{"doc_id": "1", "title": "MSA | 12. TERMINATION", "text": "ninety (90) days\' notice"}' in prompt


# --- structured output (scripted replies) ----------------------------------------------------------


def test_structured_output_by_tool_call(llm):
    chat, gen = scripted(llm, '{"name": "Acme Corp", "role": "Supplier"}}')
    party = chat.with_structured_output(Party).invoke("Who supplies?")
    assert party == Party(name="Acme Corp", role="Supplier")
    assert llm.tokenizer.decode(gen.prompt, skip_special_tokens=False).endswith('{"name": "Party", "arguments": ')
    chat, _ = scripted(llm, '{"name": "Acme Corp", "role": "Supplier"}}')
    as_dict = chat.with_structured_output(Party.model_json_schema()).invoke("Who supplies?")
    assert as_dict == {"name": "Acme Corp", "role": "Supplier"}


@pytest.mark.parametrize("method", ["json_schema", "json_mode"])
def test_structured_output_by_json_reply(llm, method):
    chat, gen = scripted(llm, '"name": "Acme Corp", ', '"role": "Supplier"}')
    party = chat.with_structured_output(Party, method=method).invoke("Who supplies?")
    assert party == Party(name="Acme Corp", role="Supplier")
    prompt = llm.tokenizer.decode(gen.prompt, skip_special_tokens=False)
    assert "Respond with one JSON object only" in prompt and '"role"' in prompt and prompt.endswith("{")


def test_structured_output_with_raw_reports_a_parse_failure(llm):
    chat, _ = scripted(llm, "I cannot say.")
    out = chat.with_structured_output(Party, method="json_mode", include_raw=True).invoke("Who supplies?")
    assert out["parsed"] is None and out["parsing_error"] is not None and out["raw"].content == "{I cannot say."


# --- streaming control, async, loading -------------------------------------------------------------


def test_leaving_a_stream_early_ends_the_generation(llm):
    chat, gen = scripted(llm, "one ", "two ", "three ")
    for chunk in chat.stream("Count."):
        break
    assert gen.stream.sent == ["one "] and gen.stream.result.finish_reason == "cancelled"


def test_a_timeout_cuts_the_reply_where_it_is(llm):
    chat, _ = scripted(llm, "one ", "two ", "three ", timeout=0.0)
    reply = chat.invoke("Count.")
    assert reply.content == "one " and reply.response_metadata["finish_reason"] == "timeout"


def test_async_variants_equal_the_sync_ones(llm):
    async def run():
        pieces = [chunk.content async for chunk in llm.astream(MESSAGES)]
        return await llm.ainvoke(MESSAGES), pieces, await llm.abatch(["Hello", "Hey"])

    reply, pieces, batch = asyncio.run(run())
    assert reply.content == llm.invoke(MESSAGES).content == "".join(pieces)
    assert reply.usage_metadata == llm.invoke(MESSAGES).usage_metadata
    assert [m.content for m in batch] == [llm.invoke("Hello").content, llm.invoke("Hey").content]


def test_models_load_lazily_once_per_folder_and_dtype(model_folder):
    started = time.perf_counter()
    a = ChatGranite(model_path=str(model_folder), dtype="float32")
    assert a._runtime is None and time.perf_counter() - started < 0.5  # nothing loaded yet
    b = ChatGranite(model_path=str(model_folder), dtype="float32", temperature=0.5)
    assert a.model is b.model and a.generator is b.generator
    assert ChatGranite(model_path=str(model_folder), dtype="bfloat16").model.dtype == torch.bfloat16


def test_from_runtime_shares_a_loaded_model(llm):
    shared = ChatGranite.from_runtime(llm.model, llm.tokenizer, max_tokens=16)
    assert shared.model is llm.model and shared.tokenizer is llm.tokenizer
    assert shared.model_path == llm.model_path and shared.dtype == "float32"
    assert shared.invoke(MESSAGES).content == llm.invoke(MESSAGES).content
