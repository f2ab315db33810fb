"""The gateway's routes in-process, the flaskr way: `create_app(config, upstream=FakeUpstream())`.

The fake (tests/support/fake_upstream.py) stands in for TF Serving only to check the gateway's own logic
in milliseconds: which version or label it asks for, how it prepares texts, top-k, how upstream failures
become JSON errors, readiness, metrics. The same routes against the real local model server are in
test_gateway_classify.py, test_gateway_breaker.py and test_gateway_version_swap.py.
"""

from __future__ import annotations

import pytest

from serving.contract import CLASS_NAMES, LABEL, PROBABILITIES, TEXT_INPUT, TOP_SCORE
from serving.gateway.context import gateway
from tests.support.fake_upstream import FakeUpstream, FakeVersion, fake_app
from tests.support.openapi_check import check_response


@pytest.fixture
def make_client(fake):
    def make(**overrides: object):
        return fake_app(fake, **overrides).test_client()

    return make


@pytest.fixture
def openapi(make_client):
    return make_client().get("/openapi.json").get_json()


def classify(client, openapi, **body):
    answer = client.post("/v1/classify", json=body)
    check_response(openapi, "/v1/classify", "post", answer.status_code, answer.get_json())
    return answer


def predicts(fake: FakeUpstream) -> list[tuple]:
    return [call[1:] for call in fake.calls if call[0] == "predict"]


def test_tokens_model_gets_jieba_words_and_text_model_cleaned_text(make_client, fake, openapi):
    client = make_client()
    answer = classify(client, openapi, model="news", texts=["我喜欢看足球", "银行股票大涨"])
    body = answer.get_json()
    assert [r["label"] for r in body["results"]] == ["体育", "财经"]
    assert body["request_id"] == answer.headers["X-Request-ID"]
    classify(client, openapi, model="chars", texts=['<span title="股股">机</span>'])
    (news, chars) = predicts(fake)
    assert news[:3] == ("news", 2, "tokens") and news[3] == ("我 喜欢 看 足球", "银行 股票 大涨")
    assert chars[:3] == ("chars", 1, TEXT_INPUT) and chars[3] == ("机",)  # the tag and its attribute are gone


def test_version_and_label_select_what_is_resolved_and_pinned(make_client, fake, openapi):
    client = make_client()
    answers = [
        classify(client, openapi, model="news", texts=["天气"], **selector).get_json()["version"]
        for selector in ({}, {"version_label": "canary"}, {"version_label": "stable"}, {"version": 1})
    ]
    assert answers == [2, 2, 1, 1]
    resolved = [call[2:] for call in fake.calls if call[0] == "metadata"]
    assert resolved == [(None, None), (None, "canary"), (None, "stable"), (1, None)]
    assert [call[1] for call in predicts(fake)] == [2, 2, 1, 1]  # every predict pinned to the resolved version
    classify(client, openapi, model="news", texts=["天气"], version_label="canary")
    assert len(resolved) == 4 == len([c for c in fake.calls if c[0] == "metadata"])  # cached, not asked again


def test_top_k_fetches_class_names_only_when_it_needs_them(make_client, fake, openapi):
    client = make_client()
    one = classify(client, openapi, model="news", texts=["足球"], version=1).get_json()["results"][0]
    assert one["top_k"] == [{"label": "体育", "score": one["score"]}]
    three = classify(client, openapi, model="news", texts=["足球 股票 股票"], top_k=3, version=1).get_json()
    ranked = three["results"][0]["top_k"]
    assert [item["label"] for item in ranked] == ["财经", "体育", "科技"]
    assert sum(item["score"] for item in ranked) == pytest.approx(1.0)
    assert [call[4] for call in predicts(fake)] == [(PROBABILITIES, LABEL), (PROBABILITIES, LABEL, CLASS_NAMES)]
    # without class_names only the argmax column has a name; top_k stops at the number of classes
    other = classify(client, openapi, model="chars", texts=["机"], top_k=50).get_json()["results"][0]
    assert [item["label"] for item in other["top_k"]] == ["科技", None, None]


