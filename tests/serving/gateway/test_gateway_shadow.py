"""Shadow traffic (serving/gateway/shadow.py): a sampled copy of classify requests goes to another version or
model in the background, never delaying or failing the caller.

In process with tests/support/fake_upstream.py's FakeUpstream (news: version 2 = label canary leans to 财经)
for the sender's logic, and once against the REAL local model server over REST and gRPC. Tests wait for
the shadow worker with the sender's public `join(timeout)`, never with sleeps.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from data_prep.errors import UserError
from serving.gateway.classifier import Classification
from serving.gateway.config import GatewayConfig
from serving.gateway.context import gateway
from serving.gateway.errors import UpstreamError
from serving.gateway.shadow import ShadowMetrics, ShadowSender, ShadowTarget, parse_shadow
from tests.support.cli import textclf
from tests.support.fake_upstream import FakeUpstream, fake_app
from tests.support.openapi_check import check_response

CANARY = json.dumps({"news": {"version_label": "canary", "sample": 1.0}})
# "我 喜欢 看 足球" and "银行 股票 大涨": both versions agree; no known word: stable says 体育 (first of a tie),
# the canary 财经
AGREE_TEXTS = ["我喜欢看足球", "银行股票大涨"]
DISAGREE_TEXTS = ["今天天气不错"]


class BlockingUpstream(FakeUpstream):
    """FakeUpstream whose predict calls to one version wait for `release` (and say they started in `entered`),
    or fail with `error` when it is set: a slow or broken shadow target."""

    def __init__(self, blocked_version: int = 2) -> None:
        super().__init__()
        self.blocked_version = blocked_version
        self.entered = threading.Event()
        self.release = threading.Event()
        self.error: UpstreamError | None = None
        self.blocked_calls = 0

    def predict(
        self, model: str, version: int, input_name: str, values: Sequence[str], outputs: Sequence[str]
    ) -> dict[str, list[Any]]:
        if version == self.blocked_version:
            self.blocked_calls += 1
            if self.error is not None:
                raise self.error
            self.entered.set()
            assert self.release.wait(30), "the test never released the shadow"
        return super().predict(model, version, input_name, values, outputs)


@pytest.fixture
def upstream() -> Iterator[BlockingUpstream]:
    fake = BlockingUpstream()
    fake.release.set()  # tests that want a slow shadow clear it
    yield fake
    fake.release.set()


@pytest.fixture
def make_app(upstream) -> Iterator:
    apps = []

    def make(**overrides: object):
        app = fake_app(upstream, **overrides)
        apps.append(app)
        return app

    yield make
    upstream.release.set()
    for app in apps:
        if gateway(app).shadow is not None:
            gateway(app).shadow.close(timeout=30)


def classify(app, **body: Any):
    client = app.test_client()
    answer = client.post("/v1/classify", json=body)
    openapi = client.get("/openapi.json").get_json()
    check_response(openapi, "/v1/classify", "post", answer.status_code, answer.get_json())
    return answer


def metric(app, name: str, **labels: str) -> float:
    return gateway(app).metrics.registry.get_sample_value(name, labels) or 0.0


def shadow_predicts(upstream: FakeUpstream) -> list[tuple]:
    return [call[1:] for call in upstream.calls if call[0] == "predict" and call[2] == 2]


# --- configuration ---------------------------------------------------------------------------------------


def test_targets_parse_from_json_a_file_and_the_environment(tmp_path):
    assert parse_shadow("") == {}
    assert parse_shadow(CANARY) == {"news": ShadowTarget(version_label="canary", sample=1.0)}
    path = tmp_path / "shadow.json"
    path.write_text(json.dumps({"news": {"version": 2, "sample": 0.2}, "chars": {"model": "news"}}))
    assert parse_shadow(str(path), ("news", "chars")) == {
        "news": ShadowTarget(version=2, sample=0.2),
        "chars": ShadowTarget(model="news", sample=1.0),
    }
    config = GatewayConfig.from_env({"TEXTCLF_TFSERVING_REST": "http://x:1", "TEXTCLF_SHADOW": CANARY})
    assert config.shadow == CANARY and config.shadow_queue_size == 64
    assert GatewayConfig.from_env({"TEXTCLF_TFSERVING_REST": "http://x:1"}, shadow_queue_size=3).shadow_queue_size == 3


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("{not json", "not valid JSON"),
        ("/no/such/shadow.json", "neither a JSON object nor an existing file"),
        ('["news"]', "expected an object of model -> target"),
        ('{"news": "canary"}', "expected an object"),
        ('{"news": {"label": "canary"}}', "unknown keys ['label']"),
        ('{"news": {"version": 2, "version_label": "canary"}}', "not both"),
        ('{"news": {"version": 0}}', "version must be an integer >= 1"),
        ('{"news": {"version": "2"}}', "version must be an integer >= 1"),
        ('{"news": {"version_label": ""}}', "version_label must be a non-empty string"),
        ('{"news": {"sample": 0.5}}', "name the shadow with"),
        ('{"news": {"model": "news"}}', "the shadow is the primary itself"),
        ('{"news": {"version": 2, "sample": 1.5}}', "sample must be a number from 0 to 1"),
        ('{"news": {"version": 2, "sample": true}}', "sample must be a number from 0 to 1"),
        ('{"sport": {"version": 2}}', "models ['sport'] are not served here"),
    ],
)
def test_a_bad_setting_fails_at_start_up_in_one_line(raw, says):
    with pytest.raises(UserError) as caught:
        GatewayConfig(tfserving_rest="http://x:1", models=("news", "chars"), shadow=raw)
    message = str(caught.value)
    assert says in message and "\n" not in message and message.startswith("TEXTCLF_SHADOW / --shadow: ")


def test_queue_size_must_be_positive():
    with pytest.raises(UserError, match="shadow_queue_size must be >= 1"):
        GatewayConfig(tfserving_rest="http://x:1", shadow=CANARY, shadow_queue_size=0)


def test_serve_flag_reports_a_bad_shadow_in_one_line():
    result = textclf("serve", "--tfserving-rest", "http://x:1", "--shadow", '{"news": {"v": 2}}', timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: TEXTCLF_SHADOW / --shadow: model 'news': unknown keys ['v']; allowed: "
        "['model', 'version', 'version_label', 'sample']"
    ]


# --- in process, FakeUpstream ---------------------------------------------------------------------------


def test_without_a_setting_there_is_no_shadow(make_app, upstream):
    app = make_app()
    assert gateway(app).shadow is None
    assert classify(app, model="news", texts=AGREE_TEXTS, version_label="stable").status_code == 200
    assert [call[1:3] for call in upstream.calls if call[0] == "predict"] == [("news", 1)]


def test_sample_one_shadows_every_request_and_counts_agreement(make_app, upstream):
    app = make_app(shadow=CANARY)
    for _ in range(3):
        answer = classify(app, model="news", texts=AGREE_TEXTS + DISAGREE_TEXTS, version_label="stable")
        assert answer.status_code == 200 and answer.get_json()["version"] == 1
        assert [r["label"] for r in answer.get_json()["results"]] == ["体育", "财经", "体育"]
    assert classify(app, model="chars", texts=["机"]).status_code == 200  # no shadow configured for chars
    assert gateway(app).shadow.join(timeout=30)
    assert len(shadow_predicts(upstream)) == 3
    primary = [call[1:] for call in upstream.calls if call[0] == "predict" and call[1:3] == ("news", 1)]
    assert {call[3] for call in shadow_predicts(upstream)} == {primary[0][3]}  # the same preprocessing
    assert primary[0][3] == ("我 喜欢 看 足球", "银行 股票 大涨", "今天天气 不错")
    assert metric(app, "textclf_gateway_shadow_requests_total", model="news") == 3
    assert metric(app, "textclf_gateway_shadow_agreements_total", model="news", agree="true") == 6
    assert metric(app, "textclf_gateway_shadow_agreements_total", model="news", agree="false") == 3
    assert metric(app, "textclf_gateway_shadow_score_difference_count", model="news") == 9
    assert metric(app, "textclf_gateway_shadow_score_difference_sum", model="news") > 0
    assert metric(app, "textclf_gateway_shadow_drops_total", model="news") == 0
    assert metric(app, "textclf_gateway_shadow_requests_total", model="chars") == 0
    text = app.test_client().get("/metrics").get_data(as_text=True)
    assert 'textclf_gateway_shadow_agreements_total{agree="false",model="news"} 3.0' in text


def test_a_slow_shadow_never_delays_the_caller(make_app, upstream):
    app = make_app(shadow=CANARY)
    upstream.release.clear()
    answer = classify(app, model="news", texts=AGREE_TEXTS, version_label="stable")
    assert answer.status_code == 200 and answer.get_json()["version"] == 1
    assert upstream.entered.wait(30)  # the shadow call has started ...
    assert not gateway(app).shadow.join(timeout=0)  # ... and is still blocked, after the caller had its answer
    assert metric(app, "textclf_gateway_shadow_agreements_total", model="news", agree="true") == 0
    upstream.release.set()
    assert gateway(app).shadow.join(timeout=30)
    assert metric(app, "textclf_gateway_shadow_agreements_total", model="news", agree="true") == 2


def test_a_full_queue_drops_and_counts_the_copy(make_app, upstream):
    app = make_app(shadow=CANARY, shadow_queue_size=1)
    upstream.release.clear()
    assert classify(app, model="news", texts=AGREE_TEXTS, version_label="stable").status_code == 200
    assert upstream.entered.wait(30)  # the worker holds copy 1; the queue is empty again
    for _ in range(3):  # copy 2 fills the queue; copies 3 and 4 find it full
        assert classify(app, model="news", texts=AGREE_TEXTS, version_label="stable").status_code == 200
    assert metric(app, "textclf_gateway_shadow_drops_total", model="news") == 2
    upstream.release.set()
    assert gateway(app).shadow.join(timeout=30)
    assert metric(app, "textclf_gateway_shadow_requests_total", model="news") == 2
    assert len(shadow_predicts(upstream)) == 2


def test_a_failing_shadow_never_fails_the_caller_nor_opens_its_circuit(make_app, upstream):
    app = make_app(shadow=CANARY, breaker_failures=2)
    upstream.error = UpstreamError("unavailable", "canary is down")
    for _ in range(4):
        answer = classify(app, model="news", texts=AGREE_TEXTS, version_label="stable")
        assert answer.status_code == 200 and answer.get_json()["version"] == 1
        assert gateway(app).shadow.join(timeout=30)
    assert metric(app, "textclf_gateway_shadow_requests_total", model="news") == 4
    assert metric(app, "textclf_gateway_shadow_errors_total", model="news", code="upstream_unavailable") == 4
    assert gateway(app).breaker.state == "closed"  # the shadow bypasses the primary's breaker ...
    assert upstream.blocked_calls == 4  # ... and its retries: one attempt per copy
    assert classify(app, model="news", texts=AGREE_TEXTS, version_label="stable").status_code == 200


def test_an_unknown_shadow_version_is_an_error_metric_only(make_app, upstream):
    app = make_app(shadow=json.dumps({"news": {"version": 9}}))
    assert classify(app, model="news", texts=AGREE_TEXTS, version_label="stable").status_code == 200
    assert gateway(app).shadow.join(timeout=30)
    assert metric(app, "textclf_gateway_shadow_errors_total", model="news", code="model_not_found") == 1


def test_shadow_to_another_model_uses_its_input_kind(make_app, upstream):
    app = make_app(shadow=json.dumps({"news": {"model": "chars"}}))
    assert classify(app, model="news", texts=["我喜欢看足球"], version_label="stable").status_code == 200
    assert gateway(app).shadow.join(timeout=30)
    chars_calls = [call[1:] for call in upstream.calls if call[0] == "predict" and call[1] == "chars"]
    assert chars_calls == [("chars", 1, "text", ("我喜欢看足球",), ("probabilities", "label"))]
    assert metric(app, "textclf_gateway_shadow_agreements_total", model="news", agree="true") == 1


def test_a_failed_primary_is_not_shadowed(make_app, upstream):
    app = make_app(shadow=CANARY)
    upstream.fail("predict", "invalid_argument")
    assert classify(app, model="news", texts=AGREE_TEXTS, version_label="stable").status_code == 422
    assert gateway(app).shadow.join(timeout=30)
    assert metric(app, "textclf_gateway_shadow_requests_total", model="news") == 0


def test_sampling_takes_the_share_the_setting_names(make_app):
    classifier = gateway(make_app()).classifier
    draws = iter([0.05, 0.5, 0.19, 0.2, 0.99])
    registry = CollectorRegistry()
    metrics = ShadowMetrics(registry)
    sender = ShadowSender(
        classifier, {"news": ShadowTarget(version=2, sample=0.2)}, metrics, queue_size=8, sample=lambda: next(draws)
    )
    primary = Classification("news", 1, [{"label": "体育", "score": 0.8, "top_k": []}])
    try:
        for _ in range(5):
            sender.offer("news", ["足球"], primary)
        assert sender.join(timeout=30)
    finally:
        sender.close(timeout=30)
    assert registry.get_sample_value("textclf_gateway_shadow_requests_total", {"model": "news"}) == 2


# --- the real local model server ------------------------------------------------------------------------


@pytest.mark.slow
def test_canary_shadow_against_the_real_model_server(make_client, upstream_kwargs):
    client = make_client(**upstream_kwargs, shadow=CANARY)
    app = client.application
    try:
        answer = client.post(
            "/v1/classify", json={"model": "news", "texts": AGREE_TEXTS + DISAGREE_TEXTS, "version_label": "stable"}
        )
        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json()["version"] == 1
        assert [r["label"] for r in answer.get_json()["results"]] == ["体育", "财经", "体育"]
        assert gateway(app).shadow.join(timeout=30)
        assert metric(app, "textclf_gateway_shadow_requests_total", model="news") == 1
        assert metric(app, "textclf_gateway_shadow_agreements_total", model="news", agree="true") == 2
        assert metric(app, "textclf_gateway_shadow_agreements_total", model="news", agree="false") == 1
        assert metric(app, "textclf_gateway_shadow_score_difference_count", model="news") == 3
        assert metric(app, "textclf_gateway_shadow_errors_total", model="news", code="upstream_unavailable") == 0
    finally:
        gateway(app).shadow.close(timeout=30)
