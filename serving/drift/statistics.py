"""Distribution distances for drift: the population stability index (PSI) over shared bins."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

# a bin one side never fills would make ln(p/q) infinite: shares are floored here (the usual PSI convention)
SHARE_FLOOR = 1e-4
LENGTH_QUANTILES = np.linspace(0.1, 0.9, 9)  # deciles of the reference: ten bins of about equal reference mass


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Population stability index of two share vectors over the same bins: sum (a - e) * ln(a / e).
    Rule of thumb: < 0.1 stable, 0.1-0.25 a moderate shift, > 0.25 a large one."""
    e = np.maximum(np.asarray(expected, dtype=float), SHARE_FLOOR)
    a = np.maximum(np.asarray(actual, dtype=float), SHARE_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def shares(counts: Mapping[str, int], keys: Sequence[str]) -> list[float]:
    """counts[key] / total for each key, in the given order (0 for a key not counted)."""
    total = sum(counts.get(k, 0) for k in keys)
    return [counts.get(k, 0) / total if total else 0.0 for k in keys]


def length_edges(reference: np.ndarray) -> np.ndarray:
    """Bin edges at the reference's length deciles (deduplicated: short texts share many lengths)."""
    return np.unique(np.quantile(reference, LENGTH_QUANTILES, method="lower"))


def binned_shares(values: np.ndarray, edges: np.ndarray) -> list[float]:
    """Share of `values` in each bin (-inf, e0], (e0, e1], ..., (e_last, inf)."""
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)
    return (counts / max(len(values), 1)).tolist()


def bin_names(edges: np.ndarray) -> list[str]:
    """Readable names of the bins binned_shares counts: "<=12", "13-20", ..., ">80"."""
    bounds = [int(e) for e in edges]
    names = [f"<={bounds[0]}"] if bounds else ["all"]
    names += [f"{lo + 1}-{hi}" if hi > lo + 1 else str(hi) for lo, hi in zip(bounds, bounds[1:], strict=False)]
    return names + ([f">{bounds[-1]}"] if bounds else [])
