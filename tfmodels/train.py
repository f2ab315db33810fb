"""Train one model family on a prepared dataset into RUN_DIR (tfmodels.run_dir); started again with the
same settings after a kill, it resumes from RUN_DIR/backup.

Under `--strategy multiworker` every worker runs this same function: the chief (TF's convention, see
tfmodels.strategy.worker_role) decides fresh start or resume and writes RUN_DIR; the others train into a
temporary folder they remove (TF's multi-worker Keras guide), after restoring from the chief's backup,
so RUN_DIR must be on storage all workers share.
"""

from __future__ import annotations

import csv
import math
import shutil
import sys
import tempfile
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from data_prep.dataset_format import read_meta
from data_prep.errors import UserError
from data_prep.json_file import read_json
from tfmodels.config import TrainConfig, changed_keys, resolve, save_config
from tfmodels.evaluate import evaluate_run
from tfmodels.family import Built, ModelFamily, get_family, read_run
from tfmodels.run_dir import RunDir


def _start_mode(run: RunDir, config: TrainConfig, force: bool) -> str:
    """'fresh' or 'resume'; refuses to overwrite a finished run or resume with different settings."""
    if run.backup_progress.is_file() and not force:
        changed = changed_keys(read_run(run)[1].to_record(), config.to_record(), type(config).EXPORT_ONLY)
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


@dataclass(frozen=True)
class SoftTargets:
    """What `textclf distill` adds to training: the teachers' averaged probabilities at `temperature` for every
    train example (file order) and for extra unlabelled texts (given as the family's input feature), mixed
    with the hard labels by `alpha` (see _distillation_loss)."""

    temperature: float
    alpha: float
    train: np.ndarray  # float32 [train split size, num_classes]
    extra_inputs: list[str]
    extra: np.ndarray  # float32 [len(extra_inputs), num_classes]


def _distillation_loss(num_classes: int, soft: SoftTargets, label_smoothing: float) -> Any:
    """Hinton et al.'s loss on targets [hard one-hot | teacher probabilities at T], per example:
    alpha * CE(hard, softmax(z)) + (1 - alpha) * T^2 * KL(teacher_T || softmax(z / T)).
    T^2 keeps the soft part's gradients on the scale of the hard part's as T grows. An unlabelled text's hard
    part is all zeros, so only the teachers teach it."""
    from keras import ops

    t, alpha = soft.temperature, soft.alpha

    def distillation_loss(y_true: Any, logits: Any) -> Any:
        logits = ops.cast(logits, "float32")
        hard, teacher = y_true[:, :num_classes], y_true[:, num_classes:]
        hard = hard * (1.0 - label_smoothing) + ops.sum(hard, axis=-1, keepdims=True) * label_smoothing / num_classes
        ce = -ops.sum(hard * ops.log_softmax(logits, axis=-1), axis=-1)
        log_teacher = ops.log(ops.maximum(teacher, 1e-7))
        kl = ops.sum(teacher * (log_teacher - ops.log_softmax(logits / t, axis=-1)), axis=-1)
        return alpha * ce + (1.0 - alpha) * t * t * kl

    return distillation_loss


def _hard_accuracy(num_classes: int) -> Any:
    """Accuracy on the hard labels of distillation targets, under the name the callbacks monitor; an unlabelled
    text counts as agreement with the teachers' top class."""
    import keras
    from keras import ops

    def hard_accuracy(y_true: Any, logits: Any) -> Any:
        hard, teacher = y_true[:, :num_classes], y_true[:, num_classes:]
        labelled = ops.sum(hard, axis=-1, keepdims=True) > 0
        return keras.metrics.categorical_accuracy(ops.where(labelled, hard, teacher), logits)

    return keras.metrics.MeanMetricWrapper(hard_accuracy, name="accuracy")


def _with_soft_targets(train_raw: Any, soft: SoftTargets, n_train: int, labels: int) -> Any:
    """(text, label) -> ({"x": text, "soft": probabilities}, label), then the extra texts with label -1 (whose
    one-hot is all zeros: no hard label)."""
    import tensorflow as tf

    if len(soft.train) < n_train:
        raise UserError(f"the teachers' probabilities cover {len(soft.train)} train examples, training reads {n_train}")
    probs = tf.data.Dataset.from_tensor_slices(soft.train[:n_train])
    labelled = tf.data.Dataset.zip(train_raw, probs).map(lambda pair, p: ({"x": pair[0], "soft": p}, pair[1]))
    extra = tf.data.Dataset.from_tensor_slices(
        (
            {"x": tf.constant(soft.extra_inputs, tf.string), "soft": soft.extra.reshape(-1, labels)},
            tf.fill([len(soft.extra_inputs)], tf.constant(-1, tf.int64)),
        )
    )
    return labelled.concatenate(extra)


@dataclass
class Session:
    """A compiled model and its input pipelines, ready for `fit` (shared by train() and bench/train.py)."""

    built: Built
    train_ds: Any
    dev_ds: Any
    n_train: int
    global_batch: int


