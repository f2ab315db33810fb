"""The gateway's Flask application factory: `create_app(config, upstream=None)`.

Only the Flask wiring lives here: the parts come from assembly.py (shared with `textclf predict`), the
request context from context.py, the endpoints from routes.py. `upstream` replaces the TF Serving client
built from the config (tests pass an in-process fake or a wrapped real client).
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

from flask import Flask, Response, g, jsonify, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException

from serving.gateway import explain, oip, page
from serving.gateway.admission import EXTENSION as ADMISSION
from serving.gateway.admission import Admission
from serving.gateway.assembly import build_cache, build_classifier, build_upstream, coalesce, guard
from serving.gateway.config import GatewayConfig
from serving.gateway.context import EXTENSION, Gateway, gateway
from serving.gateway.errors import ApiError, http_code
from serving.gateway.metrics import OTHER, GatewayMetrics
from serving.gateway.openapi import document
from serving.gateway.payload_log import PayloadLog, PayloadSettings
from serving.gateway.routes import PUBLIC_ENDPOINTS, blueprint
from serving.gateway.routing import Router
from serving.gateway.shadow import build_shadow
from serving.gateway.upstream import Upstream
from serving.gateway.validation import body_too_large

log = logging.getLogger("textclf.gateway")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class _JsonProvider(DefaultJSONProvider):
    ensure_ascii = False  # labels are Chinese: send UTF-8, not \\u escapes
    sort_keys = False


def create_app(config: GatewayConfig, upstream: Upstream | None = None) -> Flask:
    app = Flask("serving.gateway")
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.json = _JsonProvider(app)
    metrics = GatewayMetrics()
    raw = upstream if upstream is not None else build_upstream(config)
    guarded = guard(raw, config, metrics)
    classifier = build_classifier(coalesce(guarded, config, metrics), config, build_cache(config, metrics))
    router = Router(config.route_table)
    shadow = build_shadow(config, raw, classifier, metrics.registry)
    spec = document(
        max_texts=config.max_texts,
        max_text_chars=config.max_text_chars,
        max_top_k=config.max_top_k,
        keyed=bool(config.api_keys),
    )
    payload = _payload_log(config, metrics)
    app.extensions[EXTENSION] = Gateway(
        config, raw, guarded, classifier, metrics, router=router, shadow=shadow, payload=payload, openapi=spec
    )
    log.info("gateway in front of TF Serving at %s", raw.target)  # the address is logged, never served
    app.extensions[ADMISSION] = Admission(config.max_in_flight, on_shed=metrics.shed.inc)
    app.register_blueprint(blueprint)
    app.register_blueprint(oip.blueprint)
    app.register_blueprint(explain.blueprint)
    app.register_blueprint(page.blueprint)
    app.before_request(_start)
    if config.api_keys:
        app.before_request(_require_api_key(tuple(key.encode("utf-8") for key in config.api_keys)))
    app.after_request(_finish)
    app.register_error_handler(ApiError, _error_response)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    return app


def _payload_log(config: GatewayConfig, metrics: GatewayMetrics) -> PayloadLog | None:
    """The payload log TEXTCLF_PAYLOAD_LOG asks for (None when unset); its file is opened on the first write."""
    if not config.payload_log:
        return None
    settings = PayloadSettings(
        Path(config.payload_log),
        sample=config.payload_sample,
        max_bytes=config.payload_max_bytes,
        backups=config.payload_backups,
        queue_size=config.payload_queue_size,
        redactor=config.redactor,
        max_total_bytes=config.payload_max_total_bytes,
    )
    return PayloadLog(settings, on_written=metrics.payload_written.inc, on_dropped=metrics.payload_dropped.inc)


def _start() -> None:
    g.started = time.perf_counter()
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if _REQUEST_ID.match(incoming) else new_request_id()


def new_request_id() -> str:
    """32 random hex digits, as uuid4().hex but without building a UUID object on every request."""
    return os.urandom(16).hex()


def _require_api_key(keys: tuple[bytes, ...]) -> Callable[[], None]:
    """A before-request hook: every endpoint but the public ones needs one of `keys`, in X-API-Key or as
    `Authorization: Bearer KEY` (what Prometheus's scrape config can send, for /metrics)."""

    public = PUBLIC_ENDPOINTS | oip.PUBLIC_ENDPOINTS | page.PUBLIC_ENDPOINTS

    def check() -> None:
        if request.endpoint in public:
            return
        scheme, _, bearer = request.headers.get("Authorization", "").partition(" ")
        given = request.headers.get("X-API-Key") or (bearer.strip() if scheme.lower() == "bearer" else "")
        if not any(hmac.compare_digest(given.encode("utf-8"), key) for key in keys):
            raise ApiError("unauthorized", "missing or wrong X-API-Key (or Authorization: Bearer)")

    return check


def _finish(response: Response) -> Response:
    request_id = g.get("request_id") or new_request_id()
    response.headers["X-Request-ID"] = request_id
    route = request.url_rule.rule if request.url_rule is not None else OTHER
    seconds = time.perf_counter() - g.get("started", time.perf_counter())
    gateway().metrics.served(route, request.method, response.status_code, seconds)
    if log.isEnabledFor(logging.INFO):  # `textclf serve` logs at WARNING unless --log-requests
        log.info(
            "%s %s %d %.1fms request_id=%s",
            request.method,
            request.path,
            response.status_code,
            seconds * 1000,
            request_id,
        )
    return response


def _error_response(error: ApiError) -> tuple[Response, int]:
    metrics = gateway().metrics
    metrics.child(metrics.errors, error.code).inc()
    response = jsonify({"error": {"code": error.code, "message": error.message}})
    response.headers.update(error.headers)
    return response, error.status


def _http_error(error: HTTPException) -> tuple[Response, int]:
    status = error.code or 500
    message = error.description or error.name
    if status == 413:
        return _error_response(body_too_large(gateway().config.max_body_bytes))
    # a 405 names the methods the route takes (RFC 9110): werkzeug's own headers carry Allow
    allow = {k: v for k, v in error.get_headers() if k == "Allow"}
    return _error_response(ApiError(http_code(status), message, status, headers=allow))


def _unexpected_error(error: Exception) -> tuple[Response, int]:
    log.exception("unexpected error, request_id=%s", g.get("request_id"))
    return _error_response(ApiError("internal", f"internal error (request_id {g.get('request_id')})"))
