"""docker-compose.yml, serving/Dockerfile and the TF Serving config files (no Docker engine here: parse
and check their shape; the config files are parsed with TF Serving's own message schemas)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from serving.model_server.protos import BatchingParameters, MonitoringConfig

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "serving" / "config"
DOCKERFILE = (ROOT / "serving" / "Dockerfile").read_text()


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def flags(service: dict) -> dict[str, str]:
    return dict(arg[2:].split("=", 1) for arg in service["command"])


def test_tf_serving_service(compose):
    tfs = compose["services"]["tfserving"]
    assert tfs["image"] == "tensorflow/serving:2.21.0"
    assert "ports" not in tfs and {str(p) for p in tfs["expose"]} == {"8500", "8501"}
    assert tfs["networks"] == ["backend"] and compose["networks"]["backend"]["internal"] is True
    args = flags(tfs)
    assert (args["port"], args["rest_api_port"], args["enable_batching"]) == ("8500", "8501", "true")
    mounts = {}
    for volume in tfs["volumes"]:
        host, container, mode = volume.rsplit(":", 2)
        assert mode == "ro", volume
        mounts[container] = host
    assert mounts["/models"] == "${TEXTCLF_MODEL_BASE:-./models}"
    for flag in ("model_config_file", "batching_parameters_file", "monitoring_config_file"):
        host = mounts[args[flag]]
        assert (ROOT / host).is_file(), f"--{flag}={args[flag]} is mounted from {host}, which does not exist"
    assert tfs["restart"] == "unless-stopped" and "AVAILABLE" in tfs["healthcheck"]["test"][-1]


def test_gateway_service(compose):
    gw = compose["services"]["gateway"]
    assert gw["build"] == {"context": ".", "dockerfile": "serving/Dockerfile"}
    assert "ports" not in gw and gw["expose"] == ["8080"]  # nginx, in front, is what is published
    assert set(gw["networks"]) == {"backend", "frontend"}
    assert gw["depends_on"]["tfserving"]["condition"] == "service_healthy"
    assert "/healthz" in " ".join(gw["healthcheck"]["test"]) and gw["restart"] == "unless-stopped"
    # nginx is the one service published on every interface; Grafana (monitoring) only on loopback
    published = [name for name, service in compose["services"].items() if service.get("ports")]
    assert published == ["nginx", "grafana"]
    assert all(str(port).startswith("127.0.0.1:") for port in compose["services"]["grafana"]["ports"])
    # the environment is what wsgi.py reads: every TEXTCLF_* key must be a GatewayConfig field
    from serving.gateway.config import GatewayConfig

    env = {k: v for k, v in gw["environment"].items() if k.startswith("TEXTCLF_")}
    settable = {"TEXTCLF_" + name.upper() for name in GatewayConfig.__dataclass_fields__}
    assert set(env) <= settable
    assert env["TEXTCLF_TFSERVING_GRPC"] == "tfserving:" + flags(compose["services"]["tfserving"])["port"]
    config = GatewayConfig.from_env({k: v for k, v in env.items() if v and "${" not in v})
    assert set(config.models) <= model_names()
    # a merged or split call must never pass TF Serving's batch limit, or TF Serving rejects it
    batching = text_format.Parse((CONFIG / "batching.config").read_text(), BatchingParameters())
    assert 0 < config.coalesce_max_texts <= batching.max_batch_size.value


def test_the_gateway_can_keep_a_payload_log(compose):
    """The gateway's root filesystem is read-only: its payload log needs a volume, and its settings come from the
    operator's environment (empty = off), so the drops alert has something to watch once it is turned on."""
    from serving.gateway.config import GatewayConfig

    gw = compose["services"]["gateway"]
    assert gw["read_only"] is True and gw["tmpfs"] == ["/tmp"]
    assert "payload-log:/var/log/textclf" in gw["volumes"] and "payload-log" in compose["volumes"]
    for name in ("TEXTCLF_PAYLOAD_LOG", "TEXTCLF_PAYLOAD_SAMPLE", "TEXTCLF_PAYLOAD_MAX_TOTAL_BYTES"):
        assert gw["environment"][name] == "${" + name + ":-}", name
    alerts = yaml.safe_load((ROOT / "serving" / "monitoring" / "alerts.yml").read_text())
    exprs = [rule["expr"] for group in alerts["groups"] for rule in group["rules"]]
    assert any("textclf_gateway_payload_dropped_total" in expr for expr in exprs)
    assert set(gw["environment"]) - {"PROMETHEUS_MULTIPROC_DIR"} <= {  # every setting the gateway reads
        *("TEXTCLF_" + name.upper() for name in GatewayConfig.__dataclass_fields__),
        "GUNICORN_WORKERS",
        "GUNICORN_THREADS",
    }


