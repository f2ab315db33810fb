"""Issue 13 item 5 against the real server: broken, empty and repaired versions while requests flow.

TF Serving's availability-preserving policy keeps the serving version until a newer aspired one is
AVAILABLE, shows a failed version in status with its error and retries its load, so a folder fixed in place
recovers. Two client threads (REST and gRPC) predict without pause the whole time: not one may fail.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import grpc
import numpy as np
import pytest
import requests
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from bench.processes import wait_until
from serving.model_server.tensor_proto import from_ndarray, to_ndarray
from tests.support.half_plus_two import export_half_plus_two
from tests.support.servers import ModelServer

pytestmark = pytest.mark.slow


class LoadLoop:
    """Predicts y = 0.5 * 1 + 2 over REST and gRPC until stopped; records every answer that is not 2.5."""

    def __init__(self, server: ModelServer) -> None:
        self.server = server
        self.stop = threading.Event()
        self.calls = 0
        self.lock = threading.Lock()
        self.failures: list[str] = []
        self.threads = [threading.Thread(target=self._rest), threading.Thread(target=self._grpc)]

    def _record(self, ok: bool, what: str) -> None:
        with self.lock:
            self.calls += 1
            if not ok:
                self.failures.append(what)

    def _rest(self) -> None:
        with requests.Session() as session:
            while not self.stop.is_set():
                answer = session.post(f"{self.server.rest_url}/v1/models/half:predict", json={"instances": [1.0]})
                self._record(answer.status_code == 200 and answer.json() == {"predictions": [2.5]}, answer.text)

    def _grpc(self) -> None:
        with grpc.insecure_channel(self.server.grpc_target) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "half"
            request.inputs["x"].CopyFrom(from_ndarray(np.array([1.0], np.float32)))
            while not self.stop.is_set():
                try:
                    y = to_ndarray(stub.Predict(request, timeout=30).outputs["y"]).tolist()
                    self._record(y == [2.5], str(y))
                except grpc.RpcError as exc:
                    self._record(False, f"{exc.code()}: {exc.details()}")

    def __enter__(self) -> LoadLoop:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)


def status(server: ModelServer) -> dict[int, tuple[str, str]]:
    """version -> (state, error_code) from the REST status API."""
    answer = requests.get(f"{server.rest_url}/v1/models/half", timeout=5).json()
    return {int(v["version"]): (v["state"], v["status"]["error_code"]) for v in answer["model_version_status"]}


def test_broken_empty_and_repaired_versions_never_fail_a_request(tmp_path: Path):
    base = tmp_path / "half"
    export_half_plus_two(base, "1", warmup=False)
    good = tmp_path / "good"
    shutil.copytree(base / "1", good)
    flags = [
        "--model_name=half",
        f"--model_base_path={base}",
        "--file_system_poll_wait_seconds=1",
        "--max_num_load_retries=1000",  # keeps retrying until the test repairs the folder
        "--load_retry_interval_micros=200000",
    ]
    with ModelServer(flags, tmp_path / "server.log", models=["half"]) as server, LoadLoop(server) as load:
        (base / "2").mkdir()  # `mkdir MODEL_BASE/half/2` before copying a model in: TF Serving retries it
        wait_until(lambda: status(server).get(2) == ("LOADING", "NOT_FOUND"), timeout_s=60, what="v2 failing")
        assert status(server)[1] == ("AVAILABLE", "OK")

        shutil.copytree(good, tmp_path / "half-written")  # a half-written copy moved into place
        pb = (good / "saved_model.pb").read_bytes()
        (tmp_path / "half-written" / "saved_model.pb").write_bytes(pb[: len(pb) // 2])
        (tmp_path / "half-written").rename(base / "3")
        wait_until(lambda: status(server).get(3, ("", "OK"))[1] != "OK", timeout_s=60, what="v3 failing")
        states = status(server)
        assert states[1] == ("AVAILABLE", "OK") and states[2][0] == "END"  # v2 is no longer aspired

        (base / "3" / "saved_model.pb").write_bytes(pb)  # repaired in place
        wait_until(lambda: status(server).get(1, ("",))[0] == "END", timeout_s=60, what="v3 taking over")
        assert status(server)[3] == ("AVAILABLE", "OK")
    assert load.calls > 0 and load.failures == []
