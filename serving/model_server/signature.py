"""Running one SignatureDef of a loaded version: check the request's input names and dtypes against it, feed and
fetch its TensorInfo names in the version's session, keep the outputs asked for.

TF Serving checks names (predict_util.cc VerifyRequestInputsSize, saved_model/util.cc GetInputValues) and the
session checks dtypes (DirectSession's call frame); shapes are the graph's business, and a graph failure reaches
the client with TensorFlow's code and message. Messages here are theirs word for word.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Protocol

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2

from serving.model_server.errors import ServingError, invalid_argument, status_code


class Bundle(Protocol):
    """What runs a version's tensors: its SessionBundle, or its TfLiteSession under --prefer_tflite_model."""

    def run(self, feeds: dict[str, np.ndarray], fetches: tuple[str, ...]) -> list[np.ndarray]: ...

    def close(self) -> None: ...


PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"


def dtype_name(enum: int) -> str:
    """TF's DataTypeString: DT_FLOAT -> 'float', DT_STRING -> 'string'."""
    name = tf.dtypes.as_dtype(enum).name
    return {"float32": "float", "float64": "double"}.get(name, name)


def shape_text(dims: Sequence[int]) -> str:
    """TensorShape::DebugString: [2,3]."""
    return "[" + ",".join(str(d) for d in dims) + "]"


def op_error(exc: tf.errors.OpError) -> ServingError:
    """A TensorFlow runtime error as the client sees it from TF Serving: its canonical code and message."""
    return ServingError(status_code(exc.error_code), exc.message)


def _keys(names: Sequence[str] | set[str]) -> str:
    return ",".join(sorted(names))


class Signature:
    """A SignatureDef of a loaded version, run in that version's session (or its TF Lite interpreter pool)."""

    def __init__(self, name: str, signature_def: meta_graph_pb2.SignatureDef, bundle: Bundle) -> None:
        self.name = name
        self.signature_def = signature_def
        self.inputs = signature_def.inputs
        self.outputs = signature_def.outputs
        self.method_name = signature_def.method_name
        self._bundle = bundle
        # DirectSession numbers a Run's feeds in the order of their sorted tensor names: arg[i] in dtype messages
        self._feed_order = sorted(self.inputs, key=lambda alias: self.inputs[alias].name)
        self._defaults = {alias: tf.make_ndarray(proto) for alias, proto in signature_def.defaults.items()}

    def check_inputs(self, names: Collection[str]) -> None:
        """The request's input names as TF Serving checks them, before the output filter."""
        sent, wanted, defaults = set(names), set(self.inputs), set(self._defaults)
        if len(sent) > len(wanted) or (len(sent) < len(wanted) and not defaults):
            raise invalid_argument(
                f"input size does not match signature: {len(sent)}!={len(wanted)} "
                f"len({{{_keys(sent)}}}) != len({{{_keys(wanted)}}}). "
                f"Sent extra: {{{_keys(sent - wanted)}}}. "
                f"Missing but required: {{{_keys(wanted - sent)}}}."
            )
        for alias in self._feed_order:
            if alias not in sent and alias not in defaults:
                raise invalid_argument(
                    f"Signature input alias: {alias}(feed name: {self.inputs[alias].name}) not found in request "
                    f"and no default value provided. Inputs expected to be in the request {{{_keys(sent)}}}, "
                    f"or default input alias set: {_keys(defaults)}"
                )
        used = sent & wanted
        if sent and len(used) != len(sent):
            raise invalid_argument(
                f"Inputs contains invalid name. Used request inputs: {_keys(used)}, request input: {_keys(sent)}"
            )

    def check_dtypes(self, dtypes: Mapping[str, int]) -> None:
        """The wire's dtypes (gRPC) as the session's call frame checks them when it runs."""
        for index, alias in enumerate(self._feed_order):
            expected = self.inputs[alias].dtype
            if alias in dtypes and dtypes[alias] != expected:
                raise invalid_argument(
                    f"Expects arg[{index}] to be {dtype_name(expected)} but {dtype_name(dtypes[alias])} is provided"
                )

    def check_output_filter(self, output_filter: Sequence[str]) -> None:
        seen: set[str] = set()
        for alias in output_filter:
            if alias not in self.outputs:
                raise invalid_argument(
                    f"output tensor alias not found in signature: {alias} "
                    f"Outputs expected to be in the set {{{_keys(self.outputs)}}}."
                )
            if alias in seen:
                raise invalid_argument(f"duplicate output tensor alias: {alias}")
            seen.add(alias)

    def run(self, inputs: Mapping[str, np.ndarray], outputs: Sequence[str] = ()) -> dict[str, np.ndarray]:
        """Feed checked inputs (defaults for the ones left out), fetch `outputs` (all when empty)."""
        aliases = tuple(outputs) or tuple(self.outputs)
        feeds = {
            self.inputs[alias].name: inputs[alias] if alias in inputs else self._defaults[alias]
            for alias in self._feed_order
        }
        try:
            values = self._bundle.run(feeds, tuple(self.outputs[alias].name for alias in aliases))
        except tf.errors.OpError as exc:
            raise op_error(exc) from None
        return dict(zip(aliases, values, strict=True))
