"""gunicorn's gthread worker, made to cost a slow client a file descriptor instead of a thread.

Stock gthread hands a connection to a thread as soon as its first byte arrives, and the thread then reads
the request with blocking calls: 64 clients trickling a body at 1 byte/s hold all 2 x 32 threads, and
everyone else waits. This worker reads each request (headers and whole body, sized or chunked) in the
worker's event loop, without a thread, and hands it over only once complete, or once it is malformed or
past the body limit (gunicorn's parser or the app then answers). A request must arrive within
CLIENT_HEADER_TIMEOUT_S for its headers and CLIENT_BODY_TIMEOUT_S more for its body, else 408.

Requests gunicorn rejects before the app sees them (a malformed request line, a bad header, a URL or header
too long) are answered in the gateway's error format, `{"error": {"code", "message"}}` with X-Request-ID,
instead of gunicorn's HTML page. `gunicorn.conf.py` names this class, so the image and `textclf serve` use it.
With TLS (--certfile) connections are read as stock gthread reads them: put a TLS-terminating proxy in front.
"""

from __future__ import annotations

import errno
import json
import re
import time
import uuid
from functools import partial
from selectors import EVENT_READ
from typing import Any

from gunicorn.http import errors as http_errors
from gunicorn.workers.gthread import TConn, ThreadWorker

CLIENT_HEADER_TIMEOUT_S = 10.0  # from the first byte a connection may send (or from accept) to the end of headers
CLIENT_BODY_TIMEOUT_S = 30.0  # from the end of headers to the end of the body
MAX_HEAD_BYTES = 64 * 1024  # past this without a blank line the parser takes over (and answers 414 / 431)
DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024  # when the app does not say (Flask's MAX_CONTENT_LENGTH)
_RECV_BYTES = 64 * 1024
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")

# gunicorn's parse errors -> (status, stable code, message); the codes are in serving/gateway/errors.py's CODES
_FRONT_ERRORS: list[tuple[type[Exception], int, str, str]] = [
    (http_errors.LimitRequestLine, 414, "uri_too_long", "request line too long"),
    (http_errors.LimitRequestHeaders, 431, "headers_too_large", "request header fields too large"),
    (http_errors.UnsupportedTransferCoding, 501, "not_implemented", "unsupported Transfer-Encoding"),
    (http_errors.ExpectationFailed, 417, "expectation_failed", "only Expect: 100-continue is supported"),
    (http_errors.InvalidRequestLine, 400, "bad_request", "malformed HTTP request line"),
    (http_errors.InvalidRequestMethod, 400, "bad_request", "malformed HTTP method"),
    (http_errors.InvalidHTTPVersion, 400, "bad_request", "unsupported HTTP version"),
    (http_errors.InvalidHeaderName, 400, "bad_request", "malformed header name"),
    (http_errors.InvalidHeader, 400, "bad_request", "malformed header"),
    (http_errors.ObsoleteFolding, 400, "bad_request", "folded header lines are not accepted"),
    (http_errors.InvalidChunkSize, 400, "bad_request", "malformed chunked body"),
    (http_errors.ChunkMissingTerminator, 400, "bad_request", "malformed chunked body"),
    (http_errors.InvalidChunkExtension, 400, "bad_request", "malformed chunked body"),
    (http_errors.ParseException, 400, "bad_request", "malformed HTTP request"),
]
_REASONS = {
    400: "Bad Request",
    408: "Request Timeout",
    414: "URI Too Long",
    417: "Expectation Failed",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
}


