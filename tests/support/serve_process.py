"""`textclf serve FLAGS` as users run it, in its own process group against a model server, ready on /readyz."""

from __future__ import annotations

import contextlib
import dataclasses
import subprocess
from collections.abc import Iterator
from pathlib import Path

import requests

from bench.processes import TEXTCLF, child_env, free_port, start, stop, wait_until


@dataclasses.dataclass
class Served:
    proc: subprocess.Popen
    url: str
    log: Path
    tmp: Path  # the process's TMPDIR: where serve makes its metrics folder

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def classify(self, text: str, request_id: str, timeout: float = 10) -> requests.Response:
        return requests.post(
            self.url + "/v1/classify",
            json={"model": "news", "texts": [text]},
            headers={"X-Request-ID": request_id},
            timeout=timeout,
        )

    def metrics_dirs(self) -> list[Path]:
        return sorted(self.tmp.glob("textclf-metrics-*"))


@contextlib.contextmanager
def serving(model_server, tmp_path: Path, *flags: str, **env: str) -> Iterator[Served]:
    """`textclf serve FLAGS` (model `news` over gRPC) with `env` on top of ours; the whole group stopped after.
    A free port is passed as --port unless `env` names TEXTCLF_PORT; the URL follows TEXTCLF_HOST when given."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    cmd = [str(TEXTCLF), "serve", "--tfserving-grpc", model_server.grpc_target, "--model", "news"]
    port = env.get("TEXTCLF_PORT")
    if port is None:
        port = str(free_port())
        cmd += ["--port", port]
    log = tmp_path / "serve.log"
    proc = start([*cmd, *flags], log, child_env(TMPDIR=str(tmp), **env))
    served = Served(proc, f"http://{env.get('TEXTCLF_HOST', '127.0.0.1')}:{port}", log, tmp)
    try:
        wait_until(
            lambda: requests.get(served.url + "/readyz", timeout=2).status_code == 200,
            timeout_s=60,
            proc=served.proc,
            what="textclf serve",
            log=served.log,
        )
        yield served
    finally:
        stop(served.proc)
