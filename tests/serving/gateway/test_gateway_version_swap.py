"""The gateway's cached signature goes stale when TF Serving unloads that version: the one retry after
NOT_FOUND must prepare the texts for the NEW version's signature, which may take another input kind.

Real model server (file-system polling), real gateway app over REST and gRPC; no fakes.
"""

from __future__ import annotations

import time

import pytest

from serving.contract import TEXT_INPUT
from tests.support.servers import MODEL, model_server, publish_tiny_version, version_states

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_retry_after_unload_prepares_input_for_the_new_signature(tmp_path, protocol):
    from serving.gateway.app import create_app
    from serving.gateway.config import GatewayConfig
    from serving.gateway.context import gateway

    base = tmp_path / MODEL
    publish_tiny_version(base, 1)  # `tokens` input: jieba words
    with model_server(base, tmp_path) as server:
        upstream = (
            {"tfserving_rest": server.rest_url}
            if protocol == "rest"
            else {"tfserving_grpc": f"127.0.0.1:{server.grpc_port}"}
        )
        app = create_app(GatewayConfig(models=(MODEL,), metadata_ttl_s=600, **upstream))
        client = app.test_client()
        try:
            first = client.post("/v1/classify", json={"model": MODEL, "texts": ["我喜欢看足球"]})
            assert (first.status_code, first.get_json()["version"]) == (200, 1)

            publish_tiny_version(base, 2, input_name=TEXT_INPUT)  # `text` input: cleaned characters
            deadline = time.monotonic() + 60
            while version_states(server) != {1: "END", 2: "AVAILABLE"} and time.monotonic() < deadline:
                time.sleep(0.2)
            assert version_states(server) == {1: "END", 2: "AVAILABLE"}

            # the cache still says version 1 / `tokens`: NOT_FOUND, re-resolve, and send `text` to version 2
            second = client.post("/v1/classify", json={"model": MODEL, "texts": ["我喜欢看足球", "银行"]})
            assert second.status_code == 200, second.get_json()
            body = second.get_json()
            assert body["version"] == 2
            assert [r["label"] for r in body["results"]] == ["体育", "财经"]
        finally:
            gateway(app).upstream.close()
