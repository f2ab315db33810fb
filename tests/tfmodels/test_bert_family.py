"""BERT through the real CLI: train (scratch and from an MLM-pretrained preset), export, reload in a fresh
process with only `import tensorflow_text`, and the family's in-process build from both preset layouts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.support.cli import cli_env, textclf
from tests.support.tiny_models import write_hf_bert

TINY = ["--epochs", "2", "--batch-size", "32", "--max-len", "32", "--vocab-size", "300", "--lr", "1e-3"]
TEXTS = ["这个酒店非常干净，早餐好吃，推荐", "房间太差，服务糟糕，还很贵", "Hello 世界", ""]

# Runs in a fresh interpreter: what TF Serving has is the graph plus the TF-Text kernels, nothing of ours.
FRESH_LOAD = """
import json, sys
import tensorflow as tf
import tensorflow_text  # registers the TF-Text kernels, as TF Serving links them
from tensorflow.core.protobuf import saved_model_pb2

version_dir, texts = sys.argv[1], json.loads(sys.argv[2])
signature = tf.saved_model.load(version_dir).signatures["serving_default"]
out = signature(text=tf.constant(texts))
proto = saved_model_pb2.SavedModel.FromString(open(version_dir + "/saved_model.pb", "rb").read())
ops = {n.op for g in proto.meta_graphs for n in g.graph_def.node}
ops |= {n.op for g in proto.meta_graphs for f in g.graph_def.library.function for n in f.node_def}
print(json.dumps({"inputs": list(signature.structured_input_signature[1]),
                  "outputs": {k: v.dtype.name for k, v in out.items()},
                  "probabilities": out["probabilities"].numpy().tolist(),
                  "label": [x.decode() for x in out["label"].numpy()],
                  "top_score": out["top_score"].numpy().tolist(), "ops": sorted(ops)}))
