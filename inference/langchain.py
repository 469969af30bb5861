"""`ChatGranite`: the built-in Granite runtime as a LangChain chat model.

    from inference.langchain import ChatGranite
    llm = ChatGranite(model_path="models/granite-4.0-h-1b", max_tokens=256)   # loads on first use
    llm.invoke("Who are the parties?").content
    for chunk in llm.stream(messages): ...            # token by token; the last chunk has usage
    llm.bind_tools([get_weather]).invoke(...)          # .tool_calls from <tool_call> output
    llm.with_structured_output(Parties).invoke(...)    # a Parties instance
    llm = ChatGranite.from_runtime(model, tokenizer)   # share a model that is already loaded
    llm.model, llm.tokenizer, llm.generator            # the runtime, for DocumentCache and friends

Streaming is the primitive: `_stream` turns the Generator's text pieces into chunks, `_generate`
collects them and `_astream` steps the same iterator on a worker thread. Messages map to the
chat template's roles (system, user, assistant with its tool calls, tool). With tools bound, the
reply's `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` blocks become tool calls
(one tool_call_chunk each when streaming, once the block is complete); a block that is not such
JSON becomes an invalid tool call whose args are the block's raw text. A forced tool choice or a
JSON response format is given by starting the reply for the model (the "reply prefix"), which
then is part of the reply's text.

Models load lazily and are shared by all ChatGranite instances of the same (folder, dtype,
context budget) while any of them is alive.
"""

import dataclasses
import json
import threading
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import closing
from operator import itemgetter
from pathlib import Path
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ChatMessage, HumanMessage, SystemMessage
from langchain_core.messages import ToolMessage
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.messages.ai import UsageMetadata
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.output_parsers.openai_tools import JsonOutputKeyToolsParser, PydanticToolsParser
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.language_models.chat_models import generate_from_stream
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.runnables.config import run_in_executor
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from pydantic import BaseModel, ConfigDict, PrivateAttr

from inference.errors import InferenceError
from inference.generate import Generator
from inference.model import HybridModel
from inference.tokenizer import Tokenizer

CALL_START, CALL_END = "<tool_call>", "</tool_call>"
# Options a call may pass (invoke(..., temperature=0.7), bind(...)); anything else is refused.
CALL_OPTIONS = {"temperature", "max_tokens", "top_p", "top_k", "repetition_penalty", "seed", "tools",
                "tool_choice", "response_format", "documents", "stream"}
JSON_INSTRUCTION = "Respond with one JSON object only, without any other text."
SCHEMA_INSTRUCTION = "The JSON object must conform to this JSON schema:\n"


@dataclasses.dataclass(eq=False)  # eq=False: hashed by identity, weak-referenceable
class Runtime:
    model: HybridModel
    tokenizer: Tokenizer
    generator: Generator
    name: str  # the model's name in response metadata: its folder's name


_loaded: "weakref.WeakValueDictionary[tuple, Runtime]" = weakref.WeakValueDictionary()
_loading = threading.Lock()


def load_runtime(path: str, dtype: str, context_budget: int | None = None) -> Runtime:
    """The runtime for a model folder, loaded once while anything holds it."""
    import torch

    key = (str(Path(path).resolve()), dtype, context_budget)
    with _loading:  # two threads asking for one model must not load it twice
        runtime = _loaded.get(key)
        if runtime is None:
            model = HybridModel.from_pretrained(path, dtype=getattr(torch, dtype), context_budget=context_budget)
            tokenizer = Tokenizer.from_pretrained(path)
            runtime = Runtime(model, tokenizer, Generator(model, tokenizer), Path(path).resolve().name)
            _loaded[key] = runtime
    return runtime


