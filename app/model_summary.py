"""Summaries written by the built-in runtime from the whole document, every quote verified.

One pass (the document fits the context budget): the document is read once, through the document
cache, as the same system turn whole-document questions use; then each field of the summary is
one short question continuing from that state, so a field costs only its question and its reply.

Hierarchical (the document exceeds the budget): the text is cut at paragraph breaks into parts
whose prompts fit the budget; each part is read (its state cached like a document's) and asked
every field; then, per field, the parts' answers are combined by the model into one (a field
only one part answers is kept as it is). Quotes are located in the whole document, so a
citation's page is right whichever part it came from.

Both yield `Reading` items while reading, then (field name, Draft) pairs in the summary's order.
A field the model wrote without any quote found in the document says so (UNSUPPORTED).
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace

from app.answer import Draft
from app.errors import AppError
from app.generated import verify_quoted
from app.prompts import (COMBINE_REQUEST, FIELD_REQUEST, MODEL_CONTRACT_FIELDS, MODEL_MANUAL_FIELDS, NOT_FOUND,
                         PART_TITLE, UNSUPPORTED, whole_system_prompt)
from app.whole import Plan, Reading, WholeReader, part_key

# Parts aim this far under the budget: token density varies along a document, and a part found
# too long after cutting is cut again at SHRINK of its size.
PART_MARGIN = 0.9
SHRINK = 0.8
_NOT_FOUND = re.compile(r"^\W*not found in the document", re.I)
_MARKERS = re.compile(r" ?\[\d+\]")  # a part's citation numbers mean nothing to the combined answer


@dataclass(frozen=True)
class Part:
    key: str  # the document cache key of its state
    start: int  # offsets into the document's text
    end: int
    prefix: tuple[dict, ...]  # its system turn
    tokens: int


def fields_of(kind: str) -> tuple[tuple[str, str], ...]:
    return MODEL_CONTRACT_FIELDS if kind == "contract" else MODEL_MANUAL_FIELDS


def one_pass(reader: WholeReader, doc_id: str, kind: str, plan: Plan) -> Iterator[Reading | tuple[str, Draft]]:
    state = yield from reader.read(doc_id, plan)
    prefix = reader.prefix(doc_id)
    for name, question in fields_of(kind):
        yield name, ask(reader, prefix, state, question, doc_id)


def hierarchical(reader: WholeReader, doc_id: str, kind: str, parts: list[Part]) -> Iterator[Reading | tuple[str, Draft]]:
    fields = fields_of(kind)
    found: dict[str, list[Draft]] = {name: [] for name, _ in fields}
    total, before = sum(part.tokens for part in parts), 0
    yield Reading(0, total, 0.0, None)
    for part in parts:
        state = yield from reader.read_prefix(part.key, list(part.prefix), before, total)
        before += part.tokens
        for name, question in fields:
            draft = ask(reader, list(part.prefix), state, question, doc_id)
            if draft.covered:
                found[name].append(draft)
    for name, question in fields:
        yield name, combine(reader, question, found[name], doc_id)


def ask(reader: WholeReader, prefix: list[dict], state, question: str, doc_id: str) -> Draft:
    """One field, asked of the text in `prefix` (whose state is `state`)."""
    request = {"role": "user", "content": FIELD_REQUEST.format(question=question)}
    return _draft("".join(reader.reply(prefix + [request], state)), question, doc_id, reader)


def combine(reader: WholeReader, question: str, drafts: list[Draft], doc_id: str) -> Draft:
    """One answer for the whole document from the answers of its parts: as many as fit one
    prompt are combined, then that answer with the next ones, until one is left."""
    while len(drafts) > 1:
        count = 2
        while count < len(drafts) and _fits(reader, _combine_request(question, drafts[:count + 1])):
            count += 1
        merged = _draft("".join(reader.reply([_combine_request(question, drafts[:count])])), question, doc_id, reader)
        drafts = [merged if merged.covered else drafts[0]] + drafts[count:]
    return drafts[0] if drafts else Draft(NOT_FOUND, (), covered=False)


def _combine_request(question: str, drafts: list[Draft]) -> dict:
    notes = "\n".join(f"Part {n}: {_MARKERS.sub('', d.text)}" for n, d in enumerate(drafts, start=1))
    return {"role": "user", "content": COMBINE_REQUEST.format(question=question, notes=notes)}


def _fits(reader: WholeReader, request: dict) -> bool:
    limit = reader.model.config.context_budget - reader.settings.reply_tokens
    return _tokens(reader, [request]) <= limit


def _draft(text: str, question: str, doc_id: str, reader: WholeReader) -> Draft:
    if _NOT_FOUND.match(text):
        return Draft(NOT_FOUND, (), covered=False)
    draft = verify_quoted(text, question, doc_id, reader.citer)
    if not draft.covered:
        return Draft(NOT_FOUND, (), covered=False)
    return draft if draft.citations else replace(draft, text=f"{draft.text} {UNSUPPORTED}")


def split(reader: WholeReader, doc_id: str) -> list[Part]:
    """Consecutive parts of the document, each prompt within the context budget less the reply."""
    text, title = reader.citer.text(doc_id), reader.citer.title(doc_id)
    limit = reader.model.config.context_budget - reader.settings.reply_tokens
    overhead = _tokens(reader, _prefix(title, "", 1, 1))
    if limit - overhead < 64:  # 64: too few tokens of text per part to summarise anything
        raise AppError(f"the context budget ({reader.model.config.context_budget:,} tokens) leaves no room "
                       "for any of the document's text")
    density = (reader.tokens(doc_id) - overhead) / max(1, len(text))  # tokens per character
    size = int((limit - overhead) / density * PART_MARGIN)
    while True:
        spans = _cut(text, size)
        prefixes = [_prefix(title, text[a:b], n, len(spans)) for n, (a, b) in enumerate(spans, start=1)]
        counts = [_tokens(reader, prefix) for prefix in prefixes]
        if max(counts) <= limit:
            return [Part(part_key(doc_id, n, len(spans)), a, b, tuple(prefix), count)
                    for n, ((a, b), prefix, count) in enumerate(zip(spans, prefixes, counts), start=1)]
        size = int(size * SHRINK)


def read_seconds(reader: WholeReader, parts: list[Part]) -> float:
    from inference.timing import prefill_seconds

    model = reader.model
    return sum(prefill_seconds(model.config, part.tokens, model.dtype) for part in parts)


def _cut(text: str, size: int) -> list[tuple[int, int]]:
    """Spans of at most `size` characters, ending at a paragraph break (else a sentence end) in
    their second half when there is one."""
    spans, start = [], 0
    while start < len(text):
        end = min(len(text), start + size)
        if end < len(text):
            middle = start + size // 2
            brk = text.rfind("\n\n", middle, end)
            brk = brk + 2 if brk != -1 else text.rfind(". ", middle, end) + 2
            end = brk if brk > middle else end
        spans.append((start, end))
        start = end
    return spans


def _prefix(title: str, text: str, part: int, parts: int) -> list[dict]:
    return [{"role": "system", "content": whole_system_prompt(PART_TITLE.format(title=title, part=part, parts=parts),
                                                              text)}]


def _tokens(reader: WholeReader, prefix: list[dict]) -> int:
    return len(reader.llm.tokenizer.encode_chat(prefix, add_generation_prompt=False))
