"""Write Contract 1 TFRecord shards. The ONLY data_prep module that imports TensorFlow, and only when
a ShardWriter is made (in the parent process of `textclf prep`): cleaning, segmentation and the
gateway's imports stay TF-free."""
from __future__ import annotations

import math
import os
from pathlib import Path

from data_prep.dataset_format import LABEL, SPLITS, TEXT, TOKENS, shard_name

RECORDS_PER_SHARD = 20_000  # ~50 MB of THUCNews per shard: parallel reads without thousands of files


def shard_count(records: int) -> int:
    return max(1, math.ceil(records / RECORDS_PER_SHARD))


class ShardWriter:
    """Open writers for every shard of every split; `write` appends one tf.train.Example."""

    def __init__(self, out_dir: Path, split_sizes: dict[str, int]) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        self._tf = tf
        self.counts = {split: shard_count(split_sizes[split]) for split in SPLITS}
        self._writers = {
            split: [tf.io.TFRecordWriter(str(out_dir / shard_name(split, i, n))) for i in range(n)]
            for split, n in self.counts.items()
        }

    def write(self, split: str, position: int, text: str, tokens: str, label: int) -> None:
        """Rows go round-robin over a split's shards by their shuffled position, so every shard mixes labels."""
        train = self._tf.train
        example = train.Example(features=train.Features(feature={
            TEXT: train.Feature(bytes_list=train.BytesList(value=[text.encode("utf-8")])),
            TOKENS: train.Feature(bytes_list=train.BytesList(value=[tokens.encode("utf-8")])),
            LABEL: train.Feature(int64_list=train.Int64List(value=[label])),
        }))
        writers = self._writers[split]
        writers[position % len(writers)].write(example.SerializeToString(deterministic=True))

    def close(self) -> None:
        for writers in self._writers.values():
            for writer in writers:
                writer.close()
