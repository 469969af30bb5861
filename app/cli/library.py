"""`tome ingest`, `tome docs`, `tome rm` and `tome search`: the document library on the command line."""

import argparse
import json
import os
import sys
import time
from dataclasses import asdict


def add_commands(commands) -> None:
    ingest = commands.add_parser(
        "ingest", help="add PDF, text and Markdown files (or folders, recursively) to the store",
        description="Parse, chunk, embed and store documents. Unchanged files are skipped; a changed "
                    "file replaces its old version. Exits 1 if any file failed.",
    )
    ingest.add_argument("paths", nargs="+", metavar="PATH", help="files or folders")
    ingest.add_argument("--max-size", type=float, metavar="MB", help="refuse files larger than this (default 200)")
    ingest.add_argument("--json", action="store_true", help="print the report as JSON")
    _store_argument(ingest)
    ingest.set_defaults(run=run_ingest)

    docs = commands.add_parser("docs", help="list the documents in the store")
    docs.add_argument("--json", action="store_true", help="print the list as JSON")
    _store_argument(docs)
    docs.set_defaults(run=run_docs)

    rm = commands.add_parser("rm", help="remove documents from the store (vectors, keyword index, text)")
    rm.add_argument("docs", nargs="+", metavar="DOC", help="a doc_id, a unique prefix of one, or a source path")
    _store_argument(rm)
    rm.set_defaults(run=run_rm)

    search = commands.add_parser("search", help="hybrid (dense + keyword) search of the stored documents")
    search.add_argument("query")
    search.add_argument("--doc", metavar="DOC", help="search only this document (doc_id, prefix or path)")
    search.add_argument("-k", type=int, default=5, help="number of results (default 5)")
    search.add_argument("--json", action="store_true", help="print the results as JSON")
    _store_argument(search)
    search.set_defaults(run=run_search)


def _store_argument(parser: argparse.ArgumentParser) -> None:
    from ingest.settings import DEFAULT_STORE

    parser.add_argument("--store", metavar="DIR", default=DEFAULT_STORE, help=f"store folder (default {DEFAULT_STORE})")


def _fail(error: Exception) -> int:
    print(f"tome: error: {error}", file=sys.stderr)
    return 2


def _shown(source: str) -> str:
    """A source path relative to the working directory when it lies under it."""
    try:
        relative = os.path.relpath(source)
    except ValueError:
        return source
    return source if relative.startswith("..") or not os.path.isabs(source) else relative


def run_ingest(args: argparse.Namespace) -> int:
    from ingest import IngestError, IngestSettings, Store, ingest_paths

    try:
        settings = IngestSettings() if args.max_size is None else IngestSettings(max_file_bytes=int(args.max_size * 2**20))
        store = Store(args.store, settings=settings)
    except IngestError as error:
        return _fail(error)
    _forget_removed_documents(store)  # a file re-ingested with new content removes its old version
    started = time.monotonic()
    try:
        with _ProgressBar(enabled=sys.stderr.isatty() and not args.json) as bar:
            report = ingest_paths(args.paths, store, on_progress=bar.update, settings=settings)
    except IngestError as error:  # the store is busy: files done so far are stored
        return _fail(error)
    for source, reason in report.failed:
        print(f"tome: error: {_shown(source)}: {reason}", file=sys.stderr)
    if args.json:
        print(json.dumps(_report_json(report), indent=2))
    else:
        _print_report(report, time.monotonic() - started)
    return 1 if report.failed else 0


def _report_json(report) -> dict:
    return {
        "added": [asdict(r) for r in report.added],
        "unchanged": [asdict(r) for r in report.unchanged],
        "replaced": [asdict(r) for r in report.replaced],
        "failed": [{"source": s, "reason": r} for s, r in report.failed],
        "removed": [asdict(r) for r in report.removed],
    }


