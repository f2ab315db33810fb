"""Server-side batching with TF Serving's knobs (BatchingParameters): concurrent calls of one signature on
one version are concatenated along dim 0, run once, and the outputs split back.

A batch closes when it reaches max_batch_size, when a task no longer fits, or batch_timeout_micros after it
opened; num_batch_threads workers run closed batches; more than max_enqueued_batches waiting batches per
queue makes new tasks fail UNAVAILABLE. With allowed_batch_sizes a batch is padded up to the next allowed
size with copies of its first row, and the padding is dropped from the outputs.
"""

from __future__ import annotations

import collections
import os
import threading
import time
from collections.abc import Mapping

import numpy as np

from serving.model_server.errors import deadline_exceeded, invalid_argument, unavailable
from serving.model_server.signature import Signature


class _Task:
    def __init__(self, inputs: Mapping[str, np.ndarray], size: int) -> None:
        self.inputs = inputs
        self.size = size
        self.done = threading.Event()
        self.outputs: dict[str, np.ndarray] | None = None
        self.error: Exception | None = None


class _Batch:
    def __init__(self, signature: Signature, outputs: tuple[str, ...]) -> None:
        self.signature = signature
        self.outputs = outputs
        self.tasks: list[_Task] = []
        self.size = 0
        self.opened = time.monotonic()


class BatchScheduler:
    """Shared by all models; one queue per (version, signature, per-row input shapes)."""

    def __init__(self, params) -> None:
        self.max_batch_size = params.max_batch_size.value if params.HasField("max_batch_size") else 1000
        self.timeout = (params.batch_timeout_micros.value if params.HasField("batch_timeout_micros") else 0) / 1e6
        self.max_enqueued = params.max_enqueued_batches.value if params.HasField("max_enqueued_batches") else 10
        threads = params.num_batch_threads.value if params.HasField("num_batch_threads") else (os.cpu_count() or 1)
        self.allowed_sizes = sorted(params.allowed_batch_sizes)
        if self.allowed_sizes and self.allowed_sizes[-1] != self.max_batch_size:
            raise invalid_argument(
                "Last entry in allowed_batch_sizes must match max_batch_size; last entry was "
                f"{self.allowed_sizes[-1]}; expected {self.max_batch_size}"
            )
        self._queues: dict[tuple, collections.deque[_Batch]] = {}
        self._cond = threading.Condition()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"batch-{index}", daemon=True) for index in range(max(threads, 1))
        ]
        for thread in self._threads:
            thread.start()

    def close(self) -> None:
        """Shutdown: run the batches already queued at once, then stop the worker threads; new tasks are refused."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join()

    def run(
        self,
        servable_id: int,
        signature: Signature,
        inputs: Mapping[str, np.ndarray],
        deadline: float | None = None,
        outputs: tuple[str, ...] = (),
    ) -> dict[str, np.ndarray]:
        """Run `signature` on `inputs` as part of a batch, fetching `outputs` (all when empty); blocks until this
        task's rows come back. Only tasks that fetch the same outputs share a batch."""
        sizes = {value.shape[0] if value.ndim else None for value in inputs.values()}
        if None in sizes:
            raise invalid_argument("Batching session Run() input tensors must have at least one dimension")
        if len(sizes) != 1:
            raise invalid_argument("Batching session Run() input tensors must have equal 0th-dimension size")
        size = sizes.pop()
        if size > self.max_batch_size:
            raise invalid_argument(f"Task size {size} is larger than maximum input batch size {self.max_batch_size}")
        key = (
            servable_id,
            signature.name,
            outputs,
            tuple((name, value.dtype.str, value.shape[1:]) for name, value in sorted(inputs.items())),
        )
        task = _Task(inputs, size)
        with self._cond:
            if self._closed:
                raise unavailable("The batch scheduler is shutting down.")
            queue = self._queues.setdefault(key, collections.deque())
            if queue and queue[-1].size + size <= self.max_batch_size:
                batch = queue[-1]
            else:
                if len(queue) >= self.max_enqueued:
                    raise unavailable("The batch scheduling queue to which this task was submitted is full")
                batch = _Batch(signature, outputs)
                queue.append(batch)
            batch.tasks.append(task)
            batch.size += size
            self._cond.notify()
        remaining = None if deadline is None else max(deadline - time.monotonic(), 0)
        if not task.done.wait(remaining):
            raise deadline_exceeded()
        if task.error is not None:
            raise task.error
        return task.outputs

    def _next_ready(self) -> tuple[_Batch | None, float | None]:
        """The oldest closed batch (once the scheduler is closed, every batch is), else how long until the oldest
        open one times out."""
        now = time.monotonic()
        best_key, wait = None, None
        for key, queue in self._queues.items():
            if not queue:
                continue
            head = queue[0]
            ready = (
                self._closed or len(queue) > 1 or head.size >= self.max_batch_size or now - head.opened >= self.timeout
            )
            if ready and (best_key is None or head.opened < self._queues[best_key][0].opened):
                best_key = key
            elif not ready:
                left = self.timeout - (now - head.opened)
                wait = left if wait is None else min(wait, left)
        if best_key is None:
            return None, wait
        batch = self._queues[best_key].popleft()
        if not self._queues[best_key]:
            del self._queues[best_key]
        return batch, None

    def _work(self) -> None:
        while True:
            with self._cond:
                batch, wait = self._next_ready()
                while batch is None:
                    if self._closed:
                        return
                    self._cond.wait(wait)
                    batch, wait = self._next_ready()
            self._run(batch)

    def _run(self, batch: _Batch) -> None:
        try:
            target = next((s for s in self.allowed_sizes if s >= batch.size), batch.size)
            merged = {}
            for name in batch.tasks[0].inputs:
                parts = [task.inputs[name] for task in batch.tasks]
                if target > batch.size:
                    parts.append(np.repeat(parts[-1][:1], target - batch.size, axis=0))
                merged[name] = np.concatenate(parts, axis=0)
            outputs = batch.signature.run(merged, batch.outputs)
            for name, value in outputs.items():
                if value.ndim == 0 or value.shape[0] != target:
                    raise invalid_argument(
                        f"Batched output tensor '{name}' has 0th dimension "
                        f"{value.shape[0] if value.ndim else 'none'}, expected {target}"
                    )
            offset = 0
            for task in batch.tasks:
                task.outputs = {name: value[offset : offset + task.size] for name, value in outputs.items()}
                offset += task.size
        except Exception as exc:  # every task of a failed batch gets the error
            for task in batch.tasks:
                task.error = exc
        for task in batch.tasks:
            task.done.set()
