"""`tome ask`, `tome chat` and `tome summarize`: questions and summaries with page citations."""

import argparse
import json
import os
import sys
from dataclasses import asdict

MODES = ("auto", "retrieval", "whole")


def add_commands(commands) -> None:
    ask = commands.add_parser("ask", help="answer a question about the stored documents, with citations")
    ask.add_argument("question")
    ask.add_argument("--doc", metavar="DOC", help="ask about this document only (doc_id, prefix or path)")
    ask.add_argument("--json", action="store_true", help="print the answer and its citations as JSON")
    _common(ask)
    ask.set_defaults(run=run_ask)

    chat = commands.add_parser("chat", help="a conversation about the stored documents (follow-ups understood)")
    chat.add_argument("--doc", metavar="DOC", help="talk about this document only")
    _common(chat)
    chat.set_defaults(run=run_chat)

    summary = commands.add_parser("summarize", help="summarise a document (a stored one, or a file, ingested first)")
    summary.add_argument("doc", metavar="FILE_OR_DOC", help="a file to ingest and summarise, or a stored document")
    summary.add_argument("--kind", choices=("auto", "contract", "manual"), default="auto",
                         help="what the document is (default: decided from its text)")
    summary.add_argument("--json", action="store_true", help="print the summary as JSON")
    _common(summary)
    summary.set_defaults(run=run_summarize)


def _common(parser: argparse.ArgumentParser) -> None:
    from ingest.settings import DEFAULT_STORE

    parser.add_argument("--model", metavar="DIR", help="Granite model folder (default: $TOME_MODEL, else models/*)")
    parser.add_argument("--mode", choices=MODES, default="auto",
                        help="auto (default), retrieval (passages), or whole (read the whole document)")
    parser.add_argument("--store", metavar="DIR", default=DEFAULT_STORE, help=f"store folder (default {DEFAULT_STORE})")


def _fail(error: Exception) -> int:
    print(f"tome: error: {error}", file=sys.stderr)
    return 2


def load_llm(explicit: str | None):
    """The chat model to answer with, or None for the extractive default (with a note why)."""
    from app.models import MODEL_ENV, ModelNotFoundError, resolve_model

    try:
        folder = resolve_model(explicit)
    except ModelNotFoundError:
        if explicit or os.environ.get(MODEL_ENV):
            raise
        return None
    try:
        from inference.langchain import ChatGranite
    except ImportError:
        print(f"tome: note: found the model {folder}, but generated answers need inference.langchain "
              "(not in this version); answering extractively", file=sys.stderr)
        return None
    return ChatGranite(model_path=str(folder))


def run_ask(args: argparse.Namespace) -> int:
    from app.errors import AppError
    from app.models import ModelNotFoundError
    from app.qa import Assistant
    from ingest import IngestError, Store

    try:
        assistant = Assistant(Store(args.store), load_llm(args.model))
        if args.json:
            print(json.dumps(asdict(assistant.ask(args.question, doc_id=args.doc, mode=args.mode)), indent=2))
            return 0
        _print_stream(assistant.stream(args.question, doc_id=args.doc, mode=args.mode))
    except (AppError, IngestError, ModelNotFoundError) as error:
        return _fail(error)
    return 0


def run_chat(args: argparse.Namespace) -> int:
    from app.errors import AppError
    from app.models import ModelNotFoundError
    from app.qa import Assistant
    from ingest import IngestError, Store

    try:
        assistant = Assistant(Store(args.store), load_llm(args.model))
        doc = assistant.store.resolve(args.doc) if args.doc else None
    except (AppError, IngestError, ModelNotFoundError) as error:
        return _fail(error)
    print("Ask about your documents; follow-ups are understood. /reset starts over, /exit or Ctrl-D leaves.")
    history = []
    while True:
        try:
            question = input("\nyou> ").strip()
        except EOFError:
            print()
            return 0
        if question in ("/exit", "/quit"):
            return 0
        if question == "/reset":
            history = []
            print("(conversation cleared)")
            continue
        if not question:
            continue
        try:
            history.append(_print_stream(assistant.stream(question, history, doc_id=doc, mode=args.mode)))
        except (AppError, IngestError) as error:
            _fail(error)


