"""N training runs that differ only in their seed, and their mean ± std: one run's accuracy is one draw.

Layout (`textclf train FAMILY --seeds N --out OUT`, `textclf distill --seeds N --out OUT`):

    OUT/seed-<s>/   an ordinary run folder (tfmodels.run_dir) trained with seed s, for s = first_seed,
                    first_seed + 1, ...: `evaluate`, `export` and serving take it as they take any run
    OUT/seeds.json  the summary, rewritten atomically after every seed (see `summarize`)

Use from a command:

    summary = run_seeds(out, seeds, first_seed, train_one, settings=..., force=force)
    click.echo(format_summary(summary))

`train_one(run_dir, seed, force)` trains one ordinary run into `run_dir` with that seed and leaves its
report in run_dir/report/metrics.json (as tfmodels.train.train does through evaluate_run); its return
value is ignored. `settings` is whatever JSON-able record makes the runs comparable (flags without the
seed; its keys that a seed's config.json also holds are compared with that file too): a rerun without
--force whose settings differ from OUT/seeds.json, or from a finished seed's config.json, is refused, so
finished seeds are never mixed with seeds of other settings. The family's export-only settings
(TrainConfig.EXPORT_ONLY) may differ.

A rerun without `force` skips a seed whose report exists, resumes an interrupted seed (train_one is
called with force=False: tfmodels.train resumes from its backup), and only evaluates a seed whose model
was saved but whose report was not; `--seeds 5` after `--seeds 3` trains two more. With `force` every
OUT/seed-* folder is removed first and every seed starts over. `textclf evaluate OUT` re-evaluates every
seed (evaluate_seeds).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from data_prep.atomic import write_text
from data_prep.errors import UserError
from data_prep.json_file import read_json_object
from tfmodels.config import changed_keys, read_record
from tfmodels.run_dir import RunDir

SEEDS_FILE = "seeds.json"


def seed_dir(out: Path, seed: int) -> Path:
    return Path(out) / f"seed-{seed}"


def run_seeds(
    out: Path,
    seeds: int,
    first_seed: int,
    train_one: Callable[[Path, int, bool], object],
    *,
    settings: dict[str, Any],
    force: bool = False,
) -> dict[str, Any]:
    """Train seeds first_seed .. first_seed + seeds - 1 into OUT/seed-<s>/; write and return the summary."""
    out = Path(out)
    if seeds < 1:
        raise UserError(f"--seeds must be at least 1, not {seeds}")
    if RunDir(out).config.is_file():
        raise UserError(f"{out} holds a single run; give --seeds runs another --out")
    settings = json.loads(json.dumps(settings))  # as read back from OUT/seeds.json: tuples are lists
    export_only = _export_only(settings.get("family"))
    summary_path = out / SEEDS_FILE
    if force:  # all at once: a forced rerun killed early must leave no seed of the earlier settings behind
        for old in sorted(out.glob("seed-*")):
            if old.is_dir():
                shutil.rmtree(old)
    elif summary_path.is_file():
        recorded = read_json_object(summary_path).get("settings")
        changed = changed_keys(recorded, settings, export_only) if isinstance(recorded, dict) else ["unreadable"]
        if changed:
            raise UserError(
                f"{out} holds seeds trained with other settings ({', '.join(changed)}); "
                "rerun with the same flags or add --force to start over"
            )
    wanted = list(range(first_seed, first_seed + seeds))
    for i, seed in enumerate(wanted):
        run = RunDir(seed_dir(out, seed))
        _write_summary(out, wanted, settings)  # the seeds finished so far; the settings before the first starts
        saved_whole = run.model.exists() and not run.backup_progress.is_file()
        if run.metrics.is_file() or saved_whole:
            _check_seed(run, settings)
        if run.metrics.is_file():
            print(f"seed {seed} ({i + 1}/{seeds}): finished, skipped -> {run.path}")
            continue
        print(f"seed {seed} ({i + 1}/{seeds}) -> {run.path}")
        if saved_whole:
            from tfmodels.evaluate import evaluate_run

            evaluate_run(run.path)  # killed between saving the model and writing its report
        else:
            train_one(run.path, seed, force)
    return _write_summary(out, wanted, settings)


def evaluate_seeds(out: Path) -> dict[str, Any]:
    """`textclf evaluate OUT` on a --seeds folder: re-evaluate every seed whose model was saved, re-summarize."""
    from tfmodels.evaluate import evaluate_run

    recorded = read_json_object(Path(out) / SEEDS_FILE)
    wanted, settings = recorded.get("seeds"), recorded.get("settings")
    if not isinstance(wanted, list) or not all(isinstance(s, int) for s in wanted) or not isinstance(settings, dict):
        raise UserError(f"{Path(out) / SEEDS_FILE}: not a seeds summary (train with --seeds again)")
    for seed in wanted:
        run = RunDir(seed_dir(out, seed))
        if run.model.exists():
            evaluate_run(run.path)
    return _write_summary(Path(out), wanted, settings)


def _check_seed(run: RunDir, settings: dict[str, Any]) -> None:
    """A finished seed counts only if its own config.json agrees with the settings on every key both hold
    (seeds.json alone could be out of step with the folders), but for its seed and export-only settings."""
    record = read_record(run)
    common = (set(record) & set(settings)) - {"seed"}
    changed = changed_keys(
        {k: record[k] for k in common}, {k: settings[k] for k in common}, _export_only(record.get("family"))
    )
    if changed:
        raise UserError(
            f"{run.path} was trained with other settings ({', '.join(changed)}) than this rerun's; "
            "rerun with its flags or add --force to start over"
        )


def _export_only(family: object) -> frozenset[str]:
    """The family's settings that change only the export (TrainConfig.EXPORT_ONLY): never a reason to refuse."""
    from tfmodels.family import FAMILIES, get_family

    if not isinstance(family, str) or family not in FAMILIES:
        return frozenset()
    return get_family(family).config_class.EXPORT_ONLY


