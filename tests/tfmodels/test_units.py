"""Fast in-process checks of the pieces: vocabulary, word vectors, config layering, the in-graph lookup,
bucketing and the learning-rate schedule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from data_prep.errors import UserError
from tfmodels.config import TRAIN_DEFAULTS, resolve
from tfmodels.vocab import build_vocabulary, load_word2vec


def test_vocabulary_counts_min_count_and_max_size() -> None:
    batches = [[b"a", b"b", b"a"], [b"c", b"a", b"b", b"[UNK]"]]
    assert build_vocabulary(batches, min_count=1, max_size=0) == ["a", "b", "c"]
    assert build_vocabulary(batches, min_count=2, max_size=0) == ["a", "b"]
    assert build_vocabulary(batches, min_count=1, max_size=1) == ["a"]


def test_word2vec_rows_follow_vocabulary_and_unknown_words_are_random(tmp_path: Path) -> None:
    path = tmp_path / "vec.txt"
    path.write_text("3 2\n好 1 2\n坏 3 4\n别的 5 6\n", encoding="utf-8")
    matrix = load_word2vec(path, ["坏", "新词", "好"], seed=1)
    assert matrix.shape == (5, 2)
    assert np.all(matrix[0] == 0)  # padding
    np.testing.assert_array_equal(matrix[2], [3, 4])
    np.testing.assert_array_equal(matrix[4], [1, 2])
    assert np.any(matrix[3] != 0)
    path.write_text("好 1 2\n坏 3\n", encoding="utf-8")
    with pytest.raises(UserError, match="expected 2 numbers"):
        load_word2vec(path, ["好"], seed=1)


def test_config_layers_file_then_flags(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("epochs: 3\nlr: 0.01\nlstm_units: 32\nfamily: lstm\n")
    config = resolve({"lstm_units": 64}, cfg, {"epochs": 5, "lr": None})
    assert (config["epochs"], config["lr"], config["lstm_units"]) == (5, 0.01, 32)
    assert config["batch_size"] == TRAIN_DEFAULTS["batch_size"]
    with pytest.raises(UserError, match="unknown hyperparameter 'epoch'"):
        resolve({}, None, {"epoch": 3})
    with pytest.raises(UserError, match="epochs must be at least 1"):
        resolve({}, None, {"epochs": 0})
    cfg.write_text("epochs: three\n")
    with pytest.raises(UserError, match="should be a int"):
        resolve({}, cfg, {})


def test_token_ids_pad_right_cap_and_map_unknown_words_to_oov() -> None:
    import tensorflow as tf

    from tfmodels.lstm_family import TokenIds

    layer = TokenIds(["好", "很"], max_len=3)
    ids = layer(tf.constant(["很 好", "好 新 很 好 好", ""])).numpy()
    np.testing.assert_array_equal(ids, [[3, 2, 0], [2, 1, 3], [0, 0, 0]])
    assert TokenIds(["好"], max_len=4, pad_to_max=True)(tf.constant(["好"])).shape == (1, 4)


def test_unknown_words_fall_back_to_their_characters_in_reading_order() -> None:
    import tensorflow as tf

    from tfmodels.lstm_family import TokenIds

    layer = TokenIds(["好", "很", "超", "赞"], max_len=5, oov_chars=True)  # ids 2, 3, 4, 5
    ids = layer(tf.constant(["很 好", "超赞 好 新词", "", "超赞超赞 很 很"])).numpy()
    np.testing.assert_array_equal(ids, [[3, 2, 0, 0, 0], [4, 5, 2, 1, 1], [0] * 5, [4, 5, 4, 5, 3]])


def test_bucketing_keeps_padding_within_a_bucket(tmp_path: Path) -> None:
    import tensorflow as tf

    from tfmodels.lstm_family import TokenIds, word_count
    from tfmodels.pipeline import batched, bucket_boundaries

    assert bucket_boundaries(64) == [8, 16, 24, 32, 48]
    texts = [" ".join(["词"] * n) for n in (1, 2, 3, 20, 21, 22, 60, 61)]
    ds = tf.data.Dataset.from_tensor_slices((texts, [0] * len(texts)))
    batches = list(
        batched(
            ds,
            preprocessor=TokenIds(["词"], max_len=64),
            num_classes=2,
            global_batch=3,
            max_len=64,
            length_fn=word_count,
            bucketing=True,
        )
    )
    widths = sorted(int(x.shape[1]) for x, _ in batches)
    assert widths == [3, 22, 61]  # each batch padded only to its own longest text
    padded = list(
        batched(
            ds,
            preprocessor=TokenIds(["词"], max_len=64, pad_to_max=True),
            num_classes=2,
            global_batch=3,
            max_len=64,
            length_fn=word_count,
            bucketing=False,
        )
    )
    assert {int(x.shape[1]) for x, _ in padded} == {64}


def test_schedule_warms_up_then_decays_to_zero() -> None:
    from tfmodels.schedule import WarmupDecay

    for kind in ("cosine", "linear"):
        lr = WarmupDecay(1.0, warmup_steps=10, total_steps=110, kind=kind)
        values = [float(lr(step)) for step in (0, 9, 10, 60, 110)]
        assert values[0] < values[1] <= 1.0 and values[2] == pytest.approx(1.0)
        assert values[3] == pytest.approx(0.5) and values[4] == pytest.approx(0.0, abs=1e-6)
