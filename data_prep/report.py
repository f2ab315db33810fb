"""The human-readable side of a prepared dataset: report.md and lengths.png, looked at before training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from data_prep import atomic
from data_prep.dataset_format import LENGTH_PLOT_FILE, REPORT_FILE, SPLITS

PERCENTILES = (50, 90, 95, 99)
STAT_NAMES = {
    "rows_read": "rows read",
    "undecodable_skipped": "undecodable (not UTF-8), skipped",
    "malformed_skipped": "malformed rows (missing field/column, bad JSON), skipped",
    "empty_dropped": "empty after cleaning, dropped",
    "duplicates_dropped": "exact duplicates (after cleaning), dropped",
    "label_conflicts_dropped": "rows whose text also carries another label, dropped",
    "conflicting_texts": "distinct texts with conflicting labels",
    "rare_label_rows_dropped": "rows of labels below --min-count-per-label, dropped",
    "kept": "kept",
}


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def _percentile_rows(split_of: np.ndarray, lengths: np.ndarray) -> list[list[Any]]:
    rows = []
    for s, split in [*enumerate(SPLITS), (None, "all")]:
        values = lengths if s is None else lengths[split_of == s]
        cells = (
            [int(np.percentile(values, p, method="lower")) for p in PERCENTILES]
            if len(values)
            else ["-"] * len(PERCENTILES)
        )
        rows.append([split, *cells, int(values.max()) if len(values) else "-"])
    return rows


def render(meta: dict[str, Any], split_of: np.ndarray, chars: np.ndarray, tokens: np.ndarray) -> str:
    stats = meta["cleaning_stats"]
    counts = meta["counts"]
    lines = [f"# Prepared dataset: {meta['source'].get('name') or meta['source'].get('path')}", ""]
    lines += [
        f"- source sha256: `{meta['source']['sha256']}`",
        f"- seed {meta['seed']}, split " + ", ".join(f"{k} {v:g}" for k, v in meta["split_ratios"].items()),
        f"- segmenter: {meta['preprocessing']['segmenter']}",
        "",
        "## Cleaning",
        "",
    ]
    lines += _table(["step", "rows"], [[label, stats[key]] for key, label in STAT_NAMES.items() if key in stats])
    if stats["rare_labels"]:
        lines += ["", f"Labels dropped as too rare (label: texts): {stats['rare_labels']}"]
    lines += ["", "## Label distribution", ""]
    lines += _table(
        ["label", *SPLITS, "total"],
        [
            [label, *(counts[s][label] for s in SPLITS), sum(counts[s][label] for s in SPLITS)]
            for label in meta["labels"]
        ]
        + [["total", *(sum(counts[s].values()) for s in SPLITS), stats["kept"]]],
    )
    for unit, lengths in (("chars", chars), ("jieba tokens", tokens)):
        lines += ["", f"## Length in {unit} (percentiles)", ""]
        lines += _table(["split", *(f"p{p}" for p in PERCENTILES), "max"], _percentile_rows(split_of, lengths))
    lines += ["", f"Histogram: `{LENGTH_PLOT_FILE}`", ""]
    return "\n".join(lines)


def _plot(path: Path, chars: np.ndarray, tokens: np.ndarray) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 4))
    FigureCanvasAgg(figure)
    for i, (unit, lengths) in enumerate((("chars", chars), ("jieba tokens", tokens))):
        axes = figure.add_subplot(1, 2, i + 1)
        cut = np.percentile(lengths, 99) if len(lengths) else 1  # a few huge documents would flatten the rest
        axes.hist(np.minimum(lengths, cut), bins=50)
        axes.set_title(f"length in {unit} (clipped at p99 = {int(cut)})")
        axes.set_xlabel(unit)
        axes.set_ylabel("texts")
    figure.tight_layout()
    with atomic.open_atomic(path, "wb") as f:
        figure.savefig(f, format="png", metadata={"Software": None})


def write_report(out: Path, meta: dict[str, Any], split_of: np.ndarray, chars: np.ndarray, tokens: np.ndarray) -> str:
    """Write report.md and lengths.png into `out`; return the markdown."""
    text = render(meta, split_of, chars, tokens)
    atomic.write_text(out / REPORT_FILE, text)
    _plot(out / LENGTH_PLOT_FILE, chars, tokens)
    return text