def test_nginx_fronts_the_gateway(compose):
    """nginx is the only published service, reads serving/nginx/nginx.conf, and buffers bodies up to exactly the
    gateway's limit (tests/serving/test_nginx_front.py runs that file with a real nginx)."""
    from serving.gateway.config import GatewayConfig

    nginx, gw = compose["services"]["nginx"], compose["services"]["gateway"]
    assert nginx["ports"] == ["${GATEWAY_PORT:-8080}:8080"] and nginx["networks"] == ["frontend"]
    assert nginx["volumes"] == ["./serving/nginx/nginx.conf:/etc/nginx/nginx.conf:ro"]
    assert nginx["depends_on"]["gateway"]["condition"] == "service_healthy"
    assert nginx["read_only"] is True and nginx["tmpfs"] == ["/tmp"]
    conf = (ROOT / "serving" / "nginx" / "nginx.conf").read_text()
    assert f"server gateway:{gw['expose'][0]};" in conf
    size = re.search(r"client_max_body_size (\d+)m;", conf)
    limit = int(gw["environment"].get("TEXTCLF_MAX_BODY_BYTES", GatewayConfig.max_body_bytes))
    assert size is not None and int(size.group(1)) * 1024 * 1024 == limit
    assert all("/tmp/nginx" in line for line in conf.splitlines() if "_path " in line or line.startswith("pid "))


def mounts_of(service: dict) -> dict[str, str]:
    """Container path -> host path of a service's bind mounts (named volumes left out)."""
    return {
        container: host
        for host, container, *_ in (volume.split(":") for volume in service["volumes"])
        if host.startswith("./")
    }


def test_prometheus_scrapes_gateway_and_tf_serving(compose):
    """serving/monitoring/prometheus.yml is mounted where --config.file says, its rule files beside it, and it scrapes
    the compose services where they listen (test_monitoring_stack.py checks both files with promtool)."""
    prom, gw, tfs = (compose["services"][name] for name in ("prometheus", "gateway", "tfserving"))
    assert prom["image"].startswith("prom/prometheus:v") and "ports" not in prom
    mounts = mounts_of(prom)
    config_path = flags(prom)["config.file"]
    assert mounts[config_path] == "./serving/monitoring/prometheus.yml"
    config = yaml.safe_load((ROOT / mounts[config_path]).read_text())
    for rule_file in config["rule_files"]:
        host = mounts[str(Path(config_path).parent / rule_file)]
        assert (ROOT / host).is_file() and all(m.endswith(":ro") for m in prom["volumes"] if m.startswith("./"))
    # TF Serving is on the internal backend network only: Prometheus must be on it to scrape it
    assert "backend" in prom["networks"] and set(tfs["networks"]) <= set(prom["networks"])
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["gateway"]["static_configs"][0]["targets"] == [f"gateway:{gw['expose'][0]}"]
    assert jobs["tfserving"]["static_configs"][0]["targets"] == [f"tfserving:{flags(tfs)['rest_api_port']}"]
    monitoring = text_format.Parse((CONFIG / "monitoring.config").read_text(), MonitoringConfig())
    assert jobs["tfserving"]["metrics_path"] == monitoring.prometheus_config.path
    assert "/-/ready" in " ".join(prom["healthcheck"]["test"]) and prom["restart"] == "unless-stopped"


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard(compose):
    grafana, prom = compose["services"]["grafana"], compose["services"]["prometheus"]
    assert grafana["image"].startswith("grafana/grafana:") and grafana["image"].split(":")[1][0].isdigit()
    assert grafana["depends_on"]["prometheus"]["condition"] == "service_healthy"
    assert set(grafana["networks"]) & set(prom["networks"]) and "backend" not in grafana["networks"]
    mounts = mounts_of(grafana)
    provisioning = ROOT / mounts["/etc/grafana/provisioning"]
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert source["url"] == f"http://prometheus:{prom['expose'][0]}"
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "textclf.yml").read_text())["providers"]
    dashboards = ROOT / mounts[provider["options"]["path"]]
    board = json.loads((dashboards / "textclf.json").read_text())
    assert {t["datasource"]["uid"] for p in board["panels"] for t in p.get("targets", [])} == {source["uid"]}
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{provider['options']['path']}/textclf.json"
    assert "${GRAFANA_ADMIN_PASSWORD" in grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"]


def model_names() -> set[str]:
    parsed = text_format.Parse((CONFIG / "models.config").read_text(), model_server_config_pb2.ModelServerConfig())
    return {model.name for model in parsed.model_config_list.config}


