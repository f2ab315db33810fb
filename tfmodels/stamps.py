"""What a `textclf pipeline` step was made from, so a rerun redoes only the steps whose inputs changed.

A stamp is a small JSON file, `STAMP_FILE`, in the step's output folder: the step's named inputs (the
source's data hash, the step's flags, fingerprints of files the flags name, the upstream step's stamp
hash), their hash, and whether the step finished. A step is up to date when its finished stamp has the same hash as
the inputs it would be run with now; the hash is what the next step records as its upstream.
"""

from __future__ import annotations

import hashlib
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


def path_fingerprint(path: Path) -> list[Any]:
    """Sizes and modification times of a file, or of every file under a folder (a preset, say): cheap on
    gigabytes of embeddings, and it changes when a file is edited or replaced."""
    path = Path(path)
    if path.is_file():
        stat = path.stat()
        return [stat.st_size, stat.st_mtime_ns]
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []
    return [[p.relative_to(path).as_posix(), p.stat().st_size, p.stat().st_mtime_ns] for p in files]


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
