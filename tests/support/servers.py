"""Real servers for drills and fuzzing: tiny model versions published atomically, the local model server
and the gateway (under gunicorn) as subprocesses on free loopback ports, always stopped on the way out.

The tiny SavedModels come from tests/support/tiny_models.py (one copy of that builder); the
process plumbing from bench/processes.py (one copy of start / wait / stop).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

from bench.processes import VENV_BIN, child_env, free_port, running, start, stop, wait_until
from tests.support import tiny_models

MODEL = "tiny"
GUNICORN_CONF = Path(__file__).resolve().parents[2] / "serving" / "gateway" / "gunicorn.conf.py"

__all__ = [
    "MODEL",
    "ModelServer",
    "Gateway",
    "publish_tiny_version",
    "model_server",
    "gateway",
    "version_states",
    "free_port",
    "start",
    "stop",
    "wait_until",
    "child_env",
]


def publish_tiny_version(base: Path, version: int, *, bias: int = -1, input_name: str = "tokens") -> Path:
    """MODEL_BASE/NAME/VERSION written under a '.' temp name beside it, then renamed (Contract 2)."""
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{version}.", suffix=".tmp", dir=base))
    try:
        os.rmdir(tmp)  # tf.saved_model.save creates the folder itself
        tiny_models.build(tmp, input_name, bias=bias)
        os.replace(tmp, base / str(version))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return base / str(version)


@dataclass
class ModelServer:
    grpc_port: int
    rest_port: int
    log: Path
    proc: subprocess.Popen | None = None

    @property
    def rest(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"


def version_states(server: ModelServer, model: str = MODEL) -> dict[int, str]:
    """version -> state from the REST status API (TF Serving renders versions as strings)."""
    answer = requests.get(f"{server.rest}/v1/models/{model}", timeout=5).json()
    return {int(v["version"]): v["state"] for v in answer.get("model_version_status", [])}


def model_server_cmd(base: Path, grpc_port: int, rest_port: int, *extra: str) -> list[str]:
    return [
        str(VENV_BIN / "textclf"),
        "model-server",
        f"--port={grpc_port}",
        f"--rest_api_port={rest_port}",
        f"--model_name={MODEL}",
        f"--model_base_path={base}",
        "--file_system_poll_wait_seconds=1",
        *extra,
    ]


def model_ready(server: ModelServer):
    return lambda: "AVAILABLE" in version_states(server).values()


@contextlib.contextmanager
def model_server(base: Path, log_dir: Path, *extra: str) -> Iterator[ModelServer]:
    server = ModelServer(free_port(), free_port(), log_dir / "model-server.log")
    with running(
        model_server_cmd(base, server.grpc_port, server.rest_port, *extra),
        server.log,
        model_ready(server),
        what="model server",
        timeout_s=120,
    ) as server.proc:
        yield server


@dataclass
class Gateway:
    port: int
    log: Path
    timeout_s: float

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.contextmanager
def gateway(
    grpc_port: int,
    log_dir: Path,
    *,
    timeout_s: float = 2.0,
    breaker_reset_s: float = 1.0,
    workers: int = 2,
    threads: int = 4,
) -> Iterator[Gateway]:
    """`gunicorn -c serving/gateway/gunicorn.conf.py serving.gateway.wsgi:app`, as production runs it."""
    gw = Gateway(free_port(), log_dir / "gateway.log", timeout_s)
    env = child_env(
        TEXTCLF_TFSERVING_GRPC=f"127.0.0.1:{grpc_port}",
        TEXTCLF_MODELS=MODEL,
        TEXTCLF_UPSTREAM_TIMEOUT_S=str(timeout_s),
        TEXTCLF_BREAKER_RESET_S=str(breaker_reset_s),
        TEXTCLF_BREAKER_FAILURES="3",
        GUNICORN_BIND=f"127.0.0.1:{gw.port}",
        GUNICORN_WORKERS=str(workers),
        GUNICORN_THREADS=str(threads),
        GUNICORN_LOGLEVEL="warning",
    )
    cmd = [str(VENV_BIN / "gunicorn"), "-c", str(GUNICORN_CONF), "serving.gateway.wsgi:app"]
    ready = lambda: requests.get(f"{gw.url}/readyz", timeout=2).status_code == 200
    with running(cmd, gw.log, ready, env=env, what="gateway", timeout_s=60):
        yield gw
