"""The gateway under gunicorn (serving/gateway/gunicorn.conf.py, as production runs it) on a free loopback
port, configured by TEXTCLF_* variables, for tests that need a real HTTP server in front of the app
(chunked bodies, schemathesis). Ready once /healthz answers: TF Serving may be absent on purpose."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import requests

from bench.processes import VENV_BIN, child_env, free_port, running
from tests.support.servers import GUNICORN_CONF


@contextlib.contextmanager
def gunicorn_gateway(log: Path, *, workers: int = 1, threads: int = 4, **textclf: str) -> Iterator[str]:
    """Yields the base URL; `textclf` are TEXTCLF_* settings by lower-case name, e.g. models="news"."""
    port = free_port()
    env = child_env(
        **{f"TEXTCLF_{name.upper()}": value for name, value in textclf.items()},
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_WORKERS=str(workers),
        GUNICORN_THREADS=str(threads),
        GUNICORN_LOGLEVEL="warning",
    )
    url = f"http://127.0.0.1:{port}"
    cmd = [str(VENV_BIN / "gunicorn"), "-c", str(GUNICORN_CONF), "serving.gateway.wsgi:app"]
    with running(cmd, log, lambda: requests.get(f"{url}/healthz", timeout=2).ok, env=env, what="gateway"):
        yield url