class ChatGranite(BaseChatModel):
    """A Granite 4.0 H model run by Tome's own runtime (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt option is an error, not ignored

    model_path: str | None = None  # a Hugging Face model folder; None only through from_runtime
    dtype: Literal["bfloat16", "float32"] = "bfloat16"
    context_budget: int | None = None  # tokens a prompt and reply may use; None: the config's
    temperature: float = 0.0  # 0: greedy
    max_tokens: int = 512
    top_p: float = 1.0
    top_k: int = 0  # 0: no top-k cut
    repetition_penalty: float = 1.0
    seed: int | None = None
    stop: list[str] | None = None
    timeout: float | None = None  # seconds; a longer reply is cut there (finish_reason "timeout")
    streaming: bool = False  # invoke() streams internally (callbacks see each token)

    _runtime: Runtime | None = PrivateAttr(default=None)

    def __init__(self, **params: Any):
        super().__init__(**params)
        if self.model_path is not None and not Path(self.model_path).is_dir():
            raise InferenceError(f"{self.model_path}: not a model folder")

    @classmethod
    def from_runtime(cls, model: HybridModel, tokenizer: Tokenizer, generator: Generator | None = None,
                     **params: Any) -> "ChatGranite":
        """A ChatGranite over a model and tokenizer already loaded (e.g. shared with the app)."""
        llm = cls(**params)
        name = Path(tokenizer.source).name if tokenizer.source != "<memory>" else "granite"
        llm._runtime = Runtime(model, tokenizer, generator or Generator(model, tokenizer), name)
        return llm

    # --- the runtime ------------------------------------------------------------------------------

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            if self.model_path is None:
                raise InferenceError("ChatGranite needs model_path= (or use ChatGranite.from_runtime)")
            self._runtime = load_runtime(self.model_path, self.dtype, self.context_budget)
        return self._runtime

    @property
    def model(self) -> HybridModel:
        return self.runtime.model

    @property
    def tokenizer(self) -> Tokenizer:
        return self.runtime.tokenizer

    @property
    def generator(self) -> Generator:
        return self.runtime.generator

    @property
    def model_name(self) -> str:
        """Without loading anything: the folder's name."""
        if self._runtime is not None:
            return self._runtime.name
        return Path(self.model_path).resolve().name if self.model_path else "granite"

    # --- what LangChain asks of a chat model --------------------------------------------------------

    @property
    def _llm_type(self) -> str:
        return "tome-granite"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "dtype": self.dtype, **self._sampling()}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(ls_provider="tome", ls_model_type="chat",
                                 ls_model_name=kwargs.get("model") or self.model_name,
                                 ls_temperature=kwargs.get("temperature", self.temperature),
                                 ls_max_tokens=kwargs.get("max_tokens", self.max_tokens))
        if stop or self.stop:
            params["ls_stop"] = list(stop or self.stop)
        return params

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        return generate_from_stream(self._stream(messages, stop, run_manager, **kwargs))

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        with closing(self._chunks(messages, stop, kwargs)) as chunks:
            for chunk in chunks:
                if run_manager:
                    run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk

    async def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                       run_manager: AsyncCallbackManagerForLLMRun | None = None,
                       **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        chunks, done = self._chunks(messages, stop, kwargs), object()
        try:
            # Each step (prefill, a decode step) runs on a worker thread: the event loop stays free.
            while (chunk := await run_in_executor(None, next, chunks, done)) is not done:
                if run_manager:
                    await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk
        finally:
            try:
                chunks.close()  # ends the generation when the consumer leaves early
            except ValueError:  # cancelled while a step still runs on its thread: it ends when collected
                pass

    # --- tools and structured output ----------------------------------------------------------------

    def bind_tools(self, tools: Sequence[dict[str, Any] | type | Any], *, tool_choice: str | dict | None = None,
                   strict: bool | None = None, **kwargs: Any) -> Runnable:
        """Tools go into the chat template's tools block. tool_choice: None/"auto" (the model
        decides), "none" (no tools shown), "any"/"required" (the reply starts a tool call), or a
        tool's name (the reply starts a call of that tool, and stops after it)."""
        formatted = [convert_to_openai_tool(tool, strict=strict) for tool in tools]
        _forced_call_prefix(tool_choice, [tool["function"]["name"] for tool in formatted])  # validates
        return self.bind(tools=formatted, tool_choice=tool_choice, **kwargs)

    def with_structured_output(self, schema: dict | type | None = None, *,
                               method: Literal["function_calling", "json_schema", "json_mode"] = "function_calling",
                               include_raw: bool = False, strict: bool | None = None, **kwargs: Any) -> Runnable:
        """Replies parsed into `schema` (a pydantic class, TypedDict or JSON schema dict).

        function_calling: the schema is a tool the reply must call. json_schema / json_mode: the
        model is told to answer in JSON (with the schema, when given) and the reply starts with "{".
        strict is accepted for compatibility: nothing constrains decoding, the parser validates.
        """
        if kwargs:
            raise InferenceError(f"with_structured_output: unknown options {sorted(kwargs)}")
        is_pydantic = isinstance(schema, type) and issubclass(schema, BaseModel)
        if method == "function_calling":
            if schema is None:
                raise InferenceError("with_structured_output(method='function_calling') needs a schema")
            tool = convert_to_openai_tool(schema, strict=strict)
            name = tool["function"]["name"]
            llm = self.bind_tools([tool], tool_choice=name, ls_structured_output_format={
                "kwargs": {"method": method, "strict": strict}, "schema": tool})
            parser = (PydanticToolsParser(tools=[schema], first_tool_only=True) if is_pydantic
                      else JsonOutputKeyToolsParser(key_name=name, first_tool_only=True))
        elif method in ("json_schema", "json_mode"):
            if schema is None and method == "json_schema":
                raise InferenceError("with_structured_output(method='json_schema') needs a schema")
            response_format = {"type": "json_object"}
            if schema is not None:
                response_format["schema"] = convert_to_json_schema(schema)
            llm = self.bind(response_format=response_format, ls_structured_output_format={
                "kwargs": {"method": method, "strict": strict}, "schema": response_format.get("schema")})
            parser = PydanticOutputParser(pydantic_object=schema) if is_pydantic else JsonOutputParser()
        else:
            raise InferenceError(f"with_structured_output: method {method!r} is not one of "
                                 "function_calling, json_schema, json_mode")
        if not include_raw:
            return llm | parser
        parsed = RunnablePassthrough.assign(parsed=itemgetter("raw") | parser, parsing_error=lambda _: None)
        failed = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=llm) | parsed.with_fallbacks([failed], exception_key="parsing_error")

    # --- one generation -----------------------------------------------------------------------------

    def _sampling(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "max_tokens": self.max_tokens, "top_p": self.top_p,
                "top_k": self.top_k, "repetition_penalty": self.repetition_penalty, "seed": self.seed}

    def _chunks(self, messages: list[BaseMessage], stop: list[str] | None,
                options: dict[str, Any]) -> Iterator[ChatGenerationChunk]:
        """The reply as chunks: text, tool calls once complete, then the usage and finish reason."""
        request = self._request(messages, stop, options)
        stream = self.generator.stream_ids(request.prompt, **request.generation)
        reader = ReplyReader(parse_calls=request.parse_calls)
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        timed_out = False
        with stream:
            yield from reader.feed(request.prefix)
            for piece in stream:
                yield from reader.feed(piece)
                if deadline is not None and time.monotonic() > deadline:
                    timed_out = True
                    break
        yield from reader.end()
        result = stream.result
        usage = UsageMetadata(input_tokens=result.prompt_tokens, output_tokens=result.completion_tokens,
                              total_tokens=result.prompt_tokens + result.completion_tokens)
        metadata = {"model_name": self.model_name, "finish_reason": "timeout" if timed_out else result.finish_reason}
        yield ChatGenerationChunk(message=AIMessageChunk(content="", usage_metadata=usage, response_metadata=metadata,
                                                         chunk_position="last"))

    def _request(self, messages: list[BaseMessage], stop: list[str] | None, options: dict[str, Any]) -> "Request":
        unknown = set(options) - CALL_OPTIONS
        if unknown:
            raise InferenceError(f"ChatGranite: unknown options {sorted(unknown)} (known: {sorted(CALL_OPTIONS)})")
        settings = {name: options.get(name, value) for name, value in self._sampling().items()}
        tools, choice = options.get("tools") or None, options.get("tool_choice")
        if choice == "none":
            tools = None
        turns = template_messages(messages)
        prefix = _forced_call_prefix(choice, [t["function"]["name"] for t in tools or []]) if tools else ""
        if options.get("response_format"):
            turns, prefix = _ask_for_json(turns, options["response_format"]), "{"
        stops = list(stop if stop is not None else self.stop or [])
        if prefix.startswith(CALL_START + "\n{"):  # one named call is wanted: stop when it is complete
            stops.append(CALL_END)
        prompt = self.tokenizer.encode_chat(turns, options.get("documents"), tools)
        if prefix:
            prompt += self.tokenizer.encode(prefix)
        settings["max_new_tokens"] = settings.pop("max_tokens")
        return Request(prompt, prefix, parse_calls=bool(tools), generation={**settings, "stop": stops})


