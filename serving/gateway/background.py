"""A bounded queue and the one daemon thread that consumes it: work taken off the request path (shadow copies,
payload log records) that the caller never waits for and never fails because of.

`offer` never blocks: a full queue (or a thread that cannot start) drops the item and reports it to
`on_dropped`. The thread starts on first use, and again in a forked child (gunicorn workers), whose copy of
the parent's thread is gone. `consume` gets every item queued since its last call, in order; an exception it
raises is logged and reported to `on_failed` with the batch, and the thread goes on. After `close`, the
thread consumes what is queued, calls `on_exit` (e.g. to close a file) and ends.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger("textclf.gateway.background")

T = TypeVar("T")


def _nothing(_: object) -> None:
    return None


class BackgroundQueue(Generic[T]):
    def __init__(
        self,
        name: str,
        size: int,
        consume: Callable[[list[T]], None],
        *,
        on_dropped: Callable[[T], None] = _nothing,
        on_failed: Callable[[list[T]], None] = _nothing,
        on_exit: Callable[[], None] = lambda: None,
        batch: bool = True,
        close_at_exit: float | None = None,
    ) -> None:
        """`batch` False hands `consume` one item at a time; `close_at_exit` (seconds) makes a graceful
        interpreter exit wait that long for the queue to drain (None: queued items may be lost at exit)."""
        self.name = name
        self.size = size
        self._consume = consume
        self._on_dropped = on_dropped
        self._on_failed = on_failed
        self._on_exit = on_exit
        self._batch = batch
        self._close_at_exit = close_at_exit
        self._cond = threading.Condition()
        self._queue: deque[T] = deque()
        self._pending = 0  # queued + being consumed
        self._closed = False
        self._worker: threading.Thread | None = None

    def offer(self, make: Callable[[], T]) -> bool:
        """Queue the item `make()` builds (under the queue's lock, so items are in the order they were made);
        False if it was dropped (or the queue is closed). Never blocks."""
        with self._cond:
            if self._closed:
                return False
            if len(self._queue) >= self.size or not self._start_worker():
                self._on_dropped(make())
                return False
            self._queue.append(make())
            self._pending += 1
            self._cond.notify_all()
            return True

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every queued item is consumed; False if `timeout` passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float | None = None) -> None:
        """Stop taking items; the thread consumes what is queued and exits."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout)

    def _start_worker(self) -> bool:  # under self._cond; False if no thread could be started
        if self._worker is None or not self._worker.is_alive():
            worker = threading.Thread(target=self._run, name=self.name, daemon=True)
            try:
                worker.start()
            except RuntimeError:  # "can't start new thread": drop the item, never fail the caller
                log.exception("cannot start the %s thread", self.name)
                return False
            if self._worker is None and self._close_at_exit is not None:
                atexit.register(self.close, self._close_at_exit)
            self._worker = worker
        return True

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._closed)
                if not self._queue:
                    break
                if self._batch:
                    items = list(self._queue)
                    self._queue.clear()
                else:
                    items = [self._queue.popleft()]
            try:
                self._consume(items)
            except Exception:  # a full disk or a bug must not kill the thread (or reach a request)
                log.exception("%s: %d item(s) failed", self.name, len(items))
                self._on_failed(items)
            finally:
                with self._cond:
                    self._pending -= len(items)
                    self._cond.notify_all()
        self._on_exit()
