"""tfmodels.stamps' fingerprints: contents, not sizes and times, count; a large file's hash is reused only while
its device, inode, size and mtime stay; code is fingerprinted by its sources."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tfmodels import stamps
from tfmodels.stamps import FileHasher, sources_digest


def rewrite_keeping_size_and_time(path: Path, text: str) -> None:
    kept = path.stat()
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(kept.st_atime_ns, kept.st_mtime_ns))
    assert path.stat().st_size == kept.st_size


def test_an_edit_that_keeps_size_and_time_changes_the_fingerprint(tmp_path: Path) -> None:
    folder = tmp_path / "preset"
    folder.mkdir()
    (folder / "vocab.txt").write_text("a\n", encoding="utf-8")
    before = FileHasher().fingerprint(folder), FileHasher().fingerprint(folder / "vocab.txt")
    rewrite_keeping_size_and_time(folder / "vocab.txt", "b\n")
    after = FileHasher().fingerprint(folder), FileHasher().fingerprint(folder / "vocab.txt")
    assert before[0][0][0] == "vocab.txt" and before[0] != after[0] and before[1] != after[1]


def test_a_large_file_is_hashed_once_while_its_stat_stays(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stamps, "LARGE_FILE", 4)
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("1 2 3\n", encoding="utf-8")
    first = FileHasher()
    sha = first.fingerprint(vectors)
    rewrite_keeping_size_and_time(vectors, "4 5 6\n")  # unseen by design: the cache trusts the stat
    assert FileHasher(first.cache).fingerprint(vectors) == sha
    os.utime(vectors)  # a real edit moves mtime
    assert FileHasher(first.cache).fingerprint(vectors) != sha


def test_sources_digest_follows_the_code(tmp_path: Path) -> None:
    (tmp_path / "mod.py").write_text("x = 1\n", encoding="utf-8")
    before = sources_digest(tmp_path)
    (tmp_path / "mod.py").write_text("x = 2\n", encoding="utf-8")
    assert sources_digest(tmp_path) != before
