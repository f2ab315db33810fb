"""The export gate's decision, in-process, and the re-scoring of the latest version on an edited dataset's
test split with real SavedModels (the CLI drills are in test_train_export.py and test_cli_errors.py)."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from data_prep.errors import UserError
from serving.contract import CARD_FILE, TOKENS_INPUT
from tests.support.cli import textclf
from tests.support.corpus import LABELS, SMALL, generated_rows
from tests.support.prepared import fake_run, flipped, published, write_prepared
from tfmodels.export import Compared, NotScorable, check_gate, gate_reference, read_card, read_metrics
from tfmodels.run_dir import RunDir

HASH_A, HASH_B = "a" * 64, "b" * 64
SPLIT_A, SPLIT_B = "c" * 64, "d" * 64


def card(accuracy: float | None, split_hash: str | None = SPLIT_A, data_hash: str | None = HASH_A) -> dict:
    metrics = {} if accuracy is None else {"accuracy": accuracy}
    return {"version": 3, "test_metrics": metrics, "data_hash": data_hash, "split_hash": split_hash}


def not_rescored() -> float:
    raise AssertionError("the card's figure is from the same test split: nothing to re-score")


def scores(accuracy: float) -> Callable[[], float]:
    return lambda: accuracy


def gate(
    previous: dict | None,
    accuracy: float = 0.80,
    rescore: Callable[[], float] = not_rescored,
    data_hash: str | None = HASH_A,
    split_hash: str | None = SPLIT_A,
) -> Compared | None:
    compared = gate_reference(previous, data_hash, split_hash, rescore=rescore)
    check_gate(compared, accuracy, 0.005)
    return compared


def test_on_the_same_split_the_card_figure_is_compared() -> None:
    assert gate(None) is None  # the first version
    assert gate(card(0.80)) == Compared(3, 0.80, "card")
    assert gate(card(0.804)) == Compared(3, 0.804, "card")  # within tolerance
    with pytest.raises(UserError, match=r"^gate: test accuracy 0.8000 is worse than version 3 \(0.9000\) beyond "):
        gate(card(0.90))


@pytest.mark.parametrize(
    ("previous", "data_hash", "split_hash", "why"),
    [
        (card(0.95, SPLIT_B), HASH_A, SPLIT_A, f"from a different dataset split (split hash {SPLIT_B}, this run's"),
        (card(0.95, None), HASH_A, SPLIT_A, "no split hash: same source, but its test split could not be checked"),
        (card(0.95, None, HASH_B), HASH_A, SPLIT_A, f"different dataset (data hash {HASH_B}, this run's {HASH_A})"),
        (card(0.95, None, None), HASH_A, SPLIT_A, "dataset could not be checked (its card has no data hash)"),
        (card(0.95), None, None, "dataset could not be checked (this run's dataset has no data hash)"),
        (card(None), HASH_A, SPLIT_A, "its card has no test accuracy"),
    ],
)
def test_without_the_same_split_the_latest_version_is_rescored(
    previous: dict, data_hash: str | None, split_hash: str | None, why: str
) -> None:
    compared = gate(previous, 0.80, scores(0.795), data_hash, split_hash)  # the card's 0.95 plays no part
    assert compared is not None and (compared.accuracy, compared.source) == (0.795, "re-scored")
    assert why in compared.describe() and "0.7950" in compared.describe()
    with pytest.raises(UserError) as refused:
        gate(previous, 0.80, scores(0.85), data_hash, split_hash)
    message = str(refused.value)
    assert message.startswith("gate: test accuracy 0.8000 is worse than version 3 re-scored on this run's test split")
    assert "(0.8500; " in message and why in message and "use --force" in message and "\n" not in message


def test_a_latest_version_that_cannot_be_rescored_is_refused_in_one_line() -> None:
    def unscorable() -> float:
        raise NotScorable("its classes (a, b, c) are not this dataset's (negative, positive)")

    with pytest.raises(UserError) as refused:
        gate(card(0.5, SPLIT_B), 0.99, unscorable)
    message = str(refused.value)
    assert message.startswith("gate: version 3 cannot be re-scored on this run's test split (its classes (a, b, c)")
    assert SPLIT_B in message and "use --force to publish" in message and "\n" not in message


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


def test_export_force_help_names_both_refusals() -> None:
    from click.testing import CliRunner

    from tfmodels.cli import export

    help_text = " ".join(CliRunner().invoke(export, ["--help"]).output.split())
    assert "gate finds the model worse" in help_text and "different dataset" in help_text


@pytest.fixture(scope="module")
def trained(prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny LSTM run on the shared prepared dataset (trained and evaluated by the real CLI)."""
    run = tmp_path_factory.mktemp("runs") / "lstm"
    result = textclf("train", "lstm", "--data", str(prepared), "--out", str(run), *SMALL)
    assert result.returncode == 0, result.stdout + result.stderr
    return run


def versions(models: Path) -> list[str]:
    return sorted(p.name for p in (models / "sent").iterdir())


def model_card(version_dir: Path) -> dict:
    return json.loads((version_dir / CARD_FILE).read_text())


def gate_record(version_dir: Path) -> dict:
    return model_card(version_dir)["gate"]


