"""The compose monitoring stack (serving/monitoring/): Prometheus's config and alert rules checked and unit-tested
by the real promtool, and the dashboard's queries. That every metric the Grafana dashboard and the alerts query
is one that a live gateway (in-process, and under gunicorn with PROMETHEUS_MULTIPROC_DIR) or the live local model
server's TF Serving monitoring endpoint (serving/config/monitoring.config) exports after a few requests is
checked in tests/serving/gateway/test_gateway_serve_cli.py, on the gateway test bed's one model server and
gunicorn start, with the helpers below.

promtool comes from Debian's `prometheus` package (apt-get install -y prometheus); without it these checks are
skipped, except under CI=true, where that is a failure."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from google.protobuf import text_format

from serving.model_server.protos import MonitoringConfig

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "serving" / "monitoring"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "textclf.json"
MONITORING_CONFIG = ROOT / "serving" / "config" / "monitoring.config"
# series Prometheus makes itself (scrape health, alert state), not scraped from a target
PROMETHEUS_OWN = {"up", "ALERTS"}
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"}


def promtool(*args: str) -> subprocess.CompletedProcess:
    tool = shutil.which("promtool")
    if tool is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is missing: CI must install Debian's `prometheus` package")
        pytest.skip("promtool not installed (apt-get install -y prometheus)")
    return subprocess.run([tool, *args], cwd=MONITORING, capture_output=True, text=True, timeout=60)


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects: bare names and {__name__="..."} matchers."""
    names = set(re.findall(r'__name__\s*=\s*"([^"]+)"', expr))
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings (label values, regexes)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", expr)  # label matchers, ranges (and Grafana's $__range)
    expr = _GROUPING.sub(" ", expr)  # label lists
    for match in re.finditer(r"(?<![\w.:$])([A-Za-z_:][\w:]*)(\s*\()?", expr):
        if match[2] is None and match[1] not in _KEYWORDS:  # a name followed by "(" is a function
            names.add(match[1])
    return names


def dashboard_queries() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    queries = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    queries += [a["expr"] for a in board["annotations"]["list"] if "expr" in a]
    for variable in board["templating"]["list"]:
        metric = re.fullmatch(r"label_values\((.+), *\w+\)", variable["query"]["query"])
        assert metric is not None, variable
        queries.append(metric[1])
    return queries


def alert_queries() -> dict[str, str]:
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    return {rule["alert"]: rule["expr"] for group in rules["groups"] for rule in group["rules"]}


def exported(exposition: str) -> set[str]:
    """Names of the samples in a Prometheus text exposition (what Prometheus stores)."""
    return {re.split(r"[{\s]", line, maxsplit=1)[0] for line in exposition.splitlines() if line and line[0] != "#"}


def test_metric_name_extraction() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, model) (rate(a_bucket{route="/x", le=~"1|inf"}[$__rate_interval])))'
        ' / ignoring(model) group_left sum(rate({__name__=":tensorflow:serving:request_count"}[5m] offset 1h)) / 1e6'
        " > bool 0.5 or vector(0) and on (job) up"
    )
    assert metric_names(expr) == {"a_bucket", ":tensorflow:serving:request_count", "up"}


def test_dashboard_shows_what_the_issue_asks_for() -> None:
    """(test_compose.py checks that Grafana is provisioned with it, on the compose stack's Prometheus.)"""
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] == "textclf" and len({p["id"] for p in board["panels"]}) == len(board["panels"])
    titles = " ".join(p["title"] for p in board["panels"]).lower()
    for wanted in ("status", "errors", "latency", "upstream", "breaker", "batch", "labels", "top score", "shadow"):
        assert wanted in titles, wanted
    assert "cache" in titles and "low-confidence" in titles and "length" in titles


def test_promtool_checks_config_and_rules(tmp_path: Path) -> None:
    # as compose mounts them: the config, its rules and the gateway's key file (empty without API keys)
    for name in ("prometheus.yml", "alerts.yml"):
        shutil.copy(MONITORING / name, tmp_path / name)
    (tmp_path / "gateway_api_key").write_text("")
    config = promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert config.returncode == 0, config.stdout + config.stderr
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounted = {v.rsplit(":", 2)[1] for v in compose["services"]["prometheus"]["volumes"] if v.count(":") >= 2}
    assert {
        "/etc/prometheus/prometheus.yml",
        "/etc/prometheus/alerts.yml",
        "/etc/prometheus/gateway_api_key",
    } <= mounted
    scrape = yaml.safe_load((MONITORING / "prometheus.yml").read_text())["scrape_configs"]
    paths = {job["job_name"]: job["metrics_path"] for job in scrape}
    monitoring = text_format.Parse(MONITORING_CONFIG.read_text(), MonitoringConfig())
    assert paths == {"gateway": "/metrics", "tfserving": monitoring.prometheus_config.path}
    rules = promtool("check", "rules", "alerts.yml")
    assert rules.returncode == 0 and "8 rules found" in rules.stdout, rules.stdout + rules.stderr


def test_promtool_unit_tests_every_alert() -> None:
    files = ("alerts_test.yml", "alerts_drift_test.yml")
    tested = {name for f in files for name in re.findall(r"alertname: (\w+)", (MONITORING / f).read_text())}
    assert tested == set(alert_queries())
    result = promtool("test", "rules", *files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_queries_parse_as_promql(tmp_path: Path) -> None:
    """Every dashboard query, with Grafana's variables filled in, as a recording rule that promtool parses."""
    filled = [
        q.replace("$__rate_interval", "5m").replace("$__range", "1h").replace("$model", ".*")
        for q in dashboard_queries()
    ]
    rules = {"groups": [{"name": "dashboard", "rules": [{"record": f"q{i}", "expr": q} for i, q in enumerate(filled)]}]}
    (tmp_path / "dashboard_rules.yml").write_text(yaml.safe_dump(rules, allow_unicode=True))
    result = promtool("check", "rules", str(tmp_path / "dashboard_rules.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------------ live metric names
# checked against the gateway test bed's model server (tests/serving/gateway/test_gateway_serve_cli.py), which
# these helpers serve: the queried names, the traffic that makes a gateway export every one, the names exported


def queried_metric_names() -> tuple[set[str], set[str]]:
    """(every metric the dashboard and the alerts query, those of them the gateway exports)."""
    used: set[str] = set()
    for query in [*dashboard_queries(), *alert_queries().values()]:
        used |= metric_names(query)
    assert len(used) > 25  # the extraction found the queries' names (test_metric_name_extraction checks how)
    return used, {name for name in used if not name.startswith(":tensorflow:")} - PROMETHEUS_OWN


def traffic(url: str, post: Callable[[str, dict], int], get: Callable[[str], tuple[int, str]]) -> None:
    """A few requests touching every gateway signal: classify (twice the same text: a cache hit), a bad request
    (an error code), the model list; then waits for the shadow copy to be compared."""
    for text in ("这家酒店很干净", "这家酒店很干净", "服务太差了"):
        assert post(url + "/v1/classify", {"model": "news", "texts": [text]}) == 200
    assert post(url + "/v1/classify", {"model": "news"}) == 422  # no texts
    assert get(url + "/v1/models")[0] == 200
    deadline = time.monotonic() + 30
    while "textclf_gateway_shadow_agreements_total{" not in get(url + "/metrics")[1]:
        assert time.monotonic() < deadline, "the shadow copy was never compared"
        time.sleep(0.1)


# the gateway settings under which it exports every queried name (the payload log's folder comes on top)
SETTINGS = {"models": "news", "cache_entries": "100", "shadow": '{"news": {"version": 1, "sample": 1}}'}
