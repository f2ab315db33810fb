"""Shadow traffic: a sampled copy of classify requests goes to another version (or model) in the background.

`TEXTCLF_SHADOW` (or `--shadow`, JSON or the path of a JSON file) names per model where the copies go and
which share of requests is copied, e.g. `{"sentiment": {"version_label": "canary", "sample": 0.2}}`
(`"version": N` or `"model": "other"` instead of, or with, the label). After a successful classify the
route hands the request to `ShadowSender.offer`, which only samples and appends to a bounded queue (or
drops the copy and counts it when the queue is full); one daemon thread per gateway app (background.py) sends
the copies and compares their answers with the primary's. The caller never waits for, or fails because of,
its shadow.

The shadow call goes through a `Classifier` with the gateway's own preprocessor (the same jieba and
cleaning as the primary), but on the raw TF Serving client: no retries, and neither the circuit breaker
nor the coalescer, so a slow or failing shadow target can never open the primary's circuit or take its
place in a coalesced batch.
"""

from __future__ import annotations

import json
import logging
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram

from data_prep.errors import UserError
from serving.gateway.background import BackgroundQueue
from serving.gateway.classifier import Classification, Classifier
from serving.gateway.errors import ApiError
from serving.gateway.signatures import SignatureCache
from serving.gateway.upstream import Upstream

log = logging.getLogger("textclf.gateway.shadow")

_SETTING = "TEXTCLF_SHADOW / --shadow"
_KEYS = ("model", "version", "version_label", "sample")
_DIFF_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class ShadowTarget:
    """Where the copies of one model's requests go, and the share of requests copied."""

    model: str | None = None  # None: the primary's model
    version: int | None = None
    version_label: str | None = None
    sample: float = 1.0


def parse_shadow(raw: str, models: Sequence[str] = ()) -> dict[str, ShadowTarget]:
    """`raw` (JSON, or the path of a JSON file; empty = no shadow) -> primary model -> target; `models`
    (if any) are the ones this gateway serves. Every mistake is one UserError line naming the setting."""
    text = raw.strip()
    if not text:
        return {}
    if not text.startswith(("{", "[")):  # not JSON: the path of a JSON file
        path = Path(text)
        if not path.is_file():
            raise UserError(f"{_SETTING}: neither a JSON object nor an existing file: {text!r}")
        text = path.read_text(encoding="utf-8")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{_SETTING}: not valid JSON ({exc})") from None
    if not isinstance(document, dict):
        raise UserError(f'{_SETTING}: expected an object of model -> target, e.g. {{"news": {{"version": 2}}}}')
    targets = {str(model): _target(str(model), spec) for model, spec in document.items()}
    unknown = sorted(set(targets) - set(models)) if models else []
    if unknown:
        raise UserError(f"{_SETTING}: models {unknown} are not served here; models: {list(models)}")
    return targets


def _target(model: str, spec: Any) -> ShadowTarget:
    where = f"{_SETTING}: model {model!r}"
    if not isinstance(spec, dict):
        raise UserError(f"{where}: expected an object with version, version_label and/or model, and sample")
    unknown = sorted(set(spec) - set(_KEYS))
    if unknown:
        raise UserError(f"{where}: unknown keys {unknown}; allowed: {list(_KEYS)}")
    target_model, version, label, sample = (spec.get(key) for key in _KEYS)
    if target_model is not None and (not isinstance(target_model, str) or not target_model):
        raise UserError(f"{where}: model must be a non-empty string, got {target_model!r}")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        raise UserError(f"{where}: version must be an integer >= 1, got {version!r}")
    if label is not None and (not isinstance(label, str) or not label):
        raise UserError(f"{where}: version_label must be a non-empty string, got {label!r}")
    if version is not None and label is not None:
        raise UserError(f"{where}: give version or version_label, not both")
    if target_model is None and version is None and label is None:
        raise UserError(f"{where}: name the shadow with version, version_label and/or model")
    if target_model == model and version is None and label is None:
        raise UserError(f"{where}: the shadow is the primary itself; name a version or version_label")
    if sample is None:
        sample = 1.0
    if isinstance(sample, bool) or not isinstance(sample, int | float) or not 0 <= sample <= 1:
        raise UserError(f"{where}: sample must be a number from 0 to 1, got {sample!r}")
    return ShadowTarget(target_model, version, label, float(sample))