"""


def in_memory_probabilities(run: Path, texts: list[str]) -> np.ndarray:
    import tensorflow as tf

    from tfmodels.family import read_run
    from tfmodels.run_dir import RunDir

    family, config = read_run(RunDir(run))
    built = family.load(RunDir(run).model, config)
    return tf.nn.softmax(built.model(built.preprocessor(tf.constant(texts)), training=False)).numpy()


@pytest.mark.slow
def test_scratch_bert_trains_exports_and_serves_text(prepared: Path, tmp_path: Path) -> None:
    run, base = tmp_path / "run", tmp_path / "models"
    done = textclf("train", "bert", "--data", str(prepared), "--out", str(run), *TINY)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((run / "report" / "metrics.json").read_text())
    assert metrics["model"]["accuracy"] > 0.75, metrics["model"]  # the label words are easy to spot
    config = json.loads((run / "config.json").read_text())
    assert config["family"] == "bert" and config["preset"] is None and config["size"] == "tiny"

    done = textclf("export", str(run), "--model-base", str(base), "--name", "bert")
    assert done.returncode == 0, done.stderr[-3000:]
    version_dir = base / "bert" / "1"
    card = json.loads((version_dir / "assets.extra" / "model_card.json").read_text())
    assert card["model_type"] == "bert" and card["input_kind"] == "text"
    assert (version_dir / "assets.extra" / "tf_serving_warmup_requests").stat().st_size > 0

    fresh = subprocess.run(
        [sys.executable, "-c", FRESH_LOAD, str(version_dir), json.dumps(TEXTS)],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    served = json.loads(fresh.stdout.strip().splitlines()[-1])
    assert served["inputs"] == ["text"]
    contract = {"probabilities": "float32", "label": "string", "top_score": "float32"}
    assert {name: served["outputs"].get(name) for name in contract} == contract
    assert not {"PyFunc", "PyFuncStateless", "EagerPyFunc"} & set(served["ops"])
    assert {"FastWordpieceTokenizeWithOffsets", "RegexSplitWithOffsets"} <= set(served["ops"])  # TF-Text, in-graph
    expected = in_memory_probabilities(run, TEXTS)
    np.testing.assert_allclose(served["probabilities"], expected, atol=1e-5)
    assert served["label"] == [card["labels"][i] for i in expected.argmax(axis=1)]
    np.testing.assert_allclose(served["top_score"], expected.max(axis=1), atol=1e-5)


@pytest.mark.slow
def test_mlm_pretraining_writes_a_preset_that_train_bert_consumes(prepared: Path, tmp_path: Path) -> None:
    extra = tmp_path / "extra.txt"
    extra.write_text("酒店的位置很好\n\n早餐非常丰富，服务员很热情\n", encoding="utf-8")
    preset, run = tmp_path / "preset", tmp_path / "run"
    two_replicas = cli_env(TEXTCLF_CPU_DEVICES="2")  # MirroredStrategy over 2 logical CPUs, both steps
    done = textclf(
        "pretrain-mlm",
        "--data",
        str(prepared),
        "--extra-text",
        str(extra),
        "--out",
        str(preset),
        "--epochs",
        "1",
        "--sequence-length",
        "32",
        "--vocab-size",
        "300",
        "--batch-size",
        "32",
        env=two_replicas,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "MirroredStrategy" in done.stdout
    record = json.loads((preset / "pretraining.json").read_text())
    assert record["texts"] == 400 + 2  # the train split's text plus the two non-empty extra lines
    assert 0 <= record["dev_masked_accuracy"] <= 1 and np.isfinite(record["dev_masked_loss"])
    again = textclf("pretrain-mlm", "--data", str(prepared), "--out", str(preset))
    assert again.returncode == 1 and "already exists" in again.stderr

    done = textclf(
        "train",
        "bert",
        "--data",
        str(prepared),
        "--out",
        str(run),
        "--preset",
        str(preset),
        "--epochs",
        "1",
        "--max-len",
        "32",
        env=two_replicas,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 replica(s)" in done.stdout
    vocabulary = "assets/tokenizer/vocabulary.txt"
    assert (run / "model" / vocabulary).read_text() == (preset / vocabulary).read_text()
    assert json.loads((run / "config.json").read_text())["preset"] == str(preset.resolve())


def test_build_from_pretrained_presets_keeps_their_weights(tmp_path: Path) -> None:
    import keras_hub
    import tensorflow as tf

    from tfmodels.bert.family import FAMILY
    from tfmodels.bert.vocabulary import make_tokenizer
    from tfmodels.config import resolve

    write_hf_bert(tmp_path / "hf")
    keras_dir = tmp_path / "keras"
    keras_hub.models.BertBackbone(
        vocabulary_size=20, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16, max_sequence_length=16
    ).save_to_preset(str(keras_dir))
    make_tokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "好", "坏"]).save_to_preset(str(keras_dir))
    for preset in (tmp_path / "hf", keras_dir):
        reference = keras_hub.models.BertBackbone.from_preset(str(preset))
        config = resolve(FAMILY.config_class, None, {"preset": str(preset), "max_len": 64})
        built = FAMILY.build(config, tf.data.Dataset.from_tensor_slices(["unused"]), num_classes=3)
        for before, after in zip(reference.weights, built.model.backbone.weights, strict=True):
            np.testing.assert_array_equal(before.numpy(), after.numpy())
        inputs = built.preprocessor(tf.constant(["好", "好坏好坏"]))
        # [CLS] + 4 + [SEP] = 6 tokens: padded to the longest text of the batch, rounded up to 16
        assert inputs["token_ids"].shape == (2, 16)
        assert inputs["padding_mask"].numpy().sum(axis=1).tolist() == [3, 6]
        longer = built.preprocessor(tf.constant(["好坏" * 10]))  # 22 tokens -> 32, or all of a 16-position preset
        assert longer["token_ids"].shape == (1, min(32, reference.max_sequence_length))
        assert built.model(inputs).shape == (2, 3)
        assert built.preprocessor.packer.sequence_length == min(64, reference.max_sequence_length)


def test_bad_bert_flags_are_one_line_errors(prepared: Path, tmp_path: Path) -> None:
    for args, message in [
        (
            ["train", "bert", "--data", str(prepared), "--out", str(tmp_path / "r"), "--preset", "bert_base_en"],
            "not a local folder",
        ),
        (
            ["pretrain-mlm", "--data", str(prepared), "--out", str(tmp_path / "p"), "--extra-text", "builtin:x"],
            "unknown builtin",
        ),
        (["pretrain-mlm", "--data", str(tmp_path), "--out", str(tmp_path / "p")], "not a prepared dataset"),
    ]:
        done = textclf(*args)
        assert done.returncode == 1, done.stderr
        assert message in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
