"""Client deadlines (deadline.py): X-Request-Timeout-Ms or the body's `timeout_ms` cap the time a classify
request spends, TF Serving calls and retries included; past it the answer is 504 `upstream_timeout`.

The slow upstreams (tests/support/gated_upstream.py) never answer within the gateway's own upstream
timeout, which is set far above the client's budget and above the test client's own timeout: only the
client's deadline can end those requests, so no assertion is on wall time.
"""

from __future__ import annotations

import concurrent.futures
import time

import pytest
import requests

from serving.gateway.app import create_app
from serving.gateway.config import GatewayConfig
from serving.gateway.deadline import HEADER, Deadline, applied
from serving.gateway.errors import UpstreamError
from serving.gateway.openapi import OPENAPI
from serving.gateway.resilience import CLOSED, CircuitBreaker, GuardedUpstream
from tests.support.fake_upstream import FakeUpstream, fake_app
from tests.support.gated_upstream import GatedUpstream, HangingTfServing, serving
from tests.support.openapi_check import check_response

MODELS = ("news", "chars")
BODY = {"model": "news", "texts": ["我喜欢看足球"]}
SLOW_S = 600.0  # the gateway's own TF Serving timeout in these tests: far beyond the test client's


def fake_client(fake: FakeUpstream, **overrides: object):
    return fake_app(fake, models=MODELS, **overrides).test_client()


def classify(client, *, headers=None, **body):
    answer = client.post("/v1/classify", json={**BODY, **body}, headers=headers or {})
    check_response(OPENAPI, "/v1/classify", "post", answer.status_code, answer.get_json())
    return answer


@pytest.mark.parametrize("where", ["header", "body"])
def test_a_hanging_tf_serving_call_ends_at_the_clients_deadline(where):
    """The real RestUpstream against a TF Serving that hangs: the socket timeout is cut to the budget."""
    hanging = HangingTfServing()
    with serving(hanging) as tfserving:
        config = GatewayConfig(tfserving_rest=tfserving, models=("news",), upstream_timeout_s=SLOW_S)
        with serving(create_app(config)) as gateway_url:
            try:
                headers = {HEADER: "300"} if where == "header" else {}
                body = {**BODY, "timeout_ms": 300} if where == "body" else BODY
                # the test client gives up long before the gateway's own 600 s timeout would
                answer = requests.post(f"{gateway_url}/v1/classify", json=body, headers=headers, timeout=60)
                assert answer.status_code == 504, answer.text
                assert answer.json()["error"]["code"] == "upstream_timeout"
                assert hanging.predicts == 1  # a timeout is not retried
                # a cut call is the client's doing, not an outage: the breaker stays closed
                assert requests.get(f"{gateway_url}/readyz", timeout=60).json()["circuit_breaker"] == CLOSED
            finally:
                hanging.release.set()


def test_retries_stop_once_the_budget_is_spent():
    fake = FakeUpstream()
    fake.fail("predict", "unavailable", times=50)
    # backoffs 50, 100, 200, 400 ms ...: within 300 ms no more than 3 attempts fit, of the 51 allowed
    client = fake_client(fake, retries=50, retry_backoff_s=0.05, coalesce_max_texts=0)
    answer = classify(client, headers={HEADER: "300"})
    assert answer.status_code == 504
    assert answer.get_json()["error"]["code"] == "upstream_timeout"
    attempts = sum(1 for call in fake.calls if call[0] == "predict")
    assert 1 <= attempts <= 3


def test_without_a_deadline_every_retry_runs():
    """The control for the test above: the same outage without a deadline is retried to the end."""
    fake = FakeUpstream()
    fake.fail("predict", "unavailable", times=50)
    client = fake_client(fake, retries=3, retry_backoff_s=0.001, coalesce_max_texts=0)
    answer = classify(client)
    assert answer.get_json()["error"]["code"] == "upstream_unavailable"
    assert sum(1 for call in fake.calls if call[0] == "predict") == 4


def test_a_spent_deadline_starts_no_call_and_leaves_the_breaker_alone():
    fake = FakeUpstream()
    breaker = CircuitBreaker(1, 60.0)
    guarded = GuardedUpstream(fake, breaker, retries=2, backoff_s=0.01)
    with applied(Deadline(budget_ms=5, expires_at=time.monotonic() - 1)), pytest.raises(UpstreamError) as error:
        guarded.predict("news", 1, "tokens", ["足球"], ["label"])
    assert error.value.kind == "timeout" and "deadline" in error.value.message
    assert fake.calls == []
    assert breaker.state == CLOSED  # one failure would have opened it
    guarded.predict("news", 1, "tokens", ["足球"], ["label"])  # and outside the deadline all is normal
    assert len(fake.calls) == 1


def test_a_queued_request_stops_waiting_at_its_own_deadline():
    """Coalescing: a request queued behind a slow TF Serving call gives up at its deadline, while the
    request ahead of it (no deadline) is answered once TF Serving is."""
    gate = GatedUpstream(FakeUpstream())
    config = GatewayConfig(
        tfserving_rest="http://tfserving.invalid:8501", models=MODELS, coalesce_in_flight=1, upstream_timeout_s=SLOW_S
    )
    with serving(create_app(config, upstream=gate)) as url:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            ahead = pool.submit(requests.post, f"{url}/v1/classify", json=BODY, timeout=60)
            try:
                for _ in range(6000):  # wait until the first call is held at the gate
                    if gate.waiting:
                        break
                    time.sleep(0.01)
                assert gate.waiting == 1
                queued = requests.post(f"{url}/v1/classify", json=BODY, headers={HEADER: "200"}, timeout=60)
            finally:
                gate.open()
            assert queued.status_code == 504 and queued.json()["error"]["code"] == "upstream_timeout"
            assert ahead.result().status_code == 200


@pytest.mark.parametrize("value", ["abc", "0", "-5", "1.5", "", "3600001", "1e3"])
def test_a_malformed_header_is_400_invalid_timeout(value):
    fake = FakeUpstream()
    answer = classify(fake_client(fake), headers={HEADER: value})
    assert answer.status_code == 400
    assert answer.get_json()["error"]["code"] == "invalid_timeout"
    assert fake.calls == []


@pytest.mark.parametrize("value", ["100", 0, -1, 1.5, True, 3_600_001])
def test_a_bad_timeout_ms_field_is_422_invalid_request(value):
    fake = FakeUpstream()
    answer = classify(fake_client(fake), timeout_ms=value)
    assert answer.status_code == 422
    assert answer.get_json()["error"]["code"] == "invalid_request"
    assert "timeout_ms" in answer.get_json()["error"]["message"]


def test_the_tighter_of_header_and_field_holds():
    fake = FakeUpstream()
    fake.fail("predict", "unavailable", times=50)
    client = fake_client(fake, retries=50, retry_backoff_s=0.05, coalesce_max_texts=0)
    answer = classify(client, headers={HEADER: "3600000"}, timeout_ms=300)
    assert answer.get_json()["error"]["code"] == "upstream_timeout"
    assert "300 ms" in answer.get_json()["error"]["message"]


def test_a_generous_deadline_succeeds_against_the_real_model_server(make_client, upstream_kwargs):
    client = make_client(**upstream_kwargs)
    answer = classify(client, headers={HEADER: "30000"}, texts=["我喜欢看足球", "银行股票大涨"], timeout_ms=60000)
    assert answer.status_code == 200, answer.get_json()
    assert [r["label"] for r in answer.get_json()["results"]] == ["体育", "财经"]
