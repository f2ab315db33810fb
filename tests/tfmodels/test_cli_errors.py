"""Bad flags and missing inputs end in one readable line and exit code 1, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import textclf


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
