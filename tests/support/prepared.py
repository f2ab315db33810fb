"""A tiny prepared dataset written the way `textclf prep` writes it (Contract 1), in a second; and a run
folder faked as far as the export gate reads it."""

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
    for split, size in zip(("train", "dev", "test"), split_sizes, strict=True):
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
        "split_ratios": dict(zip(("train", "dev", "test"), (n / sum(split_sizes) for n in split_sizes), strict=True)),
        "source": {"kind": "generated", "sha256": "0" * 64},
        "preprocessing": {"hmm": True, "max_chars": None},
    }
    (out / META_FILE).write_text(json.dumps(meta, ensure_ascii=False))
    return out


def fake_run(run: Path, data: Path) -> Path:
    """A run folder as far as the export gate reads it: settings and test metrics, no model."""
    (run / "report").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"family": "lstm", "data": str(data)}))
    scores = {"accuracy": 0.8, "macro_f1": 0.8, "examples": 100}
    (run / "report" / "metrics.json").write_text(json.dumps({"model": scores, "baseline": scores}))
    return run


def published(model_base: Path, card: str) -> Path:
    """MODEL_BASE with version 1 of model "sent" holding only this model card (its text)."""
    version = model_base / "sent" / "1"
    (version / "assets.extra").mkdir(parents=True)
    (version / "assets.extra" / "model_card.json").write_text(card)
    return model_base
