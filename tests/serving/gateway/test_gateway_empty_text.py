"""Texts with nothing left after cleaning get one answer whatever their neighbours: a result with
`label: null` and `error.code` empty_text, decided by the gateway with the model's own preprocessing and
never sent to the model (alone, in a batch, through the cache or coalesced with other clients' texts).
And no TF Serving message passes graph internals to a client.

The rule is the gateway's own logic, so most of it runs on the in-process fake upstream (which records
every predict call); the real local model server checks that the model is never asked and that a real
TF Serving error comes out sanitized.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from serving.gateway.context import gateway
from serving.gateway.upstream import Upstream
from tests.support.fake_upstream import FakeUpstream, fake_app
from tests.support.gated_upstream import GatedUpstream
from tests.support.openapi_check import check_response

EMPTY = ["", "   ", "\u0000", "<b></b>", "\u200b\t<!-- x -->&nbsp;"]


def classify(client, body: dict[str, Any]) -> dict[str, Any]:
    answer = client.post("/v1/classify", json=body)
    openapi = client.get("/openapi.json").get_json()
    check_response(openapi, "/v1/classify", "post", answer.status_code, answer.get_json())
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def is_empty_result(result: dict[str, Any]) -> bool:
    return result["label"] is None and result["score"] is None and result["error"]["code"] == "empty_text"


def until(condition: Callable[[], bool]) -> None:
    """Poll (bounded, so a broken test cannot hang) until `condition` holds."""
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.005)


def sent_values(fake: FakeUpstream) -> list[str]:
    return [value for call in fake.calls if call[0] == "predict" for value in call[4]]


@pytest.mark.parametrize("cache_entries", [0, 100], ids=["no_cache", "cache"])
@pytest.mark.parametrize("model", ["news", "chars"])  # tokens and text input
def test_empty_texts_get_null_labels_whatever_their_neighbours(model, cache_entries):
    fake = FakeUpstream()
    client = fake_app(fake, cache_entries=cache_entries).test_client()
    alone = [classify(client, {"model": model, "texts": [text]})["results"][0] for text in EMPTY]
    assert all(is_empty_result(result) for result in alone)
    assert not any(call[0] == "predict" for call in fake.calls)  # nothing to ask the model
    mixed = classify(client, {"model": model, "texts": ["<b></b>", "足球 比赛", *EMPTY, "手机"]})["results"]
    assert [r["label"] for r in mixed] == [None, "体育", *[None] * len(EMPTY), "科技"]
    assert all(is_empty_result(r) for r in mixed if r["label"] is None)
    assert mixed[0] == alone[3]  # the same answer alone and in a batch
    assert all(value.strip() for value in sent_values(fake))  # the model never saw an empty value


def test_texts_with_no_words_left_after_stopwords_count_as_empty(tmp_path):
    stopwords = tmp_path / "stopwords.txt"
    stopwords.write_text("的\n了\n")
    fake = FakeUpstream()
    client = fake_app(fake, stopwords=str(stopwords)).test_client()
    results = classify(client, {"model": "news", "texts": ["的了", "足球的"]})["results"]
    assert is_empty_result(results[0]) and results[1]["label"] == "体育"
    assert sent_values(fake) == ["足球"]


def test_coalesced_requests_never_carry_an_empty_text():
    """Requests held together at the upstream gate are merged into one TF Serving call: the empty texts of
    one client must not ride in it, nor change what the others get."""
    fake = FakeUpstream()
    gated = GatedUpstream(fake)
    client = fake_app(gated, coalesce_max_texts=32, coalesce_in_flight=1).test_client()
    bodies = [["足球"], ["<b></b>", "手机"], ["\u0000"], ["   ", "银行 股票"]]
    answers: dict[int, list[dict[str, Any]]] = {}

    def send(i: int) -> None:
        answers[i] = client.post("/v1/classify", json={"model": "news", "texts": bodies[i]}).get_json()["results"]

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    threads[0].start()
    until(lambda: gated.waiting == 1)  # the first call holds the only slot at the gate
    for thread in threads[1:]:
        thread.start()
    coalescer = gateway(client.application).classifier.upstream
    until(lambda: sum(len(queue) for queue in coalescer._queues.values()) == 2)  # the others with texts queue
    gated.open()
    for thread in threads:
        thread.join(30)
    labels = [[r["label"] for r in answers[i]] for i in range(len(bodies))]
    assert labels == [["体育"], [None, "科技"], [None], [None, "财经"]]
    assert sent_values(fake) and all(value.strip() for value in sent_values(fake))


class RankTwoUpstream:
    """The real REST client, sending each predict input as a 1 x N matrix: a request the real model
    server rejects with a TensorFlow error naming graph nodes (what a broken model or client provokes)."""

    def __init__(self, inner: Upstream) -> None:
        self.inner = inner
        self.target = inner.target

    def metadata(self, model: str, version: int | None = None, label: str | None = None) -> Any:
        return self.inner.metadata(model, version, label)

    def status(self, model: str) -> Any:
        return self.inner.status(model)

    def predict(self, model: str, version: int, input_name: str, values: Sequence[str], outputs: Sequence[str]) -> Any:
        return self.inner.predict(model, version, input_name, [list(values)], outputs)  # type: ignore[list-item]

    def close(self) -> None:
        self.inner.close()


@pytest.mark.slow
def test_against_the_real_model_server(model_server):
    from serving.gateway.app import create_app
    from serving.gateway.config import GatewayConfig
    from serving.gateway.rest_client import RestUpstream

    config = GatewayConfig(tfserving_rest=model_server.rest_url, models=("news", "chars"), retries=0)
    raw = RestUpstream(model_server.rest_url)
    try:
        client = create_app(config, upstream=raw).test_client()
        for model in ("news", "chars"):
            results = classify(client, {"model": model, "texts": ["<b></b>", "足球 比赛", "\u0000"]})["results"]
            assert [r["label"] is None for r in results] == [True, False, True]
            assert results[1] == classify(client, {"model": model, "texts": ["足球 比赛"]})["results"][0]
        # a real TF Serving error: its first line only, without node names or op stacks
        broken = create_app(config, upstream=RankTwoUpstream(raw)).test_client()
        answer = broken.post("/v1/classify", json={"model": "news", "texts": ["足球", "比赛"], "version": 1})
        error = answer.get_json()["error"]
        assert (answer.status_code, error["code"]) == (422, "upstream_rejected"), error
        assert error["message"].startswith("TF Serving: ") and "\n" not in error["message"]
        assert "node" not in error["message"] and "[[" not in error["message"] and "{{" not in error["message"]
    finally:
        raw.close()


@pytest.mark.parametrize("suffix", [".tsv", ".jsonl"])
def test_predict_files_mark_empty_texts_and_go_on(tmp_path, suffix):
    """`textclf predict`: a row empty after cleaning is an error row of its own, not a failed run."""
    from serving.gateway.batch_predict import predict_file

    client = fake_app(FakeUpstream()).test_client()

    def classify_fn(texts: Sequence[str]) -> list[dict[str, Any]]:
        return classify(client, {"model": "news", "texts": list(texts)})["results"]

    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "足球 比赛"}\n{"text": "<b></b>"}\n{"text": "手机"}\n', encoding="utf-8")
    out = tmp_path / f"out{suffix}"
    counts = predict_file(source, out, classify_fn, batch_size=8)
    assert counts == {"rows": 3, "classified": 2, "errors": 1}
    lines = out.read_text(encoding="utf-8").splitlines()
    if suffix == ".tsv":
        assert lines[2] == "<b></b>\t\t\tempty_text" and lines[1].startswith("足球 比赛\t体育\t")
    else:
        assert '"label": null' in lines[1] and '"empty_text"' in lines[1] and '"体育"' in lines[0]
