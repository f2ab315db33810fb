"""Compare logged traffic with the training reference: the drift signals and whether each crossed its threshold."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from data_prep.errors import UserError
from data_prep.preprocess import Preprocessor
from serving.drift.reference import Reference
from serving.drift.statistics import bin_names, binned_shares, length_edges, psi, shares
from serving.gateway.config import DEFAULT_LOW_CONFIDENCE

TOP_NEW_WORDS = 20
# redaction placeholders ([PHONE], [EMAIL], ...) stand for PII, not for words the model never saw
_PLACEHOLDER = re.compile(r"\[[A-Z][A-Z0-9_]*\]")


@dataclass(frozen=True)
class Thresholds:
    max_label_psi: float = 0.25  # PSI above 0.25 is the usual "large shift"
    max_length_psi: float = 0.25
    min_score: float = DEFAULT_LOW_CONFIDENCE  # a text whose top score is below this is one the model is unsure about
    max_low_confidence: float = 0.3  # share of such texts
    max_unknown_words: float = 0.1  # share of logged words not in the vocabulary


@dataclass(frozen=True)
class Signal:
    name: str
    value: float
    threshold: float
    what: str

    @property
    def crossed(self) -> bool:
        return self.value > self.threshold


@dataclass
class Drift:
    model: str
    versions: list[int]
    records: int
    signals: list[Signal]
    labels: list[str]
    label_shares: tuple[list[float], list[float]]  # reference, logged
    length_bins: list[str]
    length_shares: tuple[list[float], list[float]]
    scores: list[float]
    min_score: float
    top_new_words: list[tuple[str, int]]
    vocabulary: str  # where the vocabulary came from
    reference_texts: int

    @property
    def drifted(self) -> bool:
        return any(s.crossed for s in self.signals)


def compare(
    reference: Reference,
    records: Iterable[dict[str, Any]],
    preprocessor: Preprocessor,
    *,
    vocabulary: set[str],
    vocabulary_source: str,
    thresholds: Thresholds,
    min_records: int,
) -> Drift:
    """The drift signals of `records` (one model's payload log records) against `reference`."""
    records = list(records)
    if len(records) < min_records:
        raise UserError(f"the log holds {len(records)} matching records, fewer than --min-records {min_records}")
    models = sorted({str(r["model"]) for r in records})
    if len(models) > 1:
        raise UserError(f"the log holds records of several models ({', '.join(models)}): pass --model")
    predicted = Counter(str(r["label"]) for r in records)
    foreign = sorted(set(predicted) - set(reference.labels))
    if foreign:
        raise UserError(
            f"the model predicts labels the reference dataset does not have ({', '.join(foreign[:5])}): "
            "is --reference the dataset this model was trained on?"
        )
    label_ref, label_log = shares(reference.label_counts, reference.labels), shares(predicted, reference.labels)

    edges = length_edges(reference.lengths)
    # "chars" is the cleaned length before redaction (what training and /metrics measure); older logs lack it
    lengths = np.asarray([r.get("chars", len(r["text"])) for r in records])
    length_ref, length_log = binned_shares(reference.lengths, edges), binned_shares(lengths, edges)

    scores = [float(r["score"]) for r in records]
    low = sum(s < thresholds.min_score for s in scores) / len(scores)

    words: Counter[str] = Counter()
    for record in records:
        for part in _PLACEHOLDER.split(record["text"]):
            words.update(preprocessor.tokens(part).split())
    unknown = Counter({w: n for w, n in words.items() if w not in vocabulary})
    unknown_share = sum(unknown.values()) / max(sum(words.values()), 1)

    signals = [
        Signal("label_psi", psi(label_ref, label_log), thresholds.max_label_psi, "PSI, training vs predicted labels"),
        Signal("length_psi", psi(length_ref, length_log), thresholds.max_length_psi, "PSI of text length (chars)"),
        Signal(
            "low_confidence",
            low,
            thresholds.max_low_confidence,
            f"share of texts with top score < {thresholds.min_score:g}",
        ),
        Signal(
            "unknown_words", unknown_share, thresholds.max_unknown_words, f"share of words not in {vocabulary_source}"
        ),
    ]
    return Drift(
        model=models[0],
        versions=sorted({int(r["version"]) for r in records}),
        records=len(records),
        signals=signals,
        labels=reference.labels,
        label_shares=(label_ref, label_log),
        length_bins=bin_names(edges),
        length_shares=(length_ref, length_log),
        scores=scores,
        min_score=thresholds.min_score,
        top_new_words=unknown.most_common(TOP_NEW_WORDS),
        vocabulary=vocabulary_source,
        reference_texts=len(reference.lengths),
    )
