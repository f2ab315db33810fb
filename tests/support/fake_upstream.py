"""An in-process fake of TF Serving for the gateway's route unit tests (the flaskr way:
`create_app(config, upstream=FakeUpstream())`).

It stands in for TF Serving only to test the gateway's own logic — validation, auth, request ids,
top-k, version and label selection, error mapping, metrics, the OpenAPI document — in milliseconds.
It is not evidence about TF Serving: the tests against the real local model server over REST and gRPC
(test_gateway_classify, _breaker, _coalescing, _fuzz, _version_swap, _cli) remain and check that.

It answers like tests/support/tiny_models.py's SavedModels (same labels, words and characters, a softmax
over per-class hits), resolves versions and labels like TF Serving, and records every call.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import Flask

from serving.contract import CLASS_NAMES, LABEL, PROBABILITIES, TEXT_INPUT, TOKENS_INPUT, TOP_SCORE
from serving.gateway.app import create_app
from serving.gateway.config import GatewayConfig
from serving.gateway.errors import UpstreamError
from serving.gateway.upstream import Signature, Upstream, VersionStatus
from tests.support.tiny_models import CHARS, LABELS, WORDS


@dataclass
class FakeVersion:
    """One servable version: its input name, the outputs it exports, and a class it leans to."""

    input_name: str = TOKENS_INPUT
    outputs: tuple[str, ...] = (PROBABILITIES, LABEL, TOP_SCORE, CLASS_NAMES)
    bias: int = -1  # a class id favoured by 0.5 hits, to tell two versions apart
    short_answer: bool = False  # answer one row fewer than asked (a broken model)
    state: str = "AVAILABLE"

    def answer(self, values: Sequence[str], outputs: Sequence[str]) -> dict[str, list[Any]]:
        vocabulary = WORDS if self.input_name == TOKENS_INPUT else CHARS
        rows: dict[str, list[Any]] = {PROBABILITIES: [], LABEL: [], TOP_SCORE: [], CLASS_NAMES: []}
        for value in values[:-1] if self.short_answer else values:
            pieces = value.split() if self.input_name == TOKENS_INPUT else list(value)
            hits = [0.0] * len(LABELS)
            for piece in pieces:
                if piece in vocabulary:
                    hits[vocabulary[piece]] += 1
            if self.bias >= 0:
                hits[self.bias] += 0.5
            exps = [math.exp(2.0 * h) for h in hits]
            probabilities = [e / sum(exps) for e in exps]
            best = max(range(len(LABELS)), key=probabilities.__getitem__)
            rows[PROBABILITIES].append(probabilities)
            rows[LABEL].append(LABELS[best])
            rows[TOP_SCORE].append(probabilities[best])
            rows[CLASS_NAMES].append(list(LABELS))
        return {name: rows[name] for name in outputs if name in self.outputs}


def default_models() -> dict[str, dict[int, FakeVersion]]:
    """The model server of tests/serving/gateway/conftest.py: news (tokens; 2 leans to 财经), chars (text)."""
    return {
        "news": {1: FakeVersion(), 2: FakeVersion(bias=2)},
        "chars": {1: FakeVersion(TEXT_INPUT, outputs=(PROBABILITIES, LABEL, TOP_SCORE))},
    }


@dataclass
class FakeUpstream:
    """Implements serving.gateway.upstream.Upstream. `fail(op, kind)` makes the next calls of `op`
    raise UpstreamError(kind) (or `error` itself); `calls` records (op, model, version, ...) in order."""

    models: dict[str, dict[int, FakeVersion]] = field(default_factory=default_models)
    labels: dict[str, dict[str, int]] = field(default_factory=lambda: {"news": {"stable": 1, "canary": 2}})
    target: str = "fake-tfserving"
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    closed: bool = False
    _failures: dict[str, list[Exception]] = field(default_factory=dict, init=False, repr=False)

    def fail(
        self, operation: str, kind: str = "unavailable", *, times: int = 1, error: Exception | None = None
    ) -> None:
        failure = error or UpstreamError(kind, f"fake {kind}")
        self._failures.setdefault(operation, []).extend([failure] * times)

    def metadata(self, model: str, version: int | None = None, label: str | None = None) -> Signature:
        self._enter("metadata", model, version, label)
        resolved = self._resolve(model, version, label)
        served = self.models[model][resolved]
        return Signature(model, resolved, (served.input_name,), served.outputs)

    def status(self, model: str) -> list[VersionStatus]:
        self._enter("status", model)
        if model not in self.models:
            raise UpstreamError("not_found", f"Could not find any versions of model {model}")
        return [VersionStatus(number, v.state, "OK", "") for number, v in sorted(self.models[model].items())]

    def predict(
        self, model: str, version: int, input_name: str, values: Sequence[str], outputs: Sequence[str]
    ) -> dict[str, list[Any]]:
        self._enter("predict", model, version, input_name, tuple(values), tuple(outputs))
        served = self._resolve(model, version, None)
        if input_name != self.models[model][served].input_name:
            raise UpstreamError("invalid_argument", f"input {input_name!r} is not in the signature")
        return self.models[model][served].answer(values, outputs)

    def close(self) -> None:
        self.closed = True

    def _enter(self, operation: str, *args: Any) -> None:
        self.calls.append((operation, *args))
        pending = self._failures.get(operation)
        if pending:
            raise pending.pop(0)

    def _resolve(self, model: str, version: int | None, label: str | None) -> int:
        """Like TF Serving: the latest available version, a number, or a label (unknown: INVALID_ARGUMENT)."""
        available = {n for n, v in self.models.get(model, {}).items() if v.state == "AVAILABLE"}
        if label is not None:
            if label not in self.labels.get(model, {}):
                raise UpstreamError("invalid_argument", f"Unrecognized servable version label: {label}")
            version = self.labels[model][label]
        if version is None and available:
            return max(available)
        if version in available:
            return version
        spec = f"Specific({model}, {version})" if version is not None else f"Latest({model})"
        raise UpstreamError("not_found", f"Servable not found for request: {spec}")


def fake_app(upstream: Upstream, **overrides: Any) -> Flask:
    """A gateway app in front of `upstream` (a FakeUpstream, or a wrapper of one) for in-process tests;
    the REST address is never dialled."""
    settings: dict[str, Any] = {"tfserving_rest": "http://tfserving.invalid:8501", "models": ("news", "chars")}
    return create_app(GatewayConfig(**{**settings, **overrides}), upstream=upstream)
