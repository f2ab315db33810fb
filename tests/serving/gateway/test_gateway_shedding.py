"""Load shedding (TEXTCLF_MAX_IN_FLIGHT, admission.py), tested as Triton tests its queue limits: a slow
upstream, K requests allowed, more concurrent clients than K. Exactly the excess is answered 503
`overloaded` with Retry-After, the rest succeed, nothing else fails, and the gateway serves normally after.

The gateway runs under a real threaded server (werkzeug, a thread per request as gunicorn's gthread);
the upstream is the real REST or gRPC client to the real local model server, or the in-process fake,
behind a gate (tests/support/gated_upstream.py) that holds predict calls until the test opens it.
"""

from __future__ import annotations

import concurrent.futures

import pytest
import requests

from data_prep.errors import UserError
from serving.gateway.admission import RETRY_AFTER_S, Admission
from serving.gateway.app import create_app
from serving.gateway.assembly import build_upstream
from serving.gateway.config import GatewayConfig
from serving.gateway.errors import ApiError
from serving.gateway.openapi import OPENAPI
from tests.support.fake_upstream import FakeUpstream
from tests.support.gated_upstream import GatedUpstream, serving
from tests.support.openapi_check import check_response

MODELS = ("news", "chars")
ALLOWED = 3
CLIENTS = 8
BODY = {"model": "news", "texts": ["我喜欢看足球"]}


def post(url: str) -> requests.Response:
    return requests.post(f"{url}/v1/classify", json=BODY, timeout=60)


@pytest.fixture(params=["fake", "rest", "grpc"])
def settings(request: pytest.FixtureRequest) -> dict[str, object]:
    """Where the gated upstream points: the in-process fake, or the real model server over REST or gRPC."""
    if request.param == "fake":
        return {"tfserving_rest": "http://tfserving.invalid:8501", "upstream": FakeUpstream()}
    server = request.getfixturevalue("model_server")
    if request.param == "rest":
        return {"tfserving_rest": server.rest_url}
    return {"tfserving_grpc": server.grpc_target}


def test_the_excess_over_max_in_flight_is_shed_and_the_rest_served(settings):
    upstream = settings.pop("upstream", None)
    config = GatewayConfig(models=MODELS, max_in_flight=ALLOWED, **settings)
    gate = GatedUpstream(upstream if upstream is not None else build_upstream(config))
    app = create_app(config, upstream=gate)
    with serving(app) as url, concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(post, url) for _ in range(CLIENTS)]
        # the admitted requests are held at the gate, so whatever answers first was shed
        first: list[requests.Response] = []
        try:
            for future in concurrent.futures.as_completed(futures, timeout=60):
                first.append(future.result())
                if len(first) == CLIENTS - ALLOWED:
                    break
        finally:
            gate.open()
        answers = [future.result() for future in futures]

        assert len(first) == CLIENTS - ALLOWED
        for answer in first:
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"]["code"] == "overloaded"
            assert answer.headers["Retry-After"] == str(RETRY_AFTER_S)
            check_response(OPENAPI, "/v1/classify", "post", 503, answer.json())
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [200] * ALLOWED + [503] * (CLIENTS - ALLOWED)
        for answer in answers:
            if answer.status_code == 200:
                assert answer.json()["results"][0]["label"] == "体育"

        metrics = requests.get(f"{url}/metrics", timeout=30).text
        assert f"textclf_gateway_shed_requests_total {float(CLIENTS - ALLOWED)}" in metrics
        # and afterwards the worker serves normally: every slot came back
        for _ in range(CLIENTS):
            again = post(url)
            assert again.status_code == 200, again.text
            assert again.json()["results"][0]["label"] == "体育"
        assert gate.waiting == 0
    gate.close()


def test_without_a_limit_nothing_is_shed():
    gate = GatedUpstream(FakeUpstream())
    app = create_app(GatewayConfig(tfserving_rest="http://tfserving.invalid:8501", models=MODELS), upstream=gate)
    with serving(app) as url, concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(post, url) for _ in range(CLIENTS)]
        gate.open()
        assert [future.result().status_code for future in futures] == [200] * CLIENTS


def test_admission_slots_come_back_and_count_the_shed():
    shed: list[int] = []
    admission = Admission(2, on_shed=lambda: shed.append(1))
    with admission.slot(), admission.slot():
        with pytest.raises(ApiError) as error, admission.slot():
            pass
        assert error.value.code == "overloaded" and error.value.status == 503
        assert error.value.headers == {"Retry-After": str(RETRY_AFTER_S)}
    with admission.slot(), admission.slot():  # both slots came back, also after the shed one
        pass
    with pytest.raises(RuntimeError), admission.slot():  # a failing request gives its slot back too
        raise RuntimeError("boom")
    with admission.slot(), admission.slot():
        pass
    assert len(shed) == 1


def test_max_in_flight_setting():
    env = {"TEXTCLF_TFSERVING_REST": "http://tfserving:8501", "TEXTCLF_MAX_IN_FLIGHT": "16"}
    assert GatewayConfig.from_env(env).max_in_flight == 16
    assert GatewayConfig.from_env(env, max_in_flight=4).max_in_flight == 4
    assert GatewayConfig(tfserving_rest="http://tfserving:8501").max_in_flight == 0  # off by default
    with pytest.raises(UserError, match="max_in_flight"):
        GatewayConfig(tfserving_rest="http://tfserving:8501", max_in_flight=-1)
