"""Stratified split: ratios checked once, every label in every split, deterministic for a seed."""

from __future__ import annotations

import numpy as np
import pytest

from data_prep.errors import UserError
from data_prep.splitting import assign_splits, check_ratios, parse_ratios, split_sizes


def test_ratios_are_three_positive_fractions_summing_to_one() -> None:
    assert parse_ratios("0.6,0.2,0.2") == (0.6, 0.2, 0.2)
    assert check_ratios([0.8, 0.1, 0.1]) == (0.8, 0.1, 0.1)
    for bad in ([0.8, 0.2], [1.2, -0.1, -0.1], [0.5, 0.25, float("nan")]):
        with pytest.raises(UserError, match="three positive fractions"):
            check_ratios(bad)


def test_split_sizes_give_dev_and_test_at_least_one() -> None:
    assert split_sizes(10, (0.8, 0.1, 0.1), "a") == (8, 1, 1)
    assert split_sizes(3, (0.98, 0.01, 0.01), "a") == (1, 1, 1)
    with pytest.raises(UserError, match="label 'a' has only 2"):
        split_sizes(2, (0.8, 0.1, 0.1), "a")


def test_assign_splits_is_stratified_and_seeded() -> None:
    label_ids = np.array([0] * 20 + [1] * 10)
    split_of, position = assign_splits(label_ids, ["a", "b"], (0.6, 0.2, 0.2), seed=1)
    for label in (0, 1):
        assert set(split_of[label_ids == label]) == {0, 1, 2}
    for split in range(3):  # positions are a permutation within each split
        assert sorted(position[split_of == split]) == list(range(int((split_of == split).sum())))
    again = assign_splits(label_ids, ["a", "b"], (0.6, 0.2, 0.2), seed=1)
    assert (again[0] == split_of).all() and (again[1] == position).all()
