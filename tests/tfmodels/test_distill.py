"""`textclf distill`: a tiny real distillation end to end (teachers' logits cached, the student an ordinary run
that evaluate and export take), the refusals (labels, leaked extra text, a resume with other teachers) and the
loss against its formula.

The run teacher is an untrained LSTM saved the way training saves one: a teacher's quality does not matter to
the mechanics, and it keeps this module at one real training (the student's)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from data_prep.errors import UserError
from tests.support.corpus import SMALL, generated_rows

TINY_TEACHER = {"embedding_dim": 8, "lstm_units": 4, "ngram_dim": 4, "ngram_buckets": 256, "min_count": 1}


@pytest.fixture(scope="module")
def data(prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny dataset with a complete preprocessing record, which --extra-text rebuilds its cleaning from."""
    from data_prep.preprocess import Preprocessor

    out = tmp_path_factory.mktemp("distill") / "data"
    shutil.copytree(prepared, out)
    meta = json.loads((out / "meta.json").read_text())
    (out / "meta.json").write_text(json.dumps({**meta, "preprocessing": Preprocessor().config()}, ensure_ascii=False))
    return out


def _saved_untrained_run(run_dir: Path, data: Path) -> Path:
    from data_prep.dataset_format import TOKENS
    from tfmodels.config import resolve, save_config
    from tfmodels.lstm.family import FAMILY
    from tfmodels.pipeline import read_split
    from tfmodels.run_dir import RunDir

    config = replace(resolve(FAMILY.config_class, None, TINY_TEACHER), data=str(data))
    built = FAMILY.build(config, read_split(data, "train", TOKENS).map(lambda text, label: text), 2)
    run = RunDir(run_dir)
    run.path.mkdir(parents=True)
    save_config(run, config)
    FAMILY.save(built, run.model)
    return run.path


@pytest.fixture(scope="module")
def teacher(data: Path) -> Path:
    return _saved_untrained_run(data.parent / "teacher", data)