def _print_stream(parts):
    """Print an answer as it streams, then its sources; returns the Answer."""
    answer = None
    reading = _Reading()
    for part in parts:
        if isinstance(part, str):
            print(part, end="", flush=True)
        elif reading.shows(part):
            continue
        else:
            answer = part
    print()
    if answer.standalone_question != answer.question:
        print(f"(read as: {answer.standalone_question})")
    _print_citations(answer.citations, answer.mode)
    for message in (*answer.notes, *answer.warnings):
        print(f"tome: note: {message}", file=sys.stderr)
    return answer


class _Reading:
    """Shows the progress of a whole-document read on stderr (tokens, rate, time left)."""

    def __init__(self):
        self.bar = None

    def shows(self, part) -> bool:
        """Whether `part` was reading progress (and is now shown)."""
        from app.whole import Reading

        if not isinstance(part, Reading):
            return False
        if self.bar is None:
            from inference.progress import ProgressBar

            self.bar = ProgressBar(label="reading the whole document")
        if part.tokens_read:
            self.bar(part.tokens_read, part.tokens_total)
        return True


def _print_citations(citations, mode: str, method: str = "") -> None:
    from app.prompts import ENABLE_GENERATION, EXTRACTIVE_LABEL

    label = EXTRACTIVE_LABEL if mode == "extractive" else f"mode: {mode}" + (f", {method}" if method else "")
    if mode == "extractive":
        print(f"tome: note: {ENABLE_GENERATION}", file=sys.stderr)
    if not citations:
        print(f"\n[{label}]")
        return
    print(f"\nSources [{label}]")
    groups: dict[str, list] = {}
    for citation in citations:
        groups.setdefault(citation.doc_id, []).append(citation)
    for cites in groups.values():
        print(f"  {cites[0].title}  ({_shown(cites[0].source)})")
        for c in cites:
            where = " · ".join(part for part in (c.where, c.section) if part)
            quote = " ".join(c.quote.split())
            print(f"    [{c.number}] {where}")
            print(f"        “{quote[:240]}{'…' if len(quote) > 240 else ''}”")


def run_summarize(args: argparse.Namespace) -> int:
    from app.errors import AppError
    from app.models import ModelNotFoundError
    from app.summarize import stream_summary
    from ingest import IngestError, Store

    try:
        store = Store(args.store)
        doc = _stored(store, args.doc)
        summary = None
        reading = _Reading()
        for part in stream_summary(store, doc, llm=load_llm(args.model), mode=args.mode, kind=args.kind):
            if isinstance(part, str):
                if not args.json:
                    print(part, end="", flush=True)
            elif not reading.shows(part):
                summary = part
    except (AppError, IngestError, ModelNotFoundError) as error:
        return _fail(error)
    if args.json:
        print(json.dumps(asdict(summary), indent=2))
        return 0
    _print_citations(summary.citations, summary.mode, summary.method if summary.method != summary.mode else "")
    for message in summary.notes:
        print(f"tome: note: {message}", file=sys.stderr)
    return 0


def _stored(store, ref: str) -> str:
    """The doc_id to summarise: a file is ingested first (skipped when already stored)."""
    from ingest import IngestError, ingest_paths

    if os.path.isfile(ref):
        report = ingest_paths([ref], store)
        if report.failed:
            raise IngestError(f"{report.failed[0][0]}: {report.failed[0][1]}")
        if report.added or report.replaced:
            print(f"tome: ingested {ref}", file=sys.stderr)
        return (report.added + report.replaced + report.unchanged)[0].doc_id
    return store.resolve(ref)


def _shown(source: str) -> str:
    try:
        relative = os.path.relpath(source)
    except ValueError:
        return source
    return source if relative.startswith("..") or not os.path.isabs(source) else relative
