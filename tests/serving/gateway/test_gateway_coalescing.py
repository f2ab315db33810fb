"""CoalescingUpstream against the REAL local model server over gRPC.

`Gate` wraps the real client only to hold the first call until the other threads have queued behind it
(so the merge is deterministic) and to count calls; every answer still comes from TF Serving's API.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from bench.processes import free_port
from serving.gateway.coalescing import CoalescingUpstream
from serving.gateway.errors import UpstreamError
from serving.gateway.grpc_client import GrpcUpstream

pytestmark = pytest.mark.slow  # starts `textclf model-server`

OUTPUTS = ("probabilities", "label")
WORDS = ["足球", "比赛", "手机", "电脑", "股票", "银行"]
EXPECTED = {"足球": "体育", "比赛": "体育", "手机": "科技", "电脑": "科技", "股票": "财经", "银行": "财经"}


class Gate:
    """The real upstream, with the first predict held until `open()` and every call's size recorded."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.target = inner.target
        self.opened = threading.Event()
        self.sizes: list[int] = []

    def open(self) -> None:
        self.opened.set()

    def predict(
        self, model: str, version: int, input_name: str, values: Sequence[str], outputs: Sequence[str]
    ) -> dict[str, list[Any]]:
        self.sizes.append(len(values))
        if len(self.sizes) == 1:
            self.opened.wait(30)
        return self.inner.predict(model, version, input_name, values, outputs)


@pytest.fixture
def grpc_upstream(model_server):
    upstream = GrpcUpstream(model_server.grpc_target, timeout_s=5)
    yield upstream
    upstream.close()


@pytest.fixture
def max_batch_4_upstream(model_base, start_model_server):
    """A gRPC client to a second model server whose batching rejects calls of more than 4 texts."""
    params = model_base / "batching_4.txt"
    params.write_text("max_batch_size { value: 4 }\nbatch_timeout_micros { value: 0 }\n")
    server = start_model_server("--enable_batching", f"--batching_parameters_file={params}")
    upstream = GrpcUpstream(server.grpc_target, timeout_s=5)
    yield upstream
    upstream.close()


def _predict_all(upstream: Any, texts: list[list[str]], gate: Gate | None = None) -> list[Any]:
    """Each text list from its own thread, queued in list order; the gate opens once all have queued."""

    def one(values: list[str]) -> Any:
        try:
            return upstream.predict("news", 1, "tokens", values, OUTPUTS)
        except UpstreamError as exc:
            return exc

    with ThreadPoolExecutor(len(texts)) as pool:
        futures = []
        for values in texts:
            futures.append(pool.submit(one, values))
            time.sleep(0.02)
        if gate is not None:
            time.sleep(0.3)
            gate.open()
        return [f.result(timeout=60) for f in futures]


def test_overlapping_calls_merge_and_each_gets_its_own_rows(grpc_upstream):
    gate = Gate(grpc_upstream)
    coalescing = CoalescingUpstream(gate, max_texts=32, max_in_flight=1, wait_s=30)
    texts = [[WORDS[i % 6]] * (1 + i % 3) for i in range(16)]  # 1-3 texts per call: 31 texts in all
    answers = _predict_all(coalescing, texts, gate)
    # the first call went alone; the 15 queued behind it left together as ONE call of the other texts
    assert len(gate.sizes) == 2 and sum(gate.sizes) == 31
    for values, answer in zip(texts, answers, strict=True):
        assert answer["label"] == [EXPECTED[v] for v in values]
        assert len(answer["probabilities"]) == len(values)


def test_merged_calls_respect_max_texts(grpc_upstream):
    gate = Gate(grpc_upstream)
    coalescing = CoalescingUpstream(gate, max_texts=4, max_in_flight=1, wait_s=30)
    texts = [[WORDS[i % 6]] for i in range(13)]
    answers = _predict_all(coalescing, texts, gate)
    assert gate.sizes == [1, 4, 4, 4]  # the first alone, then the 12 queued ones in merges of 4
    assert [a["label"] for a in answers] == [[EXPECTED[v] for v in values] for values in texts]


