"""Bad requests get 4xx JSON with a stable code, never a 500; limits, API keys, request IDs, OpenAPI.

All of it is the gateway's own logic, decided before or regardless of what TF Serving answers, so the app
runs in-process on the fake upstream (tests/support/fake_upstream.py) and this module takes milliseconds;
the real model server's answers are checked in test_gateway_classify.py and test_gateway_cli.py.
"""

from __future__ import annotations

import re

import pytest

from tests.support.fake_upstream import FakeUpstream, fake_app
from tests.support.openapi_check import check_response


def make_client(**overrides: object):
    return fake_app(FakeUpstream(), **overrides).test_client()


@pytest.fixture
def client():
    return make_client(max_texts=3, max_text_chars=20, max_body_bytes=1000)


@pytest.fixture
def openapi(client):
    return client.get("/openapi.json").get_json()


def error_of(answer) -> str:
    body = answer.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"} and body["error"]["message"]
    return body["error"]["code"]


@pytest.mark.parametrize(
    "data, status, code",
    [
        (b"{", 400, "bad_json"),
        (b"", 400, "bad_json"),
        (b"\xff\xfe{}", 400, "bad_json"),  # not UTF-8
        (b'{"model": "news", "texts": ["\xe4"]}', 400, "bad_json"),  # a broken UTF-8 sequence inside
        (b"[" * 100_000, 413, "body_too_large"),
        (b"[]", 422, "invalid_request"),
        (b'"text"', 422, "invalid_request"),
        (b'{"texts": ["x"]}', 422, "invalid_request"),
        (b'{"model": 3, "texts": ["x"]}', 422, "invalid_request"),
        (b'{"model": "../etc", "texts": ["x"]}', 422, "invalid_request"),
        (b'{"model": "news", "texts": "x"}', 422, "invalid_request"),
        (b'{"model": "news", "texts": []}', 422, "invalid_request"),
        (b'{"model": "news", "texts": [1]}', 422, "invalid_request"),
        (b'{"model": "news", "texts": ["\\ud800"]}', 422, "invalid_request"),  # a lone surrogate escape
        (b'{"model": "news", "texts": ["x"], "top_k": 0}', 422, "invalid_request"),
        (b'{"model": "news", "texts": ["x"], "top_k": true}', 422, "invalid_request"),
        (b'{"model": "news", "texts": ["x"], "top_k": 1.5}', 422, "invalid_request"),
        (b'{"model": "news", "texts": ["x"], "version": -1}', 422, "invalid_request"),
        (b'{"model": "news", "texts": ["x"], "version": 99999999999999999999999}', 422, "invalid_request"),
        (b'{"model": "news", "texts": ["x"], "version": 1, "version_label": "stable"}', 422, "invalid_request"),
        (b'{"model": "news", "texts": ["x"], "colour": "red"}', 422, "invalid_request"),
        (b'{"model": "news", "texts": ["x"], "top_k": null}', 422, "invalid_request"),  # leave it out instead
        (b'{"model": "news", "texts": ["x"], "version_label": ""}', 422, "invalid_request"),
        (b'{"model": "news\\n", "texts": ["x"]}', 422, "invalid_request"),  # $ would match before a newline
        (b'{"model": "news", "texts": ["a", "b", "c", "d"]}', 422, "too_many_texts"),
        (b'{"model": "news", "texts": ["' + "长".encode() * 21 + b'"]}', 422, "text_too_long"),
    ],
)
def test_bad_bodies_get_json_errors(client, openapi, data, status, code):
    answer = client.post("/v1/classify", data=data, content_type="application/json")
    assert answer.status_code == status, answer.get_data(as_text=True)
    assert error_of(answer) == code
    check_response(openapi, "/v1/classify", "post", status, answer.get_json())


def test_limits_are_inclusive(client):
    answer = client.post("/v1/classify", json={"model": "news", "texts": ["长" * 20, "a", "b"]})
    assert answer.status_code == 200, answer.get_json()


