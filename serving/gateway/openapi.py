"""The gateway's OpenAPI 3 document, served at /openapi.json (tests check answers against it)."""

from __future__ import annotations

from typing import Any

from serving.gateway.errors import CODES


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

_SCHEMAS: dict[str, Any] = {
    "ClassifyRequest": {
        "type": "object",
        "required": ["model", "texts"],
        "additionalProperties": False,
        "properties": {
            "model": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.\\-]{0,127}$"},
            "texts": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "string"},
                "description": "raw texts; the gateway cleans (and segments, for `tokens` models) them",
            },
            "version": {"type": "integer", "minimum": 0, "description": "a model version; default: latest"},
            "version_label": {"type": "string", "description": "a version label such as stable or canary"},
            "top_k": {"type": "integer", "minimum": 1, "description": "how many best labels per text"},
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
                        "label": {"type": "string"},
                        "score": {"type": "number"},
                        "top_k": {"type": "array", "items": _SCORED},
                    },
                },
            },
        },
    },
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
                                    "error_code": {"type": "string"},
                                    "error_message": {"type": "string"},
                                },
                            },
                        },
                    },
                },
            }
        },
    },
    "Health": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}},
    "Readiness": {
        "type": "object",
        "required": ["ready", "upstream", "models"],
        "properties": {
            "ready": {"type": "boolean"},
            "upstream": {"type": "string"},
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

_KEY: list[dict[str, list[str]]] = [{"ApiKey": []}]

OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "textclf gateway",
        "version": "1",
        "description": "Chinese text classification in front of TF Serving. Every answer carries "
        'X-Request-ID; errors are {"error": {"code", "message"}}.',
    },
    "components": {
        "schemas": _SCHEMAS,
        "securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
    },
    "security": _KEY,
    "paths": {
        "/v1/classify": {
            "post": {
                "summary": "Classify a batch of texts with a named model",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ClassifyRequest"}}},
                },
                "responses": {
                    "200": _json("ClassifyResponse", "one result per text, in order"),
                    **_errors(400, 401, 404, 413, 422, 500, 502, 503, 504),
                },
            }
        },
        "/v1/models": {
            "get": {
                "summary": "The models this gateway fronts, with TF Serving's version states",
                "responses": {"200": _json("Models", "models"), **_errors(401, 500, 502, 503, 504)},
            }
        },
        "/healthz": {
            "get": {"summary": "Liveness", "security": [], "responses": {"200": _json("Health", "the process is up")}}
        },
        "/readyz": {
            "get": {
                "summary": "Readiness: TF Serving reachable and every configured model AVAILABLE",
                "security": [],
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
                    **_errors(401),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "security": [],
                "responses": {
                    "200": {
                        "description": "OpenAPI 3 document",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
    },
}
