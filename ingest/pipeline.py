"""`ingest_paths` and `ingest_bytes`: files in, an IngestReport out. A file that cannot be read
costs one line in `failed`; the rest of the batch goes on and the store stays consistent."""

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ingest.embed import get_embedder
from ingest.errors import IngestError, StoreBusyError
from ingest.parse import KINDS, ParsedDocument, check_size, kind_of, parse_text, read_file
from ingest.prepare import build_document, content_id
from ingest.records import FileResult, IngestReport, Progress
from ingest.settings import IngestSettings
from ingest.store import Store
from ingest.worker import PdfParser

ProgressCallback = Callable[[Progress], None]


def ingest_paths(
    paths: Iterable[str | Path], store: Store, on_progress: ProgressCallback | None = None,
    settings: IngestSettings | None = None,
) -> IngestReport:
    """Ingest files and folders (recursively; in folders, files of other types and hidden files
    are skipped). A file's source is its absolute path: re-ingesting an unchanged file does
    nothing, a changed file replaces its old version completely."""
    files, report = _expand(paths)
    batch = _Batch(store, settings or store.settings, on_progress, report, len(files))
    with batch.parser:
        batch.run([(str(path), lambda p=path: read_file(p, batch.settings)) for path in files])
    return report


def ingest_bytes(
    name: str, data: bytes, store: Store, on_progress: ProgressCallback | None = None,
    settings: IngestSettings | None = None,
) -> IngestReport:
    """Ingest an upload. `name` (a file name; its extension gives the type) is its source: a new
    upload under the same name replaces the old one."""
    name = Path(name.replace("\\", "/")).name or name
    report = IngestReport()
    batch = _Batch(store, settings or store.settings, on_progress, report, 1)

    def read() -> bytes:
        kind_of(name)
        check_size(len(data), batch.settings)
        return data

    with batch.parser:
        batch.run([(name, read)])
    return report


class _Batch:
    def __init__(self, store: Store, settings: IngestSettings, on_progress: ProgressCallback | None,
                 report: IngestReport, count: int):
        self.store, self.settings, self.report, self.count = store, settings, report, count
        self.on_progress = on_progress or (lambda progress: None)
        self.parser = PdfParser(settings)
        self.embedder = get_embedder()

    def run(self, files: list[tuple[str, Callable[[], bytes]]]) -> None:
        """Each file in turn; the next PDF is parsed (in the parser process) while this one is
        chunked and embedded."""
        upcoming = self._open(0, files)
        for index in range(len(files)):
            current, upcoming = upcoming, None
            try:
                parsed = self._parsed(current)
                upcoming = self._open(index + 1, files)
                outcome, result = self._finish(current, parsed)
            except StoreBusyError:
                raise  # the store, not this file: waiting again for every file would take forever
            except IngestError as error:
                self.report.failed.append((current.source, str(error)))
                current.stage("done", outcome="failed")
            else:
                getattr(self.report, outcome).append(result)
                current.stage("done", result.pages, result.chunks, outcome)
            if upcoming is None:
                upcoming = self._open(index + 1, files)

    def _open(self, index: int, files: list) -> "_File | None":
        """Read and check a file; start parsing it when it is a new PDF."""
        if index >= len(files):
            return None
        source, read = files[index]
        file = _File(source, lambda name, pages=0, chunks=0, outcome="": self.on_progress(
            Progress(source, name, index, self.count, pages, chunks, outcome)))
        try:
            file.data = read()
            file.kind = kind_of(source)
            file.doc_id, _ = content_id(file.data)
            file.state = self.store.stored(source, file.doc_id, self.settings.key(self.embedder.identity))
            if file.state == "new" and file.kind == "pdf":
                self.parser.submit(file.data)
                file.submitted = True
        except IngestError as error:
            file.error = error
        return file

    def _parsed(self, file: "_File") -> ParsedDocument | None:
        if file.error is not None:
            raise file.error
        if file.state != "new":
            return None
        file.stage("parse")
        if file.submitted:
            return self.parser.result(lambda i, n: file.stage("parse", i + 1))
        return parse_text(file.kind, file.data)

    def _finish(self, file: "_File", parsed: ParsedDocument | None) -> tuple[str, FileResult]:
        if file.state == "unchanged":
            return "unchanged", self.store.file_result(file.source, file.doc_id)
        if file.state == "elsewhere":
            outcome, result, removals = self.store.add_source(file.source, file.doc_id)
        else:
            doc = build_document(file.source, file.data, parsed, self.embedder, self.settings, file.stage)
            file.stage("index", len(doc.pages), len(doc.chunks))
            outcome, result, removals = self.store.put(doc, file.source)
        self.report.removed.extend(removals)
        return outcome, result


@dataclass
class _File:
    source: str
    stage: Callable[..., None]
    data: bytes = b""
    kind: str = ""
    doc_id: str = ""
    state: str = ""
    submitted: bool = False
    error: IngestError | None = None


def _expand(paths: Iterable[str | Path]) -> tuple[list[Path], IngestReport]:
    """Files to ingest, in order, without repeats; paths that do not exist fail right away."""
    report = IngestReport()
    files: list[Path] = []
    seen: set[Path] = set()
    for given in paths:
        path = Path(given).expanduser()
        if path.is_dir():
            found = sorted(p for p in _walk(path) if p.suffix.lower() in KINDS)
        elif path.exists() or path.is_symlink():
            found = [path]
        else:
            report.failed.append((str(given), "no such file or directory"))
            continue
        for file in found:
            resolved = file.resolve()
            if resolved not in seen:
                seen.add(resolved)
                files.append(resolved)
    return files, report


def _walk(folder: Path) -> Iterable[Path]:
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        yield from (Path(root) / n for n in names if not n.startswith("."))
