"""The gateway's Flask application factory: `create_app(config, upstream=None)`.

Everything a request needs (config, upstream client, breaker, preprocessor, metrics) hangs off the
app (`app.extensions["textclf_gateway"]`), never off module globals, so tests build one app per test
and point it at a real local model server.
"""

from __future__ import annotations

import hmac
import logging
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException

from data_prep.json_file import read_json
from data_prep.preprocess import Preprocessor
from data_prep.segment import Segmenter
from serving.gateway.classifier import Classifier
from serving.gateway.coalescing import CoalescingUpstream
from serving.gateway.config import GatewayConfig
from serving.gateway.errors import ApiError
from serving.gateway.metrics import GatewayMetrics
from serving.gateway.resilience import CircuitBreaker, GuardedUpstream
from serving.gateway.signatures import SignatureCache
from serving.gateway.upstream import Upstream

log = logging.getLogger("textclf.gateway")

EXTENSION = "textclf_gateway"
PUBLIC_ENDPOINTS = {"routes.healthz", "routes.readyz", "routes.openapi"}  # no API key needed
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_HTTP_CODES = {400: "bad_json", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}


@dataclass
class Gateway:
    config: GatewayConfig
    upstream: Upstream  # the raw client: readiness asks it directly, past the breaker
    guarded: GuardedUpstream
    breaker: CircuitBreaker
    classifier: Classifier
    metrics: GatewayMetrics


def gateway() -> Gateway:
    return current_app.extensions[EXTENSION]


def build_upstream(config: GatewayConfig) -> Upstream:
    """The REST or gRPC client the config names (imported here so each pulls in only its own deps)."""
    if config.tfserving_rest:
        from serving.gateway.rest_client import RestUpstream

        return RestUpstream(config.tfserving_rest, timeout_s=config.upstream_timeout_s, pool_size=config.pool_size)
    from serving.gateway.grpc_client import GrpcUpstream

    return GrpcUpstream(config.tfserving_grpc, timeout_s=config.upstream_timeout_s)


def build_preprocessor(config: GatewayConfig) -> Preprocessor:
    """The recorded preprocessing (checked against this install), or the default one; jieba loads now."""
    user_dict = Path(config.user_dict) if config.user_dict else None
    stopwords = Path(config.stopwords) if config.stopwords else None
    if config.preprocessing:
        recorded = read_json(Path(config.preprocessing))
        cfg = recorded.get("preprocessing", recorded) if isinstance(recorded, dict) else recorded
        preprocessor = Preprocessor.from_config(cfg, user_dict=user_dict, stopwords=stopwords)
    else:
        preprocessor = Preprocessor(Segmenter(user_dict=user_dict, stopwords=stopwords))
    preprocessor.tokens("预热：加载结巴词典")  # warm every lazy table now, not on the first request
    return preprocessor


def _coalescing(guarded: GuardedUpstream, config: GatewayConfig, metrics: GatewayMetrics) -> Upstream:
    """Predict calls pass the coalescer first, so the breaker and retries act once per merged call."""
    if not config.coalesce_max_texts:
        return guarded
    # a queued call may wait for the call ahead and then its own, each with every retry
    wait_s = 2 * (config.retries + 1) * config.upstream_timeout_s
    return CoalescingUpstream(
        guarded,
        max_texts=config.coalesce_max_texts,
        max_in_flight=config.coalesce_in_flight,
        wait_s=wait_s,
        observe=metrics.coalesced,
    )


def create_app(config: GatewayConfig, upstream: Upstream | None = None) -> Flask:
    from serving.gateway.routes import blueprint

    app = Flask("serving.gateway")
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.json.ensure_ascii = False  # labels are Chinese: send UTF-8, not \\u escapes
    app.json.sort_keys = False
    metrics = GatewayMetrics()
    raw = upstream if upstream is not None else build_upstream(config)
    breaker = CircuitBreaker(config.breaker_failures, config.breaker_reset_s, on_change=metrics.breaker_changed)
    guarded = GuardedUpstream(
        raw,
        breaker,
        retries=config.retries,
        backoff_s=config.retry_backoff_s,
        observe=lambda op, seconds: metrics.upstream_latency.labels(op).observe(seconds),
    )
    classifier = Classifier(
        _coalescing(guarded, config, metrics),
        build_preprocessor(config),
        SignatureCache(guarded.metadata, config.metadata_ttl_s),
    )
    app.extensions[EXTENSION] = Gateway(config, raw, guarded, breaker, classifier, metrics)
    app.register_blueprint(blueprint)
    app.before_request(_start)
    app.after_request(_finish)
    app.register_error_handler(ApiError, error_response)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    return app


def _start() -> None:
    g.started = time.perf_counter()
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
    keys = gateway().config.api_keys
    if keys and request.endpoint not in PUBLIC_ENDPOINTS:
        given = request.headers.get("X-API-Key", "").encode("utf-8")
        if not any(hmac.compare_digest(given, key.encode("utf-8")) for key in keys):
            raise ApiError("unauthorized", "missing or wrong X-API-Key")


def _finish(response: Response) -> Response:
    request_id = g.get("request_id") or uuid.uuid4().hex
    response.headers["X-Request-ID"] = request_id
    route = request.url_rule.rule if request.url_rule is not None else "unmatched"
    seconds = time.perf_counter() - g.get("started", time.perf_counter())
    metrics = gateway().metrics
    metrics.requests.labels(route, request.method, str(response.status_code)).inc()
    metrics.latency.labels(route).observe(seconds)
    log.info(
        "%s %s %d %.1fms request_id=%s", request.method, request.path, response.status_code, seconds * 1000, request_id
    )
    return response


def error_response(error: ApiError) -> tuple[Response, int]:
    gateway().metrics.errors.labels(error.code).inc()
    body = {"error": {"code": error.code, "message": error.message}}
    return current_app.json.response(body), error.status


def _http_error(error: HTTPException) -> tuple[Response, int]:
    code = _HTTP_CODES.get(error.code or 500, "invalid_request" if (error.code or 500) < 500 else "internal")
    message = error.description or error.name
    if error.code == 413:
        message = f"the body is larger than {gateway().config.max_body_bytes} bytes"
    api_error = ApiError(code, message)
    api_error.status = error.code or 500
    return error_response(api_error)


def _unexpected_error(error: Exception) -> tuple[Response, int]:
    log.exception("unexpected error, request_id=%s", g.get("request_id"))
    return error_response(ApiError("internal", f"internal error (request_id {g.get('request_id')})"))
