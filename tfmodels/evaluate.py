"""Test-split report of a training run, beside the TF-IDF baseline: RUN_DIR/report/.

metrics.json {"model": {..., "accuracy_ci95", "macro_f1_ci95"}, "baseline": {...}, "comparison": {paired
test, tfmodels.significance}, "beats_baseline": bool (the model's accuracy is above the baseline's beyond
noise: the paired difference's 95% interval lies above 0), "bootstrap": {...}}, confusion.json,
confusion.png, curves.png (from history.csv). Written atomically; the exporter copies the model's test
metrics into the card.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from data_prep.atomic import write_bytes, write_text
from data_prep.dataset_format import read_meta
from tfmodels import significance
from tfmodels.config import TrainConfig
from tfmodels.family import Built, read_run
from tfmodels.run_dir import RunDir

if TYPE_CHECKING:  # TensorFlow is imported where it is used, as the CLI's --help needs none
    import tensorflow as tf


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


def predict_logits(
    built: Built, config: TrainConfig, length_fn: Any, pairs: tf.data.Dataset, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """(labels, logits) over (string, label) pairs, in their order: the one prediction path of `evaluate`, the
    export gate and distillation's teachers. Bucketed by length the way training batches (little padding, few
    LSTM steps); each text carries its position through the pipeline and the results are put back in input
    order, so paired comparisons (with the baseline, between runs) match the same text. The network runs as one
    compiled function: eager calls run a recurrent layer step by step in Python."""
    import tensorflow as tf

    from tfmodels.pipeline import batched

    indexed = pairs.enumerate().map(lambda i, pair: ((pair[0], i), pair[1]))
    ds = batched(
        indexed,
        preprocessor=lambda text_and_index: (built.preprocessor(text_and_index[0]), text_and_index[1]),
        num_classes=num_classes,
        global_batch=config.batch_size,
        max_len=config.max_len,
        length_fn=None if length_fn is None else lambda text_and_index: length_fn(text_and_index[0]),
        bucketing=config.bucketing,
    )
    # bucket lengths vary, so let one trace serve every shape rather than one per length
    network = tf.function(lambda x: tf.cast(built.model(x, training=False), tf.float32), reduce_retracing=True)
    ys, logits, positions = [], [], []
    for (x, position), y in ds:
        ys.append(np.argmax(y.numpy(), axis=1))
        logits.append(network(x).numpy())
        positions.append(position.numpy())
    if not ys:
        return np.zeros(0, np.int64), np.zeros((0, num_classes), np.float32)
    order = np.argsort(np.concatenate(positions))
    return np.concatenate(ys)[order], np.concatenate(logits)[order]


def predict_split(
    built: Built,
    config: TrainConfig,
    family_input: str,
    length_fn: Any,
    data_dir: Path,
    split: str,
    num_classes: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(labels, probabilities) over a split in file order (predict_logits)."""
    import tensorflow as tf

    from tfmodels.pipeline import read_split

    labels, logits = predict_logits(built, config, length_fn, read_split(data_dir, split, family_input), num_classes)
    return labels, tf.nn.softmax(logits).numpy()


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
    y_pred = probs.argmax(axis=1)

    from tfmodels.baseline import baseline_predictions

    base_true, base_pred = baseline_predictions(data_dir, seed=config.seed)
    if not np.array_equal(y_true, base_true):
        raise RuntimeError("the model's and the baseline's test labels are not in the same order")
    bootstrap = significance.bootstrap_report(y_true, y_pred, base_pred, len(labels))
    model = {**classification_metrics(y_true, y_pred, labels), **bootstrap["model"]}
    baseline = {**classification_metrics(base_true, base_pred, labels), **bootstrap["baseline"]}
    comparison = bootstrap["comparison"]
    metrics = {
        "family": family.name,
        "labels": labels,
        "model": model,
        "baseline": {"kind": "tfidf-char-1-3+logreg", **baseline},
        "comparison": comparison,
        "beats_baseline": comparison["beyond_noise"],
        "bootstrap": {
            "method": "percentile, over test texts; paired for the comparison",
            "resamples": significance.RESAMPLES,
            "seed": significance.SEED,
            "level": significance.LEVEL,
        },
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
    print(summary_text(metrics, run.report))
    return metrics


def summary_text(metrics: dict[str, Any], report: Path) -> str:
    """The printed summary: each figure with its 95% interval, then the paired comparison."""

    def figures(scores: dict[str, Any]) -> str:
        return "  ".join(
            f"{name} {scores[key]:.3f} [{scores[key + '_ci95'][0]:.3f}, {scores[key + '_ci95'][1]:.3f}]"
            for key, name in (("accuracy", "accuracy"), ("macro_f1", "macro-F1"))
        )

    comparison = metrics["comparison"]
    low, high = comparison["accuracy_difference_ci95"]
    verdict = "beats" if metrics["beats_baseline"] else "does NOT beat"
    return (
        f"test split, {metrics['model']['examples']} texts (95% bootstrap intervals):\n"
        f"  model     {figures(metrics['model'])}\n"
        f"  baseline  {figures(metrics['baseline'])}\n"
        f"  model - baseline accuracy {comparison['accuracy_difference']:+.3f} [{low:+.3f}, {high:+.3f}], "
        f"McNemar mid-p {comparison['mcnemar']['mid_p']:.3g}: {verdict} the baseline beyond noise -> {report}"
    )
