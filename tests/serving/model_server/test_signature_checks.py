"""A Signature's input checks, in process: they read only the SignatureDef, so no session is needed."""

from __future__ import annotations

import pytest
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2

from serving.model_server.errors import ServingError
from serving.model_server.signature import Signature


def test_a_dtype_mismatch_names_the_arg_by_sorted_tensor_name():
    """DirectSession numbers a Run's feeds by their sorted tensor names (y:0 before z:0), not by alias: TensorFlow
    answers arg[1] when z:0 is fed first with doubles."""
    signature_def = meta_graph_pb2.SignatureDef()
    signature_def.inputs["a"].CopyFrom(meta_graph_pb2.TensorInfo(name="z:0", dtype=types_pb2.DT_FLOAT))
    signature_def.inputs["b"].CopyFrom(meta_graph_pb2.TensorInfo(name="y:0", dtype=types_pb2.DT_INT64))
    signature = Signature("serving_default", signature_def, bundle=None)  # type: ignore[arg-type]
    with pytest.raises(ServingError, match=r"^Expects arg\[1\] to be float but double is provided$"):
        signature.check_dtypes({"a": types_pb2.DT_DOUBLE, "b": types_pb2.DT_INT64})
    with pytest.raises(ServingError, match=r"^Expects arg\[0\] to be int64 but int32 is provided$"):
        signature.check_dtypes({"a": types_pb2.DT_FLOAT, "b": types_pb2.DT_INT32})
