"""The drift report: drift.md for people, drift.png beside it, drift.json for scripts. Each is written atomically;
drift.md is removed first and written last, so it marks a complete report of this run (a script waiting for the
report waits for drift.md)."""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

from data_prep import atomic
from serving.drift.comparison import Drift

MARKDOWN_FILE = "drift.md"
PLOT_FILE = "drift.png"
JSON_FILE = "drift.json"
# matplotlib's default font has no CJK glyphs; the first of these that is installed draws Chinese labels
_CJK_FONTS = ("Noto Sans CJK SC", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "SimHei", "Microsoft YaHei")
_CJK_FILE_HINTS = ("cjk", "wqy", "simhei", "msyh")


def write_report(out: Path, drift: Drift, *, reference: str, log: str, since: str | None) -> None:
    (out / MARKDOWN_FILE).unlink(missing_ok=True)
    atomic.write_text(out / JSON_FILE, json.dumps(summary(drift, reference, log, since), ensure_ascii=False, indent=2))
    _plot(out / PLOT_FILE, drift)
    atomic.write_text(out / MARKDOWN_FILE, markdown(drift, reference, log, since))


def summary(drift: Drift, reference: str, log: str, since: str | None) -> dict[str, Any]:
    return {
        "model": drift.model,
        "versions": drift.versions,
        "records": drift.records,
        "reference": reference,
        "reference_texts": drift.reference_texts,
        "log": log,
        "since": since,
        "drifted": drift.drifted,
        "signals": {s.name: {**asdict(s), "crossed": s.crossed} for s in drift.signals},
        "labels": {
            label: {"reference": ref, "logged": logged}
            for label, ref, logged in zip(drift.labels, *drift.label_shares, strict=True)
        },
        "lengths": {
            name: {"reference": ref, "logged": logged}
            for name, ref, logged in zip(drift.length_bins, *drift.length_shares, strict=True)
        },
        "top_new_words": [{"word": w, "count": n} for w, n in drift.top_new_words],
    }


def markdown(drift: Drift, reference: str, log: str, since: str | None) -> str:
    verdict = "DRIFT: " + ", ".join(s.name for s in drift.signals if s.crossed) if drift.drifted else "no drift"
    lines = [
        f"# Drift report: {drift.model}",
        "",
        f"- logged traffic: {drift.records} texts from `{log}`" + (f" since {since}" if since else ""),
        f"- model versions seen: {', '.join(map(str, drift.versions))}",
        f"- reference: train split of `{reference}` ({drift.reference_texts} texts)",
        f"- result: **{verdict}**",
        "",
        "## Signals",
        "",
        "| signal | value | threshold | | what |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {s.name} | {s.value:.4f} | {s.threshold:g} | {'CROSSED' if s.crossed else 'ok'} | {s.what} |"
        for s in drift.signals
    ]
    lines += ["", "## Labels (share of texts)", "", "| label | training | predicted |", "|---|---|---|"]
    lines += [f"| {k} | {r:.3f} | {g:.3f} |" for k, r, g in zip(drift.labels, *drift.label_shares, strict=True)]
    lines += ["", "## Text length in characters (share of texts)", "", "| chars | training | logged |", "|---|---|---|"]
    lines += [f"| {k} | {r:.3f} | {g:.3f} |" for k, r, g in zip(drift.length_bins, *drift.length_shares, strict=True)]
    lines += ["", f"## Top new words (not in {drift.vocabulary})", ""]
    lines += [f"{i}. {w} ({n})" for i, (w, n) in enumerate(drift.top_new_words, start=1)] or ["(none)"]
    lines += ["", f"![drift]({PLOT_FILE})", ""]
    return "\n".join(lines)


def _plot(path: Path, drift: Drift) -> None:
    from matplotlib import font_manager, rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fonts = ["DejaVu Sans", *_cjk_fonts(font_manager)]
    with rc_context({"font.family": fonts}), warnings.catch_warnings():
        # without a CJK font Chinese labels draw as boxes; drift.md has them in full, so that is not worth a warning
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font", category=UserWarning)
        figure = Figure(figsize=(12, 8))
        FigureCanvasAgg(figure)
        axes = figure.subplots(2, 2)
        _bars(axes[0][0], drift.labels, drift.label_shares, "labels: training vs predicted")
        _bars(axes[0][1], drift.length_bins, drift.length_shares, "text length (chars)")
        scores = axes[1][0]
        scores.hist(drift.scores, bins=20, range=(0, 1))
        scores.axvline(drift.min_score, color="red", linestyle="--")
        scores.set_title(f"top score of logged texts (red: {drift.min_score:g})")
        words = axes[1][1]
        shown = drift.top_new_words[:15][::-1]
        words.barh([w for w, _ in shown], [n for _, n in shown])
        words.set_title("top new words")
        figure.tight_layout()
        with atomic.open_atomic(path, "wb") as f:
            figure.savefig(f, format="png", metadata={"Software": None})


def _cjk_fonts(font_manager: Any) -> list[str]:
    """The CJK fonts of _CJK_FONTS matplotlib can use; a font cache built before one was installed misses it, so
    the system's CJK font files are added when none is known."""
    known = {f.name for f in font_manager.fontManager.ttflist}
    if not known & set(_CJK_FONTS):
        for path in font_manager.findSystemFonts():
            if any(hint in path.lower() for hint in _CJK_FILE_HINTS):
                font_manager.fontManager.addfont(path)
        known = {f.name for f in font_manager.fontManager.ttflist}
    return [f for f in _CJK_FONTS if f in known]


def _bars(axes: Any, names: list[str], values: tuple[list[float], list[float]], title: str) -> None:
    positions = range(len(names))
    axes.bar([p - 0.2 for p in positions], values[0], width=0.4, label="training")
    axes.bar([p + 0.2 for p in positions], values[1], width=0.4, label="logged")
    axes.set_xticks(list(positions), names, rotation=45, ha="right")
    axes.set_ylabel("share of texts")
    axes.set_title(title)
    axes.legend()
