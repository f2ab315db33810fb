"""The LSTM family's word vocabulary (train split only) and word2vec vectors aligned to it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from data_prep.errors import UserError
from tfmodels.lstm.vocabulary import build_vocabulary, load_word2vec


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
