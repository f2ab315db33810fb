"""The statistics behind "beats the baseline": McNemar on hand-made tables, macro-F1 as sklearn computes it,
and bootstrap intervals that cover the true value about 95% of the time on synthetic test splits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tfmodels import significance
from tfmodels.significance import accuracy, bootstrap_report, macro_f1, mcnemar, percentile_interval


def test_mcnemar_on_hand_made_tables() -> None:
    # 2 texts only the model gets right, 8 only the baseline: P(X <= 2 | n=10, 1/2) = (1 + 10 + 45) / 1024
    expected = {"model_only": 2, "baseline_only": 8, "exact_p": 112 / 1024, "mid_p": 67 / 1024}
    assert mcnemar(2, 8) == pytest.approx(expected)
    assert mcnemar(8, 2)["exact_p"] == mcnemar(2, 8)["exact_p"]  # two-sided
    assert mcnemar(5, 5)["exact_p"] == 1.0 and mcnemar(5, 5)["mid_p"] == pytest.approx(1.0)
    assert mcnemar(0, 0)["exact_p"] == 1.0
    assert mcnemar(0, 10)["exact_p"] == pytest.approx(2 / 1024)
    # large discordant counts: no overflow, no underflow to nan
    big = mcnemar(400, 520)
    assert 0 < big["mid_p"] < big["exact_p"] < 0.001


def exact_binomial_tails(k: int, n: int) -> tuple[float, float]:
    """The two-sided exact p and mid-p in integer arithmetic (quadratic in n: fine for the oracle's n)."""
    below, at = sum(math.comb(n, i) for i in range(k + 1)), math.comb(n, k)
    return min(1.0, 2 * below / 2**n), min(1.0, (2 * below - at) / 2**n)


@pytest.mark.parametrize(("model_only", "baseline_only"), [(1, 2), (13, 30), (400, 520), (700, 300)])
def test_mcnemar_matches_exact_integer_arithmetic(model_only: int, baseline_only: int) -> None:
    exact, mid = exact_binomial_tails(min(model_only, baseline_only), model_only + baseline_only)
    table = mcnemar(model_only, baseline_only)
    assert table["exact_p"] == pytest.approx(exact, rel=1e-9) and table["mid_p"] == pytest.approx(mid, rel=1e-9)
    assert 0 < table["mid_p"] < table["exact_p"] <= 1


def test_macro_f1_and_accuracy_match_sklearn_with_a_class_never_seen() -> None:
    from sklearn.metrics import confusion_matrix, f1_score

    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 4, 300)
    y_pred = np.where(rng.random(300) < 0.7, y_true, rng.integers(0, 5, 300))  # class 4 only predicted
    confusion = confusion_matrix(y_true, y_pred, labels=range(6))  # class 5 in neither
    expected = f1_score(y_true, y_pred, labels=range(6), average="macro", zero_division=0)
    assert macro_f1(confusion) == pytest.approx(expected, abs=1e-12)
    assert accuracy(confusion) == pytest.approx(float((y_true == y_pred).mean()), abs=1e-12)
    # batched over leading axes, as the bootstrap uses it
    assert macro_f1(np.stack([confusion, confusion])).tolist() == pytest.approx([expected, expected])


def test_resampling_is_fixed_and_chunks_draw_the_same_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(1)
    y_true = rng.integers(0, 3, 250)
    preds = [np.where(rng.random(250) < p, y_true, rng.integers(0, 3, 250)) for p in (0.8, 0.6)]
    whole = significance.resampled_confusions(y_true, preds, 3, resamples=300)
    assert whole.shape == (300, 2, 3, 3) and (whole.sum(axis=(2, 3)) == 250).all()
    monkeypatch.setattr(significance, "CHUNK", 250 * 7)  # 7 samples at a time: the large-split path
    assert np.array_equal(significance.resampled_confusions(y_true, preds, 3, resamples=300), whole)


def one_hot_confusions(y_true: np.ndarray, preds: list[np.ndarray], k: int, resamples: int) -> np.ndarray:
    """The oracle: how often each text is drawn (the same SEED-ed draws) @ each text's one-hot cell."""
    n = len(y_true)
    drawn = np.random.default_rng(significance.SEED).integers(0, n, size=(resamples, n))
    counts = np.stack([np.bincount(row, minlength=n) for row in drawn])
    one_hot = np.zeros((n, len(preds) * k * k))
    for i, pred in enumerate(preds):
        one_hot[np.arange(n), i * k * k + y_true * k + pred] = 1
    return (counts @ one_hot).reshape(resamples, len(preds), k, k)


def test_resampled_confusions_count_the_drawn_texts_cells() -> None:
    rng = np.random.default_rng(4)
    y_true = rng.integers(0, 14, 400)
    preds = [np.where(rng.random(400) < p, y_true, rng.integers(0, 14, 400)) for p in (0.9, 0.5)]
    confusions = significance.resampled_confusions(y_true, preds, 14, resamples=120)
    assert np.array_equal(confusions, one_hot_confusions(y_true, preds, 14, 120))


def test_percentile_interval() -> None:
    assert percentile_interval(np.arange(1001) / 1000) == pytest.approx([0.025, 0.975])


def synthetic(rng: np.random.Generator, n: int, p_model: float, p_baseline: float) -> tuple[np.ndarray, ...]:
    """A two-class test split and two independent classifiers right with probabilities p_model, p_baseline."""
    y = rng.integers(0, 2, n)
    model = np.where(rng.random(n) < p_model, y, 1 - y)
    baseline = np.where(rng.random(n) < p_baseline, y, 1 - y)
    return y, model, baseline


def test_intervals_cover_the_true_accuracy_and_difference_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(11)
    trials, covered_model, covered_difference = 200, 0, 0
    for _ in range(trials):
        y, model, baseline = synthetic(rng, 150, 0.8, 0.75)
        report = bootstrap_report(y, model, baseline, 2, resamples=400)
        low, high = report["model"]["accuracy_ci95"]
        covered_model += low <= 0.8 <= high
        low, high = report["comparison"]["accuracy_difference_ci95"]
        covered_difference += low <= 0.05 <= high
    # a percentile bootstrap at n=150 runs a little below its nominal 95%; 200 trials give +-3 points of noise
    assert 0.88 <= covered_model / trials <= 0.99
    assert 0.88 <= covered_difference / trials <= 0.99


def test_beats_the_baseline_only_beyond_noise() -> None:
    rng = np.random.default_rng(5)
    y, model, baseline = synthetic(rng, 1000, 0.9, 0.7)
    clear = bootstrap_report(y, model, baseline, 2)["comparison"]
    assert clear["beyond_noise"] and clear["accuracy_difference_ci95"][0] > 0 and clear["mcnemar"]["exact_p"] < 1e-6
    assert clear["accuracy_difference"] == pytest.approx((model == y).mean() - (baseline == y).mean())

    # one text apart on 1,000: higher accuracy, but not beyond noise
    nearly = baseline.copy()
    wrong = np.flatnonzero(nearly != y)[0]
    nearly[wrong] = y[wrong]
    close = bootstrap_report(y, nearly, baseline, 2)["comparison"]
    assert close["accuracy_difference"] == pytest.approx(0.001)
    assert not close["beyond_noise"] and close["mcnemar"]["exact_p"] == 1.0

    same = bootstrap_report(y, baseline, baseline, 2)
    assert same["comparison"]["accuracy_difference_ci95"] == [0.0, 0.0] and not same["comparison"]["beyond_noise"]
    assert same["model"] == same["baseline"]
