"""A version served from its `model.tflite` (--prefer_tflite_model), as TF Serving's TfLiteSession does.

TF Serving (tflite_session.cc, tflite_interpreter_pool.cc) runs the model's main subgraph by tensor name on
--num_tflite_pools interpreters of one thread each: a request takes a free one (waiting when all are busy),
resizes the inputs to its feeds, invokes, copies the outputs and gives the interpreter back. Its SignatureDefs
come only from the file's `signature_defs_metadata` entry (`textclf export --tflite` writes it), whose TensorInfo
names are main-subgraph tensors (a name without its ':N' accepted too); a file without that entry is served
under a generated `serving_default` keyed by the tensor names without ':N'. The converter's own signature
table is not read, by TF Serving nor here, so a file answers here with the names it answers with there.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import tensorflow as tf
from flatbuffers import flexbuffers
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow.lite.python import schema_py_generated as schema

from serving.contract import SIGNATURE, TFLITE_FILE, TFLITE_SIGNATURE_DEFS
from serving.model_server.errors import ServingError, invalid_argument
from serving.model_server.signature import PREDICT_METHOD

log = logging.getLogger(__name__)


def has_tflite(path: Path) -> bool:
    return (path / TFLITE_FILE).is_file()


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def _legacy_name(name: str) -> str:
    """TfToTfLiteLegacyTensorName: early converters dropped the ':N' of TensorFlow tensor names."""
    return name.split(":", 1)[0]


def _resolve(tensors: Mapping[str, Any], name: str) -> str | None:
    """FixTfLiteTensorName: the tensor `name` refers to, by its name or its legacy name."""
    if name in tensors:
        return name
    legacy = _legacy_name(name)
    return legacy if legacy in tensors else None


def read_signature_defs(content: bytes) -> dict[str, meta_graph_pb2.SignatureDef]:
    """GetSignatureDefMap: the file's `signature_defs_metadata` map, {} without one. TF Serving reads each value
    with AsString().c_str(), so a value ends at its first zero byte here too."""
    model = schema.Model.GetRootAs(content, 0)
    for i in range(model.MetadataLength()):
        metadata = model.Metadata(i)
        if metadata.Name() != TFLITE_SIGNATURE_DEFS.encode():
            continue
        try:
            entries = flexbuffers.GetRoot(model.Buffers(metadata.Buffer()).DataAsNumpy().tobytes()).AsMap
            signature_defs = {}
            for key, value in zip(entries.Keys, entries.Values, strict=True):
                signature_defs[key.AsKey] = meta_graph_pb2.SignatureDef.FromString(
                    value.AsStringBytes.split(b"\0", 1)[0]
                )
        except Exception as exc:  # flexbuffers and protobuf raise several kinds on a malformed entry
            raise invalid_argument(f"Invalid SignatureDefs found in TfLite model: {_one_line(exc)}") from None
        return signature_defs
    return {}


def _tensor_info(details: Mapping[str, Any], has_rank: bool) -> meta_graph_pb2.TensorInfo:
    """A main-subgraph tensor as a TensorInfo: its signature shape (-1: any size), or an unknown rank when the
    converter could not tell it (an output whose shape only the run decides)."""
    info = meta_graph_pb2.TensorInfo(name=details["name"], dtype=tf.dtypes.as_dtype(details["dtype"]).as_datatype_enum)
    if has_rank or len(details["shape_signature"]):
        info.tensor_shape.SetInParent()  # rank 0 is a present, empty shape
        for size in details["shape_signature"]:
            info.tensor_shape.dim.add(size=int(size))
    else:
        info.tensor_shape.unknown_rank = True
    return info


class _Interpreter:
    """One single-threaded tf.lite.Interpreter and the input shapes it is allocated for."""

    def __init__(self, content: bytes) -> None:
        try:
            self.interpreter = tf.lite.Interpreter(model_content=content, num_threads=1)
        except ValueError as exc:
            raise invalid_argument(f"Cannot build FlatBufferModel from buffer: {_one_line(exc)}") from None
        try:
            # tf.lite.Interpreter resolves ops here, where TF Serving's InterpreterBuilder does when it builds
            self.interpreter.allocate_tensors()
        except RuntimeError as exc:
            raise ServingError(
                grpc.StatusCode.INTERNAL, f"Cannot build Interpreter from buffer: {_one_line(exc)}"
            ) from None
        self.shapes = {d["index"]: tuple(d["shape"]) for d in self.interpreter.get_input_details()}

    def run(self, inputs: Mapping[int, np.ndarray], outputs: list[int]) -> list[np.ndarray]:
        """SetInputAndInvokeMiniBatch then the outputs' copies: an input is resized (and the tensors allocated
        again) only when its feed has another shape than the last one."""
        resize = {index: value.shape for index, value in inputs.items() if value.shape != self.shapes.get(index)}
        if resize:
            self.shapes = {}  # unknown until allocated again
            try:
                for index, shape in resize.items():
                    self.interpreter.resize_tensor_input(index, list(shape))
            except ValueError as exc:
                raise ServingError(
                    grpc.StatusCode.INTERNAL, f"Failed to resize input tensor: {_one_line(exc)}"
                ) from None
            try:
                self.interpreter.allocate_tensors()
            except RuntimeError as exc:
                raise ServingError(grpc.StatusCode.INTERNAL, f"Failed to allocate tensors: {_one_line(exc)}") from None
            self.shapes = {d["index"]: tuple(d["shape"]) for d in self.interpreter.get_input_details()}
        try:
            for index, value in inputs.items():
                self.interpreter.set_tensor(index, value)
        except ValueError as exc:  # a dtype the input tensor cannot take
            raise invalid_argument(_one_line(exc)) from None
        try:
            self.interpreter.invoke()
        except RuntimeError as exc:
            raise ServingError(
                grpc.StatusCode.INTERNAL, f"Failed to invoke TfLite interpreter: {_one_line(exc)}"
            ) from None
        return [self.interpreter.get_tensor(index) for index in outputs]


class TfLiteSession:
    """The interpreter pool of one version, with SignatureDefs for metadata and the bundle interface Signature
    and Servable run through: `run(feeds, fetches)` by main-subgraph tensor names, `close()`."""

    def __init__(self, content: bytes, num_pools: int) -> None:
        first = _Interpreter(content)
        self._inputs = {d["name"]: d for d in first.interpreter.get_input_details()}
        self._outputs = {d["name"]: d for d in first.interpreter.get_output_details()}
        self.signature_defs = read_signature_defs(content)
        if self.signature_defs:
            for key, signature_def in self.signature_defs.items():
                for part, tensors in (("input", self._inputs), ("output", self._outputs)):
                    for alias, info in getattr(signature_def, f"{part}s").items():
                        name = _resolve(tensors, info.name)
                        if name is None:
                            raise ServingError(
                                grpc.StatusCode.INTERNAL,
                                f"Unknown tensor '{info.name}'. Signature {key} {part} {alias} references an "
                                "unknown tensor",
                            )
                        info.name = name
        else:
            log.warning("No signature def found in TFLite model. Generating one.")
            self.signature_defs = {SIGNATURE: self._generated_signature_def(content)}
        self._pool: queue.Queue[_Interpreter] = queue.Queue()
        self._pool.put(first)
        for _ in range(max(num_pools, 1) - 1):
            self._pool.put(_Interpreter(content))

    def _generated_signature_def(self, content: bytes) -> meta_graph_pb2.SignatureDef:
        """TF Serving's mock signature: every main-subgraph input and output keyed by its legacy name, in the
        order of their names (so of outputs named `X:0`, `X:1`, ... only the last keeps the key `X`)."""
        subgraph = schema.Model.GetRootAs(content, 0).Subgraphs(0)
        signature_def = meta_graph_pb2.SignatureDef(method_name=PREDICT_METHOD)
        for part, tensors in ((signature_def.inputs, self._inputs), (signature_def.outputs, self._outputs)):
            for name in sorted(tensors):
                has_rank = subgraph.Tensors(tensors[name]["index"]).HasRank()
                part[_legacy_name(name)].CopyFrom(_tensor_info(tensors[name], has_rank))
        return signature_def

    @classmethod
    def load(cls, path: Path, num_pools: int) -> TfLiteSession:
        """LoadTfLiteModel: read model.tflite and build the pool. A file TF Lite cannot read is INVALID_ARGUMENT,
        one whose ops it cannot resolve INTERNAL. Select TF ops without a Flex delegate fail at the first invoke,
        INTERNAL with the interpreter's words: a Contract-2 version's warm-up replay then fails its load."""
        return cls((path / TFLITE_FILE).read_bytes(), num_pools)

    def run(self, feeds: dict[str, np.ndarray], fetches: tuple[str, ...]) -> list[np.ndarray]:
        """One request on a free interpreter of the pool. A feed whose rank is not its input's is refused: TF
        Serving resizes a string input to {batch}, which would run a [batch, 1] feed as if it were [batch]."""
        inputs: dict[int, np.ndarray] = {}
        for name, value in feeds.items():
            resolved = _resolve(self._inputs, name)
            if resolved is None:
                raise ServingError(
                    grpc.StatusCode.INTERNAL, f"Unknown tensor '{name}'. Missing input TFLite tensor: {name}"
                )
            rank = len(self._inputs[resolved]["shape_signature"])
            if value.ndim != rank:
                raise invalid_argument(
                    f"Input tensor {resolved} takes rank {rank}, the request fed rank {value.ndim} (shape "
                    f"{list(value.shape)})"
                )
            inputs[self._inputs[resolved]["index"]] = value
        outputs = []
        for name in fetches:
            resolved = _resolve(self._outputs, name)
            if resolved is None:
                raise ServingError(
                    grpc.StatusCode.INTERNAL, f"Missing output TFLite tensor: {name}: Unknown tensor '{name}'."
                )
            outputs.append(self._outputs[resolved]["index"])
        interpreter = self._pool.get()  # blocks while every interpreter runs a request
        try:
            return interpreter.run(inputs, outputs)
        finally:
            self._pool.put(interpreter)

    def close(self) -> None:
        """Drop the interpreters (each frees its arena when garbage collected)."""
        while not self._pool.empty():
            self._pool.get_nowait()
