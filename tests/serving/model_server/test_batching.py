"""Server-side batching (BatchScheduler), in process.

The signature is a fake that doubles its input and records every batch it is given: what is under test
is the scheduler (which tasks share a batch, padding, splitting the outputs back, limits and deadlines),
not TensorFlow, which the subprocess test with --enable_batching covers.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time

import grpc
import numpy as np
import pytest

from serving.contract import SIGNATURE
from serving.model_server import protos
from serving.model_server.batching import BatchScheduler
from serving.model_server.errors import ServingError, invalid_argument


class Doubler:
    """Stands in for a Signature: `name` and `run(inputs)`; optionally blocks until released."""

    name = SIGNATURE

    def __init__(self, *, hold: bool = False, fail: bool = False) -> None:
        self.batches: list[list[float]] = []
        self.started = threading.Event()
        self.release = threading.Event()
        self.fail = fail
        if not hold:
            self.release.set()

    def run(self, inputs: dict[str, np.ndarray], outputs: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
        self.batches.append(inputs["x"].tolist())
        self.started.set()
        self.release.wait(5)
        if self.fail:
            raise invalid_argument("bad batch")
        return {"y": inputs["x"] * 2}


def scheduler(**params: object) -> BatchScheduler:
    parsed = protos.BatchingParameters()
    for name, value in params.items():
        if name == "allowed_batch_sizes":
            parsed.allowed_batch_sizes.extend(value)
        else:
            getattr(parsed, name).value = value
    return BatchScheduler(parsed)


def rows(*values: float) -> dict[str, np.ndarray]:
    return {"x": np.array(values, np.float32)}


def test_concurrent_tasks_share_one_batch_and_get_their_own_rows_back():
    batcher, fake = scheduler(max_batch_size=8, batch_timeout_micros=5_000_000, num_batch_threads=1), Doubler()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda i: batcher.run(1, fake, rows(i, i + 0.5))["y"].tolist(), range(4)))
    assert answers == [[2 * i, 2 * i + 1] for i in range(4)]
    assert [len(batch) for batch in fake.batches] == [8]  # full: it ran without waiting out the timeout


def test_a_partial_batch_runs_after_the_timeout():
    batcher, fake = scheduler(max_batch_size=8, batch_timeout_micros=20_000, num_batch_threads=1), Doubler()
    started = time.monotonic()
    assert batcher.run(1, fake, rows(1, 2, 3))["y"].tolist() == [2, 4, 6]
    assert time.monotonic() - started >= 0.02
    assert fake.batches == [[1, 2, 3]]


def test_padding_to_an_allowed_size_is_dropped_from_the_answer():
    batcher = scheduler(max_batch_size=8, batch_timeout_micros=0, allowed_batch_sizes=[4, 8], num_batch_threads=1)
    fake = Doubler()
    assert batcher.run(1, fake, rows(1, 2, 3))["y"].tolist() == [2, 4, 6]
    assert fake.batches == [[1, 2, 3, 1]]  # padded with copies of the first row


def test_a_task_that_does_not_fit_opens_the_next_batch():
    batcher, fake = scheduler(max_batch_size=4, batch_timeout_micros=100_000, num_batch_threads=1), Doubler()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:  # either may come first: 3 + 2 rows never fit in 4
        first = pool.submit(batcher.run, 1, fake, rows(1, 2, 3))
        second = pool.submit(batcher.run, 1, fake, rows(4, 5))
        assert (first.result()["y"].tolist(), second.result()["y"].tolist()) == ([2, 4, 6], [8, 10])
    assert sorted(len(batch) for batch in fake.batches) == [2, 3]


def test_different_versions_or_row_shapes_never_share_a_batch():
    # one row each and room for exactly the three: a wrong merge would fill a batch and run it at once, while
    # the right answer is three partial batches that each wait out the (long) timeout
    batcher, fake = scheduler(max_batch_size=3, batch_timeout_micros=500_000, num_batch_threads=3), Doubler()
    calls = [(1, rows(1)), (2, rows(2)), (1, {"x": np.array([[3, 3]], np.float32)})]
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda call: batcher.run(call[0], fake, call[1]), calls))
    assert sorted(map(str, fake.batches)) == ["[1.0]", "[2.0]", "[[3.0, 3.0]]"]
    assert time.monotonic() - started >= 0.5


def test_limits():
    batcher = scheduler(max_batch_size=8, num_batch_threads=1)
    with pytest.raises(ServingError, match="Task size 9 is larger than maximum input batch size 8"):
        batcher.run(1, Doubler(), rows(*range(9)))
    with pytest.raises(ServingError, match="must have at least one dimension"):
        batcher.run(1, Doubler(), {"x": np.array(1.0, np.float32)})
    with pytest.raises(ServingError, match="must have equal 0th-dimension size"):
        batcher.run(1, Doubler(), {"x": np.zeros(2, np.float32), "z": np.zeros(3, np.float32)})
    with pytest.raises(ServingError, match="Last entry in allowed_batch_sizes must match max_batch_size"):
        scheduler(max_batch_size=8, allowed_batch_sizes=[4])


def test_a_full_queue_refuses_with_unavailable_and_a_late_task_with_deadline_exceeded():
    batcher = scheduler(max_batch_size=2, max_enqueued_batches=1, num_batch_threads=1)
    fake = Doubler(hold=True)
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        running = pool.submit(batcher.run, 1, fake, rows(1, 2))
        assert fake.started.wait(5)  # the only batch thread is busy with it; the queue is empty again
        # two full batches for a queue of one: whichever enqueues second is refused at once, the other waits
        contenders = [pool.submit(batcher.run, 1, fake, rows(3, 4)), pool.submit(batcher.run, 1, fake, rows(5, 6))]
        done, pending = concurrent.futures.wait(contenders, timeout=5, return_when=concurrent.futures.FIRST_COMPLETED)
        assert len(done) == 1 and len(pending) == 1
        with pytest.raises(ServingError) as full:
            done.pop().result()
        assert full.value.code == grpc.StatusCode.UNAVAILABLE
        fake.release.set()
        waiting = pending.pop()
        assert running.result().keys() == waiting.result().keys() == {"y"}
    fake = Doubler(hold=True)
    with pytest.raises(ServingError) as late:
        batcher.run(1, fake, rows(1, 2), deadline=time.monotonic() + 0.05)
    assert late.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    fake.release.set()


def test_every_task_of_a_failed_batch_gets_the_error():
    batcher, fake = scheduler(max_batch_size=4, batch_timeout_micros=5_000_000, num_batch_threads=1), Doubler(fail=True)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(batcher.run, 1, fake, rows(i, i)) for i in range(2)]
        for future in futures:
            with pytest.raises(ServingError, match="bad batch"):
                future.result()
    assert len(fake.batches) == 1


def batch_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("batch-")]


def test_close_stops_the_batch_threads_and_refuses_new_tasks():
    before = batch_threads()
    batcher, fake = scheduler(max_batch_size=4, batch_timeout_micros=0, num_batch_threads=3), Doubler()
    assert batcher.run(1, fake, rows(1))["y"].tolist() == [2]
    assert len(batch_threads()) == len(before) + 3
    batcher.close()
    assert batch_threads() == before
    with pytest.raises(ServingError) as closed:
        batcher.run(1, fake, rows(1))
    assert closed.value.code == grpc.StatusCode.UNAVAILABLE
