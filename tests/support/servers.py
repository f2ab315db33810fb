"""Real servers for tests and drills: tiny model versions published atomically, the local model server
and the gateway (under gunicorn) as subprocesses on free loopback ports, always stopped on the way out.

The tiny SavedModels come from tests/support/tiny_models.py (one copy of that builder); the
process plumbing and the ModelServer helper from bench/processes.py (one copy, which the benchmark uses too).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

from bench.processes import VENV_BIN, ModelServer, child_env, free_port, running
from serving.contract import TOKENS_INPUT
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
]


def publish_tiny_version(base: Path, version: int, *, bias: int = -1, input_name: str = TOKENS_INPUT) -> Path:
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


def version_states(server: ModelServer, model: str = MODEL) -> dict[int, str]:
    """version -> state of `model` as the server's REST status API reports it."""
    return server.version_states(model)


def model_server(base: Path, log_dir: Path, *extra: str) -> ModelServer:
    """The model server on MODEL at `base`, polling the folder every second: `with model_server(...) as s:`."""
    flags = [f"--model_name={MODEL}", f"--model_base_path={base}", "--file_system_poll_wait_seconds=1", *extra]
    return ModelServer(flags, log_dir / "model-server.log", models=(MODEL,))


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

    def ready() -> bool:
        return requests.get(f"{gw.url}/readyz", timeout=2).status_code == 200

    with running(cmd, gw.log, ready, env=env, what="gateway", timeout_s=60):
        yield gw
