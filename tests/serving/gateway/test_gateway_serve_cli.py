"""`textclf serve` as users run it: gunicorn workers in a real process against the real local model server,
its request log, its metrics summed over workers, a clean SIGTERM stop, `--dev`, and one-line errors. The one
gunicorn start with two workers also checks the payload log (a file per worker) and the monitoring stack's
metric names (test_monitoring_stack.py's helpers): a gunicorn start costs seconds, so tests share it. That
--workers / --threads reach gunicorn is read from gunicorn's own effective configuration, which it logs at
GUNICORN_LOGLEVEL=debug (gunicorn.conf.py reads that variable)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click
import pytest
import requests
from click.testing import CliRunner
from google.protobuf import text_format

from bench.processes import free_port, wait_until
from serving.gateway import config as gateway_config
from serving.gateway.cli import serve
from serving.gateway.config import GatewayConfig
from serving.gateway.payload_log import read_records
from serving.model_server.protos import MonitoringConfig
from tests.serving import test_monitoring_stack as monitoring
from tests.serving.gateway.test_gateway_payload_log import metric
from tests.support.cli import cli_env, textclf
from tests.support.serve_process import serving
from tests.support.servers import ModelServer
from textclf import cli

REQUEST_LINE = "POST /v1/classify 200"


def children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def gunicorn_setting(log: str, name: str) -> str:
    """A setting's value in gunicorn's "Current configuration" (logged at debug level)."""
    (value,) = re.findall(rf"^  {name}: (.*)$", log, re.MULTILINE)
    return value


def group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def payload_lines(log_dir: Path) -> int:
    return sum(path.read_bytes().count(b"\n") for path in log_dir.glob("payload-*"))


def check_payload_log(model_server: ModelServer, url: str, log_dir: Path, tmp_path: Path, sent: int) -> None:
    """Two workers write two payload files of whole lines, read back merged in time order; the length metric is
    summed over them; `textclf predict` re-scores the folder (sent requests of two texts each, nothing else yet)."""

    def post(i: int) -> int:
        texts = [f"我喜欢看足球{i}", f"银行股票大涨{i}"]
        return requests.post(url + "/v1/classify", json={"model": "news", "texts": texts}, timeout=30).status_code

    with ThreadPoolExecutor(8) as pool:  # concurrent new connections: both workers answer some
        assert set(pool.map(post, range(sent))) == {200}
    wait_until(lambda: payload_lines(log_dir) >= 2 * sent, timeout_s=60, what="every payload line written")
    scraped = requests.get(url + "/metrics", timeout=10).text  # summed over both workers (multiprocess)
    assert metric(scraped, "textclf_gateway_text_length_chars_count") == {(("model", "news"), ("version", "2")): 120}
    files = sorted(log_dir.iterdir())
    assert len(files) == 2 and all(f.name.startswith("payload-") and f.name.endswith(".jsonl") for f in files)
    per_file = [[json.loads(line) for line in f.read_text(encoding="utf-8").splitlines()] for f in files]
    assert all(per_file) and sum(map(len, per_file)) == 2 * sent  # every line whole: no interleaving
    records = list(read_records(log_dir))
    assert sorted(r["text"] for r in records) == sorted(
        t for i in range(sent) for t in (f"我喜欢看足球{i}", f"银行股票大涨{i}")
    )
    assert [r["time"] for r in records] == sorted(r["time"] for r in records)  # merged oldest first
    out = tmp_path / "rescored.jsonl"  # straight through TF Serving: the gateway would log the re-scoring too
    args = ["predict", "--input", str(log_dir), "--output", str(out), "--model", "news"]
    result = CliRunner().invoke(cli, [*args, "--tfserving-rest", model_server.rest_url])
    assert result.exit_code == 0, result.output
    rescored = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["text"] for r in rescored] == [r["text"] for r in records]
    assert [r["label"] for r in rescored] == [r["label"] for r in records]  # same model, same answer


def get(url: str) -> tuple[int, str]:
    answer = requests.get(url, timeout=10)
    return answer.status_code, answer.text


# the one gunicorn start of the gateway tests that checks the payload log and the monitoring stack's metric names
MONITORED = {f"TEXTCLF_{key.upper()}": value for key, value in monitoring.SETTINGS.items() if key != "models"}


@pytest.mark.slow
def test_serve_runs_gunicorn_workers_sums_their_metrics_and_stops_on_sigterm(model_server, tmp_path):
    """Also, on the same start: the payload log under gunicorn, and every metric name the dashboard and the
    alerts query exported by the workers through PROMETHEUS_MULTIPROC_DIR (test_monitoring_stack.py)."""
    log_dir = tmp_path / "payload"
    flags = ("--workers", "2", "--threads", "4", "--max-texts", "2")
    with serving(model_server, tmp_path, *flags, TEXTCLF_PAYLOAD_LOG=str(log_dir), **MONITORED) as served:
        assert len(children(served.proc.pid)) == 2  # the master forked two workers
        too_many = requests.post(
            served.url + "/v1/classify", json={"model": "news", "texts": ["a", "b", "c"]}, timeout=10
        )
        assert too_many.json()["error"]["code"] == "too_many_texts"  # the workers serve with the CLI's settings
        logged = 60
        check_payload_log(model_server, served.url, log_dir, tmp_path, logged)
        requests_sent = 24
        with ThreadPoolExecutor(8) as pool:  # concurrent connections, so both workers answer some
            answers = list(pool.map(lambda i: served.classify("看足球", f"serve-{i}"), range(requests_sent)))
        assert {a.status_code for a in answers} == {200}
        assert {a.json()["results"][0]["label"] for a in answers} == {"体育"}
        metrics = requests.get(served.url + "/metrics", timeout=10).text
        line = 'textclf_gateway_requests_total{method="POST",route="/v1/classify",status="200"}'
        total = float(logged + requests_sent)
        assert f"{line} {total}" in metrics.splitlines()  # every worker's count, whichever answers
        (folder,) = served.metrics_dirs()  # serve made a multiprocess folder, each worker writes its own files
        assert {p.name.rsplit("_", 1)[1] for p in folder.glob("counter_*.db")} >= {
            f"{pid}.db" for pid in children(served.proc.pid)
        }
        monitoring.traffic(served.url, lambda url, body: requests.post(url, json=body, timeout=10).status_code, get)
        _, gateway_used = monitoring.queried_metric_names()
        exported = monitoring.exported(requests.get(served.url + "/metrics", timeout=10).text)
        assert not gateway_used - exported, "queried, but not exported under gunicorn"

        served.proc.send_signal(signal.SIGTERM)
        assert served.proc.wait(timeout=40) == 0
        wait_until(lambda: group_gone(served.proc.pid), timeout_s=10, what="gunicorn workers gone")
        assert served.metrics_dirs() == []  # removed on the way out
        log = served.log.read_text()
        assert REQUEST_LINE not in log and "serve-3" not in log  # no per-request line by default
        assert "Traceback" not in log and "Shutting down" in log


def test_every_queried_metric_is_exported_in_process_and_by_tf_serving(model_server, tmp_path):
    """The dashboard's and the alerts' metric names against an in-process gateway and TF Serving's monitoring
    endpoint (the model server runs with compose's monitoring.config); gunicorn's are checked above."""
    from serving.gateway.app import create_app
    from serving.gateway.context import gateway

    environ = {"TEXTCLF_MODELS": "news", **MONITORED}
    config = GatewayConfig.from_env(environ, tfserving_grpc=model_server.grpc_target, payload_log=str(tmp_path))
    app = create_app(config)
    client = app.test_client()
    try:
        monitoring.traffic(
            "",
            lambda url, body: client.post(url, json=body).status_code,
            lambda url: (lambda answer: (answer.status_code, answer.get_data(as_text=True)))(client.get(url)),
        )
        in_process = monitoring.exported(client.get("/metrics").get_data(as_text=True))
    finally:
        gateway(app).upstream.close()
    path = text_format.Parse(monitoring.MONITORING_CONFIG.read_text(), MonitoringConfig()).prometheus_config.path
    answer = requests.get(model_server.rest_url + path, timeout=10)  # after the gateway's calls
    assert answer.status_code == 200
    tf_serving = monitoring.exported(answer.text)
    used, gateway_used = monitoring.queried_metric_names()
    assert {":tensorflow:serving:request_count", ":tensorflow:serving:request_latency_bucket"} <= tf_serving
    assert not gateway_used - in_process, "queried, but not exported by the gateway"
    assert not used - gateway_used - tf_serving - monitoring.PROMETHEUS_OWN, "queried, but not exported by TF Serving"


@pytest.mark.slow
def test_log_requests_writes_one_line_per_request_and_ctrl_c_stops_it(model_server, tmp_path):
    flags = ("--workers", "1", "--threads", "3", "--log-requests")
    with serving(model_server, tmp_path, *flags, GUNICORN_LOGLEVEL="debug") as served:
        log = served.log.read_text()
        assert (gunicorn_setting(log, "workers"), gunicorn_setting(log, "threads")) == ("1", "3")
        assert len(children(served.proc.pid)) == 1
        assert served.classify("我买了电脑", "logged-1").status_code == 200
        wait_until(lambda: "logged-1" in served.log.read_text(), timeout_s=10, what="the request line")
        os.killpg(served.proc.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole process group
        assert served.proc.wait(timeout=40) == 0
        wait_until(lambda: group_gone(served.proc.pid), timeout_s=10, what="gunicorn workers gone")
    (line,) = [line for line in served.log.read_text().splitlines() if "logged-1" in line]
    assert REQUEST_LINE in line
    assert "Traceback" not in served.log.read_text()


@pytest.mark.slow
def test_the_server_options_read_their_textclf_variables(model_server, tmp_path):
    port = free_port()
    env = {"TEXTCLF_HOST": "127.0.0.2", "TEXTCLF_PORT": str(port), "TEXTCLF_WORKERS": "1", "TEXTCLF_THREADS": "5"}
    with serving(model_server, tmp_path, TEXTCLF_LOG_REQUESTS="1", GUNICORN_LOGLEVEL="debug", **env) as served:
        assert served.url == f"http://127.0.0.2:{port}"  # the one it answered /readyz on
        log = served.log.read_text()
        assert gunicorn_setting(log, "bind") == f"['127.0.0.2:{port}']"
        assert (gunicorn_setting(log, "workers"), gunicorn_setting(log, "threads")) == ("1", "5")
        assert len(children(served.proc.pid)) == 1
        assert served.classify("看足球", "from-env-1").json()["results"][0]["label"] == "体育"
        with pytest.raises(requests.ConnectionError):  # TEXTCLF_HOST, not the default 127.0.0.1
            requests.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
        wait_until(lambda: "from-env-1" in served.log.read_text(), timeout_s=10, what="the request line")
    assert "Traceback" not in served.log.read_text()


@pytest.mark.slow
def test_dev_runs_flasks_development_server(model_server, tmp_path):
    with serving(model_server, tmp_path, "--dev") as served:
        assert served.classify("看足球", "dev-1").json()["results"][0]["label"] == "体育"
        assert children(served.proc.pid) == []  # one process, no gunicorn workers
    log = served.log.read_text()
    assert "Flask dev server" in log and "gunicorn" not in log


def one_error_line(result: subprocess.CompletedProcess, exit_code: int, message: str) -> None:
    assert result.returncode == exit_code, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr


@pytest.mark.slow  # each case starts the CLI in a fresh interpreter (jieba loads for the port check)
def test_start_up_errors_are_one_line(tmp_path):
    one_error_line(textclf("serve", "--bogus"), 2, "No such option '--bogus'")
    one_error_line(textclf("serve", "--workers", "0", "--tfserving-grpc", "127.0.0.1:1"), 2, "--workers")
    one_error_line(textclf("serve"), 1, "exactly one of --tfserving-rest")
    # Flask's development server is one process: gunicorn's shape, by flag or variable, is a mistake to name
    one_error_line(textclf("serve", "--dev", "--workers", "4"), 2, "--workers does not apply with --dev")
    threads = cli_env(TEXTCLF_THREADS="3")
    one_error_line(textclf("serve", "--dev", env=threads), 2, "TEXTCLF_THREADS does not apply with --dev")
    missing = str(tmp_path / "missing.json")
    one_error_line(textclf("serve", "--tfserving-grpc", "127.0.0.1:1", "--preprocessing", missing), 1, "does not exist")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = textclf("serve", "--port", port, "--tfserving-grpc", "127.0.0.1:1")
    one_error_line(result, 1, f"cannot listen on 127.0.0.1:{port}")
    assert list(tmp_path.iterdir()) == []


def test_every_gateway_setting_is_a_serve_flag():
    """A GatewayConfig field without a flag could only be set through its TEXTCLF_* variable."""
    flags = {param.name for param in serve.params}
    settings = {field.name for field in dataclasses.fields(GatewayConfig) if field.init}
    assert settings <= flags, settings - flags


def test_serve_help_names_every_options_variable():
    """--help shows each option's TEXTCLF_* variable; a setting's is the one GatewayConfig.from_env reads."""
    shown = " ".join(CliRunner().invoke(serve, ["--help"], terminal_width=120).output.split())
    context = click.Context(serve)
    for param in serve.params:
        if not isinstance(param, click.Option) or param.name == "dev":  # a debugging mode, chosen on the command line
            continue
        record = param.get_help_record(context)
        assert record is not None, param.name
        variable = f"{gateway_config.ENV_PREFIX}{str(param.name).upper()}"
        assert f"env var: {variable}" in " ".join(record[1].split()), param.name
        assert f"{record[0]} " in shown and variable in shown, param.name
