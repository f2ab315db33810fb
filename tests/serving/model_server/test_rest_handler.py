"""The REST front end in process, over a real loopback socket, on a server with no models: what holds before any
model is asked (read timeouts) and how errors that are not the client's are reported."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from serving.model_server.dataplane import DataPlane
from serving.model_server.inference import Inference
from serving.model_server.monitoring import Metrics
from serving.model_server.repository import ModelRepository
from serving.model_server.rest import RestApi, RestServer, make_rest_server
from serving.model_server.servable import Servable


def no_loads(name: str, version: int, path: Path) -> Servable:
    raise AssertionError("no model is configured")


@pytest.fixture
def rest() -> Iterator[tuple[RestServer, DataPlane]]:
    plane = DataPlane(ModelRepository(no_loads), Inference(Metrics()))
    server = make_rest_server(RestApi(plane, 0), "127.0.0.1", 0, None, max_body=100_000_000, read_timeout_s=0.5)
    assert server is not None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, plane
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    "sent",
    [
        b'POST /v1/models/m:predict HTTP/1.1\r\nHost: t\r\nContent-Length: 50000000\r\n\r\n{"inst',  # body stalls
        b"POST /v1/models/m:predict HTTP/1.1\r\nHost: t\r\n",  # the headers never end
        b"",  # a connection that never sends a request
    ],
)
def test_a_stalled_connection_is_closed_after_the_read_timeout(rest, sent):
    server, _ = rest
    with socket.create_connection(server.server_address[:2], timeout=20) as sock:
        sock.sendall(sent)
        assert sock.recv(1) == b""  # closed by the server, not left holding a thread until the client gives up


def test_a_recursion_error_of_the_dataplane_is_internal_not_a_json_error(rest, monkeypatch):
    """The dataplane is made to raise RecursionError: no request provokes one there."""
    server, plane = rest

    def too_deep(*args: object, **kwargs: object) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(plane, "predict", too_deep)
    host, port = server.server_address[:2]
    answer = requests.post(f"http://{host}:{port}/v1/models/m:predict", json={"instances": [1.0]}, timeout=20)
    assert (answer.status_code, answer.json()) == (500, {"error": "maximum recursion depth exceeded"})


@pytest.mark.slow
def test_serve_releases_its_versions_and_threads_when_stopped(tmp_path):
    """serve() in this process (real model, real ports, batching on) until `stop`: afterwards every version is
    retired with its session closed, and no poll or batch thread is left."""
    from bench.processes import free_ports, wait_until
    from serving.model_server import server as server_module
    from serving.model_server.flags import parse_flags
    from tests.support.half_plus_two import export_half_plus_two

    export_half_plus_two(tmp_path / "half", "1", warmup=False)
    grpc_port, rest_port = free_ports(2)
    flags = [
        "--model_name=half",
        f"--model_base_path={tmp_path / 'half'}",
        f"--port={grpc_port}",
        f"--rest_api_port={rest_port}",
        "--enable_batching",
        "--file_system_poll_wait_seconds=1",
    ]
    built: list[DataPlane] = []
    build = server_module.build

    def recorded(options):  # the dataplane serve() builds, to look at afterwards
        plane, metrics_path = build(options)
        built.append(plane)
        return plane, metrics_path

    stop = threading.Event()
    before = set(threading.enumerate())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(server_module, "build", recorded)
        serving = threading.Thread(target=server_module.serve, args=(*parse_flags(flags), stop))
        serving.start()
        url = f"http://127.0.0.1:{rest_port}/v1/models/half:predict"
        wait_until(lambda: requests.post(url, json={"instances": [1.0]}, timeout=5).ok, timeout_s=120)
        held = built[0].repository.serving_map("half").versions[1]  # type: ignore[union-attr]
        stop.set()
        serving.join(60)
    assert not serving.is_alive()
    assert built[0].repository.version_states("half")[0][1].state == "END"
    assert held.bundle is None and not held.try_acquire()
    left = [t.name for t in set(threading.enumerate()) - before if t.is_alive()]
    assert not [name for name in left if name == "fs-poll" or name.startswith("batch-")], left
