"""`textclf train`, `textclf evaluate`, `textclf export`: flags in, one library call, one summary out.

TensorFlow is imported inside the command functions only, so `textclf --help` stays fast. A family's
`train NAME` command lives in its package (`@click.command(cls=OneLineCommand)` + `@training_options`,
calling `run_training`) and is registered once, in tfmodels.family.FAMILIES.
"""

from __future__ import annotations

import pkgutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from data_prep.errors import UserError
from tfmodels.family import FAMILIES


class OneLineErrors:
    """Bad flags end in one line ("Error: ...") and exit code 1, like every other user error."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            raise click.ClickException(f"{exc.format_message()} (see `{info_name} --help`)") from None


class OneLineCommand(OneLineErrors, click.Command):
    pass


class TrainGroup(OneLineErrors, click.Group):
    """One subcommand per registered family (tfmodels.family.FAMILIES), imported when it runs. A module
    that fails to import is a broken install: its error surfaces instead of "No such command"."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(FAMILIES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        registered = FAMILIES.get(cmd_name)
        return None if registered is None else pkgutil.resolve_name(registered.command)


@click.group(cls=TrainGroup)
def train() -> None:
    """Train a classifier on a prepared dataset (`textclf prep` output) into a run folder."""


def training_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Flags every family shares. Unset flags are None, so --config and the defaults decide."""
    options = [
        click.option(
            "--data",
            "data",
            required=True,
            type=click.Path(path_type=Path),
            help="Prepared dataset folder (written by `textclf prep`).",
        ),
        click.option(
            "--out",
            "out",
            required=True,
            type=click.Path(path_type=Path),
            help="Run folder: config, checkpoints, logs, model, report.",
        ),
        click.option(
            "--config",
            "config_file",
            type=click.Path(path_type=Path, dir_okay=False),
            help="YAML/JSON file of hyperparameters (flags override it).",
        ),
        click.option("--force", is_flag=True, help="Start over even if OUT holds a finished or interrupted run."),
        click.option("--epochs", type=int),
        click.option("--batch-size", type=int, help="Per replica."),
        click.option("--lr", type=float, help="Peak learning rate."),
        click.option("--optimizer", type=click.Choice(["adam", "adamw"])),
        click.option("--weight-decay", type=float),
        click.option("--warmup-ratio", type=float),
        click.option("--decay", type=click.Choice(["cosine", "linear"])),
        click.option("--clipnorm", type=float, help="Gradient clipping by norm; 0 turns it off."),
        click.option("--label-smoothing", type=float),
        click.option("--ema", type=float, help="Momentum of a moving average of the weights (0.99); 0 turns it off."),
        click.option("--patience", type=int, help="Early stopping on dev accuracy (best weights kept)."),
        click.option("--seed", type=int),
        click.option(
            "--seeds",
            type=click.IntRange(min=1),
            help="Train N runs, seeded SEED, SEED+1, ..., into OUT/seed-<s>/ and report their mean ± std "
            "(OUT/seeds.json); a rerun skips finished seeds.",
        ),
        click.option("--max-len", type=int, help="Length cap."),
        click.option("--bucketing/--pad-to-max", default=None, help="Bucket batches by length (default) or pad."),
        click.option("--backup-every-steps", type=int, help="BackupAndRestore frequency in steps."),
        click.option("--max-train-examples", type=int, help="Use only the first N train examples."),
        click.option(
            "--strategy",
            type=click.Choice(["auto", "default", "mirrored", "multiworker"]),
            help="auto: MirroredStrategy when >1 GPU (or TEXTCLF_CPU_DEVICES>1); multiworker: one process per "
            "worker from TF_CONFIG (see `textclf launch`).",
        ),
        click.option(
            "--mixed-precision/--float32",
            "mixed_precision",
            default=None,
            help="mixed_float16 compute (GPUs with tensor cores); float32 by default.",
        ),
        click.option("--xla/--no-xla", default=None, help="Compile the train step with XLA (GPUs)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def run_training(
    family: str,
    *,
    data: Path,
    out: Path,
    config_file: Path | None,
    force: bool,
    seeds: int | None = None,
    **overrides: Any,
) -> None:
    from tfmodels.train import train as train_run

    if seeds is not None:
        _train_seeds(family, data=data, out=out, config_file=config_file, force=force, seeds=seeds, **overrides)
        return
    metrics = train_run(family, data, out, config_file=config_file, overrides=overrides, force=force)
    if not metrics:  # a multi-worker run's other worker: the chief writes the model and the report
        click.echo(f"trained {family}: this worker's part is done; the chief writes {out}")
        return
    click.echo(
        f"trained {family} -> {out}: test accuracy {metrics['model']['accuracy']:.4f}, "
        f"baseline {metrics['baseline']['accuracy']:.4f}"
    )


def _train_seeds(
    family: str, *, data: Path, out: Path, config_file: Path | None, force: bool, seeds: int, **overrides: Any
) -> None:
    """`--seeds N`: N ordinary runs (tfmodels.seeds), compared on the resolved settings without the seed."""
    from dataclasses import replace

    from tfmodels.config import resolve
    from tfmodels.family import get_family
    from tfmodels.seeds import SEEDS_FILE, format_summary, run_seeds
    from tfmodels.train import train as train_run

    config = resolve(get_family(family).config_class, config_file, overrides)
    if config.strategy == "multiworker":
        raise UserError("--seeds trains its runs one after another in one process: not with --strategy multiworker")
    settings = replace(config, data=str(data.resolve())).to_record()
    settings.pop("seed")

    def train_one(run_dir: Path, seed: int, force_one: bool) -> None:
        one = {**overrides, "seed": seed}
        train_run(family, data, run_dir, config_file=config_file, overrides=one, force=force_one)

    summary = run_seeds(out, seeds, config.seed, train_one, settings=settings, force=force)
    click.echo(f"trained {family} x {seeds} seeds -> {out / SEEDS_FILE}\n{format_summary(summary)}")


@click.command(cls=OneLineCommand)
@click.argument("run_dir", type=click.Path(path_type=Path))
def evaluate(run_dir: Path) -> None:
    """Write RUN_DIR/report/: test metrics with 95% bootstrap intervals for the model and the TF-IDF baseline,
    their paired comparison, confusion, curves. A `--seeds` folder: every seed's run, then OUT/seeds.json."""
    from tfmodels.seeds import SEEDS_FILE, evaluate_seeds, format_summary

    if (run_dir / SEEDS_FILE).is_file():
        click.echo(format_summary(evaluate_seeds(run_dir)))
        return
    from tfmodels.evaluate import evaluate_run

    evaluate_run(run_dir)


