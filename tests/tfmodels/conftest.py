"""A tiny prepared dataset (Contract 1) and a helper to run the real CLI in a subprocess.

Training runs in a subprocess because TEXTCLF_CPU_DEVICES must split the CPU before TF initialises, and
so a test can kill it mid-epoch.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.processes import child_env
from data_prep.dataset_format import LABEL, META_FILE, SCHEMA_VERSION, TEXT, TOKENS, shard_name
from tests.support.corpus import LABELS, SMALL, generated_rows  # noqa: F401 - SMALL re-exported to tests

ROOT = Path(__file__).resolve().parents[2]


def write_prepared(out: Path, rows: list[tuple[str, int]], split_sizes: tuple[int, int, int]) -> Path:
    """Write Contract 1 the way `textclf prep` does (meta.json + one shard per split)."""
    import tensorflow as tf

    out.mkdir(parents=True)
    start, counts = 0, {}
    for split, size in zip(("train", "dev", "test"), split_sizes):
        part = rows[start:start + size]
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
    meta = {"schema_version": SCHEMA_VERSION, "labels": LABELS, "counts": counts, "seed": 42,
            "source": {"kind": "generated", "sha256": "0" * 64},
            "preprocessing": {"hmm": True, "max_chars": None}}
    (out / META_FILE).write_text(json.dumps(meta, ensure_ascii=False))
    return out


@pytest.fixture(scope="session")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_prepared(tmp_path_factory.mktemp("data") / "prepared", generated_rows(600), (400, 100, 100))


def cli_env(**extra: str) -> dict[str, str]:
    """The CLI's environment on CPU: no logical-device split unless a test asks for one."""
    env = child_env(CUDA_VISIBLE_DEVICES="")
    env.pop("TEXTCLF_CPU_DEVICES", None)
    return {**env, **extra}


def textclf(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `textclf ARGS` as a user would, capturing output."""
    return subprocess.run([sys.executable, "-m", "textclf", *args], cwd=ROOT, env=env or cli_env(),
                          capture_output=True, text=True, timeout=timeout)
