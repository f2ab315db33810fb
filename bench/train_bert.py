"""BERT benchmarks: training throughput (examples/s) and the exported SavedModel's CPU latency per batch size.

Throughput reuses bench/train.py's worker (its CASES plus BERT_CASES below), so both families are timed
the same way (second epoch, fresh process per case). Latency loads the exported version the way TF Serving
does (graph + TF-Text kernels), warms it up, then times `serving_default` on real test texts.
Results: bench/results/train_bert.json.

    .venv/bin/python bench/train_bert.py [--data runs/data] [--examples 1024] [--version-dir MODEL_BASE/NAME/N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.train import CASES, ensure_data, run_case  # noqa: E402  (after the path insert)
from serving.contract import SIGNATURE, TEXT_INPUT, versions_on_disk  # noqa: E402  (after the path insert)

RESULTS = ROOT / "bench" / "results" / "train_bert.json"
WORK = ROOT / "bench" / "work" / "bert"
BATCH_SIZES = (1, 8, 32)

# merged into bench/train.py's CASES: name -> family, logical CPU devices (replicas), overrides
BERT_CASES: dict[str, dict] = {
    "bert-bucket-1": {"family": "bert", "devices": 1, "overrides": {"bucketing": True}},
    "bert-pad-1": {"family": "bert", "devices": 1, "overrides": {"bucketing": False}},
    "bert-bucket-2": {"family": "bert", "devices": 2, "overrides": {"bucketing": True}},
}


def throughput(data: Path, examples: int, cases: list[str]) -> list[dict]:
    """One fresh process per case (logical CPU devices are fixed when TF starts)."""
    results = []
    for name in cases:
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TEXTCLF_CPU_DEVICES": str(BERT_CASES[name]["devices"])}
        out = subprocess.run(
            [sys.executable, __file__, "--worker", name, "--data", str(data), "--examples", str(examples)],
            env=env,
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            sys.exit(f"case {name} failed:\n{out.stderr[-3000:]}")
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"{name}: {results[-1]['examples_per_second']} examples/s")
    return results


def train_and_export(data: Path, examples: int) -> Path:
    """A small scratch run through the real CLI, exported as version 1 of bench/work/bert/models/bert."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    run, base = WORK / "run", WORK / "models"
    for args in (
        [
            "train",
            "bert",
            "--data",
            str(data),
            "--out",
            str(run),
            "--epochs",
            "1",
            "--max-train-examples",
            str(examples),
            "--force",
        ],
        ["export", str(run), "--model-base", str(base), "--name", "bert", "--force"],
    ):
        out = subprocess.run(
            [sys.executable, "-m", "textclf", *args], cwd=ROOT, env=env, capture_output=True, text=True
        )
        if out.returncode != 0:
            sys.exit(f"textclf {args[0]} failed:\n{out.stderr[-3000:]}")
    return max(versions_on_disk(base / "bert").items())[1]


def export_latency(
    version_dir: Path, texts: list[str], batch_sizes: tuple[int, ...] = BATCH_SIZES, repeats: int = 30
) -> list[dict]:
    """p50/p95 milliseconds of one serving-signature call per batch size, after warm-up."""
    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the TF-Text kernels the graph needs, as TF Serving does)

    signature = tf.saved_model.load(str(version_dir)).signatures[SIGNATURE]
    results = []
    for size in batch_sizes:
        batch = tf.constant((texts * (size // len(texts) + 1))[:size])
        for _ in range(3):
            signature(**{TEXT_INPUT: batch})
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            signature(**{TEXT_INPUT: batch})
            times.append((time.perf_counter() - start) * 1000)
        p50, p95 = (float(np.percentile(times, q)) for q in (50, 95))
        results.append(
            {
                "batch_size": size,
                "p50_ms": round(p50, 2),
                "p95_ms": round(p95, 2),
                "examples_per_second": round(size * 1000 / p50, 1),
            }
        )
        print(f"batch {size}: p50 {p50:.1f} ms")
    return results


def test_texts(data: Path, count: int = 32) -> list[str]:
    from tfmodels.pipeline import read_split

    return [t.decode("utf-8") for t, _ in read_split(data, "test", "text", limit=count).as_numpy_iterator()]


def bench_bert(
    data: Path | None = None, examples: int = 1024, cases: list[str] | None = None, version_dir: Path | None = None
) -> dict:
    """Run both BERT benchmarks and write RESULTS; returns the report."""
    data = ensure_data(data)
    training = throughput(data, examples, cases or list(BERT_CASES))
    version_dir = version_dir or train_and_export(data, examples)
    latency = export_latency(version_dir, test_texts(data))
    report = {
        "benchmark": "train_bert",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "data": str(data),
        "version_dir": str(version_dir),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "training": training,
        "serving_latency_cpu": latency,
    }
    from data_prep.atomic import write_text

    write_text(RESULTS, json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS}")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="prepared dataset (default: builtin corpus under bench/work)")
    parser.add_argument("--examples", type=int, default=1024, help="train examples per epoch")
    parser.add_argument("--cases", default=",".join(BERT_CASES), help="comma-separated case names")
    parser.add_argument("--version-dir", type=Path, help="time this exported version instead of training one")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        CASES.update(BERT_CASES)
        print(json.dumps(run_case(args.worker, args.data, args.examples)))
        return
    bench_bert(args.data, args.examples, args.cases.split(","), args.version_dir)


if __name__ == "__main__":
    main()
