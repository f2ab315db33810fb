"""Teacher logits for `textclf distill`: computed once per teacher over the train split (in file order) and
the extra unlabelled texts, cached in the student's run folder, reused while teacher and data are unchanged.

A teacher is a textclf run of any family (its saved model, fed the feature its family reads) or the TF-IDF +
LR baseline (tfmodels.baseline; its logits are log-probabilities, which a temperature softens the same way).
The cache holds logits, not probabilities, so another --temperature reuses it.

TEACHERS_DIR/<key>.npz   {"train": float32 [N, K], "extra": float32 [M, K]}; key = sha256 of what the logits
                         depend on (the teacher's config and model files, the dataset, the extra texts)
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from data_prep.atomic import write_bytes
from data_prep.dataset_format import META_FILE, TEXT, TOKENS, read_meta, shard_paths
from data_prep.errors import UserError
from tfmodels.family import read_run
from tfmodels.run_dir import RunDir

BASELINE = "baseline"  # the name of the --baseline-teacher in records and messages
# the baseline teacher's LogisticRegression random_state: fixed, so the students of `--seeds` share one teacher
# (its lbfgs solver does not use it anyway)
BASELINE_SEED = 1234


@dataclass(frozen=True)
class ExtraText:
    """Unlabelled texts as the dataset's preprocessing makes them: the `text` and `tokens` features."""

    texts: list[str]
    tokens: list[str]

    def feature(self, name: str) -> list[str]:
        return {TEXT: self.texts, TOKENS: self.tokens}[name]

    def sha256(self) -> str:
        return hashlib.sha256("\n".join(self.texts).encode("utf-8")).hexdigest()


def _files_state(folder: Path) -> list[tuple[str, int, int]]:
    """(relative path, size, mtime) of every file under `folder`: changes when a model is retrained."""
    return sorted(
        (str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()
    )


def _data_state(data_dir: Path) -> dict[str, Any]:
    meta = (data_dir / META_FILE).read_bytes()
    shards = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in shard_paths(data_dir, "train")]
    return {"meta": hashlib.sha256(meta).hexdigest(), "train": shards}


def check_teacher(run_dir: Path, labels: list[str]) -> None:
    """A UserError unless RUN_DIR is a trained run whose dataset has exactly these labels (same order)."""
    run = RunDir(run_dir)
    _, config = read_run(run)
    if not run.model.exists():
        raise UserError(f"teacher {run.path} has no trained model ({run.model} is missing)")
    theirs = list(read_meta(Path(config.data))["labels"])
    if theirs != labels:
        raise UserError(f"teacher {run.path} was trained on labels {theirs}, the dataset has {labels}")


def _predict_logits(run_dir: Path, data_dir: Path, extra: ExtraText | None, num_classes: int) -> dict[str, np.ndarray]:
    """The run's logits over the train split (file order) and the extra texts, by evaluate's prediction path."""
    import tensorflow as tf

    from tfmodels.evaluate import predict_logits
    from tfmodels.pipeline import read_split

    run = RunDir(run_dir)
    family, config = read_run(run)
    built = family.load(run.model, config)
    strings = tf.constant(extra.feature(family.input_feature) if extra else [], tf.string)
    parts = {
        "train": read_split(data_dir, "train", family.input_feature),
        "extra": tf.data.Dataset.from_tensor_slices((strings, tf.zeros_like(strings, tf.int64))),
    }
    return {name: predict_logits(built, config, family.length_fn, ds, num_classes)[1] for name, ds in parts.items()}


def _baseline_logits(data_dir: Path, extra: ExtraText | None, num_classes: int) -> dict[str, np.ndarray]:
    from tfmodels.baseline import baseline_probabilities, split_texts

    train_texts, _ = split_texts(data_dir, "train")
    parts = {"train": train_texts, "extra": extra.texts if extra else []}
    return {
        name: np.log(np.maximum(baseline_probabilities(data_dir, texts, num_classes, seed=BASELINE_SEED), 1e-7))
        for name, texts in parts.items()
    }


def teacher_logits(
    data_dir: Path,
    teachers: list[Path],
    *,
    baseline: bool,
    extra: ExtraText | None,
    cache_dir: Path,
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """({"train": [T, N, K], "extra": [T, M, K]} over the T teachers, {teacher: cache key}); each teacher's
    logits come from CACHE_DIR when its key matches, else they are computed and cached (atomically)."""
    data_dir = Path(data_dir)
    labels = list(read_meta(data_dir)["labels"])
    for run_dir in teachers:
        check_teacher(run_dir, labels)
    data = {**_data_state(data_dir), "extra": extra.sha256() if extra else None}
    sources: list[tuple[str, dict[str, Any]]] = [
        (str(t), {"run": str(t), "model": _files_state(RunDir(t).model), "settings": RunDir(t).config.read_text()})
        for t in teachers
    ]
    if baseline:
        sources.append((BASELINE, {"run": BASELINE, "seed": BASELINE_SEED}))
    cache_dir.mkdir(parents=True, exist_ok=True)
    per_teacher, keys = [], {}
    for name, identity in sources:
        key = hashlib.sha256(json.dumps({**identity, "data": data}, sort_keys=True).encode()).hexdigest()[:32]
        path, keys[name] = cache_dir / f"{key}.npz", key
        if path.is_file():
            with np.load(path) as cached:
                arrays = {"train": cached["train"], "extra": cached["extra"]}
            print(f"teacher {name}: logits reused from {path}")
        else:
            print(f"teacher {name}: computing logits over the train split" + (" and the extra texts" if extra else ""))
            if name == BASELINE:
                arrays = _baseline_logits(data_dir, extra, len(labels))
            else:
                arrays = _predict_logits(Path(name), data_dir, extra, len(labels))
            buffer = io.BytesIO()
            np.savez(buffer, train=arrays["train"], extra=arrays["extra"])
            write_bytes(path, buffer.getvalue())
        per_teacher.append(arrays)
    for stale in set(cache_dir.glob("*.npz")) - {cache_dir / f"{k}.npz" for k in keys.values()}:
        stale.unlink()
    return {part: np.stack([a[part] for a in per_teacher]) for part in ("train", "extra")}, keys


def soft_targets(logits: np.ndarray, temperature: float) -> np.ndarray:
    """The teachers' averaged probabilities at `temperature`: mean over axis 0 of softmax(logits / T)."""
    scaled = logits.astype(np.float64) / temperature
    scaled -= scaled.max(axis=-1, keepdims=True)
    probs = np.exp(scaled)
    probs /= probs.sum(axis=-1, keepdims=True)
    return probs.mean(axis=0).astype(np.float32)
