"""WorkerPool: spawned workers that hold data_prep's preprocessing and nothing heavier."""

from __future__ import annotations

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
    chunks = [[f"第{i}句话"] for i in range(12)]
    with WorkerPool(2, PreprocessorSpec(None, True, None, None), window_per_worker=1) as pool:
        results = list(pool.map_ordered(segment, chunks))
    assert [cleaned for [(cleaned, _)] in results] == [chunk[0] for chunk in chunks]
