"""Word vocabulary from the TRAIN split only, and optional pretrained word2vec vectors aligned to it.

Index 0 is padding (the Embedding's mask), index 1 is out-of-vocabulary, words follow by frequency.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from data_prep.errors import UserError

PAD, OOV = "", "[UNK]"
PAD_ID, OOV_ID = 0, 1
RESERVED = 2  # ids 0 (PAD) and 1 (OOV) come before the words


def build_vocabulary(word_batches: Iterable[Iterable[bytes]], *, min_count: int, max_size: int) -> list[str]:
    """Words seen at least `min_count` times, most frequent first (ties by word), at most `max_size`.

    The caller splits with the same op the serving graph uses (tf.strings.split), so both agree on words.
    """
    counts: collections.Counter[str] = collections.Counter()
    for words in word_batches:
        counts.update(w.decode("utf-8") for w in words)
    words = [w for w, c in counts.items() if c >= min_count and w != OOV]
    words.sort(key=lambda w: (-counts[w], w))
    return words[:max_size] if max_size > 0 else words


def write_vocabulary(path: Path, words: list[str]) -> None:
    from data_prep.atomic import write_text

    write_text(path, "".join(f"{w}\n" for w in words))


def read_vocabulary(path: Path) -> list[str]:
    return Path(path).read_text(encoding="utf-8").split("\n")[:-1]


def load_word2vec(path: Path, words: list[str], *, seed: int) -> np.ndarray:
    """Embedding matrix [RESERVED + len(words), dim] from a word2vec text file; words it lacks get random rows.

    The padding row is zero. Only rows for vocabulary words are kept, so memory follows the vocabulary,
    not the file.
    """
    index = {w: i + RESERVED for i, w in enumerate(words)}
    matrix: np.ndarray | None = None
    found = 0
    path = Path(path)
    if not path.is_file():
        raise UserError(f"embeddings file {path} does not exist")
    with path.open(encoding="utf-8", errors="replace") as f:
        for line_no, line in enumerate(f):
            parts = line.rstrip().split(" ")
            if line_no == 0 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # "count dim" header
            if len(parts) < 2:
                continue
            if matrix is None:
                rng = np.random.default_rng(seed)
                matrix = rng.normal(0.0, 0.1, size=(len(words) + RESERVED, len(parts) - 1)).astype("float32")
                matrix[0] = 0.0
            if len(parts) - 1 != matrix.shape[1]:
                raise UserError(f"{path}:{line_no + 1}: expected {matrix.shape[1]} numbers, got {len(parts) - 1}")
            row = index.get(parts[0])
            if row is not None:
                try:
                    matrix[row] = np.asarray(parts[1:], dtype="float32")
                except ValueError:
                    raise UserError(f"{path}:{line_no + 1}: not a word2vec text line") from None
                found += 1
    if matrix is None:
        raise UserError(f"{path} holds no word vectors")
    print(f"embeddings: {found}/{len(words)} vocabulary words found in {path.name} (dim {matrix.shape[1]})")
    return matrix
