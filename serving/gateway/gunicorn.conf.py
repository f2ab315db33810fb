"""gunicorn settings for the gateway; each can be overridden by GUNICORN_* env vars set in compose.

Workers are processes (each with its own keep-alive pool / gRPC channel and circuit breaker); threads
let one worker overlap requests that wait on TF Serving, and only requests a worker holds at once can be
coalesced into one TF Serving call, so give it about a thread per concurrent client (idle threads cost
only memory; docs/benchmarks.md has the measurements). The app is created per worker (no preload), so
gRPC channels are never shared across fork. With several workers set PROMETHEUS_MULTIPROC_DIR.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gunicorn.arbiter import Arbiter
    from gunicorn.workers.base import Worker

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8080")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "32"))
worker_class = "gthread"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
accesslog = None  # the app logs one line per request, with its request id
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")


def child_exit(server: Arbiter, worker: Worker) -> None:
    """Drop a dead worker's live gauges from the multiprocess metrics directory."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def on_starting(server: Arbiter) -> None:
    """Start every run with an empty multiprocess metrics directory (stale files would be summed)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        import shutil

        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory, exist_ok=True)
