"""Load shedding: a gateway worker works on at most `max_in_flight` classify requests at once.

Past the limit a request is answered at once with 503 `overloaded` and `Retry-After`, instead of
queueing in the worker's threads until every client times out (Triton's queue limit, Envoy's
max_requests). A non-blocking semaphore per app: one app per gunicorn worker process, so the limit
is per worker; 0 means no limit.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from typing import ParamSpec, TypeVar

from flask import current_app

from serving.gateway.errors import ApiError

EXTENSION = "textclf_admission"  # the key in `app.extensions`
RETRY_AFTER_S = 1  # what a shed request is told: the work in flight is a TF Serving call or so

P = ParamSpec("P")
R = TypeVar("R")


class Admission:
    def __init__(self, limit: int, *, on_shed: Callable[[], None] | None = None) -> None:
        self.limit = limit
        self._slots = threading.BoundedSemaphore(limit) if limit else None
        self._on_shed = on_shed or (lambda: None)

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the `limit` slots for the block, or raise ApiError(overloaded) at once."""
        if self._slots is None:
            yield
            return
        if not self._slots.acquire(blocking=False):
            self._on_shed()
            raise ApiError(
                "overloaded",
                f"this gateway worker is already working on {self.limit} requests; retry after {RETRY_AFTER_S} s",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        try:
            yield
        finally:
            self._slots.release()


def admitted(view: Callable[P, R]) -> Callable[P, R]:
    """A route decorator: the view runs in a slot of its app's Admission, or the request is shed."""

    @functools.wraps(view)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        admission: Admission = current_app.extensions[EXTENSION]
        with admission.slot():
            return view(*args, **kwargs)

    return run
