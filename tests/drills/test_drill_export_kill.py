"""Drill: `textclf export` is SIGKILLed while it writes a version into a served model base.

No partial version may ever be listed or loaded: the model server's status shows only whole versions
(before, during and after the write), and every non-dot folder left in the base holds a saved_model.pb.
(Killing `textclf train` and resuming is the tfmodels drill: tests/tfmodels/, not repeated here.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.processes import REPO, child_env
from tests.support.corpus import SMALL, generated_rows
from tests.support.prepared import write_prepared
from tests.support.servers import MODEL, ModelServer, model_server, publish_tiny_version, version_states

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def textclf(*args: str) -> list[str]:
    return [sys.executable, "-m", "textclf", *args]


def test_export_killed_mid_write_publishes_nothing(tmp_path):
    base = tmp_path / "models"
    publish_tiny_version(base / MODEL, 1)
    data = write_prepared(tmp_path / "data", generated_rows(300), (200, 50, 50))
    run = tmp_path / "run"
    # train (a few seconds) while the model server starts: both are mostly TF start-up
    training = subprocess.Popen(
        textclf("train", "lstm", "--data", str(data), "--out", str(run), *SMALL, "--epochs", "1"),
        env=child_env(),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with model_server(base / MODEL, tmp_path) as server:
            _, err = training.communicate(timeout=180)
            assert training.returncode == 0, err[-2000:]
            _kill_export_mid_write(run, base, server)
    finally:
        training.kill()
        training.wait()


def _kill_export_mid_write(run: Path, base: Path, server: ModelServer) -> None:
    """SIGKILL an export mid-write: the server never lists more than v1, and nothing partial is left."""
    export = textclf("export", str(run), "--model-base", str(base), "--name", MODEL, "--force")
    proc = subprocess.Popen(
        export, env=child_env(), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        temp = _wait_for_partial_write(base / MODEL, proc, server)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    assert temp.exists(), "the half-written temp folder vanished: the kill came too late to test anything"

    time.sleep(2.5)  # two poll cycles of --file_system_poll_wait_seconds=1
    assert version_states(server) == {1: "AVAILABLE"}
    _assert_only_whole_versions(base / MODEL)


def _wait_for_partial_write(
    model_dir: Path, proc: subprocess.Popen, server: ModelServer, timeout_s: float = 120
) -> Path:
    """The export's '.'-named temp version folder, as soon as something has been written into it;
    meanwhile the server's status must never list anything but version 1."""
    deadline = time.monotonic() + timeout_s
    polls = 0
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"export ended ({proc.returncode}) before it could be killed mid-write"
        polls += 1
        if polls % 20 == 0:
            assert version_states(server) == {1: "AVAILABLE"}
        for entry in model_dir.iterdir():
            if entry.name.startswith(".") and entry.is_dir() and any(entry.iterdir()):
                return entry
        time.sleep(0.005)
    raise AssertionError("export never started writing a version")


def _assert_only_whole_versions(model_dir: Path) -> None:
    for entry in model_dir.iterdir():
        if not entry.name.startswith("."):
            assert entry.is_dir() and entry.name.isdigit(), f"unexpected {entry.name} in the model base"
            assert (entry / "saved_model.pb").is_file(), f"version {entry.name} has no saved_model.pb"