def error_response(status: int, code: str, message: str) -> bytes:
    """A whole `Connection: close` HTTP/1.1 answer in the gateway's error format, with a fresh X-Request-ID."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    head = (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nX-Request-ID: {uuid.uuid4().hex}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


def front_error(exc: BaseException) -> tuple[int, str, str]:
    """(status, code, message) for an exception gunicorn raised while reading or answering a request."""
    for kind, status, code, message in _FRONT_ERRORS:
        if isinstance(exc, kind):
            return status, code, message
    return 500, "internal", "internal error"


class Incoming:
    """The bytes of one request as they arrive, and whether they make a whole request yet."""

    def __init__(self, deadline: float, max_body_bytes: int) -> None:
        self.data = bytearray()
        self.deadline = deadline
        self.max_body_bytes = max_body_bytes
        self.head_end = -1  # offset past the blank line once the headers are in
        self.content_length = 0
        self.chunked = False
        self.expect_continue = False
        self.chunk_pos = 0  # chunked: offset of the next chunk-size line
        self.chunk_total = 0

    def complete(self) -> bool:
        """True once a thread can take the request: whole, or malformed / too large (gunicorn or the app says
        so without waiting on the client)."""
        if self.head_end < 0:
            end = self.data.find(b"\r\n\r\n")
            if end < 0:
                return len(self.data) > MAX_HEAD_BYTES or b"\n\n" in self.data
            self.head_end = end + 4
            if not self._read_head(bytes(self.data[:end])):
                return True
            self.chunk_pos = self.head_end
        if self.chunked:
            return self._chunks_done()
        return len(self.data) - self.head_end >= self.content_length

    def _read_head(self, head: bytes) -> bool:
        """Note the body framing; False when it is unusual (the parser then judges it)."""
        request_line, *lines = head.split(b"\r\n")
        lengths: list[bytes] = []
        codings: list[bytes] = []
        for line in lines:
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length":
                lengths.append(value)
            elif name == b"transfer-encoding":
                codings.append(value)
            elif name == b"expect":
                self.expect_continue = value == b"100-continue" and request_line.endswith(b"HTTP/1.1")
        if codings:
            self.chunked = not lengths and len(codings) == 1 and codings[0] == b"chunked"
            return self.chunked
        if not lengths:
            return True
        if len(lengths) > 1 or not lengths[0].isdigit():
            return False
        self.content_length = int(lengths[0])
        return self.content_length <= self.max_body_bytes

    def _chunks_done(self) -> bool:
        while True:
            eol = self.data.find(b"\r\n", self.chunk_pos)
            if eol < 0:
                return len(self.data) - self.chunk_pos > 1024  # no chunk-size line is that long
            size = bytes(self.data[self.chunk_pos : eol]).split(b";", 1)[0].strip()
            if not _HEX.fullmatch(size):
                return True
            if int(size, 16) == 0:  # the last chunk; trailers end at a blank line
                trailers = self.data[eol + 2 :]
                return trailers.startswith(b"\r\n") or b"\r\n\r\n" in trailers or len(trailers) > MAX_HEAD_BYTES
            self.chunk_total += int(size, 16)
            if self.chunk_total > self.max_body_bytes:
                return True
            next_pos = eol + 2 + int(size, 16) + 2
            if next_pos > len(self.data):
                return False
            self.chunk_pos = next_pos


class BufferedConn(TConn):
    """A connection whose request the event loop has already read (`prebuffered`), for the parser to take."""

    prebuffered = b""


class BufferingWorker(ThreadWorker):
    """gthread with requests read in the event loop: threads only ever run whole requests."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.incoming: dict[BufferedConn, Incoming] = {}
        self.max_body_bytes = DEFAULT_MAX_BODY_BYTES

    def run(self) -> None:
        """The app is loaded by now: buffer bodies up to its own limit."""
        limit = getattr(self.wsgi, "config", {}).get("MAX_CONTENT_LENGTH")
        self.max_body_bytes = int(limit) if limit else DEFAULT_MAX_BODY_BYTES
        super().run()

    def accept(self, listener: Any) -> None:
        if self.cfg.is_ssl:  # TLS bytes are not HTTP until a thread unwraps them: gthread's own way
            super().accept(listener)
            return
        try:
            sock, client = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        self._start_reading(BufferedConn(self.cfg, sock, client, listener.getsockname()))

    def on_client_socket_readable(self, conn: BufferedConn, client: Any) -> None:
        """A kept-alive connection sends its next request: read it in the loop too."""
        if self.cfg.is_ssl:
            super().on_client_socket_readable(conn, client)
            return
        self.keepalived_conns.remove(conn)
        self._start_reading(conn, kept_alive=True)
        self._on_readable(conn, client)

    def _start_reading(self, conn: BufferedConn, *, kept_alive: bool = False) -> None:
        """Read the connection's next request in the loop. A kept-alive one is non-blocking and registered for
        reading already (gthread's keep-alive wait): only its callback changes, which costs no system call."""
        self.incoming[conn] = Incoming(time.monotonic() + CLIENT_HEADER_TIMEOUT_S, self.max_body_bytes)
        if kept_alive:
            self.poller.modify(conn.sock, EVENT_READ, partial(self._on_readable, conn))
            return
        conn.sock.setblocking(False)
        self.poller.register(conn.sock, EVENT_READ, partial(self._on_readable, conn))

    def _on_readable(self, conn: BufferedConn, _client: Any) -> None:
        incoming = self.incoming.get(conn)
        if incoming is None:  # already handed over or dropped
            return
        try:
            data = conn.sock.recv(_RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away
            self._drop(conn)
            return
        had_head = incoming.head_end >= 0
        incoming.data += data
        if not incoming.complete():
            if not had_head and incoming.head_end >= 0:
                incoming.deadline = time.monotonic() + CLIENT_BODY_TIMEOUT_S
                if incoming.expect_continue:  # the client waits for this before it sends the body
                    self._send_quietly(conn, b"HTTP/1.1 100 Continue\r\n\r\n")
            return
        self.poller.unregister(conn.sock)
        del self.incoming[conn]
        conn.prebuffered = bytes(incoming.data)
        conn.data_ready = True
        self.enqueue_req(conn)

    def handle(self, conn: BufferedConn) -> Any:
        """In a thread: give the parser what the loop read, then gthread's handling as usual."""
        if conn.prebuffered:
            conn.sock.setblocking(True)
            conn.init()
            conn.parser.unreader.unread(conn.prebuffered)
            conn.prebuffered = b""
        return super().handle(conn)

    def murder_pending(self) -> None:
        """gthread's pending connections, and requests that did not arrive in time (408; a connection that
        never sent a byte is just closed, and at once when the worker stops)."""
        super().murder_pending()
        now = time.monotonic()
        for conn, incoming in list(self.incoming.items()):
            if incoming.data and now >= incoming.deadline:
                self._send_quietly(conn, error_response(408, "request_timeout", "request not received in time"))
                self._drop(conn)
            elif not incoming.data and (now >= incoming.deadline or not self.alive):
                self._drop(conn)

    def _drop(self, conn: BufferedConn) -> None:
        del self.incoming[conn]
        try:
            self.poller.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass  # already unregistered
        self.nr_conns -= 1
        conn.close()

    @staticmethod
    def _send_quietly(conn: BufferedConn, data: bytes) -> None:
        """Best effort on a non-blocking socket: a client that does not read its answer is not waited for."""
        try:
            conn.sock.send(data)
        except OSError:
            pass

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        """gunicorn's error page, in the gateway's JSON error format."""
        status, code, message = front_error(exc)
        if status >= 500 and code == "internal":
            self.log.exception("Error handling request")
        else:
            self.log.warning("Invalid request from %s: %s", (addr or ("",))[0], code)
        try:
            client.settimeout(1.0)  # never hold the thread long on a client that does not read
            client.sendall(error_response(status, code, message))
        except OSError:
            self.log.debug("Failed to send error message.")
