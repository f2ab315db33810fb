"""Typed training settings: defaults < --config file < flags, validation, and config.json read back."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError, replace
from pathlib import Path

import pytest

from data_prep.errors import UserError
from tfmodels.bert.config import BertConfig, MLMConfig
from tfmodels.config import TrainConfig, changed_keys, read_record, resolve, save_config
from tfmodels.lstm.config import LSTMConfig
from tfmodels.run_dir import RunDir


def test_config_layers_file_then_flags(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("epochs: 3\nlr: 0.01\nlstm_units: 32\nfamily: lstm\n")
    config = resolve(LSTMConfig, cfg, {"epochs": 5, "lr": None})
    assert (config.epochs, config.lr, config.lstm_units) == (5, 0.01, 32)
    assert config.batch_size == TrainConfig.batch_size
    assert resolve(LSTMConfig, None, {}).lstm_units == LSTMConfig.lstm_units  # the family's default
    with pytest.raises(UserError, match="unknown hyperparameter 'epoch'"):
        resolve(LSTMConfig, None, {"epoch": 3})
    with pytest.raises(UserError, match="epochs must be at least 1"):
        resolve(LSTMConfig, None, {"epochs": 0})
    with pytest.raises(UserError, match="optimizer='sgd': choose one of adam, adamw"):
        resolve(LSTMConfig, None, {"optimizer": "sgd"})
    cfg.write_text("epochs: three\n")
    with pytest.raises(UserError, match="should be a int"):
        resolve(LSTMConfig, cfg, {})


def test_ints_pass_as_floats_but_bools_are_not_numbers() -> None:
    assert resolve(LSTMConfig, None, {"lr": 1}).lr == 1.0
    with pytest.raises(UserError, match="should be a int"):
        resolve(LSTMConfig, None, {"epochs": True})
    with pytest.raises(UserError, match="should be a str"):
        resolve(LSTMConfig, None, {"embeddings": 3})


def test_config_json_round_trip_keeps_its_keys_and_reads_old_runs(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    config = resolve(LSTMConfig, None, {"lstm_units": 8, "data": "ignored: a run key"})
    save_config(run, config)
    saved = json.loads(run.config.read_text())
    assert saved["family"] == "lstm" and saved["lstm_units"] == 8 and saved["data"] == ""
    assert LSTMConfig.from_record(read_record(run)) == config
    # a run saved before the n-gram branch: no ngram_n or wide key, and a key since retired
    old = LSTMConfig.from_record({"family": "lstm", "data": "/d", "epochs": 2, "retired_key": 1})
    assert (old.ngram_n, old.wide, old.epochs, old.data) == (0, False, 2, "/d")


def test_a_corrupt_config_json_is_one_user_error(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    with pytest.raises(UserError, match="is not a training run"):
        read_record(run)
    run.config.write_text("{oops")
    with pytest.raises(UserError, match="not valid JSON"):
        read_record(run)


def test_a_yaml_float_without_a_dot_is_a_float_but_only_for_float_fields(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("lr: 1e-3\nweight_decay: 5E-2\n")  # PyYAML reads both as strings
    config = resolve(LSTMConfig, cfg, {})
    assert (config.lr, config.weight_decay) == (0.001, 0.05)
    for text, message in [
        ("lr: fast\n", "lr='fast' should be a finite float"),
        ("lr: .inf\n", "should be a finite float"),
        ("lr: nan\n", "should be a finite float"),
        ("epochs: '3'\n", "should be a int"),
        ("bidirectional: 'true'\n", "should be a bool"),
    ]:
        cfg.write_text(text)
        with pytest.raises(UserError, match=message):
            resolve(LSTMConfig, cfg, {})


@pytest.mark.parametrize(
    ("config_class", "values", "message"),
    [
        (LSTMConfig, {"lr": 0}, r"lr must be greater than 0, got 0.0"),
        (LSTMConfig, {"lr": -1e-3}, r"lr must be greater than 0"),
        (LSTMConfig, {"ema": 1.0}, r"ema must be in \[0, 1\), got 1.0"),
        (LSTMConfig, {"ema": -0.5}, r"ema must be in \[0, 1\)"),
        (LSTMConfig, {"label_smoothing": 1.0}, r"label_smoothing must be in \[0, 1\)"),
        (LSTMConfig, {"warmup_ratio": 1.5}, r"warmup_ratio must be in \[0, 1\], got 1.5"),
        (LSTMConfig, {"warmup_ratio": -0.1}, r"warmup_ratio must be in \[0, 1\]"),
        (LSTMConfig, {"patience": -1}, r"patience must be at least 0, got -1"),
        (LSTMConfig, {"backup_every_steps": 0}, r"backup_every_steps must be at least 1, got 0"),
        (LSTMConfig, {"shuffle_buffer": 0}, r"shuffle_buffer must be at least 1"),
        (LSTMConfig, {"max_train_examples": -1}, r"max_train_examples must be at least 0"),
        (LSTMConfig, {"weight_decay": -0.1}, r"weight_decay must be at least 0"),
        (LSTMConfig, {"clipnorm": -1}, r"clipnorm must be at least 0"),
        (LSTMConfig, {"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
        (LSTMConfig, {"word_dropout": 1.2}, r"word_dropout must be in \[0, 1\)"),
        (LSTMConfig, {"embed_dropout": -0.1}, r"embed_dropout must be in \[0, 1\)"),
        (LSTMConfig, {"ngram_dropout": 1.0}, r"ngram_dropout must be in \[0, 1\)"),
        (LSTMConfig, {"ngram_n": -1}, r"ngram_n must be at least 0"),
        (LSTMConfig, {"ngram_buckets": 0}, r"ngram_buckets must be at least 1"),
        (LSTMConfig, {"wide_scale": 0}, r"wide_scale must be greater than 0"),
        (BertConfig, {"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
        (BertConfig, {"vocab_size": 0}, r"vocab_size must be at least 1"),
        (BertConfig, {"ema": 1.5}, r"ema must be in \[0, 1\)"),
        (MLMConfig, {"lr": 0}, r"lr must be greater than 0"),
        (MLMConfig, {"mask_rate": 1.0}, r"mask rate must be between 0 and 1"),
        (MLMConfig, {"epochs": 0}, r"epochs must be at least 1"),
        (MLMConfig, {"max_examples": -1}, r"max_examples must be at least 0"),
    ],
)
def test_out_of_range_settings_are_one_line_errors(config_class: type, values: dict, message: str) -> None:
    with pytest.raises(UserError, match=message) as refused:
        config_class.from_mapping(values)
    assert "\n" not in str(refused.value)


def test_range_edges_that_make_sense_pass() -> None:
    config = LSTMConfig.from_mapping(
        {"ema": 0.0, "warmup_ratio": 1.0, "patience": 0, "dropout": 0.0, "clipnorm": 0.0, "backup_every_steps": 1}
    )
    assert (config.ema, config.warmup_ratio, config.patience) == (0.0, 1.0, 0)
    LSTMConfig()
    BertConfig()
    MLMConfig()


def test_configs_are_frozen_and_replace_validates_again() -> None:
    config = LSTMConfig()
    with pytest.raises(FrozenInstanceError):
        config.lr = 1.0  # type: ignore[misc]
    assert replace(config, lr=0.5).lr == 0.5
    with pytest.raises(UserError, match="ema must be in"):
        replace(config, ema=1.0)
    assert all(c.__dataclass_params__.frozen for c in (TrainConfig, LSTMConfig, BertConfig, MLMConfig))


def test_an_empty_bert_preset_means_scratch_so_its_size_is_checked() -> None:
    assert BertConfig.from_mapping({"preset": ""}).preset is None
    with pytest.raises(UserError, match="unknown BERT size 'huge'"):
        BertConfig.from_mapping({"preset": "", "size": "huge"})
    with pytest.raises(UserError, match="unknown BERT size 'huge'"):
        BertConfig.from_mapping({"size": "huge"})
    assert BertConfig.from_mapping({"preset": "/some/folder", "size": "huge"}).size == "huge"  # unused then


def test_mlm_settings_are_type_checked_by_the_same_reader() -> None:
    config = MLMConfig.from_mapping({"lr": "2e-4", "epochs": 2})
    assert (config.lr, config.epochs) == (2e-4, 2)
    with pytest.raises(UserError, match="should be a int"):
        MLMConfig.from_mapping({"epochs": "two"})
    with pytest.raises(UserError, match="unknown hyperparameter 'masking'"):
        MLMConfig.from_mapping({"masking": 0.2})


def test_changed_keys_names_what_differs_but_what_is_ignored() -> None:
    assert changed_keys({"a": 1, "b": 2, "c": 3}, {"a": 1, "b": 5, "d": 4}) == ["b", "c", "d"]
    assert changed_keys({"a": 1, "b": 2}, {"a": 2, "b": 3}, ignore={"b"}) == ["a"]
    assert changed_keys({}, {}) == []
    # export-only settings are real settings, saved in config.json with the others
    assert LSTMConfig.EXPORT_ONLY == {"export_min_df", "export_dtype"} and TrainConfig.EXPORT_ONLY == frozenset()
    assert LSTMConfig.EXPORT_ONLY <= set(LSTMConfig().to_record())


def test_a_run_resumes_with_other_export_settings_and_saves_them_but_not_with_other_training_settings(
    tmp_path: Path,
) -> None:
    from tfmodels.train import RESUME, _open_run

    run = RunDir(tmp_path)
    save_config(run, resolve(LSTMConfig, None, {"lstm_units": 8}))
    run.backup_progress.parent.mkdir()
    run.backup_progress.write_text('{"epoch": 0, "batch": 3}')  # as Keras leaves it when killed mid-epoch
    exported_otherwise = resolve(LSTMConfig, None, {"lstm_units": 8, "export_dtype": "float16", "export_min_df": 0})
    assert _open_run(run, exported_otherwise, force=False) == RESUME
    assert LSTMConfig.from_record(read_record(run)) == exported_otherwise  # `textclf export` reads the new ones
    with pytest.raises(UserError, match=r"interrupted run with other settings \(lstm_units\)"):
        _open_run(run, resolve(LSTMConfig, None, {"lstm_units": 16, "export_dtype": "float32"}), force=False)
