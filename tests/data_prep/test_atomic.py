"""Atomic writes: a reader sees the old file or the whole new one, never a half-written one."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_prep import atomic
from data_prep.errors import UserError


def test_open_atomic_text_mode_passes_encoding_and_newline(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "out.csv"
    with atomic.open_atomic(path, "w", encoding="utf-8", newline="") as f:
        f.write("文本\r\n")
        assert not path.exists()  # still a temp sibling while the block runs
    assert path.read_bytes() == "文本\r\n".encode()
    assert path.stat().st_mode & 0o777 == atomic.FILE_MODE


def test_a_failed_write_keeps_the_old_file_and_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    atomic.write_text(path, "old")
    with pytest.raises(RuntimeError), atomic.open_atomic(path, "wb") as f:
        f.write(b"half")
        raise RuntimeError("crash mid-write")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_publish_dir_swaps_only_a_whole_folder(tmp_path: Path) -> None:
    final = tmp_path / "data"
    with atomic.publish_dir(final) as tmp:
        (tmp / "a.txt").write_text("1")
        assert not final.exists()
    assert (final / "a.txt").read_text() == "1"
    with pytest.raises(UserError, match="--force"), atomic.publish_dir(final):
        pass
    with pytest.raises(RuntimeError), atomic.publish_dir(final, force=True) as tmp:
        (tmp / "b.txt").write_text("2")
        raise RuntimeError("crash before the swap")
    assert [p.name for p in final.iterdir()] == ["a.txt"] and [p.name for p in tmp_path.iterdir()] == ["data"]
    with atomic.publish_dir(final, force=True) as tmp:
        (tmp / "b.txt").write_text("2")
    assert [p.name for p in final.iterdir()] == ["b.txt"] and [p.name for p in tmp_path.iterdir()] == ["data"]
