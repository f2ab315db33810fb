"""bench/loadgen: a benchmark says what it is missing and stops; it never installs anything itself."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bench import loadgen


def _executable(folder: Path, name: str) -> Path:
    path = folder / name
    path.write_text("#!/bin/sh\nexit 1\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def recorded_runs(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every subprocess.run call, recorded instead of run.

    A fake is legitimate here: what is under test is that no command is started at all (a real apt-get
    would change this machine's packages), so recording the attempt is the whole observation.
    """
    calls: list[Any] = []

    def record(*args: Any, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        calls.append(args)
        return subprocess.CompletedProcess(args, 0, "", "")

    monkeypatch.setattr(subprocess, "run", record)
    return calls


@pytest.fixture
def path_without_wrk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH holds apt-get but no wrk, and we are root: the conditions under which an installer would act."""
    _executable(tmp_path, "apt-get")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    return tmp_path


def _one_line_naming_wrk(exc: pytest.ExceptionInfo[SystemExit]) -> None:
    message = str(exc.value.code)
    assert "wrk" in message and "apt-get install -y wrk" in message, message
    assert "\n" not in message


def test_missing_wrk_stops_with_one_line_and_installs_nothing(path_without_wrk: Path, recorded_runs: list[Any]) -> None:
    with pytest.raises(SystemExit) as exc:
        loadgen.ensure_wrk()
    _one_line_naming_wrk(exc)
    assert recorded_runs == []


def test_a_measurement_without_wrk_runs_nothing(
    path_without_wrk: Path, recorded_runs: list[Any], tmp_path: Path
) -> None:
    bodies = loadgen.write_bodies(tmp_path / "bodies.jsonl", [{"text": "你好"}])
    with pytest.raises(SystemExit) as exc:
        loadgen.run_wrk("http://127.0.0.1:9/", bodies, connections=1, duration_s=1)
    _one_line_naming_wrk(exc)
    assert recorded_runs == []


def test_wrk_on_path_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wrk = _executable(tmp_path, "wrk")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert loadgen.ensure_wrk() == str(wrk)
