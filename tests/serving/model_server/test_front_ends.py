"""REST and gRPC front ends in process: path parsing, FillModelSpec and the order of lookups and body checks,
against a repository that serves no model (nothing here needs a loaded version; test_model_server.py runs a
real one)."""

from __future__ import annotations

import grpc
import pytest
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from bench.processes import free_port
from serving.model_server.dataplane import DataPlane
from serving.model_server.errors import ServingError
from serving.model_server.grpc_service import make_grpc_server
from serving.model_server.inference import Inference
from serving.model_server.monitoring import Metrics
from serving.model_server.repository import ModelRepository
from serving.model_server.rest import RestApi, Route, fill_model_spec, parse_route
from serving.model_server.servable import Servable


def no_loads(name: str, version: int, path: object) -> Servable:
    raise AssertionError("nothing is loaded in these tests")


@pytest.fixture
def plane() -> DataPlane:
    return DataPlane(ModelRepository(no_loads), Inference(Metrics()))


@pytest.mark.parametrize(
    "method, path, route",
    [
        ("POST", "/v1/models/m:predict", Route("predict", "m")),
        ("POST", "/V1/Models/m/versions/007:Classify", Route("classify", "m", "007")),
        ("POST", "/v1/models/n%C3%A9/labels/my%20label:regress", Route("regress", "né", None, "my label")),
        ("GET", "/v1/models/n%C3%A9/labels/my%20label/metadata", Route("metadata", "né", None, "my label")),
        ("GET", "/v1/models/m/versions/3", Route("status", "m", "3")),
    ],
)
def test_parse_route(method, path, route):
    assert parse_route(method, path) == route


@pytest.mark.parametrize(
    "method, path",
    [
        ("POST", "/v1/models/m/versions/\u0661\u0662:predict"),  # Arabic-Indic digits: RE2's \d is ASCII only
        ("GET", "/v1/models/m/versions/\uff11"),  # a full-width digit
        ("POST", "/v1/models/m/versions/:predict"),
        ("PUT", "/v1/models/m:predict"),
    ],
)
def test_paths_tf_serving_does_not_match_are_malformed(method, path):
    with pytest.raises(ServingError) as failed:
        parse_route(method, path)
    assert (failed.value.http_status, failed.value.message) == (400, f"Malformed request: {method} {path}")


def test_a_version_beyond_int64_is_a_bad_request():
    big = "99999999999999999999"
    with pytest.raises(ServingError) as failed:
        fill_model_spec(Route("predict", "m", big))
    assert (failed.value.http_status, failed.value.message) == (400, f"Failed to convert version: {big} to numeric.")
    assert fill_model_spec(Route("predict", "m", str(2**63 - 1))).version.value == 2**63 - 1


@pytest.mark.parametrize(
    "method, path, body, status, error",
    [
        (
            "POST",
            "/v1/models/m/versions/99999999999999999999:predict",
            b'{"instances": [1.0]}',
            400,
            "Failed to convert version: 99999999999999999999 to numeric.",
        ),
        ("GET", "/v1/models/m/versions/99999999999999999999", b"", 400, "Failed to convert version: "),
        (
            "POST",
            "/v1/models/n%C3%A9:predict",
            b'{"instances": [1.0]}',
            404,
            "Servable not found for request: Latest(né)",
        ),
        (
            "POST",
            "/v1/models/m/labels/my%20label:predict",
            b'{"instances": [1.0]}',
            400,
            "Unrecognized servable version label: my label",
        ),
        # predict reads the body's tensors against the signature, so the model lookup comes first ...
        ("POST", "/v1/models/nope:predict", b'{"instances": "not a list"}', 404, "Servable not found for request"),
        # ... while classify/regress fill their request from JSON before the lookup (FillClassificationRequestFromJson)
        ("POST", "/v1/models/nope:classify", b'{"examples": 5}', 400, "examples"),
        ("POST", "/v1/models/nope:regress", b'{"examples": 5}', 400, "examples"),
        ("POST", "/v1/models/nope:classify", b'{"examples": [{"x": 1.0}]}', 404, "Servable not found for request"),
    ],
)
def test_rest_errors_in_process(plane, method, path, body, status, error):
    answer, text, _, _ = RestApi(plane, timeout_ms=0).handle(method, path, body)
    assert (answer, error in text) == (status, True), text
    assert "Traceback" not in text


def test_grpc_predict_looks_up_the_model_before_reading_its_tensors(plane):
    port = free_port()
    server = make_grpc_server(
        plane,
        lambda config, time_left: None,
        host="127.0.0.1",
        port=port,
        socket_path="",
        channel_arguments="",
        max_threads=2,
    )
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "nope"
            malformed = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_content=b"\0" * 5)  # 5 bytes: no float
            malformed.tensor_shape.dim.add(size=3)
            request.inputs["x"].CopyFrom(malformed)
            with pytest.raises(grpc.RpcError) as failed:
                prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=10)
    finally:
        server.stop(None)
    assert (failed.value.code(), failed.value.details()) == (
        grpc.StatusCode.NOT_FOUND,
        "Servable not found for request: Latest(nope)",
    )
