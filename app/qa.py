"""Questions about the stored documents, answered with verified page citations.

    from app.qa import Assistant
    assistant = Assistant(store, llm=None)        # llm: any LangChain chat model, or None
    answer = assistant.ask("When can the customer terminate?", history=[], doc_id=None)
    answer.text, answer.citations, answer.standalone_question, answer.mode, answer.covered
    for part in assistant.stream("And the supplier?", history=[answer]):
        ...                                       # str pieces of the text, then the Answer

`history` holds earlier turns: Answers, {"role": ..., "content": ...} dicts, (role, text) pairs
or LangChain messages. A follow-up is rewritten into a standalone question (by the model when
there is one, by rules otherwise) before retrieval. Without a model the answer is extractive
(app/extractive.py); with one it is generated from the retrieved passages and its citations
verified (app/generated.py). With the built-in Granite runtime, a question about one document
can be answered from the whole document instead (app/whole.py): mode "whole", or "auto" when the
document fits the context, the memory and the time limit. One Assistant serves many questions:
the embedder, the store and the per-document caches are loaded once. Removing a document from
the store deletes its saved model states.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from app.answer import Answer, Draft
from app.citations import Citer
from app.context import Expander, Source, retrieved
from app.errors import AppError
from app.evidence import TermWeights, is_yes_no
from app.extractive import Extractor, support_threshold
from app.prompts import NOT_COVERED
from app.rewrite import ROLE_PAIRS, rewrite_rules, rewrite_with_model
from app.whole import Plan, WholeReader, WholeSettings, is_runtime, purge_states
from ingest import IngestError, Store

MODES = ("auto", "retrieval", "whole")
# Chunks retrieved per question: enough for an answer spread over two clauses plus the
# neighbours that share a sentence, few enough for a small model's context.
RETRIEVE_K = 6
# With a model, "not covered" is answered without asking it only this far below the extractive
# threshold: the model judges relevance itself, so only clearly unrelated passages are withheld.
MODEL_SUPPORT_SLACK = 0.1


class Assistant:
    def __init__(self, store: Store, llm=None, *, k: int = RETRIEVE_K, whole: WholeSettings = WholeSettings()):
        from ingest.embed import get_embedder

        self.store, self.llm, self.k = store, llm, k
        self.citer = Citer(store)
        self.expander = Expander(store, self.citer)
        self.extractor = Extractor(self.citer, get_embedder(), TermWeights())
        self.reader = WholeReader(self.citer, llm, whole) if is_runtime(llm) else None
        store.on_removal(lambda removal: purge_states(store.path, removal.doc_id))

    def ask(self, question: str, history: Sequence = (), doc_id: str | None = None, mode: str = "auto") -> Answer:
        answer = None
        for part in self.stream(question, history, doc_id, mode):
            answer = part
        return answer

    def stream(self, question: str, history: Sequence = (), doc_id: str | None = None,
               mode: str = "auto") -> Iterator[str | Answer]:
        """Yields the answer's text in pieces, then the `Answer` with its citations."""
        question = _check_question(question)
        if mode not in MODES:
            raise AppError(f"mode {mode!r}: expected one of {', '.join(MODES)}")
        doc_id = self._resolve(doc_id)
        turns = conversation(history)
        standalone = self.standalone(question, turns, doc_id)
        route = self.route(mode, doc_id)
        if route.mode == "whole":
            draft = yield from self.reader.answer(route.doc_id, standalone, route.plan)
        else:
            sources = self.sources(standalone, doc_id)
            draft = yield from self.compose(standalone, sources, turns)
        yield Answer(question, standalone, draft.text, draft.citations, route.mode, draft.covered, draft.verdict,
                     draft.warnings, route.notes)

    def standalone(self, question: str, turns: list[tuple[str, str]], doc_id: str | None = None) -> str:
        """The question rewritten to stand alone, given the conversation so far."""
        previous = None
        for role, text in turns:
            if role == "user":
                previous = rewrite_rules(text, previous, self._roles(doc_id))
            elif role == "standalone":
                previous = text
        if previous is None:
            return rewrite_rules(question, None)
        if self.llm is not None:
            rewritten = rewrite_with_model(self.llm, [t for t in turns if t[0] != "standalone"], question)
            if rewritten:
                return rewritten
        return rewrite_rules(question, previous, self._roles(doc_id))

    def sources(self, question: str, doc_id: str | None = None) -> list[Source]:
        """The retrieved passages, then the definitions and sections they refer to."""
        try:
            hits = self.store.search(question, k=self.k, doc_id=doc_id)
        except IngestError as error:
            raise AppError(str(error)) from None
        found = retrieved(hits, self.citer)
        return found + self.expander.expand(question, found)

    def compose(self, question: str, sources: list[Source], turns: Sequence[tuple[str, str]] = ()):
        """Yields the answer's text in pieces and returns its Draft (a generator's return value)."""
        if self.llm is None:
            draft = self.extractor.answer(question, sources)
            for line in draft.text.splitlines(keepends=True):
                yield line
            return draft
        return (yield from self._generate(question, turns, sources))

    def _generate(self, question: str, turns, sources: list[Source]):
        from app import generated

        ranked = self.extractor.ranked(question, sources)
        if not ranked or ranked[0].support < support_threshold(question) - MODEL_SUPPORT_SLACK:
            draft = Draft(NOT_COVERED, (), covered=False, verdict="no" if is_yes_no(question) else "")
            yield draft.text
            return draft
        pieces = []
        for piece in generated.stream(self.llm, question, [t for t in turns if t[0] != "standalone"], sources):
            pieces.append(piece)
            yield piece
        return generated.verify("".join(pieces), question, sources, self.citer)

    def route(self, requested: str, doc_id: str | None = None) -> "Route":
        """How a question in mode `requested` about `doc_id` (None: the whole store) is answered,
        with a note whenever whole-document reading was possible in principle but not used."""
        if self.llm is None:
            if requested == "whole":
                raise AppError("whole-document mode needs a model: pass --model DIR or set TOME_MODEL")
            return Route("extractive")
        if requested == "retrieval":
            return Route("retrieval")
        if self.reader is None:
            return Route("retrieval", (WHOLE_NEEDS_RUNTIME,) if requested == "whole" else ())
        scope = doc_id or self._only_document()
        if scope is None:
            return Route("retrieval", (WHOLE_NEEDS_ONE_DOCUMENT,) if requested == "whole" else ())
        plan = self.reader.plan(scope, requested)
        if not plan.whole:
            return Route("retrieval", (f"{plan.reason}; answered from retrieved passages",), scope, plan)
        how = "from its saved state" if plan.cached else f"read first, about {plan.read_s:,.0f} s"
        return Route("whole", (f"read the whole document: {plan.tokens:,} tokens, {how}",), scope, plan)

    def _only_document(self) -> str | None:
        docs = self.store.documents()
        return docs[0].doc_id if len(docs) == 1 else None

    def _resolve(self, doc_id: str | None) -> str | None:
        if doc_id is None:
            return None
        try:
            return self.store.resolve(doc_id)
        except IngestError as error:
            raise AppError(str(error)) from None

    def _roles(self, doc_id: str | None) -> tuple[str, ...]:
        """Party names ("Customer", "Provider") the documents in scope define."""
        roles = {name for pair in ROLE_PAIRS for name in pair}
        docs = [doc_id] if doc_id else [d.doc_id for d in self.store.documents()][:20]
        terms = [t for d in docs for t in self.expander.defined_terms(d)]
        return tuple(dict.fromkeys(t for t in terms if t.lower() in roles))


