"""Start, wait for and stop the servers a benchmark or a drill runs, on free loopback ports.

Every server runs in its own session (process group), so stopping it also stops the workers it forked
(gunicorn's, the model server's), and a failed start leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
TEXTCLF = VENV_BIN / "textclf"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1", **extra}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def start(cmd: Sequence[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(
            list(cmd), stdout=out, stderr=subprocess.STDOUT, env=env or child_env(), cwd=REPO, start_new_session=True
        )


def stop(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM the whole group, then SIGKILL what is still there after `grace_s`."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers in the group, even when the leader is gone
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


def wait_until(
    ready: Callable[[], bool],
    *,
    timeout_s: float,
    proc: subprocess.Popen | None = None,
    what: str = "server",
    log: Path | None = None,
) -> None:
    """Poll `ready` until it holds; fail early when `proc` died, with the tail of its log."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}{_tail(log)}")
        with contextlib.suppress(Exception):
            if ready():
                return
        time.sleep(0.2)
    raise TimeoutError(f"{what} not ready after {timeout_s:.0f} s{_tail(log)}")


def _tail(log: Path | None, lines: int = 15) -> str:
    if log is None or not log.exists():
        return ""
    return "\n--- " + str(log) + "\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def running(
    cmd: Sequence[str],
    log: Path,
    ready: Callable[[], bool],
    *,
    timeout_s: float = 120.0,
    env: dict[str, str] | None = None,
    what: str = "server",
) -> Iterator[subprocess.Popen]:
    """A started server that is ready, stopped (with its whole group) on the way out."""
    proc = start(cmd, log, env)
    try:
        wait_until(ready, timeout_s=timeout_s, proc=proc, what=what, log=log)
        yield proc
    finally:
        stop(proc)
