"""Contract 1's split fingerprint: what a test split is drawn from, so the export gate compares like with like."""

from __future__ import annotations

from data_prep.dataset_format import split_fingerprint

HASH_A, HASH_B = "a" * 64, "b" * 64


def prepared_meta(**changes: object) -> dict:
    meta = {
        "source": {"kind": "folder", "sha256": HASH_A},
        "seed": 42,
        "split_ratios": {"train": 0.8, "dev": 0.1, "test": 0.1},
        "counts": {"train": {"a": 8}, "dev": {"a": 1}, "test": {"a": 1}},
        "labels": ["a"],
        "preprocessing": {"hmm": True},
    }
    return {**meta, **changes}


def test_the_split_fingerprint_follows_source_seed_ratios_and_counts_only() -> None:
    base = split_fingerprint(prepared_meta())
    assert base is not None and len(base) == 64
    assert split_fingerprint(prepared_meta(preprocessing={"hmm": False}, labels=["a", "b"])) == base
    for changed in [
        prepared_meta(seed=7),
        prepared_meta(split_ratios={"train": 0.7, "dev": 0.15, "test": 0.15}),
        prepared_meta(counts={"train": {"a": 7}, "dev": {"a": 2}, "test": {"a": 1}}),
        prepared_meta(source={"kind": "folder", "sha256": HASH_B}),
    ]:
        assert split_fingerprint(changed) not in (None, base)
    assert split_fingerprint(prepared_meta(source={"kind": "folder"})) is None
