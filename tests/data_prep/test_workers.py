"""WorkerPool: spawned workers that hold data_prep's preprocessing and nothing heavier."""

from __future__ import annotations

from collections.abc import Iterator

from data_prep.workers import PreprocessorSpec, WorkerPool, segment


def test_workers_do_not_import_tensorflow() -> None:
    with WorkerPool(2, PreprocessorSpec(None, True, None, None)) as pool:
        assert (
            pool.apply(
                eval, "sorted(m for m in __import__('sys').modules if m.split('.')[0] in ('tensorflow', 'keras'))"
            )
            == []
        )
        assert pool.apply(eval, "'jieba' in __import__('sys').modules")


def test_results_come_back_in_input_order_through_a_small_window() -> None:
    """Chunk 0 is far longer than the rest, so unordered results would come back shuffled; and no more than
    the window of chunks is taken from the input before the first result is handed on (memory stays flat)."""
    chunks = [["很长的一句话。" * 20_000], *([f"第{i}句话"] for i in range(1, 12))]
    taken: list[int] = []

    def feed() -> Iterator[list[str]]:
        for i, chunk in enumerate(chunks):
            taken.append(i)
            yield chunk

    with WorkerPool(2, PreprocessorSpec(None, True, None, None), window_per_worker=1) as pool:
        results = []
        for result in pool.map_ordered(segment, feed()):
            if not results:
                assert len(taken) <= pool.window
            results.append(result)
    assert [cleaned for [(cleaned, _)] in results] == [chunk[0] for chunk in chunks]
