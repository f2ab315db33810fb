"""What distillation can reach with these teachers: the test accuracy of their averaged probabilities (the
target `textclf distill` trains towards), each teacher's own, and the baseline's, with 95% bootstrap
intervals and the paired comparison of the average against the baseline (tfmodels/significance.py).

A student seldom beats the average of its teachers; when that average does not clear a target, the target
needs other teachers (a pretrained preset) or other text, not other distillation settings.

    .venv/bin/python -m bench.ensemble --data bench/work/compress/data \\
        bench/work/compress/runs/lstm/seed-1234 bench/work/compress/runs/lstm/seed-1235 \\
        bench/work/compress/runs/lstm/seed-1236 --baseline-teacher
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from bench.serve import RESULTS
from data_prep.atomic import write_text
from data_prep.dataset_format import read_meta
from tfmodels.baseline import baseline_probabilities, split_texts
from tfmodels.family import read_run
from tfmodels.run_dir import RunDir
from tfmodels.significance import bootstrap_report
from tfmodels.teachers import BASELINE, BASELINE_SEED, soft_targets


def test_logits(run_dir: Path, data: Path, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(labels, logits) of a run on the test split of DATA, by evaluate's prediction path."""
    from tfmodels.evaluate import predict_logits
    from tfmodels.pipeline import read_split

    run = RunDir(run_dir)
    family, config = read_run(run)
    built = family.load(run.model, config)
    return predict_logits(built, config, family.length_fn, read_split(data, "test", family.input_feature), num_classes)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+", help="teacher runs (textclf train/distill output folders)")
    parser.add_argument("--data", type=Path, required=True, help="the prepared dataset the runs were trained on")
    parser.add_argument("--baseline-teacher", action="store_true", help="average the TF-IDF + LR baseline in too")
    parser.add_argument("--out", type=Path, default=RESULTS / "ensemble.json")
    args = parser.parse_args(argv)

    num_classes = len(read_meta(args.data)["labels"])
    texts, y_true = split_texts(args.data, "test")
    baseline_probs = baseline_probabilities(args.data, texts, num_classes, seed=BASELINE_SEED)
    logits: dict[str, np.ndarray] = {}
    for run in args.runs:
        labels, logits[str(run)] = test_logits(run, args.data, num_classes)
        if not np.array_equal(labels, y_true):
            raise SystemExit(f"{run}: its test split is not {args.data}'s")
    if args.baseline_teacher:
        logits[BASELINE] = np.log(np.maximum(baseline_probs, 1e-7))
    average = soft_targets(np.stack(list(logits.values())), temperature=1.0).argmax(axis=-1)
    report = bootstrap_report(y_true, average, baseline_probs.argmax(axis=-1), num_classes)
    results: dict[str, Any] = {
        "command": "python -m bench.ensemble " + " ".join(sys.argv[1:] if argv is None else argv),
        "test_texts": len(y_true),
        "teachers": {name: float((z.argmax(axis=-1) == y_true).mean()) for name, z in logits.items()},
        "baseline_accuracy": float((baseline_probs.argmax(axis=-1) == y_true).mean()),
        "average_accuracy": float((average == y_true).mean()),
        **{f"average_{k}": v for k, v in report["model"].items()},
        "baseline_accuracy_ci95": report["baseline"]["accuracy_ci95"],
        "average_minus_baseline": report["comparison"],
    }
    write_text(args.out, json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
