"""Prometheus metrics of one gateway app (its own registry, so several apps can live in one process).

Under gunicorn with several workers set PROMETHEUS_MULTIPROC_DIR: every worker then writes its values
there and /metrics aggregates them (gunicorn.conf.py cleans up after dead workers).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

from serving.gateway.resilience import CLOSED, HALF_OPEN, OPEN

BREAKER_VALUES = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_SCORE_BUCKETS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
# cleaned text length in characters: from a short review to the longest text a request may carry (10,000)
_LENGTH_BUCKETS = (5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
# label values come from closed sets, so no client can grow /metrics: any other method token is "other",
# and a request that matched no route (404, or 401 before routing mattered) has the route "other"
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})
OTHER = "other"


def method_label(method: str) -> str:
    return method if method in HTTP_METHODS else OTHER


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}
        r = self.registry
        self.requests = Counter(
            "textclf_gateway_requests_total",
            "HTTP requests by route and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram("textclf_gateway_request_seconds", "HTTP request latency", ["route"], registry=r)
        self.errors = Counter(
            "textclf_gateway_errors_total", "Error answers by stable error code", ["code"], registry=r
        )
        self.upstream_latency = Histogram(
            "textclf_gateway_upstream_seconds", "TF Serving call latency per attempt", ["operation"], registry=r
        )
        self.coalesced_requests = Histogram(
            "textclf_gateway_coalesced_requests",
            "Client requests merged into one TF Serving predict call",
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.upstream_batch_texts = Histogram(
            "textclf_gateway_upstream_batch_texts",
            "Texts per TF Serving predict call",
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.breaker = Gauge(
            "textclf_gateway_circuit_breaker_state",
            "0 closed, 1 half-open, 2 open",
            registry=r,
            multiprocess_mode="max",
        )
        self.predictions = Counter(
            "textclf_gateway_predictions_total",
            "Predicted labels per model and version",
            ["model", "version", "label"],
            registry=r,
        )
        self.top_score = Histogram(
            "textclf_gateway_top_score",
            "Score of the predicted label per model and version",
            ["model", "version"],
            buckets=_SCORE_BUCKETS,
            registry=r,
        )
        # live drift signals (the `textclf drift` report is the full one): per model version, texts classified
        self.text_length = Histogram(
            "textclf_gateway_text_length_chars",
            "Length of the cleaned classified text in characters, per model and version",
            ["model", "version"],
            buckets=_LENGTH_BUCKETS,
            registry=r,
        )
        self.low_confidence = Counter(
            "textclf_gateway_low_confidence_total",
            "Texts whose top score was below TEXTCLF_LOW_CONFIDENCE, per model and version",
            ["model", "version"],
            registry=r,
        )
        # the payload log (payload_log.py), counted in texts
        self.payload_written = Counter(
            "textclf_gateway_payload_written_total", "Texts written to the payload log", registry=r
        )
        self.payload_dropped = Counter(
            "textclf_gateway_payload_dropped_total",
            "Sampled texts not written to the payload log (queue full or write failed)",
            registry=r,
        )
        # load shedding (admission.py)
        self.shed = Counter(
            "textclf_gateway_shed_requests_total", "Classify requests shed (503 overloaded)", registry=r
        )
        # weighted canary (routing.py): route is the weighted choice, "explicit" or "latest"
        self.routed = Counter(
            "textclf_gateway_routed_requests_total",
            "Classify requests per model, answering version and route",
            ["model", "version", "route"],
            registry=r,
        )
        # the response cache (cache.py): per text looked up, and what it holds (per worker, summed)
        self.cache_hits = Counter(
            "textclf_gateway_cache_hits_total", "Texts answered from the response cache", ["model"], registry=r
        )
        self.cache_misses = Counter(
            "textclf_gateway_cache_misses_total", "Texts the response cache did not hold", ["model"], registry=r
        )
        self.cache_entries = Gauge(
            "textclf_gateway_cache_entries", "Entries in the response cache", registry=r, multiprocess_mode="livesum"
        )
        self.cache_bytes = Gauge(
            "textclf_gateway_cache_bytes", "Bytes in the response cache", registry=r, multiprocess_mode="livesum"
        )

    def child(self, metric: Any, *values: str) -> Any:
        """`metric.labels(*values)`, looked up once per label set: prometheus_client's own lookup takes a lock
        and rebuilds its key on every call, several times per request. Label values come from closed sets
        (see OTHER), so this table stays as small as /metrics."""
        key = (metric, values)
        found = self._children.get(key)
        if found is None:
            found = self._children.setdefault(key, metric.labels(*values))
        return found

    def served(self, route: str, method: str, status: int, seconds: float) -> None:
        """One HTTP answer: counted by route, method and status, its latency by route."""
        self.child(self.requests, route, method_label(method), str(status)).inc()
        self.child(self.latency, route).observe(seconds)

    def cache_looked_up(self, model: str, hits: int, misses: int) -> None:
        self.child(self.cache_hits, model).inc(hits)
        self.child(self.cache_misses, model).inc(misses)

    def cache_resized(self, entries: int, size_bytes: int) -> None:
        self.cache_entries.set(entries)
        self.cache_bytes.set(size_bytes)

    def breaker_changed(self, state: str) -> None:
        self.breaker.set(BREAKER_VALUES[state])

    def coalesced(self, requests: int, texts: int) -> None:
        self.coalesced_requests.observe(requests)
        self.upstream_batch_texts.observe(texts)

    def predicted(
        self,
        model: str,
        version: int,
        labels: Sequence[str],
        scores: Sequence[float],
        lengths: Sequence[int],
        low_confidence: float,
    ) -> None:
        """Count what the model predicted, with each text's cleaned length; a top score below `low_confidence`
        counts as unsure (texts it never saw, empty after cleaning, are not passed here)."""
        unsure = 0
        ver = str(version)
        top_score, text_length = self.child(self.top_score, model, ver), self.child(self.text_length, model, ver)
        for label, score, length in zip(labels, scores, lengths, strict=True):
            self.child(self.predictions, model, ver, label).inc()
            top_score.observe(score)
            text_length.observe(length)
            unsure += score < low_confidence
        # touched even at 0, so a ratio against textclf_gateway_predictions_total has a series from the start
        self.child(self.low_confidence, model, ver).inc(unsure)

    def render(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
