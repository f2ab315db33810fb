"""The training side of a drift check: the train split of a prepared dataset (Contract 1), read without
TensorFlow.

The shards are TFRecord files of tf.train.Example messages. Importing TensorFlow to read them would cost
seconds and hundreds of MB in a command that otherwise needs none: the record framing (length, CRC, data, CRC)
is read here, and each record is parsed by the Example proto (`tfs_protos.example_pb2`, pure protobuf).
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf.message import DecodeError

from data_prep.dataset_format import LABEL, TEXT, TOKENS, read_meta, shard_paths
from data_prep.errors import UserError
from serving.gateway.tfs_protos import example_pb2

# TFRecord framing: uint64 length, uint32 masked CRC of the length, the data, uint32 masked CRC of the data
_HEADER = struct.Struct("<QI")
_FOOTER_BYTES = 4


@dataclass(frozen=True)
class Reference:
    labels: list[str]  # meta["labels"], the model's label set
    label_counts: Counter[str]  # train examples per label
    lengths: np.ndarray  # characters of each cleaned train text
    words: Counter[str]  # jieba words of the train split (its `tokens` feature)
    preprocessing: dict[str, Any]  # meta["preprocessing"]: how logged texts are segmented the same way


def read_reference(dataset_dir: Path) -> Reference:
    """Read meta.json and every train shard of `dataset_dir`."""
    meta = read_meta(dataset_dir)
    labels = list(meta["labels"])
    label_counts: Counter[str] = Counter()
    lengths: list[int] = []
    words: Counter[str] = Counter()
    for path in shard_paths(dataset_dir, "train"):
        for record in _tfrecords(path):
            try:
                feature = example_pb2.Example.FromString(record).features.feature
                text = feature[TEXT].bytes_list.value[0].decode("utf-8")
                tokens = feature[TOKENS].bytes_list.value[0].decode("utf-8")
                label = labels[feature[LABEL].int64_list.value[0]]
            except (DecodeError, KeyError, IndexError, ValueError) as exc:
                raise UserError(f"{path} holds a record that is not a Contract 1 example ({exc!r})") from None
            label_counts[label] += 1
            lengths.append(len(text))
            words.update(tokens.split())
    if not lengths:
        raise UserError(f"{dataset_dir} has an empty train split")
    return Reference(labels, label_counts, np.asarray(lengths), words, meta.get("preprocessing") or {})


def _tfrecords(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while header := f.read(_HEADER.size):
            length = _HEADER.unpack(header)[0] if len(header) == _HEADER.size else -1
            data = f.read(length) if length >= 0 else b""
            if length < 0 or len(data) < length or len(f.read(_FOOTER_BYTES)) < _FOOTER_BYTES:
                raise UserError(f"{path} is truncated (not a whole TFRecord file)")
            yield data
