"""HTTP over raw sockets, for what no HTTP library sends: malformed requests, and slow clients (connections that
send nothing, bodies trickled a byte a second) held open while a test sends normal requests beside them."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

# requests no HTTP library would send: the front (gunicorn or nginx) rejects them before the app sees them
MALFORMED = {
    "malformed request line": b"GARBAGE\r\n\r\n",
    "Content-Length: abc": b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    "CR in a header value": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n",
    "10 KB header": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 10240 + b"\r\n\r\n",
    "100 KB URL": b"GET /" + b"a" * 102400 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "Transfer-Encoding: gzip": b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
}
# what the gateway's own front (the buffering gunicorn worker) answers to each, as (status, stable code)
FRONT_ERRORS = {
    "malformed request line": (400, "bad_request"),
    "Content-Length: abc": (400, "bad_request"),
    "CR in a header value": (400, "bad_request"),
    "10 KB header": (431, "headers_too_large"),
    "100 KB URL": (414, "uri_too_long"),
    "Transfer-Encoding: gzip": (400, "bad_request"),
}


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


def read_answer(sock: socket.socket) -> Answer:
    """One HTTP/1.1 answer (Content-Length framed, or up to EOF), skipping 1xx interim answers."""
    data = b""
    while True:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"connection closed before an answer: {data[:200]!r}")
            data += chunk
        head, _, data = data.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        if status >= 200:
            break
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    if "content-length" in headers:
        while len(data) < int(headers["content-length"]):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    else:
        while chunk := sock.recv(65536):
            data += chunk
    return Answer(status, headers, data)


def exchange(port: int, raw: bytes, timeout: float = 15) -> Answer:
    """Send `raw` on a fresh loopback connection and read the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(raw)
        except OSError:
            pass  # the server may answer and close before taking all of a huge request
        return read_answer(sock)


def classify_request(body: bytes, request_id: str = "") -> bytes:
    """The request line and headers of a POST /v1/classify carrying `body` (which is not included)."""
    extra = f"X-Request-ID: {request_id}\r\n" if request_id else ""
    return (
        f"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{extra}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()


BODY = json.dumps({"model": "news", "texts": ["看足球"]}).encode()


@dataclass
class SlowClients:
    """`idle` connections that send nothing and `trickling` ones sending a classify body a byte a second."""

    port: int
    idle: int
    trickling: int
    body: bytes = BODY  # a whole classify request body, trickled
    sockets: list[socket.socket] = field(default_factory=list)
    tricklers: list[socket.socket] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    sent: dict[int, int] = field(default_factory=dict)  # trickler index -> body bytes sent

    def open(self) -> None:
        for _ in range(self.idle):
            self.sockets.append(socket.create_connection(("127.0.0.1", self.port), timeout=30))
        for index in range(self.trickling):
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
            sock.sendall(classify_request(self.body, f"trickle-{index}"))
            self.tricklers.append(sock)
            self.sent[index] = 0
            thread = threading.Thread(target=self._trickle, args=(index, sock), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _trickle(self, index: int, sock: socket.socket) -> None:
        while not self._stop.wait(1.0) and self.sent[index] < len(self.body) - 1:  # never the last byte on its own
            try:
                sock.sendall(self.body[self.sent[index] : self.sent[index] + 1])
            except OSError:
                return
            self.sent[index] += 1

    def stop_trickling(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)

    def finish(self, index: int) -> Answer:
        """Send the rest of trickler `index`'s body at once and read its answer: it was held, not dropped."""
        sock = self.tricklers[index]
        sock.sendall(self.body[self.sent[index] :])
        return read_answer(sock)

    def close(self) -> None:
        self.stop_trickling()
        for sock in self.sockets + self.tricklers:
            sock.close()


@contextmanager
def slow_clients(port: int, idle: int = 200, trickling: int = 50, body: bytes = BODY) -> Iterator[SlowClients]:
    clients = SlowClients(port, idle, trickling, body)
    try:
        clients.open()
        time.sleep(2)  # the first bytes of every body are in: gthread would have given each trickler a thread
        yield clients
    finally:
        clients.close()
