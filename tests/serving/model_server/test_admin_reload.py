"""Issue 13 item 8 against the real server: config reloads that cannot hang it.

Eight concurrent HandleReloadConfigRequest naming a base path with no versions once took every gRPC thread
(TF Serving waits for a version without bound); now each ends with a status, Predict keeps answering, and
SIGTERM stops the server cleanly while a reload still waits.
"""

from __future__ import annotations

import concurrent.futures
import shutil
from pathlib import Path

import grpc
import numpy as np
import pytest
import requests
from tensorflow_serving.apis import (
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from bench.processes import wait_until
from serving.model_server.tensor_proto import from_ndarray, to_ndarray
from tests.support.half_plus_two import export_half_plus_two
from tests.support.servers import ModelServer

pytestmark = pytest.mark.slow


def reload_request(*models: tuple[str, Path]) -> model_management_pb2.ReloadConfigRequest:
    request = model_management_pb2.ReloadConfigRequest()
    for name, base in models:
        request.config.model_config_list.config.add(name=name, base_path=str(base), model_platform="tensorflow")
    return request


def reload_code(channel: grpc.Channel, request: model_management_pb2.ReloadConfigRequest) -> grpc.StatusCode:
    try:
        model_service_pb2_grpc.ModelServiceStub(channel).HandleReloadConfigRequest(request, timeout=120)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def predict(channel: grpc.Channel) -> list[float]:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "half"
    request.inputs["x"].CopyFrom(from_ndarray(np.array([1.0, 2.0], np.float32)))
    response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=30)
    return to_ndarray(response.outputs["y"]).tolist()


def test_concurrent_reloads_of_an_empty_base_path_neither_block_predict_nor_shutdown(tmp_path):
    half = tmp_path / "half"
    export_half_plus_two(half, "1", warmup=False)
    shutil.copytree(half, tmp_path / "half2")
    flags = [
        "--model_name=half",
        f"--model_base_path={half}",
        "--allow_reload_config=true",
        "--reload_config_timeout_seconds=3",
        "--grpc_max_threads=4",
    ]
    server = ModelServer(flags, tmp_path / "server.log", models=["half"])
    with server, grpc.insecure_channel(server.grpc_target) as channel:
        assert reload_code(channel, reload_request(("half", half), ("half2", tmp_path / "half2"))) == grpc.StatusCode.OK
        assert server.version_states("half2") == {1: "AVAILABLE"}

        empty = reload_request(("half", half), ("half2", tmp_path / "half2"), ("empty", tmp_path / "empty"))
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            reloads = [pool.submit(reload_code, channel, empty) for _ in range(8)]
            answers = [predict(channel) for _ in range(5)]  # while the reloads are in flight
            codes = [future.result() for future in reloads]
        assert answers == [[2.5, 3.0]] * 5
        assert set(codes) <= {grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED}
        assert grpc.StatusCode.DEADLINE_EXCEEDED in codes  # one ran and was bounded, the others were refused
        assert predict(channel) == [2.5, 3.0]
        assert requests.post(f"{server.rest_url}/v1/models/half:predict", json={"instances": [1.0]}).ok

        process = server.proc
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pending = pool.submit(reload_code, channel, reload_request(("later", tmp_path / "later")))
            wait_until(lambda: str(tmp_path / "later") in server.log_text(), timeout_s=60, what="the reload waiting")
            server.stop()  # SIGTERM while that reload waits; past the grace period it would be SIGKILL (-9)
            assert pending.result() != grpc.StatusCode.OK
    assert process is not None and process.returncode == 0
    assert "Traceback" not in (tmp_path / "server.log").read_text()
