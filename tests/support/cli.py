"""Run the real `textclf` CLI in a subprocess, as a user would.

Training runs in a subprocess because TEXTCLF_CPU_DEVICES must split the CPU before TF initialises, and
so a test can kill it mid-epoch.
"""

from __future__ import annotations

import subprocess
import sys

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