@dataclasses.dataclass(frozen=True)
class Request:
    prompt: list[int]
    prefix: str  # the start of the reply given to the model; it is part of the reply's text
    parse_calls: bool  # tools are bound: <tool_call> blocks are tool calls, not text
    generation: dict[str, Any]  # keyword arguments of Generator.stream_ids


def template_messages(messages: list[BaseMessage]) -> list[dict]:
    """LangChain messages as the chat template's message dicts."""
    turns = []
    for i, message in enumerate(messages):
        role = _role(message, i)
        turn = {"role": role, "content": _text(message, i)}
        if isinstance(message, AIMessage) and message.tool_calls:
            turn["tool_calls"] = [{"type": "function", "id": call.get("id"),
                                   "function": {"name": call["name"], "arguments": call["args"]}}
                                  for call in message.tool_calls]
        if isinstance(message, ToolMessage):
            turn["tool_call_id"] = message.tool_call_id
        turns.append(turn)
    return turns


def _role(message: BaseMessage, index: int) -> str:
    roles = {SystemMessage: "system", HumanMessage: "user", AIMessage: "assistant", ToolMessage: "tool"}
    for kind, role in roles.items():
        if isinstance(message, kind):
            return role
    if isinstance(message, ChatMessage) and message.role in ("system", "user", "assistant", "tool"):
        return message.role
    raise InferenceError(f"message {index}: ChatGranite cannot send a {type(message).__name__} "
                         f"(role {getattr(message, 'role', message.type)!r}) to the model")


