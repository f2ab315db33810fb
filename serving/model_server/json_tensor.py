"""TF Serving's JSON tensor formats (json_tensor.cc): request bodies to tensors and tensors to response bodies.

Rows (`instances`) and columns (`inputs`) in; `predictions` / `outputs` out. Binary strings travel as
{"b64": ...}; string outputs whose alias ends in `_bytes` are written that way. Floats are written with
the shortest of 6 significant digits or full precision that reads back exactly, with a trailing ".0" on
whole numbers, as TF Serving does. Error messages are TF Serving's.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Mapping
from typing import Any

import grpc
import numpy as np
from tensorflow.core.example import example_pb2, feature_pb2
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import input_pb2

from serving.model_server.errors import ServingError, invalid_argument
from serving.model_server.signature import dtype_name

ROW, COLUMNAR = "row", "columnar"
_MAX_RANK = 64  # numpy's NPY_MAXDIMS
_DEBUG_CHARS = 256  # kMaxJsonDebugStringBytes
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")

_INT_RANGES = {
    types_pb2.DT_INT32: (-(2**31), 2**31 - 1),
    types_pb2.DT_INT16: (-(2**31), 2**31 - 1),
    types_pb2.DT_INT8: (-(2**31), 2**31 - 1),
    types_pb2.DT_UINT8: (-(2**31), 2**31 - 1),
    types_pb2.DT_INT64: (-(2**63), 2**63 - 1),
    types_pb2.DT_UINT32: (0, 2**32 - 1),
    types_pb2.DT_UINT64: (0, 2**64 - 1),
}
_NUMPY = {
    types_pb2.DT_FLOAT: np.float32,
    types_pb2.DT_DOUBLE: np.float64,
    types_pb2.DT_INT32: np.int32,
    types_pb2.DT_INT16: np.int16,
    types_pb2.DT_INT8: np.int8,
    types_pb2.DT_UINT8: np.uint8,
    types_pb2.DT_INT64: np.int64,
    types_pb2.DT_UINT32: np.uint32,
    types_pb2.DT_UINT64: np.uint64,
    types_pb2.DT_BOOL: np.bool_,
    types_pb2.DT_STRING: object,
}


# ---- request side ------------------------------------------------------------------------------------------
class _Text(str):
    """Already-written JSON text on _debug's stack."""


def _debug(value: Any) -> str:
    """JsonValueToDebugString: the value as JSON, cut at 256 characters. Written without recursion and only as
    far as the cut, since a document json.loads just managed to nest may be too deep for json.dumps here."""
    parts: list[str] = []
    size = 0
    stack: list[Any] = [value]
    while stack and size < _DEBUG_CHARS:
        item = stack.pop()
        if isinstance(item, _Text):
            text = str(item)
        elif isinstance(item, (list, dict)):
            pairs = list(item.items()) if isinstance(item, dict) else [(None, v) for v in item]
            text = "{" if isinstance(item, dict) else "["
            stack.append(_Text("}" if isinstance(item, dict) else "]"))
            for index, (key, element) in enumerate(reversed(pairs)):
                stack.append(element)
                if key is not None:
                    stack.append(_Text(json.dumps(key, ensure_ascii=False) + ": "))
                if index < len(pairs) - 1:
                    stack.append(_Text(", "))
        else:
            text = json.dumps(item, ensure_ascii=False)
        parts.append(text)
        size += len(text)
    return "".join(parts)[:_DEBUG_CHARS]


def _type_name(value: Any) -> str:
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    return {dict: "Object", list: "Array", str: "String"}.get(type(value), "Number")


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _type_error(value: Any, dtype: int) -> ServingError:
    return invalid_argument(
        f"JSON Value: {_debug(value)} Type: {_type_name(value)} is not of expected type: {dtype_name(dtype)}"
    )


