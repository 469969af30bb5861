"""The store lock: one writer at a time across processes and threads (Chroma's PersistentClient
is not process-safe). Writers hold it exclusively; searches hold it shared, briefly.

flock locks belong to an open file description, so each acquisition opens the file anew: two
threads of one process exclude each other just like two processes. Waits are bounded.
"""

import fcntl
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ingest.errors import StoreBusyError

_POLL_S = 0.05


class StoreLock:
    def __init__(self, folder: Path, timeout_s: float):
        self.path = folder / "lock"
        self.owner_path = folder / "lock.owner"
        self.timeout_s = timeout_s

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._held(fcntl.LOCK_EX):
            self.owner_path.write_text(f"{os.getpid()} {' '.join(sys.argv)[:200]}\n")
            yield

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._held(fcntl.LOCK_SH):
            yield

    @contextmanager
    def _held(self, mode: int) -> Iterator[None]:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + self.timeout_s
            while True:
                try:
                    fcntl.flock(fd, mode | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise StoreBusyError(self._busy_message()) from None
                    time.sleep(_POLL_S)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def _busy_message(self) -> str:
        try:
            owner = self.owner_path.read_text().strip()
        except OSError:
            owner = ""
        holder = f" (pid {owner.split(' ', 1)[0]}: {owner.split(' ', 1)[1]})" if " " in owner else ""
        return (
            f"store {self.path.parent} is busy: another Tome process{holder} is writing to it; "
            f"gave up after {self.timeout_s:.0f} s, try again when it is done"
        )
