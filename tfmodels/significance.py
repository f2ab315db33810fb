"""How sure a test-split figure is: percentile-bootstrap intervals over test texts and a paired comparison
with the baseline on the same texts (paired bootstrap of the accuracy difference, McNemar's test).

A test split of ~1,700 texts has a standard error of ~1 point of accuracy, so two models' figures differ by
that much by chance alone; "beats the baseline" means the difference's interval lies above 0.
Resampled confusion matrices are numpy, drawn with a fixed seed so reruns and runs agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import binom

RESAMPLES = 2000
SEED = 0
LEVEL = 0.95
CHUNK = 1 << 22  # resampled texts drawn at once: bounds memory on a large test split


def resampled_confusions(
    y_true: np.ndarray, predictions: Sequence[np.ndarray], num_classes: int, resamples: int = RESAMPLES
) -> np.ndarray:
    """(resamples, len(predictions), K, K): each prediction's confusion matrix (true x predicted) on the same
    bootstrap samples of the texts, drawn with the fixed SEED so every run is scored on the same samples.
    Every drawn text adds one to its (sample, true x predicted) cell: a bincount per prediction and chunk,
    memory linear in the texts drawn, whatever K."""
    y_true = np.asarray(y_true, np.int64)
    n, cells = len(y_true), num_classes * num_classes
    cell_of = [y_true * num_classes + np.asarray(pred, np.int64) for pred in predictions]  # per text
    rng = np.random.default_rng(SEED)
    step = max(1, CHUNK // max(n, 1))
    chunks = []
    for start in range(0, resamples, step):
        rows = min(step, resamples - start)
        drawn = rng.integers(0, max(n, 1), size=(rows, n))
        counts = []
        for cell in cell_of:
            keys = cell[drawn]  # [sample, text]: the drawn texts' cells
            keys += (np.arange(rows) * cells)[:, None]  # each sample its own block of cells
            counts.append(np.bincount(keys.ravel(), minlength=rows * cells).reshape(rows, cells))
        chunks.append(np.stack(counts, axis=1))
    return np.concatenate(chunks).reshape(resamples, len(predictions), num_classes, num_classes)


def accuracy(confusion: np.ndarray) -> np.ndarray:
    """Accuracy of confusion matrices over their last two axes."""
    total = confusion.sum(axis=(-2, -1))
    right = np.trace(confusion, axis1=-2, axis2=-1)
    return np.divide(right, total, out=np.zeros(right.shape), where=total > 0)


def macro_f1(confusion: np.ndarray) -> np.ndarray:
    """Macro-F1 of confusion matrices over their last two axes, as sklearn's f1_score(average="macro",
    labels=range(K), zero_division=0): a class absent from both truth and predictions scores 0."""
    tp = np.diagonal(confusion, axis1=-2, axis2=-1)
    denominator = confusion.sum(axis=-1) + confusion.sum(axis=-2)  # 2tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros(tp.shape), where=denominator > 0).mean(axis=-1)


def percentile_interval(values: np.ndarray, level: float = LEVEL) -> list[float]:
    """[low, high] holding the central `level` share of the bootstrap values."""
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return [float(low), float(high)]


def bootstrap_report(
    y_true: np.ndarray, model_pred: np.ndarray, baseline_pred: np.ndarray, num_classes: int, resamples: int = RESAMPLES
) -> dict[str, Any]:
    """95% intervals of the model's and the baseline's accuracy and macro-F1, and the paired comparison:
    model minus baseline accuracy on the same texts (same order), its paired-bootstrap interval, McNemar's
    test, and `beyond_noise` (the interval lies above 0)."""
    confusions = resampled_confusions(y_true, [model_pred, baseline_pred], num_classes, resamples)
    accuracies, f1s = accuracy(confusions), macro_f1(confusions)
    scores = [
        {"accuracy_ci95": percentile_interval(accuracies[:, i]), "macro_f1_ci95": percentile_interval(f1s[:, i])}
        for i in range(2)
    ]
    y_true = np.asarray(y_true)
    model_right, baseline_right = np.asarray(model_pred) == y_true, np.asarray(baseline_pred) == y_true
    interval = percentile_interval(accuracies[:, 0] - accuracies[:, 1])
    comparison = {
        "accuracy_difference": float(model_right.mean() - baseline_right.mean()) if len(y_true) else 0.0,
        "accuracy_difference_ci95": interval,
        "mcnemar": mcnemar(int((model_right & ~baseline_right).sum()), int((~model_right & baseline_right).sum())),
        "beyond_noise": interval[0] > 0,
    }
    return {"model": scores[0], "baseline": scores[1], "comparison": comparison}


def mcnemar(model_only: int, baseline_only: int) -> dict[str, Any]:
    """McNemar's test on the discordant pairs (texts only the model got right, only the baseline got right):
    two-sided exact binomial p and the mid-p (Fagerland et al. 2013), which holds its level less
    conservatively. The mid-p is summed from positive terms, so a tiny p keeps its digits."""
    n, k = model_only + baseline_only, min(model_only, baseline_only)
    exact = min(1.0, 2 * float(binom.cdf(k, n, 0.5)))
    mid = min(1.0, 2 * float(binom.cdf(k - 1, n, 0.5)) + float(binom.pmf(k, n, 0.5)))  # 2 P(X <= k) - P(X = k)
    return {"model_only": model_only, "baseline_only": baseline_only, "exact_p": exact, "mid_p": mid}
