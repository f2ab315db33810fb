"""`textclf prep`: raw labelled text -> Contract 1 (cleaned, de-duplicated, split, segmented, sharded).

Two passes keep memory flat however large the corpus is:
  pass 1 cleans every row in the workers and keeps, per non-empty row, only a 16-byte hash of the
         cleaned text, its label id and its length -> dedup, conflict removal and the stratified split
         are decided on these small arrays;
  pass 2 reads the source again, cleans + segments the kept rows in the workers (input order kept) and
         streams them into the TFRecord shards of a temp folder that is renamed into place at the end.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from data_prep import atomic
from data_prep.dataset_format import META_FILE, SCHEMA_VERSION, SPLITS
from data_prep.errors import UserError
from data_prep.progress import Progress
from data_prep.report import write_report
from data_prep.segment import DEFAULT_BACKEND
from data_prep.shards import ShardWriter, shard_count
from data_prep.sources import Source, open_source
from data_prep.splitting import DEFAULT_RATIOS, assign_splits, check_ratios
from data_prep.workers import PreprocessorSpec, WorkerPool, fingerprint, segment, text_digest

CHUNK_TEXTS = 256  # texts per task sent to a worker
CHUNK_CHARS = 1 << 20  # ...or fewer, if they are long
CHANGED = "the source changed while prep was reading it; run prep again"

# per chunk sent to the workers: its (row index, label id or kept-row number) pairs, queued to meet the
# chunk's results, which come back in the same order
Sidecar = collections.deque[list[tuple[int, int]]]


@dataclasses.dataclass
class Scan:
    """Pass 1's small arrays, one entry per row that is readable and non-empty after cleaning."""

    stats: collections.Counter[str]
    label_names: list[str]  # in order of first sight; `label` holds indices into it
    index: np.ndarray  # row number in the source
    label: np.ndarray
    chars: np.ndarray  # cleaned length
    digest: np.ndarray  # text_digest as two uint64 per row


@dataclasses.dataclass
class Plan:
    """What pass 2 writes: the kept rows (ascending source order), their sorted-label ids, split and position."""

    stats: dict[str, Any]
    labels: list[str]
    counts: dict[str, dict[str, int]]
    shards: dict[str, int]
    index: np.ndarray
    digest: np.ndarray
    chars: np.ndarray
    label: np.ndarray
    split_of: np.ndarray
    position: np.ndarray


def prepare_dataset(
    source: str,
    out_dir: Path,
    *,
    split: tuple[float, float, float] = DEFAULT_RATIOS,
    seed: int = 42,
    workers: int | None = None,
    user_dict: Path | None = None,
    stopwords: Path | None = None,
    max_chars: int | None = None,
    min_count_per_label: int = 0,
    hmm: bool = True,
    segmenter: str = DEFAULT_BACKEND,
    force: bool = False,
    progress: bool = False,
    **source_options: Any,
) -> dict[str, Any]:
    """Prepare `source` into `out_dir` and return its meta (also written as meta.json).

    source_options go to `sources.open_source` (text_col, label_col, header, text_key, label_key).
    `progress` shows rows read, texts segmented and shards written on stderr (data_prep.progress).
    """
    out_dir = Path(out_dir)
    ratios = check_ratios(split)
    atomic.refuse_existing(out_dir, force)
    if max_chars is not None and max_chars < 1:
        raise UserError(f"--max-chars must be at least 1, got {max_chars}")
    workers = workers or len(os.sched_getaffinity(0))
    if workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    src = open_source(source, **source_options)
    with WorkerPool(workers, PreprocessorSpec(user_dict, hmm, stopwords, max_chars, segmenter)) as pool:
        with Progress("read", "rows", enabled=progress) as read:
            scan = _scan(src, pool, read)
        plan = _plan(scan, ratios, seed, min_count_per_label, source)
        with atomic.publish_dir(out_dir, force=force) as tmp:
            token_lengths = _write_shards(src, pool, plan, tmp, progress)
            meta = {
                "schema_version": SCHEMA_VERSION,
                "source": {**src.describe(), "sha256": src.sha256()},
                "seed": seed,
                "split_ratios": dict(zip(SPLITS, ratios, strict=True)),
                "labels": plan.labels,
                "counts": plan.counts,
                "shards": plan.shards,
                "preprocessing": pool.preprocessor.config(),
                "cleaning_stats": plan.stats,
            }
            atomic.write_text(tmp / META_FILE, _json(meta))
            write_report(tmp, meta, plan.split_of, plan.chars, token_lengths)
    return meta