def test_models_config_parses_with_labels():
    parsed = text_format.Parse((CONFIG / "models.config").read_text(), model_server_config_pb2.ModelServerConfig())
    news = {m.name: m for m in parsed.model_config_list.config}["news"]
    assert dict(news.version_labels) == {"stable": 1, "canary": 2}
    assert sorted(news.model_version_policy.specific.versions) == [1, 2]
    assert all(m.base_path == f"/models/{m.name}" for m in parsed.model_config_list.config)


def test_batching_and_monitoring_configs_parse():
    batching = text_format.Parse((CONFIG / "batching.config").read_text(), BatchingParameters())
    assert batching.max_batch_size.value == 64 and list(batching.allowed_batch_sizes)[-1] == 64
    monitoring = text_format.Parse((CONFIG / "monitoring.config").read_text(), MonitoringConfig())
    assert monitoring.prometheus_config.enable and monitoring.prometheus_config.path.startswith("/")


def test_dockerfile_installs_no_tensorflow():
    installs = " ".join(re.findall(r"pip install[^\n]*(?:\\\n[^\n]*)*", DOCKERFILE))
    assert "tensorflow-serving-api" in installs and "--no-deps tensorflow-serving-api" in installs
    assert not re.search(r"\btensorflow(==|\s|$)", installs.replace("tensorflow-serving-api", ""))
    assert "gunicorn" in DOCKERFILE and "serving.gateway.wsgi:app" in DOCKERFILE and "HEALTHCHECK" in DOCKERFILE


def test_image_has_every_module_the_gateway_imports():
    """Run the gateway's imports here and check each third-party module comes from requirements.txt,
    tensorflow-serving-api, or the TF *_pb2 folders the Dockerfile copies out of the wheel."""
    code = (
        "import json, sys; from serving.gateway import app, buffering_worker, grpc_client, rest_client, wsgi; "
        "print(json.dumps(sorted(sys.modules)))"
    )
    env = {**os.environ, "TEXTCLF_TFSERVING_GRPC": "127.0.0.1:1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    modules = json.loads(done.stdout.strip().splitlines()[-1])

    proto_dirs = re.search(r'ARG TF_PROTO_DIRS="([^"]+)"', DOCKERFILE).group(1).split()
    for module in (m for m in modules if m.endswith("_pb2") and m.startswith("tensorflow.")):
        assert any(module.replace(".", "/").startswith(d + "/") for d in proto_dirs), module

    first_party = [m for m in modules if m.split(".")[0] in ("serving", "data_prep")]
    copied = re.findall(r"^COPY (?!--)(\S+) ", DOCKERFILE, flags=re.MULTILINE)
    allowed = [
        line[1:].rstrip("/")
        for line in (ROOT / "serving" / "Dockerfile.dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    for module in first_party:
        source = _source_of(module)
        assert any(_within(source, c) for c in copied), f"{module} ({source}) is not COPY'd into the image"
        assert any(_within(source, a) for a in allowed), f"{module} ({source}) is left out by the .dockerignore"

    requirements = (ROOT / "serving" / "gateway" / "requirements.txt").read_text()
    wanted = {
        re.split(r"[=<>]", line)[0].strip().lower().replace("_", "-")
        for line in requirements.splitlines()
        if line.strip() and not line.startswith("#")
    }
    wanted.add("tensorflow-serving-api")
    distributions = metadata.packages_distributions()
    ours = {"serving", "data_prep", "textclf", "tensorflow"}
    # urllib3 (under requests) imports PySocks only when it happens to be installed, as it is here for selenium;
    # the image runs without it
    optional = {"socks", "sockshandler"}
    for top in sorted({m.split(".")[0] for m in modules} - ours - optional - set(sys.stdlib_module_names)):
        providers = {d.lower().replace("_", "-") for d in distributions.get(top, [])}
        if not providers or top.startswith("_"):
            continue  # built-in/private helper modules
        # a top-level module may come from a dependency of a listed package (e.g. werkzeug from flask)
        assert providers & wanted or _required_by(providers, wanted), (
            f"{top} ({providers}) is not installed in the image"
        )


def _source_of(module: str) -> str:
    """The repository path a first-party module is imported from."""
    path = ROOT / module.replace(".", "/")
    return str(path.relative_to(ROOT)) + ("/__init__.py" if path.is_dir() else ".py")


def _within(source: str, copied: str) -> bool:
    return source == copied or source.startswith(copied.rstrip("/") + "/")


def _required_by(providers: set[str], wanted: set[str]) -> bool:
    """True if one of `providers` is a (transitive) requirement of a package in `wanted`."""
    seen, todo = set(), list(wanted)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for requirement in requires:
            if "extra ==" in requirement:
                continue
            todo.append(re.split(r"[\s;<>=!~\[(]", requirement, maxsplit=1)[0].lower().replace("_", "-"))
    return bool(providers & seen)
