"""The layout of a training run's folder, named once: train, evaluate, export and resume all read it here.

RUN_DIR/config.json    resolved settings (tfmodels.config), so a run can be evaluated, exported or resumed
        history.csv    one row per epoch (CSVLogger; resume appends)
        logs/          TensorBoard
        checkpoints/   best.weights.h5: best dev accuracy so far
        backup/        BackupAndRestore while training; gone once a run finishes
        model/         the family's saved model
        report/        test metrics beside the baseline (tfmodels.evaluate)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunDir:
    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def config(self) -> Path:
        return self.path / "config.json"

    @property
    def history(self) -> Path:
        return self.path / "history.csv"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def best_weights(self) -> Path:
        return self.checkpoints / "best.weights.h5"

    @property
    def backup(self) -> Path:
        return self.path / "backup"

    @property
    def backup_progress(self) -> Path:
        """Keras BackupAndRestore's own progress file: present only while a run is unfinished."""
        return self.backup / "training_metadata.json"

    @property
    def model(self) -> Path:
        return self.path / "model"

    @property
    def report(self) -> Path:
        return self.path / "report"

    @property
    def metrics(self) -> Path:
        return self.report / "metrics.json"

    @property
    def confusion(self) -> Path:
        return self.report / "confusion.json"

    @property
    def confusion_plot(self) -> Path:
        return self.report / "confusion.png"

    @property
    def curves_plot(self) -> Path:
        return self.report / "curves.png"

    def entries(self) -> tuple[Path, ...]:
        """Everything a run writes at its top level: what a fresh start clears."""
        return (self.config, self.backup, self.checkpoints, self.history, self.logs, self.model, self.report)
