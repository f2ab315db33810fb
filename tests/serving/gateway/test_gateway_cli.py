"""`textclf serve` (gunicorn) as a real subprocess (gRPC upstream) and `textclf predict` through it and through
TF Serving's REST API directly."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from bench.processes import TEXTCLF, free_port
from textclf import cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gateway_url(model_server, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                str(TEXTCLF),
                "serve",
                "--port",
                str(port),
                "--tfserving-grpc",
                model_server.grpc_target,
                "--model",
                "news",
                "--model",
                "chars",
                "--max-texts",
                "8",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "TEXTCLF_API_KEYS": "s3cret"},
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if requests.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):  # gunicorn listens before its workers answer
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_serve_subprocess_classifies_over_http(gateway_url):
    answer = requests.post(
        gateway_url + "/v1/classify",
        json={"model": "news", "texts": ["看足球"], "top_k": 2},
        headers={"X-API-Key": "s3cret", "X-Request-ID": "cli-1"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["X-Request-ID"] == "cli-1"
    assert answer.json()["results"][0]["label"] == "体育"
    assert (
        requests.post(gateway_url + "/v1/classify", json={"model": "news", "texts": ["x"]}, timeout=10).status_code
        == 401
    )
    assert requests.get(gateway_url + "/readyz", timeout=10).json()["ready"] is True


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_predict_jsonl_through_the_gateway(gateway_url, tmp_path):
    rows = ["我喜欢看足球", "我买了电脑", "银行股票大涨"] * 7  # 21 rows: several batches of 8
    source = write(
        tmp_path / "in.jsonl", "".join(json.dumps({"body": t}, ensure_ascii=False) + "\n" for t in rows) + "not json\n"
    )
    out = tmp_path / "out" / "pred.jsonl"
    result = CliRunner().invoke(
        cli,
        [
            "predict",
            "--input",
            str(source),
            "--output",
            str(out),
            "--model",
            "news",
            "--gateway",
            gateway_url,
            "--api-key",
            "s3cret",
            "--text-key",
            "body",
            "--batch-size",
            "8",
            "--top-k",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "21 rows classified, 1 unreadable" in result.output
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [line.get("label") for line in lines[:3]] == ["体育", "科技", "财经"] and len(lines) == 22
    assert len(lines[0]["top_k"]) == 2 and lines[-1] == {"text": None, "error": "malformed"}
    assert [p.name for p in out.parent.iterdir()] == ["pred.jsonl"]  # no temp file left behind


def test_predict_tsv_straight_through_tf_serving_rest(model_server, tmp_path):
    source = write(tmp_path / "in.tsv", "id\tcontent\n1\t<b>手机</b>很好\n2\t看足球\n")
    out = tmp_path / "pred.tsv"
    result = CliRunner().invoke(
        cli,
        [
            "predict",
            "--input",
            str(source),
            "--output",
            str(out),
            "--model",
            "chars",
            "--tfserving-rest",
            model_server.rest_url,
            "--text-col",
            "content",
        ],
    )
    assert result.exit_code == 0, result.output
    table = [line.split("\t") for line in out.read_text(encoding="utf-8").splitlines()]
    assert table[0] == ["text", "label", "score", "error"]
    assert [row[1] for row in table[1:]] == ["科技", "体育"]


def test_predict_errors_are_one_line_and_leave_no_output(gateway_url, model_server, tmp_path):
    source = write(tmp_path / "in.jsonl", '{"text": "看足球"}\n')
    out = tmp_path / "pred.jsonl"
    cases = [
        (["--gateway", gateway_url, "--api-key", "wrong"], "unauthorized"),
        (["--gateway", gateway_url, "--api-key", "s3cret", "--model", "ghost"], "model_not_found"),
        (["--tfserving-rest", model_server.rest_url, "--model", "ghost"], "model_not_found"),
        ([], "exactly one of --gateway"),
    ]
    for extra, message in cases:
        args = ["predict", "--input", str(source), "--output", str(out), "--model", "news", *extra]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 1 and message in result.output, result.output
        assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == [source]