def _json(meta: dict[str, Any]) -> str:
    return json.dumps(meta, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def _chunks(rows: Iterator[tuple[int, str, int]], sidecar: Sidecar) -> Iterator[list[str]]:
    """Group (row index, text, extra) into lists of texts; the (index, extra) pairs of each chunk go to
    `sidecar` in the same order, so they can be matched with the ordered results."""
    texts: list[str] = []
    extras: list[tuple[int, int]] = []
    size = 0
    for index, text, extra in rows:
        texts.append(text)
        extras.append((index, extra))
        size += len(text)
        if len(texts) >= CHUNK_TEXTS or size >= CHUNK_CHARS:
            sidecar.append(extras)
            yield texts
            texts, extras, size = [], [], 0
    if texts:
        sidecar.append(extras)
        yield texts


def _scan(src: Source, pool: WorkerPool, read: Progress) -> Scan:
    """Pass 1: per non-empty row its index, label id (in order of first sight), hash and length."""
    stats = collections.Counter(rows_read=0, undecodable_skipped=0, malformed_skipped=0, empty_dropped=0)
    label_ids: dict[str, int] = {}
    index, labels, lengths, digests = array("q"), array("i"), array("i"), bytearray()

    def usable() -> Iterator[tuple[int, str, int]]:
        for i, row in enumerate(src.rows()):
            stats["rows_read"] += 1
            readable = row.readable()
            if readable is None:
                stats[f"{row.problem}_skipped"] += 1
            else:
                text, label = readable
                yield i, text, label_ids.setdefault(label, len(label_ids))

    sidecar: Sidecar = collections.deque()
    for results in pool.map_ordered(fingerprint, _chunks(usable(), sidecar)):
        read.update(stats["rows_read"] - read.n)
        for (i, label), result in zip(sidecar.popleft(), results, strict=True):
            if result is None:
                stats["empty_dropped"] += 1
                continue
            index.append(i)
            labels.append(label)
            digests += result[0]
            lengths.append(result[1])
    read.update(stats["rows_read"] - read.n)  # rows past the last usable one
    return Scan(
        stats=stats,
        label_names=list(label_ids),
        index=np.frombuffer(index, dtype=np.int64),
        label=np.frombuffer(labels, dtype=np.int32),
        chars=np.frombuffer(lengths, dtype=np.int32),
        digest=np.frombuffer(bytes(digests), dtype=np.uint64).reshape(-1, 2),
    )


def _dedup(scan: Scan) -> np.ndarray:
    """Positions (into the scan arrays, ascending) of the rows to keep: the first copy of each cleaned
    text whose copies all carry one label. Counts what it drops into scan.stats."""
    digest, label, stats = scan.digest, scan.label, scan.stats
    n = len(label)
    if n == 0:
        stats.update(duplicates_dropped=0, label_conflicts_dropped=0, conflicting_texts=0)
        return np.empty(0, dtype=np.int64)
    order = np.lexsort((np.arange(n), digest[:, 1], digest[:, 0]))  # by hash, then by row
    sorted_digest = digest[order]
    starts = np.flatnonzero(np.r_[True, np.any(sorted_digest[1:] != sorted_digest[:-1], axis=1)])
    sizes = np.diff(np.r_[starts, n])
    sorted_label = label[order]
    conflict = np.minimum.reduceat(sorted_label, starts) != np.maximum.reduceat(sorted_label, starts)
    stats["duplicates_dropped"] = int((sizes[~conflict] - 1).sum())
    stats["label_conflicts_dropped"] = int(sizes[conflict].sum())
    stats["conflicting_texts"] = int(conflict.sum())
    return np.sort(order[starts[~conflict]])


def _plan(scan: Scan, ratios: tuple[float, float, float], seed: int, min_count: int, source: str) -> Plan:
    """Decide which rows are kept, their label ids (sorted label order), split and shard position."""
    stats = scan.stats
    keep = _dedup(scan)
    names = scan.label_names
    per_label = np.bincount(scan.label[keep], minlength=len(names))
    rare = {names[i]: int(c) for i, c in enumerate(per_label) if 0 < c < min_count}
    stats["rare_label_rows_dropped"] = sum(rare.values())
    labels = sorted(names[i] for i, c in enumerate(per_label) if c >= max(min_count, 1))
    if not labels:
        raise UserError(f"no usable texts in {source}: {_stats_line(stats)}")
    if len(labels) == 1:
        raise UserError(
            f"{source} has only one label ({labels[0]!r}) after cleaning and dedup; a classifier needs two or more"
        )
    new_id = np.full(len(names), -1, dtype=np.int32)
    for i, name in enumerate(labels):
        new_id[names.index(name)] = i
    keep = keep[new_id[scan.label[keep]] >= 0]
    label = new_id[scan.label[keep]]
    split_of, position = assign_splits(label, labels, ratios, seed)
    stats["kept"] = len(keep)
    counts = {
        split: {name: int(np.sum((split_of == s) & (label == i))) for i, name in enumerate(labels)}
        for s, split in enumerate(SPLITS)
    }
    return Plan(
        stats={**dict(stats), "rare_labels": rare},
        labels=labels,
        counts=counts,
        shards={split: shard_count(sum(counts[split].values())) for split in SPLITS},
        index=scan.index[keep],
        digest=scan.digest[keep],
        chars=scan.chars[keep],
        label=label,
        split_of=split_of,
        position=position,
    )


def _stats_line(stats: collections.Counter[str]) -> str:
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in stats.items())


