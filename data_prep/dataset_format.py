"""Contract 1 (data_prep -> tfmodels): the names and layout of a prepared dataset folder.

Writers (data_prep) and readers (tfmodels) both take these names from here, so the two never drift.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from data_prep.errors import UserError
from data_prep.json_file import read_json_object

SCHEMA_VERSION = 1
META_FILE = "meta.json"
REPORT_FILE = "report.md"
LENGTH_PLOT_FILE = "lengths.png"
SPLITS = ("train", "dev", "test")

# tf.train.Example features
TEXT = "text"  # bytes: the cleaned text (BERT's input, and what the gateway sends for `text` models)
TOKENS = "tokens"  # bytes: jieba words joined by one space (the LSTM's input)
LABEL = "label"  # int64: index into meta["labels"], which is sorted


def shard_name(split: str, index: int, count: int) -> str:
    """`train-00000-of-00004.tfrecord`: the TFX/tf.data convention, so a glob finds a split's shards."""
    return f"{split}-{index:05d}-of-{count:05d}.tfrecord"


def shard_paths(dataset_dir: Path, split: str) -> list[Path]:
    """The shards of one split, sorted; a UserError if the folder has none (not a prepared dataset)."""
    paths = sorted(Path(dataset_dir).glob(f"{split}-*-of-*.tfrecord"))
    if not paths:
        raise UserError(f"{dataset_dir} has no {split} shards: is it a folder written by `textclf prep`?")
    return paths


def read_meta(dataset_dir: Path) -> dict[str, Any]:
    """Load and check meta.json of a prepared dataset."""
    path = Path(dataset_dir) / META_FILE
    if not path.is_file():
        raise UserError(f"{dataset_dir} is not a prepared dataset (no {META_FILE}); run `textclf prep` first")
    meta = read_json_object(path)
    if meta.get("schema_version") != SCHEMA_VERSION:
        raise UserError(
            f"{path} has schema_version {meta.get('schema_version')!r}; this textclf reads {SCHEMA_VERSION}"
        )
    return meta


def split_fingerprint(meta: dict[str, Any]) -> str | None:
    """What a test split is drawn from and how: the source's sha256, the split ratios, the seed and the
    per-split label counts of meta.json. The same source prepared with another seed or other ratios has
    other test examples, so test accuracies compare only when this matches. None if the source is unhashed."""
    source_hash = (meta.get("source") or {}).get("sha256")
    if not source_hash:
        return None
    split = {k: meta.get(k) for k in ("split_ratios", "seed", "counts")}
    canonical = json.dumps({"source": source_hash, **split}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
