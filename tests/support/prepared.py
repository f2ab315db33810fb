"""A tiny prepared dataset written the way `textclf prep` writes it (Contract 1), in a second."""

from __future__ import annotations

import json
from pathlib import Path

from data_prep.dataset_format import LABEL, META_FILE, SCHEMA_VERSION, TEXT, TOKENS, shard_name
from tests.support.corpus import LABELS


def write_prepared(out: Path, rows: list[tuple[str, int]], split_sizes: tuple[int, int, int]) -> Path:
    """Write Contract 1 the way `textclf prep` does (meta.json + one shard per split)."""
    import tensorflow as tf

    out.mkdir(parents=True)
    start, counts = 0, {}
    for split, size in zip(("train", "dev", "test"), split_sizes):
        part = rows[start : start + size]
        start += size
        counts[split] = {name: sum(1 for _, y in part if y == i) for i, name in enumerate(LABELS)}
        with tf.io.TFRecordWriter(str(out / shard_name(split, 0, 1))) as writer:
            for tokens, label in part:
                feature = {
                    TEXT: tf.train.Feature(bytes_list=tf.train.BytesList(value=[tokens.replace(" ", "").encode()])),
                    TOKENS: tf.train.Feature(bytes_list=tf.train.BytesList(value=[tokens.encode()])),
                    LABEL: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
                }
                writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    meta = {
        "schema_version": SCHEMA_VERSION,
        "labels": LABELS,
        "counts": counts,
        "seed": 42,
        "source": {"kind": "generated", "sha256": "0" * 64},
        "preprocessing": {"hmm": True, "max_chars": None},
    }
    (out / META_FILE).write_text(json.dumps(meta, ensure_ascii=False))
    return out
