"""Weighted canary with sticky routing (TEXTCLF_ROUTES, routing.py).

In process through `create_app(config, upstream=FakeUpstream())` for the split, stickiness, explicit
versions, metrics and config errors; against the REAL local model server (REST and gRPC) for labels that
TF Serving resolves.
"""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from data_prep.errors import UserError
from serving.gateway.app import create_app
from serving.gateway.config import GatewayConfig
from serving.gateway.routing import key_point
from tests.support.openapi_check import check_response

CANARY_10 = json.dumps({"news": {"stable": 90, "canary": 10}})
REQUESTS = 2000


def answered(client, key: str | None = None, **body) -> int:
    headers = {"X-Route-Key": key} if key is not None else {}
    answer = client.post("/v1/classify", json={"model": "news", "texts": ["天气"], **body}, headers=headers)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["version"]


def routed_count(client, version: int, route: str) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    labels = f'model="news",route="{route}",version="{version}"'
    pattern = r"^textclf_gateway_routed_requests_total\{" + re.escape(labels) + r"\} (\S+)$"
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def canary_share(versions: list[int]) -> float:
    counts = Counter(versions)
    assert set(counts) <= {1, 2}, counts
    return counts[2] / len(versions)


def test_keyed_split_follows_the_weights_and_every_key_stays_put(make_fake_client):
    worker_a = make_fake_client(routes=CANARY_10)
    keys = [f"user-{i}" for i in range(REQUESTS)]
    first = [answered(worker_a, key) for key in keys]
    assert abs(canary_share(first) - 0.10) <= 0.03
    assert routed_count(worker_a, 2, "canary") == first.count(2)
    assert routed_count(worker_a, 1, "stable") == first.count(1)
    # the same keys again, and through another app (another worker or replica): each lands where it did
    worker_b = make_fake_client(routes=CANARY_10)
    assert [answered(worker_a, key) for key in keys[:300]] == first[:300]
    assert [answered(worker_b, key) for key in keys[:300]] == first[:300]


def test_unkeyed_split_follows_the_weights(make_fake_client):
    client = make_fake_client(routes=json.dumps({"news": {"stable": 70, "canary": 30}}))
    versions = [answered(client) for _ in range(REQUESTS)]
    assert abs(canary_share(versions) - 0.30) <= 0.03
    assert len(set(versions)) == 2


def test_version_numbers_route_and_unrouted_models_get_latest(make_fake_client, fake):
    client = make_fake_client(routes=json.dumps({"news": {"1": 1, "2": 0}}))
    assert {answered(client, f"k{i}") for i in range(50)} == {1}
    chars = client.post("/v1/classify", json={"model": "chars", "texts": ["机"]})
    assert chars.get_json()["version"] == 1
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'textclf_gateway_routed_requests_total{model="chars",route="latest",version="1"} 1.0' in metrics
    assert routed_count(client, 1, "1") == 50


def test_explicit_version_or_label_always_wins(make_fake_client):
    client = make_fake_client(routes=json.dumps({"news": {"canary": 100}}))
    openapi = client.get("/openapi.json").get_json()
    assert answered(client, "someone") == 2
    assert answered(client, "someone", version=1) == 1
    assert answered(client, "someone", version_label="stable") == 1
    answer = client.post("/v1/classify", json={"model": "news", "texts": ["足球"], "version": 1})
    check_response(openapi, "/v1/classify", "post", answer.status_code, answer.get_json())
    assert routed_count(client, 1, "explicit") == 3
    assert routed_count(client, 2, "canary") == 1


def test_the_sticky_hash_is_a_fixed_function_of_model_and_key():
    # pinned: a change here would move users between versions on the next deploy
    points = [key_point("news", f"user-{i}") for i in range(1000)]
    assert all(0.0 <= p < 1.0 for p in points)
    assert key_point("news", "user-1") != key_point("sports", "user-1")
    assert key_point("news", "user-1") == pytest.approx(0.9182696354492718, abs=1e-12)


@pytest.mark.parametrize(
    ("routes", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"news": [90, 10]}', "must map version labels or numbers to weights"),
        ('{"news": {"stable": -1}}', "must be >= 0"),
        ('{"news": {"stable": "90"}}', "must be a number"),
        ('{"news": {"stable": 0, "canary": 0}}', "add up to 0"),
        ('{"news": {"bad label": 1}}', "neither a version number nor a version label"),
        ('{"sports": {"stable": 1}}', "is not one this gateway fronts"),
        ("/no/such/routes.json", "neither a JSON object nor an existing file"),
    ],
)
def test_a_bad_routes_config_fails_at_start_up_in_one_line(routes, message):
    with pytest.raises(UserError) as caught:
        GatewayConfig(tfserving_rest="http://tfserving:8501", models=("news", "chars"), routes=routes)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(UserError, match="routes"):
        env = {"TEXTCLF_TFSERVING_REST": "http://tfserving:8501", "TEXTCLF_MODELS": "news,chars"}
        GatewayConfig.from_env({**env, "TEXTCLF_ROUTES": routes})


def test_routes_come_from_env_or_a_file(tmp_path, make_fake_client, fake):
    path = tmp_path / "routes.json"
    path.write_text(json.dumps({"news": {"stable": 1}}))
    config = GatewayConfig.from_env({"TEXTCLF_TFSERVING_REST": "http://tfserving:8501", "TEXTCLF_ROUTES": str(path)})
    client = create_app(config, upstream=fake).test_client()
    assert answered(client, "anyone") == 1


@pytest.mark.slow
def test_labels_route_on_the_real_model_server(make_client, upstream_kwargs):
    """news has stable=1 and canary=2 on the real server: each key gets the version its hash point picks."""
    client = make_client(routes=json.dumps({"news": {"stable": 50, "canary": 50}}), **upstream_kwargs)
    keys = [f"user-{i}" for i in range(40)]
    expected = [1 if key_point("news", key) < 0.5 else 2 for key in keys]
    assert set(expected) == {1, 2}
    assert [answered(client, key) for key in keys] == expected
    assert answered(client, keys[0], version=2) == 2  # explicit wins on the real server too
    assert answered(client, keys[0], version_label="stable") == 1
