"""`textclf pipeline`, run as a user runs it (a subprocess, real jieba, real training, real servers): end to
end into a model base; a rerun skips every step (--workers does not count); a train flag or a --config file's
content change retrains but keeps prep; a data change redoes everything; --serve answers over the printed
curl line and a second SIGTERM or a SIGHUP still stops every child; --try alone classifies and stops. Bad
input, a port in use and a WORK in use are one line.

Every test starts from the first run's WORK, model base and corpus, restored at the same paths (the stamps
name them), so no test depends on another having run."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from data_prep.processes import free_ports
from tests.support.cli import ROOT, cli_env, textclf
from tests.support.corpus import LABELS, SMALL, generated_rows

TRY = "这个酒店非常干净，早餐好吃，推荐！"
FLAGS = [*SMALL, "--epochs", "1", "--workers", "1"]


def write_corpus(path: Path, n: int, seed: int = 7) -> Path:
    rows = [f"{tokens.replace(' ', '')}\t{LABELS[label]}" for tokens, label in generated_rows(n, seed)]
    path.write_text("text\tlabel\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def pipeline_args(state: dict[str, Any], *extra: str) -> list[str]:
    return ["pipeline", str(state["corpus"]), "--name", "reviews", "--model-base", str(state["models"])] + [
        "--work",
        str(state["work"]),
        *FLAGS,
        *extra,
    ]


def run_ok(state: dict[str, Any], *extra: str) -> list[str]:
    done = textclf(*pipeline_args(state, *extra), timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.splitlines()


def step_line(lines: list[str], step: str) -> str:
    found = [line for line in lines if line.startswith(f"{step}: ")]
    assert found, lines
    return found[0]


def versions(state: dict[str, Any]) -> list[str]:
    return sorted(p.name for p in (state["models"] / "reviews").iterdir() if not p.name.startswith("."))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "x", "--model-base", "{tmp}/m"], "Missing argument 'SOURCE'"),
        (["{tmp}/corpus.tsv", "--name", "x", "--model-base", "{tmp}/m", "--family", "gpt"], "'gpt' is not one of"),
        (["{tmp}/missing.tsv", "--name", "x", "--model-base", "{tmp}/m"], "does not exist"),
        (
            ["{tmp}/corpus.tsv", "--name", "x", "--model-base", "{tmp}/m", "--preset", "{tmp}"],
            "--preset is not a flag of `textclf train lstm`",
        ),
    ],
)
def test_bad_input_is_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    write_corpus(tmp_path / "corpus.tsv", 20)
    result = textclf("pipeline", *[a.format(tmp=tmp_path) for a in args], "--work", str(tmp_path / "work"))
    assert result.returncode != 0, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "work").exists()


def one_error_line(result: subprocess.CompletedProcess, message: str) -> None:
    assert result.returncode != 0, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_a_port_in_use_is_one_line_before_any_step(tmp_path: Path) -> None:
    """A stale server on the model server's port would answer in the child's place: refuse up front."""
    write_corpus(tmp_path / "corpus.tsv", 20)
    with socket.socket() as stale:
        stale.bind(("127.0.0.1", 0))
        stale.listen()
        port = stale.getsockname()[1]
        args = ["--name", "x", "--model-base", str(tmp_path / "m"), "--work", str(tmp_path / "work")]
        result = textclf("pipeline", str(tmp_path / "corpus.tsv"), *args, "--try", TRY, "--grpc-port", str(port))
    one_error_line(result, f"cannot listen on 127.0.0.1:{port}: Address already in use")
    assert result.stdout == "" and not (tmp_path / "work").exists()


def test_a_second_pipeline_on_the_same_work_refuses(tmp_path: Path) -> None:
    write_corpus(tmp_path / "corpus.tsv", 20)
    work = tmp_path / "work"
    work.mkdir()
    with open(work / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        result = textclf(
            "pipeline",
            str(tmp_path / "corpus.tsv"),
            "--name",
            "x",
            "--model-base",
            str(tmp_path / "m"),
            "--work",
            str(work),
        )
    one_error_line(result, f"{work} is in use by another `textclf pipeline`")
    assert result.stdout == "" and not (work / "prepared").exists()


KEPT = ("corpus", "models", "work")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The first run (every step runs, version 1 is published), and a copy of what it left."""
    tmp = tmp_path_factory.mktemp("workflow")
    state: dict[str, Any] = {"corpus": write_corpus(tmp / "reviews.tsv", 400), "models": tmp / "models"}
    state["work"] = tmp / "work"
    state["lines"] = run_ok(state)
    state["snapshot"] = tmp / "pristine"
    state["snapshot"].mkdir()
    for key in KEPT:
        copy = shutil.copytree if state[key].is_dir() else shutil.copy2
        copy(state[key], state["snapshot"] / key)  # copy2 keeps modification times
    return state


