"""--prefer_tflite_model=true on the real local model server: a version holding model.tflite is answered by
tf.lite.Interpreter (REST row and columnar, gRPC, metadata from its signature, concurrent requests over the
interpreter pool) exactly as its SavedModel answers; a version without one is still a SavedModel. As in TF
Serving, the signature comes from the file's `signature_defs_metadata` (the export writes it); a file without it
(the bare converter's) is served under TF Serving's generated signature, keyed by tensor names.

The TF Lite model here is builtin-only (a whole-text lookup table), because this TensorFlow's tf.lite.Interpreter
has no Flex delegate to run Select TF ops (tests/tfmodels/test_export_tflite.py covers the LSTM's case).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import pytest
import requests
from tensorflow.core.protobuf import meta_graph_pb2

from serving.contract import CLASS_NAMES, LABEL, PROBABILITIES, SIGNATURE, TFLITE_FILE, TOKENS_INPUT, TOP_SCORE
from serving.model_server.errors import ServingError
from serving.model_server.signature import Signature
from serving.model_server.tflite_session import TfLiteSession
from tests.support import tiny_models
from tests.support.lookup_model import build_lookup_model, converter_output
from tests.support.servers import ModelServer

TEXTS = ["足球", "手机", "股票", "没有的词", "银行"]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tfmodels.tflite import convert

    root = tmp_path_factory.mktemp("tflite-models")
    lite = root / "lite" / "1"
    build_lookup_model(lite)
    (lite / TFLITE_FILE).write_bytes(convert(lite, None, [], TOKENS_INPUT))  # as `textclf export --tflite`
    legacy = root / "legacy" / "1"
    legacy.mkdir(parents=True)
    (legacy / TFLITE_FILE).write_bytes(converter_output(lite))  # no saved_model.pb: TF Lite is all it serves
    tiny_models.build(root / "plain" / "1", TOKENS_INPUT)  # tf.strings.split: a SavedModel only
    return root


@pytest.fixture(scope="module")
def expected(base: Path) -> dict[str, np.ndarray]:
    import tensorflow as tf

    signature = tf.saved_model.load(str(base / "lite" / "1")).signatures[SIGNATURE]
    return {k: v.numpy() for k, v in signature(**{TOKENS_INPUT: tf.constant(TEXTS)}).items()}


@pytest.fixture(scope="module")
def server(base: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelServer]:
    config = tmp_path_factory.mktemp("config") / "models.config"
    config.write_text(
        "model_config_list {\n"
        + "".join(
            f'  config {{ name: "{n}" base_path: "{base / n}" model_platform: "tensorflow" }}\n'
            for n in ("lite", "legacy", "plain")
        )
        + "}\n"
    )
    flags = [f"--model_config_file={config}", "--prefer_tflite_model=true", "--num_tflite_pools=2"]
    with ModelServer(flags, config.parent / "model-server.log", models=("lite", "legacy", "plain")) as running:
        yield running


def server_path_hint(model: str) -> str:
    return f"{model} version 1 from model.tflite"


def check(outputs: dict[str, list], expected: dict[str, np.ndarray]) -> None:
    assert outputs[LABEL] == [v.decode() for v in expected[LABEL]]
    assert outputs[CLASS_NAMES] == [[v.decode() for v in row] for row in expected[CLASS_NAMES]]
    np.testing.assert_allclose(outputs[PROBABILITIES], expected[PROBABILITIES], atol=1e-6)
    np.testing.assert_allclose(outputs[TOP_SCORE], expected[TOP_SCORE], atol=1e-6)


def test_rest_row_and_columnar_answers_are_the_saved_models(server: ModelServer, expected: dict) -> None:
    url = f"{server.rest_url}/v1/models/lite:predict"
    columnar = requests.post(url, json={"inputs": {TOKENS_INPUT: TEXTS}}, timeout=30)
    assert columnar.status_code == 200, columnar.text
    check(columnar.json()["outputs"], expected)
    rows = requests.post(url, json={"instances": TEXTS}, timeout=30)
    assert rows.status_code == 200, rows.text
    predictions = rows.json()["predictions"]
    check({key: [row[key] for row in predictions] for key in predictions[0]}, expected)


def test_grpc_predict_is_answered_by_the_tflite_model(server: ModelServer, expected: dict) -> None:
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "lite"
    request.inputs[TOKENS_INPUT].CopyFrom(tf.make_tensor_proto([t.encode() for t in TEXTS], dtype=tf.string))
    with grpc.insecure_channel(server.grpc_target) as channel:
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=30)
    outputs = {k: tf.make_ndarray(v) for k, v in response.outputs.items()}
    assert response.model_spec.version.value == 1 and response.model_spec.signature_name == SIGNATURE
    check(
        {k: v.tolist() for k, v in outputs.items() if k in (PROBABILITIES, TOP_SCORE)}
        | {
            LABEL: [v.decode() for v in outputs[LABEL]],
            CLASS_NAMES: [[v.decode() for v in row] for row in outputs[CLASS_NAMES]],
        },
        expected,
    )


def test_metadata_comes_from_the_tflite_signature(server: ModelServer) -> None:
    assert f"Serving {server_path_hint('lite')}" in server.log_text()
    lite = requests.get(f"{server.rest_url}/v1/models/lite/metadata", timeout=30).json()
    signature = lite["metadata"]["signature_def"]["signature_def"][SIGNATURE]
    assert set(signature["inputs"]) == {TOKENS_INPUT}
    assert set(signature["outputs"]) == {PROBABILITIES, LABEL, TOP_SCORE, CLASS_NAMES}
    tokens = signature["inputs"][TOKENS_INPUT]
    assert tokens["name"] == "serving_default_tokens:0"  # the TF Lite tensor's name
    assert tokens["dtype"] == "DT_STRING" and [d["size"] for d in tokens["tensor_shape"]["dim"]] == ["-1"]
    probabilities = signature["outputs"][PROBABILITIES]
    assert probabilities["name"].startswith("StatefulPartitionedCall")
    assert probabilities["dtype"] == "DT_FLOAT" and signature["outputs"][LABEL]["dtype"] == "DT_STRING"
    # shapes from the metadata: the converter cannot tell these outputs' rank
    assert [d["size"] for d in probabilities["tensor_shape"]["dim"]] == ["-1", "3"]
    assert [d["size"] for d in signature["outputs"][LABEL]["tensor_shape"]["dim"]] == ["-1"]
    plain = requests.get(f"{server.rest_url}/v1/models/plain/metadata", timeout=30).json()
    assert "plain" == plain["model_spec"]["name"]  # no model.tflite: loaded as a SavedModel
    answer = requests.post(
        f"{server.rest_url}/v1/models/plain:predict", json={"instances": ["足球 比赛"]}, timeout=30
    ).json()
    assert answer["predictions"][0][LABEL] == "体育"


def test_concurrent_requests_share_the_interpreter_pool(server: ModelServer, expected: dict) -> None:
    url = f"{server.rest_url}/v1/models/lite:predict"

    def one(i: int) -> str:
        text = TEXTS[i % len(TEXTS)]
        return requests.post(url, json={"instances": [text]}, timeout=30).json()["predictions"][0][LABEL]

    with ThreadPoolExecutor(8) as pool:
        labels = list(pool.map(one, range(40)))
    assert labels == [expected[LABEL][i % len(TEXTS)].decode() for i in range(40)]


def test_a_file_without_signature_metadata_gets_tf_servings_generated_signature(
    server: ModelServer, expected: dict
) -> None:
    """What TF Serving does with the bare converter's file: names a client of Contract 2 cannot use, and of the
    outputs StatefulPartitionedCall:0..3 only the last keeps the key StatefulPartitionedCall."""
    assert server.log_text().count("No signature def found in TFLite model. Generating one.") == 1  # legacy's
    legacy = requests.get(f"{server.rest_url}/v1/models/legacy/metadata", timeout=30).json()
    signature = legacy["metadata"]["signature_def"]["signature_def"][SIGNATURE]
    assert set(signature["inputs"]) == {"serving_default_tokens"}
    assert set(signature["outputs"]) == {"StatefulPartitionedCall"}
    output = signature["outputs"]["StatefulPartitionedCall"]
    assert output["name"] == "StatefulPartitionedCall:3" and output["dtype"] == "DT_FLOAT"
    assert output["tensor_shape"]["unknown_rank"] is True and not output["tensor_shape"]["dim"]  # not rank 0
    url = f"{server.rest_url}/v1/models/legacy:predict"
    refused = requests.post(url, json={"inputs": {TOKENS_INPUT: TEXTS}}, timeout=30)
    assert refused.status_code == 400 and "tokens" in refused.json()["error"]
    answer = requests.post(url, json={"inputs": {"serving_default_tokens": TEXTS}}, timeout=30)
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(answer.json()["outputs"], expected[TOP_SCORE], atol=1e-6)  # the top scores


def test_a_feed_of_another_rank_is_refused(server: ModelServer) -> None:
    url = f"{server.rest_url}/v1/models/lite:predict"
    answer = requests.post(url, json={"inputs": {TOKENS_INPUT: [[t] for t in TEXTS]}}, timeout=30)
    assert answer.status_code == 400, answer.text
    assert "takes rank 1, the request fed rank 2" in answer.json()["error"]


def test_signatures_sharing_tensors_and_files_that_cannot_load(base: Path, expected: dict) -> None:
    """In-process: two metadata signatures over the same StatefulPartitionedCall tensor each answer by their own
    keys; a signature naming no tensor of the model, an unreadable file and an unknown op fail the load."""
    from tfmodels.tflite import with_signature_defs

    content = (base / "lite" / "1" / TFLITE_FILE).read_bytes()
    exported = TfLiteSession(content, 1).signature_defs[SIGNATURE]
    top = meta_graph_pb2.SignatureDef(method_name=exported.method_name)
    top.inputs["text"].CopyFrom(exported.inputs[TOKENS_INPUT])
    top.outputs["score"].CopyFrom(exported.outputs[TOP_SCORE])
    session = TfLiteSession(with_signature_defs(content, {SIGNATURE: exported, "top": top}), 2)
    assert set(session.signature_defs) == {SIGNATURE, "top"}
    texts = np.array([t.encode() for t in TEXTS], dtype=object)
    scores = Signature("top", session.signature_defs["top"], session).run({"text": texts})
    full = Signature(SIGNATURE, session.signature_defs[SIGNATURE], session).run({TOKENS_INPUT: texts})
    assert set(scores) == {"score"} and set(full) == {PROBABILITIES, LABEL, TOP_SCORE, CLASS_NAMES}
    np.testing.assert_allclose(scores["score"], expected[TOP_SCORE], atol=1e-6)
    np.testing.assert_allclose(full[TOP_SCORE], expected[TOP_SCORE], atol=1e-6)

    top.outputs["score"].name = "no_such_tensor:0"
    with pytest.raises(ServingError, match="^Unknown tensor 'no_such_tensor:0'. Signature top output score") as bad:
        TfLiteSession(with_signature_defs(content, {"top": top}), 1)
    assert bad.value.code == grpc.StatusCode.INTERNAL
    with pytest.raises(ServingError, match="^Cannot build FlatBufferModel from buffer: ") as unreadable:
        TfLiteSession(content[: len(content) // 2], 1)
    assert unreadable.value.code == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(ServingError, match="^Cannot build Interpreter from buffer: .*NoSuchOp") as unresolved:
        TfLiteSession(with_unknown_op(content), 1)
    assert unresolved.value.code == grpc.StatusCode.INTERNAL


def with_unknown_op(content: bytes) -> bytes:
    """`content` with its first operator code turned into a custom op no resolver has."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    code = model.operatorCodes[0]
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
    code.customCode = "NoSuchOp"
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
