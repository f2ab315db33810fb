"""A run killed mid-epoch and started again with the same command resumes from its backup."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import ROOT, cli_env, textclf, wait_for_second_epoch_backup
from tests.support.corpus import SMALL

pytestmark = pytest.mark.slow


def test_killed_run_resumes_from_backup(prepared: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = [
        "train",
        "lstm",
        "--data",
        str(prepared),
        "--out",
        str(run),
        *SMALL,
        "--epochs",
        "3",
        "--batch-size",
        "8",
        "--backup-every-steps",
        "5",
        "--patience",
        "9",
        "--max-train-examples",
        "200",
    ]
    first = subprocess.Popen(
        [sys.executable, "-m", "textclf", *args],
        cwd=ROOT,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        in_second_epoch = wait_for_second_epoch_backup(run, first)  # then kill mid-epoch
        assert first.poll() is None, "training ended before it could be interrupted:\n" + first.stdout.read()
        assert in_second_epoch, "no backup of the second epoch within 300 s"
    finally:
        first.kill()
        first.wait()
    assert not (run / "model").exists()

    second = textclf(*args)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "resume: " in second.stdout and "from epoch 2" in second.stdout
    assert "fresh start" not in second.stdout
    with (run / "history.csv").open() as f:
        epochs = [int(row["epoch"]) for row in csv.DictReader(f)]
    assert epochs == [0, 1, 2]  # epoch 0 from the first process, 1 and 2 after resuming
    assert (run / "report" / "metrics.json").is_file()

    again = textclf(*args)  # the same command on a finished run does not silently retrain
    assert again.returncode == 1 and "already holds a trained model" in again.stderr
