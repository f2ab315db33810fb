"""Training hyperparameters: shared defaults, a family's defaults, a --config file, then CLI flags.

The resolved dict is saved as RUN_DIR/config.json, so a run can be evaluated, exported or resumed later.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from data_prep.errors import UserError

CONFIG_FILE = "config.json"

# shared by every family; a family adds its own keys (tfmodels.family.ModelFamily.defaults)
TRAIN_DEFAULTS: dict[str, Any] = {
    "epochs": 6,
    "batch_size": 64,  # per replica; global batch = batch_size x replicas
    "optimizer": "adamw",  # adam | adamw
    "lr": 2e-3,
    "weight_decay": 1e-4,
    "warmup_ratio": 0.05,
    "decay": "cosine",  # cosine | linear
    "clipnorm": 1.0,
    "label_smoothing": 0.0,
    "ema": 0.0,  # >0: keep an exponential moving average of the weights (this momentum); dev, best and final use it
    "patience": 2,  # early stopping on dev accuracy; best weights restored
    "seed": 1234,
    "shuffle_buffer": 20000,
    "bucketing": True,  # False: pad every batch to max_len (benchmark comparison only)
    "max_len": 128,  # length cap, in the family's units (words for LSTM)
    "backup_every_steps": 50,  # BackupAndRestore frequency, so a kill mid-epoch loses little
    "strategy": "auto",
    "max_train_examples": 0,  # 0: all; >0: first N (smoke runs, bench)
    "mixed_precision": False,  # mixed_float16 compute, float32 variables (GPUs); loss scaling is automatic
    "xla": False,  # jit_compile the train step (GPUs; one compile per bucket shape)
}

# recorded in config.json beside the hyperparameters, ignored when that file is passed back as --config
RUN_KEYS = ("family", "data")

CHOICES = {"optimizer": ("adam", "adamw"), "decay": ("cosine", "linear")}


def load_config_file(path: Path) -> dict[str, Any]:
    """A YAML or JSON mapping of hyperparameters (JSON is YAML, so one parser reads both)."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not valid YAML/JSON: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} must hold a mapping of hyperparameters")
    return data


def resolve(family_defaults: dict[str, Any], config_file: Path | None, overrides: dict[str, Any]) -> dict[str, Any]:
    """defaults < family defaults < --config file < flags given on the command line (None = not given)."""
    config = {**TRAIN_DEFAULTS, **family_defaults}
    layered = load_config_file(config_file) if config_file else {}
    layered.update({k: v for k, v in overrides.items() if v is not None})
    for key, value in layered.items():
        if key in RUN_KEYS:
            continue
        if key not in config:
            raise UserError(f"unknown hyperparameter {key!r}; known: {', '.join(sorted(config))}")
        default = config[key]
        if (
            default is not None
            and not isinstance(value, type(default))
            and not (isinstance(default, float) and isinstance(value, int))
        ):
            raise UserError(f"hyperparameter {key}={value!r} should be a {type(default).__name__}")
        config[key] = float(value) if isinstance(default, float) else value
    for key, allowed in CHOICES.items():
        if config[key] not in allowed:
            raise UserError(f"{key}={config[key]!r}: choose one of {', '.join(allowed)}")
    for key in ("epochs", "batch_size", "max_len"):
        if config[key] < 1:
            raise UserError(f"{key} must be at least 1, got {config[key]}")
    return config


def save_config(run_dir: Path, config: dict[str, Any]) -> None:
    from data_prep.atomic import write_text

    write_text(Path(run_dir) / CONFIG_FILE, json.dumps(config, indent=2, ensure_ascii=False, sort_keys=True) + "\n")


def read_config(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise UserError(f"{run_dir} is not a training run (no {CONFIG_FILE}); run `textclf train` first")
    return json.loads(path.read_text(encoding="utf-8"))
