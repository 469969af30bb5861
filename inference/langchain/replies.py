"""What the model says: streamed reply text split into content and `<tool_call>` blocks, each
block parsed into a tool call (or kept raw as an invalid one)."""

import json
import uuid
from collections.abc import Iterator

from langchain_core.messages import AIMessageChunk
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGenerationChunk

from inference.langchain.messages import CALL_END, CALL_START


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
