"""schemathesis holds the gateway to its OpenAPI document: every check on (server errors, status codes,
content types, response headers and schemas, schema-violating requests rejected and schema-valid ones
accepted, authentication, undeclared methods with Allow), all phases, a bounded example count, zero failures.

A LIVE gateway: gunicorn as production runs it, over loopback, API keys on, in front of the REAL local
model server (conftest.py here), fetched from its own /openapi.json. The schemathesis CLI runs as a child
process (its own report on failure); the count of cases it generated is printed.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from bench.processes import VENV_BIN
from tests.support.live_gateway import gunicorn_gateway

pytestmark = pytest.mark.slow

KEY = "schemathesis-key"
EXAMPLES = 25  # per operation and phase: ~40 s here; raise it by hand for a deeper run


def test_schemathesis_finds_nothing(model_server, tmp_path):
    with gunicorn_gateway(
        tmp_path / "gateway.log",
        workers=1,
        threads=8,
        tfserving_grpc=model_server.grpc_target,
        models="news,chars",
        api_keys=KEY,
    ) as url:
        run = subprocess.run(
            [
                str(VENV_BIN / "schemathesis"),
                "run",
                f"{url}/openapi.json",
                "--checks",
                "all",
                "--max-examples",
                str(EXAMPLES),
                "--seed",
                "20",
                "--header",
                f"X-API-Key: {KEY}",
                "--request-timeout",
                "30",
                "--report-dir",
                str(tmp_path / "reports"),
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,  # no schemathesis.toml of ours: the settings are all above
            timeout=300,
        )
    report = run.stdout[-6000:] + run.stderr[-2000:]
    assert run.returncode == 0, report
    generated = re.search(r"(\d+) generated", run.stdout)
    assert generated is not None, report
    print(f"\nschemathesis: {generated.group(1)} cases, 0 failures")
