"""One model, many browser tabs: requests take turns, first come first served.

Two CPU cores cannot usefully run two answers at once, and interleaving two generations on one
model would only make both slow. Each Streamlit session runs its script in its own thread;
`TurnQueue.turn()` makes that thread wait its turn while telling the page how many are ahead.
"""

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# How often a waiting page is told its place in the queue. Each report is also where Streamlit
# can interrupt a script whose user clicked Stop or left, so it must be short.
POLL_S = 0.25


class TurnQueue:
    def __init__(self):
        self._changed = threading.Condition()
        self._line: list[object] = []  # the holder first, then the waiters in arrival order

    @property
    def waiting(self) -> int:
        """Requests queued behind the one running."""
        with self._changed:
            return max(0, len(self._line) - 1)

    @property
    def busy(self) -> bool:
        with self._changed:
            return bool(self._line)

    @contextmanager
    def turn(self, on_wait: Callable[[int], None] | None = None) -> Iterator[float]:
        """Wait for our turn, calling `on_wait(ahead)` every POLL_S seconds meanwhile; yields the
        seconds waited. Leaving (normally, or by an exception raised in `on_wait` or in the
        body) lets the next one in."""
        token = object()
        began = time.monotonic()
        with self._changed:
            self._line.append(token)
        try:
            while (ahead := self._ahead(token)) > 0:
                if on_wait is not None:
                    on_wait(ahead)
                with self._changed:
                    if self._line.index(token) > 0:
                        self._changed.wait(POLL_S)
            yield time.monotonic() - began
        finally:
            with self._changed:
                self._line.remove(token)
                self._changed.notify_all()

    def _ahead(self, token: object) -> int:
        with self._changed:
            return self._line.index(token)
