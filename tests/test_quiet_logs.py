"""TensorFlow's C++ chatter is hidden by default and shown with TEXTCLF_TF_LOGS=1 or --verbose; everything else
written to stderr gets out, at once, even when the process aborts or a child outlives it.

The first tests import TensorFlow for real (`textclf model-server` with no gRPC port: TF loads, then the server
refuses to start in one line); the lines asserted on are the ones TF 2.21 prints on this CPU-only machine. The
others put a stand-in `tensorflow` package first on PYTHONPATH: a real TF cannot be made to abort on demand.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support.cli import ROOT, cli_env, textclf
from textclf import cli

ABSL_NOTICE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
ONEDNN_NOTE = "oneDNN custom operations are on"
ONEDNN_INT64 = (
    "E0000 00:00:1700000000.000000    1234 util.cc:131] oneDNN supports DT_INT64 only on platforms with AVX-512. "
    "Falling back to the default Eigen-based implementation if present."
)
FATAL = "F0000 00:00:1700000000.000000    1234 cpu_feature_guard.cc:1] This TensorFlow binary needs AVX."
SERVER_ERROR = "Error: Failed to start server"


def start_model_server_without_a_port(*options: str, **env: str):
    environ = cli_env(**env)
    environ.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as a user's shell has it
    args = ["--port=0", "--rest_api_port=0", "--model_name=x", "--model_base_path=/nonexistent"]
    return textclf(*options, "model-server", *args, env=environ, timeout=180)


@pytest.mark.slow  # imports TensorFlow in a fresh process
def test_tensorflow_start_up_chatter_is_hidden_and_the_real_error_kept():
    result = start_model_server_without_a_port()
    assert result.returncode == 1
    assert ABSL_NOTICE not in result.stderr and ONEDNN_NOTE not in result.stderr, result.stderr
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        line for line in result.stderr.splitlines() if line.startswith(SERVER_ERROR)
    ], result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("how", ["env", "flag"])
def test_tf_logs_or_verbose_shows_everything(how):
    options, env = (("--verbose",), {}) if how == "flag" else ((), {"TEXTCLF_TF_LOGS": "1"})
    result = start_model_server_without_a_port(*options, **env)
    assert result.returncode == 1
    assert ABSL_NOTICE in result.stderr and ONEDNN_NOTE in result.stderr and SERVER_ERROR in result.stderr


def stand_in_tensorflow(tmp_path: Path, body: str) -> Path:
    """A `tensorflow` package whose import runs BODY; returns the folder to put first on PYTHONPATH."""
    (tmp_path / "tensorflow").mkdir()
    (tmp_path / "tensorflow" / "__init__.py").write_text(textwrap.dedent(body))
    return tmp_path


def test_a_fatal_line_before_an_abort_reaches_stderr(tmp_path):
    path = stand_in_tensorflow(
        tmp_path,
        f"""
        import os
        os.write(2, {(ABSL_NOTICE + chr(10)).encode()!r})
        os.write(2, {(FATAL + chr(10)).encode()!r})
        os.abort()
        """,
    )
    result = start_model_server_without_a_port(PYTHONPATH=str(path))
    assert result.returncode < 0, result.stderr  # killed by SIGABRT while importing "TensorFlow"
    assert FATAL in result.stderr and ABSL_NOTICE not in result.stderr, result.stderr


def test_a_child_writing_after_the_command_ended_is_not_broken(tmp_path):
    """The filter outlives the command while a child it started still holds fd 2; the child's chatter is still
    dropped and its other lines pass."""
    status = tmp_path / "child-status"
    child = f"""
import os, sys
sys.stdin.read()  # returns when the parent has exited
os.write(2, {(ONEDNN_INT64 + chr(10)).encode()!r})
os.write(2, b"child: written after the parent ended\\n")
open({str(status)!r}, "w").write("ok")
"""
    parent = f"""
import subprocess, sys, textclf
textclf.quiet_tensorflow([])
import tensorflow
subprocess.Popen([sys.executable, "-c", {child!r}], stdin=subprocess.PIPE)
"""
    path = stand_in_tensorflow(tmp_path, "")
    result = subprocess.run(
        [sys.executable, "-c", parent],
        cwd=ROOT,
        env=cli_env(PYTHONPATH=str(path)),
        capture_output=True,
        text=True,
        timeout=60,
    )  # returns once the filter has passed on the child's lines: it holds the captured stderr until then
    assert result.returncode == 0, result.stderr
    assert status.read_text() == "ok"  # the child's writes to stderr did not fail
    assert result.stderr == "child: written after the parent ended\n"


def test_verbose_in_one_invocation_does_not_leak_into_the_next(monkeypatch):
    """In-process invocations (tests) leave the environment and the import machinery alone."""
    monkeypatch.delenv("TEXTCLF_TF_LOGS", raising=False)
    environ, meta_path = dict(os.environ), list(sys.meta_path)
    runner = CliRunner()
    for args in (["--verbose", "predict", "--help"], ["predict", "--help"]):
        assert runner.invoke(cli, args).exit_code == 0
        assert dict(os.environ) == environ and sys.meta_path == meta_path
