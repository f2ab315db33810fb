"""Multi-worker training through `textclf launch`: real worker processes on loopback, the chief's run folder,
agreement with one worker, and recovery from a worker killed mid-epoch. Launch's process handling is
tested on tiny Python children (no TensorFlow), so its failure paths stay fast."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.support.cli import ROOT, cli_env, textclf, wait_for_second_epoch_backup
from tests.support.corpus import SMALL
from tfmodels.launch import free_ports, run_workers, tf_configs

# 7 steps of global batch 32 per epoch, one padded shape (a single trace of the step on each worker)
TRAIN = ["train", "lstm", *SMALL, "--pad-to-max", "--max-len", "16", "--max-train-examples", "200"]
CHILD_ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_tf_configs_name_one_cluster_and_each_worker_once() -> None:
    ports = free_ports(3)
    configs = [json.loads(c) for c in tf_configs(ports)]
    assert len(set(ports)) == 3
    assert all(c["cluster"] == {"worker": [f"127.0.0.1:{p}" for p in ports]} for c in configs)
    assert [c["task"] for c in configs] == [{"type": "worker", "index": i} for i in range(3)]


def test_all_workers_succeeding_is_success_and_output_is_prefixed(capsys: pytest.CaptureFixture[str]) -> None:
    code, reason = run_workers([python("print('hello')"), python("print('world')")], [CHILD_ENV] * 2)
    assert (code, reason) == (0, "")
    out = capsys.readouterr().out.splitlines()
    assert "[w0] hello" in out and "[w1] world" in out


def test_one_failing_worker_stops_the_others(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pid_file = tmp_path / "sleeper.pid"
    sleeper = python(f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(600)")
    failing = python(
        f"import os, sys, time\nwhile not os.path.exists({str(pid_file)!r}): time.sleep(0.05)\n"
        "print('giving up'); sys.exit(3)"
    )
    code, reason = run_workers([sleeper, failing], [CHILD_ENV] * 2)
    assert code == 3 and reason == "worker 1 exited with 3; stopped the others"
    assert not alive(int(pid_file.read_text()))
    assert "[w1] giving up" in capsys.readouterr().out


def test_a_worker_killed_by_a_signal_fails_the_launch() -> None:
    code, reason = run_workers([python("import os, signal; os.kill(os.getpid(), signal.SIGKILL)")], [CHILD_ENV])
    assert code == 128 + signal.SIGKILL and reason.startswith("worker 0 was killed by SIGKILL")


def test_ctrl_c_is_passed_on_to_every_worker(tmp_path: Path) -> None:
    """SIGINT to launch (workers have sessions of their own, so it reaches them only through launch)."""
    pids = [tmp_path / f"w{i}.pid" for i in range(2)]
    sleepers = [
        python(f"import os, time; open({str(p)!r}, 'w').write(str(os.getpid())); time.sleep(600)") for p in pids
    ]
    launcher = subprocess.Popen(
        python(
            f"import sys; from tfmodels.launch import run_workers; sys.exit(run_workers({sleepers!r}, [{{}}, {{}}])[0])"
        ),
        cwd=ROOT,
        env=cli_env(),
    )
    try:
        deadline = time.monotonic() + 60
        while not all(p.is_file() and p.read_text() for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        launcher.send_signal(signal.SIGINT)
        assert launcher.wait(timeout=60) == 128 + signal.SIGINT
    finally:
        launcher.kill()
    assert not any(alive(int(p.read_text())) for p in pids)


def test_launch_refuses_a_command_that_is_not_multiworker(tmp_path: Path) -> None:
    result = textclf("launch", "--workers", "2", "--", *TRAIN, "--data", str(tmp_path), "--out", str(tmp_path / "r"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: launch runs one training on several workers: add `--strategy multiworker` to the command "
        "(without it each worker would train alone into the same run folder)"
    ]


def test_launch_does_not_import_tensorflow() -> None:
    out = subprocess.run(
        python("import sys, tfmodels.launch; print('tensorflow' in sys.modules)"),
        cwd=ROOT,
        env=cli_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "False"


def history(run: Path) -> list[dict[str, float]]:
    with (run / "history.csv").open() as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


@pytest.mark.slow
def test_two_workers_leave_one_run_folder_that_matches_one_worker(prepared: Path, tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"  # the workers' TMPDIR: where the non-chief keeps its temporary folder
    scratch.mkdir()
    two, one = tmp_path / "two", tmp_path / "one"
    common = [*TRAIN, "--data", str(prepared)]
    launched = textclf(
        "launch",
        "--workers",
        "2",
        "--",
        *common,
        "--out",
        str(two),
        "--strategy",
        "multiworker",
        "--batch-size",
        "16",
        env=cli_env(TMPDIR=str(scratch)),
    )
    assert launched.returncode == 0, launched.stdout + launched.stderr
    lines = launched.stdout.splitlines()
    assert f"[w0] fresh start: {two}" in lines
    assert f"[w1] fresh start: {two} (worker 1; the chief writes the run folder)" in lines
    assert any(
        line.startswith("[w0] lstm: 200 train examples") and "global batch 32, 2 workers" in line for line in lines
    )
    assert any(line.startswith(f"[w0] trained lstm -> {two}: test accuracy") for line in lines)
    assert list(scratch.iterdir()) == []  # worker 1 removed its folder

    single = textclf(*common, "--out", str(one), "--strategy", "default", "--batch-size", "32")
    assert single.returncode == 0, single.stdout + single.stderr
    # the chief's run folder holds what a one-worker run writes, file for file (the backup is gone in both)
    assert sorted(p.relative_to(two).parts[:2] for p in two.rglob("*") if p.is_file()) == sorted(
        p.relative_to(one).parts[:2] for p in one.rglob("*") if p.is_file()
    )
    assert not (two / "backup").exists()
    assert (two / "model" / "vocab.txt").read_text() == (one / "model" / "vocab.txt").read_text()
    assert json.loads((two / "config.json").read_text())["strategy"] == "multiworker"
    # same global batches (DATA sharding splits each one between the workers), so the same curve up to dropout
    # randomness and float order: losses within 0.03 each epoch (they move by ~0.14 per epoch here)
    h2, h1 = history(two), history(one)
    assert [r["epoch"] for r in h2] == [r["epoch"] for r in h1] == [0, 1]
    for a, b in zip(h2, h1, strict=True):
        assert abs(a["loss"] - b["loss"]) < 0.03 and abs(a["val_loss"] - b["val_loss"]) < 0.03, (h2, h1)


def worker_pid(tag: str, index: int) -> int | None:
    """The pid of the launched worker `index` whose environment carries `tag`."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = dict(v.split(b"=", 1) for v in (entry / "environ").read_bytes().split(b"\0") if b"=" in v)
        except OSError:
            continue
        if env.get(b"TEXTCLF_TEST_TAG") == tag.encode() and b"TF_CONFIG" in env:
            if json.loads(env[b"TF_CONFIG"])["task"]["index"] == index:
                return int(entry.name)
    return None


