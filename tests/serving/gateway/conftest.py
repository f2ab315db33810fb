"""Gateway test bed: tiny SavedModels (tiny_models.py), the REAL local model server (`textclf model-server`)
as a subprocess on free loopback ports, and gateway apps pointed at it over REST or gRPC."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from serving.contract import TEXT_INPUT, TOKENS_INPUT
from tests.support.fake_upstream import FakeUpstream, fake_app
from tests.support.servers import ModelServer
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


# TF Serving's Prometheus endpoint, on as compose configures it (test_gateway_serve_cli.py reads its metric names)
MONITORING_CONFIG = Path(__file__).resolve().parents[3] / "serving" / "config" / "monitoring.config"


def news_and_chars(model_base: Path, log: Path, *extra_flags: str) -> ModelServer:
    flags = [f"--model_config_file={model_base / 'models.config'}", f"--monitoring_config_file={MONITORING_CONFIG}"]
    return ModelServer([*flags, *extra_flags], log, models=MODELS)


@pytest.fixture(scope="session")
def model_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("models")
    build(base / "news" / "1", TOKENS_INPUT)
    build(base / "news" / "2", TOKENS_INPUT, bias=2)  # the canary leans to 财经
    build(base / "chars" / "1", TEXT_INPUT, with_class_names=False)
    (base / "models.config").write_text(MODELS_CONFIG.format(base=base))
    return base


@pytest.fixture(scope="session")
def model_server(model_base: Path) -> Iterator[ModelServer]:
    with news_and_chars(model_base, model_base / "model_server.log") as server:
        yield server


@pytest.fixture
def start_model_server(model_base: Path) -> Iterator:
    """Start another model server on the same models with extra flags (e.g. batching); stopped after the test."""
    servers: list[ModelServer] = []

    def start(*extra_flags: str) -> ModelServer:
        server = news_and_chars(model_base, model_base / f"model_server_{len(servers)}.log", *extra_flags)
        servers.append(server)
        return server.start()

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
    from serving.gateway.context import gateway

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
        gateway(app).upstream.close()


# ---------------------------------------------------------------- in-process, on the FakeUpstream
@pytest.fixture
def fake() -> FakeUpstream:
    return FakeUpstream()


@pytest.fixture
def make_fake_client(fake):
    """A Flask test client of the gateway on the in-process fake upstream; settings as keyword overrides."""

    def make(**overrides: object):
        return fake_app(fake, **overrides).test_client()

    return make
