"""serving/nginx/nginx.conf, compose's front of the gateway, run with a real nginx (Debian's; .ci/run installs
it) on loopback in front of a real gateway under gunicorn: the file is valid (`nginx -t`), slow clients cost
nginx a file descriptor while normal requests keep being answered even with stock gthread workers behind it,
X-Request-ID passes through, and what nginx rejects itself comes back as JSON in the gateway's error format.

Only the rendering differs from compose: loopback ports instead of 8080 and the `gateway` host, runtime files
under pytest's tmp folder instead of /tmp, and `user root` when the test runs as root (nginx's workers would
otherwise run as nobody, who cannot enter that folder).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bench.processes import free_port, running
from serving.gateway.errors import CODES
from tests.support.raw_http import FRONT_ERRORS, MALFORMED, classify_request, exchange, slow_clients
from tests.support.servers import MODEL, gateway, model_server, publish_tiny_version

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "serving" / "nginx" / "nginx.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
BODY = json.dumps({"model": MODEL, "texts": ["看足球"]}).encode()

pytestmark = pytest.mark.skipif(
    not os.path.exists(NGINX) and not os.environ.get("CI"), reason="nginx is not installed (.ci/run installs it)"
)

EXPECTED = {**FRONT_ERRORS, "Transfer-Encoding: gzip": (501, "not_implemented")}  # nginx's word for it


def render(folder: Path, port: int, upstream: str) -> Path:
    """nginx.conf as compose runs it, but on loopback `port`, toward `upstream`, with its files in `folder`."""
    text = CONF.read_text()
    for old, new in [
        ("/tmp/nginx", f"{folder}/nginx"),
        ("server gateway:8080;", f"server {upstream};"),
        ("listen 8080 default_server;", f"listen 127.0.0.1:{port} default_server;"),
        ("listen [::]:8080 default_server;\n", ""),
    ]:
        assert old in text, old
        text = text.replace(old, new)
    conf = folder / "nginx.conf"
    conf.write_text(("user root;\n" if os.geteuid() == 0 else "") + text)
    return conf


def nginx(conf: Path, *args: str) -> list[str]:
    return [NGINX, "-p", str(conf.parent), "-e", "stderr", "-c", str(conf), *args]


def test_nginx_conf_is_valid(tmp_path):
    done = subprocess.run(nginx(render(tmp_path, free_port(), "127.0.0.1:1"), "-t"), capture_output=True, text=True)
    assert done.returncode == 0 and "test is successful" in done.stderr, done.stderr


@pytest.fixture(scope="module")
def front(tmp_path_factory) -> Iterator[str]:
    """nginx on loopback in front of the gateway under stock gthread workers (2 x 4 threads): nginx alone holds."""
    tmp = tmp_path_factory.mktemp("nginx-front")
    publish_tiny_version(tmp / "models", 1)
    with pytest.MonkeyPatch.context() as env, model_server(tmp / "models", tmp) as server:
        env.setenv("GUNICORN_WORKER_CLASS", "gthread")  # what gunicorn ships, without buffering_worker.py
        with gateway(server.grpc_port, tmp, workers=2, threads=4) as gw:
            port = free_port()
            conf = render(tmp, port, f"127.0.0.1:{gw.port}")
            url = f"http://127.0.0.1:{port}"

            def ready() -> bool:
                return requests.get(url + "/readyz", timeout=2).status_code == 200

            with running(nginx(conf, "-g", "daemon off;"), tmp / "nginx.log", ready, what="nginx", timeout_s=30):
                yield url


def classify(url: str, request_id: str) -> requests.Response:
    return requests.post(
        url + "/v1/classify",
        data=BODY,
        headers={"X-Request-ID": request_id, "Content-Type": "application/json"},
        timeout=1,
    )


@pytest.mark.slow
def test_slow_clients_cost_nginx_a_descriptor_not_a_gateway_thread(front):
    port = int(front.rsplit(":", 1)[1])
    with slow_clients(port, idle=200, trickling=50, body=BODY) as clients:
        for index in range(10):
            answer = classify(front, f"through-nginx-{index}")  # ReadTimeout past 1 s
            assert answer.status_code == 200 and answer.headers["X-Request-ID"] == f"through-nginx-{index}"
        clients.stop_trickling()
        finished = clients.finish(0)
        assert finished.status == 200 and finished.headers["x-request-id"] == "trickle-0"


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_what_nginx_rejects_is_json_with_a_request_id(front, case):
    answer = exchange(int(front.rsplit(":", 1)[1]), MALFORMED[case])
    status, code = EXPECTED[case]
    assert (answer.status, answer.json()["error"]["code"]) == (status, code), answer
    assert CODES[code] == status and answer.headers["content-type"] == "application/json"
    assert len(answer.headers["x-request-id"]) == 32


@pytest.mark.slow
def test_a_body_past_the_gateways_limit_is_413_from_nginx(front):
    body = b"x" * (2 * 1024 * 1024 + 1)
    answer = exchange(int(front.rsplit(":", 1)[1]), classify_request(body, "too-big") + body)
    assert (answer.status, answer.json()["error"]["code"]) == (413, "body_too_large")
    assert answer.headers["x-request-id"] == "too-big"
