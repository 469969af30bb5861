"""`ingest_paths` and `ingest_bytes`: files in, an IngestReport out. A file that cannot be read
costs one line in `failed`; the rest of the batch goes on and the store stays consistent."""

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from ingest.embed import get_embedder
from ingest.errors import IngestError, StoreBusyError
from ingest.parse import KINDS, check_size, kind_of, read_file
from ingest.prepare import content_id, prepare_document
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
        for index, path in enumerate(files):
            batch.run(index, str(path), lambda p=path: read_file(p, batch.settings))
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
        batch.run(0, name, read)
    return report


class _Batch:
    def __init__(self, store: Store, settings: IngestSettings, on_progress: ProgressCallback | None,
                 report: IngestReport, count: int):
        self.store, self.settings, self.report, self.count = store, settings, report, count
        self.on_progress = on_progress or (lambda progress: None)
        self.parser = PdfParser(settings)
        self.embedder = get_embedder()

    def run(self, index: int, source: str, read: Callable[[], bytes]) -> None:
        def stage(name: str, pages: int = 0, chunks: int = 0, outcome: str = "") -> None:
            self.on_progress(Progress(source, name, index, self.count, pages, chunks, outcome))

        try:
            outcome, result = self._one(source, read, stage)
        except StoreBusyError:
            raise  # the store, not this file: waiting again for every file would take forever
        except IngestError as error:
            self.report.failed.append((source, str(error)))
            stage("done", outcome="failed")
            return
        getattr(self.report, outcome).append(result)
        stage("done", result.pages, result.chunks, outcome)

    def _one(self, source: str, read: Callable[[], bytes], stage) -> tuple[str, FileResult]:
        data = read()
        doc_id, _ = content_id(data)
        key = self.settings.key(self.embedder.identity)
        state = self.store.stored(source, doc_id, key)
        if state == "unchanged":
            return "unchanged", self.store.file_result(source, doc_id)
        if state == "elsewhere":
            outcome, result, removals = self.store.add_source(source, doc_id)
        else:
            doc = prepare_document(source, data, self.parser, self.embedder, self.settings, stage)
            stage("index", len(doc.pages), len(doc.chunks))
            outcome, result, removals = self.store.put(doc, source)
        self.report.removed.extend(removals)
        return outcome, result


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