def _print_report(report, seconds: float) -> None:
    rows = [("STATUS", "DOC_ID", "PAGES", "CHUNKS", "SOURCE")]
    for status in ("added", "replaced", "unchanged"):
        for r in getattr(report, status):
            note = f"  ({r.note})" if r.note else ""
            rows.append((status, r.doc_id, str(r.pages), str(r.chunks), _shown(r.source) + note))
    rows += [("failed", "-", "-", "-", f"{_shown(s)}: {reason}") for s, reason in report.failed]
    _print_table(rows, right={2, 3})
    done = report.added + report.replaced
    files = len(done) + len(report.unchanged) + len(report.failed)
    print(
        f"{files} file{'s' if files != 1 else ''}: {len(report.added)} added, {len(report.replaced)} replaced, "
        f"{len(report.unchanged)} unchanged, {len(report.failed)} failed; "
        f"{sum(r.pages for r in done)} pages and {sum(r.chunks for r in done)} chunks indexed in {seconds:.1f} s"
    )


def _print_table(rows: list[tuple[str, ...]], right: set[int] = frozenset()) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        print("  ".join(cells).rstrip())


class _ProgressBar:
    """Files done, with pages and chunks so far and the current file's stage, on stderr."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bar = None
        self.pages = self.chunks = 0

    def __enter__(self) -> "_ProgressBar":
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()

    def update(self, progress) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=progress.file_count, unit="file", file=sys.stderr, dynamic_ncols=True)
        if progress.stage == "done":
            self.pages += progress.pages if progress.outcome in ("added", "replaced") else 0
            self.chunks += progress.chunks if progress.outcome in ("added", "replaced") else 0
            self.bar.update(1)
        name = os.path.basename(progress.source)[:40]
        detail = f"{progress.stage} p.{progress.pages}" if progress.stage == "parse" else progress.stage
        self.bar.set_postfix_str(f"{self.pages} pages, {self.chunks} chunks | {name}: {detail}", refresh=False)


def run_docs(args: argparse.Namespace) -> int:
    from ingest import IngestError, Store

    try:
        documents = Store(args.store, create=False).documents()
    except IngestError as error:
        return _fail(error)
    if args.json:
        print(json.dumps([asdict(d) for d in documents], indent=2))
        return 0
    if not documents:
        print(f"no documents in {args.store}; add some with `tome ingest PATH`")
        return 0
    rows = [("DOC_ID", "PAGES", "CHUNKS", "TITLE", "SOURCE")]
    for d in documents:
        more = f" (+{len(d.sources) - 1} more)" if len(d.sources) > 1 else ""
        rows.append((d.doc_id, str(d.pages), str(d.chunks), d.title[:48], _shown(d.source) + more))
    _print_table(rows, right={1, 2})
    return 0


def run_rm(args: argparse.Namespace) -> int:
    from ingest import IngestError, Store

    try:
        store = Store(args.store, create=False)
    except IngestError as error:
        return _fail(error)
    _forget_removed_documents(store)
    status = 0
    for ref in args.docs:
        try:
            removal = store.delete(ref)
        except IngestError as error:
            status = _fail(error)
            continue
        print(f"removed {removal.doc_id}  {removal.title}  ({', '.join(_shown(s) for s in removal.sources)})")
    return status


def _forget_removed_documents(store) -> None:
    """A removed document's saved model states (whole-document reading) and saved sentence
    vectors (quick extractive answers) go with it."""
    from app.extractive import SENTENCE_VECTORS
    from app.sentence_vectors import saved_file
    from app.whole import purge_states

    def purge(removal) -> None:
        purge_states(store.path, removal.doc_id)
        saved_file(store.path / SENTENCE_VECTORS, removal.doc_id).unlink(missing_ok=True)

    store.on_removal(purge)


def run_search(args: argparse.Namespace) -> int:
    from ingest import IngestError, Store

    try:
        hits = Store(args.store, create=False).search(args.query, k=args.k, doc_id=args.doc)
    except IngestError as error:
        return _fail(error)
    if args.json:
        print(json.dumps([asdict(h) for h in hits], indent=2))
        return 0
    if not hits:
        print("no results (is the store empty? see `tome docs`)")
    for rank, hit in enumerate(hits, start=1):
        pages = f"p. {hit.pages[0]}" if hit.pages[0] == hit.pages[1] else f"pp. {hit.pages[0]}-{hit.pages[1]}"
        where = " · ".join(part for part in (hit.title, pages, hit.section) if part)
        print(f"{rank}. {where}")
        text = " ".join(hit.text.split())
        print(f"   {text[:300]}{' …' if len(text) > 300 else ''}")
        print(f"   [{hit.doc_id} · dense {hit.dense_score:.2f} · keyword {hit.keyword_score:.2f} · {_shown(hit.source)}]")
    return 0
