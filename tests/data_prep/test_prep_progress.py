"""`textclf prep` shows its progress: periodic lines with counts off a terminal (CI logs), a tqdm bar on one,
nothing with --quiet."""

from __future__ import annotations

import fcntl
import io
import json
import os
import re
import select
import struct
import termios
from pathlib import Path

import pytest
from click.testing import CliRunner
from prep_corpus import write_folder

from data_prep.progress import STEP_PERCENT, Progress
from tests.support.cli import textclf
from textclf import cli

TEXTS_PER_LABEL = 600  # several chunks of CHUNK_TEXTS with one worker: several lines per stage


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_folder(
        tmp_path / "corpus",
        {
            "sports": [f"第{i}场足球比赛，主队以{i}比0获胜。" for i in range(TEXTS_PER_LABEL)],
            "finance": [f"股市第{i}天上涨，成交额达到{i}亿元。" for i in range(TEXTS_PER_LABEL)],
        },
    )


def stage_lines(stderr: str, stage: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(f"{stage}:")]


@pytest.mark.slow  # a fresh interpreter that imports TensorFlow to write the shards
def test_prep_off_a_terminal_prints_progress_lines_with_counts(corpus: Path, tmp_path: Path) -> None:
    result = textclf("prep", str(corpus), "--out", str(tmp_path / "data"), "--workers", "1")
    assert result.returncode == 0, result.stderr
    meta = json.loads((tmp_path / "data" / "meta.json").read_text(encoding="utf-8"))
    rows, kept, shards = 2 * TEXTS_PER_LABEL, meta["cleaning_stats"]["kept"], sum(meta["shards"].values())

    assert stage_lines(result.stderr, "read")[-1].startswith(f"read: {rows} rows [")
    segmented = stage_lines(result.stderr, "segment")
    assert len(segmented) >= 3, result.stderr  # periodic, not only the last one
    counts = [int(re.search(r"% (\d+)/(\d+) ", line)[1]) for line in segmented]  # type: ignore[index]
    assert counts == sorted(counts) and counts[-1] == kept
    assert segmented[-1].startswith(f"segment: 100% {kept}/{kept} texts [") and "texts/s]" in segmented[-1]
    written = [int(re.search(r"% (\d+)/(\d+) ", line)[1]) for line in stage_lines(result.stderr, "shards")]  # type: ignore[index]
    assert written == list(range(1, shards + 1))  # a line per shard as it is written: each is a large step
    assert stage_lines(result.stderr, "shards")[-1].startswith(f"shards: 100% {shards}/{shards} shards [")
    assert "\r" not in result.stderr  # no bar redrawn in a log
    assert "| exact duplicates" in result.stdout  # the report still goes to stdout


def test_quiet_prep_prints_no_progress(corpus: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["prep", str(corpus), "--out", str(tmp_path / "data"), "--workers", "1", "-q"])
    assert result.exit_code == 0, result.output
    assert not [line for line in result.output.splitlines() if re.match(r"(read|segment|shards): ", line)]


def test_progress_lines_come_every_few_percent_and_once_at_the_end() -> None:
    out = io.StringIO()
    with Progress("segment", "texts", 1000, stream=out) as progress:
        for _ in range(40):
            progress.update(25)
    lines = out.getvalue().splitlines()
    assert len(lines) == 100 // STEP_PERCENT
    assert [line.split()[1] for line in lines] == [f"{p}%" for p in range(STEP_PERCENT, 101, STEP_PERCENT)]


def test_progress_on_a_terminal_is_a_tqdm_bar() -> None:
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))  # an 80-column terminal
    with open(follower, "w", encoding="utf-8") as terminal:
        with Progress("read", "rows", stream=terminal) as progress:
            progress.update(7)
        terminal.flush()
        drawn = b""
        while select.select([leader], [], [], 0.5)[0]:  # every write the bar made, however the pty split them
            drawn += os.read(leader, 4096)
    os.close(leader)
    assert b"\r" in drawn and "read: 7 rows" in drawn.decode()


def test_disabled_progress_writes_nothing() -> None:
    out = io.StringIO()
    with Progress("segment", "texts", 10, enabled=False, stream=out) as progress:
        progress.update(10)
    assert out.getvalue() == ""
