"""Requests gunicorn rejects before the app sees them are answered by `textclf serve` in the gateway's error
format, {"error": {"code", "message"}} with X-Request-ID, not gunicorn's HTML page (buffering_worker.py)."""

from __future__ import annotations

import pytest

from serving.gateway.errors import CODES
from tests.support.raw_http import FRONT_ERRORS, MALFORMED, exchange
from tests.support.serve_process import serving

EXPECTED = FRONT_ERRORS


@pytest.fixture(scope="module")
def served(model_server, tmp_path_factory):
    with serving(model_server, tmp_path_factory.mktemp("front-errors"), "--workers", "1") as running:
        yield running


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_front_errors_are_json_with_a_request_id(served, case):
    answer = exchange(served.port, MALFORMED[case])
    status, code = EXPECTED[case]
    assert (answer.status, answer.json()["error"]["code"]) == (status, code), answer
    assert CODES[code] == status and answer.json()["error"]["message"]
    assert answer.headers["content-type"] == "application/json" and len(answer.headers["x-request-id"]) == 32
    assert answer.headers["connection"] == "close"
    assert "Traceback" not in served.log.read_text()
