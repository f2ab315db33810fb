"""Fuzzing the gateway's /v1/classify with hypothesis: whatever the body, the answer is a 4xx JSON error
with a stable code or a valid 200 result, never a 5xx or a crash.

In-process Flask test client, real gRPC upstream client, real local model server (conftest.py here).
Bounded: a fixed number of examples per property and a per-example deadline; the total count of cases
run is printed at the end of the module.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.slow

FUZZ = settings(
    max_examples=80,
    deadline=5000,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
CASES = {"count": 0}

# every script and symbol class a client might send: CJK, Latin, Cyrillic, Arabic, emoji, combining marks,
# controls, private use, surrogates-free text (JSON can carry lone surrogates as \ud800 escapes: see below)
TEXT = st.text(st.characters(codec="utf-8"), max_size=60) | st.sampled_from(
    [
        "这家酒店很好 👍🏻",
        "Ünïcödé 和 中文 mixed ١٢٣ русский",
        "<b>好评</b>&amp;",
        "\u200b\u200d\ufeff",
        " ",
        "👨‍👩‍👧‍👦" * 20,
        "a\x00b",
        "\ud7ff\ue000",
        "足球 比赛",
    ]
)
JSON_SCALAR = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
JSON_ANY = st.recursive(
    JSON_SCALAR,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
MODEL = st.sampled_from(["news", "chars", "nope", "", "../etc", "news/1", "x" * 200]) | JSON_ANY
TEXTS = (
    st.lists(TEXT, min_size=0, max_size=8)
    | st.lists(JSON_ANY, max_size=4)
    | JSON_ANY
    | st.integers(250, 3000).map(lambda n: ["好"] * n)  # around max_texts, and thousands
    | st.integers(9_990, 10_010).map(lambda n: ["字" * n])
)  # around max_text_chars
OPTIONAL_INT = st.none() | st.integers() | st.integers(-2, 60) | JSON_SCALAR
CLASSIFY = st.fixed_dictionaries(
    {"model": MODEL, "texts": TEXTS},
    optional={"top_k": OPTIONAL_INT, "version": OPTIONAL_INT, "version_label": MODEL, "extra": JSON_ANY},
)


@pytest.fixture(scope="module")
def client(model_server):
    from serving.gateway.app import create_app
    from serving.gateway.config import GatewayConfig
    from serving.gateway.context import gateway

    app = create_app(GatewayConfig(tfserving_grpc=model_server.grpc_target, models=("news", "chars")))
    yield app.test_client()
    gateway(app).upstream.close()


@pytest.fixture(scope="module", autouse=True)
def report_count(request):
    yield
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(f"\ngateway fuzz: {CASES['count']} cases run")


def check(response, sent: object) -> None:
    CASES["count"] += 1
    assert response.status_code < 500, (response.status_code, response.get_data()[:300], repr(sent)[:300])
    body = response.get_json(silent=True)
    assert isinstance(body, dict), response.get_data()[:300]
    if response.status_code == 200:
        texts = sent["texts"]
        assert body["model"] == sent["model"] and len(body["results"]) == len(texts)
        for result in body["results"]:
            if result["label"] is None:  # nothing left after cleaning: never sent to the model
                assert result["score"] is None and result["error"]["code"] == "empty_text", result
            else:
                assert isinstance(result["label"], str) and 0.0 <= result["score"] <= 1.0
    else:
        assert 400 <= response.status_code < 500
        assert isinstance(body["error"]["code"], str) and isinstance(body["error"]["message"], str)


@FUZZ
@given(body=st.binary(max_size=300) | st.text(max_size=100).map(str.encode))
def test_any_bytes(client, body):
    check(client.post("/v1/classify", data=body, content_type="application/json"), body)


@FUZZ
@given(payload=CLASSIFY)
def test_classify_shaped_json(client, payload):
    check(client.post("/v1/classify", data=json.dumps(payload), content_type="application/json"), payload)


@settings(FUZZ, max_examples=25)
@given(
    payload=JSON_ANY,
    escape=st.sampled_from(["\\ud800", "\\udfff", "\\u0000", "\\\\x"]),
    content_type=st.sampled_from(["application/json", "text/plain", "", "application/json; charset=latin-1"]),
)
def test_odd_json_and_headers(client, payload, escape, content_type):
    # lone surrogates are legal JSON escapes but not encodable text: put one inside a text
    sent = {"model": "news", "texts": ["好" + "ESC"]}
    for data, shown in ((json.dumps(payload), payload), (json.dumps(sent).replace("ESC", escape), sent)):
        check(client.post("/v1/classify", data=data, content_type=content_type), shown)


def test_huge_bodies(client):
    big = json.dumps({"model": "news", "texts": ["好" * 9_000] * 256})  # ~7 MB: over the body limit
    check(client.post("/v1/classify", data=big, content_type="application/json"), None)
    deep = "[" * 100_000 + "]" * 100_000
    check(client.post("/v1/classify", data=deep, content_type="application/json"), None)
    many = {"model": "news", "texts": ["足球 比赛 手机"] * 256}
    check(client.post("/v1/classify", json=many), many)
