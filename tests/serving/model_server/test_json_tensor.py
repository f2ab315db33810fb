"""TF Serving's JSON tensor rules (json_tensor.cc), in process: request bodies to tensors, tensors to JSON."""

from __future__ import annotations

import numpy as np
import pytest
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2

from serving.model_server import json_tensor
from serving.model_server.errors import ServingError


def infos(**dtypes: int) -> dict[str, meta_graph_pb2.TensorInfo]:
    return {name: meta_graph_pb2.TensorInfo(dtype=dtype) for name, dtype in dtypes.items()}


FLOAT_X = infos(x=types_pb2.DT_FLOAT)


def error(call, *args: object) -> str:
    with pytest.raises(ServingError) as failed:
        call(*args)
    assert failed.value.http_status == 400
    return failed.value.message


def test_row_and_columnar_requests():
    doc = {"instances": [1.0, 2.0, 5]}
    rows = json_tensor.predict_inputs(doc, FLOAT_X, "")
    assert rows["x"].dtype == np.float32 and rows["x"].tolist() == [1.0, 2.0, 5.0]
    assert json_tensor.request_format(doc) == json_tensor.ROW
    doc = {"inputs": {"x": [[0.0], [-4.0]]}}
    assert json_tensor.predict_inputs(doc, FLOAT_X, "")["x"].shape == (2, 1)
    assert json_tensor.request_format(doc) == json_tensor.COLUMNAR


def test_row_objects_feed_several_inputs():
    named = infos(a=types_pb2.DT_INT64, s=types_pb2.DT_STRING)
    tensors = json_tensor.predict_inputs(
        {"instances": [{"a": 1, "s": "中"}, {"a": 2, "s": {"b64": "eHk="}}]}, named, ""
    )
    assert tensors["a"].tolist() == [1, 2]
    assert tensors["s"].tolist() == ["中".encode(), b"xy"]
    assert "keys must be equal to: a,s" in error(json_tensor.predict_inputs, {"instances": [{"a": 1}]}, named, "")
    assert "expecting list of objects" in error(json_tensor.predict_inputs, {"instances": [1]}, named, "")


@pytest.mark.parametrize(
    "value, dtype, message",
    [
        ("a", types_pb2.DT_FLOAT, 'JSON Value: "a" Type: String is not of expected type: float'),
        (True, types_pb2.DT_FLOAT, "JSON Value: true Type: True is not of expected type: float"),
        (1.5, types_pb2.DT_INT32, "is not of expected type: int32"),
        (2**31, types_pb2.DT_INT32, "is not of expected type: int32"),
        (1, types_pb2.DT_BOOL, "is not of expected type: bool"),
        (1, types_pb2.DT_STRING, "is not of expected type: string"),
        ({"b64": "eHk="}, types_pb2.DT_FLOAT, "Type: Object is not of expected type: float"),
        ({"b64": "!!"}, types_pb2.DT_STRING, "Unable to base64 decode"),
        ({"b64": "eHk=", "x": 1}, types_pb2.DT_STRING, "not formatted correctly for base64 data"),
        ([[1.0], [1.0, 2.0]], types_pb2.DT_FLOAT, "Encountered list at unexpected size: 2 at level: 1"),
        ([[1.0], 2.0], types_pb2.DT_FLOAT, "found at incorrect level: 2 in the JSON DOM. Expected at level: 2"),
    ],
)
def test_dtype_and_shape_rules(value, dtype, message):
    assert message in error(json_tensor.value_to_array, value, dtype)


def test_value_to_array_keeps_dtypes_and_nesting():
    assert json_tensor.value_to_array([[1, 2], [3, 4]], types_pb2.DT_INT64).dtype == np.int64
    assert json_tensor.value_to_array(2**63 - 1, types_pb2.DT_INT64).shape == ()
    assert json_tensor.value_to_array([True, False], types_pb2.DT_BOOL).tolist() == [True, False]


@pytest.mark.parametrize(
    "body, message",
    [
        (b"", "JSON Parse error: The document is empty"),
        (b'{"instances": [1.0,', "JSON Parse error"),
        (b"[1]", "JSON Value: [1] Is not object"),
    ],
)
def test_body_parse_errors(body, message):
    assert message in error(json_tensor.parse_body, body)


