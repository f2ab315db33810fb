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

import requests

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
TEXTCLF = VENV_BIN / "textclf"


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports: all are held at once while the kernel picks them."""
    with contextlib.ExitStack() as held:
        sockets = [held.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def free_port() -> int:
    return free_ports(1)[0]


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
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace_s)
    kill(proc)  # stragglers in the group, even when the leader is gone


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL the whole group at once: no goodbye, as when a host dies."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
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


class ModelServer:
    """`textclf model-server FLAGS` on two distinct loopback ports chosen once, so a restart comes back where
    clients look for it; `start()` returns once every model in `models` has an AVAILABLE version.

    `stop()` ends it as an operator does (SIGTERM, then wait); `kill()` SIGKILLs the group, for callers that
    must cope with TF Serving vanishing without a goodbye. A context manager, or start()/stop() as often as
    needed.
    """

    def __init__(
        self, flags: Sequence[str], log: Path, *, models: Sequence[str], timeout_s: float = 120, grace_s: float = 10
    ) -> None:
        self.flags = list(flags)
        self.log = log
        self.models = tuple(models)
        self.timeout_s = timeout_s
        self.grace_s = grace_s
        self.grpc_port, self.rest_port = free_ports(2)
        self.grpc_target = f"127.0.0.1:{self.grpc_port}"
        self.rest_url = f"http://127.0.0.1:{self.rest_port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> ModelServer:
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError(f"model server already running (pid {self.proc.pid}) on {self.grpc_target}")
        cmd = [str(TEXTCLF), "model-server", f"--port={self.grpc_port}", f"--rest_api_port={self.rest_port}"]
        self.proc = start([*cmd, *self.flags], self.log)
        try:
            wait_until(self.ready, timeout_s=self.timeout_s, proc=self.proc, what="model server", log=self.log)
        except BaseException:
            self.kill()
            raise
        return self

    def ready(self) -> bool:
        return all("AVAILABLE" in self.version_states(model).values() for model in self.models)

    def version_states(self, model: str) -> dict[int, str]:
        """version -> state from the REST status API (TF Serving renders versions as strings)."""
        answer = requests.get(f"{self.rest_url}/v1/models/{model}", timeout=5).json()
        return {int(v["version"]): v["state"] for v in answer.get("model_version_status", [])}

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc, self.grace_s)
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None:
            kill(self.proc)
        self.proc = None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def __enter__(self) -> ModelServer:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