@pytest.mark.slow
def test_a_killed_worker_stops_launch_and_the_same_command_resumes(prepared: Path, tmp_path: Path) -> None:
    run, tag = tmp_path / "run", uuid.uuid4().hex
    command = [
        sys.executable,
        "-m",
        "textclf",
        "launch",
        "--workers",
        "2",
        "--",
        *TRAIN,
        "--data",
        str(prepared),
        "--out",
        str(run),
        "--strategy",
        "multiworker",
        "--batch-size",
        "16",
        "--epochs",
        "3",
        "--backup-every-steps",
        "2",
        "--patience",
        "9",
    ]
    env = cli_env(TEXTCLF_TEST_TAG=tag)
    with (tmp_path / "first.log").open("w") as log:
        first = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            in_second_epoch = wait_for_second_epoch_backup(run, first)  # then kill a worker mid-epoch
            pid = worker_pid(tag, 1)
            assert first.poll() is None and pid, "training ended first:\n" + (tmp_path / "first.log").read_text()
            assert in_second_epoch, "no backup of the second epoch within 300 s"
            os.kill(pid, signal.SIGKILL)
            assert first.wait(timeout=120) != 0
        finally:
            first.kill()
            first.wait()
    output = (tmp_path / "first.log").read_text()
    assert "Error: worker 1 was killed by SIGKILL; stopped the others" in output
    assert not (run / "model").exists() and (run / "backup" / "training_metadata.json").is_file()

    second = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    lines = second.stdout.splitlines()
    assert any(line.startswith(f"[w0] resume: {run} from epoch 2") for line in lines), second.stdout
    assert any(line.startswith(f"[w1] resume: {run} from epoch 2") for line in lines), second.stdout
    assert [int(r["epoch"]) for r in history(run)] == [0, 1, 2]  # epoch 0 before the kill, 1 and 2 after
    assert (run / "report" / "metrics.json").is_file() and not (run / "backup").exists()