def compile_session(
    family: ModelFamily,
    data_dir: Path,
    config: TrainConfig,
    strategy: Any,
    meta: dict[str, Any],
    soft: SoftTargets | None = None,
) -> Session:
    """Seed, read the train split, build + compile the family's model in the strategy's scope, make tf.data.
    With `soft`, the targets are [one-hot | teacher probabilities] and the loss is the distillation loss."""
    import keras
    import tensorflow as tf

    from tfmodels.pipeline import batched, read_split
    from tfmodels.schedule import make_optimizer
    from tfmodels.strategy import input_workers

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
    n_extra = len(soft.extra_inputs) if soft else 0
    steps_per_epoch = math.ceil((n_train + n_extra) / global_batch)
    workers = input_workers(strategy)
    sharding = {split: _shard_policy(data_dir, split, workers, config.max_train_examples) for split in ("train", "dev")}
    if soft:  # the teachers' probabilities are an in-memory dataset beside the files: no file sharding
        sharding = dict.fromkeys(sharding, tf.data.experimental.AutoShardPolicy.DATA)
    print(
        f"{family.name}: {n_train} train examples"
        + (f" + {n_extra} unlabelled, distilled at T={soft.temperature}, alpha={soft.alpha}" if soft else "")
        + f", {len(labels)} labels, {replicas} replica(s) "
        f"({type(strategy).__name__}), global batch {global_batch}"
        + (f", {workers} workers, input sharded by {sharding['train'].name}" if workers > 1 else "")
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
            loss=_distillation_loss(len(labels), soft, config.label_smoothing)
            if soft
            else keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=config.label_smoothing),
            metrics=[_hard_accuracy(len(labels)) if soft else keras.metrics.CategoricalAccuracy(name="accuracy")],
        )
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        _keras_multiworker_fixes(built.model, strategy)
    common = dict(
        preprocessor=built.preprocessor,
        num_classes=len(labels),
        global_batch=global_batch,
        max_len=config.max_len,
        length_fn=family.length_fn,
        bucketing=config.bucketing,
    )
    if soft:
        # batched() sees {"x": text, "soft": p} as the text: the preprocessor and the length read "x", "soft"
        # rides along, then joins the one-hot label as the target. Dev's soft half is zeros: its loss is then
        # alpha x cross-entropy, and its accuracy the hard labels'.
        preprocessor, length_fn = built.preprocessor, family.length_fn
        common["preprocessor"] = lambda inputs: (preprocessor(inputs["x"]), inputs["soft"])
        common["length_fn"] = None if length_fn is None else lambda inputs: length_fn(inputs["x"])
        train_ds = batched(
            _with_soft_targets(train_raw, soft, n_train, len(labels)),
            shuffle_buffer=config.shuffle_buffer,
            seed=config.seed,
            **common,
        ).map(lambda x, y: (x[0], tf.concat([y, x[1]], axis=-1)))
        common["preprocessor"], common["length_fn"] = preprocessor, length_fn
        dev_ds = batched(read_split(data_dir, "dev", feature), **common).map(
            lambda x, y: (x, tf.concat([y, tf.zeros_like(y)], -1))
        )
    else:
        train_ds = batched(train_raw, shuffle_buffer=config.shuffle_buffer, seed=config.seed, **common)
        dev_ds = batched(read_split(data_dir, "dev", feature), **common)
    return Session(
        built,
        train_ds.with_options(_sharded(sharding["train"])),
        dev_ds.with_options(_sharded(sharding["dev"])),
        n_train,
        global_batch,
    )


def _shard_policy(data_dir: Path, split: str, workers: int, limit: int) -> Any:
    """FILE when every worker gets a shard of its own (and no example cap, which would apply per worker),
    else DATA: each worker reads all and keeps its part of every global batch."""
    import tensorflow as tf

    from data_prep.dataset_format import shard_paths

    policy = tf.data.experimental.AutoShardPolicy
    return policy.FILE if workers > 1 and not limit and len(shard_paths(data_dir, split)) >= workers else policy.DATA


def _sharded(policy: Any) -> Any:
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = policy
    return options


# what the chief tells the other workers before training (tfmodels.strategy.agree)
FRESH, RESUME, REFUSED = 1, 2, 3


def _open_run(run: RunDir, config: TrainConfig, force: bool) -> int:
    """The chief's side: FRESH (RUN_DIR cleared) or RESUME, config saved (a resumed run may change only
    export settings: config.json holds the ones given last); a UserError if it must not start."""
    run.path.mkdir(parents=True, exist_ok=True)
    mode = RESUME if _start_mode(run, config, force) == "resume" else FRESH
    save_config(run, config)
    return mode


def _start_line(run: RunDir, mode: int, role: str, chief: bool) -> str:
    """The first line of a run: `fresh start:` or `resume:` (the other workers say theirs is the chief's)."""
    where = "" if chief else f" ({role}; the chief writes the run folder)"
    if mode == FRESH:
        return f"fresh start: {run.path}{where}"
    if not run.backup_progress.is_file():
        raise UserError(f"{role} cannot see the chief's backup in {run.backup}: put the run folder on shared storage")
    state = read_json(run.backup_progress)
    return f"resume: {run.path} from epoch {state['epoch'] + 1} (backup taken after batch {state['batch']}){where}"


