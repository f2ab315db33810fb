"""TF Serving's REST API (http_rest_api_handler.cc) over a threaded HTTP/1.1 server with keep-alive.

Each request: parse the path once (Route), FillModelSpec, read the JSON body, call the dataplane, render
the answer as JSON. Nothing here holds a servable.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import socket
import time
import zlib
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

import grpc
import numpy as np
from google.protobuf import json_format
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, model_pb2

from serving.contract import version_number
from serving.model_server import json_tensor
from serving.model_server.dataplane import SIGNATURE_DEF_FIELD, DataPlane
from serving.model_server.errors import ServingError, invalid_argument

log = logging.getLogger(__name__)

# RE2 (TF Serving's matcher) has an ASCII-only \d; Python's would also take e.g. Arabic-Indic digits
_PREDICT = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)",
    re.IGNORECASE | re.ASCII,
)
_STATUS = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?",
    re.IGNORECASE | re.ASCII,
)
_V1 = re.compile(r"/v1/.*", re.IGNORECASE | re.DOTALL)
# A connection that sends nothing for this long (headers unfinished, a body shorter than its Content-Length, an
# idle keep-alive) is closed, freeing its thread: libevent's evhttp, under TF Serving, uses 50 s
READ_TIMEOUT_S = 50.0


@dataclasses.dataclass(frozen=True)
class Route:
    """A request path parsed once: which API, which model, and which version or label of it."""

    api: str  # predict, classify, regress, metadata or status
    model: str
    version: str | None = None
    label: str | None = None


def parse_route(method: str, path: str) -> Route:
    match = _PREDICT.fullmatch(path) if method == "POST" else _STATUS.fullmatch(path) if method == "GET" else None
    if match is None:
        raise invalid_argument(f"Malformed request: {method} {path}")
    name = unquote(match.group(1) or "")
    version, label = match.group(2), unquote(match.group(3)) if match.group(3) else None
    if method == "POST":
        return Route(match.group(4).lower(), name, version, label)
    if not name:
        raise invalid_argument("Missing model name in request.")
    return Route("metadata" if match.group(4) else "status", name, version, label)


def fill_model_spec(route: Route) -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec(name=route.model)
    if route.version:
        version = version_number(route.version)
        if version is None:  # absl::SimpleAtoi into an int64 fails the same way
            raise invalid_argument(f"Failed to convert version: {route.version} to numeric.")
        spec.version.value = version
    if route.label:
        spec.version_label = route.label
    return spec


class RestApi:
    """Turns (method, path, body) into (HTTP status, JSON text), independent of the HTTP server."""

    def __init__(self, plane: DataPlane, timeout_ms: int) -> None:
        self.plane = plane
        self.timeout = timeout_ms / 1000 if timeout_ms > 0 else None

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, str, str, str]:
        """Returns (http status, body, model name, api) — the last two label the metrics."""
        start = time.monotonic()
        name, api = "", ""
        try:
            route = parse_route(method, path)
            name = route.model
            spec = fill_model_spec(route)
            if route.api == "status":
                output = self._status(spec)
            elif route.api == "metadata":
                output = self._metadata(spec)
            else:
                api = route.api
                deadline = start + self.timeout if self.timeout else None
                doc = json_tensor.parse_body(body)
                output = self._post(api, spec, doc, deadline)
        except Exception as exc:  # noqa: BLE001 - every failure becomes TF Serving's {"error": ...}
            if not isinstance(exc, ServingError):
                log.exception("REST request %s %s failed", method, path)
                exc = ServingError(grpc.StatusCode.INTERNAL, str(exc))
            self.plane.metrics.count("request_count", name, exc.code_name)
            return exc.http_status, json_tensor.render_error(exc.message), name, api
        self.plane.metrics.count("request_count", name, "OK")
        if api:
            self.plane.metrics.observe("request_latency", (time.monotonic() - start) * 1e6, name, api, "REST")
        return 200, output, name, api

    def _post(self, api: str, spec: model_pb2.ModelSpec, doc: dict, deadline: float | None) -> str:
        spec.signature_name = json_tensor.signature_name(doc)
        if api == "predict":

            def read_inputs(infos: Mapping[str, meta_graph_pb2.TensorInfo]) -> Mapping[str, np.ndarray]:
                return json_tensor.predict_inputs(doc, infos, spec.signature_name)

            _, outputs = self.plane.predict(spec, read_inputs, deadline=deadline, for_rest_inputs=True)
            return json_tensor.render_predictions(outputs, json_tensor.request_format(doc))
        model_input = json_tensor.examples_input(doc)
        if api == "classify":
            return json_tensor.render_classification(self.plane.classify(spec, model_input, deadline).result)
        return json_tensor.render_regression(self.plane.regress(spec, model_input, deadline).result)

    def _status(self, spec: model_pb2.ModelSpec) -> str:
        response = self.plane.status(get_model_status_pb2.GetModelStatusRequest(model_spec=spec))
        return json_format.MessageToJson(response, indent=1, always_print_fields_with_no_presence=True)

    def _metadata(self, spec: model_pb2.ModelSpec) -> str:
        request = get_model_metadata_pb2.GetModelMetadataRequest(model_spec=spec, metadata_field=[SIGNATURE_DEF_FIELD])
        response = self.plane.metadata(request)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata[SIGNATURE_DEF_FIELD].Unpack(signature_map)
        options = dict(indent=1, always_print_fields_with_no_presence=True, preserving_proto_field_name=True)
        return (
            '{\n"model_spec":' + json_format.MessageToJson(response.model_spec, **options) + ",\n"
            '"metadata": {"signature_def": ' + json_format.MessageToJson(signature_map, **options) + "}\n}\n"
        )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server_version = ""
    sys_version = ""
    api: RestApi
    metrics_path: str | None
    max_body: int

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - one line per request is too much here
        log.debug(format, *args)

    def _reply(self, status: int, body: bytes, content_type: str = "application/json", close: bool = False) -> None:
        self.close_connection = self.close_connection or close
        head = (
            f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            f"{'Connection: close' + chr(13) + chr(10) if close else ''}\r\n"
        ).encode("latin-1")
        self.wfile.write(head + body)  # one write: no Nagle/delayed-ACK stall on keep-alive connections

    def _read_body(self) -> bytes:
        """The body by Content-Length or chunked, at most max_body bytes; _BadBody when the framing is bad or
        too large (the connection then closes: the rest of the stream cannot be trusted)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            received = 0
            while size_line := self.rfile.readline(66).split(b";")[0].strip():
                if not re.fullmatch(rb"[0-9a-fA-F]{1,15}", size_line):
                    raise _BadBody(400, f"Invalid chunk size: {size_line[:20]!r}")
                size = int(size_line, 16)
                if received + size > self.max_body:
                    raise _BadBody(413, f"Request body exceeds the limit of {self.max_body} bytes.")
                if size == 0:
                    while self.rfile.readline(8192).strip():  # trailers
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                received += size
                self.rfile.readline(3)
            raise _BadBody(400, "Malformed chunked request body.")
        header = self.headers.get("Content-Length")
        if header is None:
            return b""
        if not re.fullmatch(r"[0-9]{1,19}", header.strip()):
            raise _BadBody(400, f"Invalid Content-Length header: {header[:40]!r}")
        length = int(header)
        if length > self.max_body:
            raise _BadBody(413, f"Request body of {length} bytes exceeds the limit of {self.max_body} bytes.")
        return self.rfile.read(length) if length else b""

    def _gunzip(self, body: bytes) -> bytes:
        """net_http uncompresses a `Content-Encoding: gzip` body before the handler reads it; so does this,
        up to the same max_body."""
        if not body or "gzip" not in self.headers.get("Content-Encoding", "").lower():
            return body
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            plain = inflate.decompress(body, self.max_body + 1)
        except zlib.error as exc:
            raise _BadBody(400, f"Failed to uncompress the gzip request body: {exc}") from None
        if len(plain) > self.max_body:
            raise _BadBody(413, f"Uncompressed request body exceeds the limit of {self.max_body} bytes.")
        return plain

    def _dispatch(self) -> None:
        path = urlsplit(self.path).path
        try:
            body = self._gunzip(self._read_body())
        except _BadBody as bad:
            self._reply(bad.status, json_tensor.render_error(bad.message).encode(), close=True)
            return
        if self.metrics_path and path == self.metrics_path and self.command == "GET":
            self._reply(200, self.api.plane.metrics.exposition(), "text/plain")
        elif not _V1.fullmatch(path):
            self._reply(404, b"")
        elif self.command == "OPTIONS":
            origin_ok = re.search(r"https?://", self.headers.get("Origin", "")) is not None
            self._reply(
                200 if origin_ok else 400,
                b"" if origin_ok else json_tensor.render_error("Origin header is missing in CORS preflight").encode(),
            )
        else:
            status, output, _, _ = self.api.handle(self.command, path, body)
            self._reply(status, output.encode("utf-8"))

    do_GET = do_POST = do_PUT = do_DELETE = do_OPTIONS = _dispatch


class _BadBody(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class RestServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


def make_rest_server(
    api: RestApi,
    host: str,
    port: int,
    metrics_path: str | None,
    max_body: int,
    read_timeout_s: float = READ_TIMEOUT_S,
) -> RestServer | None:
    """None when the port cannot be bound: like TF Serving, the server logs it and keeps serving gRPC."""
    handler = type(
        "RestHandler",
        (_Handler,),
        # StreamRequestHandler sets `timeout` on the socket; a read that times out ends the connection
        {"api": api, "metrics_path": metrics_path, "max_body": max_body, "timeout": read_timeout_s},
    )
    server_class = (
        type("RestServer6", (RestServer,), {"address_family": socket.AF_INET6}) if ":" in host else RestServer
    )
    try:
        return server_class((host, port), handler)
    except OSError as exc:
        log.error("Failed to start HTTP Server at %s:%d (%s)", host, port, exc.strerror or exc)
        return None
