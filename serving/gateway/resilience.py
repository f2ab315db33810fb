"""Retries with backoff and a circuit breaker in front of any Upstream.

Why both: a retry rides out a blip (TF Serving restarting a connection); the breaker stops a dead TF
Serving from tying up every gateway thread in timeouts, answers 503 at once, and lets one trial request
through after a pause so the gateway recovers by itself when TF Serving is back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from serving.gateway import deadline
from serving.gateway.errors import ApiError, UpstreamError
from serving.gateway.upstream import Signature, Upstream, VersionStatus

T = TypeVar("T")

CLOSED, HALF_OPEN, OPEN = "closed", "half_open", "open"


class CircuitBreaker:
    """closed --(N consecutive outages)--> open --(reset_after_s)--> half_open --(trial ok)--> closed;
    a failed trial opens it again. While half-open only one trial call is let through."""

    def __init__(
        self,
        failure_threshold: int,
        reset_after_s: float,
        *,
        on_change: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.reset_after_s = reset_after_s
        self._on_change = on_change or (lambda state: None)
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_running = False

    @property
    def state(self) -> str:
        with self._lock:
            self._maybe_half_open()
            return self._state

    def allow(self) -> None:
        """Raise ApiError(circuit_open) if a call may not go upstream now."""
        with self._lock:
            self._maybe_half_open()
            if self._state == OPEN or (self._state == HALF_OPEN and self._trial_running):
                wait = max(0.0, self._opened_at + self.reset_after_s - self._clock())
                raise ApiError("circuit_open", f"TF Serving is failing; next attempt in {wait:.1f} s")
            if self._state == HALF_OPEN:
                self._trial_running = True

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._trial_running = False
            self._set(CLOSED)

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            self._trial_running = False
            if self._state == HALF_OPEN or self._failures >= self.failure_threshold:
                self._opened_at = self._clock()
                self._set(OPEN)

    def release(self) -> None:
        """End a call that proved nothing about TF Serving's health."""
        with self._lock:
            self._trial_running = False

    def _maybe_half_open(self) -> None:
        if self._state == OPEN and self._clock() - self._opened_at >= self.reset_after_s:
            self._set(HALF_OPEN)

    def _set(self, state: str) -> None:
        if state != self._state:
            self._state = state
            self._on_change(state)


class GuardedUpstream:
    """An Upstream whose calls pass the breaker and retry UNAVAILABLE with exponential backoff.

    Only outages (unavailable, timeout) count against the breaker: NOT_FOUND or a bad argument prove
    TF Serving is up. Timeouts are not retried (the request may still be running there). Under a client
    deadline (deadline.py) no attempt starts once it is spent, no retry waits past it, and a call cut short
    by it says nothing about TF Serving's health.
    """

    def __init__(
        self,
        inner: Upstream,
        breaker: CircuitBreaker,
        *,
        retries: int,
        backoff_s: float,
        observe: Callable[[str, float], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.inner = inner
        self.target = inner.target
        self.breaker = breaker
        self.retries = retries
        self.backoff_s = backoff_s
        self._observe = observe or (lambda operation, seconds: None)
        self._sleep = sleep

    def metadata(self, model: str, version: int | None = None, label: str | None = None) -> Signature:
        return self._guarded("metadata", lambda: self.inner.metadata(model, version, label))

    def status(self, model: str) -> list[VersionStatus]:
        return self._guarded("status", lambda: self.inner.status(model))

    def predict(
        self, model: str, version: int, input_name: str, values: Sequence[str], outputs: Sequence[str]
    ) -> dict[str, list[Any]]:
        return self._guarded("predict", lambda: self.inner.predict(model, version, input_name, values, outputs))

    def close(self) -> None:
        self.inner.close()

    def _guarded(self, operation: str, call: Callable[[], T]) -> T:
        self.breaker.allow()
        attempt = 0
        while True:
            if deadline.spent():  # the client's budget ran out before this call (queued, preprocessing)
                self.breaker.release()
                raise deadline.spent_error()
            started = time.perf_counter()
            try:
                result = call()
            except UpstreamError as exc:
                self._observe(operation, time.perf_counter() - started)
                if exc.kind == "unavailable" and attempt < self.retries:
                    pause = self.backoff_s * 2**attempt
                    if deadline.allows(pause):
                        self._sleep(pause)
                        attempt += 1
                        continue
                    self.breaker.record_failure()  # an outage, but the client cannot wait for another try
                    raise deadline.spent_error(f"no retry after {attempt + 1} attempt(s): {exc.message}") from None
                if exc.kind == "timeout" and deadline.spent(slack_s=0.01):
                    self.breaker.release()  # the client's deadline, not TF Serving's health, ended the call
                    raise
                if exc.is_outage:
                    self.breaker.record_failure()
                else:
                    self.breaker.record_success()
                raise
            except BaseException:
                self.breaker.release()  # a bug, not an outage: just never leave a half-open trial hanging
                raise
            self._observe(operation, time.perf_counter() - started)
            self.breaker.record_success()
            return result
