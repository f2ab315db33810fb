"""tf.data input pipelines over a prepared dataset (Contract 1): parse, cap, bucket, shuffle, cache, prefetch.

Bucketing by length keeps padding (and LSTM steps) small; `bucketing=False` pads every batch to max_len and
exists so bench/train.py can show what bucketing buys.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import keras
import tensorflow as tf

from data_prep.dataset_format import LABEL, shard_paths

AUTOTUNE = tf.data.AUTOTUNE


def read_split(data_dir: Path, split: str, feature: str, *, limit: int = 0) -> tf.data.Dataset:
    """Unbatched (string, label) pairs of one split, in file order; `limit` > 0 keeps the first N."""
    files = [str(p) for p in shard_paths(Path(data_dir), split)]
    spec = {feature: tf.io.FixedLenFeature([], tf.string), LABEL: tf.io.FixedLenFeature([], tf.int64)}
    ds = tf.data.TFRecordDataset(files).map(lambda r: tf.io.parse_single_example(r, spec), num_parallel_calls=AUTOTUNE)
    ds = ds.map(lambda ex: (ex[feature], ex[LABEL]))
    return ds.take(limit) if limit > 0 else ds


def bucket_boundaries(max_len: int) -> list[int]:
    """8, 16, 24, 32, 48, 64, 96, 128, ...: fine steps where most texts are, coarser beyond."""
    bounds, step, b = [], 8, 8
    while b < max_len:
        bounds.append(b)
        step = step * 2 if b >= 4 * step else step
        b += step
    return bounds


def batched(
    ds: tf.data.Dataset,
    *,
    preprocessor: keras.layers.Layer,
    num_classes: int,
    global_batch: int,
    max_len: int,
    length_fn: Callable[[tf.Tensor], tf.Tensor] | None,
    bucketing: bool,
    shuffle_buffer: int = 0,
    seed: int | None = None,
) -> tf.data.Dataset:
    """Cache raw pairs, optionally shuffle (seeded, reshuffled each epoch), batch or bucket, preprocess.

    Labels become one-hot so label smoothing works with CategoricalCrossentropy.
    """
    ds = ds.cache()
    if shuffle_buffer > 0:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if bucketing and length_fn is not None:
        bounds = bucket_boundaries(max_len)
        ds = ds.bucket_by_sequence_length(
            lambda text, label: tf.minimum(length_fn(text), max_len),
            bucket_boundaries=bounds,
            bucket_batch_sizes=[global_batch] * (len(bounds) + 1),
        )
    else:
        ds = ds.batch(global_batch)
    ds = ds.map(lambda text, label: (preprocessor(text), tf.one_hot(label, num_classes)), num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)
