"""Test-split report of a training run, beside the TF-IDF baseline: RUN_DIR/report/.

metrics.json {"model": {...}, "baseline": {...}, "beats_baseline": bool}, confusion.json, confusion.png,
curves.png (from history.csv). Written atomically; the exporter copies the model's test metrics into the card.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from data_prep.atomic import write_bytes, write_text
from data_prep.dataset_format import read_meta
from tfmodels.config import TrainConfig
from tfmodels.family import Built, read_run
from tfmodels.run_dir import RunDir


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    ids = list(range(len(labels)))
    p, r, f, support = precision_recall_fscore_support(y_true, y_pred, labels=ids, zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=ids, average="macro", zero_division=0)),
        "per_class": {
            name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(support[i])}
            for i, name in enumerate(labels)
        },
        "confusion": confusion_matrix(y_true, y_pred, labels=ids).tolist(),
        "examples": int(len(y_true)),
    }


def predict_split(
    built: Built,
    config: TrainConfig,
    family_input: str,
    length_fn: Any,
    data_dir: Path,
    split: str,
    num_classes: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(labels, probabilities) over a split, batched the same way as training (bucketing keeps pairs aligned)."""
    import keras

    from tfmodels.pipeline import batched, read_split

    ds = batched(
        read_split(data_dir, split, family_input),
        preprocessor=built.preprocessor,
        num_classes=num_classes,
        global_batch=config.batch_size,
        max_len=config.max_len,
        length_fn=length_fn,
        bucketing=config.bucketing,
    )
    ys, probs = [], []
    for x, y in ds:
        ys.append(np.argmax(y.numpy(), axis=1))
        probs.append(keras.ops.convert_to_numpy(keras.ops.softmax(built.model(x, training=False))))
    return np.concatenate(ys), np.concatenate(probs)


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def _plots(run: RunDir, confusion: list[list[int]], labels: list[str]) -> None:
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.2 + 0.6 * len(labels), 1 + 0.6 * len(labels)))
    ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("test confusion")
    for i, row in enumerate(confusion):
        for j, value in enumerate(row):
            ax.text(j, i, str(value), ha="center", va="center", fontsize=8)
    write_bytes(run.confusion_plot, _png(fig))
    plt.close(fig)

    if run.history.is_file():
        with run.history.open(newline="") as f:
            rows = list(csv.DictReader(f))
        fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(9, 3.5))
        epochs = [int(r["epoch"]) + 1 for r in rows]
        for key, ax in (("loss", loss_ax), ("accuracy", acc_ax)):
            for prefix in ("", "val_"):
                if rows and prefix + key in rows[0]:
                    ax.plot(
                        epochs, [float(r[prefix + key]) for r in rows], marker="o", label="dev" if prefix else "train"
                    )
            ax.set_xlabel("epoch")
            ax.xaxis.get_major_locator().set_params(integer=True)
            ax.set_title(key)
            ax.legend()
        write_bytes(run.curves_plot, _png(fig))
        plt.close(fig)


def evaluate_run(run_dir: Path, *, built: Built | None = None) -> dict[str, Any]:
    """Evaluate RUN_DIR's model and the baseline on the test split; write RUN_DIR/report/; return metrics."""
    run = RunDir(run_dir)
    family, config = read_run(run)
    data_dir = Path(config.data)
    labels = list(read_meta(data_dir)["labels"])
    if built is None:
        built = family.load(run.model, config)
    y_true, probs = predict_split(built, config, family.input_feature, family.length_fn, data_dir, "test", len(labels))
    model = classification_metrics(y_true, probs.argmax(axis=1), labels)

    from tfmodels.baseline import baseline_predictions

    base_true, base_pred = baseline_predictions(data_dir, seed=config.seed)
    baseline = classification_metrics(base_true, base_pred, labels)
    metrics = {
        "family": family.name,
        "labels": labels,
        "model": model,
        "baseline": {"kind": "tfidf-char-1-3+logreg", **baseline},
        "beats_baseline": model["accuracy"] > baseline["accuracy"],
    }
    write_text(run.metrics, json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
    write_text(
        run.confusion,
        json.dumps(
            {"labels": labels, "model": model["confusion"], "baseline": baseline["confusion"]}, ensure_ascii=False
        )
        + "\n",
    )
    _plots(run, model["confusion"], labels)
    print(
        f"test accuracy {model['accuracy']:.4f} macro-F1 {model['macro_f1']:.4f} | baseline accuracy "
        f"{baseline['accuracy']:.4f} macro-F1 {baseline['macro_f1']:.4f} | "
        f"{'beats' if metrics['beats_baseline'] else 'does NOT beat'} the baseline -> {run.report}"
    )
    return metrics