def _text(message: BaseMessage, index: int) -> str:
    """A message's text; tool-use blocks are skipped (its tool_calls carry them), other media refused."""
    if isinstance(message.content, str):
        return message.content
    parts = []
    for block in message.content:
        if isinstance(block, str):
            parts.append(block)
        elif block.get("type") == "text":
            parts.append(block.get("text", ""))
        elif block.get("type") not in ("tool_use", "tool_call", "tool_call_chunk", "reasoning", "thinking"):
            raise InferenceError(f"message {index}: ChatGranite reads text only, not a {block.get('type')!r} block")
    return "\n".join(parts)


def _forced_call_prefix(choice: str | dict | None, names: list[str]) -> str:
    """The reply prefix that makes the model call a tool, after checking `choice` against `names`."""
    if isinstance(choice, dict):
        choice = (choice.get("function") or {}).get("name") or choice.get("name")
    if choice in (None, "auto", "none"):
        return ""
    if choice in ("any", "required"):
        return CALL_START + "\n"
    if choice in names:
        return CALL_START + "\n" + '{"name": ' + json.dumps(choice, ensure_ascii=False) + ', "arguments": '
    raise InferenceError(f"tool_choice {choice!r}: expected auto, none, any, required or one of {names}")


def _ask_for_json(turns: list[dict], response_format: dict) -> list[dict]:
    """The conversation with the JSON instruction added to its system turn (made if missing)."""
    if response_format.get("type") not in ("json_object", "json_schema"):
        raise InferenceError(f"response_format {response_format!r}: expected type json_object or json_schema")
    instruction = JSON_INSTRUCTION
    if response_format.get("schema"):
        instruction += "\n" + SCHEMA_INSTRUCTION + json.dumps(response_format["schema"], ensure_ascii=False)
    if turns and turns[0]["role"] == "system":
        return [{**turns[0], "content": f"{turns[0]['content']}\n\n{instruction}"}, *turns[1:]]
    return [{"role": "system", "content": instruction}, *turns]


