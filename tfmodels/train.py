"""Train one model family on a prepared dataset into RUN_DIR; resume from RUN_DIR/backup if a run was cut.

RUN_DIR layout: config.json (resolved hyperparameters), backup/ (BackupAndRestore, gone once finished),
checkpoints/best.weights.h5 (best dev accuracy), history.csv, logs/ (TensorBoard), model/ (the family's
saved model), report/ (tfmodels.evaluate).
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data_prep.dataset_format import read_meta
from data_prep.errors import UserError
from tfmodels.config import read_config, resolve, save_config
from tfmodels.family import Built, ModelFamily, get_family

BACKUP_DIR = "backup"
BEST_WEIGHTS = "checkpoints/best.weights.h5"
HISTORY_FILE = "history.csv"
MODEL_DIR = "model"
BACKUP_META = Path(BACKUP_DIR) / "training_metadata.json"  # Keras BackupAndRestore's progress file
RUN_FILES = ("config.json", BACKUP_DIR, "checkpoints", HISTORY_FILE, "logs", MODEL_DIR, "report")


def _start_mode(run_dir: Path, config: dict[str, Any], force: bool) -> str:
    """'fresh' or 'resume'; refuses to overwrite a finished run or resume with different settings."""
    if (run_dir / BACKUP_META).is_file() and not force:
        saved = read_config(run_dir)
        changed = sorted(k for k in set(saved) | set(config) if saved.get(k) != config.get(k))
        if changed:
            raise UserError(
                f"{run_dir} holds an interrupted run with other settings ({', '.join(changed)}); "
                "rerun with the same flags or add --force to start over"
            )
        return "resume"
    if (run_dir / MODEL_DIR).exists() and not force:
        raise UserError(f"{run_dir} already holds a trained model (use --force to train again)")
    for name in RUN_FILES:
        target = run_dir / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    return "fresh"


def _best_dev_so_far(run_dir: Path) -> float | None:
    path = run_dir / HISTORY_FILE
    if not path.is_file():
        return None
    with path.open(newline="") as f:
        values = [float(row["val_accuracy"]) for row in csv.DictReader(f) if row.get("val_accuracy")]
    return max(values) if values else None


@dataclass
class Session:
    """A compiled model and its input pipelines, ready for `fit` (shared by train() and bench/train.py)."""

    built: Built
    train_ds: Any
    dev_ds: Any
    n_train: int
    global_batch: int


def compile_session(
    family: ModelFamily, data_dir: Path, config: dict[str, Any], strategy: Any, meta: dict[str, Any]
) -> Session:
    """Seed, read the train split, build + compile the family's model in the strategy's scope, make tf.data."""
    import keras

    from tfmodels.pipeline import batched, read_split
    from tfmodels.schedule import make_optimizer

    keras.utils.set_random_seed(config["seed"])
    replicas = strategy.num_replicas_in_sync
    global_batch = config["batch_size"] * replicas
    feature = family.input_feature
    train_raw = read_split(data_dir, "train", feature, limit=config["max_train_examples"])
    n_train = sum(meta["counts"]["train"].values())  # prep counted the split: no pass over it here
    if config["max_train_examples"]:
        n_train = min(n_train, config["max_train_examples"])
    labels = list(meta["labels"])
    if n_train == 0:
        raise UserError(f"{data_dir} has an empty train split")
    steps_per_epoch = math.ceil(n_train / global_batch)
    print(
        f"{family.name}: {n_train} train examples, {len(labels)} labels, {replicas} replica(s) "
        f"({type(strategy).__name__}), global batch {global_batch}"
    )
    keras.mixed_precision.set_global_policy("mixed_float16" if config["mixed_precision"] else "float32")
    with strategy.scope():
        built = family.build(config, train_raw.map(lambda text, label: text), len(labels))
        built.model.compile(
            jit_compile=config["xla"],
            optimizer=make_optimizer(config, steps_per_epoch * config["epochs"]),
            loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=config["label_smoothing"]),
            metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        )
    common = dict(
        preprocessor=built.preprocessor,
        num_classes=len(labels),
        global_batch=global_batch,
        max_len=config["max_len"],
        length_fn=family.length_fn,
        bucketing=config["bucketing"],
    )
    train_ds = batched(train_raw, shuffle_buffer=config["shuffle_buffer"], seed=config["seed"], **common)
    dev_ds = batched(read_split(data_dir, "dev", feature), **common)
    return Session(built, train_ds, dev_ds, n_train, global_batch)


def train(
    family_name: str,
    data_dir: Path,
    run_dir: Path,
    *,
    config_file: Path | None = None,
    overrides: dict[str, Any] | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Train, keep the best dev weights, save the model and write the evaluation report. Returns metrics."""
    from tfmodels.strategy import make_strategy  # first TF touch: may split the CPU into logical devices

    data_dir, run_dir = Path(data_dir).resolve(), Path(run_dir)
    meta = read_meta(data_dir)  # before the family's (TensorFlow) import: a wrong path fails fast
    family = get_family(family_name)
    config = resolve(family.defaults, config_file, overrides or {})
    config.update(family=family.name, data=str(data_dir))
    strategy = make_strategy(config["strategy"])

    import keras
    import tensorflow as tf

    run_dir.mkdir(parents=True, exist_ok=True)
    mode = _start_mode(run_dir, config, force)
    if mode == "resume":
        state = json.loads((run_dir / BACKUP_META).read_text())
        print(f"resume: {run_dir} from epoch {state['epoch'] + 1} (backup taken after batch {state['batch']})")
    else:
        print(f"fresh start: {run_dir}")
        save_config(run_dir, config)

    session = compile_session(family, data_dir, config, strategy, meta)
    built = session.built

    best_path = run_dir / BEST_WEIGHTS
    best_path.parent.mkdir(parents=True, exist_ok=True)
    callbacks = [
        keras.callbacks.BackupAndRestore(
            str(run_dir / BACKUP_DIR), save_freq=config["backup_every_steps"], double_checkpoint=True
        ),  # a kill mid-write keeps the previous one
        # EMA weights in the model for validation and the best checkpoint, raw weights back for training;
        # after BackupAndRestore, whose backups must hold the raw weights
        *([keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if config["ema"] > 0 else []),
        keras.callbacks.ModelCheckpoint(
            str(best_path),
            monitor="val_accuracy",
            mode="max",
            save_best_only=True,
            save_weights_only=True,
            initial_value_threshold=_best_dev_so_far(run_dir),
        ),
        keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max", patience=config["patience"]),
        keras.callbacks.CSVLogger(str(run_dir / HISTORY_FILE), append=True),
        keras.callbacks.TensorBoard(log_dir=str(run_dir / "logs")),
    ]
    tf.get_logger().setLevel("ERROR")
    # tf.data of unknown length (bucketing) makes Keras warn at every epoch end; the data is meant that way
    warnings.filterwarnings("ignore", message=".*(ran out of data|`shuffle=True` was passed).*")
    built.model.fit(
        session.train_ds,
        validation_data=session.dev_ds,
        epochs=config["epochs"],
        callbacks=callbacks,
        verbose=1 if sys.stdout.isatty() else 2,
    )
    if best_path.is_file():
        built.model.load_weights(str(best_path))
    family.save(built, run_dir / MODEL_DIR)

    from tfmodels.evaluate import evaluate_run

    return evaluate_run(run_dir, built=built)