@click.command(cls=OneLineCommand)
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option(
    "--model-base",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="TF Serving model base path; versions go to MODEL_BASE/NAME/N.",
)
@click.option("--name", required=True, help="Model name (folder under MODEL_BASE).")
@click.option(
    "--tolerance",
    type=float,
    default=0.005,
    show_default=True,
    help="How much lower test accuracy than the latest version the gate accepts.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Publish even if the gate finds the model worse, or cannot score the latest version on this run's test "
    "split (a different dataset with other labels or another input, or it fails to load).",
)
@click.option(
    "--tflite",
    is_flag=True,
    help="Also write model.tflite into the version (served by --prefer_tflite_model), if it labels the test split "
    "like the SavedModel.",
)
@click.option(
    "--quantize",
    type=click.Choice(["dynamic", "float16", "int8"]),
    help="TF Lite weights: dynamic-range int8, float16, or int8 calibrated on train-split texts.",
)
def export(
    run_dir: Path, model_base: Path, name: str, tolerance: float, force: bool, tflite: bool, quantize: str | None
) -> None:
    """Publish RUN_DIR's model as the next SavedModel version, if it passes the gate."""
    from tfmodels.export import export_run

    version_dir = export_run(
        run_dir, model_base, name, tolerance=tolerance, force=force, tflite=tflite, quantize=quantize
    )
    click.echo(f"published {version_dir}")
