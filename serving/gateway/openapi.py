"""The gateway's OpenAPI 3 document, served at /openapi.json (tests and schemathesis hold the code to it).

Built per app (`document`), so the limits it states are the configured ones and security is declared
only when API keys are configured. `OPENAPI` is the document of the default settings without keys.
"""

from __future__ import annotations

import copy
from typing import Any

from serving.gateway import routing
from serving.gateway.deadline import MAX_TIMEOUT_MS
from serving.gateway.errors import CODES

MAX_VERSION = 2**63 - 1  # TF Serving's version numbers are int64
NAME_PATTERN = routing.NAME_PATTERN.pattern  # model and version label names (validation.py)
EMPTY_TEXT = "empty_text"  # the per-text `error.code` of a text with nothing left to classify
# paths that answer without an API key (routes.PUBLIC_ENDPOINTS, oip.PUBLIC_ENDPOINTS, page.PUBLIC_ENDPOINTS)
PUBLIC_PATHS = (
    "/",
    "/healthz",
    "/readyz",
    "/openapi.json",
    "/v2/health/live",
    "/v2/health/ready",
    "/v2/models/{name}/ready",
)


def _json(schema_ref: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}},
    }


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(status): _json("Error", "error (see `error.code`)") for status in statuses}


_SCORED = {
    "type": "object",
    "required": ["label", "score"],
    "properties": {
        "label": {"type": "string", "nullable": True, "description": "null only if the model exports no `class_names`"},
        "score": {"type": "number"},
    },
}

# 503 is overloaded (shed by TEXTCLF_MAX_IN_FLIGHT, with Retry-After), upstream_unavailable or circuit_open
_SHED = {
    **_json("Error", "error (see `error.code`); `overloaded` comes with Retry-After"),
    "headers": {"Retry-After": {"description": "seconds to wait (with `overloaded`)", "schema": {"type": "integer"}}},
}

# the request headers /v1/classify and /v1/explain take
_HEADERS = [
    {
        "name": "X-Route-Key",
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": "with TEXTCLF_ROUTES, a request naming no version or label goes to the "
        "version this key's stable hash picks (the same in every worker and replica); "
        "without it, a random one by weight",
    },
    {
        "name": "X-Request-Timeout-Ms",
        "in": "header",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_TIMEOUT_MS},
        "description": "the client's deadline: the request (TF Serving calls and retries included) "
        "takes at most this long, else 504 upstream_timeout; with `timeout_ms` the tighter one "
        "holds; a malformed value is 400 invalid_timeout",
    },
]

_SCHEMAS: dict[str, Any] = {
    "Models": {
        "type": "object",
        "required": ["models"],
        "properties": {
            "models": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "versions"],
                    "properties": {
                        "name": {"type": "string"},
                        "error": {
                            "type": "object",
                            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                        },
                        "versions": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["version", "state"],
                                "properties": {
                                    "version": {"type": "integer"},
                                    "state": {"type": "string"},
                                    "error_code": {"type": "string", "description": "TF Serving's status code"},
                                },
                            },
                        },
                    },
                },
            }
        },
    },
    "Health": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}},
    # Open Inference Protocol (oip.py)
    "OipLive": {"type": "object", "required": ["live"], "properties": {"live": {"type": "boolean"}}},
    "OipReady": {"type": "object", "required": ["ready"], "properties": {"ready": {"type": "boolean"}}},
    "OipModelReady": {
        "type": "object",
        "required": ["name", "ready"],
        "properties": {"name": {"type": "string"}, "ready": {"type": "boolean"}},
    },
    "OipModelMetadata": {
        "type": "object",
        "required": ["name", "versions", "platform", "inputs", "outputs"],
        "properties": {
            "name": {"type": "string"},
            "versions": {"type": "array", "items": {"type": "string"}, "description": "AVAILABLE versions"},
            "platform": {"type": "string"},
            "inputs": {"type": "array", "items": {"$ref": "#/components/schemas/OipTensor"}},
            "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/OipTensor"}},
            "version": {"type": "integer", "description": "the latest version (what an unrouted request gets)"},
            "input_kind": {
                "type": "string",
                "nullable": True,
                "enum": ["tokens", "text"],
                "description": "tokens: jieba words (LSTM); text: cleaned text (BERT); null: not a textclf model",
            },
            "labels": {
                "type": "array",
                "nullable": True,
                "items": {"type": "string"},
                "description": "class labels, in column order; null if the version exports no class_names",
            },
            "version_labels": {
                "type": "object",
                "additionalProperties": {"type": "integer"},
                "description": "the version each label named in the routes resolves to now",
            },
            "routes": {
                "type": "object",
                "additionalProperties": {"type": "number"},
                "description": "share of unrouted traffic (0..1) per version label or number (TEXTCLF_ROUTES)",
            },
        },
    },
    "OipTensor": {
        "type": "object",
        "required": ["name", "datatype", "shape"],
        "properties": {
            "name": {"type": "string"},
            "datatype": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
        },
    },
    "Readiness": {
        "type": "object",
        "required": ["ready", "models"],
        "properties": {
            "ready": {"type": "boolean"},
            "circuit_breaker": {"type": "string"},
            "models": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "string", "enum": sorted(CODES)}, "message": {"type": "string"}},
            }
        },
    },
}


