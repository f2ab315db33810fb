"""The gateway's endpoints (see openapi.py for the document that describes them)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, request

from serving.gateway import deadline
from serving.gateway.admission import admitted
from serving.gateway.context import gateway
from serving.gateway.errors import ApiError, UpstreamError
from serving.gateway.openapi import OPENAPI
from serving.gateway.routing import ROUTE_KEY_HEADER
from serving.gateway.validation import parse_classify

blueprint = Blueprint("routes", __name__)
# probes and the API description answer without an API key
PUBLIC_ENDPOINTS = frozenset(f"{blueprint.name}.{name}" for name in ("healthz", "readyz", "openapi"))

_READINESS_PROBE = "__textclf_readiness_probe__"  # any NOT_FOUND answer proves TF Serving is up


@blueprint.post("/v1/classify")
@admitted
def classify() -> dict[str, Any]:
    gw = gateway()
    req = parse_classify(request.get_data(cache=False), gw.config)
    if gw.config.models and req.model not in gw.config.models:
        raise ApiError("model_not_found", f"model {req.model!r} is not served here; models: {list(gw.config.models)}")
    route = gw.router.choose(req.model, req.version, req.version_label, request.headers.get(ROUTE_KEY_HEADER))
    with deadline.applied(deadline.from_request(request.headers.get(deadline.HEADER), req.timeout_ms)):
        result = gw.classifier.classify(req.model, req.texts, version=route.version, label=route.label, top_k=req.top_k)
    gw.metrics.routed.labels(result.model, str(result.version), route.name).inc()
    gw.metrics.predicted(
        result.model, result.version, [r["label"] for r in result.results], [r["score"] for r in result.results]
    )
    if gw.shadow is not None:  # a sampled copy to the shadow target, in the background (shadow.py)
        gw.shadow.offer(req.model, req.texts, result)
    return {"model": result.model, "version": result.version, "request_id": g.request_id, "results": result.results}


@blueprint.get("/v1/models")
def models() -> dict[str, Any]:
    gw = gateway()
    listed: list[dict[str, Any]] = []
    for name in gw.config.models:
        try:
            versions = [vars(v) for v in gw.guarded.status(name)]
            listed.append({"name": name, "versions": versions})
        except UpstreamError as exc:
            if exc.is_outage:
                raise exc.to_api_error() from None
            error = exc.to_api_error()
            listed.append({"name": name, "versions": [], "error": {"code": error.code, "message": error.message}})
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
    body = {"ready": ready, "upstream": gw.upstream.target, "circuit_breaker": gw.breaker.state, "models": states}
    return body, 200 if ready else 503


@blueprint.get("/metrics")
def metrics() -> Response:
    return Response(gateway().metrics.render(), mimetype="text/plain; version=0.0.4")


@blueprint.get("/openapi.json")
def openapi() -> dict[str, Any]:
    return OPENAPI
