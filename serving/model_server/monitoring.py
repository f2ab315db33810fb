"""TF Serving's Prometheus metrics, named as its exporter names them (`/tensorflow/serving/request_count`
becomes `:tensorflow:serving:request_count`, counters without a `_total` suffix)."""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict

from prometheus_client.utils import floatToGoString

# monitoring::Buckets::Exponential(10, 1.8, 33): microsecond latencies up to ~20 minutes
LATENCY_BUCKETS = [10 * 1.8**i for i in range(33)]

_COUNTERS = {
    "request_count": ("The total number of requests.", ("model_name", "status")),
    "model_warmup_records_read": ("Total number of warmup records read during model warmup.", ("model_path", "status")),
}
_HISTOGRAMS = {
    "request_latency": (
        "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
        ("model_name", "API", "entrypoint"),
    ),
    "runtime_latency": (
        "Distribution of wall time (in microseconds) for Tensorflow runtime.",
        ("model_name", "API", "runtime"),
    ),
    "model_warmup_latency": (
        "Distribution of wall time (in microseconds) for warming up the model.",
        ("model_path", "status"),
    ),
}


def _prom_name(short: str) -> str:
    return f":tensorflow:serving:{short}"


class Metrics:
    """Thread-safe tallies that the front ends and the lifecycle update.

    The exposition is written here rather than by prometheus_client's registry, which would rename
    counters to `..._total` and so differ from what TF Serving scrapes expose."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, dict[tuple, float]] = defaultdict(lambda: defaultdict(float))
        self._hists: dict[str, dict[tuple, list]] = defaultdict(dict)

    def count(self, name: str, *labels: str, by: float = 1) -> None:
        with self._lock:
            self._counts[name][labels] += by

    def observe(self, name: str, micros: float, *labels: str) -> None:
        with self._lock:
            cell = self._hists[name].setdefault(labels, [[0] * (len(LATENCY_BUCKETS) + 1), 0.0, 0])
            cell[0][bisect.bisect_left(LATENCY_BUCKETS, micros)] += 1
            cell[1] += micros
            cell[2] += 1

    def exposition(self) -> bytes:
        """Prometheus text format the way TF Serving's PrometheusExporter writes it."""
        lines: list[str] = []
        with self._lock:
            for short, (_, label_names) in _COUNTERS.items():
                name = _prom_name(short)
                lines.append(f"# TYPE {name} counter")
                for labels, value in self._counts[short].items():
                    lines.append(
                        f"{name}{_labels(dict(zip(label_names, labels, strict=True)))} {floatToGoString(value)}"
                    )
            for short, (_, label_names) in _HISTOGRAMS.items():
                name = _prom_name(short)
                lines.append(f"# TYPE {name} histogram")
                for labels, (buckets, total, count) in self._hists[short].items():
                    base = dict(zip(label_names, labels, strict=True))
                    running = 0
                    for bound, hits in zip(LATENCY_BUCKETS + [float("inf")], buckets, strict=True):
                        running += hits
                        lines.append(f"{name}_bucket{_labels({**base, 'le': floatToGoString(bound)})} {running}")
                    lines.append(f"{name}_sum{_labels(base)} {floatToGoString(total)}")
                    lines.append(f"{name}_count{_labels(base)} {count}")
        return ("\n".join(lines) + "\n").encode()


def _labels(labels: dict[str, str]) -> str:
    escaped = (
        f'{k}="{str(v).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"' for k, v in labels.items()
    )
    return "{" + ",".join(escaped) + "}"
