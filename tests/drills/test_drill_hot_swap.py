"""Drill: a new model version is published (atomic rename into the model base) while load runs.

Zero failed requests through the gateway; the new version takes over; the old one is unloaded and the
status API says so.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

import pytest

from tests.support.load import Load
from tests.support.servers import MODEL, gateway, model_server, publish_tiny_version, version_states

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def test_new_version_under_load_drops_nothing(tmp_path):
    base = tmp_path / "models" / MODEL
    publish_tiny_version(base, 1)
    staged = publish_tiny_version(tmp_path / "staging", 2, bias=1)  # v2 answers differently from v1
    with model_server(base, tmp_path) as server, gateway(server.grpc_port, tmp_path) as gw:
        with Load(gw.url, MODEL, threads=4) as load:
            load.wait_for(20, after=0.0)
            # publish: copy beside the versions under a '.' name, then one rename (what `textclf export` does)
            tmp = tempfile.mkdtemp(prefix=".2.", dir=base)
            shutil.copytree(staged, tmp, dirs_exist_ok=True)
            os.replace(tmp, base / "2")
            published_at = time.monotonic()
            states = _wait_states(server, lambda s: s.get(2) == "AVAILABLE" and s.get(1, "END") == "END")
            swapped_at = time.monotonic()
            load.wait_for(20, after=swapped_at + 1.0)
        assert not load.hung
    answers = load.answers
    failed = [(a.status, a.body) for a in answers if a.status != 200]
    assert not failed, f"{len(failed)} of {len(answers)} requests failed during the swap: {failed[:3]}"
    versions_before = {a.body["version"] for a in answers if a.started < published_at}
    versions_late = {a.body["version"] for a in answers if a.started > swapped_at + 1.0}
    assert versions_before == {1}
    assert versions_late == {2}, "the gateway still answers with the unloaded version"
    assert states == {1: "END", 2: "AVAILABLE"} or states == {2: "AVAILABLE"}, states


def _wait_states(server, done, timeout_s: float = 30.0) -> dict[int, str]:
    deadline = time.monotonic() + timeout_s
    states = version_states(server)
    while not done(states) and time.monotonic() < deadline:
        time.sleep(0.2)
        states = version_states(server)
    assert done(states), f"status never showed the swap: {states}"
    return states
