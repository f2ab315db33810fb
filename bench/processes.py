"""Start, wait for and stop the servers a benchmark or a drill runs, on free loopback ports.

Every server runs in its own session (process group), so stopping it also stops the workers it forked
(gunicorn's, the model server's), and a failed start leaves nothing behind. The process plumbing itself is
data_prep/processes.py, shared with `textclf pipeline`; this module adds the repo's environment and ModelServer.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import requests

from data_prep import processes
from data_prep.processes import free_ports, kill, stop, wait_until

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
TEXTCLF = VENV_BIN / "textclf"


def free_port() -> int:
    return free_ports(1)[0]


def child_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1", **extra}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def start(cmd: Sequence[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """data_prep.processes.start from the repo, appending to `log` (a restarted server keeps its history)."""
    return processes.start(cmd, log, env=env or child_env(), cwd=REPO, append=True)


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
