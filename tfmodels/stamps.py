"""What a `textclf pipeline` step was made from, so a rerun redoes only the steps whose inputs changed.

A stamp is a small JSON file, `STAMP_FILE`, in the step's output folder: the step's named inputs (the
source's data hash, the step's flags, content hashes of files the flags name, the code that makes the
output, the upstream step's stamp hash), their hash, and whether the step finished. A step is up to date
when its finished stamp has the same hash as the inputs it would be run with now; the hash is what the next
step records as its upstream.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data_prep.atomic import write_text
from data_prep.errors import UserError
from data_prep.json_file import read_json_object

STAMP_FILE = "pipeline-stamp.json"


def jsonable(value: Any) -> Any:
    """Flag values as JSON: paths as absolute strings, tuples as lists."""
    if isinstance(value, Path):
        return str(value.resolve())
    if isinstance(value, tuple | list):
        return [jsonable(v) for v in value]
    return value


LARGE_FILE = 64 << 20  # hashed once, then known by (device, inode, size, mtime) while those stay put
CHUNK = 1 << 20


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class FileHasher:
    """Content hashes of the files and folders flags name (a folder: its files' relative paths and hashes),
    so an edit counts even when size and time are kept. A file of LARGE_FILE or more (embeddings) is hashed
    once: `cache` carries its hash from the last stamp while its device, inode, size and mtime are the same."""

    def __init__(self, cache: dict[str, Any] | None = None) -> None:
        self.previous = cache or {}
        self.cache: dict[str, Any] = {}

    def fingerprint(self, path: Path) -> Any:
        path = Path(path).resolve()
        if path.is_file():
            return self._file(path)
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []
        return [[p.relative_to(path).as_posix(), self._file(p)] for p in files]

    def _file(self, path: Path) -> str:
        stat = path.stat()
        if stat.st_size < LARGE_FILE:
            return _sha256(path)
        key = [stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns]
        known = self.previous.get(str(path))
        sha = known[1] if isinstance(known, list) and known[0] == key else _sha256(path)
        self.cache[str(path)] = [key, sha]
        return sha


def sources_digest(*folders: Path) -> str:
    """sha256 over the .py files under `folders` (relative paths and contents): code as installed, since a
    development checkout changes without its version string changing."""
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted(Path(folder).rglob("*.py")):
            digest.update(f"{folder.name}/{path.relative_to(folder).as_posix()}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def installed_version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class Stamp:
    """The inputs a step is (or was) run with; `digest` identifies them."""

    step: str
    inputs: dict[str, Any]

    @property
    def digest(self) -> str:
        canonical = json.dumps(self.inputs, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def write(self, path: Path, *, done: bool, **facts: Any) -> None:
        """Atomically record the inputs (and facts about the output, such as a published version)."""
        record = {"step": self.step, "digest": self.digest, "done": done, "inputs": self.inputs, **facts}
        write_text(path, json.dumps(record, indent=2, ensure_ascii=False, sort_keys=True) + "\n")


def read_stamp(path: Path) -> dict[str, Any] | None:
    """The stamp at `path`, or None when there is none (never run, or its output was removed)."""
    if not path.is_file():
        return None
    record = read_json_object(path)
    if not isinstance(record.get("inputs"), dict):
        raise UserError(f"{path} is not a pipeline stamp; remove it to run the step again")
    return record


def changes(stamp: Stamp, recorded: dict[str, Any] | None) -> str | None:
    """None when `recorded` is this stamp, finished; else why the step must run, in a few words."""
    if recorded is None:
        return "new"
    if recorded.get("digest") == stamp.digest:
        return None if recorded.get("done") else "unfinished"
    old = recorded["inputs"]
    changed = sorted(k for k in set(old) | set(stamp.inputs) if old.get(k) != stamp.inputs.get(k))
    return "changed: " + ", ".join(changed)
