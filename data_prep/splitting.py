"""Stratified train/dev/test split: deterministic for a seed, every label in every split."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import numpy as np

from data_prep.dataset_format import SPLITS
from data_prep.errors import UserError

DEFAULT_RATIOS = (0.8, 0.1, 0.1)


def parse_ratios(text: str) -> tuple[float, float, float]:
    """Parse `--split` ("0.8,0.1,0.1"): three positive fractions (train, dev, test) summing to 1."""
    try:
        ratios = [float(part) for part in text.split(",")]
    except ValueError:
        raise UserError(f"--split {text!r}: expected three numbers like 0.8,0.1,0.1") from None
    return check_ratios(ratios, shown=text)


def check_ratios(ratios: Sequence[float], *, shown: str | None = None) -> tuple[float, float, float]:
    """The ratios as (train, dev, test) if they are three positive fractions summing to 1, else a UserError."""
    shown = shown or ",".join(map(str, ratios))
    if len(ratios) != len(SPLITS) or not all(math.isfinite(r) and r > 0 for r in ratios):
        raise UserError(f"--split {shown!r}: expected three positive fractions for train,dev,test")
    if abs(sum(ratios) - 1) > 1e-6:
        raise UserError(f"--split {shown!r}: fractions must sum to 1 (they sum to {sum(ratios):g})")
    train, dev, test = ratios
    return train, dev, test


def split_sizes(n: int, ratios: tuple[float, float, float], label: str) -> tuple[int, int, int]:
    """(train, dev, test) sizes for one label's n texts; dev and test get at least one each."""
    dev, test = (max(1, math.floor(n * r + 0.5)) for r in ratios[1:])
    if n - dev - test < 1:
        raise UserError(
            f"label {label!r} has only {n} text(s) after cleaning and dedup: too few to put one in each of "
            f"train, dev and test (drop rare labels with --min-count-per-label N)"
        )
    return n - dev - test, dev, test


def assign_splits(
    label_ids: np.ndarray, labels: list[str], ratios: tuple[float, float, float], seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """For rows with these label ids: (split index 0/1/2 per row, position of the row in its split's
    shuffled order, labels mixed). Each label is split by its own seeded RNG, so one label's split does not
    move when another label's texts change."""
    split_of = np.empty(len(label_ids), dtype=np.int8)
    position = np.empty(len(label_ids), dtype=np.int64)
    filled = [0] * len(SPLITS)
    for label_id, label in enumerate(labels):
        rows = np.flatnonzero(label_ids == label_id).tolist()
        random.Random(f"{seed}:{label}").shuffle(rows)
        start = 0
        for split, size in enumerate(split_sizes(len(rows), ratios, label)):
            chosen = rows[start : start + size]
            split_of[chosen] = split
            position[chosen] = np.arange(filled[split], filled[split] + size)
            filled[split] += size
            start += size
    # interleave the labels: positions were handed out label by label; a seeded permutation per split mixes them
    for split, size in enumerate(filled):
        in_split = split_of == split
        position[in_split] = np.random.default_rng([seed, split]).permutation(size)[position[in_split]]
    return split_of, position
