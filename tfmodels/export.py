"""Publish a training run as the next integer version of a TF Serving model (Contract 2), behind a gate.

The names a served version is read by (signature, inputs, outputs, warm-up and card paths, version
folders) are serving.contract's. The version is written to a "."-prefixed temp folder and renamed only
after the gate passed, so a server never sees a bad version. What is written is the family's
`for_serving` copy of the run (the LSTM's is smaller), so the written SavedModel is scored on the test
split, and that figure is the card's test accuracy and the one the gate compares (the trained model's,
from the run's report, is kept beside it). The gate compares with the latest version's on the same test
split: its model card's figure when the split is the same, else that version re-scored on this run's test
split (so a user can edit the data and export again).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from data_prep.atomic import publish_dir, write_bytes, write_text
from data_prep.dataset_format import TEXT, TOKENS, read_meta, split_fingerprint
from data_prep.errors import UserError
from data_prep.json_file import read_json_object
from serving.contract import (
    CARD_FILE,
    CLASS_NAMES,
    LABEL,
    PROBABILITIES,
    SIGNATURE,
    TEXT_INPUT,
    TFLITE_FILE,
    TOKENS_INPUT,
    TOP_SCORE,
    WARMUP_FILE,
    versions_on_disk,
)
from tfmodels.config import TrainConfig
from tfmodels.family import Built, ModelFamily, read_run
from tfmodels.run_dir import RunDir
from tfmodels.tflite import REPRESENTATIVE_EXAMPLES, check_tflite, convert, megabytes

GATE_METRIC = "accuracy"
WARMUP_EXAMPLES = 4


def serving_function(built: Built, input_name: str, labels: list[str]) -> Any:
    """tf.function: tf.string [batch] -> {probabilities, label, top_score, class_names}; one graph."""
    import tensorflow as tf

    label_names = tf.constant(labels)

    def serve(inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        logits = built.model(built.preprocessor(inputs), training=False)
        probabilities = tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)
        return {
            PROBABILITIES: probabilities,
            LABEL: tf.gather(label_names, tf.argmax(probabilities, axis=-1)),
            TOP_SCORE: tf.reduce_max(probabilities, axis=-1),
            # every column's name on every row: a row-format REST client can do top-k with no side file
            CLASS_NAMES: tf.tile(label_names[tf.newaxis], [tf.shape(probabilities)[0], 1]),
        }

    return tf.function(serve, input_signature=[tf.TensorSpec([None], tf.string, name=input_name)])


def write_saved_model(built: Built, input_name: str, labels: list[str], out_dir: Path) -> None:
    """Write `built` as the serving graph; its lookup tables, vocabularies and variables are the ones the
    endpoint uses.

    Only the preprocessor is track()ed (for its lookup tables, which hold no variables): ExportArchive
    saves a tracked model's Keras variables a second time beside the tf.Variables the endpoint captures,
    which doubled the file."""
    import keras

    archive = keras.export.ExportArchive()
    archive.track(built.preprocessor)
    archive.add_endpoint(SIGNATURE, serving_function(built, input_name, labels))
    archive.write_out(str(out_dir), verbose=False)


def write_warmup(path: Path, model_name: str, input_name: str, examples: list[bytes]) -> None:
    """PredictionLog records TF Serving replays before it marks the version AVAILABLE."""
    import tensorflow as tf
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for example in examples:
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=SIGNATURE)
            )
            request.inputs[input_name].CopyFrom(tf.make_tensor_proto([example], dtype=tf.string))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())


def replay_warmup(version_dir: Path) -> list[dict[str, np.ndarray]]:
    """Load the SavedModel afresh and run every warm-up request through its serving signature."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    signature = tf.saved_model.load(str(version_dir)).signatures[SIGNATURE]
    answers = []
    for record in tf.data.TFRecordDataset(str(version_dir / WARMUP_FILE)).as_numpy_iterator():
        request = prediction_log_pb2.PredictionLog.FromString(record).predict_log.request
        inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
        answers.append({k: v.numpy() for k, v in signature(**inputs).items()})
    if not answers:
        raise UserError(f"{version_dir} has no warm-up requests")
    return answers


def read_card(version_dir: Path) -> dict[str, Any] | None:
    """A version's model card, or None if it has none (a version not published by textclf)."""
    path = version_dir / CARD_FILE
    if not path.is_file():
        return None
    card = read_json_object(path)
    metrics = card.get("test_metrics", {})
    if not isinstance(metrics, dict) or not _is_number(metrics.get(GATE_METRIC, 0.0)):
        raise UserError(f"{path}: test_metrics must be an object whose {GATE_METRIC} is a number (or absent)")
    return card


