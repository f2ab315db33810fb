"""Client deadlines: `X-Request-Timeout-Ms` (or the body's `timeout_ms`) caps the time one request spends.

gRPC's deadline propagation, by hand: the route opens the request's `Deadline` in a context variable
(`applied`), and every layer below reads it without an API change — `GuardedUpstream` stops retrying
when the next backoff would outlive it, the coalescer stops waiting in its queue, and the REST and gRPC
clients cut each call's timeout to the budget left (`call_timeout`). A spent budget is
`UpstreamError("timeout")`, which the client sees as 504 `upstream_timeout`.

A context variable is per thread under a threaded server (each request has its own), and a coalesced
TF Serving call carries the latest deadline of the requests merged into it (see coalescing.py), so no
request fails because another one had less time (a queued request still stops waiting at its own; the
leader sending the merged call may overrun its own by the wait for others' answers).

Flask-free: `textclf predict` imports the clients, which import this.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass

from serving.gateway.errors import ApiError, UpstreamError

HEADER = "X-Request-Timeout-Ms"
FIELD = "timeout_ms"
MAX_TIMEOUT_MS = 3_600_000  # an hour: past that a "deadline" is a typo


@dataclass(frozen=True)
class Deadline:
    budget_ms: int  # what the client gave, for messages
    expires_at: float  # time.monotonic() seconds

    @classmethod
    def after_ms(cls, budget_ms: int) -> Deadline:
        return cls(budget_ms, time.monotonic() + budget_ms / 1000)

    def remaining_s(self) -> float:
        return self.expires_at - time.monotonic()

    @property
    def expired(self) -> bool:
        return self.remaining_s() <= 0


_current: ContextVar[Deadline | None] = ContextVar("textclf_deadline", default=None)


def current() -> Deadline | None:
    """The deadline of the request this thread works on, or None (no client deadline)."""
    return _current.get()


@contextlib.contextmanager
def applied(deadline: Deadline | None) -> Iterator[None]:
    """Run the block under `deadline` (None: without one)."""
    token = _current.set(deadline)
    try:
        yield
    finally:
        _current.reset(token)


def latest(deadlines: Iterable[Deadline | None]) -> Deadline | None:
    """The deadline a shared call may run under: the latest of them, None if any has none."""
    found: Deadline | None = None
    for deadline in deadlines:
        if deadline is None:
            return None
        if found is None or deadline.expires_at > found.expires_at:
            found = deadline
    return found


def spent_error(detail: str = "") -> UpstreamError:
    """The timeout UpstreamError (504 upstream_timeout to the client) for a spent deadline."""
    deadline = current()
    budget = f" of {deadline.budget_ms} ms" if deadline is not None else ""
    message = f"the client's deadline{budget} ({HEADER} or {FIELD}) is spent"
    return UpstreamError("timeout", message + (f"; {detail}" if detail else ""))


def spent(*, slack_s: float = 0.0) -> bool:
    """True if this request has a deadline and it has passed (or is within `slack_s` of passing: a call
    cut to the budget left may time out a hair before it)."""
    deadline = current()
    return deadline is not None and deadline.remaining_s() <= slack_s


def call_timeout(default_s: float) -> float:
    """The timeout of one TF Serving call: `default_s`, cut to the budget left; raises the timeout
    UpstreamError if nothing is left."""
    deadline = current()
    if deadline is None:
        return default_s
    remaining = deadline.remaining_s()
    if remaining <= 0:
        raise spent_error()
    return min(default_s, remaining)


def allows(pause_s: float) -> bool:
    """True if a pause of `pause_s` (a retry's backoff) still leaves budget for another attempt."""
    deadline = current()
    return deadline is None or deadline.remaining_s() > pause_s


def from_request(header: str | None, body_ms: int | None) -> Deadline | None:
    """The request's deadline from the header and the (already validated) body field: the tighter one.
    A malformed header is 400 `invalid_timeout`."""
    budgets = [body_ms] if body_ms is not None else []
    if header is not None:
        budgets.append(parse_header(header))
    return Deadline.after_ms(min(budgets)) if budgets else None


def parse_header(value: str) -> int:
    text = value.strip()
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_TIMEOUT_MS:
        raise ApiError(
            "invalid_timeout", f"{HEADER} must be whole milliseconds from 1 to {MAX_TIMEOUT_MS}, got {value[:40]!r}"
        )
    return int(text)
