"""data_prep.processes with real processes and real sockets: a taken port is one line, a stopped child takes
its whole group along, a child that died is reported even when something else answers on its port, logs start
empty per run, and a child started with die_with_parent goes when its parent is SIGKILLed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from data_prep.errors import UserError
from data_prep.processes import check_bindable, free_ports, http_url, start, stop, wait_until


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_gone(pid: int, within_s: float = 30) -> bool:
    """Whether `pid` is gone (or a zombie) within `within_s`: an event to wait for, not a timing."""
    deadline = time.monotonic() + within_s
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not alive(pid)


def test_a_port_in_use_is_one_line_and_a_free_one_passes() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(UserError, match=rf"^cannot listen on 127.0.0.1:{port}: Address already in use$"):
            check_bindable("127.0.0.1", port)
    check_bindable("127.0.0.1", free_ports(1)[0])


def test_urls_for_wildcard_and_ipv6_hosts() -> None:
    assert http_url("0.0.0.0", 80) == "http://127.0.0.1:80"
    assert http_url("::1", 8080) == "http://[::1]:8080"
    assert http_url("::", 8080) == "http://[::1]:8080"
    assert http_url("localhost", 1) == "http://localhost:1"


def test_stop_takes_the_group_along_even_what_ignores_sigterm(tmp_path: Path) -> None:
    log = tmp_path / "group.log"
    proc = start(["sh", "-c", 'trap "" TERM; sleep 600 & echo $!; wait'], log)
    wait_until(lambda: log.read_text().strip().isdigit(), timeout_s=30, proc=proc, log=log)
    grandchild = int(log.read_text())
    stop(proc, grace_s=0.5)
    assert proc.returncode is not None and wait_gone(grandchild)


def test_a_child_that_died_is_reported_even_when_its_port_answers(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("from an earlier run\n")
    proc = start(["sh", "-c", "echo 'OSError: [Errno 98] Address already in use'; exit 3"], log)
    proc.wait()
    with pytest.raises(UserError) as failed:
        wait_until(lambda: True, timeout_s=30, proc=proc, what="model server", log=log)  # a stale server answers
    assert str(failed.value) == (
        f"the model server exited with code 3: OSError: [Errno 98] Address already in use (see {log})"
    )
    assert "earlier run" not in log.read_text()


def test_append_keeps_the_log(tmp_path: Path) -> None:
    log = tmp_path / "kept.log"
    log.write_text("before\n")
    start(["echo", "after"], log, append=True).wait()
    assert log.read_text() == "before\nafter\n"


PARENT = """
import sys, time
from pathlib import Path
from data_prep.processes import start
child = start(["sleep", "600"], Path(sys.argv[1]), die_with_parent=sys.argv[2] == "yes")
print(child.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
@pytest.mark.parametrize("guarded", [True, False])
def test_die_with_parent_ends_the_child_when_the_parent_is_killed(tmp_path: Path, guarded: bool) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tmp_path / "child.log"), "yes" if guarded else "no"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    try:
        parent.kill()
        parent.wait()
        # the kernel signals at the parent's exit, before wait() returns; the unguarded child just carries on
        assert wait_gone(child) if guarded else alive(child)
    finally:
        if alive(child):
            os.killpg(child, signal.SIGKILL)