def read_metrics(run: RunDir) -> tuple[dict[str, Any], dict[str, Any]]:
    """(model, baseline) test metrics of RUN_DIR/report/metrics.json, as much as the card copies."""
    if not run.metrics.is_file():
        raise UserError(
            f"{run.path} has no {run.metrics.relative_to(run.path)}; run `textclf evaluate {run.path}` first"
        )
    metrics = read_json_object(run.metrics)
    sections = []
    for section, keys in (("model", ("accuracy", "macro_f1", "examples")), ("baseline", ("accuracy", "macro_f1"))):
        values = metrics.get(section)
        if not isinstance(values, dict) or not all(_is_number(values.get(k)) for k in keys):
            raise UserError(
                f"{run.metrics}: {section!r} must be an object with numbers for {', '.join(keys)}; "
                f"run `textclf evaluate {run.path}` again"
            )
        sections.append({k: values[k] for k in keys})
    return sections[0], sections[1]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


CARD, RESCORED = "card", "re-scored"
RESCORE_BATCH = 256
# the prepared dataset's feature that holds what each Contract-2 input takes (Contract 1 writes both)
FEATURE_OF_INPUT = {TOKENS_INPUT: TOKENS, TEXT_INPUT: TEXT}


class NotScorable(Exception):
    """Why the latest version cannot be scored on this run's test split (its message is one clause)."""


@dataclass(frozen=True)
class Compared:
    """What the gate compared the run's test accuracy with: the latest version's card figure (measured on
    the same test split), or that version re-scored on this run's test split, as TFX's Evaluator scores the
    blessed model and the candidate on the same data."""

    version: Any
    accuracy: float
    source: str  # CARD or RESCORED
    why: str = ""  # RESCORED: why the card's figure does not compare

    def record(self) -> dict[str, Any]:
        return {"version": self.version, GATE_METRIC: self.accuracy, "source": self.source}

    def describe(self) -> str:
        if self.source == CARD:
            return f"version {self.version}'s {self.accuracy:.4f} from its model card (same test split)"
        return f"version {self.version} re-scored on this run's test split ({self.accuracy:.4f}; {self.why})"


def card_mismatch(previous: dict[str, Any], data_hash: str | None, split_hash: str | None) -> str:
    """Why the card's test accuracy was not measured on this run's test split, or "" when it was (both
    split fingerprints present and equal, and the card has the figure)."""
    old_split, old_hash = previous.get("split_hash"), previous.get("data_hash")
    if old_split and split_hash:
        if old_split != split_hash:
            return (
                f"its card's test {GATE_METRIC} is from a different dataset split (split hash {old_split}, this "
                f"run's {split_hash}: another source, seed, split ratios or counts)"
            )
        if (previous.get("test_metrics") or {}).get(GATE_METRIC) is None:
            return f"its card has no test {GATE_METRIC}"
        return ""
    if old_hash and data_hash:
        if old_hash != data_hash:
            return f"it was trained on a different dataset (data hash {old_hash}, this run's {data_hash})"
        return "its card has no split hash: same source, but its test split could not be checked"
    lacking = "its card" if not old_hash else "this run's dataset"
    return f"the dataset could not be checked ({lacking} has no data hash)"


def gate_reference(
    previous: dict[str, Any] | None,
    data_hash: str | None,
    split_hash: str | None,
    *,
    rescore: Callable[[], float],
) -> Compared | None:
    """The latest version's test accuracy the gate compares with (None: no card). Two test accuracies
    compare only on the same test split: the card's figure is used when its split fingerprint is this
    run's; otherwise `rescore` scores the latest version on this run's test split, and a version it cannot
    score is a refusal (only --force may replace it). Known before the run is loaded, so it refuses early."""
    if previous is None:
        return None
    version = previous.get("version")
    why = card_mismatch(previous, data_hash, split_hash)
    if not why:
        compared = Compared(version, previous["test_metrics"][GATE_METRIC], CARD)
    else:
        try:
            compared = Compared(version, rescore(), RESCORED, why)
        except NotScorable as exc:
            raise UserError(
                f"gate: version {version} cannot be re-scored on this run's test split ({exc}) and {why}, so their "
                f"test {GATE_METRIC} figures do not compare; use --force to publish"
            ) from None
    return compared


def check_gate(compared: Compared | None, accuracy: float, tolerance: float) -> None:
    """Refuse an exported model whose test accuracy is worse than `compared` beyond `tolerance`."""
    if compared is None:
        return
    version = compared.version
    if accuracy < compared.accuracy - tolerance:
        worse = f"version {version} ({compared.accuracy:.4f})" if compared.source == CARD else compared.describe()
        raise UserError(
            f"gate: test {GATE_METRIC} {accuracy:.4f} is worse than {worse} beyond tolerance {tolerance}; "
            "use --force to publish"
        )


