"""tf.data batching: length buckets keep padding small; pad-to-max for comparison."""

from __future__ import annotations

from pathlib import Path


def test_bucketing_keeps_padding_within_a_bucket(tmp_path: Path) -> None:
    import tensorflow as tf

    from tfmodels.lstm.preprocessor import TokenIds, word_count
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
