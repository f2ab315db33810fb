"""ShardWriter, seen through a prepared corpus: shards are written in shuffled order."""

from __future__ import annotations

from prep_corpus import Prepared, ReadSplit


def test_shards_are_shuffled_across_labels(builtin_dataset: Prepared, read_split: ReadSplit) -> None:
    """The source lists every neg review before every pos one; the shards must not (finite shuffle buffers)."""
    out, _ = builtin_dataset
    first = [label for _, _, label in read_split(out, "train")[:200]]
    assert 0.3 < sum(first) / len(first) < 0.7
    assert not list(out.glob(".*.spill"))
