"""Getting the library ready for quick answers while nobody is asking.

An extractive answer scores every sentence of its passages by embedding; embedding them when
the question comes costs seconds on a busy machine, embedding them once per document ahead of
time leaves a question only its own embedding. `Preparation` does that in one background
thread of the server: a document at a time, in small batches, and only while no request holds
the model (it waits at each batch while one runs). It runs again after an upload, and stops
at its next batch when the process exits (a thread killed inside torch aborts the process).
"""

import atexit
import logging
import os
import threading
import time

from app.extractive import Extractor
from app.ui.turns import TurnQueue
from ingest import IngestError, Store

# How often a paused preparation looks whether the requests are done.
IDLE_POLL_S = 0.1
# Niceness of the preparing thread (and the math threads it starts): on two shared cores a
# question's own work comes first.
NICENESS = 10

log = logging.getLogger("tome.ui")


class Preparation:
    def __init__(self, store: Store, extractor: Extractor, turns: TurnQueue):
        self.store, self.extractor, self.turns = store, extractor, turns
        self._again = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        atexit.register(self.stop)

    def start(self) -> None:
        """Prepare whatever documents are not prepared yet (again, if it is running)."""
        with self._lock:
            self._again.set()
            if self._stopping.is_set():
                return
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="tome-prepare", daemon=True)
                self._thread.start()

    def unprepared(self) -> int:
        """Documents whose questions would still embed their passages."""
        vectors = self.extractor.sentence_vectors
        return sum(not vectors.prepared(d.doc_id) for d in self.store.documents())

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the preparation is done; False on timeout. For tests and benchmarks."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return thread is None or not thread.is_alive()

    def stop(self, timeout: float = 60.0) -> None:
        """Stop at the next batch and wait for that."""
        self._stopping.set()
        self.wait(timeout)

    def _run(self) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICENESS)
        except (OSError, AttributeError):
            pass  # not allowed or not Linux: run at normal priority
        while True:
            with self._lock:
                if not self._again.is_set():
                    return
                self._again.clear()
            try:
                self._prepare_all()
            except _Stopped:
                return
            except Exception:  # noqa: BLE001 — questions still work, embedding on demand; say why in the log
                log.exception("preparing the library for quick answers failed")
                return

    def _prepare_all(self) -> None:
        docs = [d.doc_id for d in self.store.documents()]
        vectors = self.extractor.sentence_vectors
        vectors.forget(vectors.documents() - set(docs))
        for doc_id in docs:
            began = time.monotonic()
            try:
                count = self.extractor.prepare(doc_id, pause=self._wait_for_idle)
            except IngestError:  # deleted meanwhile
                continue
            if count:
                log.info("prepared %s: %d sentences in %.1f s", doc_id, count, time.monotonic() - began)

    def _wait_for_idle(self) -> None:
        while self.turns.busy and not self._stopping.is_set():
            time.sleep(IDLE_POLL_S)
        if self._stopping.is_set():
            raise _Stopped


class _Stopped(Exception):
    pass
