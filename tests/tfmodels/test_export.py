"""The export gate's decision, in-process (the CLI drills are in test_train_export.py and test_cli_errors.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data_prep.errors import UserError
from serving.contract import CARD_FILE
from tfmodels.export import check_gate, read_card, read_metrics
from tfmodels.run_dir import RunDir

HASH_A, HASH_B = "a" * 64, "b" * 64
METRICS = {"accuracy": 0.80, "macro_f1": 0.8, "examples": 100}


def card(accuracy: float, data_hash: str | None = HASH_A) -> dict:
    return {"version": 3, "test_metrics": {"accuracy": accuracy}, "data_hash": data_hash}


def test_first_version_and_no_worse_versions_pass() -> None:
    check_gate(None, METRICS, HASH_A, 0.005)
    check_gate(card(0.80), METRICS, HASH_A, 0.005)
    check_gate(card(0.804), METRICS, HASH_A, 0.005)  # within tolerance
    check_gate(card(0.90, data_hash=None), {**METRICS, "accuracy": 0.90}, HASH_A, 0.0)  # an unknown hash: compare


def test_a_worse_version_is_refused() -> None:
    with pytest.raises(UserError, match=r"gate: test accuracy 0.8000 is worse than version 3 \(0.9000\)"):
        check_gate(card(0.90), METRICS, HASH_A, 0.005)


def test_a_latest_version_of_another_dataset_is_refused_whatever_the_accuracies() -> None:
    for previous_accuracy in (0.5, 0.9):  # better or worse: the numbers come from different test splits
        with pytest.raises(UserError) as refused:
            check_gate(card(previous_accuracy, data_hash=HASH_B), METRICS, HASH_A, 0.005)
        message = str(refused.value)
        assert "different dataset" in message and HASH_A in message and HASH_B in message
        assert "use --force" in message


SPLIT_A, SPLIT_B = "c" * 64, "d" * 64


def split_card(accuracy: float, split_hash: str | None) -> dict:
    return {**card(accuracy), "split_hash": split_hash}


def test_a_latest_version_of_another_split_of_the_same_source_is_refused() -> None:
    with pytest.raises(UserError) as refused:
        check_gate(split_card(0.5, SPLIT_B), METRICS, HASH_A, 0.005, SPLIT_A)
    message = str(refused.value)
    assert "different dataset split" in message and SPLIT_A in message and SPLIT_B in message
    assert "use --force" in message and "\n" not in message
    # the same split: the accuracies compare, and nothing is left unchecked
    assert check_gate(split_card(0.80, SPLIT_A), METRICS, HASH_A, 0.005, SPLIT_A) is None
    with pytest.raises(UserError, match="gate: test accuracy 0.8000 is worse"):
        check_gate(split_card(0.90, SPLIT_A), METRICS, HASH_A, 0.005, SPLIT_A)


def test_a_card_without_a_split_hash_falls_back_to_the_data_hash_and_says_so() -> None:
    note = check_gate(card(0.80), METRICS, HASH_A, 0.005, SPLIT_A)  # written before split hashes
    assert note is not None and "split could not be checked" in note
    with pytest.raises(UserError, match="different dataset"):
        check_gate(card(0.80, data_hash=HASH_B), METRICS, HASH_A, 0.005, SPLIT_A)


def test_a_missing_hash_on_either_side_still_compares_and_says_the_dataset_was_not_checked() -> None:
    for previous, data_hash in [(card(0.80, data_hash=None), HASH_A), (card(0.80), None)]:
        note = check_gate(previous, METRICS, data_hash, 0.005)
        assert note is not None and "dataset could not be checked" in note
    with pytest.raises(UserError, match=r"worse .*; the dataset could not be checked \(.*\); use --force"):
        check_gate(card(0.90, data_hash=None), METRICS, HASH_A, 0.005)


@pytest.mark.parametrize(
    ("metrics", "message"),
    [
        ([1, 2], "must hold a JSON object"),
        ({"model": {"accuracy": 0.8}}, "'model' must be an object with numbers for accuracy, macro_f1, examples"),
        ({"model": {"accuracy": 0.8, "macro_f1": 0.8, "examples": 10}}, "'baseline' must be an object"),
        ({"model": {"accuracy": "high", "macro_f1": 0.8, "examples": 10}, "baseline": {}}, "'model' must be"),
        ({"model": None, "baseline": None}, "'model' must be an object"),
    ],
)
def test_a_metrics_json_of_the_wrong_shape_is_one_line(tmp_path: Path, metrics: object, message: str) -> None:
    run = RunDir(tmp_path)
    run.report.mkdir()
    run.metrics.write_text(json.dumps(metrics))
    with pytest.raises(UserError, match=message) as refused:
        read_metrics(run)
    assert str(run.metrics) in str(refused.value) and "\n" not in str(refused.value)


def test_metrics_json_gives_the_card_its_scores(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    with pytest.raises(UserError, match="run `textclf evaluate"):
        read_metrics(run)
    run.report.mkdir()
    scores = {"accuracy": 0.8, "macro_f1": 0.7, "examples": 100, "per_class": {}}
    run.metrics.write_text(json.dumps({"model": scores, "baseline": scores}))
    assert read_metrics(run) == (
        {"accuracy": 0.8, "macro_f1": 0.7, "examples": 100},
        {"accuracy": 0.8, "macro_f1": 0.7},
    )


@pytest.mark.parametrize("test_metrics", [None, [0.9], {"accuracy": None}, {"accuracy": "0.9"}])
def test_a_model_card_of_the_wrong_shape_is_one_line(tmp_path: Path, test_metrics: object) -> None:
    (tmp_path / CARD_FILE).parent.mkdir(parents=True)
    (tmp_path / CARD_FILE).write_text(json.dumps({"version": 1, "test_metrics": test_metrics}))
    with pytest.raises(UserError, match="test_metrics must be an object whose accuracy is a number") as refused:
        read_card(tmp_path)
    assert str(tmp_path / CARD_FILE) in str(refused.value) and "\n" not in str(refused.value)


def test_a_card_without_test_metrics_passes_the_gate(tmp_path: Path) -> None:
    (tmp_path / CARD_FILE).parent.mkdir(parents=True)
    (tmp_path / CARD_FILE).write_text(json.dumps({"version": 1, "data_hash": HASH_A}))
    previous = read_card(tmp_path)
    assert previous == {"version": 1, "data_hash": HASH_A}
    assert "split could not be checked" in (check_gate(previous, METRICS, HASH_A, 0.0, SPLIT_A) or "")


def test_export_force_help_names_both_refusals() -> None:
    from click.testing import CliRunner

    from tfmodels.cli import export

    help_text = " ".join(CliRunner().invoke(export, ["--help"]).output.split())
    assert "gate finds the model worse" in help_text and "different dataset" in help_text
