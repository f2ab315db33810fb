"""Write Contract 1 TFRecord shards. The ONLY data_prep module that imports TensorFlow, and only when
a ShardWriter is made (in the parent process of `textclf prep`): cleaning, segmentation and the
gateway's imports stay TF-free."""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from data_prep.dataset_format import LABEL, SPLITS, TEXT, TOKENS, shard_name

RECORDS_PER_SHARD = 20_000  # shards big enough to avoid thousands of files, enough of them for parallel reads
_SPILL_HEADER = struct.Struct("<QI")  # shuffled position, length of the serialized Example


def shard_count(records: int) -> int:
    return max(1, math.ceil(records / RECORDS_PER_SHARD))


class ShardWriter:
    """Writes each split's rows in their shuffled order, while the rows arrive in source order.

    Sources are read front to back (often grouped by label), but training reads shards through a finite
    shuffle buffer, so the files themselves must be shuffled. Shard i holds shuffled positions
    [i*RECORDS_PER_SHARD, (i+1)*RECORDS_PER_SHARD): `write` spills each row to its shard's spill file,
    `finish` sorts one spill at a time by position and writes the TFRecord. Memory stays one shard.
    """

    def __init__(self, out_dir: Path, split_sizes: dict[str, int]) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        self._tf = tf
        self._out = Path(out_dir)
        self.counts = {split: shard_count(split_sizes[split]) for split in SPLITS}
        self._spills: dict[tuple[str, int], BinaryIO] = {
            (split, i): open(self._spill_path(split, i), "wb") for split, n in self.counts.items() for i in range(n)
        }

    def _spill_path(self, split: str, index: int) -> Path:
        return self._out / f".{split}-{index:05d}.spill"  # dot name: never mistaken for a shard

    def write(self, split: str, position: int, text: str, tokens: str, label: int) -> None:
        train = self._tf.train
        example = train.Example(
            features=train.Features(
                feature={
                    TEXT: train.Feature(bytes_list=train.BytesList(value=[text.encode("utf-8")])),
                    TOKENS: train.Feature(bytes_list=train.BytesList(value=[tokens.encode("utf-8")])),
                    LABEL: train.Feature(int64_list=train.Int64List(value=[label])),
                }
            )
        )
        data = example.SerializeToString(deterministic=True)
        spill = self._spills[(split, position // RECORDS_PER_SHARD)]
        spill.write(_SPILL_HEADER.pack(position, len(data)))
        spill.write(data)

    def finish(self, on_shard: Callable[[], None] = lambda: None) -> None:
        """Turn every spill into its shard, rows sorted by shuffled position; remove the spills. `on_shard` is
        called after each shard (progress)."""
        self.close()
        for split, index in self._spills:
            path = self._spill_path(split, index)
            rows = sorted(_read_spill(path))
            with self._tf.io.TFRecordWriter(str(self._out / shard_name(split, index, self.counts[split]))) as out:
                for _, data in rows:
                    out.write(data)
            path.unlink()
            on_shard()

    def close(self) -> None:
        for spill in self._spills.values():
            spill.close()


def _read_spill(path: Path) -> Iterator[tuple[int, bytes]]:
    with open(path, "rb") as f:
        while header := f.read(_SPILL_HEADER.size):
            position, length = _SPILL_HEADER.unpack(header)
            yield position, f.read(length)
