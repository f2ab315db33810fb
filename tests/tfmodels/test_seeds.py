"""`textclf train lstm --seeds N`: N ordinary runs seeded SEED, SEED+1, ..., their mean ± std, reruns that
skip finished seeds; and the report's intervals and paired comparison, read from a real run."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from data_prep.errors import UserError
from tests.support.cli import textclf
from tfmodels.run_dir import RunDir
from tfmodels.seeds import SEEDS_FILE, format_summary, run_seeds, seed_dir


@pytest.fixture(scope="module")
def trained(prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(OUT, printed output) of the one real training in this module, a subprocess as a user runs it: two
    seeds of the smallest LSTM, one epoch each, its hashed n-gram tables kept tiny by a config file."""
    folder = tmp_path_factory.mktemp("seeds")
    config = folder / "tiny.yaml"
    config.write_text("ngram_buckets: 256\nngram_dim: 4\n")
    result = textclf(
        *("train", "lstm", "--data", str(prepared), "--out", str(folder / "out"), "--config", str(config)),
        *("--seeds", "2", "--seed", "7", "--epochs", "1", "--max-train-examples", "200"),
        *("--batch-size", "32", "--embedding-dim", "16", "--lstm-units", "8", "--min-count", "1"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return folder / "out", result.stdout


@pytest.mark.slow
def test_seeds_train_ordinary_runs_and_summarize_them(trained: tuple[Path, str]) -> None:
    out, printed = trained
    assert sorted(p.name for p in out.iterdir()) == ["seed-7", "seed-8", SEEDS_FILE]
    for seed in (7, 8):
        run = RunDir(seed_dir(out, seed))
        assert json.loads(run.config.read_text())["seed"] == seed and run.model.is_dir()
        metrics = json.loads(run.metrics.read_text())
        for who in ("model", "baseline"):
            for key in ("accuracy", "macro_f1"):
                low, high = metrics[who][f"{key}_ci95"]
                assert low <= metrics[who][key] <= high, (who, key, metrics[who])
        comparison = metrics["comparison"]
        assert comparison["accuracy_difference"] == pytest.approx(
            metrics["model"]["accuracy"] - metrics["baseline"]["accuracy"]
        )
        assert metrics["beats_baseline"] is (comparison["accuracy_difference_ci95"][0] > 0)
        assert 0 <= comparison["mcnemar"]["mid_p"] <= comparison["mcnemar"]["exact_p"] <= 1
        assert re.search(r"^  model     accuracy \d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]  macro-F1 ", printed, re.M)

    summary = json.loads((out / SEEDS_FILE).read_text())
    accuracies = [json.loads(RunDir(seed_dir(out, s)).metrics.read_text())["model"]["accuracy"] for s in (7, 8)]
    assert summary["seeds"] == [7, 8] and summary["finished"] == 2
    assert [r["accuracy"] for r in summary["runs"]] == accuracies
    assert summary["accuracy"]["mean"] == pytest.approx(sum(accuracies) / 2)
    assert summary["accuracy"]["std"] == pytest.approx(abs(accuracies[0] - accuracies[1]) / 2**0.5)
    assert summary["settings"]["lstm_units"] == 8 and "seed" not in summary["settings"]
    assert re.search(r"^accuracy \d\.\d{3} ± \d\.\d{3} over 2 seeds$", printed, re.M), printed


@pytest.mark.slow
def test_a_rerun_skips_finished_seeds_and_only_evaluates_a_seed_saved_without_its_report(
    trained: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    out, _ = trained
    seed_8 = RunDir(seed_dir(out, 8))
    accuracy = json.loads(seed_8.metrics.read_text())["model"]["accuracy"]
    shutil.rmtree(seed_8.report)  # as if killed between saving the model and writing the report

    def must_not_train(run_dir: Path, seed: int, force: bool) -> None:
        raise AssertionError(f"seed {seed} trained again")

    settings = json.loads((out / SEEDS_FILE).read_text())["settings"]
    summary = run_seeds(out, 2, 7, must_not_train, settings=settings)
    assert "seed 7 (1/2): finished, skipped" in capsys.readouterr().out
    # the saved model scores what it scored when training wrote the report: same texts, same order
    assert json.loads(seed_8.metrics.read_text())["model"]["accuracy"] == accuracy
    assert summary["finished"] == 2 and summary["runs"][1]["accuracy"] == accuracy


def write_report(run_dir: Path, accuracy: float, config: dict | None = None) -> None:
    """What a finished seed leaves for the summary (a stand-in for training, whose real path the CLI tests)."""
    run = RunDir(run_dir)
    for folder in (run.model, run.report):
        folder.mkdir(parents=True)
    run.config.write_text(json.dumps(config or {}))
    scores = {"accuracy": accuracy, "macro_f1": accuracy, "accuracy_ci95": [0.0, 1.0], "macro_f1_ci95": [0.0, 1.0]}
    run.metrics.write_text(json.dumps({"model": scores, "baseline": {"accuracy": 0.5}, "beats_baseline": True}))


def test_more_seeds_train_only_the_new_ones_and_force_trains_all(tmp_path: Path) -> None:
    trained: list[int] = []

    def train_one(run_dir: Path, seed: int, force: bool) -> None:
        trained.append(seed)
        if force:
            shutil.rmtree(run_dir, ignore_errors=True)
        write_report(run_dir, 0.80 + 0.01 * (seed - 3))

    settings = {"lstm_units": 8, "ngram": (1, 3)}  # a tuple: read back from JSON as a list, still the same
    assert run_seeds(tmp_path, 2, 3, train_one, settings=settings)["finished"] == 2
    summary = run_seeds(tmp_path, 3, 3, train_one, settings=settings)
    assert trained == [3, 4, 5]
    assert summary["accuracy"]["mean"] == pytest.approx(0.81) and summary["accuracy"]["std"] == pytest.approx(0.01)
    assert format_summary(summary).splitlines()[0] == "accuracy 0.810 ± 0.010 over 3 seeds"
    with pytest.raises(UserError, match=r"other settings \(lstm_units\); rerun with the same flags or add --force"):
        run_seeds(tmp_path, 3, 3, train_one, settings={**settings, "lstm_units": 4})
    run_seeds(tmp_path, 3, 3, train_one, settings={"lstm_units": 4}, force=True)
    assert trained == [3, 4, 5, 3, 4, 5]
    assert json.loads((tmp_path / SEEDS_FILE).read_text())["settings"] == {"lstm_units": 4}
    with pytest.raises(UserError, match="holds a single run"):
        run_seeds(RunDir(seed_dir(tmp_path, 3)).path, 1, 1, train_one, settings={})


def test_a_forced_rerun_killed_early_leaves_no_seed_of_the_earlier_settings(tmp_path: Path) -> None:
    """--force with other settings, killed after its first seed, then rerun without --force: the seeds the
    earlier settings finished must train again, not count as finished (seeds.json already holds the new
    settings)."""
    trained: list[tuple[int, int]] = []
    stop_at: int | None = None

    def train_one(run_dir: Path, seed: int, force: bool) -> None:
        if seed == stop_at:
            raise KeyboardInterrupt
        units = settings["lstm_units"]
        trained.append((seed, units))
        write_report(run_dir, 0.8, {**settings, "seed": seed})

    settings = {"family": "lstm", "lstm_units": 8, "export_dtype": "int8"}
    run_seeds(tmp_path, 3, 1, train_one, settings=settings)
    settings = {**settings, "lstm_units": 4}
    stop_at = 2
    with pytest.raises(KeyboardInterrupt):
        run_seeds(tmp_path, 3, 1, train_one, settings=settings, force=True)
    assert sorted(p.name for p in tmp_path.glob("seed-*")) == ["seed-1"]  # seeds 2 and 3 of lstm_units 8 went first
    stop_at = None
    run_seeds(tmp_path, 3, 1, train_one, settings=settings)
    assert trained == [(1, 8), (2, 8), (3, 8), (1, 4), (2, 4), (3, 4)]

    # export-only settings (LSTMConfig.EXPORT_ONLY) change no trained seed: nothing trains, nothing is refused
    settings = {**settings, "export_dtype": "float16"}
    summary = run_seeds(tmp_path, 3, 1, train_one, settings=settings)
    assert summary["finished"] == 3 and summary["settings"]["export_dtype"] == "float16" and len(trained) == 6


def test_a_finished_seed_trained_with_other_settings_is_refused_whatever_seeds_json_says(tmp_path: Path) -> None:
    def must_not_train(run_dir: Path, seed: int, force: bool) -> None:
        raise AssertionError(f"seed {seed} trained")

    settings = {"family": "lstm", "lstm_units": 4, "data": "/d", "export_dtype": "int8"}
    write_report(seed_dir(tmp_path, 1), 0.8, {**settings, "seed": 1, "export_dtype": "float32"})
    write_report(seed_dir(tmp_path, 2), 0.8, {**settings, "seed": 2, "lstm_units": 8})  # e.g. copied in by hand
    with pytest.raises(UserError, match=r"seed-2 was trained with other settings \(lstm_units\)"):
        run_seeds(tmp_path, 2, 1, must_not_train, settings=settings)
    assert run_seeds(tmp_path, 1, 1, must_not_train, settings=settings)["finished"] == 1
