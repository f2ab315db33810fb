"""Every kind of SavedModel TF Serving serves — TF1 graphs from `tf.compat.v1`, a TF2 tf.Module, a Keras 3 export,
a MirroredStrategy model — served by the real local model server, all from one model config file and one of them
singly, and asked over REST and gRPC what TF Serving's REST guide and apis/*.proto promise: answers, metadata,
status, and error codes with TF Serving's (and TensorFlow's) words."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    input_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from bench.processes import REPO, child_env
from tests.support.servers import ModelServer
from tests.support.tf_serving_models import KERAS_INPUT

pytestmark = pytest.mark.slow

MODELS = ("tf1_half_plus_two", "tf1_half_plus_three", "tf2_module", "keras", "mirrored")
TF1_SIGNATURES = {
    "serving_default": "tensorflow/serving/predict",
    "classify_x_to_y": "tensorflow/serving/classify",
    "regress_x_to_y": "tensorflow/serving/regress",
    "classify_classes": "tensorflow/serving/classify",
    "lookup": "tensorflow/serving/predict",
    "double_int64": "tensorflow/serving/predict",
    "matmul": "tensorflow/serving/predict",
}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once, in a fresh interpreter (MirroredStrategy's two logical CPUs must be set before TF starts)."""
    out = tmp_path_factory.mktemp("kinds") / "models"
    subprocess.run(
        [sys.executable, "-m", "tests.support.tf_serving_models", str(out)],
        check=True,
        cwd=REPO,
        env=child_env(),
        capture_output=True,
        timeout=300,
    )
    return out


@pytest.fixture(scope="module")
def server(models: Path) -> Iterator[ModelServer]:
    config = models.parent / "models.config"
    entries = "".join(
        f'config {{ name: "{name}" base_path: "{models / name}" model_platform: "tensorflow" }}\n' for name in MODELS
    )
    config.write_text(f"model_config_list {{\n{entries}}}\n")
    with ModelServer([f"--model_config_file={config}"], models.parent / "server.log", models=MODELS) as running:
        yield running


@pytest.fixture(scope="module")
def stubs(server: ModelServer):
    channel = grpc.insecure_channel(server.grpc_target)
    yield prediction_service_pb2_grpc.PredictionServiceStub(channel), model_service_pb2_grpc.ModelServiceStub(channel)
    channel.close()


def post(server: ModelServer, path: str, body: dict) -> tuple[int, dict]:
    answer = requests.post(f"{server.rest_url}/v1/models/{path}", json=body, timeout=30)
    return answer.status_code, answer.json()


def examples(*values: float) -> input_pb2.Input:
    model_input = input_pb2.Input()
    for value in values:
        model_input.example_list.examples.add().features.feature["x"].float_list.value.append(value)
    return model_input


def grpc_error(call, request) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as failed:
        call(request, timeout=30)
    return failed.value.code(), failed.value.details()


# ---- answers --------------------------------------------------------------------------------------------------
def test_tf1_predict_leaves_shapes_to_the_graph(server, stubs):
    """x is declared [-1, 1]; TF Serving feeds what it is given and the graph decides."""
    assert post(server, "tf1_half_plus_two:predict", {"inputs": [2.0, 3.0, 4.0]}) == (200, {"outputs": [3.0, 3.5, 4.0]})
    assert post(server, "tf1_half_plus_two:predict", {"instances": [1.0, 2.0]}) == (200, {"predictions": [2.5, 3.0]})
    assert post(server, "tf1_half_plus_two:predict", {"instances": [[2.0], [3.0]]}) == (
        200,
        {"predictions": [[3.0], [3.5]]},
    )
    assert post(server, "tf1_half_plus_three:predict", {"instances": [2.0]}) == (200, {"predictions": [4.0]})

    predict, _ = stubs
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "tf1_half_plus_two"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([2.0, 3.0, 4.0], np.float32)))
    response = predict.Predict(request, timeout=30)
    assert list(response.outputs["y"].float_val) == [3.0, 3.5, 4.0]
    assert (response.model_spec.signature_name, response.model_spec.version.value) == ("serving_default", 1)


def test_tf1_assets_strings_and_int64(server):
    lookup = {"signature_name": "lookup", "instances": ["dog", "fish", "unknown"]}
    assert post(server, "tf1_half_plus_two:predict", lookup) == (200, {"predictions": [2, -1, 0]})
    doubled = {"signature_name": "double_int64", "inputs": {"n": [2, 2**40]}}
    assert post(server, "tf1_half_plus_two:predict", doubled) == (200, {"outputs": [4, 2**41]})


