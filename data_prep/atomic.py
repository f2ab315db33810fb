"""Write files and folders so a reader never sees them half-written: temp sibling, then rename."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from data_prep.errors import UserError

FILE_MODE = 0o644
DIR_MODE = 0o755


def write_text(path: Path, text: str) -> None:
    """Replace `path` with `text` atomically (same-folder temp file + os.replace)."""
    write_bytes(path, text.encode("utf-8"))


def write_bytes(path: Path, data: bytes) -> None:
    with open_atomic(path, "wb") as f:
        f.write(data)


@contextlib.contextmanager
def open_atomic(
    path: Path, mode: str = "w", *, encoding: str | None = None, newline: str | None = None
) -> Iterator[IO[Any]]:
    """Stream into a temp sibling of `path`; rename it over `path` only when the block ends without error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(fd, FILE_MODE)  # mkstemp makes 0600; a published file should read like any other
        with os.fdopen(fd, mode, encoding=encoding, newline=newline) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def refuse_existing(path: Path, force: bool) -> None:
    """Fail before any work starts, not after it, when the output exists and --force was not given."""
    if Path(path).exists() and not force:
        raise UserError(f"{path} already exists (use --force to replace it)")


@contextlib.contextmanager
def publish_dir(final: Path, *, force: bool = False) -> Iterator[Path]:
    """Yield a temp folder beside `final`; on success rename it to `final`, on failure remove it.

    An existing `final` is kept unless `force`; then it is swapped out only after the new one is whole.
    Temp names start with "." so version scanners (TF Serving, our model server) never list them.
    """
    final = Path(final)
    refuse_existing(final, force)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    os.chmod(tmp, DIR_MODE)  # mkdtemp makes 0700
    try:
        yield tmp
        if final.exists():
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
