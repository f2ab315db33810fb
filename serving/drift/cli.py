"""`textclf drift`: a drift report of the payload log against the training data, and an exit code a cron job
or CI can alert on: 0 no drift, 3 a threshold crossed, 2 bad input (one readable line)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import click

from data_prep.errors import UserError
from serving.gateway.config import DEFAULT_LOW_CONFIDENCE

DRIFT_EXIT = 3
BAD_INPUT_EXIT = 2
# an LSTM run keeps its vocabulary here (tfmodels/lstm/family.py; serving never imports tfmodels)
RUN_VOCABULARY = Path("model") / "vocab.txt"
_AGO = re.compile(r"^(\d+)([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_since(value: str, now: datetime) -> datetime:
    """ "30m", "24h", "7d" (before `now`) or an ISO-8601 date/time (UTC unless it says otherwise)."""
    from serving.gateway.payload_log import parse_time

    ago = _AGO.match(value.strip())
    if ago:
        return now - timedelta(**{_UNITS[ago[2]]: int(ago[1])})
    try:
        moment = parse_time(value.strip())
    except ValueError:
        raise UserError(f"--since {value!r} is neither an ISO-8601 time nor an age like 30m, 24h, 7d") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def read_run_vocabulary(run: Path) -> set[str]:
    path = run / RUN_VOCABULARY
    if not path.is_file():
        raise UserError(f"{run} has no {RUN_VOCABULARY}: --run takes the run folder of a token (LSTM) model")
    return {word for word in path.read_text(encoding="utf-8").split("\n") if word}


@click.command()
@click.option(
    "--reference",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Prepared dataset the model was trained on (its train split is the reference).",
)
@click.option(
    "--log",
    "log",
    required=True,
    type=click.Path(path_type=Path),
    help="TEXTCLF_PAYLOAD_LOG's DIR, or one log file.",
)
@click.option("--model", default=None, help="Model name (required when the log holds several).")
@click.option("--since", default=None, help="Only records since: an ISO-8601 time, or an age like 30m, 24h, 7d.")
@click.option("--out", default="drift", show_default=True, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--run",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="A token model's run folder: unknown words are those not in its vocabulary (default: train split words).",
)
@click.option(
    "--user-dict",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="jieba user dictionary of the dataset.",
)
@click.option(
    "--stopwords", default=None, type=click.Path(dir_okay=False, path_type=Path), help="Stopwords file of the dataset."
)
@click.option(
    "--max-label-psi", default=0.25, show_default=True, help="Threshold: PSI of training vs predicted labels."
)
@click.option("--max-length-psi", default=0.25, show_default=True, help="Threshold: PSI of text length.")
@click.option(
    "--min-score",
    default=DEFAULT_LOW_CONFIDENCE,
    show_default=True,
    help="A top score below this is a low-confidence text (the gateway's TEXTCLF_LOW_CONFIDENCE default).",
)
@click.option("--max-low-confidence", default=0.3, show_default=True, help="Threshold: share of low-confidence texts.")
@click.option("--max-unknown-words", default=0.1, show_default=True, help="Threshold: share of unknown words.")
@click.option(
    "--min-records",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Fewer matching records is an error (exit 2), not a verdict: PSI over ten length bins is noise below that.",
)
def drift(
    reference: Path,
    log: Path,
    model: str | None,
    since: str | None,
    out: Path,
    run: Path | None,
    user_dict: Path | None,
    stopwords: Path | None,
    max_label_psi: float,
    max_length_psi: float,
    min_score: float,
    max_low_confidence: float,
    max_unknown_words: float,
    min_records: int,
) -> None:
    """Compare logged traffic with the training data; exit 3 when a threshold is crossed, 2 on bad input."""
    from data_prep.preprocess import Preprocessor
    from serving.drift.comparison import Thresholds, compare
    from serving.drift.reference import read_reference
    from serving.drift.report import MARKDOWN_FILE, write_report
    from serving.gateway.payload_log import read_records

    try:
        start = parse_since(since, datetime.now(timezone.utc)) if since else None
        ref = read_reference(reference)
        preprocessor = Preprocessor.from_config(ref.preprocessing, user_dict=user_dict, stopwords=stopwords)
        vocabulary, source = (
            (read_run_vocabulary(run), f"{run / RUN_VOCABULARY}") if run else (set(ref.words), "the training words")
        )
        result = compare(
            ref,
            read_records(log, model=model, since=start),
            preprocessor,
            vocabulary=vocabulary,
            vocabulary_source=source,
            thresholds=Thresholds(max_label_psi, max_length_psi, min_score, max_low_confidence, max_unknown_words),
            min_records=min_records,
        )
        write_report(out, result, reference=str(reference), log=str(log), since=start.isoformat() if start else None)
    except UserError as exc:
        raise BadInput(str(exc)) from None
    except OSError as exc:
        raise BadInput(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")) from None
    for signal in result.signals:
        mark = "CROSSED" if signal.crossed else "ok"
        click.echo(f"{signal.name:>15} {signal.value:8.4f}  (threshold {signal.threshold:g})  {mark}")
    click.echo(f"{result.records} records of {result.model} -> {out / MARKDOWN_FILE}")
    if result.drifted:
        click.echo("drift: a threshold was crossed", err=True)
        raise SystemExit(DRIFT_EXIT)


class BadInput(click.ClickException):
    """One readable line and exit code 2, kept apart from 3 (drift) so an alert never fires on a typo."""

    exit_code = BAD_INPUT_EXIT
