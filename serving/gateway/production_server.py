"""`textclf serve`: the gateway under gunicorn in this process, configured as the Docker image runs it.

gunicorn.conf.py (workers, threads, timeouts, the metrics hooks, and buffering_worker.py's worker, which
reads each request whole before a thread takes it, so a slow client costs a file descriptor, not a thread)
is read as the `gunicorn -c` of serving/Dockerfile reads it; the CLI's flags go on top. The app is built
from the GatewayConfig the CLI parsed, in each worker after fork (no preload: gRPC channels must not cross a
fork), so every worker serves with exactly the settings that were checked at start-up. gunicorn's arbiter
owns the signals: SIGTERM and Ctrl-C stop the workers gracefully and the process exits 0.
"""

from __future__ import annotations

import contextlib
import logging
import os
import runpy
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gunicorn.app.base import BaseApplication

from data_prep.processes import check_bindable

if TYPE_CHECKING:  # imported for real only after the metrics folder is set (config.py pulls in prometheus_client)
    from flask import Flask

    from serving.gateway.config import GatewayConfig

GUNICORN_CONF = Path(__file__).with_name("gunicorn.conf.py")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LOG_FORMAT = "%(asctime)s %(levelname)s %(process)d %(name)s %(message)s"


def configure_logging(log_requests: bool) -> None:
    """The app logs one INFO line per request; WARNING drops it (it costs CPU under load), errors still log."""
    logging.basicConfig(level=logging.INFO if log_requests else logging.WARNING, format=LOG_FORMAT)


@contextlib.contextmanager
def multiprocess_metrics_dir() -> Iterator[str]:
    """PROMETHEUS_MULTIPROC_DIR for the workers, so /metrics sums them all: the user's own if set, else a temp
    folder removed on the way out. Enter it before anything imports prometheus_client, which reads the
    variable once at import."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        yield given
        return
    owner = os.getpid()
    directory = tempfile.mkdtemp(prefix="textclf-metrics-")
    os.environ[MULTIPROC_ENV] = directory
    try:
        yield directory
    finally:
        # a forked worker leaves gunicorn through here too (SystemExit): only the master cleans up
        if os.getpid() == owner:
            os.environ.pop(MULTIPROC_ENV, None)
            shutil.rmtree(directory, ignore_errors=True)


class GatewayServer(BaseApplication):
    """gunicorn's arbiter over gateway apps built from one GatewayConfig."""

    def __init__(self, config: GatewayConfig, settings: dict[str, Any]) -> None:
        self.config = config  # a GatewayConfig, built and checked by the CLI before any worker starts
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        """gunicorn.conf.py first (as `gunicorn -c` reads it, GUNICORN_* included), then the CLI's settings."""
        from_file = runpy.run_path(str(GUNICORN_CONF))
        for name, value in {**from_file, **self.settings}.items():
            if name in self.cfg.settings:
                self.cfg.set(name, value)

    def load(self) -> Flask:
        from serving.gateway.app import create_app

        return create_app(self.config)


def run(config: GatewayConfig, *, host: str, port: int, workers: int | None, threads: int | None) -> None:
    """Serve until SIGTERM or Ctrl-C; gunicorn exits the process (0 on a clean stop)."""
    check_bindable(host, port)
    settings: dict[str, Any] = {"bind": [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]}
    if workers is not None:
        settings["workers"] = workers
    if threads is not None:
        settings["threads"] = threads
    GatewayServer(config, settings).run()
