"""gunicorn settings for the gateway; each can be overridden by GUNICORN_* env vars set in compose.

Workers are processes (each with its own keep-alive pool / gRPC channel and circuit breaker); threads
let one worker overlap requests that wait on TF Serving, and only requests a worker holds at once can be
coalesced into one TF Serving call, so give it about a thread per concurrent client (idle threads cost
only memory; docs/benchmarks.md has the measurements). The app is created per worker (no preload), so
gRPC channels are never shared across fork. /metrics sums the workers through PROMETHEUS_MULTIPROC_DIR: the
Docker image sets it, `textclf serve` makes a temporary one, and this file makes one when neither did (plain
`gunicorn -c`), so the same counter never reads differently depending on which worker answers.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gunicorn.arbiter import Arbiter
    from gunicorn.workers.base import Worker

# read by the master before any worker imports prometheus_client (no preload), so every worker writes there
_made_metrics_dir = ""
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _made_metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="textclf-metrics-")

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8080")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "32"))
# gthread, but a request is read whole in the event loop before a thread takes it: a slow client costs a
# file descriptor, not a thread (buffering_worker.py)
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "serving.gateway.buffering_worker.BufferingWorker")
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
accesslog = None  # the app logs one line per request, with its request id
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")
# no gunicornc control socket: its default path ($XDG_RUNTIME_DIR or ~/.gunicorn/gunicorn.ctl) is one per user,
# which several gateways on one host (tests, `textclf serve` beside the image) would fight over
control_socket_disable = True


def child_exit(server: Arbiter, worker: Worker) -> None:
    """Drop a dead worker's live gauges from the multiprocess metrics directory."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def on_starting(server: Arbiter) -> None:
    """Start every run with an empty multiprocess metrics directory (stale files would be summed)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory, exist_ok=True)


def on_exit(server: Arbiter) -> None:
    """Remove the metrics directory this file made (one given from outside is its owner's)."""
    if _made_metrics_dir:
        shutil.rmtree(_made_metrics_dir, ignore_errors=True)
