"""The PDF parser process: pypdf runs in a child so a parser loop, a crash or a decompression
bomb costs one file, never the batch or the server.

The child reports each page before extracting it; the parent waits at most `page_timeout_s` for
the next report, then kills the child and starts a fresh one for the next file. The child's
address space is capped at `parser_memory_bytes`. It is started with `python -m ingest.worker`
(not multiprocessing), so it never re-imports the caller's main module and never inherits the
caller's threads (torch, Chroma).
"""

import os
import subprocess
import sys
from collections.abc import Callable
from multiprocessing.connection import Connection

from ingest.errors import ParseError
from ingest.parse import ParsedDocument
from ingest.settings import IngestSettings


_STARTUP_TIMEOUT_S = 120


class PdfParser:
    """Parses PDFs in a reusable child process. Use as a context manager, or call close()."""

    def __init__(self, settings: IngestSettings):
        self._settings = settings
        self._process: subprocess.Popen | None = None
        self._conn: Connection | None = None

    def parse(self, data: bytes, on_page: Callable[[int, int], None] = lambda i, n: None) -> ParsedDocument:
        self.submit(data)
        return self.result(on_page)

    def submit(self, data: bytes) -> None:
        """Start parsing a PDF in the child and return at once (one file at a time): the caller
        embeds the previous file meanwhile."""
        self._start()
        try:
            self._conn.send_bytes(data)
        except OSError:
            self._crashed()

    def result(self, on_page: Callable[[int, int], None] = lambda i, n: None) -> ParsedDocument:
        """The submitted file's pages; `on_page(i, n)` for each page reported. The wait is per
        page: `page_timeout_s` without a report and the child is killed."""
        page, count = 0, 0
        try:
            while True:
                if not self._conn.poll(self._settings.page_timeout_s):
                    self.close()
                    where = f"on page {page + 1} of {count}" if count else "while opening the file"
                    raise ParseError(
                        f"the PDF parser made no progress for {self._settings.page_timeout_s:g} s "
                        f"{where}; the file is probably malformed"
                    )
                message = self._conn.recv()
                if message[0] == "page":
                    _, page, count = message
                    on_page(page, count)
                elif message[0] == "done":
                    return message[1]
                else:
                    raise ParseError(message[1])
        except (EOFError, OSError):
            self._crashed()

    def _crashed(self) -> None:
        code = self._process.poll() if self._process else None
        self.close()
        raise ParseError(f"the PDF parser crashed on this file (exit status {code})") from None

    def close(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._conn.close()
        self._process = self._conn = None

    def __enter__(self) -> "PdfParser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    def _start(self) -> None:
        if self._process is not None and self._process.poll() is None:
            return
        self.close()
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        command = [sys.executable, "-m", "ingest.worker", str(to_child_r), str(from_child_w),
                   str(self._settings.parser_memory_bytes)]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self._process = subprocess.Popen(
            command, pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._conn = _Duplex(from_child_r, to_child_w)
        # Start-up (a Python interpreter and pypdf) is not a page: it gets its own, generous wait.
        if not self._conn.poll(_STARTUP_TIMEOUT_S) or self._conn.recv() != ("ready",):
            self.close()
            raise ParseError(f"the PDF parser process did not start within {_STARTUP_TIMEOUT_S} s")


class _Duplex(Connection):
    """One Connection over two pipe fds: reads from one, writes to the other."""

    def __init__(self, read_fd: int, write_fd: int):
        super().__init__(read_fd)
        self._write = Connection(write_fd)

    def send_bytes(self, buf, offset=0, size=None) -> None:
        self._write.send_bytes(buf, offset, size)

    def send(self, obj) -> None:
        self._write.send(obj)

    def close(self) -> None:
        self._write.close()
        super().close()


def _serve(read_fd: int, write_fd: int, memory_bytes: int) -> None:
    import logging
    import resource
    import warnings

    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    # pypdf logs every repaired xref and odd font; the result and its warnings say what matters.
    logging.getLogger("pypdf").setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore")
    conn = _Duplex(read_fd, write_fd)
    import pypdf  # noqa: F401  (loaded before "ready", so the first page's wait is all parsing)

    conn.send(("ready",))
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        conn.send(_parse_one(data, conn))


def _parse_one(data: bytes, conn: Connection) -> tuple:
    from ingest.pdf import extract_pdf

    try:
        return ("done", extract_pdf(data, lambda i, n: conn.send(("page", i, n))))
    except ParseError as error:
        return ("error", str(error))
    except MemoryError:
        return ("error", "reading the PDF needs more memory than the parser's limit; it is probably malformed")
    except RecursionError:
        return ("error", "not a readable PDF (its objects nest without end)")
    except Exception as error:  # pypdf raises many types on malformed input
        text = " ".join(str(error).split())[:160] or type(error).__name__
        return ("error", f"not a readable PDF ({text})")


if __name__ == "__main__":
    _serve(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
