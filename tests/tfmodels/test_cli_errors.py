"""Bad flags and missing inputs end in one readable line and exit code 1, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import textclf
from tests.support.prepared import fake_run, published


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "lstm", "--data", "{missing}", "--out", "{tmp}/run"], "is not a prepared dataset"),
        (
            ["train", "lstm", "--data", "{data}", "--out", "{tmp}/run", "--epochs", "many"],
            "'many' is not a valid integer",
        ),
        (["train", "lstm", "--data", "{data}", "--out", "{tmp}/run", "--epochs", "0"], "epochs must be at least 1"),
        (["train", "lstm", "--data", "{data}", "--out", "{tmp}/run", "--strategy", "tpu"], "'tpu' is not one of"),
        (
            ["train", "lstm", "--data", "{data}", "--out", "{tmp}/run", "--config", "{tmp}/bad.yaml"],
            "unknown hyperparameter 'lstm_unit'",
        ),
        (["evaluate", "{tmp}/nothing"], "is not a training run"),
        (["export", "{tmp}/nothing", "--model-base", "{tmp}/m", "--name", "x"], "is not a training run"),
    ],
)
def test_one_line_error(args: list[str], message: str, prepared: Path, tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("lstm_unit: 3\n")
    args = [a.format(missing=tmp_path / "missing", tmp=tmp_path, data=prepared) for a in args]
    result = textclf(*args)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_corrupt_json_of_a_run_a_card_or_a_preset_is_one_line(prepared: Path, tmp_path: Path) -> None:
    corrupt_run = tmp_path / "corrupt"
    corrupt_run.mkdir()
    (corrupt_run / "config.json").write_text('{"family": "lstm",')
    run = fake_run(tmp_path / "run", prepared)
    models = published(tmp_path / "models", "{not json")
    preset = tmp_path / "preset"
    preset.mkdir()
    (preset / "config.json").write_text("{oops")
    for args, path in [
        (["evaluate", str(corrupt_run)], corrupt_run / "config.json"),
        (["export", str(run), "--model-base", str(models), "--name", "sent"], models / "sent/1/assets.extra"),
        (["train", "bert", "--data", str(prepared), "--out", str(tmp_path / "b"), "--preset", str(preset)], preset),
    ]:
        result = textclf(*args)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        lines = [line for line in result.stderr.splitlines() if line.startswith("Error")]
        assert len(lines) == 1 and "is not valid JSON" in lines[0] and str(path) in lines[0], result.stderr


def test_export_refuses_to_compare_with_a_version_of_another_dataset(prepared: Path, tmp_path: Path) -> None:
    run = fake_run(tmp_path / "run", prepared)
    other = "f" * 64
    models = published(tmp_path / "models", json.dumps({"version": 1, "data_hash": other, "test_metrics": {}}))
    result = textclf("export", str(run), "--model-base", str(models), "--name", "sent")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(lines) == 1, result.stderr
    assert "different dataset" in lines[0] and other in lines[0] and "0" * 64 in lines[0] and "--force" in lines[0]
