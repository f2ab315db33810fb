"""The gateway's endpoints (see openapi.py for the document that describes them)."""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

from flask import Blueprint, Response, g, request

from serving.gateway import deadline
from serving.gateway.admission import admitted
from serving.gateway.context import gateway
from serving.gateway.errors import UpstreamError
from serving.gateway.routing import ROUTE_KEY_HEADER
from serving.gateway.validation import parse_classify, read_body

log = logging.getLogger("textclf.gateway")

blueprint = Blueprint("routes", __name__)
# probes and the API description answer without an API key
PUBLIC_ENDPOINTS = frozenset(f"{blueprint.name}.{name}" for name in ("healthz", "readyz", "openapi"))

_READINESS_PROBE = "__textclf_readiness_probe__"  # any NOT_FOUND answer proves TF Serving is up


@blueprint.post("/v1/classify")
@admitted
def classify() -> dict[str, Any]:
    gw = gateway()
    req = parse_classify(read_body(request.environ, request.content_type, gw.config.max_body_bytes), gw.config)
    gw.check_served(req.model)
    route = gw.router.choose(req.model, req.version, req.version_label, request.headers.get(ROUTE_KEY_HEADER))
    with deadline.applied(deadline.from_request(request.headers.get(deadline.HEADER), req.timeout_ms)):
        result = gw.classifier.classify(req.model, req.texts, version=route.version, label=route.label, top_k=req.top_k)
    gw.metrics.child(gw.metrics.routed, result.model, str(result.version), route.name).inc()
    # texts empty after cleaning (label null) were never sent to the model: no prediction to count, shadow or log
    classified = [i for i, r in enumerate(result.results) if r["label"] is not None]
    predicted = [result.results[i] for i in classified]
    cleaned = [result.cleaned[i] for i in classified]
    gw.metrics.predicted(
        result.model,
        result.version,
        [r["label"] for r in predicted],
        [r["score"] for r in predicted],
        [len(text) for text in cleaned],
        gw.config.low_confidence,
    )
    if gw.payload is not None:  # sampled, queued, redacted and written in the background
        latency_ms = (time.perf_counter() - g.started) * 1000
        gw.payload.offer(g.request_id, result.model, result.version, cleaned, predicted, latency_ms)
    if gw.shadow is not None and classified:  # a sampled copy to the shadow target, in the background
        gw.shadow.offer(
            req.model,
            [req.texts[i] for i in classified],
            dataclasses.replace(result, results=predicted, cleaned=cleaned),
        )
    return {"model": result.model, "version": result.version, "request_id": g.request_id, "results": result.results}


@blueprint.get("/v1/models")
def models() -> dict[str, Any]:
    """Names, versions, states and TF Serving's status codes; its messages (which name files on the model
    server) go to the log, not to clients."""
    gw = gateway()
    listed: list[dict[str, Any]] = []
    for name in gw.config.models:
        try:
            statuses = gw.guarded.status(name)
        except UpstreamError as exc:
            if exc.is_outage:
                raise exc.to_api_error() from None
            error = exc.to_api_error()
            listed.append({"name": name, "versions": [], "error": {"code": error.code, "message": error.message}})
            continue
        for status in statuses:
            if status.error_message:
                log.warning("model %s version %d: %s", name, status.version, status.error_message)
        versions = [{"version": v.version, "state": v.state, "error_code": v.error_code} for v in statuses]
        listed.append({"name": name, "versions": versions})
    return {"models": listed}


@blueprint.get("/healthz")
def healthz() -> dict[str, Any]:
    return {"status": "ok"}


@blueprint.get("/readyz")
def readyz() -> tuple[dict[str, Any], int]:
    """Asks TF Serving directly (not through the breaker): readiness must see recovery by itself."""
    gw = gateway()
    states: dict[str, str] = {}
    ready = True
    for name in gw.config.models or (_READINESS_PROBE,):
        try:
            versions = gw.upstream.status(name)
            available = any(v.state == "AVAILABLE" for v in versions)
            states[name] = "AVAILABLE" if available else "NOT_AVAILABLE"
            ready = ready and available
        except UpstreamError as exc:
            reachable_probe = name == _READINESS_PROBE and exc.kind == "not_found"
            states[name] = "REACHABLE" if reachable_probe else exc.kind.upper()
            ready = ready and reachable_probe
    if not gw.config.models:
        states.pop(_READINESS_PROBE)
    # no upstream address: probes are public, and where TF Serving lives is not an anonymous caller's business
    body = {"ready": ready, "circuit_breaker": gw.breaker.state, "models": states}
    return body, 200 if ready else 503


@blueprint.get("/metrics")
def metrics() -> Response:
    return Response(gateway().metrics.render(), mimetype="text/plain; version=0.0.4")


@blueprint.get("/openapi.json")
def openapi() -> dict[str, Any]:
    return gateway().openapi