def test_classify_and_regress_run_parse_example_signatures(server, stubs):
    rows = {"signature_name": "classify_x_to_y", "examples": [{"x": 2.0}, {"x": 3.0}]}
    assert post(server, "tf1_half_plus_two:classify", rows) == (200, {"results": [[["", 3.0]], [["", 3.5]]]})
    rows["signature_name"] = "regress_x_to_y"
    assert post(server, "tf1_half_plus_two:regress", rows) == (200, {"results": [3.0, 3.5]})
    assert post(server, "tf1_half_plus_three:regress", rows) == (200, {"results": [4.0, 4.5]})
    with_context = {"signature_name": "regress_x_to_y", "context": {"x": 4.0}, "examples": [{}, {}]}
    assert post(server, "tf1_half_plus_two:regress", with_context) == (200, {"results": [4.0, 4.0]})
    both = {"signature_name": "classify_classes", "examples": [{"x": 2.0}]}
    assert post(server, "tf1_half_plus_two:classify", both) == (200, {"results": [[["low", -3.0], ["high", 3.0]]]})

    predict, _ = stubs
    classify = classification_pb2.ClassificationRequest(input=examples(2.0))
    classify.model_spec.name, classify.model_spec.signature_name = "tf1_half_plus_two", "classify_classes"
    answer = predict.Classify(classify, timeout=30)
    assert [(c.label, c.score) for c in answer.result.classifications[0].classes] == [("low", -3.0), ("high", 3.0)]
    regress = regression_pb2.RegressionRequest(input=examples(2.0, 4.0))
    regress.model_spec.name, regress.model_spec.signature_name = "tf1_half_plus_two", "regress_x_to_y"
    assert [r.value for r in predict.Regress(regress, timeout=30).result.regressions] == [3.0, 4.0]

    multi = inference_pb2.MultiInferenceRequest(input=examples(2.0))
    for signature, method in (("classify_x_to_y", "classify"), ("regress_x_to_y", "regress")):
        task = multi.tasks.add(method_name=f"tensorflow/serving/{method}")
        task.model_spec.name, task.model_spec.signature_name = "tf1_half_plus_two", signature
    results = predict.MultiInference(multi, timeout=30).results
    assert results[0].classification_result.classifications[0].classes[0].score == 3.0
    assert results[1].regression_result.regressions[0].value == 3.0
    assert [r.model_spec.signature_name for r in results] == ["classify_x_to_y", "regress_x_to_y"]


def test_tf2_module_signatures_share_one_variable(server):
    assert post(server, "tf2_module:predict", {"instances": [2.0]}) == (200, {"predictions": [6.0]})
    mixed = {"signature_name": "mixed", "instances": [{"n": 2, "s": "ab"}, {"n": 3, "s": "中"}]}
    assert post(server, "tf2_module:predict", mixed) == (
        200,
        {"predictions": [{"n_times_2": 4, "s_upper": "AB"}, {"n_times_2": 6, "s_upper": "中"}]},
    )
    # predict-method signatures shaped for classify/regress serve those APIs (the method check is off by default)
    rows = {"signature_name": "regress", "examples": [{"x": 2.0}, {"x": 3.0}]}
    assert post(server, "tf2_module:regress", rows) == (200, {"results": [6.0, 9.0]})
    rows["signature_name"] = "classify"
    assert post(server, "tf2_module:classify", rows) == (
        200,
        {"results": [[["pos", 6.0], ["neg", -6.0]], [["pos", 9.0], ["neg", -9.0]]]},
    )


@pytest.mark.parametrize("model, answer", [("keras", [[4.0], [8.0]]), ("mirrored", [[5.0], [9.0]])])
def test_keras_exports(server, model, answer):
    body = {"instances": [[1.0, 2.0], [3.0, 4.0]]}
    assert post(server, f"{model}:predict", body) == (200, {"predictions": answer})
    columnar = {"inputs": {KERAS_INPUT: [[1.0, 2.0]]}}
    assert post(server, f"{model}:predict", columnar) == (200, {"outputs": answer[:1]})


# ---- metadata and status ------------------------------------------------------------------------------------------
def test_metadata_reports_every_signature_def(server, stubs):
    answer = requests.get(f"{server.rest_url}/v1/models/tf1_half_plus_two/metadata", timeout=30).json()
    signatures = answer["metadata"]["signature_def"]["signature_def"]
    assert {name: s["method_name"] for name, s in signatures.items()} == TF1_SIGNATURES
    assert signatures["serving_default"]["inputs"]["x"] == {
        "dtype": "DT_FLOAT",
        "tensor_shape": {"dim": [{"size": "-1", "name": ""}, {"size": "1", "name": ""}], "unknown_rank": False},
        "name": "x:0",
    }
    assert signatures["classify_x_to_y"]["inputs"]["inputs"]["tensor_shape"] == {"dim": [], "unknown_rank": True}
    assert signatures["lookup"]["outputs"]["ids"]["dtype"] == "DT_INT64"

    predict, models = stubs
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "keras"
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    predict.GetModelMetadata(request, timeout=30).metadata["signature_def"].Unpack(signature_map)
    assert set(signature_map.signature_def) == {"serving_default", "serve", "__saved_model_init_op"}
    for name in MODELS:
        status = models.GetModelStatus(get_model_status_pb2.GetModelStatusRequest(model_spec={"name": name}))
        assert [(s.version, s.state, s.status.error_code) for s in status.model_version_status] == [(1, 30, 0)]