@pytest.mark.parametrize(
    "operation, kind, status, code",
    [
        ("predict", "unavailable", 503, "upstream_unavailable"),
        ("predict", "timeout", 504, "upstream_timeout"),
        ("predict", "invalid_argument", 422, "upstream_rejected"),
        ("predict", "failed", 502, "upstream_error"),
        ("metadata", "not_found", 503, "model_unavailable"),  # the status API lists versions: none AVAILABLE
        ("metadata", "timeout", 504, "upstream_timeout"),
    ],
)
def test_upstream_failures_become_json_errors(make_client, fake, openapi, operation, kind, status, code):
    fake.fail(operation, kind, times=10)
    answer = classify(make_client(retries=0), openapi, model="news", texts=["足球"])
    assert (answer.status_code, answer.get_json()["error"]["code"]) == (status, code)
    assert answer.get_json()["error"]["message"].startswith("TF Serving")


@pytest.mark.parametrize(
    "body, code",
    [
        ({"model": "nope", "texts": ["x"]}, "model_not_found"),  # not in the gateway's model list
        ({"model": "news", "texts": ["x"], "version": 99}, "model_not_found"),  # NOT_FOUND
        ({"model": "news", "texts": ["x"], "version_label": "beta"}, "model_not_found"),  # INVALID_ARGUMENT
    ],
)
def test_unknown_model_version_or_label_is_404(make_client, openapi, body, code):
    answer = classify(make_client(), openapi, **body)
    assert (answer.status_code, answer.get_json()["error"]["code"]) == (404, code)


def test_unavailable_is_retried_before_it_fails(make_client, fake, openapi):
    fake.fail("predict", "unavailable", times=2)
    client = make_client(retries=2, retry_backoff_s=0.001)
    assert classify(client, openapi, model="news", texts=["x"]).status_code == 200
    assert len(predicts(fake)) == 3


def test_models_that_break_the_contract(make_client, fake, openapi):
    fake.models["odd"] = {1: FakeVersion(input_name="sentence")}
    fake.models["short"] = {1: FakeVersion(short_answer=True)}
    client = make_client(models=())
    odd = classify(client, openapi, model="odd", texts=["x"])
    assert (odd.status_code, odd.get_json()["error"]["code"]) == (422, "unsupported_model")
    short = classify(client, openapi, model="short", texts=["x", "y"])
    assert (short.status_code, short.get_json()["error"]["code"]) == (502, "bad_model_output")


def test_a_stale_signature_is_resolved_again_for_the_new_input_kind(make_client, fake, openapi):
    client = make_client(metadata_ttl_s=600)
    assert classify(client, openapi, model="news", texts=["看足球"]).get_json()["version"] == 2
    fake.models["news"] = {3: FakeVersion(TEXT_INPUT, outputs=(PROBABILITIES, LABEL, TOP_SCORE))}
    body = classify(client, openapi, model="news", texts=["看足球", "银行"]).get_json()
    assert body["version"] == 3 and [r["label"] for r in body["results"]] == ["体育", "财经"]
    assert [call[:3] for call in predicts(fake)] == [("news", 2, "tokens"), ("news", 2, "tokens"), ("news", 3, "text")]


def test_models_lists_versions_and_per_model_errors(make_client, fake, openapi):
    client = make_client(models=("news", "ghost"), retries=0)
    listed = client.get("/v1/models")
    check_response(openapi, "/v1/models", "get", 200, listed.get_json())
    news, ghost = listed.get_json()["models"]
    assert [v["version"] for v in news["versions"]] == [1, 2] and news["versions"][0]["state"] == "AVAILABLE"
    assert ghost["versions"] == [] and ghost["error"]["code"] == "model_not_found"
    fake.fail("status", "unavailable")
    outage = client.get("/v1/models")
    assert (outage.status_code, outage.get_json()["error"]["code"]) == (503, "upstream_unavailable")


