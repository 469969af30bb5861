"""A progress bar for long prefills: tokens read, tokens per second and the time left.

    reading  [#########...........]  24,576 / 65,536 tokens  412 tok/s  ETA 1m 39s

`HybridModel.forward(..., progress=bar)` calls `bar(done, total)` after each layer of each piece.
On a terminal the line is redrawn in place; elsewhere (logs, pipes) a line is written at most
every LOG_EVERY seconds and at the end, so a long job leaves a readable trace without flooding it.
"""

import sys
import time
from typing import TextIO

LONG_PREFILL = 4096  # tokens: shorter prompts are read within seconds and get no bar
LOG_EVERY = 30.0  # seconds between lines when the output is not a terminal
WIDTH = 20  # characters of the bar itself


class ProgressBar:
    def __init__(self, stream: TextIO | None = None, label: str = "reading"):
        self.stream = stream or sys.stderr
        self.label = label
        self.started = time.perf_counter()
        self.last_line = self.started
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        finished = done >= total
        if not self.live and not finished and now - self.last_line < LOG_EVERY:
            return
        self.last_line = now
        end = "\n" if finished or not self.live else ""
        self.stream.write(("\r" if self.live else "") + self.line(done, total, now - self.started) + end)
        self.stream.flush()

    def line(self, done: int, total: int, elapsed: float) -> str:
        rate = done / elapsed if elapsed > 0 else 0.0
        filled = WIDTH * done // max(total, 1)
        bar = "#" * filled + "." * (WIDTH - filled)
        left = "done in " + _duration(elapsed) if done >= total else "ETA " + (
            _duration((total - done) / rate) if rate else "?")
        return f"{self.label}  [{bar}]  {done:,} / {total:,} tokens  {rate:,.0f} tok/s  {left}"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {seconds:02d}s" if minutes else f"{seconds}s"
