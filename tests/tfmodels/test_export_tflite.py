"""`textclf export --tflite`: model.tflite converted from the version's SavedModel and gated on label agreement
with it on the test split. The LSTM converts with Select TF ops, which this TensorFlow's tf.lite.Interpreter
cannot run (no Flex delegate since TF 2.20): the gate says so in one line and publishes nothing, --force
publishes it unchecked. The agreement figure itself is checked on a builtin-only model."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import numpy as np
import pytest

from data_prep.errors import UserError
from serving.contract import (
    CARD_FILE,
    CLASS_NAMES,
    LABEL,
    PROBABILITIES,
    SIGNATURE,
    TFLITE_FILE,
    TOKENS_INPUT,
    TOP_SCORE,
    versions_on_disk,
)
from serving.model_server.errors import ServingError
from serving.model_server.servable import Servable
from serving.model_server.tflite_session import read_signature_defs
from tests.support.cli import textclf
from tests.support.lookup_model import WORDS, build_lookup_model
from tfmodels.export import export_run
from tfmodels.tflite import MIN_AGREEMENT, check_tflite, convert


@pytest.fixture(scope="module")
def run(prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smallest LSTM: one epoch on 64 texts, its hashed n-gram tables kept tiny by a config file."""
    folder = tmp_path_factory.mktemp("tflite-run")
    config = folder / "tiny.yaml"
    config.write_text("ngram_buckets: 256\nngram_dim: 4\n")
    out = folder / "lstm"
    tiny = ["--config", str(config), "--epochs", "1", "--max-train-examples", "64", "--max-len", "16"]
    tiny += ["--batch-size", "32", "--embedding-dim", "8", "--lstm-units", "8", "--min-count", "1"]
    result = textclf("train", "lstm", "--data", str(prepared), "--out", str(out), *tiny)
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def test_unrunnable_tflite_is_refused_then_forced(run: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError) as refused:
        export_run(run, tmp_path, "m", tflite=True)
    message = str(refused.value)
    assert message.startswith("gate: model.tflite cannot run in this TensorFlow's TF Lite interpreter")
    assert "Flex" in message and message.endswith("use --force to publish it unchecked") and "\n" not in message
    assert versions_on_disk(tmp_path / "m") == {}  # nothing half-written
    version = export_run(run, tmp_path, "m", tflite=True, force=True)
    assert (version / TFLITE_FILE).stat().st_size > 0 and (version / "saved_model.pb").is_file()
    card = json.loads((version / CARD_FILE).read_text())
    assert card["tflite"]["label_agreement_with_saved_model"] is None and "Flex" in card["tflite"]["unchecked"]
    assert card["tflite"]["mb"] > 0 and card["size_mb"] >= card["tflite"]["mb"]
    # the SignatureDef TF Serving reads from the file: Contract-2 keys naming the TF Lite tensors
    (exported,) = read_signature_defs((version / TFLITE_FILE).read_bytes()).items()
    assert exported[0] == SIGNATURE and set(exported[1].inputs) == {TOKENS_INPUT}
    assert set(exported[1].outputs) == {PROBABILITIES, LABEL, TOP_SCORE, CLASS_NAMES}
    assert exported[1].inputs[TOKENS_INPUT].name == f"{SIGNATURE}_{TOKENS_INPUT}:0"
    assert [d.size for d in exported[1].outputs[PROBABILITIES].tensor_shape.dim] == [-1, len(card["labels"])]
    served = Servable.load("m", 1, version, ["serve"], prefer_tflite=True)  # as with --prefer_tflite_model
    with pytest.raises(ServingError, match="^Failed to invoke TfLite interpreter: .*Flex") as failed:
        served.signature(SIGNATURE).run({TOKENS_INPUT: np.array([b"a b"], dtype=object)})
    assert failed.value.code == grpc.StatusCode.INTERNAL
    served.retire()
    # int8 calibration runs the model in the interpreter: with Select TF ops it cannot, and says why in one line
    with pytest.raises(UserError, match=r"^TF Lite conversion failed \(int8 quantization\): [^\n]*$"):
        convert(version, "int8", [b"a b"], TOKENS_INPUT)
    with pytest.raises(UserError, match=r"^--quantize applies to the TF Lite model: add --tflite$"):
        export_run(run, tmp_path, "m", quantize="dynamic")


def test_agreement_is_measured_and_gated(tmp_path: Path) -> None:
    build_lookup_model(tmp_path)
    content = convert(tmp_path, "dynamic", [], TOKENS_INPUT)
    texts = [word.encode() for word in WORDS] + ["不在表里".encode()]
    record = check_tflite(content, tmp_path, TOKENS_INPUT, texts, "dynamic", force=False)
    assert record["label_agreement_with_saved_model"] == 1.0 and record["checked_on_test_texts"] == len(texts)
    assert record["min_agreement"] == MIN_AGREEMENT and record["quantize"] == "dynamic"
    other = tmp_path / "other"
    build_lookup_model(other, default_class=2)  # labels unknown texts otherwise: 4 of 5 agree
    with pytest.raises(UserError, match=r"^gate: model.tflite labels 80.00% of the 5 test texts like the SavedModel"):
        check_tflite(convert(other, None, [], TOKENS_INPUT), tmp_path, TOKENS_INPUT, texts, None, force=False)