WHOLE_NEEDS_RUNTIME = ("whole-document reading needs the built-in Granite runtime with its document cache; "
                       "answered from retrieved passages")
WHOLE_NEEDS_ONE_DOCUMENT = ("whole-document reading answers about one document: choose one (--doc); "
                            "answered from retrieved passages across the library")


@dataclass(frozen=True)
class Route:
    """The way one question is answered."""

    mode: str  # "extractive", "retrieval" or "whole"
    notes: tuple[str, ...] = ()  # why whole-document reading was not used (or how it was)
    doc_id: str = ""  # the document read whole (or considered)
    plan: Plan | None = None


def conversation(history: Sequence) -> list[tuple[str, str]]:
    """Earlier turns as (role, text): role "user" or "assistant"; an Answer also contributes its
    standalone question (role "standalone") so that rewriting builds on it."""
    turns: list[tuple[str, str]] = []
    for item in history:
        if isinstance(item, Answer):
            turns += [("user", item.question), ("standalone", item.standalone_question), ("assistant", item.text)]
        elif isinstance(item, dict) and {"role", "content"} <= item.keys():
            turns.append((_role(item["role"]), str(item["content"])))
        elif isinstance(item, tuple) and len(item) == 2:
            turns.append((_role(item[0]), str(item[1])))
        elif hasattr(item, "type") and hasattr(item, "content"):
            turns.append((_role(item.type), str(item.content)))
        else:
            raise AppError(f"history item {item!r:.60}: expected an Answer, a role/content dict, a (role, text) pair or a message")
    return turns


def _role(role: str) -> str:
    roles = {"user": "user", "human": "user", "assistant": "assistant", "ai": "assistant"}
    if role not in roles:
        raise AppError(f"history role {role!r}: expected user or assistant")
    return roles[role]


def _check_question(question: str) -> str:
    if not isinstance(question, str) or not question.strip():
        raise AppError("empty question")
    return question.strip()