@pytest.fixture
def state(pristine: dict[str, Any]) -> dict[str, Any]:
    """The first run's WORK, model base and corpus as it left them, back at their paths."""
    for key in KEPT:
        if pristine[key].is_dir():
            shutil.rmtree(pristine[key])
            shutil.copytree(pristine["snapshot"] / key, pristine[key])
        else:
            shutil.copy2(pristine["snapshot"] / key, pristine[key])
    return dict(pristine)


@pytest.mark.slow
def test_first_run_prepares_trains_evaluates_and_publishes(state: dict[str, Any]) -> None:
    lines = state["lines"]
    for step in ("prep", "train", "export"):
        assert step_line(lines, step).endswith("(new)"), lines
    assert "test accuracy" in step_line(lines, "evaluate")
    assert f"export: published {state['models'] / 'reviews' / '1'}" in lines
    assert versions(state) == ["1"]
    assert (state["work"] / "prepared" / "meta.json").is_file() and (state["work"] / "run" / "model").exists()


def all_skipped(lines: list[str]) -> None:
    for step in ("prep", "train", "evaluate", "export"):
        assert step_line(lines, step).startswith(f"{step}: skipped (unchanged)"), lines


def child_pids(lines: list[str]) -> list[int]:
    children = [int(line.split("pid ")[1].split(",")[0]) for line in lines if ": starting, pid " in line]
    assert len(children) == 2, lines
    return children


def server_ports() -> list[str]:
    gateway_port, grpc_port, rest_port = free_ports(3)
    return ["--port", str(gateway_port), "--grpc-port", str(grpc_port), "--rest-port", str(rest_port)]