def test_unknown_route_and_method_are_json(client):
    assert (client.get("/nope").status_code, error_of(client.get("/nope"))) == (404, "not_found")
    for method in ("GET", "TRACE", "Q0000001"):
        answer = client.open("/v1/classify", method=method)
        assert (answer.status_code, error_of(answer)) == (405, "method_not_allowed")
        assert set(answer.headers["Allow"].split(", ")) == {"POST", "OPTIONS"}  # RFC 9110


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_classify_requires_json(client, openapi, content_type):
    """A browser's form post (no CORS preflight) is never read as a classify request."""
    answer = client.post("/v1/classify", data=b'{"model": "news", "texts": ["x"]}', content_type=content_type)
    assert (answer.status_code, error_of(answer)) == (415, "unsupported_media_type")
    check_response(openapi, "/v1/classify", "post", 415, answer.get_json())
    charset = client.post(
        "/v1/classify", data='{"model": "news", "texts": ["x"]}', content_type="application/json; charset=utf-8"
    )
    assert charset.status_code == 200


def test_api_key():
    client = make_client(api_keys=("k1", "k2"))
    body = {"model": "news", "texts": ["足球"]}
    for headers in ({}, {"X-API-Key": "wrong"}, {"X-API-Key": "k1x"}):
        answer = client.post("/v1/classify", json=body, headers=headers)
        assert (answer.status_code, error_of(answer)) == (401, "unauthorized")
    assert client.post("/v1/classify", json=body, headers={"X-API-Key": "k2"}).status_code == 200
    assert client.get("/metrics").status_code == 401
    # the same keys as `Authorization: Bearer` (Prometheus's scrape config sends that, not X-API-Key)
    assert client.get("/metrics", headers={"Authorization": "Bearer k1"}).status_code == 200
    for wrong in ("Bearer k1x", "Basic k1", "k1", "Bearer"):
        assert client.get("/metrics", headers={"Authorization": wrong}).status_code == 401, wrong
    assert client.get("/v1/models", headers={"X-API-Key": "k1"}).status_code == 200
    for public in ("/healthz", "/readyz", "/openapi.json"):
        assert client.get(public).status_code == 200, public


def test_request_id_in_and_out(client):
    answer = client.post("/v1/classify", json={"model": "news", "texts": ["足球"]}, headers={"X-Request-ID": "abc-123"})
    assert answer.headers["X-Request-ID"] == "abc-123" and answer.get_json()["request_id"] == "abc-123"
    error = client.post("/v1/classify", data=b"{", headers={"X-Request-ID": "err-9"})
    assert error.headers["X-Request-ID"] == "err-9"
    # an unusable incoming id (too long, odd characters) is replaced, never echoed
    odd = client.get("/healthz", headers={"X-Request-ID": "x" * 300})
    generated = client.get("/healthz").headers["X-Request-ID"]
    assert odd.headers["X-Request-ID"] != "x" * 300 and len(generated) == 32


def test_openapi_document_describes_the_api(client, openapi):
    assert openapi["openapi"].startswith("3.")
    # Flask writes a path parameter as <name> (or <converter:name>), OpenAPI as {name}
    routes = {
        re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for rule in client.application.url_map.iter_rules()
        if rule.endpoint != "static"
    }
    assert routes == set(openapi["paths"])
    check_response(openapi, "/healthz", "get", 200, client.get("/healthz").get_json())


def test_openapi_states_the_configured_limits_and_security(client, openapi):
    request = openapi["components"]["schemas"]["ClassifyRequest"]
    fields = request["properties"]
    assert (fields["texts"]["maxItems"], fields["texts"]["items"]["maxLength"]) == (3, 20)  # the client's config
    assert (fields["top_k"]["maximum"], fields["version"]["maximum"]) == (50, 2**63 - 1)
    assert fields["version_label"]["minLength"] == 1 and request["not"] == {"required": ["version", "version_label"]}
    assert "security" not in openapi and "securitySchemes" not in openapi["components"]  # no keys configured
    keyed = make_client(api_keys=("k1",)).get("/openapi.json").get_json()
    assert keyed["security"] == [{"ApiKey": []}, {"Bearer": []}]
    schemes = keyed["components"]["securitySchemes"]
    assert schemes["ApiKey"]["in"] == "header" and schemes["Bearer"] == {"type": "http", "scheme": "bearer"}
    assert (
        keyed["paths"]["/readyz"]["get"]["security"] == []
        and "401" in keyed["paths"]["/v1/classify"]["post"]["responses"]
    )
