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
then is part of the reply's text. `batch`/`abatch` of plain conversations run as one batched
generation (`Generator.generate_batch_ids`), each input then taking the usual invoke path
(callbacks, usage) with its reply already computed; other batches are LangChain's parallel invokes.

Models load lazily and are shared by all ChatGranite instances of the same (folder, dtype,
context budget) while any of them is alive.

chat_model.py holds ChatGranite and the shared runtime, messages.py what the model is given
(template turns, reply prefixes), replies.py what it says (content and tool-call chunks).
"""

from inference.langchain.chat_model import ChatGranite, Runtime, load_runtime
from inference.langchain.messages import template_messages
from inference.langchain.replies import ReplyReader, parse_call

__all__ = ["ChatGranite", "ReplyReader", "Runtime", "load_runtime", "parse_call", "template_messages"]
