"""Circuit breaker, retries and the signature cache on a fake clock (pure logic, no server: the fake
upstream below stands in for TF Serving only to count calls; the real thing is in test_gateway_breaker)."""

from __future__ import annotations

import pytest

from serving.gateway.errors import ApiError, UpstreamError
from serving.gateway.resilience import CLOSED, HALF_OPEN, OPEN, CircuitBreaker, GuardedUpstream
from serving.gateway.signatures import SignatureCache
from serving.gateway.upstream import Signature


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FlakyUpstream:
    """Fails with the given kinds in order, then answers."""

    target = "fake"

    def __init__(self, *failures: str) -> None:
        self.failures = list(failures)
        self.calls = 0

    def status(self, model: str) -> list:
        self.calls += 1
        if self.failures:
            raise UpstreamError(self.failures.pop(0), "boom")
        return []


def test_breaker_cycle():
    clock, states = Clock(), []
    breaker = CircuitBreaker(2, 5.0, on_change=states.append, clock=clock)
    breaker.allow()
    breaker.record_failure()
    assert breaker.state == CLOSED
    breaker.allow()
    breaker.record_failure()
    assert breaker.state == OPEN
    with pytest.raises(ApiError) as raised:
        breaker.allow()
    assert raised.value.code == "circuit_open" and raised.value.status == 503
    clock.now += 5.0
    assert breaker.state == HALF_OPEN
    breaker.allow()  # the one trial
    with pytest.raises(ApiError):
        breaker.allow()  # no second caller while the trial runs
    breaker.record_failure()
    assert breaker.state == OPEN  # a failed trial re-opens at once
    clock.now += 5.0
    breaker.allow()
    breaker.record_success()
    assert breaker.state == CLOSED
    assert states == [OPEN, HALF_OPEN, OPEN, HALF_OPEN, CLOSED]


def test_retries_only_unavailable_with_growing_backoff():
    sleeps: list[float] = []
    breaker = CircuitBreaker(10, 1.0)
    flaky = FlakyUpstream("unavailable", "unavailable")
    guarded = GuardedUpstream(flaky, breaker, retries=2, backoff_s=0.1, sleep=sleeps.append)
    assert guarded.status("m") == [] and flaky.calls == 3 and sleeps == [0.1, 0.2]

    exhausted = GuardedUpstream(
        FlakyUpstream(*["unavailable"] * 5), breaker, retries=2, backoff_s=0.1, sleep=sleeps.append
    )
    with pytest.raises(UpstreamError):
        exhausted.status("m")
    assert exhausted.inner.calls == 3

    timeout = GuardedUpstream(FlakyUpstream("timeout"), breaker, retries=2, backoff_s=0.1, sleep=sleeps.append)
    with pytest.raises(UpstreamError):
        timeout.status("m")
    assert timeout.inner.calls == 1  # a timed-out request may still be running upstream: not repeated


def test_not_found_does_not_count_as_an_outage():
    breaker = CircuitBreaker(1, 1.0)
    guarded = GuardedUpstream(FlakyUpstream("not_found", "not_found"), breaker, retries=0, backoff_s=0)
    for _ in range(2):
        with pytest.raises(UpstreamError):
            guarded.status("m")
    assert breaker.state == CLOSED


def test_signature_cache_ttl_and_invalidate():
    clock, fetched = Clock(), []

    def fetch(model, version, label):
        fetched.append((model, version, label))
        return Signature(model, len(fetched), ("tokens",), ("probabilities", "label"))

    cache = SignatureCache(fetch, ttl_s=30, clock=clock)
    assert cache.get("m").version == cache.get("m").version == 1
    assert cache.get("m", label="canary").version == 2  # keyed by version/label too
    clock.now += 31
    assert cache.get("m").version == 3
    cache.invalidate("m")
    assert cache.get("m").version == 4