def test_a_call_over_max_texts_goes_in_parts_tf_serving_accepts(max_batch_4_upstream):
    """TF Serving rejects a call past its max_batch_size (4 here): a 10-text request goes as 4 + 4 + 2."""
    with pytest.raises(UpstreamError, match="larger than maximum input batch size 4"):
        max_batch_4_upstream.predict("news", 1, "tokens", WORDS, OUTPUTS)
    gate = Gate(max_batch_4_upstream)
    gate.open()
    coalescing = CoalescingUpstream(gate, max_texts=4, max_in_flight=1, wait_s=30)
    values = [WORDS[i % 6] for i in range(10)]
    answer = coalescing.predict("news", 1, "tokens", values, OUTPUTS)
    assert gate.sizes == [4, 4, 2]
    assert answer["label"] == [EXPECTED[v] for v in values] and len(answer["probabilities"]) == 10


def test_lone_call_goes_at_once(grpc_upstream):
    gate = Gate(grpc_upstream)
    gate.open()
    coalescing = CoalescingUpstream(gate, max_texts=32, max_in_flight=1, wait_s=30)
    for word in WORDS:
        assert coalescing.predict("news", 1, "tokens", [word], OUTPUTS)["label"] == [EXPECTED[word]]
    assert gate.sizes == [1] * 6


def test_a_rejected_merge_is_retried_call_by_call(max_batch_4_upstream):
    """max_texts set above TF Serving's max_batch_size: the merged call is rejected, each call alone fits."""
    gate = Gate(max_batch_4_upstream)
    coalescing = CoalescingUpstream(gate, max_texts=32, max_in_flight=1, wait_s=30)
    texts = [[WORDS[i % 6]] * 3 for i in range(5)]
    answers = _predict_all(coalescing, texts, gate)
    assert gate.sizes == [3, 12, 3, 3, 3, 3]  # alone, the merged 12 (rejected), then each of the 4 again
    assert [a["label"] for a in answers] == [[EXPECTED[v] for v in values] for values in texts]


def test_outage_fails_every_queued_call_and_strands_none():
    closed = GrpcUpstream(f"127.0.0.1:{free_port()}", timeout_s=2)  # nothing listens there
    gate = Gate(closed)
    coalescing = CoalescingUpstream(gate, max_texts=32, max_in_flight=1, wait_s=30)
    answers = _predict_all(coalescing, [["足球"]] * 8, gate)
    assert all(isinstance(a, UpstreamError) and a.kind == "unavailable" for a in answers), answers
    assert len(gate.sizes) == 2  # the first alone, then the 7 queued ones as one call
    closed.close()


def test_queued_call_gives_up_after_wait_s(grpc_upstream):
    gate = Gate(grpc_upstream)  # the first call hangs until opened: a leader stuck far beyond wait_s
    coalescing = CoalescingUpstream(gate, max_texts=32, max_in_flight=1, wait_s=0.3)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(coalescing.predict, "news", 1, "tokens", ["足球"], OUTPUTS)
        time.sleep(0.1)
        queued = pool.submit(coalescing.predict, "news", 1, "tokens", ["手机"], OUTPUTS)
        with pytest.raises(UpstreamError) as error:
            queued.result(timeout=10)
        assert error.value.kind == "timeout"
        gate.open()
        assert first.result(timeout=10)["label"] == ["体育"]
    assert gate.sizes == [1]  # the abandoned call was taken off the queue, never sent
    assert coalescing.predict("news", 1, "tokens", ["银行"], OUTPUTS)["label"] == ["财经"]


def test_many_overlapping_calls_all_answered_and_no_slot_leaks(grpc_upstream):
    """Two leaders at once (in_flight 2), small merges: a promoted call that another leader has already
    answered must still pass its slot on, or the key would stall."""
    coalescing = CoalescingUpstream(grpc_upstream, max_texts=3, max_in_flight=2, wait_s=30)
    texts = [[WORDS[(i + j) % 6] for j in range(1 + i % 2)] for i in range(300)]

    def one(values: list[str]) -> list[str]:
        return coalescing.predict("news", 1, "tokens", values, OUTPUTS)["label"]

    with ThreadPoolExecutor(24) as pool:
        labels = list(pool.map(one, texts, timeout=120))
    assert labels == [[EXPECTED[v] for v in values] for values in texts]
    assert coalescing.idle  # every leader slot came back and nothing is left queued
