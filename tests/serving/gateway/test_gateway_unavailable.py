"""A model TF Serving knows but has no AVAILABLE version of is a 503 `model_unavailable`, not a 404.

TF Serving answers NOT_FOUND ("Servable not found for request: Latest(m)") both for a model it does not
serve and for one whose versions all failed or were unloaded; the gateway tells them apart by the model's
status. Real local model server, real gateway app, over REST and gRPC.
"""

from __future__ import annotations

import shutil

import pytest

from bench.processes import wait_until
from tests.support.servers import MODEL, model_server, publish_tiny_version, version_states

pytestmark = pytest.mark.slow  # starts `textclf model-server`


def test_no_available_version_is_503_and_an_unknown_model_stays_404(tmp_path):
    from serving.gateway.app import create_app
    from serving.gateway.config import GatewayConfig
    from serving.gateway.context import gateway

    base = tmp_path / "models" / MODEL
    publish_tiny_version(base, 1)
    with model_server(base, tmp_path) as server:
        apps = [
            create_app(GatewayConfig(models=(MODEL,), tfserving_rest=server.rest_url)),
            create_app(GatewayConfig(models=(MODEL,), tfserving_grpc=server.grpc_target)),
        ]
        open_app = create_app(GatewayConfig(tfserving_grpc=server.grpc_target))  # no model list: any name
        try:
            for app in apps:
                assert (
                    app.test_client().post("/v1/classify", json={"model": MODEL, "texts": ["足球"]}).status_code == 200
                )

            shutil.rmtree(base / "1")  # the only version goes: TF Serving unloads it, the model has none
            wait_until(lambda: version_states(server) == {1: "END"}, timeout_s=60, what="version 1 unloading")
            for app in apps:
                answer = app.test_client().post("/v1/classify", json={"model": MODEL, "texts": ["足球"]})
                assert answer.status_code == 503, answer.get_json()
                assert answer.get_json()["error"]["code"] == "model_unavailable"

            ghost = open_app.test_client().post("/v1/classify", json={"model": "ghost", "texts": ["足球"]})
            assert (ghost.status_code, ghost.get_json()["error"]["code"]) == (404, "model_not_found")
        finally:
            for app in [*apps, open_app]:
                gateway(app).upstream.close()
