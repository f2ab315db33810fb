"""`textclf pipeline`, run as a user runs it (a subprocess, real jieba, real training, real servers): end to
end into a model base; a rerun skips every step; a train flag change retrains but keeps prep; a data change
redoes everything and the gate refuses until --force; --serve answers over the printed curl line and
SIGTERM stops every child. Bad input is one line."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from bench.processes import free_ports
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


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The first run: every step runs, version 1 is published."""
    tmp = tmp_path_factory.mktemp("workflow")
    state: dict[str, Any] = {"corpus": write_corpus(tmp / "reviews.tsv", 400), "models": tmp / "models"}
    state["work"] = tmp / "work"
    state["lines"] = run_ok(state)
    return state


@pytest.mark.slow
def test_first_run_prepares_trains_evaluates_and_publishes(first: dict[str, Any]) -> None:
    lines = first["lines"]
    for step in ("prep", "train", "export"):
        assert step_line(lines, step).endswith("(new)"), lines
    assert "test accuracy" in step_line(lines, "evaluate")
    assert f"export: published {first['models'] / 'reviews' / '1'}" in lines
    assert versions(first) == ["1"]
    assert (first["work"] / "prepared" / "meta.json").is_file() and (first["work"] / "run" / "model").exists()


@pytest.mark.slow
def test_rerun_skips_every_step_and_serves_until_sigterm(first: dict[str, Any]) -> None:
    gateway_port, grpc_port, rest_port = free_ports(3)
    ports = ["--port", str(gateway_port), "--grpc-port", str(grpc_port), "--rest-port", str(rest_port)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "textclf", *pipeline_args(first, "--serve", "--try", TRY, *ports)],
        cwd=ROOT,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        while not lines or not lines[-1].startswith("serving until"):
            line = proc.stdout.readline()
            assert line, f"the pipeline ended before serving: {lines}"
            lines.append(line.rstrip("\n"))
        for step in ("prep", "train", "evaluate", "export"):
            assert step_line(lines, step).startswith(f"{step}: skipped (unchanged)"), lines
        assert f"page: http://127.0.0.1:{gateway_port}/" in lines
        assert "classify: model reviews version 1" in "\n".join(lines)
        assert any(line.endswith(f"\t{TRY}") and line.split()[0] in LABELS for line in lines), lines

        curl = shlex.split(next(line for line in lines if line.startswith("curl ")))
        url, body = curl[curl.index("-s") + 1], curl[curl.index("-d") + 1]
        answer = requests.post(url, data=body.encode(), headers={"Content-Type": "application/json"}, timeout=60)
        assert answer.status_code == 200, answer.text
        assert answer.json()["model"] == "reviews" and answer.json()["results"][0]["label"] in LABELS

        children = [int(line.split("pid ")[1].split(",")[0]) for line in lines if ": starting, pid " in line]
        assert len(children) == 2, lines
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0
        assert not process_groups_alive(children)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert versions(first) == ["1"]


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
def test_train_flag_change_retrains_but_keeps_prep(first: dict[str, Any]) -> None:
    lines = run_ok(first, "--lstm-units", "4", "--tolerance", "1")
    assert step_line(lines, "prep") == "prep: skipped (unchanged)"
    assert step_line(lines, "train").endswith("(changed: flags)"), lines
    assert step_line(lines, "evaluate").endswith("(written by train)"), lines
    assert versions(first) == ["1", "2"]


@pytest.mark.slow
def test_data_change_redoes_every_step_and_the_gate_asks_for_force(first: dict[str, Any]) -> None:
    write_corpus(first["corpus"], 420, seed=8)
    refused = textclf(*pipeline_args(first, "--lstm-units", "4"), timeout=900)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    lines = refused.stdout.splitlines()
    assert step_line(lines, "prep").endswith("(changed: data_hash)"), lines
    assert step_line(lines, "train").endswith("(changed: prep)"), lines
    assert step_line(lines, "export").endswith("(changed: evaluate)"), lines
    errors = [line for line in refused.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and "export refused by the gate" in errors[0] and "--force" in errors[0], refused.stderr
    assert "Traceback" not in refused.stderr
    assert versions(first) == ["1", "2"]

    lines = run_ok(first, "--lstm-units", "4", "--force")
    for step in ("prep", "train", "evaluate"):
        assert step_line(lines, step).startswith(f"{step}: skipped (unchanged)"), lines
    assert f"export: published {first['models'] / 'reviews' / '3'}" in lines