class ReplyReader:
    """Splits streamed reply text into content chunks and, with tools bound, tool-call chunks.

    Text that might be the start of "<tool_call>" is held back until the next piece decides; a
    block's text is kept until "</tool_call>" (or the end of the reply) and then parsed.
    """

    def __init__(self, parse_calls: bool):
        self.parse_calls = parse_calls
        self.pending, self.in_call, self.calls = "", False, 0

    def feed(self, piece: str) -> Iterator[ChatGenerationChunk]:
        if not self.parse_calls:
            if piece:
                yield _content(piece)
            return
        self.pending += piece
        while self.pending:
            marker = CALL_END if self.in_call else CALL_START
            found = self.pending.find(marker)
            if found < 0:
                if not self.in_call:
                    ready = len(self.pending) - _partial_marker(self.pending, CALL_START)
                    if ready:
                        yield _content(self.pending[:ready])
                        self.pending = self.pending[ready:]
                return
            if self.in_call:
                yield self._call(self.pending[:found], closed=True)
            elif found:
                yield _content(self.pending[:found])
            self.pending, self.in_call = self.pending[found + len(marker):], not self.in_call

    def end(self) -> Iterator[ChatGenerationChunk]:
        """What is left when the reply ends: an unclosed call, or held-back text."""
        if self.in_call:
            yield self._call(self.pending, closed=False)
        elif self.pending:
            yield _content(self.pending)
        self.pending, self.in_call = "", False

    def _call(self, body: str, closed: bool) -> ChatGenerationChunk:
        index, self.calls = self.calls, self.calls + 1
        call_id = f"call_{uuid.uuid4().hex[:24]}"
        parsed = parse_call(body)
        if parsed is None:  # args that are no JSON object make LangChain file it as an invalid call
            raw = CALL_START + body + (CALL_END if closed else "")
            chunk = tool_call_chunk(name=None, args=raw, id=call_id, index=index)
        else:
            name, arguments = parsed
            chunk = tool_call_chunk(name=name, args=json.dumps(arguments, ensure_ascii=False), id=call_id, index=index)
        return ChatGenerationChunk(message=AIMessageChunk(content="", tool_call_chunks=[chunk]))


def parse_call(body: str) -> tuple[str, dict] | None:
    """(name, arguments) of a tool call block's text, or None when it is not such a JSON object."""
    try:
        call = json.loads(body)
    except json.JSONDecodeError:
        return None
    if not isinstance(call, dict) or not isinstance(call.get("name"), str):
        return None
    arguments = call.get("arguments", call.get("parameters", {}))
    if isinstance(arguments, str):  # some models write the arguments as a JSON string
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            return None
    return (call["name"], arguments) if isinstance(arguments, dict) else None


def _partial_marker(text: str, marker: str) -> int:
    """How many trailing characters of `text` could begin `marker`."""
    for k in range(min(len(marker) - 1, len(text)), 0, -1):
        if marker.startswith(text[-k:]):
            return k
    return 0


def _content(text: str) -> ChatGenerationChunk:
    return ChatGenerationChunk(message=AIMessageChunk(content=text))
