"""The payload log: a sampled JSONL record of what the gateway classified, for drift reports and relabelling.

`TEXTCLF_PAYLOAD_LOG=DIR` turns it on; `TEXTCLF_PAYLOAD_SAMPLE` (0-1, default 1) is the share of classify
requests logged. Each worker process appends to its own `DIR/payload-<host>-<pid>.jsonl` (opened by the
process that writes, so gunicorn workers never share a file or interleave lines), rotated past
`TEXTCLF_PAYLOAD_MAX_BYTES` to `.1`, `.2` ... and at most `TEXTCLF_PAYLOAD_BACKUPS` of those are kept.
A restarted worker has a new pid, so a new file: to bound the folder, each rotation also deletes this host's
files, oldest (by modification time) first, while their total is above `TEXTCLF_PAYLOAD_MAX_TOTAL_BYTES`
(default 1 GiB). Only rotated files and the files of processes no longer running are deleted, never a live
file of a running writer; another host's files (a shared folder) are its own gateway's to prune.

One line per classified text: {"time", "request_id", "model", "version", "text", "chars", "label", "score",
"top_k", "latency_ms"}; `text` is the cleaned text with PII replaced (redaction.py) before it leaves the
process's memory, and `chars` its length before redaction (what /metrics and training measure: a phone
number becomes the shorter [PHONE]); logs written before `chars` existed lack it. Texts empty after cleaning
were never classified and are not logged. The route only samples and appends to a bounded queue (a full
queue drops the request's records and counts them); one daemon thread per worker (background.py) redacts,
writes and flushes, so the caller never waits on the disk. A failed write drops that batch (counted) and the
file is opened again for the next one; a file deleted under the writer (the folder removed, logrotate) is
reopened, as logging.WatchedFileHandler does.

`read_records` reads a DIR or one file back, oldest record first: `textclf drift` and `textclf predict` use it.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import logging
import math
import os
import random
import re
import socket
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from data_prep.errors import UserError
from serving.gateway.background import BackgroundQueue
from serving.gateway.redaction import Redactor

log = logging.getLogger("textclf.gateway.payload")

FIELDS = ("time", "request_id", "model", "version", "text", "chars", "label", "score", "top_k", "latency_ms")
OPTIONAL = frozenset({"chars"})  # absent from logs written before it was added
PREFIX = "payload-"
SUFFIX = ".jsonl"
_ROTATED = re.compile(r"^(?P<base>payload-.+\.jsonl)(?:\.(?P<n>[1-9][0-9]*))?$")
_PID = re.compile(r"-(?P<pid>[0-9]+)\.jsonl$")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # fixed width: records sort by their time string
# a top score below this counts as unsure (the gateway's textclf_gateway_low_confidence_total, and the drift
# report's default): the margin over the runner-up is then under 0.2 on a two-label model (whose top score is
# never below 0.5, so 0.5 would count nothing there), and on a many-label model the others hold 40% or more
DEFAULT_LOW_CONFIDENCE = 0.6
DEFAULT_MAX_TOTAL_BYTES = 1024**3


def format_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime(_TIME_FORMAT)


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


# --- reading ------------------------------------------------------------------------------------------------


def read_records(log: Path, *, model: str | None = None, since: datetime | None = None) -> Iterator[dict[str, Any]]:
    """Every record of the log at `log` (a payload-log DIR, or one of its files with its rotated siblings),
    oldest first; only `model`'s, and only those at or after `since` (naive = UTC), when given.

    A truncated last line (a worker killed mid-write, or a line being written now) is skipped; a line that is
    not a payload log record (another file, or a record with a wrong value) is a UserError naming file and line."""
    log = Path(log)
    groups = _file_groups(log)
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=timezone.utc)
    streams = [_read_group(files) for files in groups]
    for record in heapq.merge(*streams, key=lambda r: str(r["time"])):
        if model is not None and record["model"] != model:
            continue
        if since is not None and parse_time(record["time"]) < since:
            continue
        yield record


def is_payload_log(path: Path) -> bool:
    """Whether `path` looks like a payload log (a DIR holding payload-*.jsonl, or such a file): lets
    `textclf predict --input` take one without a flag."""
    path = Path(path)
    if path.is_dir():
        return any(_ROTATED.match(p.name) for p in path.iterdir())
    return bool(_ROTATED.match(path.name))


def _file_groups(log: Path) -> list[list[Path]]:
    """Per worker file, its rotated files then itself (oldest first)."""
    if log.is_dir():
        names = [p.name for p in log.iterdir() if p.is_file()]
        bases = sorted({m["base"] for name in names if (m := _ROTATED.match(name))})
        if not bases:
            raise UserError(f"{log} holds no payload log files ({PREFIX}*{SUFFIX}); is TEXTCLF_PAYLOAD_LOG set?")
        return [_rotated_files(log / base) for base in bases]
    if not log.is_file():
        raise UserError(f"payload log {log} does not exist")
    match = _ROTATED.match(log.name)
    return [_rotated_files(log.parent / match["base"])] if match else [[log]]


def _rotated_files(base: Path) -> list[Path]:
    numbered = []
    for path in base.parent.glob(base.name + ".*"):
        match = _ROTATED.match(path.name)
        if match and match["n"]:
            numbered.append((int(match["n"]), path))
    older = [path for _, path in sorted(numbered, reverse=True)]
    return older + ([base] if base.exists() else [])


def _read_group(files: Sequence[Path]) -> Iterator[dict[str, Any]]:
    for path in files:
        yield from _read_file(path)


def _read_file(path: Path) -> Iterator[dict[str, Any]]:
    try:
        f = open(path, "rb")
    except FileNotFoundError:  # rotated or pruned away since the folder was listed
        return
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    with f:
        for number, raw in enumerate(f, start=1):
            if not raw.endswith(b"\n"):  # the last line, cut short: never a whole record
                return
            record, problem = _parse_line(raw)
            if record is None:
                raise UserError(f"{path} line {number} is not a payload log record ({problem})")
            yield record


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _parse_line(raw: bytes) -> tuple[dict[str, Any] | None, str]:
    """The record on `raw`, or None and what is wrong with it."""
    try:
        record = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None, "not a line of UTF-8 JSON"
    required = [key for key in FIELDS if key not in OPTIONAL]
    if not isinstance(record, dict) or not all(key in record for key in required):
        return None, f"a JSON object with {', '.join(required)}"
    wrong = [key for key, ok in _checks(record).items() if not ok]
    return (None, f"bad {', '.join(wrong)}") if wrong else (record, "")


def _checks(record: dict[str, Any]) -> dict[str, bool]:
    version, chars, top_k = record["version"], record.get("chars", 0), record["top_k"]
    return {
        "time": isinstance(record["time"], str) and _is_time(record["time"]),
        "request_id": isinstance(record["request_id"], str),
        "model": isinstance(record["model"], str),
        "version": isinstance(version, int) and not isinstance(version, bool),
        "text": isinstance(record["text"], str),
        "chars": isinstance(chars, int) and not isinstance(chars, bool) and chars >= 0,
        "label": isinstance(record["label"], str),
        "score": _is_number(record["score"]),
        "top_k": isinstance(top_k, list)
        and all(isinstance(t, dict) and isinstance(t.get("label"), str) and _is_number(t.get("score")) for t in top_k),
        "latency_ms": _is_number(record["latency_ms"]),
    }


def _is_time(value: str) -> bool:
    try:
        parse_time(value)
    except ValueError:
        return False
    return True


# --- writing ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PayloadSettings:
    directory: Path
    sample: float = 1.0
    max_bytes: int = 64 * 1024 * 1024
    backups: int = 5
    queue_size: int = 1024  # requests (not texts) waiting per worker
    redactor: Redactor | None = None  # None: no redaction (TEXTCLF_PAYLOAD_REDACTION=off)
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES  # this host's files in `directory`, pruned on rotation


@dataclass(frozen=True)
class _Pending:
    time: str
    request_id: str
    model: str
    version: int
    texts: tuple[str, ...]
    results: tuple[dict[str, Any], ...]
    latency_ms: float


class PayloadLog:
    """Samples classified requests into a BackgroundQueue whose one thread per process writes them."""

    def __init__(
        self,
        settings: PayloadSettings,
        *,
        on_written: Callable[[int], None] = lambda n: None,
        on_dropped: Callable[[int], None] = lambda n: None,
        sample: Callable[[], float] = random.random,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings
        self._on_written = on_written
        self._on_dropped = on_dropped
        self._sample = sample
        self._clock = clock
        self._file: _RotatingFile | None = None  # opened by the writer thread: in the process that writes
        self._queue: BackgroundQueue[_Pending] = BackgroundQueue(
            "textclf-payload-log",
            settings.queue_size,
            self._write,
            on_dropped=lambda pending: on_dropped(len(pending.texts)),
            on_failed=self._failed,
            on_exit=self._close_file,
            close_at_exit=2.0,  # a worker's graceful exit writes what is queued
        )

    def offer(
        self,
        request_id: str,
        model: str,
        version: int,
        texts: Sequence[str],
        results: Sequence[dict[str, Any]],
        latency_ms: float,
    ) -> None:
        """Maybe queue one classified request (`texts` cleaned, one result each). Never blocks, never raises."""
        if not texts or not self._sample() < self.settings.sample:
            return
        self._queue.offer(  # stamped under the queue's lock: one worker's file is in time order
            lambda: _Pending(
                format_time(self._clock()),
                request_id,
                model,
                version,
                tuple(texts),
                tuple(results),
                round(latency_ms, 3),
            )
        )

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every queued record is written and flushed; False if `timeout` passed first."""
        return self._queue.join(timeout)

    def close(self, timeout: float | None = 5.0) -> None:
        """Stop taking records; the writer writes what is queued, closes the file and exits."""
        self._queue.close(timeout)

    def _write(self, batch: Iterable[_Pending]) -> None:
        if self._file is not None and self._file.unlinked():  # deleted under us: write where readers look
            self._close_file()
        if self._file is None:
            self._file = _RotatingFile(self.settings)
        written = 0
        for pending in batch:
            for text, result in zip(pending.texts, pending.results, strict=True):
                self._file.write(_line(pending, text, result, self.settings.redactor))
                written += 1
        self._file.flush()
        self._on_written(written)

    def _failed(self, batch: list[_Pending]) -> None:
        """A write failed (a full disk, a failed rotation): count the batch, reopen for the next one."""
        self._on_dropped(sum(len(p.texts) for p in batch))
        self._close_file()

    def _close_file(self) -> None:
        if self._file is not None:
            file, self._file = self._file, None
            with contextlib.suppress(OSError):  # its last buffered lines are lost with the failed batch
                file.close()