def served_and_trained_labels(version_dir: Path, run: Path) -> tuple[list[int], list[int], list[int]]:
    """(true, served, trained) label ids of the run's test split: the version's SavedModel loaded afresh and
    the run's Keras model, each over the whole split at once."""
    import tensorflow as tf

    from data_prep.dataset_format import TOKENS
    from tfmodels.family import read_run
    from tfmodels.pipeline import read_split

    family, config = read_run(RunDir(run))
    texts, true = zip(*read_split(Path(config.data), "test", TOKENS).as_numpy_iterator(), strict=True)
    signature = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    served = [LABELS.index(name.decode()) for name in signature(tokens=tf.constant(texts))["label"].numpy()]
    built = family.load(RunDir(run).model, config)
    trained = built.model(built.preprocessor(tf.constant(texts)), training=False).numpy().argmax(axis=1)
    return [int(y) for y in true], served, [int(y) for y in trained]


@pytest.mark.slow
def test_after_a_data_edit_the_latest_version_is_rescored_on_the_new_test_split(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tfmodels.evaluate import evaluate_run
    from tfmodels.export import export_run

    models = tmp_path / "models"
    export_run(trained, models, "sent")
    assert gate_record(models / "sent" / "1") == {"forced": False, "compared_with": None}
    # the card's test figures are the exported (reduced) SavedModel's, as a fresh scoring of it finds them;
    # the trained model's figures (its report) and the label agreement of the two are kept beside them
    card = model_card(models / "sent" / "1")
    true, served, trained_labels = served_and_trained_labels(models / "sent" / "1", trained)
    assert card["test_metrics"]["accuracy"] == pytest.approx(sum(map(int.__eq__, true, served)) / len(true))
    assert card["test_metrics"]["examples"] == len(true) and 0 < card["test_metrics"]["macro_f1"] <= 1
    assert card["label_agreement_with_trained"] == pytest.approx(
        sum(map(int.__eq__, served, trained_labels)) / len(true)
    )
    assert card["trained_test_metrics"] == read_metrics(RunDir(trained))[0]
    # the user edits the data: other rows, other split counts, so another split fingerprint
    edited = write_prepared(tmp_path / "edited", generated_rows(700, seed=8), (450, 100, 150))
    # the candidate is the same network evaluated on the edited data, so it scores about what version 1
    # re-scored on the new test split does: the pass below is "as good"; its flipped copy is "worse"
    candidate = tmp_path / "candidate"
    shutil.copytree(trained, candidate)
    config = json.loads((candidate / "config.json").read_text())
    (candidate / "config.json").write_text(json.dumps({**config, "data": str(edited)}))
    accuracy = evaluate_run(candidate)["model"]["accuracy"]

    worse = flipped(candidate, tmp_path / "worse")
    refused = textclf("export", str(worse), "--model-base", str(models), "--name", "sent")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    errors = [line for line in refused.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, refused.stderr
    match = re.search(
        r"test accuracy (\d\.\d{4}) is worse than version 1 re-scored on this run's test split \((\d\.\d{4}); "
        r".*different dataset split",
        errors[0],
    )
    assert match, errors[0]
    worse_accuracy, rescored = match.groups()
    assert versions(models) == ["1"]

    capsys.readouterr()
    export_run(candidate, models, "sent")
    printed = capsys.readouterr().out
    served = model_card(models / "sent" / "2")["test_metrics"]["accuracy"]
    assert f"gate: test accuracy {served:.4f} against version 1 re-scored on this run's test split (" in printed
    assert float(worse_accuracy) == pytest.approx(1 - served, abs=1e-4)  # every label flipped
    compared = gate_record(models / "sent" / "2")["compared_with"]
    assert (compared["version"], compared["source"]) == (1, "re-scored")
    assert f"{compared['accuracy']:.4f}" == rescored
    assert abs(compared["accuracy"] - accuracy) < 0.01  # the same network on the same texts (Keras vs SavedModel)

    # version 2 was tested on this very split: its card's figure is compared, nothing is re-scored
    export_run(candidate, models, "sent")
    assert "from its model card (same test split)" in capsys.readouterr().out
    assert gate_record(models / "sent" / "3")["compared_with"] == {"version": 2, "accuracy": served, "source": "card"}


@pytest.mark.slow
def test_a_latest_version_with_other_class_names_is_refused_unless_forced(trained: Path, tmp_path: Path) -> None:
    from tests.support.tiny_models import LABELS, build
    from tfmodels.export import export_run

    models = tmp_path / "models"
    build(models / "sent" / "1", TOKENS_INPUT)  # a real SavedModel of three news classes, tokens input
    card_file = models / "sent" / "1" / CARD_FILE
    card_file.parent.mkdir(parents=True, exist_ok=True)
    card_file.write_text(json.dumps({**card(0.99, SPLIT_B), "version": 1, "labels": LABELS}, ensure_ascii=False))
    with pytest.raises(UserError) as refused:
        export_run(trained, models, "sent")
    message = str(refused.value)
    assert message.startswith("gate: version 1 cannot be re-scored on this run's test split"), message
    assert "its classes (体育, 科技, 财经) are not this dataset's (negative, positive)" in message
    assert "use --force to publish" in message and "\n" not in message
    assert versions(models) == ["1"]
    export_run(trained, models, "sent", force=True)
    assert gate_record(models / "sent" / "2") == {"forced": True, "compared_with": None}


def test_a_latest_version_that_does_not_load_is_refused(prepared: Path, tmp_path: Path) -> None:
    from tfmodels.export import export_run

    run = fake_run(tmp_path / "run", prepared)
    models = published(tmp_path / "models", json.dumps({**card(0.5, SPLIT_B), "version": 1}))  # no SavedModel
    with pytest.raises(UserError, match=r"^gate: version 1 cannot be re-scored .*\(it fails to load: ") as refused:
        export_run(run, models, "sent")
    assert "\n" not in str(refused.value)
