"""Publish a training run as the next integer version of a TF Serving model (Contract 2), behind a gate.

MODEL_BASE/NAME/N/ holds a SavedModel whose `serving_default` maps the family's input (tf.string [batch])
to probabilities, label and top_score, with the vocabulary/tokenizer and label names inside the graph,
plus assets.extra/tf_serving_warmup_requests and assets.extra/model_card.json. The version is written to a
"."-prefixed temp folder and renamed only after the gate passed, so a server never sees a bad version.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from data_prep.atomic import publish_dir, write_text
from data_prep.dataset_format import read_meta
from data_prep.errors import UserError
from tfmodels.config import read_config
from tfmodels.evaluate import METRICS_FILE, REPORT_DIR
from tfmodels.family import Built, get_family

SIGNATURE = "serving_default"
WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"
CARD_FILE = "assets.extra/model_card.json"
GATE_METRIC = "accuracy"
WARMUP_EXAMPLES = 4


def versions(model_dir: Path) -> list[int]:
    """Integer version folders (leading zeros allowed), ascending; temp "." folders are not versions."""
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


def serving_function(built: Built, input_name: str, labels: list[str]) -> Any:
    """tf.function: tf.string [batch] -> {probabilities, label, top_score, class_names}; one graph."""
    import tensorflow as tf

    label_names = tf.constant(labels)

    def serve(inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        logits = built.model(built.preprocessor(inputs), training=False)
        probabilities = tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)
        return {
            "probabilities": probabilities,
            "label": tf.gather(label_names, tf.argmax(probabilities, axis=-1)),
            "top_score": tf.reduce_max(probabilities, axis=-1),
            # every column's name on every row: a row-format REST client can do top-k with no side file
            "class_names": tf.tile(label_names[tf.newaxis], [tf.shape(probabilities)[0], 1]),
        }

    return tf.function(serve, input_signature=[tf.TensorSpec([None], tf.string, name=input_name)])


def write_saved_model(built: Built, input_name: str, labels: list[str], out_dir: Path) -> None:
    import keras

    archive = keras.export.ExportArchive()
    archive.track(built.model)
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


def latest_card(model_dir: Path) -> dict[str, Any] | None:
    existing = versions(model_dir)
    if not existing:
        return None
    card = model_dir / str(existing[-1]) / CARD_FILE
    return json.loads(card.read_text(encoding="utf-8")) if card.is_file() else None


def export_run(run_dir: Path, model_base: Path, name: str, *, tolerance: float = 0.005, force: bool = False) -> Path:
    """Gate, then publish MODEL_BASE/NAME/<next version>; returns the version folder."""
    run_dir = Path(run_dir)
    if not name or "/" in name or name.startswith("."):
        raise UserError(f"--name {name!r} must be a plain folder name")
    config = read_config(run_dir)
    metrics_path = run_dir / REPORT_DIR / METRICS_FILE
    if not metrics_path.is_file():
        raise UserError(f"{run_dir} has no {REPORT_DIR}/{METRICS_FILE}; run `textclf evaluate {run_dir}` first")
    metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    test_metrics = {k: metrics["model"][k] for k in ("accuracy", "macro_f1", "examples")}
    model_dir = Path(model_base) / name
    previous = latest_card(model_dir)
    if previous is not None and not force:
        old = previous.get("test_metrics", {}).get(GATE_METRIC)
        if old is not None and test_metrics[GATE_METRIC] < old - tolerance:
            raise UserError(
                f"gate: test {GATE_METRIC} {test_metrics[GATE_METRIC]:.4f} is worse than version "
                f"{previous.get('version')} ({old:.4f}) beyond tolerance {tolerance}; use --force to publish"
            )

    family = get_family(config["family"])
    data_dir = Path(config["data"])
    meta = read_meta(data_dir)
    labels = list(meta["labels"])
    from tfmodels.pipeline import read_split
    from tfmodels.train import MODEL_DIR

    built = family.load(run_dir / MODEL_DIR, config)
    examples = [
        t for t, _ in read_split(data_dir, "test", family.input_feature, limit=WARMUP_EXAMPLES).as_numpy_iterator()
    ]
    version = (versions(model_dir) or [0])[-1] + 1
    with publish_dir(model_dir / str(version)) as tmp:
        write_saved_model(built, family.input_feature, labels, tmp)
        write_warmup(tmp / WARMUP_FILE, name, family.input_feature, examples)
        card = {
            "name": name,
            "version": version,
            "model_type": family.name,
            "input_kind": family.input_feature,
            "preprocessing": meta.get("preprocessing"),
            "labels": labels,
            "test_metrics": test_metrics,
            "baseline_test_metrics": {k: metrics["baseline"][k] for k in ("accuracy", "macro_f1")},
            "data_hash": (meta.get("source") or {}).get("sha256"),
            "data_dir": str(data_dir),
            "hyperparameters": config,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        write_text(tmp / CARD_FILE, json.dumps(card, indent=2, ensure_ascii=False) + "\n")
        _check_loads(tmp, built, examples, len(labels))
    return model_dir / str(version)


def _check_loads(version_dir: Path, built: Built, examples: list[bytes], num_classes: int) -> None:
    """The gate's load check: a fresh tf.saved_model.load answers the warm-up like the Keras model does."""
    import tensorflow as tf

    answers = replay_warmup(version_dir)
    served = np.concatenate([a["probabilities"] for a in answers])
    expected = tf.nn.softmax(built.model(built.preprocessor(tf.constant(examples)), training=False)).numpy()
    if served.shape != (len(examples), num_classes) or not np.allclose(served, expected, atol=1e-5):
        raise UserError(f"gate: the exported model's answers differ from the trained model's ({version_dir.name})")
