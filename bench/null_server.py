"""A server that does nothing: answers every request 200 `{}` at once, with keep-alive.

wrk is measured against it first, so the report says how many requests/s the instrument (wrk plus one
loopback HTTP hop on this machine) can drive at all; figures near that ceiling would measure wrk, not us.
"""

from __future__ import annotations

import argparse
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class NullHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as wrk expects

    def setup(self) -> None:
        super().setup()
        # one write per answer and no Nagle: otherwise every answer waits for the client's delayed ACK
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.wfile.write(RESPONSE)

    do_GET = do_POST

    def log_message(self, format: str, *args: object) -> None:  # a line per request would dominate
        pass


class NullServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # wrk closes its connections mid-request when the duration ends: not an error here


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    NullServer(("127.0.0.1", args.port), NullHandler).serve_forever()


if __name__ == "__main__":
    main()
