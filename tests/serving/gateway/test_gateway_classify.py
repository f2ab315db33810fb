"""POST /v1/classify and friends against the REAL local model server, over REST and gRPC."""

from __future__ import annotations

import pytest

from serving.gateway.context import gateway
from tests.support.openapi_check import check_response

pytestmark = pytest.mark.slow  # starts `textclf model-server`


def classify(client, openapi, **body):
    answer = client.post("/v1/classify", json=body)
    check_response(openapi, "/v1/classify", "post", answer.status_code, answer.get_json())
    return answer


@pytest.fixture
def openapi(make_client):
    return make_client().get("/openapi.json").get_json()


def test_classify_tokens_model_segments_with_jieba(make_client, upstream_kwargs, openapi):
    client = make_client(**upstream_kwargs)
    answer = classify(
        client, openapi, model="news", texts=["我喜欢看足球", "我买了电脑", "银行股票大涨"], version_label="stable"
    )
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["model"] == "news" and body["version"] == 1
    # the raw texts contain no spaces: only jieba segmentation makes the `tokens` model see its words
    assert [r["label"] for r in body["results"]] == ["体育", "科技", "财经"]
    assert all(r["score"] > 0.7 for r in body["results"])  # unsegmented they would score 1/3
    assert body["request_id"] == answer.headers["X-Request-ID"]


def test_classify_text_model_gets_cleaned_text(make_client, upstream_kwargs, openapi):
    client = make_client(**upstream_kwargs)
    signatures = gateway(client.application).classifier.signatures
    # the HTML attribute holds two 财经 characters; cleaning drops the tag, leaving the 科技 character
    answer = classify(client, openapi, model="chars", texts=['<span title="股股">机</span>'])
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["results"][0]["label"] == "科技"
    assert signatures.get("chars").inputs == ("text",)
    assert signatures.get("news").inputs == ("tokens",)


def test_versions_and_labels(make_client, upstream_kwargs, openapi):
    client = make_client(**upstream_kwargs)
    text = ["今天天气不错"]  # no known word: only the canary's bias decides
    latest = classify(client, openapi, model="news", texts=text).get_json()
    canary = classify(client, openapi, model="news", texts=text, version_label="canary").get_json()
    pinned = classify(client, openapi, model="news", texts=text, version=1).get_json()
    assert (latest["version"], canary["version"], pinned["version"]) == (2, 2, 1)
    assert canary["results"][0]["label"] == "财经"
    assert pinned["results"][0]["score"] == pytest.approx(1 / 3, abs=1e-5)


def test_top_k_names_every_column_when_the_model_exports_class_names(make_client, upstream_kwargs, openapi):
    client = make_client(**upstream_kwargs)
    result = classify(client, openapi, model="news", texts=["足球 股票 股票"], top_k=3, version=1).get_json()[
        "results"
    ][0]
    assert [item["label"] for item in result["top_k"]] == ["财经", "体育", "科技"]
    scores = [item["score"] for item in result["top_k"]]
    assert scores == sorted(scores, reverse=True) and sum(scores) == pytest.approx(1.0, abs=1e-5)
    # without class_names only the argmax column has a name
    other = classify(client, openapi, model="chars", texts=["机"], top_k=2).get_json()["results"][0]
    assert [item["label"] for item in other["top_k"]] == ["科技", None]


def test_top_k_is_capped_by_the_number_of_classes(make_client, openapi):
    result = classify(make_client(), openapi, model="news", texts=["足球"], top_k=50).get_json()["results"][0]
    assert len(result["top_k"]) == 3


@pytest.mark.parametrize(
    "body, code",
    [
        ({"model": "nope", "texts": ["x"]}, "model_not_found"),  # not in the gateway's model list
        ({"model": "news", "texts": ["x"], "version": 99}, "model_not_found"),  # TF Serving: NOT_FOUND
        ({"model": "news", "texts": ["x"], "version_label": "beta"}, "model_not_found"),  # unknown label
    ],
)
def test_unknown_model_version_or_label_is_404_json(make_client, upstream_kwargs, openapi, body, code):
    answer = classify(make_client(**upstream_kwargs), openapi, **body)
    assert answer.status_code == 404
    assert answer.get_json()["error"]["code"] == code


def test_unlisted_model_reaches_tf_serving_when_no_model_list_is_configured(make_client, openapi):
    answer = classify(make_client(models=()), openapi, model="ghost", texts=["x"])
    assert answer.status_code == 404
    assert (
        "Servable not found" in answer.get_json()["error"]["message"]
        or "ghost" in answer.get_json()["error"]["message"]
    )


def test_models_readyz_and_metrics(make_client, upstream_kwargs, openapi):
    client = make_client(**upstream_kwargs)
    models = client.get("/v1/models")
    check_response(openapi, "/v1/models", "get", 200, models.get_json())
    versions = {m["name"]: sorted(v["version"] for v in m["versions"]) for m in models.get_json()["models"]}
    assert versions == {"news": [1, 2], "chars": [1]}
    ready = client.get("/readyz")
    check_response(openapi, "/readyz", "get", ready.status_code, ready.get_json())
    assert ready.status_code == 200 and ready.get_json()["ready"] is True

    classify(client, openapi, model="news", texts=["看足球", "股票"], version=1)
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'textclf_gateway_predictions_total{label="体育",model="news",version="1"} 1.0' in metrics
    assert 'textclf_gateway_predictions_total{label="财经",model="news",version="1"} 1.0' in metrics
    assert 'textclf_gateway_top_score_count{model="news",version="1"} 2.0' in metrics
    assert 'textclf_gateway_requests_total{method="POST",route="/v1/classify",status="200"} 1.0' in metrics
    assert "textclf_gateway_upstream_seconds_count" in metrics
    assert "textclf_gateway_circuit_breaker_state 0.0" in metrics
    # one request alone: one TF Serving call carrying its 2 texts
    assert "textclf_gateway_coalesced_requests_sum 1.0" in metrics
    assert "textclf_gateway_upstream_batch_texts_sum 2.0" in metrics
