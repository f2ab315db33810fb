"""A slow TF Serving, two ways, for the load-shedding and deadline tests, and a threaded server to put
a WSGI app (the gateway, or the slow TF Serving) on a loopback port inside the test process.

- `GatedUpstream` wraps any Upstream (the real REST/gRPC client, or FakeUpstream) and holds every
  predict call until `open()`: it stands in for a TF Serving that is slow to answer, while metadata and
  status pass straight through.
- `HangingTfServing` is a WSGI app speaking TF Serving's REST API for one tokens model (`news`, version 1):
  metadata answers at once, predict hangs until `release` is set. It stands in for a TF Serving that
  stopped answering, so the real `RestUpstream` and its socket timeouts are what the test exercises.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from serving.contract import LABEL, PROBABILITIES, SIGNATURE, TOKENS_INPUT
from serving.gateway.upstream import Signature, Upstream, VersionStatus
from tests.support.fake_upstream import FakeVersion


class PassThroughUpstream:
    """Implements serving.gateway.upstream.Upstream by handing every call to `inner`: subclasses change
    only what they watch or hold (predict)."""

    def __init__(self, inner: Upstream) -> None:
        self.inner = inner
        self.target = inner.target

    def metadata(self, model: str, version: int | None = None, label: str | None = None) -> Signature:
        return self.inner.metadata(model, version, label)

    def status(self, model: str) -> list[VersionStatus]:
        return self.inner.status(model)

    def predict(
        self, model: str, version: int, input_name: str, values: Sequence[str], outputs: Sequence[str]
    ) -> dict[str, list[Any]]:
        return self.inner.predict(model, version, input_name, values, outputs)


class GatedUpstream(PassThroughUpstream):
    """`inner`, but predict waits for the gate."""

    def __init__(self, inner: Upstream) -> None:
        super().__init__(inner)
        self._gate = threading.Event()
        self._lock = threading.Lock()
        self.waiting = 0  # predict calls held at the gate now

    def open(self) -> None:
        self._gate.set()

    def predict(
        self, model: str, version: int, input_name: str, values: Sequence[str], outputs: Sequence[str]
    ) -> dict[str, list[Any]]:
        with self._lock:
            self.waiting += 1
        try:
            self._gate.wait(120)  # bounded only so a broken test cannot hang the suite
        finally:
            with self._lock:
                self.waiting -= 1
        return self.inner.predict(model, version, input_name, values, outputs)

    def close(self) -> None:
        self.inner.close()


class HangingTfServing:
    def __init__(self) -> None:
        self.release = threading.Event()
        self.predicts = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        if request.path == "/v1/models/news/metadata":
            signature = {"inputs": {TOKENS_INPUT: {}}, "outputs": {PROBABILITIES: {}, LABEL: {}}}
            body: dict[str, Any] = {
                "model_spec": {"name": "news", "version": "1"},
                "metadata": {"signature_def": {"signature_def": {SIGNATURE: signature}}},
            }
        elif request.path == "/v1/models/news/versions/1:predict":
            self.predicts += 1
            self.release.wait(120)
            values = json.loads(request.get_data())["inputs"][TOKENS_INPUT]
            body = {"outputs": FakeVersion().answer(values, (PROBABILITIES, LABEL))}
        else:
            body = {"error": f"no route {request.path}"}
            return Response(json.dumps(body), 404, mimetype="application/json")(environ, start_response)
        return Response(json.dumps(body), mimetype="application/json")(environ, start_response)


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve `app` on a free loopback port with a thread per request (like gunicorn's gthread worker)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="test-wsgi", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
