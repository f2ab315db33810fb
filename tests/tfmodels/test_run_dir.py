"""The run folder's layout, named once."""

from __future__ import annotations

from pathlib import Path

from tfmodels.run_dir import RunDir


def test_layout_names_every_file_a_run_writes(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    relative = {str(p.relative_to(tmp_path)) for p in run.entries()}
    assert relative == {"config.json", "history.csv", "logs", "checkpoints", "backup", "model", "report"}
    assert run.best_weights.relative_to(tmp_path) == Path("checkpoints/best.weights.h5")
    assert run.backup_progress.relative_to(tmp_path) == Path("backup/training_metadata.json")
    assert run.metrics.relative_to(tmp_path) == Path("report/metrics.json")
    assert RunDir(str(tmp_path)).path == tmp_path  # a str is taken as a path