def score_version(
    version_dir: Path, data_dir: Path, labels: list[str], card_labels: Any
) -> tuple[np.ndarray, np.ndarray]:
    """(true, predicted) label ids of DATA_DIR's test split in file order, through a SavedModel version's
    `serving_default` (Contract 2), in batches; predictions are matched by label name (-1: another name),
    so a version whose columns are in another order still scores. NotScorable when it fails to load, takes
    an input the dataset has no feature for, or names other classes."""
    import tensorflow as tf

    from tfmodels.pipeline import read_split

    try:
        signature = tf.saved_model.load(str(version_dir)).signatures[SIGNATURE]
    except Exception as exc:  # missing, corrupt or without the signature: any of them means "cannot score"
        raise NotScorable(f"it fails to load: {_first_line(exc)}") from None
    inputs = list(signature.structured_input_signature[1])
    feature = FEATURE_OF_INPUT.get(inputs[0]) if len(inputs) == 1 else None
    if feature is None:
        raise NotScorable(
            f"its {SIGNATURE} takes {', '.join(inputs) or 'no input'}, not {TOKENS_INPUT} or {TEXT_INPUT}, "
            "the inputs this dataset has features for"
        )
    ids = {name: i for i, name in enumerate(labels)}
    y_true: list[np.ndarray] = []
    y_pred: list[int] = []
    try:
        for texts, label_ids in read_split(data_dir, "test", feature).batch(RESCORE_BATCH):
            answer = signature(**{inputs[0]: texts})
            if not y_true:
                _check_classes(answer, card_labels, labels)
            y_pred.extend(ids.get(name.decode(), -1) for name in answer[LABEL].numpy())
            y_true.append(label_ids.numpy())
    except tf.errors.OpError as exc:
        raise NotScorable(f"it fails on this dataset: {_first_line(exc.message)}") from None
    if not y_true:
        raise NotScorable("this run's test split is empty")
    return np.concatenate(y_true), np.array(y_pred)


def rescore_version(version_dir: Path, data_dir: Path, labels: list[str], card_labels: Any) -> float:
    """A published version's test accuracy on DATA_DIR's test split (score_version)."""
    from tfmodels.evaluate import classification_metrics

    y_true, y_pred = score_version(version_dir, data_dir, labels, card_labels)
    return float(classification_metrics(y_true, y_pred, labels)[GATE_METRIC])


def _check_classes(answer: dict[str, Any], card_labels: Any, labels: list[str]) -> None:
    """The version's class names (its class_names output, else its card's labels) must be the dataset's."""
    if LABEL not in answer:
        raise NotScorable(f"its {SIGNATURE} has no {LABEL} output")
    if CLASS_NAMES in answer:
        classes = [name.decode() for name in answer[CLASS_NAMES].numpy()[0]]
    elif isinstance(card_labels, list):
        classes = [str(name) for name in card_labels]
    else:
        raise NotScorable(f"its class names are unknown (no {CLASS_NAMES} output, no labels in its card)")
    if sorted(classes) != sorted(labels):
        raise NotScorable(f"its classes ({', '.join(classes)}) are not this dataset's ({', '.join(labels)})")


