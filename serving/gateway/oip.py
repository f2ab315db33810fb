"""Open Inference Protocol (KServe v2) health and model metadata, for orchestrators that probe it.

`GET /v2/health/live`, `/v2/health/ready`, `/v2/models/{name}/ready` and `/v2/models/{name}`, beside
the gateway's own /healthz and /readyz. Readiness asks TF Serving directly (past the circuit breaker, as
/readyz does): 200 `{"ready": true}` or 503 `{"ready": false}`; a model this gateway does not front, or
that TF Serving does not know, is a 404 `model_not_found`. The metadata names the available versions,
the tensors of Contract 2 (serving/contract.py), and, as extensions, the input kind (`tokens` or
`text`), the class labels (when the version exports `class_names`) and the routed version labels.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from serving.contract import CLASS_NAMES, LABEL, PROBABILITIES, TEXT_INPUT, TOKENS_INPUT, TOP_SCORE
from serving.gateway.classifier import input_kind
from serving.gateway.context import Gateway, gateway
from serving.gateway.errors import ApiError, UpstreamError
from serving.gateway.routing import NAME_PATTERN
from serving.gateway.upstream import Signature

blueprint = Blueprint("oip", __name__)
# probes answer without an API key, as /healthz and /readyz do; the metadata needs one, as /v1/models does
PUBLIC_ENDPOINTS = frozenset(f"{blueprint.name}.{name}" for name in ("live", "ready", "model_ready"))

PLATFORM = "tensorflow_savedmodel"  # what TF Serving serves, in Triton's spelling
# Contract 2's tensors: OIP datatype and shape (-1: any size)
_TENSORS: dict[str, tuple[str, list[int]]] = {
    TOKENS_INPUT: ("BYTES", [-1]),
    TEXT_INPUT: ("BYTES", [-1]),
    PROBABILITIES: ("FP32", [-1, -1]),
    LABEL: ("BYTES", [-1]),
    TOP_SCORE: ("FP32", [-1]),
    CLASS_NAMES: ("BYTES", [-1, -1]),
}
_PROBE = "__textclf_readiness_probe__"  # any NOT_FOUND answer for it proves TF Serving is up
_LABELS_PROBE_TEXT = "标签"  # one text classified to read the `class_names` row


@blueprint.get("/v2/health/live")
def live() -> dict[str, Any]:
    return {"live": True}


@blueprint.get("/v2/health/ready")
def ready() -> tuple[dict[str, Any], int]:
    """Ready when every model the gateway fronts has an AVAILABLE version (no models: TF Serving answers)."""
    gw = gateway()
    if gw.config.models:
        is_ready = all(_available(gw, name) is True for name in gw.config.models)
    else:
        try:
            gw.upstream.status(_PROBE)
            is_ready = True
        except UpstreamError as exc:
            is_ready = exc.kind == "not_found"
    return {"ready": is_ready}, 200 if is_ready else 503


@blueprint.get("/v2/models/<name>/ready")
def model_ready(name: str) -> tuple[dict[str, Any], int]:
    gw = gateway()
    _check_fronted(gw, name)
    available = _available(gw, name)
    if available is None:
        raise ApiError("model_not_found", f"TF Serving has no model {name!r}")
    return {"name": name, "ready": available}, 200 if available else 503


@blueprint.get("/v2/models/<name>")
def model_metadata(name: str) -> dict[str, Any]:
    gw = gateway()
    _check_fronted(gw, name)
    try:
        states = gw.guarded.status(name)
        signature = gw.classifier.signatures.get(name)
    except UpstreamError as exc:
        raise exc.to_api_error() from None
    try:
        kind: str | None = input_kind(signature)
    except ApiError:  # not a textclf signature: still describe it, without what the gateway cannot use
        kind = None
    return {
        "name": name,
        "versions": [str(v.version) for v in sorted(states, key=lambda v: v.version) if v.state == "AVAILABLE"],
        "platform": PLATFORM,
        "inputs": _tensors(signature.inputs),
        "outputs": _tensors(signature.outputs),
        # extensions: what a textclf client wants to know
        "version": signature.version,  # the latest, which a request without version or route gets
        "input_kind": kind,
        "labels": _class_labels(gw, signature, kind),
        "version_labels": _version_labels(gw, name),
        "routes": gw.router.weights(name),
    }


def _check_fronted(gw: Gateway, name: str) -> None:
    if not NAME_PATTERN.match(name) or (gw.config.models and name not in gw.config.models):
        served = f"; models: {list(gw.config.models)}" if gw.config.models else ""
        raise ApiError("model_not_found", f"model {name!r} is not served here{served}")


def _available(gw: Gateway, name: str) -> bool | None:
    """True if a version of `name` is AVAILABLE, False if not (or TF Serving is down), None if unknown."""
    try:
        return any(v.state == "AVAILABLE" for v in gw.upstream.status(name))
    except UpstreamError as exc:
        return None if exc.kind == "not_found" else False


def _tensors(names: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{"name": n, "datatype": _TENSORS[n][0], "shape": _TENSORS[n][1]} for n in names if n in _TENSORS]


def _class_labels(gw: Gateway, signature: Signature, kind: str | None) -> list[str] | None:
    """The class names, read off one classified text, if the version exports them; else None."""
    if kind is None or CLASS_NAMES not in signature.outputs:
        return None
    prepare = gw.classifier.preparer(kind)
    try:
        answer = gw.guarded.predict(
            signature.model, signature.version, kind, [prepare(_LABELS_PROBE_TEXT)], [CLASS_NAMES]
        )
    except UpstreamError:
        return None
    rows = answer.get(CLASS_NAMES)
    if not isinstance(rows, list) or len(rows) != 1 or not isinstance(rows[0], list):
        return None
    return [str(label) for label in rows[0]]


def _version_labels(gw: Gateway, name: str) -> dict[str, int]:
    """The version each label the routes name resolves to now (labels TF Serving does not know are left out)."""
    resolved: dict[str, int] = {}
    for label in gw.router.labels(name):
        try:
            resolved[label] = gw.classifier.signatures.get(name, None, label).version
        except UpstreamError:
            continue
    return resolved
