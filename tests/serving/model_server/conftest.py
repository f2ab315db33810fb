"""The local model server as a real subprocess on free loopback ports, killed at teardown."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import requests

from bench.processes import TEXTCLF, free_port, start, stop, wait_until


class ServerProcess:
    """`textclf model-server` with the given flags; `stop()` always ends it (and its process group)."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        self.grpc_port, self.rest_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.rest_port}"
        self.log_path = log_path
        self.proc: subprocess.Popen = start(
            [str(TEXTCLF), "model-server", f"--port={self.grpc_port}", "--rest_api_port", str(self.rest_port), *args],
            log_path,
        )

    def wait_ready(self, model: str, timeout: float = 90) -> None:
        wait_until(
            lambda: requests.get(f"{self.url}/v1/models/{model}", timeout=1).status_code == 200,
            timeout_s=timeout,
            proc=self.proc,
            what="model server",
            log=self.log_path,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop(self.proc)


@pytest.fixture(scope="module")
def start_server(tmp_path_factory):
    """Factory: start a server with the given flags and wait for `model`; every one is killed at teardown."""
    started: list[ServerProcess] = []

    def start_one(args: list[str], model: str) -> ServerProcess:
        server = ServerProcess(args, tmp_path_factory.mktemp("log") / "server.log")
        started.append(server)
        server.wait_ready(model)
        return server

    yield start_one
    for server in started:
        server.stop()
