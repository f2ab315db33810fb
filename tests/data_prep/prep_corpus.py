"""Builds small corpora on disk for the data_prep tests (a plain module: test files import it by
name, which they cannot safely do with conftest.py when other test folders have one too)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

Example = tuple[str, str, int]  # (text, tokens, label id) of one record
ReadSplit = Callable[[Path, str], list[Example]]  # the read_split fixture: (dataset folder, split) -> records
Prepared = tuple[Path, dict[str, Any]]  # the builtin_dataset fixture: (folder, meta)


def write_folder(root: Path, docs: dict[str, list[str | bytes]]) -> Path:
    """ROOT/<label>/NNN.txt; bytes are written as they are (to make undecodable files)."""
    for label, texts in docs.items():
        (root / label).mkdir(parents=True)
        for i, text in enumerate(texts):
            data = text if isinstance(text, bytes) else text.encode("utf-8")
            (root / label / f"{i:03d}.txt").write_bytes(data)
    return root