class ShadowMetrics:
    """The shadow's Prometheus metrics, registered in the gateway's registry (labelled by primary model)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "textclf_gateway_shadow_requests_total",
            "Copies of classify requests sent to their shadow target",
            ["model"],
            registry=registry,
        )
        self.errors = Counter(
            "textclf_gateway_shadow_errors_total",
            "Shadow requests that failed, by stable error code",
            ["model", "code"],
            registry=registry,
        )
        self.drops = Counter(
            "textclf_gateway_shadow_drops_total",
            "Copies dropped because the shadow queue was full",
            ["model"],
            registry=registry,
        )
        self.agreements = Counter(
            "textclf_gateway_shadow_agreements_total",
            "Texts whose shadow label agreed (true) or not (false) with the primary's",
            ["model", "agree"],
            registry=registry,
        )
        self.score_difference = Histogram(
            "textclf_gateway_shadow_score_difference",
            "Per text |shadow top score - primary top score|",
            ["model"],
            buckets=_DIFF_BUCKETS,
            registry=registry,
        )


@dataclass(frozen=True)
class _Copy:
    model: str
    target: ShadowTarget
    texts: tuple[str, ...]
    labels: tuple[str, ...]
    scores: tuple[float, ...]


class ShadowSender:
    """Samples classify requests into a BackgroundQueue whose thread sends and compares the copies."""

    def __init__(
        self,
        classifier: Classifier,
        targets: Mapping[str, ShadowTarget],
        metrics: ShadowMetrics,
        *,
        queue_size: int,
        sample: Callable[[], float] = random.random,
    ) -> None:
        self.classifier = classifier
        self.targets = dict(targets)
        self.metrics = metrics
        self.queue_size = queue_size
        self._sample = sample
        self._queue: BackgroundQueue[_Copy] = BackgroundQueue(
            "textclf-shadow",
            queue_size,
            lambda copies: self._send(copies[0]),
            on_dropped=lambda copy: metrics.drops.labels(copy.model).inc(),
            batch=False,
        )

    def offer(self, model: str, texts: Sequence[str], primary: Classification) -> None:
        """After a successful classify: maybe queue a copy. Never blocks on, and never raises for, the shadow."""
        target = self.targets.get(model)
        if target is None or not self._sample() < target.sample:
            return
        copy = _Copy(
            model,
            target,
            tuple(texts),
            tuple(str(r["label"]) for r in primary.results),
            tuple(float(r["score"]) for r in primary.results),
        )
        self._queue.offer(lambda: copy)

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every queued copy has been sent and compared; False if `timeout` passed first."""
        return self._queue.join(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Stop taking copies; the worker finishes what is queued and exits."""
        self._queue.close(timeout)

    def _send(self, copy: _Copy) -> None:
        target, model, metrics = copy.target, copy.model, self.metrics
        metrics.requests.labels(model).inc()
        try:
            shadow = self.classifier.classify(
                target.model or model, copy.texts, version=target.version, label=target.version_label, top_k=1
            )
        except ApiError as exc:
            metrics.errors.labels(model, exc.code).inc()
            log.debug("shadow of %r failed: %s %s", model, exc.code, exc.message)
            return
        except Exception:
            metrics.errors.labels(model, "internal").inc()
            log.exception("shadow of %r failed unexpectedly", model)
            return
        for label, score, result in zip(copy.labels, copy.scores, shadow.results, strict=True):
            agree = str(result["label"]) == label
            metrics.agreements.labels(model, "true" if agree else "false").inc()
            difference = abs(float(result["score"]) - score)
            if math.isfinite(difference):
                metrics.score_difference.labels(model).observe(difference)


class ShadowSettings(Protocol):
    """The GatewayConfig fields the shadow reads (a protocol: config.py imports this module)."""

    @property
    def shadow_targets(self) -> Mapping[str, ShadowTarget]: ...

    @property
    def shadow_queue_size(self) -> int: ...

    @property
    def metadata_ttl_s(self) -> float: ...


def build_shadow(
    config: ShadowSettings, upstream: Upstream, classifier: Classifier, registry: CollectorRegistry
) -> ShadowSender | None:
    """The app's shadow sender, or None without TEXTCLF_SHADOW. `upstream` is the raw TF Serving client
    and `classifier` the primary's, whose preprocessor the shadow reuses."""
    targets = config.shadow_targets
    if not targets:
        return None
    shadow_classifier = Classifier(
        upstream, classifier.preprocessor, SignatureCache(upstream.metadata, config.metadata_ttl_s)
    )
    return ShadowSender(shadow_classifier, targets, ShadowMetrics(registry), queue_size=config.shadow_queue_size)
