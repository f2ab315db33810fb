"""Turn a request body into a checked ClassifyRequest, or an ApiError with a stable code (never a 500)."""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from werkzeug.wsgi import get_input_stream

from serving.gateway.config import GatewayConfig
from serving.gateway.deadline import MAX_TIMEOUT_MS
from serving.gateway.errors import ApiError
from serving.gateway.routing import NAME_PATTERN

# model names and version labels (NAME_PATTERN) stay path-safe for the REST URL; fullmatch: no "\n" at the end
_FIELDS = {"model", "texts", "version", "version_label", "top_k", "timeout_ms"}


@dataclass(frozen=True)
class ClassifyRequest:
    model: str
    texts: list[str]
    version: int | None
    version_label: str | None
    top_k: int
    timeout_ms: int | None = None  # the client's deadline (deadline.py), besides X-Request-Timeout-Ms


def read_body(environ: dict[str, Any], content_type: str | None, limit: int) -> bytes:
    """The request body, sized or chunked alike: past `limit` bytes a 413, never a truncated body.

    Werkzeug stops reading a chunked body at MAX_CONTENT_LENGTH without saying so; reading one byte more
    than the limit tells a body that fits from one that does not. JSON is required (415 otherwise), so a
    browser's form post (which needs no CORS preflight) is never read as a classify request."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise ApiError("unsupported_media_type", f"Content-Type must be application/json, got {media_type!r}")
    body = get_input_stream(environ, max_content_length=limit + 1).read()
    if len(body) > limit:
        raise body_too_large(limit)
    return body


def body_too_large(limit: int) -> ApiError:
    return ApiError("body_too_large", f"the body is larger than {limit} bytes")


def parse_json(body: bytes) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError("bad_json", f"the body is not UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ApiError("bad_json", f"the body is not valid JSON: {exc}") from None


def json_object(body: bytes, allowed: Collection[str]) -> dict[str, Any]:
    """The body as a JSON object holding only `allowed` fields, or an ApiError."""
    data = parse_json(body)
    if not isinstance(data, dict):
        raise ApiError("invalid_request", "the body must be a JSON object")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ApiError("invalid_request", f"unknown field(s) {unknown}; allowed: {sorted(allowed)}")
    return data


def parse_classify(body: bytes, config: GatewayConfig) -> ClassifyRequest:
    return classify_request(json_object(body, _FIELDS), config)


def classify_request(data: dict[str, Any], config: GatewayConfig) -> ClassifyRequest:
    """The fields of /v1/classify, already parsed (`json_object`), checked."""
    nulls = sorted(key for key, value in data.items() if value is None)
    if nulls:
        raise ApiError("invalid_request", f"{nulls} must not be null; leave a field out for its default")
    model = data.get("model")
    if not isinstance(model, str) or not NAME_PATTERN.fullmatch(model):
        raise ApiError("invalid_request", "`model` must be a model name (letters, digits, _ . -)")
    texts = data.get("texts")
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise ApiError("invalid_request", "`texts` must be a non-empty list of strings")
    if len(texts) > config.max_texts:
        raise ApiError("too_many_texts", f"{len(texts)} texts; at most {config.max_texts} per request")
    for index, text in enumerate(texts):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # JSON may carry a lone surrogate (\ud800) that no UTF-8 text holds
            raise ApiError("invalid_request", f"texts[{index}] is not valid Unicode (lone surrogate)") from None
        if len(text) > config.max_text_chars:
            raise ApiError(
                "text_too_long", f"texts[{index}] has {len(text)} characters; at most {config.max_text_chars}"
            )
    version = _optional_int(data, "version", minimum=0, maximum=2**63 - 1)
    label = data.get("version_label")
    if label is not None and (not isinstance(label, str) or not NAME_PATTERN.fullmatch(label)):
        raise ApiError("invalid_request", '`version_label` must be a label name such as "stable" or "canary"')
    if version is not None and label is not None:
        raise ApiError("invalid_request", "give `version` or `version_label`, not both")
    top_k = _optional_int(data, "top_k", minimum=1, maximum=config.max_top_k)
    timeout_ms = _optional_int(data, "timeout_ms", minimum=1, maximum=MAX_TIMEOUT_MS)
    top_k = top_k if top_k is not None else config.default_top_k
    return ClassifyRequest(model, texts, version, label, top_k, timeout_ms)


def _optional_int(data: dict[str, Any], key: str, *, minimum: int, maximum: int | None = None) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum or (maximum and value > maximum):
        bounds = f">= {minimum}" + (f" and <= {maximum}" if maximum else "")
        raise ApiError("invalid_request", f"`{key}` must be an integer {bounds}")
    return value
