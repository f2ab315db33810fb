"""`textclf train lstm`: the shared training flags plus the LSTM family's own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from tfmodels.cli import OneLineCommand, run_training, training_options
from tfmodels.lstm.config import EXPORT_DTYPES


@click.command("lstm", cls=OneLineCommand)
@training_options
@click.option("--embedding-dim", type=int)
@click.option("--lstm-units", type=int)
@click.option("--lstm-layers", type=int)
@click.option("--bidirectional/--unidirectional", default=None)
@click.option("--pooling", type=click.Choice(["mean", "mean_max"]))
@click.option("--word-dropout", type=float, help="Share of words turned into OOV while training.")
@click.option("--embed-dropout", type=float)
@click.option("--dropout", type=float)
@click.option("--min-count", type=int, help="Vocabulary: minimum train-split count of a word.")
@click.option("--max-vocab", type=int, help="Vocabulary: maximum number of words.")
@click.option("--oov-chars/--no-oov-chars", default=None, help="Feed unknown words as their characters (default).")
@click.option(
    "--wide/--no-wide",
    default=None,
    help="Add a linear model on the character n-grams' TF-IDF to the logits (wide & deep; default).",
)
@click.option(
    "--export-min-df",
    type=int,
    help="Export only (a resumed run or a --seeds rerun may change it): leave out n-gram rows of n-grams in fewer "
    "train texts (0 keeps every row).",
)
@click.option(
    "--export-dtype",
    type=click.Choice(EXPORT_DTYPES),
    help="Export only, like --export-min-df: store the embedding tables in int8 (per-row scale, default), "
    "float16 or float32.",
)
@click.option(
    "--embeddings",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Pretrained word2vec text file; words it lacks start random.",
)
def train_lstm(embeddings: Path | None, **flags: Any) -> None:
    """Embedding -> stacked (Bi)LSTM -> masked pooling -> softmax, on jieba words."""
    run_training("lstm", embeddings=str(embeddings) if embeddings else None, **flags)
