"""POST /v1/explain on the REAL local model server (conftest: the tiny `news` tokens model, two versions,
and the `chars` text model): each token's importance is the drop in the label's probability when the
token is removed, checked against /v1/classify's own answers for the occluded texts; one predict call per
explanation; /v1/classify's limits, validation and API keys; every answer as the OpenAPI document says."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from serving.gateway.context import gateway
from serving.gateway.upstream import Upstream
from tests.support.gated_upstream import PassThroughUpstream
from tests.support.openapi_check import check_response

MAX_TEXTS = 8  # so at most 7 tokens per explanation
KEY = "explain-key"


class Recording(PassThroughUpstream):
    """The real upstream client, recording how many rows each predict call carries."""

    def __init__(self, inner: Upstream) -> None:
        super().__init__(inner)
        self.rows: list[int] = []

    def predict(
        self, model: str, version: int, input_name: str, values: Sequence[str], outputs: Sequence[str]
    ) -> dict[str, list[Any]]:
        self.rows.append(len(values))
        return super().predict(model, version, input_name, values, outputs)

    def close(self) -> None:
        self.inner.close()


def explain(client: Any, body: dict[str, Any], status: int = 200, **headers: str) -> dict[str, Any]:
    answer = client.post("/v1/explain", json=body, headers=headers)
    check_response(client.get("/openapi.json").get_json(), "/v1/explain", "post", answer.status_code, answer.get_json())
    assert answer.status_code == status, answer.get_json()
    return dict(answer.get_json())


def label_probability(client: Any, model: str, text: str, label: str, **choice: Any) -> float:
    """The probability /v1/classify gives `label` for `text` (0 if it is not among the top 3)."""
    answer = client.post("/v1/classify", json={"model": model, "texts": [text], "top_k": 3, **choice}).get_json()
    return next((e["score"] for e in answer["results"][0]["top_k"] if e["label"] == label), 0.0)


@pytest.fixture
def client(make_client: Any, upstream_kwargs: dict[str, str]) -> Any:
    return make_client(max_texts=MAX_TEXTS, max_text_chars=40, **upstream_kwargs)


@pytest.mark.parametrize(
    ("model", "text", "tokens", "choice"),
    [
        # jieba words; the stable version has no bias, so the two 体育 words carry the label
        (
            "news",
            "昨晚的足球和比赛，手机",
            ["昨晚", "的", "足球", "和", "比赛", ",", "手机"],
            {"version_label": "stable"},
        ),
        # characters of the cleaned text (NFKC: the full-width comma becomes ",")
        ("chars", "球赛，机", ["球", "赛", ",", "机"], {}),
    ],
)
def test_importance_is_the_drop_when_the_token_is_removed(client, model, text, tokens, choice):
    answer = explain(client, {"model": model, "text": text, **choice})
    classified = client.post("/v1/classify", json={"model": model, "texts": [text], **choice}).get_json()
    assert (answer["model"], answer["version"]) == (model, classified["version"])
    assert (answer["label"], answer["score"]) == (classified["results"][0]["label"], classified["results"][0]["score"])
    assert answer["label"] == "体育" and len(answer["request_id"]) == 32
    assert [t["token"] for t in answer["tokens"]] == tokens
    joiner = " " if model == "news" else ""
    for i, token in enumerate(answer["tokens"]):
        rest = joiner.join(tokens[:i] + tokens[i + 1 :])
        dropped = answer["score"] - label_probability(client, model, rest, answer["label"], **choice)
        assert token["importance"] == pytest.approx(dropped, abs=1e-6), token
    by_token = {t["token"]: t["importance"] for t in answer["tokens"]}
    # the model's own keywords: for the label, against it, and words it does not know
    assert by_token["足球" if model == "news" else "球"] > 0.05
    assert by_token["手机" if model == "news" else "机"] < -0.05
    assert by_token["昨晚" if model == "news" else ","] == pytest.approx(0.0, abs=1e-6)


def test_one_predict_call_per_explanation_and_the_chosen_version(model_server, make_client):
    """The text and its occlusions are one batch (coalescer off: nothing splits or merges it)."""
    app_client = make_client(tfserving_grpc=model_server.grpc_target, coalesce_max_texts=0)
    guarded = gateway(app_client.application).guarded
    recording = guarded.inner = Recording(guarded.inner)
    canary = explain(app_client, {"model": "news", "text": "银行的股票和足球"})  # latest: the canary, v2
    assert canary["version"] == 2 and recording.rows == [1 + len(canary["tokens"])] == [6]
    stable = explain(app_client, {"model": "news", "text": "银行的股票和足球", "version": 1})
    assert stable["version"] == 1 and recording.rows[1:] == [6]
    assert stable["score"] != canary["score"]
    # one token: its only occlusion would be "", which is never sent; the drop is to the uniform prior (3 labels)
    single = explain(app_client, {"model": "news", "text": "足球", "version": 1})
    assert recording.rows[2:] == [1] and [t["token"] for t in single["tokens"]] == ["足球"]
    assert single["tokens"][0]["importance"] == pytest.approx(single["score"] - 1 / 3, abs=1e-6)


def test_limits_and_validation_as_for_classify(make_client, model_server):
    client = make_client(tfserving_grpc=model_server.grpc_target, max_texts=MAX_TEXTS, max_text_chars=40)
    longest = "足球" * 7  # 7 words: the text and 7 occlusions make MAX_TEXTS rows
    assert len(explain(client, {"model": "news", "text": longest})["tokens"]) == 7
    error = explain(client, {"model": "news", "text": longest + "足球"}, 422)["error"]
    assert error["code"] == "text_too_long" and "8 words" in error["message"] and "at most 7" in error["message"]
    assert explain(client, {"model": "chars", "text": "球赛机脑股银球赛"}, 422)["error"]["code"] == "text_too_long"
    error = explain(client, {"model": "news", "text": "好" * 41}, 422)["error"]
    assert error == {"code": "text_too_long", "message": "`text` has 41 characters; at most 40"}
    empty = explain(client, {"model": "chars", "text": "<b></b> "})
    assert (empty["label"], empty["score"], empty["tokens"], empty["error"]["code"]) == (None, None, [], "empty_text")
    for body, code in [
        ({"model": "news", "texts": ["足球"]}, "invalid_request"),  # classify's field, not explain's
        ({"model": "news", "text": "足球", "top_k": 2}, "invalid_request"),
        ({"model": "news", "text": ["足球"]}, "invalid_request"),
        ({"model": "news", "text": None}, "invalid_request"),
        ({"model": "news", "text": "足球", "version": 1, "version_label": "stable"}, "invalid_request"),
        ({"model": "news/../x", "text": "足球"}, "invalid_request"),
        ({"model": "nope", "text": "足球"}, "model_not_found"),
        ({"model": "news", "text": "足球", "version": 9}, "model_not_found"),
        ({"model": "news", "text": "足球", "timeout_ms": 0}, "invalid_request"),
    ]:
        assert explain(client, body, 404 if code == "model_not_found" else 422)["error"]["code"] == code, body
    surrogate = client.post(
        "/v1/explain", data=b'{"model": "news", "text": "\\ud800"}', content_type="application/json"
    )
    assert (surrogate.status_code, surrogate.get_json()["error"]["code"]) == (422, "invalid_request")
    assert surrogate.get_json()["error"]["message"] == "`text` is not valid Unicode (lone surrogate)"
    raw = client.post("/v1/explain", data="{", content_type="application/json")
    assert (raw.status_code, raw.get_json()["error"]["code"]) == (400, "bad_json")
    form = client.post("/v1/explain", data="text=1", content_type="application/x-www-form-urlencoded")
    assert (form.status_code, form.get_json()["error"]["code"]) == (415, "unsupported_media_type")
    late = client.post("/v1/explain", json={"model": "news", "text": "足球"}, headers={"X-Request-Timeout-Ms": "x"})
    assert (late.status_code, late.get_json()["error"]["code"]) == (400, "invalid_timeout")


def test_api_keys_and_the_document(make_client, model_server):
    client = make_client(tfserving_grpc=model_server.grpc_target, api_keys=(KEY,))
    assert explain(client, {"model": "news", "text": "足球"}, 401)["error"]["code"] == "unauthorized"
    assert explain(client, {"model": "news", "text": "足球"}, 200, **{"X-API-Key": KEY})["label"] == "体育"
    document = client.get("/openapi.json").get_json()
    request = document["components"]["schemas"]["ExplainRequest"]
    assert (
        request["properties"]["text"]["maxLength"] == 10_000
        and "255 tokens" in request["properties"]["text"]["description"]
    )
    assert "401" in document["paths"]["/v1/explain"]["post"]["responses"]
