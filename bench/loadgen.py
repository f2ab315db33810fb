"""Closed-loop HTTP load with wrk: N connections, each sends its next POST as soon as the last one returns.

The Lua script (`bench/wrk/post.lua`) rotates a file of JSON bodies and prints one `WRK_JSON {...}`
line from its `done()` hook; this module runs wrk and turns that line into a result dict.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from data_prep.atomic import write_text

LUA_SCRIPT = Path(__file__).resolve().parent / "wrk" / "post.lua"
MARKER = "WRK_JSON "


WRK_MISSING = (
    "wrk is not installed: install it (Debian/Ubuntu: `sudo apt-get install -y wrk`, "
    "or build https://github.com/wg/wrk) and run the benchmark again"
)


def ensure_wrk() -> str:
    """Path of wrk, or exit with one line saying how to install it: a benchmark never installs anything."""
    found = shutil.which("wrk")
    if not found:
        raise SystemExit(WRK_MISSING)
    return found


def write_bodies(path: Path, bodies: list[dict[str, Any]]) -> Path:
    """One compact JSON body per line, UTF-8 kept as is (wrk sends the bytes verbatim)."""
    write_text(path, "".join(json.dumps(b, ensure_ascii=False) + "\n" for b in bodies))
    return path


def run_wrk(
    url: str,
    bodies_file: Path,
    *,
    connections: int,
    duration_s: int,
    texts_per_request: int = 1,
    threads: int = 1,
    timeout_s: int = 30,
) -> dict[str, Any]:
    """One measurement point. One wrk thread by default: on 2 cores every core wrk takes is one the
    server under test loses, and one epoll thread drives well past what we measure (see the ceiling)."""
    cmd = [
        ensure_wrk(),
        f"-t{min(threads, connections)}",
        f"-c{connections}",
        f"-d{round(duration_s)}s",
        f"--timeout={round(timeout_s)}s",
        "--latency",
        "-s",
        str(LUA_SCRIPT),
        url,
        "--",
        str(bodies_file),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + timeout_s + 30)
    line = next((out for out in proc.stdout.splitlines() if out.startswith(MARKER)), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout[-500:]}")
    raw = json.loads(line[len(MARKER) :])
    seconds = raw["duration_us"] / 1e6
    errors = raw["non2xx"] + sum(raw["socket_errors"].values())
    ok = raw["requests"] - raw["non2xx"]
    lat = raw["latency_us"]
    return {
        "connections": connections,
        "duration_s": round(seconds, 2),
        "requests": raw["requests"],
        "requests_per_s": round(raw["requests"] / seconds, 1),
        "texts_per_s": round(ok * texts_per_request / seconds, 1),
        "latency_ms": {
            k: round(v / 1000, 2) for k, v in lat.items() if k in ("p50", "p90", "p95", "p99", "p99_9", "mean", "max")
        },
        "non2xx": raw["non2xx"],
        "socket_errors": raw["socket_errors"],
        "errors": errors,
    }