# the fields /v1/classify and /v1/explain share (validation.py checks both)
_CHOICE = {
    "model": {"type": "string", "pattern": NAME_PATTERN},
    "version": {
        "type": "integer",
        "minimum": 0,
        "maximum": MAX_VERSION,
        "description": "a model version; default: latest (or the weighted route)",
    },
    "version_label": {
        "type": "string",
        "minLength": 1,
        "pattern": NAME_PATTERN,
        "description": "a version label such as stable or canary",
    },
    "timeout_ms": {
        "type": "integer",
        "minimum": 1,
        "maximum": MAX_TIMEOUT_MS,
        "description": "the client's deadline in milliseconds, as X-Request-Timeout-Ms (the tighter wins)",
    },
}
_EMPTY_ERROR = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {"code": {"type": "string", "enum": [EMPTY_TEXT]}, "message": {"type": "string"}},
}
_NO_NULLS = (
    "Leave an optional field out for its default: null is rejected. `version` and `version_label` are not given "
    "together."
)


def _classify_schemas(max_texts: int, max_text_chars: int, max_top_k: int) -> dict[str, Any]:
    return {
        "ClassifyRequest": {
            "type": "object",
            "required": ["model", "texts"],
            "additionalProperties": False,
            "description": _NO_NULLS,
            "not": {"required": ["version", "version_label"]},
            "properties": {
                **_CHOICE,
                "texts": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": max_texts,
                    "items": {"type": "string", "maxLength": max_text_chars},
                    "description": "raw texts; the gateway cleans (and segments, for `tokens` models) them. A text "
                    "with nothing left after cleaning (empty, whitespace, control characters, only HTML tags) "
                    f"gets a result with `label: null` and `error.code` {EMPTY_TEXT}, whatever else is in the "
                    "batch; it is never sent to the model",
                },
                "top_k": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": max_top_k,
                    "description": "how many best labels per text; default 1",
                },
            },
        },
        "ClassifyResponse": {
            "type": "object",
            "required": ["model", "version", "request_id", "results"],
            "properties": {
                "model": {"type": "string"},
                "version": {"type": "integer", "description": "the version that answered"},
                "request_id": {"type": "string"},
                "results": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["label", "score", "top_k"],
                        "properties": {
                            "label": {
                                "type": "string",
                                "nullable": True,
                                "description": f"null only for a text empty after cleaning (`error.code` {EMPTY_TEXT})",
                            },
                            "score": {"type": "number", "nullable": True},
                            "top_k": {"type": "array", "items": _SCORED},
                            "error": _EMPTY_ERROR,
                        },
                    },
                },
            },
        },
        "ExplainRequest": {
            "type": "object",
            "required": ["model", "text"],
            "additionalProperties": False,
            "description": _NO_NULLS,
            "not": {"required": ["version", "version_label"]},
            "properties": {
                **_CHOICE,
                "text": {
                    "type": "string",
                    "maxLength": max_text_chars,
                    "description": "a raw text, cleaned (and segmented) as /v1/classify does; past "
                    f"{max_texts - 1} tokens after cleaning (TEXTCLF_MAX_TEXTS - 1: the text and each occlusion "
                    "are one batch) 422 text_too_long",
                },
            },
        },
        "ExplainResponse": {
            "type": "object",
            "required": ["model", "version", "request_id", "label", "score", "tokens"],
            "properties": {
                "model": {"type": "string"},
                "version": {"type": "integer", "description": "the version that answered"},
                "request_id": {"type": "string"},
                "label": {
                    "type": "string",
                    "nullable": True,
                    "description": f"null only for a text empty after cleaning (`error.code` {EMPTY_TEXT})",
                },
                "score": {"type": "number", "nullable": True},
                "tokens": {
                    "type": "array",
                    "description": "in text order: jieba words for a `tokens` model, characters for a `text` model",
                    "items": {
                        "type": "object",
                        "required": ["token", "importance"],
                        "properties": {
                            "token": {"type": "string"},
                            "importance": {
                                "type": "number",
                                "description": "the drop in `label`'s probability when this token alone is "
                                "removed: > 0 spoke for the label, < 0 against it (a text of one token: its drop to "
                                "the uniform prior, 1 / number of labels; the empty text is never sent)",
                            },
                        },
                    },
                },
                "error": _EMPTY_ERROR,
            },
        },
    }


