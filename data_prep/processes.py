"""Child processes that must not outlive their job: the servers `textclf pipeline`, the benchmarks and the
tests start. One copy here, because data_prep is the one package all the others may import.

Each child runs in a session (process group) of its own, so stopping it also stops what it forked (gunicorn's
workers) and a terminal's Ctrl-C or hang-up reaches only the parent, which decides; its output goes to a log
file. `die_with_parent` covers the parent that never gets to decide (SIGKILL, a crash): on Linux the child is
sent SIGTERM when its parent dies (PR_SET_PDEATHSIG); elsewhere it is a no-op.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from data_prep.errors import UserError

# Runs in the child before the command: ask for SIGTERM on the parent's death, give up if the parent is already
# gone, then become the command (exec keeps the pid and the setting). A tiny interpreter of its own rather than
# Popen's preexec_fn, which may deadlock in a parent that has threads (TensorFlow's, after training).
# PR_SET_PDEATHSIG is tied to the thread that started the child: start such children from a long-lived thread.
_DIE_WITH_PARENT = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None).prctl(1, signal.SIGTERM)\n"  # 1: PR_SET_PDEATHSIG
    "if os.getppid() != int(sys.argv[1]): sys.exit(1)\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports: all are held at once while the kernel picks them."""
    with contextlib.ExitStack() as held:
        sockets = [held.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def check_bindable(host: str, port: int) -> None:
    """Fail in one line when host:port cannot be listened on: before a server starts, rather than a child
    that dies with "Address already in use" while a stale server on that port answers in its place."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn and gRPC bind
        try:
            probe.bind(address)
        except OSError as exc:
            raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def http_url(host: str, port: int) -> str:
    """Where a local client reaches a server listening on host:port (a wildcard address means loopback)."""
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def start(
    cmd: Sequence[str],
    log: Path,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    append: bool = False,
    die_with_parent: bool = False,
) -> subprocess.Popen[bytes]:
    """`cmd` in a session of its own, stdout and stderr to `log` (emptied first unless `append`, so its last
    line is this run's), stdin closed."""
    args = list(cmd)
    if die_with_parent and sys.platform.startswith("linux"):
        args = [sys.executable, "-I", "-S", "-c", _DIE_WITH_PARENT, str(os.getpid()), *args]
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab" if append else "wb") as out:
        return subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )


def stop(proc: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    """SIGTERM the whole group, then SIGKILL what is still there after `grace_s`."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace_s)
    kill(proc)  # stragglers in the group, even when the leader is gone


def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the whole group at once: no goodbye, as when a host dies."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


def last_line(log: Path | None) -> str:
    lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines() if log and log.is_file() else []
    return lines[-1].strip() if lines else ""


def check_running(proc: subprocess.Popen[bytes] | None, what: str, log: Path | None) -> None:
    """One line when `proc` has exited: its code and the last line it logged."""
    if proc is not None and proc.poll() is not None:
        raise UserError(f"the {what} exited with code {proc.returncode}{_said(log)}")


def _said(log: Path | None) -> str:
    said = last_line(log)
    return (f": {said}" if said else "") + (f" (see {log})" if log else "")


def wait_until(
    ready: Callable[[], bool],
    *,
    timeout_s: float,
    proc: subprocess.Popen[bytes] | None = None,
    what: str = "server",
    log: Path | None = None,
    poll_s: float = 0.2,
) -> None:
    """Poll `ready` until it holds, checking `proc` is alive before each poll and once ready (a server of
    someone else's can answer while ours dies). `ready` may raise while the server comes up; a UserError it
    raises is final."""
    deadline = time.monotonic() + timeout_s
    while True:
        check_running(proc, what, log)
        try:
            answered = ready()
        except UserError:
            raise
        except Exception:
            answered = False
        if answered:
            check_running(proc, what, log)
            return
        if time.monotonic() > deadline:
            raise UserError(f"the {what} was not ready after {timeout_s:.0f} s{_said(log)}")
        time.sleep(poll_s)
