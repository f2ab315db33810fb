"""The local model server as clients see it: REST JSON and the official gRPC stubs against a real process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from tests.support.half_plus_two import export_half_plus_two
from tests.support.servers import ModelServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def half_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("models") / "half"
    base.mkdir()
    export_half_plus_two(base, "00000001")  # leading zeros: version 1
    (base / ".2.tmp").mkdir()  # half-written versions are not versions
    (base / "notes").mkdir()
    return base


@pytest.fixture(scope="module")
def server(half_base: Path) -> Iterator[ModelServer]:
    monitoring = half_base.parent / "monitoring.config"
    monitoring.write_text('prometheus_config { enable: true, path: "/metrics/tf" }')
    flags = [
        "--model_name=half",
        f"--model_base_path={half_base}",
        "--file_system_poll_wait_seconds=1",
        f"--monitoring_config_file={monitoring}",
        "--enable_profiler=false",
    ]
    with ModelServer(flags, half_base.parent / "server.log", models=["half"]) as server:
        yield server


@pytest.fixture(scope="module")
def stubs(server):
    channel = grpc.insecure_channel(server.grpc_target)
    yield prediction_service_pb2_grpc.PredictionServiceStub(channel), model_service_pb2_grpc.ModelServiceStub(channel)
    channel.close()


def test_status_reports_leading_zero_version_as_available(server):
    body = requests.get(f"{server.rest_url}/v1/models/half").json()
    assert body == {
        "model_version_status": [
            {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }
    assert requests.get(f"{server.rest_url}/v1/models/half/versions/1").status_code == 200


def test_metadata_renders_signature_defs_as_proto_json(server):
    body = requests.get(f"{server.rest_url}/v1/models/half/metadata").json()
    assert body["model_spec"] == {"name": "half", "version": "1", "signature_name": ""}
    signatures = body["metadata"]["signature_def"]["signature_def"]
    assert signatures["serving_default"]["inputs"]["x"]["dtype"] == "DT_FLOAT"
    assert signatures["serving_default"]["method_name"] == "tensorflow/serving/predict"
    assert signatures["echo"]["inputs"]["text"]["dtype"] == "DT_STRING"


def test_predict_row_and_columnar(server):
    row = requests.post(f"{server.rest_url}/v1/models/half:predict", json={"instances": [1.0, 2.0, 5]})
    assert row.status_code == 200 and row.json() == {"predictions": [2.5, 3.0, 4.5]}
    assert "3.0" in row.text  # whole floats keep their ".0", as TF Serving writes them
    col = requests.post(f"{server.rest_url}/v1/models/half/versions/1:predict", json={"inputs": {"x": [0.0, -4.0]}})
    assert col.json() == {"outputs": [2.0, 0.0]}


def test_predict_strings_and_multiple_outputs(server):
    body = {"signature_name": "echo", "instances": ["ab", "中文", {"b64": "eHk="}]}
    rows = requests.post(f"{server.rest_url}/v1/models/half:predict", json=body).json()
    assert rows == {
        "predictions": [{"length": 2, "upper": "AB"}, {"length": 2, "upper": "中文"}, {"length": 2, "upper": "XY"}]
    }
    cols = requests.post(
        f"{server.rest_url}/v1/models/half:predict", json={"signature_name": "echo", "inputs": ["ab"]}
    ).json()
    assert cols == {"outputs": {"length": [2], "upper": ["AB"]}}


@pytest.mark.parametrize(
    "path, payload, status, message",
    [
        ("/v1/models/nope:predict", b'{"instances": [1.0]}', 404, "Servable not found for request: Latest(nope)"),
        (
            "/v1/models/half/versions/7:predict",
            b'{"instances": [1.0]}',
            404,
            "Servable not found for request: Specific(half, 7)",
        ),
        ("/v1/models/half:predict", b'{"instances": [1.0,', 400, "JSON Parse error"),
        ("/v1/models/half:predict", b"", 400, "JSON Parse error: The document is empty"),
        ("/v1/models/half:predict", b'{"instances": ["a"]}', 400, "is not of expected type: float"),
        ("/v1/models/half:predict", b'{"inputs": {"y": [1.0]}}', 400, "Missing named input: x in 'inputs' object."),
        ("/v1/models/half:predict", b'{"values": [1.0]}', 400, "Missing 'inputs' or 'instances' key"),
        (
            "/v1/models/half/labels/stable:predict",
            b'{"instances": [1.0]}',
            400,
            "Unrecognized servable version label: stable",
        ),
    ],
)
def test_rest_errors(server, path, payload, status, message):
    answer = requests.post(f"{server.rest_url}{path}", data=payload)
    assert answer.status_code == status
    assert message in answer.json()["error"]


def test_grpc_predict_with_output_filter(stubs):
    predict, _ = stubs
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "half"
    request.model_spec.signature_name = "echo"
    request.inputs["text"].CopyFrom(tf.make_tensor_proto([b"hi", "好".encode()]))
    request.output_filter.append("length")
    response = predict.Predict(request, timeout=20)
    assert list(response.outputs) == ["length"]
    assert list(tf.make_ndarray(response.outputs["length"])) == [2, 1]
    assert response.model_spec.version.value == 1 and response.model_spec.signature_name == "echo"

    plain = predict_pb2.PredictRequest()
    plain.model_spec.name = "half"
    plain.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([4.0], np.float32)))
    assert list(predict.Predict(plain, timeout=20).outputs["y"].float_val) == [4.0]


def test_grpc_errors(stubs):
    predict, models = stubs
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "nope"
    with pytest.raises(grpc.RpcError) as missing:
        predict.Predict(request, timeout=20)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert missing.value.details() == "Servable not found for request: Latest(nope)"

    request.model_spec.name = "half"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto([1.0], dtype=tf.float64))
    with pytest.raises(grpc.RpcError) as wrong_type:
        predict.Predict(request, timeout=20)
    assert wrong_type.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Expects arg[0] to be float but double is provided" in wrong_type.value.details()

    malformed = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_content=b"\0" * 5)  # 5 bytes: no float
    malformed.tensor_shape.dim.add(size=3)
    request.inputs["x"].CopyFrom(malformed)
    with pytest.raises(grpc.RpcError) as unreadable:
        predict.Predict(request, timeout=20)
    assert unreadable.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert unreadable.value.details() == "tensor parsing error: x"  # GetInputValues' words

    status_request = get_model_status_pb2.GetModelStatusRequest()
    status_request.model_spec.name = "nope"
    with pytest.raises(grpc.RpcError) as no_status:
        models.GetModelStatus(status_request, timeout=20)
    assert no_status.value.code() == grpc.StatusCode.NOT_FOUND


def test_grpc_metadata_and_status(stubs):
    predict, models = stubs
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "half"
    response = predict.GetModelMetadata(request, timeout=20)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)
    assert {"serving_default", "echo"} <= set(signatures.signature_def)  # TF Serving lists __saved_model_init_op too
    status = models.GetModelStatus(get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "half"}), timeout=20)
    assert [(s.version, s.state) for s in status.model_version_status] == [(1, 30)]  # 30 = AVAILABLE


def test_the_helper_refuses_to_start_a_running_server_again(server):
    assert server.grpc_port != server.rest_port
    with pytest.raises(RuntimeError, match="already running"):
        server.start()


def test_prometheus_metrics_at_configured_path(server):
    text = requests.get(f"{server.rest_url}/metrics/tf").text
    assert "# TYPE :tensorflow:serving:request_count counter" in text
    assert ':tensorflow:serving:request_count{model_name="half",status="OK"}' in text
    assert ":tensorflow:serving:request_latency_bucket" in text


def test_new_version_is_picked_up_and_old_one_unloaded(server, half_base):
    """Runs last in this module: it changes what the shared server serves."""
    export_half_plus_two(half_base, "2")
    deadline = time.monotonic() + 60
    states = []
    while time.monotonic() < deadline:
        states = requests.get(f"{server.rest_url}/v1/models/half").json()["model_version_status"]
        if [(s["version"], s["state"]) for s in states] == [("2", "AVAILABLE"), ("1", "END")]:
            break
        # requests keep being answered throughout the swap
        assert requests.post(f"{server.rest_url}/v1/models/half:predict", json={"instances": [2.0]}).status_code == 200
        time.sleep(0.2)
    assert [(s["version"], s["state"]) for s in states] == [("2", "AVAILABLE"), ("1", "END")]
    answer = requests.post(f"{server.rest_url}/v1/models/half:predict", json={"instances": [2.0]})
    assert answer.json() == {"predictions": [3.0]}
    old = requests.post(f"{server.rest_url}/v1/models/half/versions/1:predict", json={"instances": [2.0]})
    assert old.status_code == 404