def _first_line(error: Any) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def export_run(
    run_dir: Path,
    model_base: Path,
    name: str,
    *,
    tolerance: float = 0.005,
    force: bool = False,
    tflite: bool = False,
    quantize: str | None = None,
) -> Path:
    """Write the family's serving copy of the run into a temp folder, score it on the test split, gate that
    figure, then publish it as MODEL_BASE/NAME/<next version>; returns the version folder. `tflite` also
    writes model.tflite (`quantize`d) into it, checked against the SavedModel on the test split."""
    run = RunDir(run_dir)
    if quantize and not tflite:
        raise UserError("--quantize applies to the TF Lite model: add --tflite")
    if not name or "/" in name or name.startswith("."):
        raise UserError(f"--name {name!r} must be a plain folder name")
    family, config = read_run(run)
    test_metrics, baseline_metrics = read_metrics(run)
    data_dir = Path(config.data)
    meta = read_meta(data_dir)
    data_hash = (meta.get("source") or {}).get("sha256")
    split_hash = split_fingerprint(meta)
    model_dir = Path(model_base) / name
    existing = versions_on_disk(model_dir)
    latest = max(existing, default=0)
    labels = list(meta["labels"])
    compared = None
    if not force:
        previous = read_card(existing[latest]) if existing else None
        compared = gate_reference(
            previous,
            data_hash,
            split_hash,
            rescore=lambda: rescore_version(existing[latest], data_dir, labels, (previous or {}).get("labels")),
        )
    from tfmodels.pipeline import read_split

    built = family.load(run.model, config)
    served = family.for_serving(built, config)
    examples = [
        t for t, _ in read_split(data_dir, "test", family.input_feature, limit=WARMUP_EXAMPLES).as_numpy_iterator()
    ]
    version = latest + 1
    with publish_dir(model_dir / str(version)) as tmp:
        write_saved_model(served, family.serving_input, labels, tmp)
        write_warmup(tmp / WARMUP_FILE, name, family.serving_input, examples)
        _check_loads(tmp, served, examples, len(labels))
        served_metrics, agreement = _score_export(tmp, built, family, config, labels)
        print(
            f"exported model: test {GATE_METRIC} {served_metrics[GATE_METRIC]:.4f}, macro-F1 "
            f"{served_metrics['macro_f1']:.4f} (trained model {test_metrics[GATE_METRIC]:.4f}; "
            f"labels agree on {agreement:.2%} of the test texts)"
        )
        check_gate(compared, served_metrics[GATE_METRIC], tolerance)  # None when forced or the first version
        if compared:
            print(
                f"gate: test {GATE_METRIC} {served_metrics[GATE_METRIC]:.4f} against {compared.describe()}, "
                f"tolerance {tolerance}: passed"
            )
        lite = (
            _write_tflite(tmp, data_dir, family.serving_input, family.input_feature, quantize, force)
            if tflite
            else None
        )
        card = {
            "name": name,
            "version": version,
            "model_type": family.name,
            "input_kind": family.serving_input,
            "preprocessing": meta.get("preprocessing"),
            "labels": labels,
            # the written SavedModel scored on the test split: what is served, and what the gate compared
            "test_metrics": served_metrics,
            # the trained model's (the run's report/metrics.json), and how often the two give the same label
            "trained_test_metrics": test_metrics,
            "label_agreement_with_trained": agreement,
            "baseline_test_metrics": baseline_metrics,
            "data_hash": data_hash,
            "split_hash": split_hash,
            # what the gate compared test accuracy with: the replaced version's card figure or its re-score
            "gate": {"forced": force, "compared_with": compared.record() if compared else None},
            "data_dir": str(data_dir),
            # MB on disk of the version folder as served (the card itself, a few kB, not counted)
            "size_mb": megabytes(tmp),
            "tflite": lite,
            "hyperparameters": config.to_record(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        write_text(tmp / CARD_FILE, json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    return model_dir / str(version)


def _write_tflite(
    version_dir: Path, data_dir: Path, input_name: str, feature: str, quantize: str | None, force: bool
) -> dict[str, Any]:
    """Convert the version's SavedModel into version_dir/model.tflite after the TF Lite gate passed; returns
    the card's record of it. int8 calibrates on train-split strings; the check runs the whole test split."""
    from tfmodels.pipeline import read_split

    def strings(split: str, limit: int = 0) -> list[bytes]:
        return [t for t, _ in read_split(data_dir, split, feature, limit=limit).as_numpy_iterator()]

    representative = strings("train", REPRESENTATIVE_EXAMPLES) if quantize == "int8" else []
    content = convert(version_dir, quantize, representative, input_name)
    record = check_tflite(content, version_dir, input_name, strings("test"), quantize, force)
    write_bytes(version_dir / TFLITE_FILE, content)
    return record


def _score_export(
    version_dir: Path, built: Built, family: ModelFamily, config: TrainConfig, labels: list[str]
) -> tuple[dict[str, Any], float]:
    """The written version's test accuracy, macro-F1 and examples, scored the way the gate re-scores a
    published version (score_version), and the share of test texts it gives the trained model's label."""
    from tfmodels.evaluate import classification_metrics, predict_split

    data_dir = Path(config.data)
    try:
        y_true, y_served = score_version(version_dir, data_dir, labels, labels)
    except NotScorable as exc:
        raise UserError(f"gate: the exported model cannot be scored on the test split ({exc})") from None
    trained_true, probabilities = predict_split(
        built, config, family.input_feature, family.length_fn, data_dir, "test", len(labels)
    )
    if not np.array_equal(y_true, trained_true):
        raise RuntimeError("the exported and the trained model's test labels are not in the same order")
    metrics = classification_metrics(y_true, y_served, labels)
    agreement = float(np.mean(y_served == probabilities.argmax(axis=1)))
    return {key: metrics[key] for key in ("accuracy", "macro_f1", "examples")}, agreement


def _check_loads(version_dir: Path, built: Built, examples: list[bytes], num_classes: int) -> None:
    """The gate's load check: a fresh tf.saved_model.load answers the warm-up like the Keras model it was
    written from does."""
    import tensorflow as tf

    answers = replay_warmup(version_dir)
    served = np.concatenate([a[PROBABILITIES] for a in answers])
    expected = tf.nn.softmax(built.model(built.preprocessor(tf.constant(examples)), training=False)).numpy()
    if served.shape != (len(examples), num_classes) or not np.allclose(served, expected, atol=1e-5):
        raise UserError(f"gate: the exported model's answers differ from the trained model's ({version_dir.name})")
