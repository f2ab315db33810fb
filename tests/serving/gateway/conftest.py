"""Gateway test bed: tiny SavedModels (tiny_models.py), the REAL local model server (`textclf model-server`)
as a subprocess on free loopback ports, and gateway apps pointed at it over REST or gRPC."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bench.processes import TEXTCLF, free_port, start, wait_until
from tests.support.tiny_models import build

MODELS = ("news", "chars")  # news: tokens input, versions 1 (stable) and 2 (canary); chars: text input

MODELS_CONFIG = """model_config_list {{
  config {{
    name: "news" base_path: "{base}/news" model_platform: "tensorflow"
    model_version_policy {{ all {{}} }}
    version_labels {{ key: "stable" value: 1 }}
    version_labels {{ key: "canary" value: 2 }}
  }}
  config {{ name: "chars" base_path: "{base}/chars" model_platform: "tensorflow" }}
}}
"""


class ModelServer:
    """`textclf model-server` serving MODELS; stop() kills it; start() again reuses the same ports."""

    def __init__(self, config_file: Path, log_path: Path, *extra_flags: str) -> None:
        self.config_file = config_file
        self.log_path = log_path
        self.extra_flags = extra_flags
        self.grpc_port, self.rest_port = free_port(), free_port()
        self.rest_url = f"http://127.0.0.1:{self.rest_port}"
        self.grpc_target = f"127.0.0.1:{self.grpc_port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = start(
            [
                str(TEXTCLF),
                "model-server",
                f"--port={self.grpc_port}",
                f"--rest_api_port={self.rest_port}",
                f"--model_config_file={self.config_file}",
                *self.extra_flags,
            ],
            self.log_path,
        )
        try:
            wait_until(
                lambda: all(self._available(model) for model in MODELS),
                timeout_s=120,
                proc=self.proc,
                what="model server",
                log=self.log_path,
            )
        except BaseException:
            self.stop()
            raise

    def _available(self, model: str) -> bool:
        answer = requests.get(f"{self.rest_url}/v1/models/{model}", timeout=1)
        return answer.status_code == 200 and "AVAILABLE" in answer.text

    def stop(self) -> None:
        """SIGKILL at once: the gateway must cope with TF Serving vanishing without a goodbye."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None


@pytest.fixture(scope="session")
def model_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("models")
    build(base / "news" / "1", "tokens")
    build(base / "news" / "2", "tokens", bias=2)  # the canary leans to 财经
    build(base / "chars" / "1", "text", with_class_names=False)
    (base / "models.config").write_text(MODELS_CONFIG.format(base=base))
    return base


@pytest.fixture(scope="session")
def model_server(model_base: Path) -> Iterator[ModelServer]:
    server = ModelServer(model_base / "models.config", model_base / "model_server.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def start_model_server(model_base: Path) -> Iterator:
    """Start another model server on the same models with extra flags (e.g. batching); stopped after the test."""
    servers: list[ModelServer] = []

    def start(*extra_flags: str) -> ModelServer:
        server = ModelServer(
            model_base / "models.config", model_base / f"model_server_{len(servers)}.log", *extra_flags
        )
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(params=["rest", "grpc"])
def upstream_kwargs(request: pytest.FixtureRequest, model_server: ModelServer) -> dict[str, str]:
    """GatewayConfig kwargs pointing at the real model server, once per protocol."""
    if request.param == "rest":
        return {"tfserving_rest": model_server.rest_url}
    return {"tfserving_grpc": model_server.grpc_target}


@pytest.fixture
def make_client(model_server: ModelServer):
    """Build a gateway app (real upstream client, real model server) and return its test client."""
    from serving.gateway.app import create_app
    from serving.gateway.config import GatewayConfig

    apps = []

    def make(**overrides: object):
        settings = {"models": MODELS, **overrides}
        if "tfserving_grpc" not in settings:
            settings.setdefault("tfserving_rest", model_server.rest_url)
        app = create_app(GatewayConfig(**settings))
        apps.append(app)
        return app.test_client()

    yield make
    for app in apps:
        app.extensions["textclf_gateway"].upstream.close()