def _scalar(value: Any, dtype: int) -> Any:
    if dtype == types_pb2.DT_STRING:
        if isinstance(value, str):
            return value.encode("utf-8")
        if isinstance(value, dict):
            if not _is_b64(value):
                raise invalid_argument(f"JSON Value: {_debug(value)} not formatted correctly for base64 data")
            try:
                return base64.b64decode(value["b64"], validate=True)
            except (binascii.Error, ValueError):
                raise invalid_argument("Unable to base64 decode") from None
        raise _type_error(value, dtype)
    if isinstance(value, dict):
        raise _type_error(value, dtype)
    if dtype in (types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        raise _type_error(value, dtype)
    if dtype == types_pb2.DT_BOOL:
        if isinstance(value, bool):
            return value
        raise _type_error(value, dtype)
    bounds = _INT_RANGES.get(dtype)
    if bounds is None:
        raise ServingError(
            grpc.StatusCode.UNIMPLEMENTED, f"Conversion of JSON Value: {_debug(value)} to type: {dtype_name(dtype)}"
        )
    if isinstance(value, int) and not isinstance(value, bool) and bounds[0] <= value <= bounds[1]:
        return value
    raise _type_error(value, dtype)


def _dense_shape(value: Any) -> list[int]:
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _fill(value: Any, level: int, shape: list[int], dtype: int, flat: list) -> None:
    if not isinstance(value, list):
        if level != len(shape):
            raise invalid_argument(
                f"JSON Value: {_debug(value)} found at incorrect level: {level + 1} "
                f"in the JSON DOM. Expected at level: {len(shape)}"
            )
        flat.append(_scalar(value, dtype))
        return
    if level >= len(shape):
        raise invalid_argument(f"Encountered list at unexpected level: {level} expected < {len(shape)}")
    if len(value) != shape[level]:
        raise invalid_argument(
            f"Encountered list at unexpected size: {len(value)} at level: {level} expected size: {shape[level]}"
        )
    for item in value:
        _fill(item, level + 1, shape, dtype, flat)


def _check_rank(rank: int, name: str) -> None:
    """numpy holds at most 64 dimensions (TensorFlow 254, past which TF Serving's tensor parsing fails alike)."""
    if rank > _MAX_RANK:
        raise invalid_argument(f"tensor parsing error: {name}")


def value_to_array(value: Any, dtype: int, name: str = "") -> np.ndarray:
    """One JSON value (scalar or nested lists) to a dense array of the signature's dtype; `name` is the input's
    alias, for the error when the value has too many dimensions."""
    shape = _dense_shape(value)
    _check_rank(len(shape), name)
    flat: list = []
    _fill(value, 0, shape, dtype, flat)
    numpy_type = _NUMPY[dtype]
    if numpy_type is object:
        array = np.empty(len(flat), dtype=object)
        array[:] = flat
        return array.reshape(shape)
    return np.array(flat, dtype=numpy_type).reshape(shape)


def parse_body(body: bytes) -> dict:
    """The request's JSON object as rapidjson (TF Serving's parser) reads it: strict UTF-8 (json.loads on bytes
    would let encoded surrogates through) after an optional BOM, paired \\uD800-\\uDFFF escapes only. Python's
    json recurses where rapidjson iterates: a document nested too deeply for it is refused here."""
    if not body:
        raise invalid_argument("JSON Parse error: The document is empty")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise invalid_argument(f"JSON Parse error: Invalid encoding in string. at offset: {exc.start}") from None
    try:
        doc = json.loads(text)
        if _SURROGATE_ESCAPE.search(text):  # a lone one decodes, and fails only when the string is encoded
            json.dumps(doc, ensure_ascii=False).encode("utf-8")
    except json.JSONDecodeError as exc:
        raise invalid_argument(f"JSON Parse error: {exc.msg} at offset: {exc.pos}") from None
    except UnicodeEncodeError:
        raise invalid_argument("JSON Parse error: The surrogate pair in string is invalid.") from None
    except RecursionError:
        raise invalid_argument("JSON Parse error: The document is nested too deeply.") from None
    if not isinstance(doc, dict):
        raise invalid_argument(f"JSON Value: {_debug(doc)} Is not object")
    return doc


def signature_name(doc: dict) -> str:
    name = doc.get("signature_name", "")
    if not isinstance(name, str):
        raise invalid_argument(
            f"JSON Value: {_debug(doc)} not formatted correctly. 'signature_name' key must be a string value."
        )
    return name


def request_format(doc: dict) -> str:
    """ROW (`instances`) or COLUMNAR (`inputs`): the answer comes back in the request's format."""
    return ROW if "instances" in doc else COLUMNAR


def predict_inputs(doc: dict, infos: Mapping[str, Any], signame: str) -> dict[str, np.ndarray]:
    """The request's tensors, checked against the signature's inputs."""
    if not infos:
        raise invalid_argument(f"Failed to get input map for signature: {signame or 'DEFAULT'}")
    has_instances, has_inputs = "instances" in doc, "inputs" in doc
    if has_instances and has_inputs:
        raise invalid_argument(
            f"JSON Value: {_debug(doc)} Not formatted correctly expecting only one of "
            "'inputs' or 'instances' keys to exist "
        )
    if has_instances:
        instances = doc["instances"]
        if not isinstance(instances, list):
            raise invalid_argument(f"JSON Value: {_debug(doc)} Expecting 'instances' to be an list/array")
        if not instances:
            raise invalid_argument(f"JSON Value: {_debug(doc)} No values in 'instances' array")
        return _from_instances(instances, infos)
    if has_inputs:
        return _from_inputs(doc["inputs"], infos)
    raise invalid_argument("Missing 'inputs' or 'instances' key")


def _from_instances(instances: list, infos: Mapping[str, Any]) -> dict[str, np.ndarray]:
    def is_object(value: Any) -> bool:
        return isinstance(value, dict) and not _is_b64(value)

    if not isinstance(instances[0], dict) and len(infos) > 1:
        raise invalid_argument(
            "instances is a plain list, but expecting list of objects as multiple input "
            "tensors required as per tensorinfo_map"
        )
    objects = is_object(instances[0])
    columns: dict[str, list[np.ndarray]] = {name: [] for name in infos}
    for index, element in enumerate(instances):
        if objects:
            if not is_object(element):
                raise invalid_argument(f"Expecting object but got list at item {index} of input list")
            for name, value in element.items():
                if name not in infos:
                    raise invalid_argument(
                        f"Failed to process element: {index} key: {name} of 'instances' list. "
                        f"Error: INVALID_ARGUMENT: JSON object: does not have named input: {name}"
                    )
                _add_item(columns[name], value, infos[name].dtype, name, f"{index} key: {name}")
            if set(element) != set(infos):
                raise invalid_argument(
                    f"Failed to process element: {index} of 'instances' list. JSON object: "
                    f"{_debug(element)} keys must be equal to: {','.join(sorted(infos))}"
                )
        else:
            if is_object(element):
                raise invalid_argument(f"Expecting value/list but got object at item {index} of input list")
            name = next(iter(sorted(infos)))
            _add_item(columns[name], element, infos[name].dtype, name, str(index))
    return {name: np.stack(items) for name, items in columns.items()}


def _add_item(items: list[np.ndarray], value: Any, dtype: int, name: str, where: str) -> None:
    _check_rank(len(_dense_shape(value)) + 1, name)  # the batch adds a dimension
    try:
        array = value_to_array(value, dtype, name)
        if items and array.shape != items[0].shape:
            if array.size != items[0].size:
                raise invalid_argument(f"Expecting tensor size: {items[0].size} but got: {array.size}")
            raise invalid_argument(
                f"Expecting shape [{','.join(map(str, items[0].shape))}] but got: [{','.join(map(str, array.shape))}]"
            )
    except ServingError as exc:
        raise invalid_argument(
            f"Failed to process element: {where} of 'instances' list. Error: {exc.code_name}: {exc.message}"
        ) from None
    items.append(array)


def _from_inputs(value: Any, infos: Mapping[str, Any]) -> dict[str, np.ndarray]:
    if not isinstance(value, dict) or _is_b64(value):
        if len(infos) > 1:
            raise invalid_argument(
                "inputs is a plain value/list, but expecting an object as multiple input "
                "tensors required as per tensorinfo_map"
            )
        name = next(iter(infos))
        return {name: value_to_array(value, infos[name].dtype, name)}
    tensors = {}
    for name in sorted(infos):
        if name not in value:
            raise invalid_argument(f"Missing named input: {name} in 'inputs' object.")
        tensors[name] = value_to_array(value[name], infos[name].dtype, name)
    return tensors


def examples_input(doc: dict) -> input_pb2.Input:
    """The `context` / `examples` of a :classify or :regress body as tf.Examples."""
    model_input = input_pb2.Input()
    has_context = "context" in doc
    if has_context:
        _example(doc["context"], model_input.example_list_with_context.context)
    examples = doc.get("examples")
    if examples is None:
        raise invalid_argument(
            f"JSON Value: {_debug(doc)} When method is classify, key 'examples' is expected and was not found"
        )
    if not isinstance(examples, list):
        raise invalid_argument(f"JSON Value: {_debug(doc)} Expecting 'examples' value to be an list/array")
    if not examples:
        raise invalid_argument(f"JSON Value: {_debug(doc)} 'examples' value is an empty array")
    target = (model_input.example_list_with_context if has_context else model_input.example_list).examples
    for value in examples:
        _example(value, target.add())
    return model_input


def _example(value: Any, example: example_pb2.Example) -> None:
    if not isinstance(value, dict):
        raise invalid_argument(f"Example must be JSON object but got JSON {_type_name(value)}")
    for name, content in value.items():
        feature = example.features.feature[name]
        for item in content if isinstance(content, list) else [content]:
            _add_feature_value(item, name, feature)


def _add_feature_value(value: Any, name: str, feature: feature_pb2.Feature) -> None:
    if isinstance(value, bool) or (isinstance(value, int) and not isinstance(value, bool)):
        kind, item = "int64_list", int(value)
        if item >= 2**63:
            raise invalid_argument(f"Feature: {name} has uint64_t element. Only int64_t is supported.")
    elif isinstance(value, float):
        kind, item = "float_list", value
    elif isinstance(value, str):
        kind, item = "bytes_list", value.encode("utf-8")
    elif _is_b64(value):
        kind, item = "bytes_list", _scalar(value, types_pb2.DT_STRING)
    else:
        raise invalid_argument(f"Feature: {name} has element with unexpected JSON type: {_type_name(value)}")
    current = feature.WhichOneof("kind")
    if current not in (None, kind):
        raise invalid_argument(f"Unexpected element type in feature: {name} expecting type: {current.split('_')[0]}")
    getattr(feature, kind).value.append(item)


# ---- response side -------------------------------------------------------------------------------------------
def format_float(value: float, single: bool) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "-Infinity" if value < 0 else "Infinity"
    text = f"{value:g}"
    roundtrip = np.float32(text) == np.float32(value) if single else float(text) == value
    if not roundtrip:
        text = f"{value:.9g}" if single else f"{value:.17g}"
    if "." not in text and "e" not in text:
        text += ".0"
    return text


def _scalar_json(value: Any, kind: str, as_bytes: bool) -> str:
    if kind == "f":
        return format_float(float(value), single=True)
    if kind == "d":
        return format_float(float(value), single=False)
    if kind == "b":
        return "true" if value else "false"
    if kind == "s":
        if as_bytes:
            return '{"b64": "' + base64.b64encode(value).decode("ascii") + '"}'
        return json.dumps(
            value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value), ensure_ascii=False
        )
    return str(int(value))