@pytest.fixture(scope="module")
def extra_file(data: Path) -> Path:
    """Unlabelled texts: generated like the corpus with another seed, minus the dev/test texts they repeat."""
    from tfmodels.baseline import split_texts

    held_out = {t for split in ("dev", "test") for t in split_texts(data, split)[0]}
    texts = [tokens.replace(" ", "") for tokens, _ in generated_rows(200, seed=99)]
    path = data.parent / "extra.txt"
    path.write_text("".join(f"{t}\n" for t in texts if t not in held_out), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def student(data: Path, teacher: Path, extra_file: Path) -> tuple[Path, str]:
    from tfmodels.distill import distill

    out = data.parent / "student"
    args = ["--data", str(data), "--out", str(out), "--teacher", str(teacher), "--baseline-teacher"]
    args += ["--extra-text", str(extra_file), "--temperature", "3", "--alpha", "0.4", *SMALL]
    result = CliRunner().invoke(distill, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out, result.output


def test_student_is_an_ordinary_run_that_evaluate_and_export_take(student: tuple[Path, str], tmp_path: Path) -> None:
    import tensorflow as tf

    from tfmodels.export import export_run

    out, output = student
    assert "unlabelled, distilled at T=3.0, alpha=0.4" in output and "distilled lstm ->" in output
    assert json.loads((out / "config.json").read_text())["family"] == "lstm"
    record = json.loads((out / "distill.json").read_text())
    assert (record["temperature"], record["alpha"], len(record["teachers"])) == (3.0, 0.4, 2)
    assert record["extra_texts"] > 100 and len(list((out / "teachers").glob("*.npz"))) == 2
    # training's own report (tfmodels.evaluate, as `textclf evaluate` writes it); the export gate loads the model
    report = json.loads((out / "report" / "metrics.json").read_text())
    assert report["model"]["accuracy"] > 0.6  # the labels are learnable; the teacher is random

    version = export_run(out, tmp_path / "models", "sent")
    card = json.loads((version / "assets.extra" / "model_card.json").read_text())
    assert (card["model_type"], card["labels"]) == ("lstm", ["negative", "positive"])
    served = tf.saved_model.load(str(version)).signatures["serving_default"](tokens=tf.constant(["退货 失望 太差"]))
    assert served["probabilities"].shape == (1, 2)


def test_teacher_logits_are_cached_and_averaged_at_the_temperature(
    data: Path, teacher: Path, extra_file: Path, student: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    from tfmodels.distill import read_extra_text
    from tfmodels.teachers import soft_targets, teacher_logits

    out, output = student
    assert output.count("logits over the train split and the extra texts") == 2  # computed once, by the student
    extra = read_extra_text(str(extra_file), data)
    logits, keys = teacher_logits(data, [teacher], baseline=True, extra=extra, cache_dir=out / "teachers")
    assert capsys.readouterr().out.count("logits reused") == 2
    assert keys == json.loads((out / "distill.json").read_text())["teachers"]
    assert logits["train"].shape == (2, 400, 2) and logits["extra"].shape == (2, len(extra.texts), 2)
    # the run teacher's logits are its network's own, in file order, though evaluate's path buckets and compiles
    import tensorflow as tf

    from data_prep.dataset_format import TOKENS
    from tfmodels.family import read_run
    from tfmodels.pipeline import read_split
    from tfmodels.run_dir import RunDir

    family, config = read_run(RunDir(teacher))
    built = family.load(RunDir(teacher).model, config)
    texts = [text for text, _ in read_split(data, "train", TOKENS).as_numpy_iterator()]
    for part, strings in (("train", texts), ("extra", extra.tokens)):
        direct = np.asarray(built.model(built.preprocessor(tf.constant(strings)), training=False))
        assert np.allclose(logits[part][0], direct, atol=1e-5), part
    # the baseline's logits are its log-probabilities: at T=1 they give its probabilities back
    from tfmodels.baseline import baseline_predictions

    probs = soft_targets(logits["train"][1:], 1.0)
    assert np.allclose(probs.sum(axis=1), 1.0) and probs.max(axis=1).mean() > 0.6
    hot = soft_targets(logits["train"][1:], 5.0)
    assert hot.max(axis=1).mean() < probs.max(axis=1).mean()  # a higher temperature softens
    assert baseline_predictions(data, seed=1234)[1].shape == (100,)  # its behaviour kept


def test_refusals(data: Path, teacher: Path, extra_file: Path, student: tuple[Path, str], tmp_path: Path) -> None:
    from tfmodels.distill import distill_run, read_extra_text
    from tfmodels.teachers import check_teacher

    out = student[0]
    common: dict[str, Any] = dict(
        baseline_teacher=True, temperature=3.0, alpha=0.4, extra_text=str(extra_file), config_file=None, overrides={}
    )
    with pytest.raises(UserError, match="already holds a trained model"):
        distill_run(data, out, [teacher], force=False, **common)

    interrupted = tmp_path / "interrupted"
    (interrupted / "backup").mkdir(parents=True)
    (interrupted / "backup" / "training_metadata.json").write_text('{"epoch": 0, "batch": 3}')
    started = {**json.loads((out / "distill.json").read_text()), "temperature": 1.0}
    (interrupted / "distill.json").write_text(json.dumps(started))
    with pytest.raises(UserError, match=r"other teachers or settings \(temperature\)"):
        distill_run(data, interrupted, [teacher], force=False, cache_dir=out / "teachers", **common)

    other = tmp_path / "other-labels"
    other.mkdir()
    meta = json.loads((data / "meta.json").read_text())
    (other / "meta.json").write_text(json.dumps({**meta, "labels": ["neg", "pos"]}))
    relabelled = tmp_path / "relabelled"
    shutil.copytree(teacher, relabelled)
    config = json.loads((teacher / "config.json").read_text())
    (relabelled / "config.json").write_text(json.dumps({**config, "data": str(other)}))
    with pytest.raises(UserError, match=r"trained on labels \['neg', 'pos'\]"):
        check_teacher(relabelled, ["negative", "positive"])

    from tfmodels.baseline import split_texts

    leaky = tmp_path / "leaky.txt"
    leaky.write_text("全新的 一句\n" + split_texts(data, "test")[0][0] + "\n", encoding="utf-8")
    with pytest.raises(UserError, match="1 of the 2 extra texts .* dev or test split"):
        read_extra_text(str(leaky), data)


def test_loss_is_hard_cross_entropy_plus_t2_kl_and_unlabelled_rows_only_learn_from_teachers() -> None:
    from tfmodels.train import SoftTargets, _distillation_loss

    t, alpha = 2.0, 0.3
    soft = SoftTargets(t, alpha, np.zeros((0, 3), np.float32), [], np.zeros((0, 3), np.float32))
    loss = _distillation_loss(3, soft, label_smoothing=0.0)
    logits = np.array([[2.0, 0.5, -1.0], [0.0, 1.0, 0.0]], np.float32)
    teacher = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3]], np.float32)
    hard = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]], np.float32)  # row 2 is unlabelled
    got = np.asarray(loss(np.concatenate([hard, teacher], axis=1), logits))

    def log_softmax(z: np.ndarray) -> np.ndarray:
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    ce = -(hard * log_softmax(logits)).sum(axis=1)
    kl = (teacher * (np.log(teacher) - log_softmax(logits / t))).sum(axis=1)
    assert np.allclose(got, alpha * ce + (1 - alpha) * t * t * kl, atol=1e-5)
    assert np.isclose(got[1], (1 - alpha) * t * t * kl[1], atol=1e-5)