# ---- errors ---------------------------------------------------------------------------------------------------
def test_input_checks_name_and_dtype_not_shape(stubs):
    predict, _ = stubs
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "tf1_half_plus_two"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([1.0], np.float32)))
    request.inputs["z"].CopyFrom(tf.make_tensor_proto(np.array([1.0], np.float32)))
    assert grpc_error(predict.Predict, request) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "input size does not match signature: 2!=1 len({x,z}) != len({x}). Sent extra: {z}. Missing but required: {}.",
    )
    del request.inputs["x"]
    assert grpc_error(predict.Predict, request) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "Signature input alias: x(feed name: x:0) not found in request and no default value provided. "
        "Inputs expected to be in the request {z}, or default input alias set: ",
    )
    del request.inputs["z"]
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([1.0], np.float64)))
    assert grpc_error(predict.Predict, request) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "Expects arg[0] to be float but double is provided",
    )
    request.model_spec.signature_name = "nope"
    assert grpc_error(predict.Predict, request) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        'Serving signature key "nope" not found.',
    )


def test_a_shape_the_graph_refuses_is_invalid_argument_with_tensorflows_message(server, stubs):
    status, body = post(server, "tf1_half_plus_two:predict", {"signature_name": "matmul", "inputs": [1.0, 2.0]})
    assert status == 400 and body["error"].startswith("In[0] ndims must be >= 2"), body
    predict, _ = stubs
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = "tf1_half_plus_two", "matmul"
    request.inputs["m"].CopyFrom(tf.make_tensor_proto(np.array([1.0, 2.0], np.float32)))
    code, details = grpc_error(predict.Predict, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("In[0] ndims must be >= 2")


def test_classify_and_regress_refuse_signatures_that_do_not_fit(server, stubs):
    status, body = post(server, "tf1_half_plus_two:classify", {"examples": [{"x": 1.0}]})
    assert status == 400 and body["error"].startswith(
        'No classification inputs found in SignatureDef: inputs {\n  key: "x"'
    )
    status, body = post(server, "tf1_half_plus_two:regress", {"signature_name": "classify_classes", "examples": [{}]})
    assert (status, body) == (400, {"error": "Expected one output Tensor."})
    status, body = post(server, "tf1_half_plus_two:regress", {"signature_name": "nope", "examples": [{}]})
    assert (status, body) == (400, {"error": "No signature was found with the name: nope"})

    predict, _ = stubs
    empty = regression_pb2.RegressionRequest()
    empty.model_spec.name, empty.model_spec.signature_name = "tf1_half_plus_two", "regress_x_to_y"
    assert grpc_error(predict.Regress, empty) == (grpc.StatusCode.INVALID_ARGUMENT, "Input is empty.")
    multi = inference_pb2.MultiInferenceRequest(input=examples(1.0))
    multi.tasks.add(method_name="tensorflow/serving/predict").model_spec.name = "tf1_half_plus_two"
    assert grpc_error(predict.MultiInference, multi) == (
        grpc.StatusCode.UNIMPLEMENTED,
        "Unsupported signature method_name: tensorflow/serving/predict",
    )


def test_a_model_served_singly_by_name(models, tmp_path):
    """Also with --enable_signature_method_name_check, which the shared server leaves off as TF Serving does."""
    flags = [
        "--model_name=tf1_half_plus_three",
        f"--model_base_path={models / 'tf1_half_plus_three'}",
        "--enable_signature_method_name_check=true",
    ]
    with ModelServer(flags, tmp_path / "single.log", models=["tf1_half_plus_three"]) as single:
        assert post(single, "tf1_half_plus_three:predict", {"inputs": [2.0, 3.0, 4.0]}) == (
            200,
            {"outputs": [4.0, 4.5, 5.0]},
        )
        rows = {"signature_name": "classify_x_to_y", "examples": [{"x": 1.0}]}
        assert post(single, "tf1_half_plus_three:classify", rows) == (200, {"results": [[["", 3.5]]]})
        wrong_method = {"signature_name": "classify_classes", "examples": [{"x": 1.0}]}
        assert post(single, "tf1_half_plus_three:regress", wrong_method) == (
            400,
            {
                "error": "Expected regression signature method_name to be tensorflow/serving/regress. "
                "Was: tensorflow/serving/classify"
            },
        )
