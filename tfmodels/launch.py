"""`textclf launch --workers N [--port-base P] -- train lstm ... --strategy multiworker`: N local workers.

The way to try multi-worker training on one machine (and the tests' harness): it starts N processes of
the same `textclf` command, each with a TF_CONFIG naming all N on loopback ports and its own index, and
prefixes their output with `[wI]`. Worker 0 is the chief (TF's convention when the cluster has no "chief"
task; tfmodels.strategy.worker_role reads it the same way). When one worker fails, the others are
stopped and launch exits non-zero; Ctrl-C and SIGTERM are passed on to every worker. On a cluster the same
training command runs under each worker's own TF_CONFIG (e.g. a Kubeflow TFJob) instead.

Launch never imports TensorFlow: it only starts processes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from types import FrameType

import click

from data_prep.processes import free_ports
from tfmodels.cli import OneLineCommand

STOP_GRACE_SECONDS = 10.0  # SIGTERM first; SIGKILL for a worker still running after this


def tf_configs(ports: Sequence[int]) -> list[str]:
    """One TF_CONFIG per worker: the same cluster of loopback workers, each its own index (0: the chief)."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    return [json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}) for i in range(len(ports))]


def _stream(prefix: str, pipe: object, lock: threading.Lock) -> None:
    for line in pipe:  # type: ignore[attr-defined]
        with lock:
            sys.stdout.write(f"{prefix} {line}" if line.endswith("\n") else f"{prefix} {line}\n")
            sys.stdout.flush()


def _stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM the workers still running; SIGKILL those that outlive the grace period."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for p in procs:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def describe(code: int) -> str:
    return f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with {code}"


def run_workers(commands: Sequence[Sequence[str]], envs: Sequence[dict[str, str]]) -> tuple[int, str]:
    """Run one process per (command, env), streaming output as `[wI] line`. Returns (exit code, reason):
    0 when all succeed; else the first failure's code (128+N for a signal N), after stopping the rest.

    Each worker gets a session of its own, so a Ctrl-C in the terminal reaches launch alone, which passes
    it on (SIGINT and SIGTERM go to every worker)."""
    lock = threading.Lock()
    procs: list[subprocess.Popen] = []
    readers: list[threading.Thread] = []
    forwarded: list[int] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        forwarded.append(signum)
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for i, (command, env) in enumerate(zip(commands, envs, strict=True)):
            proc = subprocess.Popen(
                list(command),
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                bufsize=1,
                start_new_session=True,
            )
            procs.append(proc)
            reader = threading.Thread(target=_stream, args=(f"[w{i}]", proc.stdout, lock), daemon=True)
            reader.start()
            readers.append(reader)
        while True:
            codes = [p.poll() for p in procs]
            failed = next(((i, c) for i, c in enumerate(codes) if c not in (None, 0)), None)
            if failed or all(c == 0 for c in codes):
                break
            time.sleep(0.1)
    finally:
        _stop(procs)
        for reader in readers:
            reader.join(timeout=5)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if forwarded:
        return 128 + forwarded[0], f"stopped by {signal.Signals(forwarded[0]).name}"
    if failed is None:
        return 0, ""
    index, code = failed
    return (128 - code if code < 0 else code), f"worker {index} {describe(code)}; stopped the others"


@click.command(
    cls=OneLineCommand,
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.option("--workers", type=click.IntRange(min=1), required=True, help="How many local worker processes.")
@click.option(
    "--port-base",
    type=click.IntRange(min=1, max=65535),
    help="Worker I listens on 127.0.0.1:P+I (default: free ports the OS picks).",
)
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
def launch(workers: int, port_base: int | None, command: tuple[str, ...]) -> None:
    """Run a multi-worker training command (`-- train lstm ... --strategy multiworker`) as N local workers."""
    args = list(command)  # click took the `--` that separates them from launch's own options
    if "multiworker" not in args and "--strategy=multiworker" not in args:
        raise click.ClickException(
            "launch runs one training on several workers: add `--strategy multiworker` to the command "
            "(without it each worker would train alone into the same run folder)"
        )
    ports = list(range(port_base, port_base + workers)) if port_base else free_ports(workers)
    if ports[-1] > 65535:
        raise click.ClickException(f"--port-base {port_base} leaves no room for {workers} workers")
    base_env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    code, reason = run_workers(
        [[sys.executable, "-m", "textclf", *args]] * workers,
        [{**base_env, "TF_CONFIG": config} for config in tf_configs(ports)],
    )
    if code:
        click.echo(f"Error: {reason}", err=True)
        sys.exit(code)
    click.echo(f"launch: all {workers} workers finished")