@pytest.mark.parametrize(
    "doc, message",
    [
        ({"values": [1.0]}, "Missing 'inputs' or 'instances' key"),
        ({"instances": [1.0], "inputs": [1.0]}, "expecting only one of 'inputs' or 'instances' keys to exist"),
        ({"instances": []}, "No values in 'instances' array"),
        ({"instances": 1.0}, "Expecting 'instances' to be an list/array"),
        (
            {"instances": [[1.0], [1.0, 2.0]]},
            "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT",
        ),
    ],
)
def test_request_shape_errors(doc, message):
    assert message in error(json_tensor.predict_inputs, doc, FLOAT_X, "")


def test_signature_name_must_be_a_string():
    assert json_tensor.signature_name({"signature_name": "echo"}) == "echo"
    assert "'signature_name' key must be a string value" in error(json_tensor.signature_name, {"signature_name": 1})


def test_predictions_render_like_tf_serving():
    one = json_tensor.render_predictions({"y": np.array([2.5, 3.0], np.float32)}, json_tensor.ROW)
    assert one == '{\n    "predictions": [2.5, 3.0\n    ]\n}'  # whole floats keep their ".0"
    cols = json_tensor.render_predictions(
        {"n": np.array([2], np.int32), "s_bytes": np.array([b"xy"], object)}, json_tensor.COLUMNAR
    )
    assert '"n": [2]' in cols and '"s_bytes": [{"b64": "eHk="}]' in cols
    rows = json_tensor.render_predictions({"a": np.array([1, 2]), "b": np.array(["中", "x"], object)}, json_tensor.ROW)
    assert '"b": "中"' in rows
    mismatched = {"a": np.array([1, 2]), "b": np.array([1])}
    assert "inconsistent batch size" in error(json_tensor.render_predictions, mismatched, json_tensor.ROW)


@pytest.mark.parametrize(
    "value, single, text",
    [(0.1, True, "0.1"), (3.0, False, "3.0"), (1 / 3, False, "0.33333333333333331"), (float("nan"), True, "NaN")],
)
def test_float_format(value, single, text):
    assert json_tensor.format_float(value, single) == text


def test_error_body():
    assert json_tensor.render_error("Servable not found") == '{\n    "error": "Servable not found"\n}'


@pytest.mark.parametrize(
    "body, message",
    [
        (b'{"instances": ["\xed\xa0\x80"]}', "JSON Parse error: Invalid encoding in string. at offset: 16"),
        (b'{"instances": ["\xff"]}', "JSON Parse error: Invalid encoding in string. at offset: 16"),
        (b'{"instances": ["\\ud800"]}', "JSON Parse error: The surrogate pair in string is invalid."),
        (
            b'{"instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            "JSON Parse error: The document is nested too deeply.",
        ),
    ],
)
def test_bodies_rapidjson_refuses(body, message):
    """Encoded surrogates (which json.loads on bytes lets through), lone surrogate escapes and nesting deeper than
    Python's json can recurse are parse errors, as rapidjson's."""
    assert error(json_tensor.parse_body, body) == message


def test_a_utf8_bom_is_skipped_and_a_surrogate_pair_is_one_character():
    assert json_tensor.parse_body(b'\xef\xbb\xbf{"instances": ["\\ud83d\\ude00"]}') == {"instances": ["\U0001f600"]}


def test_more_dimensions_than_numpy_holds_is_a_tensor_parsing_error():
    nested: object = 1.0
    for _ in range(64):
        nested = [nested]
    assert json_tensor.value_to_array(nested, types_pb2.DT_FLOAT, "x").ndim == 64
    assert error(json_tensor.value_to_array, [nested], types_pb2.DT_FLOAT, "x") == "tensor parsing error: x"
    assert error(json_tensor.predict_inputs, {"inputs": {"x": [nested]}}, FLOAT_X, "") == "tensor parsing error: x"
    assert error(json_tensor.predict_inputs, {"instances": [nested]}, FLOAT_X, "") == "tensor parsing error: x"
    assert json_tensor.predict_inputs({"instances": nested}, FLOAT_X, "")["x"].ndim == 64


def test_an_error_quoting_a_deeply_nested_document_is_still_a_400():
    """json.loads may just manage a nesting that json.dumps, a few frames deeper, cannot: the quote stops at 256."""
    nested: object = []
    for _ in range(5000):
        nested = [nested]
    message = error(json_tensor.predict_inputs, {"instances": 5, "deep": nested}, FLOAT_X, "")
    quote = '{"instances": 5, "deep": '
    assert message == f"JSON Value: {(quote + '[' * 256)[:256]} Expecting 'instances' to be an list/array"
