"""Run the real `textclf` CLI in a subprocess, as a user would.

Training runs in a subprocess because TEXTCLF_CPU_DEVICES must split the CPU before TF initialises, and
so a test can kill it mid-epoch.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from bench.processes import REPO as ROOT
from bench.processes import child_env


def cli_env(**extra: str) -> dict[str, str]:
    """The CLI's environment on CPU: no logical-device split unless a test asks for one."""
    env = child_env(CUDA_VISIBLE_DEVICES="")
    env.pop("TEXTCLF_CPU_DEVICES", None)
    return {**env, **extra}


def textclf(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `textclf ARGS` as a user would, capturing output."""
    return subprocess.run(
        [sys.executable, "-m", "textclf", *args],
        cwd=ROOT,
        env=env or cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def wait_for_second_epoch_backup(run: Path, training: subprocess.Popen, timeout_s: float = 300) -> bool:
    """Poll RUN's BackupAndRestore metadata until it holds a backup taken in the second epoch (True), or the
    training ends or `timeout_s` passes (False): the moment the resume tests kill a training mid-epoch."""
    backup = run / "backup" / "training_metadata.json"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and training.poll() is None:
        if backup.is_file() and json.loads(backup.read_text() or "{}").get("epoch", 0) >= 1:
            return True
        time.sleep(0.2)
    return False
