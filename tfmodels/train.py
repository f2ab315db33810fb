"""Train one model family on a prepared dataset into RUN_DIR (tfmodels.run_dir); started again with the
same settings after a kill, it resumes from RUN_DIR/backup."""

from __future__ import annotations

import csv
import math
import shutil
import sys
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from data_prep.dataset_format import read_meta
from data_prep.errors import UserError
from data_prep.json_file import read_json
from tfmodels.config import TrainConfig, resolve, save_config
from tfmodels.evaluate import evaluate_run
from tfmodels.family import Built, ModelFamily, get_family, read_run
from tfmodels.run_dir import RunDir


def _start_mode(run: RunDir, config: TrainConfig, force: bool) -> str:
    """'fresh' or 'resume'; refuses to overwrite a finished run or resume with different settings."""
    if run.backup_progress.is_file() and not force:
        saved, new = read_run(run)[1].to_record(), config.to_record()
        changed = sorted(k for k in set(saved) | set(new) if saved.get(k) != new.get(k))
        if changed:
            raise UserError(
                f"{run.path} holds an interrupted run with other settings ({', '.join(changed)}); "
                "rerun with the same flags or add --force to start over"
            )
        return "resume"
    if run.model.exists() and not force:
        raise UserError(f"{run.path} already holds a trained model (use --force to train again)")
    for target in run.entries():
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    return "fresh"


def _best_dev_so_far(run: RunDir) -> float | None:
    """What a resumed run's checkpoint must beat: the best dev accuracy its history holds."""
    path = run.history
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
    family: ModelFamily, data_dir: Path, config: TrainConfig, strategy: Any, meta: dict[str, Any]
) -> Session:
    """Seed, read the train split, build + compile the family's model in the strategy's scope, make tf.data."""
    import keras

    from tfmodels.pipeline import batched, read_split
    from tfmodels.schedule import make_optimizer

    keras.utils.set_random_seed(config.seed)
    replicas = strategy.num_replicas_in_sync
    global_batch = config.batch_size * replicas
    feature = family.input_feature
    train_raw = read_split(data_dir, "train", feature, limit=config.max_train_examples)
    n_train = sum(meta["counts"]["train"].values())  # prep counted the split: no pass over it here
    if config.max_train_examples:
        n_train = min(n_train, config.max_train_examples)
    labels = list(meta["labels"])
    if n_train == 0:
        raise UserError(f"{data_dir} has an empty train split")
    steps_per_epoch = math.ceil(n_train / global_batch)
    print(
        f"{family.name}: {n_train} train examples, {len(labels)} labels, {replicas} replica(s) "
        f"({type(strategy).__name__}), global batch {global_batch}"
    )
    keras.mixed_precision.set_global_policy("mixed_float16" if config.mixed_precision else "float32")
    with strategy.scope():
        built = family.build(config, train_raw.map(lambda text, label: text), len(labels))
        built.model.compile(
            jit_compile=config.xla,
            optimizer=make_optimizer(
                lr=config.lr,
                total_steps=steps_per_epoch * config.epochs,
                warmup_ratio=config.warmup_ratio,
                decay=config.decay,
                optimizer=config.optimizer,
                weight_decay=config.weight_decay,
                clipnorm=config.clipnorm,
                ema=config.ema,
            ),
            loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=config.label_smoothing),
            metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        )
    common = dict(
        preprocessor=built.preprocessor,
        num_classes=len(labels),
        global_batch=global_batch,
        max_len=config.max_len,
        length_fn=family.length_fn,
        bucketing=config.bucketing,
    )
    train_ds = batched(train_raw, shuffle_buffer=config.shuffle_buffer, seed=config.seed, **common)
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

    data_dir, run = Path(data_dir).resolve(), RunDir(run_dir)
    meta = read_meta(data_dir)  # before the family's (TensorFlow) import: a wrong path fails fast
    family = get_family(family_name)
    config = replace(resolve(family.config_class, config_file, overrides or {}), data=str(data_dir))
    strategy = make_strategy(config.strategy)

    import keras
    import tensorflow as tf

    run.path.mkdir(parents=True, exist_ok=True)
    mode = _start_mode(run, config, force)
    if mode == "resume":
        state = read_json(run.backup_progress)
        print(f"resume: {run.path} from epoch {state['epoch'] + 1} (backup taken after batch {state['batch']})")
    else:
        print(f"fresh start: {run.path}")
        save_config(run, config)

    session = compile_session(family, data_dir, config, strategy, meta)
    built = session.built

    best_path = run.best_weights
    best_path.parent.mkdir(parents=True, exist_ok=True)
    callbacks = [
        keras.callbacks.BackupAndRestore(
            str(run.backup), save_freq=config.backup_every_steps, double_checkpoint=True
        ),  # a kill mid-write keeps the previous one
        # EMA weights in the model for validation and the best checkpoint, raw weights back for training;
        # after BackupAndRestore, whose backups must hold the raw weights
        *([keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if config.ema > 0 else []),
        keras.callbacks.ModelCheckpoint(
            str(best_path),
            monitor="val_accuracy",
            mode="max",
            save_best_only=True,
            save_weights_only=True,
            initial_value_threshold=_best_dev_so_far(run),
        ),
        keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max", patience=config.patience),
        keras.callbacks.CSVLogger(str(run.history), append=True),
        keras.callbacks.TensorBoard(log_dir=str(run.logs)),
    ]
    tf.get_logger().setLevel("ERROR")
    # tf.data of unknown length (bucketing) makes Keras warn at every epoch end; the data is meant that way
    warnings.filterwarnings("ignore", message=".*(ran out of data|`shuffle=True` was passed).*")
    built.model.fit(
        session.train_ds,
        validation_data=session.dev_ds,
        epochs=config.epochs,
        callbacks=callbacks,
        verbose=1 if sys.stdout.isatty() else 2,
    )
    if best_path.is_file():
        built.model.load_weights(str(best_path))
    family.save(built, run.model)
    return evaluate_run(run.path, built=built)
