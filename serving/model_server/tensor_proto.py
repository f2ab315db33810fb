"""TensorProto <-> numpy for the gRPC front end and warm-up records.

Outputs are written into the typed repeated fields (float_val, string_val, ...), as TF Serving does by
default (`--enable_serialization_as_tensor_content` off), so clients reading `float_val` see values.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2

from serving.model_server.errors import invalid_argument

_FIELDS = {
    types_pb2.DT_FLOAT: "float_val",
    types_pb2.DT_DOUBLE: "double_val",
    types_pb2.DT_INT32: "int_val",
    types_pb2.DT_INT16: "int_val",
    types_pb2.DT_INT8: "int_val",
    types_pb2.DT_UINT8: "int_val",
    types_pb2.DT_UINT16: "int_val",
    types_pb2.DT_INT64: "int64_val",
    types_pb2.DT_BOOL: "bool_val",
    types_pb2.DT_STRING: "string_val",
    types_pb2.DT_UINT32: "uint32_val",
    types_pb2.DT_UINT64: "uint64_val",
}


def to_ndarray(proto: tensor_pb2.TensorProto, alias: str | None = None) -> np.ndarray:
    """A request's tensor; one that does not parse is TF Serving's "tensor parsing error: <alias>" (GetInputValues)."""
    try:
        return tf.make_ndarray(proto)
    except (ValueError, TypeError) as exc:
        if alias is not None:
            raise invalid_argument(f"tensor parsing error: {alias}") from None
        raise invalid_argument(f"Could not parse tensor proto: {exc}") from None


def from_ndarray(array: np.ndarray) -> tensor_pb2.TensorProto:
    dtype = tf.dtypes.as_dtype(array.dtype if array.dtype != object else tf.string).as_datatype_enum
    field = _FIELDS.get(dtype)
    if field is None:
        return tf.make_tensor_proto(array)
    proto = tensor_pb2.TensorProto(dtype=dtype)
    for size in array.shape:
        proto.tensor_shape.dim.add(size=size)
    getattr(proto, field).extend(array.ravel().tolist())
    return proto
