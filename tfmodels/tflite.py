"""TF Lite export of a published version: `model.tflite` beside saved_model.pb, the file TF Serving reads with
--prefer_tflite_model, and the gate's check that it labels the test split as the SavedModel does.

Preprocessing stays in the model: string ops TF Lite has no builtin for run as Select TF ops (the Flex
delegate, which tensorflow_model_server links). The TensorFlow pip package's tf.lite.Interpreter has no Flex
delegate since 2.20, so a model that needs one converts but cannot be run (nor int8-calibrated) here: the
gate then says so with the interpreter's words instead of guessing.

TF Serving takes a model file's SignatureDefs only from its `signature_defs_metadata` entry, which the
converter does not write (without it, TF Serving generates a signature keyed by tensor names), so the export
adds that entry with the Contract-2 keys.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from flatbuffers import flexbuffers

from data_prep.errors import UserError
from serving.contract import LABEL, SIGNATURE, TFLITE_FILE, TFLITE_SIGNATURE_DEFS

if TYPE_CHECKING:
    from tensorflow.core.protobuf import meta_graph_pb2

QUANTIZE = ("dynamic", "float16", "int8")
# int8 calibration texts: TF Lite's own examples use ~100-500 representative samples
REPRESENTATIVE_EXAMPLES = 200
# A model file that labels fewer test texts like its SavedModel is refused: quantization may move a few
# borderline texts (top-2 probabilities within rounding), a broken conversion moves many.
MIN_AGREEMENT = 0.99
CHECK_BATCH = 64


def _converter_message(error: BaseException) -> str:
    """The converter's and interpreter's messages are multi-line logs: the first line that says what is not
    supported, cut to its first sentence, plus the interpreter's "Node number N (Op) failed to prepare"."""
    text = str(error)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    useful = [line for line in lines if "error:" in line.lower() or "not supported" in line.lower()]
    line = (useful or lines or [type(error).__name__])[0]
    node = re.search(r"Node number \d+ \(\w+\) failed to prepare", text)
    if node and node.group(0) not in line.split(". ")[0]:
        return f"{line.split('. ')[0]} ({node.group(0)})"
    return line


def convert(saved_model_dir: Path, quantize: str | None, representative: list[bytes], input_name: str) -> bytes:
    """Convert the SavedModel's serving signature, builtins first and Select TF ops for the rest.
    `representative` calibrates int8 (train-split strings). UserError quoting the converter when it fails."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir), signature_keys=[SIGNATURE])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    if quantize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":

        def calibration() -> Iterator[dict[str, np.ndarray]]:
            for text in representative:
                yield {input_name: np.array([text], dtype=object)}

        converter.representative_dataset = calibration
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)  # the converter logs every Select TF op it used
    try:
        content = bytes(converter.convert())
    except Exception as exc:  # ConverterError, or a calibration that cannot run the model: one line either way
        raise UserError(
            f"TF Lite conversion failed ({quantize or 'no'} quantization): {_converter_message(exc)}"
        ) from None
    finally:
        absl.setLevel(level)
    return with_signature_defs(content, {SIGNATURE: lite_signature_def(content, saved_model_dir)})


def lite_signature_def(content: bytes, saved_model_dir: Path) -> meta_graph_pb2.SignatureDef:
    """The SavedModel's serving SignatureDef (Contract-2 keys, dtypes, shapes) with each TensorInfo naming the
    TF Lite tensor the converter bound to that key, the names TF Serving resolves in the model's main subgraph."""
    from tensorflow.core.protobuf import meta_graph_pb2
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.python.saved_model import loader_impl

    saved = loader_impl.parse_saved_model(str(saved_model_dir)).meta_graphs[0].signature_def[SIGNATURE]
    model = schema.Model.GetRootAs(content, 0)
    lite = next(
        model.SignatureDefs(i)
        for i in range(model.SignatureDefsLength())
        if model.SignatureDefs(i).SignatureKey() == SIGNATURE.encode()
    )
    tensors = model.Subgraphs(lite.SubgraphIndex())
    signature_def = meta_graph_pb2.SignatureDef()
    signature_def.CopyFrom(saved)
    for part, count, entry in (
        (signature_def.inputs, lite.InputsLength(), lite.Inputs),
        (signature_def.outputs, lite.OutputsLength(), lite.Outputs),
    ):
        for j in range(count):
            alias = entry(j).Name().decode()
            part[alias].name = tensors.Tensors(entry(j).TensorIndex()).Name().decode()
    return signature_def


