"""Turn a request body into a checked ClassifyRequest, or an ApiError with a stable code (never a 500)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from serving.gateway.config import GatewayConfig
from serving.gateway.deadline import MAX_TIMEOUT_MS
from serving.gateway.errors import ApiError

# TF Serving model names and version labels: keep them path-safe for the REST URL
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_FIELDS = {"model", "texts", "version", "version_label", "top_k", "timeout_ms"}


@dataclass(frozen=True)
class ClassifyRequest:
    model: str
    texts: list[str]
    version: int | None
    version_label: str | None
    top_k: int
    timeout_ms: int | None = None  # the client's deadline (deadline.py), besides X-Request-Timeout-Ms


def parse_json(body: bytes) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError("bad_json", f"the body is not UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ApiError("bad_json", f"the body is not valid JSON: {exc}") from None


def parse_classify(body: bytes, config: GatewayConfig) -> ClassifyRequest:
    data = parse_json(body)
    if not isinstance(data, dict):
        raise ApiError("invalid_request", "the body must be a JSON object")
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise ApiError("invalid_request", f"unknown field(s) {unknown}; allowed: {sorted(_FIELDS)}")
    model = data.get("model")
    if not isinstance(model, str) or not _NAME.match(model):
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
    if label is not None and (not isinstance(label, str) or not _NAME.match(label)):
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