def test_readyz(make_client, fake, openapi):
    ready = make_client().get("/readyz")
    check_response(openapi, "/readyz", "get", ready.status_code, ready.get_json())
    assert ready.status_code == 200
    assert ready.get_json() == {  # no upstream address: the probe is public (test_gateway_public_info.py)
        "ready": True,
        "circuit_breaker": "closed",
        "models": {"news": "AVAILABLE", "chars": "AVAILABLE"},
    }
    fake.models["chars"][1].state = "LOADING"
    not_ready = make_client().get("/readyz")
    assert not_ready.status_code == 503 and not_ready.get_json()["models"]["chars"] == "NOT_AVAILABLE"
    # no model list: any NOT_FOUND answer proves TF Serving is up
    anything = make_client(models=()).get("/readyz")
    assert anything.status_code == 200 and anything.get_json()["models"] == {}
    fake.fail("status", "unavailable")
    down = make_client(models=()).get("/readyz")
    assert down.status_code == 503 and down.get_json()["ready"] is False


def test_breaker_fails_fast_and_readiness_asks_past_it(make_client, fake):
    client = make_client(breaker_failures=2, breaker_reset_s=60, retries=0)
    fake.fail("metadata", "unavailable", times=2)
    answers = [client.post("/v1/classify", json={"model": "news", "texts": ["x"]}) for _ in range(3)]
    codes = [answer.get_json()["error"]["code"] for answer in answers]
    assert codes == ["upstream_unavailable", "upstream_unavailable", "circuit_open"]
    assert gateway(client.application).breaker.state == "open"
    ready = client.get("/readyz").get_json()
    assert ready["circuit_breaker"] == "open" and ready["ready"] is True  # the fake is back: readiness sees it


def test_metrics(make_client, fake):
    client = make_client()
    client.post("/v1/classify", json={"model": "news", "texts": ["看足球", "股票"], "version": 1})
    client.post("/v1/classify", json={"model": "news", "texts": []})
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and metrics.mimetype == "text/plain"
    text = metrics.get_data(as_text=True)
    assert 'textclf_gateway_predictions_total{label="体育",model="news",version="1"} 1.0' in text
    assert 'textclf_gateway_predictions_total{label="财经",model="news",version="1"} 1.0' in text
    assert 'textclf_gateway_top_score_count{model="news",version="1"} 2.0' in text
    assert 'textclf_gateway_requests_total{method="POST",route="/v1/classify",status="200"} 1.0' in text
    assert 'textclf_gateway_requests_total{method="POST",route="/v1/classify",status="422"} 1.0' in text
    assert 'textclf_gateway_errors_total{code="invalid_request"} 1.0' in text
    assert 'textclf_gateway_upstream_seconds_count{operation="predict"} 1.0' in text
    assert "textclf_gateway_coalesced_requests_sum 1.0" in text
    assert "textclf_gateway_upstream_batch_texts_sum 2.0" in text


def test_a_bug_is_a_500_json_with_the_request_id(make_client, fake, openapi):
    fake.fail("predict", error=RuntimeError("a bug"))
    answer = make_client().post("/v1/classify", json={"model": "news", "texts": ["x"]}, headers={"X-Request-ID": "r-1"})
    check_response(openapi, "/v1/classify", "post", answer.status_code, answer.get_json())
    assert (answer.status_code, answer.get_json()["error"]["code"]) == (500, "internal")
    assert "r-1" in answer.get_json()["error"]["message"] and answer.headers["X-Request-ID"] == "r-1"


def test_each_app_owns_its_upstream_and_state(make_client, fake):
    first, second = make_client(), make_client()
    assert gateway(first.application).upstream is fake and gateway(first.application) is not gateway(second.application)
    first.post("/v1/classify", json={"model": "news", "texts": ["x"]})
    assert 'route="/v1/classify"' not in second.get("/metrics").get_data(as_text=True)  # its own registry