def _write_shards(src: Source, pool: WorkerPool, plan: Plan, out: Path, progress: bool) -> np.ndarray:
    """Pass 2: re-read, clean + segment the kept rows, write them; returns tokens per kept row."""
    wanted = plan.index
    tokens = np.zeros(len(wanted), dtype=np.int32)

    def kept_rows() -> Iterator[tuple[int, str, int]]:
        k = 0
        for i, row in enumerate(src.rows()):
            if k < len(wanted) and i == wanted[k]:
                readable = row.readable()
                if readable is None:  # it was readable in pass 1
                    raise UserError(CHANGED)
                yield i, readable[0], k
                k += 1
        if k != len(wanted):
            raise UserError(CHANGED)

    writer = ShardWriter(out, {split: sum(plan.counts[split].values()) for split in SPLITS})
    try:
        sidecar: Sidecar = collections.deque()
        with Progress("segment", "texts", len(wanted), enabled=progress) as segmented:
            for results in pool.map_ordered(segment, _chunks(kept_rows(), sidecar)):
                for (_, k), (cleaned, words) in zip(sidecar.popleft(), results, strict=True):
                    if text_digest(cleaned) != plan.digest[k].tobytes():
                        raise UserError(CHANGED)
                    tokens[k] = words.count(" ") + 1 if words else 0
                    split = plan.split_of[k]
                    writer.write(SPLITS[split], int(plan.position[k]), cleaned, words, int(plan.label[k]))
                segmented.update(len(results))
        with Progress("shards", "shards", sum(plan.shards.values()), enabled=progress) as written:
            writer.finish(on_shard=lambda: written.update(1))
    finally:
        writer.close()
    return tokens