def document(
    *, max_texts: int = 256, max_text_chars: int = 10_000, max_top_k: int = 50, keyed: bool = False
) -> dict[str, Any]:
    """The document for these limits; `keyed`: API keys are configured (X-API-Key on non-public paths)."""
    unauthorized = (401,) if keyed else ()
    paths: dict[str, Any] = {
        "/v1/classify": {
            "post": {
                "summary": "Classify a batch of texts with a named model",
                "parameters": _HEADERS,
                "requestBody": {
                    "required": True,
                    "description": "Content-Type must be application/json (else 415 unsupported_media_type); "
                    "bodies past TEXTCLF_MAX_BODY_BYTES, sized or chunked, are 413 body_too_large",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ClassifyRequest"}}},
                },
                "responses": {
                    "200": _json("ClassifyResponse", "one result per text, in order"),
                    **_errors(400, *unauthorized, 404, 413, 415, 422, 500, 502, 504),
                    "503": _SHED,
                },
            }
        },
        "/v1/explain": {
            "post": {
                "summary": "Which tokens of a text made the model choose its label (occlusion)",
                "parameters": _HEADERS,
                "requestBody": {
                    "required": True,
                    "description": "as for /v1/classify: application/json, at most TEXTCLF_MAX_BODY_BYTES",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ExplainRequest"}}},
                },
                "responses": {
                    "200": _json("ExplainResponse", "the label and each token's importance"),
                    **_errors(400, *unauthorized, 404, 413, 415, 422, 500, 502, 504),
                    "503": _SHED,
                },
            }
        },
        "/v1/models": {
            "get": {
                "summary": "The models this gateway fronts, with TF Serving's version states",
                "responses": {"200": _json("Models", "models"), **_errors(*unauthorized, 500, 502, 503, 504)},
            }
        },
        "/healthz": {"get": {"summary": "Liveness", "responses": {"200": _json("Health", "the process is up")}}},
        "/readyz": {
            "get": {
                "summary": "Readiness: TF Serving reachable and every configured model AVAILABLE",
                "responses": {"200": _json("Readiness", "ready"), "503": _json("Readiness", "not ready")},
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {
                    "200": {
                        "description": "text exposition format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    **_errors(*unauthorized),
                },
            }
        },
        "/v2/health/live": {
            "get": {
                "summary": "Open Inference Protocol: server live",
                "responses": {"200": _json("OipLive", "the process is up")},
            }
        },
        "/v2/health/ready": {
            "get": {
                "summary": "Open Inference Protocol: server ready (every fronted model has an AVAILABLE version)",
                "responses": {"200": _json("OipReady", "ready"), "503": _json("OipReady", "not ready")},
            }
        },
        "/v2/models/{name}/ready": {
            "get": {
                "summary": "Open Inference Protocol: model ready",
                "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {
                    "200": _json("OipModelReady", "a version is AVAILABLE"),
                    "503": _json("OipModelReady", "no version AVAILABLE, or TF Serving unreachable"),
                    **_errors(404),
                },
            }
        },
        "/v2/models/{name}": {
            "get": {
                "summary": "Open Inference Protocol: model metadata (versions, tensors, input kind, class labels)",
                "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {
                    "200": _json("OipModelMetadata", "metadata"),
                    **_errors(*unauthorized, 404, 500, 502, 503, 504),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "responses": {
                    "200": {
                        "description": "OpenAPI 3 document",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
        "/": {
            "get": {
                "summary": "The web page (page.py)",
                "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}},
            }
        },
    }
    doc: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {
            "title": "textclf gateway",
            "version": "1",
            "description": "Chinese text classification in front of TF Serving. Every answer carries "
            'X-Request-ID; errors are {"error": {"code", "message"}}; a 405 names the allowed methods in Allow.',
        },
        "components": {"schemas": {**_SCHEMAS, **_classify_schemas(max_texts, max_text_chars, max_top_k)}},
        "paths": paths,
    }
    doc = copy.deepcopy(doc)  # one app's document shares no dict with another's (or with the module's)
    if keyed:
        doc["components"]["securitySchemes"] = {
            "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            "Bearer": {"type": "http", "scheme": "bearer"},  # the same keys, e.g. from Prometheus
        }
        doc["security"] = [{"ApiKey": []}, {"Bearer": []}]
        for path in PUBLIC_PATHS:
            doc["paths"][path]["get"]["security"] = []
    return doc


OPENAPI = document()
