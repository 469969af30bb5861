"""`ChatGranite` and the shared, lazily loaded runtime it runs on (see the package docstring)."""

import dataclasses
import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import closing
from contextvars import ContextVar
from operator import itemgetter
from pathlib import Path
from typing import Any, Literal

import torch
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.language_models.chat_models import generate_from_stream
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.output_parsers.openai_tools import JsonOutputKeyToolsParser, PydanticToolsParser
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.runnables.config import run_in_executor
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from pydantic import BaseModel, ConfigDict, PrivateAttr

from inference.errors import InferenceError
from inference.generate import GenerationResult, Generator
from inference.langchain.messages import CALL_END, CALL_START, ask_for_json, forced_call_prefix, template_messages
from inference.langchain.replies import ReplyReader
from inference.model import HybridModel
from inference.tokenizer import Tokenizer

# Options a call may pass (invoke(..., temperature=0.7), bind(...)); anything else is refused.
CALL_OPTIONS = {"temperature", "max_tokens", "top_p", "top_k", "repetition_penalty", "seed", "tools",
                "tool_choice", "response_format", "documents", "stream"}

# Replies that batch()/abatch() computed in one batched generation, by request. Each input then
# takes the ordinary invoke path (callbacks, tracing, usage per input) and finds its reply here. A
# context variable: the batch's own worker threads and tasks see it, no other caller does.
_BATCHED: ContextVar[dict[tuple, GenerationResult] | None] = ContextVar("tome_batched_replies", default=None)


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
    """A Granite 4.0 H model run by Tome's own runtime (see the package docstring)."""

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
        """A ChatGranite over a model and tokenizer already loaded (e.g. shared with the app);
        model_path and dtype describe them unless given."""
        folder = Path(tokenizer.source)
        if folder.is_dir():
            params.setdefault("model_path", str(folder))
        dtype = str(model.dtype).removeprefix("torch.")
        if dtype in ("bfloat16", "float32"):
            params.setdefault("dtype", dtype)
        llm = cls(**params)
        name = folder.resolve().name if folder.is_dir() else "granite"
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

    # --- batches: one padded, masked forward instead of a thread per input ----------------------------

    def batch(self, inputs: list[Any], config: Any = None, *, return_exceptions: bool = False,
              **kwargs: Any) -> list[BaseMessage | Exception]:
        """Plain conversations with the same options are answered by one batched generation (on a
        2-core CPU, parallel invokes only compete for the cores); anything else as LangChain does."""
        token = _BATCHED.set(self._batch_replies(inputs, kwargs))
        try:
            return super().batch(inputs, config, return_exceptions=return_exceptions, **kwargs)
        finally:
            _BATCHED.reset(token)

    async def abatch(self, inputs: list[Any], config: Any = None, *, return_exceptions: bool = False,
                     **kwargs: Any) -> list[BaseMessage | Exception]:
        token = _BATCHED.set(await run_in_executor(None, self._batch_replies, inputs, kwargs))
        try:
            return await super().abatch(inputs, config, return_exceptions=return_exceptions, **kwargs)
        finally:
            _BATCHED.reset(token)

    def _batch_replies(self, inputs: list[Any], options: dict[str, Any]) -> dict[tuple, GenerationResult] | None:
        """The replies to all inputs from one batched generation, or None where one batch would
        answer differently from separate calls: tools or structured output (a reply prefix per
        input), seeded sampling (one random stream for all), a timeout (cut per reply), prompts
        near the context budget (the longest would limit every reply), or an input that fails."""
        temperature, seed = options.get("temperature", self.temperature), options.get("seed", self.seed)
        if (len(inputs) < 2 or self.timeout is not None or options.get("tools") or options.get("response_format")
                or options.get("stream") or (temperature > 0 and seed is not None)):
            return None
        call = {name: value for name, value in options.items() if name != "stop"}
        try:
            requests = [self._request(self._convert_input(item).to_messages(), options.get("stop"), call)
                        for item in inputs]
        except Exception:  # each input's own call raises it again, as return_exceptions asks
            return None
        longest, budget = max(len(r.prompt) for r in requests), self.model.config.context_budget
        if longest + requests[0].generation["max_new_tokens"] > budget:
            return None
        try:
            results = self.generator.generate_batch_ids([r.prompt for r in requests], **requests[0].generation)
        except InferenceError:
            return None
        return {request.key: result for request, result in zip(requests, results)}

    # --- tools and structured output ----------------------------------------------------------------

    def bind_tools(self, tools: Sequence[dict[str, Any] | type | Any], *, tool_choice: str | dict | None = None,
                   strict: bool | None = None, **kwargs: Any) -> Runnable:
        """Tools go into the chat template's tools block. tool_choice: None/"auto" (the model
        decides), "none" (no tools shown), "any"/"required" (the reply starts a tool call), or a
        tool's name (the reply starts a call of that tool, and stops after it)."""
        formatted = [convert_to_openai_tool(tool, strict=strict) for tool in tools]
        forced_call_prefix(tool_choice, [tool["function"]["name"] for tool in formatted])  # validates
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
        reader = ReplyReader(parse_calls=request.parse_calls)
        result, timed_out = (_BATCHED.get() or {}).get(request.key), False
        if result is None:
            result, timed_out = yield from self._generated(request, reader)
        else:  # answered with the rest of its batch
            yield from reader.feed(request.prefix + result.text)
        yield from reader.end()
        usage = UsageMetadata(input_tokens=result.prompt_tokens, output_tokens=result.completion_tokens,
                              total_tokens=result.prompt_tokens + result.completion_tokens)
        metadata = {"model_name": self.model_name, "finish_reason": "timeout" if timed_out else result.finish_reason}
        yield ChatGenerationChunk(message=AIMessageChunk(content="", usage_metadata=usage, response_metadata=metadata,
                                                         chunk_position="last"))

    def _generated(self, request: "Request", reader: ReplyReader):
        """Stream the reply through `reader`; returns its GenerationResult and whether it timed out."""
        stream = self.generator.stream_ids(request.prompt, **request.generation)
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        timed_out = False
        with stream:
            yield from reader.feed(request.prefix)
            for piece in stream:
                yield from reader.feed(piece)
                if deadline is not None and time.monotonic() > deadline:
                    timed_out = True
                    break
        return stream.result, timed_out

    def _request(self, messages: list[BaseMessage], stop: list[str] | None, options: dict[str, Any]) -> "Request":
        unknown = set(options) - CALL_OPTIONS
        if unknown:
            raise InferenceError(f"ChatGranite: unknown options {sorted(unknown)} (known: {sorted(CALL_OPTIONS)})")
        settings = {name: options.get(name, value) for name, value in self._sampling().items()}
        tools, choice = options.get("tools") or None, options.get("tool_choice")
        if choice == "none":
            tools = None
        turns = template_messages(messages)
        prefix = forced_call_prefix(choice, [t["function"]["name"] for t in tools or []]) if tools else ""
        if options.get("response_format"):
            turns, prefix = ask_for_json(turns, options["response_format"]), "{"
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

    @property
    def key(self) -> tuple:
        """What makes two requests the same generation (for replies computed in a batch)."""
        return tuple(self.prompt), self.prefix, repr(self.generation)
