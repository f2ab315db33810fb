"""End to end through the real CLI: MirroredStrategy over 2 logical CPUs trains, evaluates and exports;
the export reloads in a fresh process and matches the Keras model; the gate refuses a worse model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.support.cli import ROOT, cli_env, textclf
from tests.support.corpus import SMALL
from tests.support.prepared import flipped

pytestmark = pytest.mark.slow

RELOAD = """
import json, sys
import tensorflow as tf
sig = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
out = sig(tokens=tf.constant(json.loads(sys.argv[2])))
def plain(value):  # bytes (at any nesting depth: class_names is [batch, C]) -> str
    return [plain(v) for v in value] if isinstance(value, list) else (
        value.decode() if isinstance(value, bytes) else value)
print(json.dumps({k: plain(v.numpy().tolist()) for k, v in out.items()}))
"""


@pytest.fixture(scope="module")
def mirrored_run(prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "mirrored"
    result = textclf(
        "train", "lstm", "--data", str(prepared), "--out", str(run), *SMALL, env=cli_env(TEXTCLF_CPU_DEVICES="2")
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "fresh start" in result.stdout
    assert "2 replica(s) (MirroredStrategy), global batch 64" in result.stdout
    return run


def test_training_writes_config_model_and_report(mirrored_run: Path) -> None:
    config = json.loads((mirrored_run / "config.json").read_text())
    assert (config["family"], config["epochs"], config["lstm_units"]) == ("lstm", 2, 8)
    metrics = json.loads((mirrored_run / "report" / "metrics.json").read_text())
    assert metrics["model"]["accuracy"] > 0.6  # the generated labels are learnable
    assert set(metrics["model"]["per_class"]) == {"negative", "positive"}
    assert metrics["baseline"]["kind"].startswith("tfidf")
    for name in ("confusion.png", "curves.png", "confusion.json"):
        assert (mirrored_run / "report" / name).stat().st_size > 0
    assert not (mirrored_run / "backup").exists()  # finished runs drop their backup
    assert list((mirrored_run / "logs").rglob("events.out.tfevents.*"))


def test_export_round_trip_and_gate(mirrored_run: Path, prepared: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    result = textclf("export", str(mirrored_run), "--model-base", str(models), "--name", "sent")
    assert result.returncode == 0, result.stderr
    v1 = models / "sent" / "1"
    card = json.loads((v1 / "assets.extra" / "model_card.json").read_text())
    assert (card["model_type"], card["input_kind"], card["labels"]) == ("lstm", "tokens", ["negative", "positive"])
    assert card["preprocessing"] == {"hmm": True, "max_chars": None} and len(card["data_hash"]) == 64
    assert len(card["split_hash"]) == 64  # what the next export's gate compares against
    assert (v1 / "assets.extra" / "tf_serving_warmup_requests").stat().st_size > 0

    # a fresh process with plain TensorFlow reads it; probabilities match the in-memory Keras model
    inputs = ["酒店 很 好吃 满意", "退货 失望 太差", "完全 没见过 的 词"]
    reload = subprocess.run(
        [sys.executable, "-c", RELOAD, str(v1), json.dumps(inputs, ensure_ascii=False)],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert reload.returncode == 0, reload.stderr
    served = json.loads(reload.stdout.strip().splitlines()[-1])

    import tensorflow as tf

    from tfmodels.family import read_run
    from tfmodels.run_dir import RunDir

    family, config = read_run(RunDir(mirrored_run))
    built = family.for_serving(family.load(RunDir(mirrored_run).model, config), config)  # the copy exported
    expected = tf.nn.softmax(built.model(built.preprocessor(tf.constant(inputs)))).numpy()
    np.testing.assert_allclose(served["probabilities"], expected, atol=1e-5)
    assert served["label"] == [["negative", "positive"][i] for i in expected.argmax(axis=1)]
    np.testing.assert_allclose(served["top_score"], expected.max(axis=1), atol=1e-5)

    # a worse run (the same network with every label flipped; the gate scores the exported model) is
    # refused in one line, then forced
    worse = flipped(mirrored_run, tmp_path / "worse")
    refused = textclf("export", str(worse), "--model-base", str(models), "--name", "sent")
    assert refused.returncode == 1
    errors = [line for line in refused.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and "gate: test accuracy" in errors[0], refused.stderr
    assert sorted(p.name for p in (models / "sent").iterdir()) == ["1"]  # nothing half-written left
    forced = textclf("export", str(worse), "--model-base", str(models), "--name", "sent", "--force")
    assert forced.returncode == 0, forced.stderr
    assert sorted(p.name for p in (models / "sent").iterdir()) == ["1", "2"]