def _line(pending: _Pending, text: str, result: dict[str, Any], redactor: Redactor | None) -> bytes:
    record = {
        "time": pending.time,
        "request_id": pending.request_id,
        "model": pending.model,
        "version": pending.version,
        "text": redactor.redact(text) if redactor is not None else text,
        "chars": len(text),
        "label": result["label"],
        "score": result["score"],
        "top_k": [{"label": t["label"], "score": t["score"]} for t in result.get("top_k", ())],
        "latency_ms": pending.latency_ms,
    }
    # ensure_ascii=False keeps Chinese readable; JSON escapes "\n", so one record is always one line
    return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")


def log_file_name() -> str:
    """This process's file: host and pid keep workers (and gateways sharing a folder) apart."""
    return f"{PREFIX}{socket.gethostname()}-{os.getpid()}{SUFFIX}"


class _RotatingFile:
    """This process's log file, appended to and rotated by size (only the writer thread touches it)."""

    def __init__(self, settings: PayloadSettings) -> None:
        self.settings = settings
        settings.directory.mkdir(parents=True, exist_ok=True)
        self.path = settings.directory / log_file_name()
        self._f: IO[bytes] = open(self.path, "ab")
        self._size = self._f.tell()

    def write(self, line: bytes) -> None:
        if self._size and self._size + len(line) > self.settings.max_bytes:
            self._rotate()
            prune(self.settings.directory, self.settings.max_total_bytes)
        self._f.write(line)
        self._size += len(line)

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        self._f.close()

    def unlinked(self) -> bool:
        return os.fstat(self._f.fileno()).st_nlink == 0

    def _rotate(self) -> None:
        """payload-….jsonl -> .1 -> .2 …; the oldest past `backups` is deleted."""
        self._f.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{self.path}.{self.settings.backups}")
        for n in range(self.settings.backups - 1, 0, -1):
            with contextlib.suppress(FileNotFoundError):
                os.replace(f"{self.path}.{n}", f"{self.path}.{n + 1}")
        os.replace(self.path, f"{self.path}.1")
        self._f = open(self.path, "ab")
        self._size = 0


def prune(directory: Path, max_total_bytes: int) -> list[Path]:
    """Delete this host's rotated files and dead workers' files, oldest first, while this host's files hold
    more than `max_total_bytes`; the live files of running processes are kept. Returns what was deleted."""
    host = f"{PREFIX}{socket.gethostname()}-"
    files: list[tuple[float, int, Path, bool]] = []  # (mtime, size, path, deletable)
    for path in directory.iterdir():
        match = _ROTATED.match(path.name)
        if not match or not path.name.startswith(host):
            continue
        with contextlib.suppress(FileNotFoundError):
            stat = path.stat()
            files.append((stat.st_mtime, stat.st_size, path, bool(match["n"]) or not _running(match["base"])))
    total = sum(size for _, size, _, _ in files)
    deleted = []
    for _, size, path, deletable in sorted(files, key=lambda f: f[0]):
        if total <= max_total_bytes:
            break
        if deletable:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                deleted.append(path)
            total -= size
    return deleted


def _running(base: str) -> bool:
    """Whether the process whose file is `base` runs (on this host; a reused pid counts as running)."""
    match = _PID.search(base)
    if match is None:
        return True
    pid = int(match["pid"])
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
