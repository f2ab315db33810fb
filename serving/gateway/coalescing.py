"""Merge the predict calls that overlap inside one gateway worker into one TF Serving call.

Why: every upstream call costs fixed CPU on both sides (HTTP/2 framing, protobuf, a session run) that
a batch of texts shares. TF Serving's own batching merges calls only after it has paid for receiving
each one; merging here, before the wire, saves that too.

No timer (unlike TF Serving's batch_timeout_micros): a call goes out at once while fewer than
`max_in_flight` calls for its (model, version, input, outputs) are running, so a lone client waits for
nothing. Calls that arrive meanwhile queue, and when a running call returns, the oldest queued call
becomes the leader and sends every queued call (up to `max_texts` texts) as one. No extra thread: the
leader is a request thread, so the quiet path has no hand-off. A call of more than `max_texts` texts is
sent in parts of `max_texts`, so with max_texts <= TF Serving's max_batch_size no call is too large.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from serving.gateway.deadline import Deadline, applied, current, latest, spent_error
from serving.gateway.errors import UpstreamError
from serving.gateway.upstream import Signature, Upstream, VersionStatus

_Key = tuple[str, int, str, tuple[str, ...]]


@dataclass(eq=False)
class _Call:
    values: Sequence[str]
    deadline: Deadline | None = None  # the client's, if it gave one (deadline.py)
    wake: threading.Event = field(default_factory=threading.Event)  # finished, or promoted to leader
    lead: bool = False
    answer: dict[str, list[Any]] | None = None
    error: Exception | None = None

    @property
    def finished(self) -> bool:
        return self.answer is not None or self.error is not None


class CoalescingUpstream:
    """An Upstream whose `predict` calls coalesce; metadata and status pass straight through."""

    def __init__(
        self,
        inner: Upstream,
        *,
        max_texts: int,
        max_in_flight: int,
        wait_s: float,
        observe: Callable[[int, int], None] | None = None,
    ) -> None:
        self.inner = inner
        self.target = inner.target
        self.max_texts = max_texts
        self.max_in_flight = max_in_flight
        self.wait_s = wait_s  # a queued call gives up after this long (a lost leader must not hang it)
        self._observe = observe or (lambda calls, texts: None)
        self._lock = threading.Lock()
        self._queues: dict[_Key, collections.deque[_Call]] = collections.defaultdict(collections.deque)
        self._running: dict[_Key, int] = collections.defaultdict(int)

    @property
    def idle(self) -> bool:
        """Nothing queued and no call running: every leader slot has come back (a drained worker). Public
        because a leaked slot shows no symptom until its key stalls much later; this is how tests (or a
        worker shutting down) check the coalescer drained, without reading its tables."""
        with self._lock:
            return not any(self._running.values()) and not any(self._queues.values())

    def metadata(self, model: str, version: int | None = None, label: str | None = None) -> Signature:
        return self.inner.metadata(model, version, label)

    def status(self, model: str) -> list[VersionStatus]:
        return self.inner.status(model)

    def close(self) -> None:
        self.inner.close()

    def predict(
        self, model: str, version: int, input_name: str, values: Sequence[str], outputs: Sequence[str]
    ) -> dict[str, list[Any]]:
        if len(values) > self.max_texts:  # TF Serving would reject it past max_batch_size: send it in parts
            parts = [
                self.predict(model, version, input_name, values[i : i + self.max_texts], outputs)
                for i in range(0, len(values), self.max_texts)
            ]
            return {name: [row for part in parts for row in part[name]] for name in parts[0]}
        key = (model, version, input_name, tuple(outputs))
        call = _Call(values, current())
        with self._lock:
            self._queues[key].append(call)
            call.lead = self._running[key] < self.max_in_flight
            if call.lead:
                self._running[key] += 1
        if not call.lead:
            self._wait_turn(key, call)
        if call.lead:  # even if another leader has answered it meanwhile: the slot must be passed on
            self._lead(key, call)
        if call.error is not None:
            raise call.error
        assert call.answer is not None
        return call.answer

    def _wait_turn(self, key: _Key, call: _Call) -> None:
        """Block until a leader has promoted this call to leader or answered it."""
        deadline = time.monotonic() + self.wait_s
        if call.deadline is not None:  # the client's deadline ends the wait too
            deadline = min(deadline, call.deadline.expires_at)
        while True:
            call.wake.wait(max(0.0, deadline - time.monotonic()))
            with self._lock:
                if call.lead:
                    call.wake.clear()
                    return
                if call.finished:
                    return
                if time.monotonic() >= deadline:
                    if call in self._queues[key]:
                        self._queues[key].remove(call)
                    call.error = (
                        spent_error("queued behind other requests")
                        if call.deadline is not None and call.deadline.expired
                        else UpstreamError(
                            "timeout",
                            f"no TF Serving answer within {self.wait_s:g}s while queued behind other requests",
                        )
                    )
                    return

    def _lead(self, key: _Key, own: _Call) -> None:
        """Send queued calls (oldest first) until our own is answered, then pass the lead on."""
        try:
            while True:
                with self._lock:
                    if own.finished:
                        return
                    batch = self._take(self._queues[key])
                    if not batch:  # our call rides in another leader's batch: wait for it
                        own.wake.clear()
                if batch:
                    self._send(key, batch)
                else:
                    own.wake.wait()
        finally:
            with self._lock:
                # the oldest queued call not already promoted by another leader (a second promotion
                # would hand it two slots, and it passes on only one)
                successor = next((call for call in self._queues[key] if not call.lead), None)
                if successor is not None:
                    successor.lead = True
                    successor.wake.set()
                else:
                    self._running[key] -= 1

    def _take(self, queue: collections.deque[_Call]) -> list[_Call]:
        """The oldest queued calls up to max_texts texts."""
        batch: list[_Call] = []
        texts = 0
        while queue and (not batch or texts + len(queue[0].values) <= self.max_texts):
            call = queue.popleft()
            batch.append(call)
            texts += len(call.values)
        return batch

    def _send(self, key: _Key, batch: list[_Call]) -> None:
        model, version, input_name, outputs = key
        values = [value for call in batch for value in call.values]
        self._observe(len(batch), len(values))
        try:
            # the latest deadline of the batch: no request fails for another's shorter one (deadline.py)
            with applied(latest(call.deadline for call in batch)):
                answer = self.inner.predict(model, version, input_name, values, outputs)
        except UpstreamError as exc:
            if exc.kind == "invalid_argument" and len(batch) > 1:
                for call in batch:  # one bad request (or a batch over TF Serving's limit) fails alone
                    self._send(key, [call])
                return
            self._finish(batch, error=exc)
        except Exception as exc:  # noqa: BLE001 - a bug fails (and is logged by) every request, strands none
            self._finish(batch, error=exc)
        else:
            self._finish(batch, answer=answer)

    def _finish(
        self, batch: list[_Call], *, answer: dict[str, list[Any]] | None = None, error: Exception | None = None
    ) -> None:
        start = 0
        with self._lock:
            for call in batch:
                end = start + len(call.values)
                if answer is not None:
                    call.answer = {name: rows[start:end] for name, rows in answer.items()}
                call.error = error
                call.wake.set()
                start = end