def train(
    family_name: str,
    data_dir: Path,
    run_dir: Path,
    *,
    config_file: Path | None = None,
    overrides: dict[str, Any] | None = None,
    force: bool = False,
    soft: SoftTargets | None = None,
) -> dict[str, Any]:
    """Train, keep the best dev weights, save the model and write the evaluation report. Returns metrics
    ({} on a worker other than the chief, which writes no run folder). `soft`: distill (tfmodels.distill)."""
    from tfmodels.strategy import agree, make_strategy, worker_role  # first TF touch: see tfmodels.strategy

    data_dir, run = Path(data_dir).resolve(), RunDir(run_dir)
    meta = read_meta(data_dir)  # before the family's (TensorFlow) import: a wrong path fails fast
    family = get_family(family_name)
    config = replace(resolve(family.config_class, config_file, overrides or {}), data=str(data_dir))
    strategy = make_strategy(config.strategy)
    chief, role = worker_role(strategy)

    code = REFUSED
    try:
        code = _open_run(run, config, force) if chief else 0
    finally:  # the others wait for the chief's word, even when it refuses to start
        mode = agree(strategy, code, chief=chief)
    if mode == REFUSED:
        raise UserError(f"the chief refused to start training in {run.path}: see its output")
    print(_start_line(run, mode, role, chief))
    # the chief writes RUN_DIR; another worker writes the same files into a folder of its own, removed at the end
    out = run if chief else RunDir(Path(tempfile.mkdtemp(prefix=f"textclf-{role.replace(' ', '')}-")))
    try:
        if mode == RESUME and not chief:
            shutil.copytree(run.backup, out.backup)  # restore from the chief's backup, back up to its own
        metrics = _fit(family, data_dir, config, strategy, meta, run, out, chief, soft)
        # the others leave only once the chief has written the model and the report: a worker that left
        # earlier would be reported to the chief as crashed by TF's coordination service
        agree(strategy, 0, chief=chief)
        return metrics
    finally:
        if not chief:
            shutil.rmtree(out.path, ignore_errors=True)


def _keras_multiworker_fixes(model: Any, strategy: Any) -> None:
    """The one door to Keras internals, for Keras 3 bugs with MultiWorkerMirroredStrategy
    (keras-team/keras#20585, #20329); the multi-worker test fails here by name if an upgrade moves them.

    1. fit() and evaluate() all-reduce their first batch just to learn its shapes, which fails for a
       nested batch (and for buckets of other lengths on other workers): build from this worker's own
       first batch, as Keras does on one worker.
    2. Each step all-reduces its metric values with a reduction axis a scalar lacks: keep this worker's
       values for the progress line. The epoch's logs, which the callbacks read, stay global: Keras reads
       the metrics' sync-on-read variables at the epoch end, which sums them over all workers.
    """
    import keras
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer as tf_trainer

    if not hasattr(model, "_maybe_symbolic_build") or not hasattr(tf_trainer, "reduce_per_replica"):
        raise RuntimeError("keras changed: revisit tfmodels.train._keras_multiworker_fixes")

    def build(iterator: Any = None, data_batch: Any = None) -> None:
        if iterator is not None:
            for _, _, batches in iterator:
                first = next(batches)
                data_batch = keras.tree.map_structure(lambda v: strategy.experimental_local_results(v)[0], first)
                break
        with strategy.scope():
            model._symbolic_build(data_batch=data_batch)

    model._maybe_symbolic_build = build
    reduce_per_replica = tf_trainer.reduce_per_replica
    if getattr(reduce_per_replica, "textclf_local", False):
        return

    def reduce_locally(values: Any, strategy: Any, reduction: str) -> Any:
        if reduction in ("auto", "mean") and isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            reduction = "first"
        return reduce_per_replica(values, strategy, reduction)

    reduce_locally.textclf_local = True  # type: ignore[attr-defined]
    tf_trainer.reduce_per_replica = reduce_locally


def _fit(
    family: ModelFamily,
    data_dir: Path,
    config: TrainConfig,
    strategy: Any,
    meta: dict[str, Any],
    run: RunDir,
    out: RunDir,
    chief: bool,
    soft: SoftTargets | None,
) -> dict[str, Any]:
    """Compile and fit, writing into `out`; the chief also saves the model and the report into `run`."""
    import keras
    import tensorflow as tf

    session = compile_session(family, data_dir, config, strategy, meta, soft)
    built = session.built

    best_path = out.best_weights
    best_path.parent.mkdir(parents=True, exist_ok=True)
    callbacks = [
        keras.callbacks.BackupAndRestore(
            str(out.backup), save_freq=config.backup_every_steps, double_checkpoint=True
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
        keras.callbacks.CSVLogger(str(out.history), append=True),
        keras.callbacks.TensorBoard(log_dir=str(out.logs)),
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
    if not chief:
        return {}
    if best_path.is_file():
        built.model.load_weights(str(best_path))
    family.save(built, run.model)
    return evaluate_run(run.path, built=built)