@pytest.mark.slow
@pytest.mark.parametrize("stop_with", ["SIGTERM twice", "SIGHUP"])
def test_rerun_skips_every_step_and_serves_until_stopped(state: dict[str, Any], stop_with: str) -> None:
    """A second SIGTERM while stopping is ignored (it used to orphan the model server); SIGHUP, a closed
    terminal, stops like SIGTERM (the children have sessions of their own, so it reaches only the pipeline)."""
    ports = server_ports()
    proc = subprocess.Popen(
        [sys.executable, "-m", "textclf", *pipeline_args(state, "--serve", "--try", TRY, *ports)],
        cwd=ROOT,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: list[str] = []
    children: list[int] = []
    try:
        assert proc.stdout is not None

        def read_until(prefix: str) -> None:
            while not lines or not lines[-1].startswith(prefix):
                line = proc.stdout.readline()  # type: ignore[union-attr]
                assert line, f"the pipeline ended before {prefix!r}: {lines}"
                lines.append(line.rstrip("\n"))

        read_until("serving until")
        all_skipped(lines)
        assert f"page: http://127.0.0.1:{ports[1]}/" in lines
        assert "classify: model reviews version 1" in "\n".join(lines)
        assert any(line.endswith(f"\t{TRY}") and line.split()[0] in LABELS for line in lines), lines

        curl = shlex.split(next(line for line in lines if line.startswith("curl ")))
        url, body = curl[curl.index("-s") + 1], curl[curl.index("-d") + 1]
        answer = requests.post(url, data=body.encode(), headers={"Content-Type": "application/json"}, timeout=60)
        assert answer.status_code == 200, answer.text
        assert answer.json()["model"] == "reviews" and answer.json()["results"][0]["label"] in LABELS

        children = child_pids(lines)
        if stop_with == "SIGHUP":
            proc.send_signal(signal.SIGHUP)
        else:
            proc.send_signal(signal.SIGTERM)
            read_until("stopping the servers")
            proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0
        assert not process_groups_alive(children)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for group in children:  # left behind only when the test failed
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
    assert versions(state) == ["1"]


@pytest.mark.slow
def test_try_without_serve_classifies_then_stops_and_workers_change_nothing(state: dict[str, Any]) -> None:
    """`make demo`'s path; prep's --workers changes how prep runs, not what it makes."""
    lines = run_ok(state, "--workers", "2", "--try", TRY, *server_ports())
    all_skipped(lines)
    assert "classify: model reviews version 1" in "\n".join(lines)
    assert any(line.endswith(f"\t{TRY}") and line.split()[0] in LABELS for line in lines), lines
    assert lines[-1] == "stopped the model server and the gateway", lines
    assert not process_groups_alive(child_pids(lines))


def process_groups_alive(groups: list[int]) -> list[int]:
    """Pids of live processes in these process groups (the servers and whatever they forked)."""
    alive = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) in groups and fields[0] != "Z":
                alive.append(int(entry))
    return alive


@pytest.mark.slow
def test_a_config_file_and_its_content_retrain_but_keep_prep(state: dict[str, Any], tmp_path: Path) -> None:
    config = tmp_path / "train.yaml"
    config.write_text("lstm_units: 4\n", encoding="utf-8")
    lines = run_ok(state, "--config", str(config), "--tolerance", "1")
    assert step_line(lines, "prep") == "prep: skipped (unchanged)"
    assert changed(step_line(lines, "train")) - {"code"} == {"files", "flags"}, lines
    assert step_line(lines, "evaluate").endswith("(written by train)"), lines
    assert versions(state) == ["1", "2"]

    kept = config.stat()
    config.write_text("lstm_units: 5\n", encoding="utf-8")  # same size; same time, below
    os.utime(config, ns=(kept.st_atime_ns, kept.st_mtime_ns))
    lines = run_ok(state, "--config", str(config), "--tolerance", "1")
    assert step_line(lines, "prep") == "prep: skipped (unchanged)"
    # `code` joins in only when tfmodels' sources were edited meanwhile (a developer at work)
    assert changed(step_line(lines, "train")) - {"code"} == {"files"}, lines
    assert versions(state) == ["1", "2", "3"]


def changed(line: str) -> set[str]:
    """The inputs a step line says changed."""
    assert "(changed: " in line, line
    return set(line.rsplit("(changed: ", 1)[1].rstrip(")").split(", "))


@pytest.mark.slow
def test_data_change_redoes_every_step(state: dict[str, Any]) -> None:
    """The gate re-scores version 1 on the new test split: it may pass, or refuse with one line, and then the
    same command with --force only exports."""
    write_corpus(state["corpus"], 420, seed=8)
    done = textclf(*pipeline_args(state), timeout=900)
    lines = done.stdout.splitlines()
    assert step_line(lines, "prep").endswith("(changed: data_hash)"), lines
    assert step_line(lines, "train").endswith("(changed: prep)"), lines
    assert step_line(lines, "export").endswith("(changed: evaluate)"), lines
    if done.returncode != 0:
        one_error_line(done, "export refused by the gate")
        assert "--force" in done.stderr and versions(state) == ["1"]
        lines = run_ok(state, "--force")
        for step in ("prep", "train", "evaluate"):
            assert step_line(lines, step).startswith(f"{step}: skipped (unchanged)"), lines
    assert f"export: published {state['models'] / 'reviews' / '2'}" in lines
    assert versions(state) == ["1", "2"]
