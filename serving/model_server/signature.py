"""Running one SignatureDef: check the request's tensors against it, call it, keep the outputs asked for.

Messages follow TF Serving's (predict_util.cc) where it has them, so clients see the same errors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2

from serving.model_server.errors import ServingError, invalid_argument, status_code

CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"


def dtype_name(enum: int) -> str:
    """TF's DataTypeString: DT_FLOAT -> 'float', DT_STRING -> 'string'."""
    name = tf.dtypes.as_dtype(enum).name
    return {"float32": "float", "float64": "double"}.get(name, name)


def shape_text(dims: Sequence[int]) -> str:
    return "[" + ",".join(str(d) for d in dims) + "]"


class Signature:
    """A signature of a loaded SavedModel: its SignatureDef's inputs/outputs (for checks) and its function."""

    def __init__(self, name: str, signature_def: meta_graph_pb2.SignatureDef, function: Callable) -> None:
        self.name = name
        self.inputs = signature_def.inputs
        self.outputs = signature_def.outputs
        self._function = function
        self._input_order = sorted(self.inputs)
        self._dtypes = {key: tf.dtypes.as_dtype(info.dtype) for key, info in self.inputs.items()}

    def check_inputs(self, inputs: Mapping[str, np.ndarray], dtypes: Mapping[str, int] | None = None) -> None:
        """Names, dtypes and shapes must fit the signature (what Session::Run would reject)."""
        if set(inputs) != set(self.inputs):
            sent, wanted = set(inputs), set(self.inputs)
            raise invalid_argument(
                f"input size does not match signature: {len(sent)}!={len(wanted)} "
                f"len({{{','.join(sorted(sent))}}}) != len({{{','.join(sorted(wanted))}}}). "
                f"Sent extra: {{{','.join(sorted(sent - wanted))}}}. "
                f"Missing but required: {{{','.join(sorted(wanted - sent))}}}."
            )
        for index, key in enumerate(self._input_order):
            info = self.inputs[key]
            if dtypes is not None and dtypes[key] != info.dtype:
                raise invalid_argument(
                    f"Expects arg[{index}] to be {dtype_name(info.dtype)} but {dtype_name(dtypes[key])} is provided"
                )
            if info.tensor_shape.unknown_rank:
                continue
            wanted_dims = [d.size for d in info.tensor_shape.dim]
            got = inputs[key].shape
            if len(got) != len(wanted_dims) or any(w >= 0 and w != g for w, g in zip(wanted_dims, got, strict=True)):
                raise invalid_argument(
                    f"Input to signature input '{key}' has shape {shape_text(got)}, which is incompatible "
                    f"with the signature's shape {shape_text(wanted_dims)}"
                )

    def check_output_filter(self, output_filter: Sequence[str]) -> None:
        seen: set[str] = set()
        for alias in output_filter:
            if alias not in self.outputs:
                raise invalid_argument(
                    f"output tensor alias not found in signature: {alias} "
                    f"Outputs expected to be in the set {{{','.join(sorted(self.outputs))}}}."
                )
            if alias in seen:
                raise invalid_argument(f"duplicate output tensor alias: {alias}")
            seen.add(alias)

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Call the function on checked inputs; TF runtime errors keep their canonical code."""
        tensors = {key: tf.convert_to_tensor(value, dtype=self._dtypes[key]) for key, value in inputs.items()}
        try:
            outputs = self._function(**tensors)
        except tf.errors.OpError as exc:
            raise ServingError(status_code(exc.error_code), exc.message) from None
        except (ValueError, TypeError) as exc:  # raised by the function's input validation
            raise invalid_argument(str(exc).splitlines()[0]) from None
        return {key: value.numpy() for key, value in outputs.items()}


def select_outputs(outputs: dict[str, np.ndarray], output_filter: Sequence[str]) -> dict[str, np.ndarray]:
    return {alias: outputs[alias] for alias in output_filter} if output_filter else outputs
