"""Progress of long work (prep on ~840k files takes tens of minutes): a tqdm bar on a terminal, and where
nobody watches a bar (CI logs, files) one line every few percent, formatted by tqdm too.

A stage whose size is unknown until it ends (pass 1 reads the source once) has no ETA: it shows its count
and rate, and off a terminal a line every `EVERY_S` seconds. Every stage ends with a line of its totals.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm  # type: ignore[import-untyped]

STEP_PERCENT = 5  # off a terminal: a line each time another 5 % is done
EVERY_S = 30.0  # ...or, for a stage of unknown size, each 30 s
_LINE = "{desc}: {percentage:3.0f}% {n_fmt}/{total_fmt}{unit} [{elapsed}<{remaining}, {rate_fmt}]"
_OPEN_LINE = "{desc}: {n_fmt}{unit} [{elapsed}, {rate_fmt}]"


class Progress:
    """One stage's counter: `with Progress("segment", "texts", total) as p: ... p.update(n)`."""

    def __init__(
        self, desc: str, unit: str, total: int | None = None, *, enabled: bool = True, stream: TextIO | None = None
    ) -> None:
        self.desc, self.unit, self.total = desc, unit, total
        self.n = 0
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self._started = self._last_line = time.monotonic()
        self._next_percent = STEP_PERCENT
        self._bar = None
        if enabled and self.stream.isatty():
            self._bar = tqdm(total=total, desc=desc, unit=f" {unit}", file=self.stream, dynamic_ncols=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: int) -> None:
        if n <= 0:
            return
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.enabled and self._line_due():
            self._line()

    def close(self) -> None:
        """The final count: the bar's last state, or one more line."""
        if self._bar is not None:
            self._bar.close()
        elif self.enabled:
            self._line()
        self.enabled = False  # closing twice writes nothing more

    def _line_due(self) -> bool:
        if not self.total:
            return time.monotonic() - self._last_line >= EVERY_S
        if self.n >= self.total or self.n * 100 < self._next_percent * self.total:
            return False  # the 100 % line is close()'s
        self._next_percent = (self.n * 100 // self.total // STEP_PERCENT + 1) * STEP_PERCENT
        return True

    def _line(self) -> None:
        now = time.monotonic()
        self._last_line = now
        meter = tqdm.format_meter(
            self.n,
            self.total,
            now - self._started,
            prefix=self.desc,
            unit=f" {self.unit}",
            bar_format=_LINE if self.total else _OPEN_LINE,
        )
        print(meter, file=self.stream, flush=True)
