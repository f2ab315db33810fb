"""A tiny prepared dataset written the way `textclf prep` writes it (Contract 1), in a second; a run
folder faked as far as the export gate reads it; and a truly worse copy of a real run."""

from __future__ import annotations

import json
import shutil
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


def flipped(run: Path, out: Path) -> Path:
    """A copy of a two-class RUN whose network gives every text the other label (its class columns swapped):
    a model truly worse (its accuracy is one minus the run's), not a report edited, since the gate scores
    the exported model itself."""
    from tfmodels.family import read_run
    from tfmodels.run_dir import RunDir

    shutil.copytree(run, out)
    family, config = read_run(RunDir(out))
    built = family.load(RunDir(out).model, config)
    for layer in built.model.layers:
        if layer.name in ("logits", "wide"):  # the two parts whose outputs add up to the logits
            layer.set_weights([w[..., ::-1] if w.shape[-1] == len(LABELS) else w for w in layer.get_weights()])
    family.save(built, RunDir(out).model)
    return out
