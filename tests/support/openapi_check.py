"""A loose OpenAPI 3 response check for the tests: status documented, JSON shape (types, required keys,
enums, nested $refs) as the document says. Not a full JSON Schema validator."""

from __future__ import annotations

from typing import Any

_TYPES = {"object": dict, "array": list, "string": str, "integer": int, "number": (int, float), "boolean": bool}


def check_response(document: dict[str, Any], path: str, method: str, status: int, body: Any) -> None:
    responses = document["paths"][path][method.lower()]["responses"]
    assert str(status) in responses, f"{method} {path} answered {status}, not documented ({sorted(responses)})"
    schema = responses[str(status)]["content"]["application/json"]["schema"]
    _check(document, schema, body, "body")


def _check(document: dict[str, Any], schema: dict[str, Any], value: Any, where: str) -> None:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = document["components"]["schemas"][name]
    if value is None:
        assert schema.get("nullable"), f"{where} is null but not nullable"
        return
    kind = schema.get("type")
    if kind:
        expected = _TYPES[kind]
        assert isinstance(value, expected) and not (kind in ("integer", "number") and isinstance(value, bool)), (
            f"{where} should be {kind}, got {value!r}"
        )
    if "enum" in schema:
        assert value in schema["enum"], f"{where}={value!r} not in {schema['enum']}"
    if kind == "object":
        for key in schema.get("required", []):
            assert key in value, f"{where} lacks required {key!r}"
        for key, item in value.items():
            if key in schema.get("properties", {}):
                _check(document, schema["properties"][key], item, f"{where}.{key}")
            elif isinstance(schema.get("additionalProperties"), dict):
                _check(document, schema["additionalProperties"], item, f"{where}.{key}")
    if kind == "array":
        for index, item in enumerate(value):
            _check(document, schema.get("items", {}), item, f"{where}[{index}]")
