"""TF Serving dies: the gateway answers 503 JSON, opens its circuit (fails fast), reports not ready, and
recovers by itself when TF Serving is back. Uses the shared model server and restarts it."""

from __future__ import annotations

import time

import pytest

from serving.gateway.context import gateway

pytestmark = pytest.mark.slow

BODY = {"model": "news", "texts": ["看足球"]}


def wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


def test_circuit_breaker_over_rest_and_grpc(make_client, model_server):
    limits = dict(breaker_failures=2, breaker_reset_s=1.0, retries=1, retry_backoff_s=0.01, upstream_timeout_s=3.0)
    clients = [make_client(**limits), make_client(tfserving_grpc=model_server.grpc_target, **limits)]
    for client in clients:
        assert client.post("/v1/classify", json=BODY).status_code == 200

    model_server.kill()  # TF Serving vanishes without a goodbye
    try:
        for client in clients:
            codes = []
            for _ in range(3):
                answer = client.post("/v1/classify", json=BODY)
                assert answer.status_code == 503
                codes.append(answer.get_json()["error"]["code"])
            # two outages (each after one retry) open the circuit; the third call never reaches upstream
            assert codes == ["upstream_unavailable", "upstream_unavailable", "circuit_open"]
            ready = client.get("/readyz")
            assert ready.status_code == 503 and ready.get_json()["ready"] is False
            assert "textclf_gateway_circuit_breaker_state 2.0" in client.get("/metrics").get_data(as_text=True)
            assert client.get("/healthz").status_code == 200  # alive, just not ready
    finally:
        model_server.start()  # same ports; later tests find it running again

    for client in clients:
        wait_for(lambda client=client: client.post("/v1/classify", json=BODY).status_code == 200)
        assert gateway(client.application).breaker.state == "closed"
        assert client.get("/readyz").status_code == 200
        assert "textclf_gateway_circuit_breaker_state 0.0" in client.get("/metrics").get_data(as_text=True)
