"""Fixtures for the local model server: tiny SavedModels exported here, and the server as a real subprocess."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

TEXTCLF = Path(sys.executable).with_name("textclf")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def export_half_plus_two(base: Path, version: str, warmup: bool = True) -> Path:
    """MODEL_BASE/NAME/<version>: `serving_default` y = 0.5x + 2 (float32 [batch]) and `echo` on tf.string,
    with a one-record warm-up file; written under a '.' temp name then renamed, as Contract 2 publishes."""
    import tensorflow as tf
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    class HalfPlusTwo(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def predict(self, x):
            return {"y": 0.5 * x + 2.0}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def echo(self, text):
            return {"upper": tf.strings.upper(text), "length": tf.strings.length(text, unit="UTF8_CHAR")}

    module = HalfPlusTwo()
    tmp, final = base / f".{version}.tmp", base / version
    tf.saved_model.save(module, str(tmp), signatures={"serving_default": module.predict, "echo": module.echo})
    if warmup:
        (tmp / "assets.extra").mkdir()
        request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(signature_name="serving_default"))
        request.inputs["x"].CopyFrom(tf.make_tensor_proto([1.0, 2.0], dtype=tf.float32))
        entry = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
        with tf.io.TFRecordWriter(str(tmp / "assets.extra" / "tf_serving_warmup_requests")) as writer:
            writer.write(entry.SerializeToString())
    tmp.rename(final)
    return final


class ServerProcess:
    """`textclf model-server` on free loopback ports; `stop()` always kills it."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        self.grpc_port, self.rest_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.rest_port}"
        self.log_path = log_path
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [str(TEXTCLF), "model-server", f"--port={self.grpc_port}", "--rest_api_port", str(self.rest_port), *args],
            stdout=self._log, stderr=subprocess.STDOUT, env=env)

    def wait_ready(self, model: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"model server exited {self.proc.returncode}:\n{self.log()}")
            try:
                if requests.get(f"{self.url}/v1/models/{model}", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"model server not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@pytest.fixture(scope="module")
def start_server(tmp_path_factory):
    """Factory: start a server with the given flags and wait for `model`; every one is killed at teardown."""
    started: list[ServerProcess] = []

    def start(args: list[str], model: str) -> ServerProcess:
        server = ServerProcess(args, tmp_path_factory.mktemp("log") / "server.log")
        started.append(server)
        server.wait_ready(model)
        return server

    yield start
    for server in started:
        server.stop()