def with_signature_defs(content: bytes, signature_defs: dict[str, meta_graph_pb2.SignatureDef]) -> bytes:
    """`content` with its `signature_defs_metadata` entry set, as TF Lite's SetSignatureDefMap writes it: a
    flexbuffer map from signature key to the serialized SignatureDef stored as a String."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    builder = flexbuffers.Builder()
    with builder.Map():
        for key, signature_def in sorted(signature_defs.items()):
            serialized = signature_def.SerializeToString()
            if b"\0" in serialized:  # TF Serving reads the value with AsString().c_str(): it would stop there
                raise UserError(f"TF Lite SignatureDef {key!r} serializes with a zero byte, which TF Serving cuts at")
            builder.Key(key)
            # Builder.String only takes text (UTF-8 encoded); the value is bytes stored with flexbuffers' STRING type
            builder._WriteBlob(serialized, append_zero=True, type_=flexbuffers.Type.STRING)
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    model.metadata = [m for m in model.metadata or [] if m.name != TFLITE_SIGNATURE_DEFS.encode()]
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(bytes(builder.Finish()), dtype=np.uint8)
    model.buffers.append(buffer)
    metadata = schema.MetadataT()
    metadata.name = TFLITE_SIGNATURE_DEFS
    metadata.buffer = len(model.buffers) - 1
    model.metadata.append(metadata)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


class TfLiteModel:
    """One interpreter over model.tflite, run through its `serving_default` signature runner."""

    def __init__(self, content: bytes) -> None:
        import tensorflow as tf

        self.interpreter = tf.lite.Interpreter(model_content=content)
        self.runner = self.interpreter.get_signature_runner(SIGNATURE)

    def __call__(self, **inputs: np.ndarray) -> dict[str, np.ndarray]:
        return dict(self.runner(**inputs))


def agreement(content: bytes, saved_model_dir: Path, input_name: str, texts: list[bytes]) -> float:
    """Share of `texts` the TF Lite model labels as the SavedModel's serving signature does. UserError with
    the interpreter's message when the model cannot run here (e.g. Select TF ops without a Flex delegate)."""
    import tensorflow as tf

    if not texts:
        raise UserError("gate: the test split is empty, so model.tflite cannot be checked")
    signature = tf.saved_model.load(str(saved_model_dir)).signatures[SIGNATURE]
    try:
        lite = TfLiteModel(content)
    except (RuntimeError, ValueError) as exc:
        raise UserError(f"gate: model.tflite does not load in tf.lite.Interpreter: {_converter_message(exc)}") from None
    same = 0
    for start in range(0, len(texts), CHECK_BATCH):
        batch = np.array(texts[start : start + CHECK_BATCH], dtype=object)
        expected = signature(**{input_name: tf.constant(batch)})[LABEL].numpy()
        try:
            got = lite(**{input_name: batch})[LABEL]
        except (RuntimeError, ValueError) as exc:
            raise UserError(
                f"gate: model.tflite cannot run in this TensorFlow's TF Lite interpreter, so its labels cannot be "
                f"checked against the SavedModel's: {_converter_message(exc)}"
            ) from None
        same += int(np.sum(got == expected))
    return same / len(texts)


def megabytes(path: Path) -> float:
    """Size on disk of a file or of every file under a folder, in MB (10^6 bytes), 2 decimals."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return round(sum(p.stat().st_size for p in files) / 1e6, 2)


def check_tflite(
    content: bytes, saved_model_dir: Path, input_name: str, texts: list[bytes], quantize: str | None, force: bool
) -> dict[str, Any]:
    """The gate on model.tflite: refuse below MIN_AGREEMENT, or when it cannot run here (--force publishes it
    unchecked, and the card says why). Returns what the model card says about it."""
    record: dict[str, Any] = {
        "file": TFLITE_FILE,
        "quantize": quantize or "none",
        "mb": round(len(content) / 1e6, 2),
        "min_agreement": MIN_AGREEMENT,
        "checked_on_test_texts": len(texts),
    }
    try:
        agreed = agreement(content, saved_model_dir, input_name, texts)
    except UserError as exc:
        if not force:
            raise UserError(f"{exc}; use --force to publish it unchecked") from None
        return {**record, "label_agreement_with_saved_model": None, "unchecked": str(exc)}
    if agreed < MIN_AGREEMENT and not force:
        raise UserError(
            f"gate: model.tflite labels {agreed:.2%} of the {len(texts)} test texts like the SavedModel, below "
            f"{MIN_AGREEMENT:.0%} ({quantize or 'no'} quantization); use --force to publish"
        )
    return {**record, "label_agreement_with_saved_model": round(agreed, 4)}