def _write_summary(out: Path, wanted: list[int], settings: dict[str, Any]) -> dict[str, Any]:
    runs = []
    for seed in wanted:
        run = RunDir(seed_dir(out, seed))
        if run.metrics.is_file():
            runs.append({"seed": seed, "run": run.path.name, **_seed_figures(read_json_object(run.metrics))})
    summary = {"seeds": wanted, "settings": settings, **summarize(runs)}
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / SEEDS_FILE, json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return summary


def _seed_figures(metrics: dict[str, Any]) -> dict[str, Any]:
    """What the summary keeps of one seed's report (tfmodels.evaluate)."""
    model, baseline = metrics.get("model", {}), metrics.get("baseline", {})
    return {
        "accuracy": model.get("accuracy"),
        "accuracy_ci95": model.get("accuracy_ci95"),
        "macro_f1": model.get("macro_f1"),
        "macro_f1_ci95": model.get("macro_f1_ci95"),
        "baseline_accuracy": baseline.get("accuracy"),
        "beats_baseline": metrics.get("beats_baseline"),
    }


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """{"finished": n, "runs": [...], "accuracy": {mean, std, min, max}, "macro_f1": {...}} over the
    finished seeds; std is the sample standard deviation (ddof=1), 0 for a single seed."""
    summary: dict[str, Any] = {"finished": len(runs), "runs": runs}
    for key in ("accuracy", "macro_f1"):
        values = np.asarray([r[key] for r in runs if isinstance(r.get(key), int | float)], dtype=float)
        summary[key] = (
            {
                "mean": float(values.mean()),
                "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                "min": float(values.min()),
                "max": float(values.max()),
            }
            if len(values)
            else None
        )
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    """ "accuracy 0.843 ± 0.004 over 3 seeds" and the same for macro-F1."""
    n = summary["finished"]
    lines = []
    for key, name in (("accuracy", "accuracy"), ("macro_f1", "macro-F1")):
        stats = summary.get(key)
        if stats:
            lines.append(f"{name} {stats['mean']:.3f} ± {stats['std']:.3f} over {n} seed{'s' if n != 1 else ''}")
    return "\n".join(lines)
