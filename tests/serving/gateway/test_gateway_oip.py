"""Open Inference Protocol health and metadata (oip.py) against the REAL local model server (REST and
gRPC), and against a TF Serving that is not there."""

from __future__ import annotations

import json

import pytest

from bench.processes import free_port
from tests.support.openapi_check import check_response
from tests.support.tiny_models import LABELS

pytestmark = pytest.mark.slow  # starts `textclf model-server`


def get(client, openapi, path: str, template: str | None = None, **kwargs):
    answer = client.get(path, **kwargs)
    check_response(openapi, template or path, "get", answer.status_code, answer.get_json())
    return answer


@pytest.fixture
def openapi(make_client):
    return make_client().get("/openapi.json").get_json()


def test_live_and_ready_beside_healthz_and_readyz(make_client, openapi, upstream_kwargs):
    client = make_client(**upstream_kwargs)
    assert get(client, openapi, "/v2/health/live").get_json() == {"live": True}
    assert get(client, openapi, "/v2/health/ready").get_json() == {"ready": True}
    assert client.get("/readyz").status_code == 200 and client.get("/healthz").status_code == 200
    template = "/v2/models/{name}/ready"
    for name in ("news", "chars"):
        assert get(client, openapi, f"/v2/models/{name}/ready", template).get_json() == {"name": name, "ready": True}


def test_unknown_model_is_a_404_whether_or_not_the_gateway_lists_its_models(make_client, openapi):
    for client in (make_client(), make_client(models=())):
        for path, template in (("/v2/models/nope/ready", "/v2/models/{name}/ready"), ("/v2/models/nope", None)):
            answer = get(client, openapi, path, template or "/v2/models/{name}")
            assert answer.status_code == 404, answer.get_json()
            assert answer.get_json()["error"]["code"] == "model_not_found"
    assert make_client(models=()).get("/v2/health/ready").get_json() == {"ready": True}  # TF Serving answers


def test_metadata_names_versions_input_kind_and_labels(make_client, openapi, upstream_kwargs):
    routes = json.dumps({"news": {"stable": 90, "canary": 10}})
    client = make_client(routes=routes, **upstream_kwargs)
    news = get(client, openapi, "/v2/models/news", "/v2/models/{name}").get_json()
    assert news["name"] == "news" and news["versions"] == ["1", "2"] and news["version"] == 2
    assert news["input_kind"] == "tokens" and news["labels"] == LABELS
    assert news["inputs"] == [{"name": "tokens", "datatype": "BYTES", "shape": [-1]}]
    assert "probabilities" in [tensor["name"] for tensor in news["outputs"]]
    assert news["version_labels"] == {"stable": 1, "canary": 2}
    assert news["routes"] == {"stable": 0.9, "canary": 0.1}
    chars = get(client, openapi, "/v2/models/chars", "/v2/models/{name}").get_json()
    assert chars["versions"] == ["1"] and chars["input_kind"] == "text"
    assert chars["labels"] is None  # chars exports no class_names
    assert chars["version_labels"] == {} and chars["routes"] == {}


def test_probes_are_public_and_metadata_needs_the_key(make_client):
    client = make_client(api_keys=("s3cret",))
    for path in ("/v2/health/live", "/v2/health/ready", "/v2/models/news/ready"):
        assert client.get(path).status_code == 200, path
    keyed = client.get("/openapi.json").get_json()  # the document of this app: 401 is documented with keys on
    assert get(client, keyed, "/v2/models/news", "/v2/models/{name}").status_code == 401
    assert client.get("/v2/models/news", headers={"X-API-Key": "s3cret"}).status_code == 200


def test_not_ready_when_tf_serving_is_not_there(make_client, openapi):
    client = make_client(tfserving_rest=f"http://127.0.0.1:{free_port()}", retries=0)
    assert get(client, openapi, "/v2/health/live").status_code == 200
    ready = get(client, openapi, "/v2/health/ready")
    assert (ready.status_code, ready.get_json()) == (503, {"ready": False})
    model = get(client, openapi, "/v2/models/news/ready", "/v2/models/{name}/ready")
    assert (model.status_code, model.get_json()) == (503, {"name": "news", "ready": False})