def _kind(array: np.ndarray) -> str:
    if array.dtype == np.float32 or array.dtype == np.float16:
        return "f"
    if array.dtype.kind == "f":
        return "d"
    if array.dtype == np.bool_:
        return "b"
    if array.dtype.kind in "OSU":
        return "s"
    return "i"


def _nested_json(values: Any, kind: str, as_bytes: bool) -> str:
    if isinstance(values, list):
        return "[" + ", ".join(_nested_json(v, kind, as_bytes) for v in values) + "]"
    return _scalar_json(values, kind, as_bytes)


def _tensor_json(array: np.ndarray, name: str) -> str:
    kind = _kind(array)
    return _nested_json(array.tolist(), kind, kind == "s" and name.endswith("_bytes"))


def _rows_json(array: np.ndarray, name: str) -> list[str]:
    kind = _kind(array)
    as_bytes = kind == "s" and name.endswith("_bytes")
    return [_nested_json(row, kind, as_bytes) for row in array.tolist()]


def render_predictions(outputs: Mapping[str, np.ndarray], fmt: str) -> str:
    if not outputs:
        raise invalid_argument("Cannot convert empty tensor map to JSON")
    names = sorted(outputs)
    if fmt == COLUMNAR:
        if len(names) == 1:
            return '{\n    "outputs": ' + _tensor_json(outputs[names[0]], names[0]) + "\n}"
        body = ",\n".join(f"        {json.dumps(n)}: {_tensor_json(outputs[n], n)}" for n in names)
        return '{\n    "outputs": {\n' + body + "\n    }\n}"
    batch = None
    for name in names:
        if outputs[name].ndim == 0:
            raise invalid_argument(f"Tensor name: {name} has no shape information ")
        if batch is not None and outputs[name].shape[0] != batch:
            raise invalid_argument(
                f"Tensor name: {name} has inconsistent batch size: {outputs[name].shape[0]} expecting: {batch}"
            )
        batch = outputs[name].shape[0]
    if len(names) == 1:
        rendered = _tensor_json(outputs[names[0]], names[0])
        return '{\n    "predictions": ' + rendered[:-1] + "\n    ]\n}" if batch else '{\n    "predictions": []\n}'
    columns = {n: _rows_json(outputs[n], n) for n in names}
    rows = []
    for i in range(batch):
        fields = ",\n".join(f"            {json.dumps(n)}: {columns[n][i]}" for n in names)
        rows.append("        {\n" + fields + "\n        }")
    return '{\n    "predictions": [\n' + ",\n".join(rows) + "\n    ]\n}"


def render_error(message: str) -> str:
    return '{\n    "error": ' + json.dumps(message, ensure_ascii=False) + "\n}"


def render_classification(result) -> str:
    rows = [
        "["
        + ", ".join(f"[{json.dumps(c.label, ensure_ascii=False)}, {format_float(c.score, True)}]" for c in row.classes)
        + "]"
        for row in result.classifications
    ]
    if not rows:
        raise invalid_argument("Cannot convert empty ClassificationResults to JSON")
    return '{\n    "results": [\n        ' + ",\n        ".join(rows) + "\n    ]\n}"


def render_regression(result) -> str:
    if not result.regressions:
        raise invalid_argument("Cannot convert empty RegressionResults to JSON")
    return '{\n    "results": [' + ", ".join(format_float(r.value, True) for r in result.regressions) + "]\n}"
