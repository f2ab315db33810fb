"""/metrics sums every gunicorn worker's counters however the gateway is started: a counter read again and again
(each read on a new connection, answered by whichever worker takes it) always shows every request once.

`textclf serve` makes a temporary PROMETHEUS_MULTIPROC_DIR; plain `gunicorn -c serving/gateway/gunicorn.conf.py`
without one (as the README shows it) gets one from gunicorn.conf.py. Without it each worker served its own
count (the same counter read 23,558 then 40,813).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from bench.processes import VENV_BIN, child_env, free_port, running
from tests.support.serve_process import serving

GUNICORN_CONF = Path(__file__).resolve().parents[3] / "serving" / "gateway" / "gunicorn.conf.py"
SENT = 40
READS = 8


def classify_count(url: str) -> float:
    """textclf_gateway_requests_total of answered classify requests, as one /metrics read reports it."""
    text = requests.get(url + "/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "textclf_gateway_requests_total"
        and sample.labels.get("route") == "/v1/classify"
        and sample.labels.get("status") == "200"
    )


@contextlib.contextmanager
def plain_gunicorn(model_server, tmp: Path) -> Iterator[str]:
    """`gunicorn -c gunicorn.conf.py serving.gateway.wsgi:app`, two workers, no PROMETHEUS_MULTIPROC_DIR given."""
    port = free_port()
    env = child_env(
        TEXTCLF_TFSERVING_GRPC=model_server.grpc_target,
        TEXTCLF_MODELS="news",
        TEXTCLF_LOG_LEVEL="WARNING",
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_WORKERS="2",
        GUNICORN_THREADS="4",
        TMPDIR=str(tmp),
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    url = f"http://127.0.0.1:{port}"
    cmd = [str(VENV_BIN / "gunicorn"), "-c", str(GUNICORN_CONF), "serving.gateway.wsgi:app"]

    def ready() -> bool:
        return requests.get(url + "/readyz", timeout=2).status_code == 200

    with running(cmd, tmp / "gunicorn.log", ready, env=env, what="gunicorn", timeout_s=60):
        yield url


@contextlib.contextmanager
def textclf_serve(model_server, tmp: Path) -> Iterator[str]:
    with serving(model_server, tmp, "--workers", "2", "--threads", "4") as served:
        yield served.url


@pytest.mark.slow
@pytest.mark.parametrize("launch", [textclf_serve, plain_gunicorn], ids=["textclf serve", "plain gunicorn"])
def test_a_counter_read_again_and_again_counts_every_workers_requests(model_server, tmp_path, launch):
    with launch(model_server, tmp_path) as url:
        post = lambda i: requests.post(url + "/v1/classify", json={"model": "news", "texts": ["看足球"]}, timeout=10)  # noqa: E731
        with ThreadPoolExecutor(8) as pool:  # concurrent new connections: both workers answer some
            assert {answer.status_code for answer in pool.map(post, range(SENT))} == {200}
        assert [classify_count(url) for _ in range(READS)] == [float(SENT)] * READS
    assert list(tmp_path.glob("**/textclf-metrics-*")) == []  # the folder made for the run is gone with it
