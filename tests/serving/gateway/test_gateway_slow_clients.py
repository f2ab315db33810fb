"""Slow clients cost `textclf serve` a file descriptor, not a worker thread (serving/gateway/buffering_worker.py).

With 200 connections that send nothing and 50 trickling a body at 1 byte/s held open against the defaults
(2 workers x 32 threads), normal classify requests keep being answered, each within 1 s: a functional bound,
not a benchmark (stock gthread made them wait 8 s, then past 60 s). The held clients are still served when
they finish, and headers that never finish get 408 in the gateway's error format.
"""

from __future__ import annotations

import socket
import time

import pytest

from serving.gateway.buffering_worker import Incoming
from serving.gateway.errors import CODES
from tests.support.raw_http import read_answer, slow_clients
from tests.support.serve_process import serving

LIMIT = 100  # body bytes, for the Incoming cases


@pytest.mark.slow
def test_normal_requests_are_answered_beside_200_idle_and_50_trickling_clients(model_server, tmp_path):
    with serving(model_server, tmp_path) as served:
        unfinished = socket.create_connection(("127.0.0.1", served.port), timeout=30)
        unfinished.sendall(b"POST /v1/classify HTTP/1.1\r\nHost: x\r\n")  # headers that never end
        with slow_clients(served.port, idle=200, trickling=50) as clients:
            for index in range(10):
                answer = served.classify("看足球", f"normal-{index}", timeout=1)  # ReadTimeout past 1 s
                assert answer.status_code == 200 and answer.json()["results"][0]["label"] == "体育"
                time.sleep(0.2)
            clients.stop_trickling()
            finished = clients.finish(0)  # held, not dropped: the whole body arrives, the request is served
            assert finished.status == 200 and finished.headers["x-request-id"] == "trickle-0"
            idle = clients.sockets[0]  # within its header timeout an idle connection still gets an answer
            idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_answer(idle).status == 200
        timed_out = read_answer(unfinished)  # CLIENT_HEADER_TIMEOUT_S after it connected
        unfinished.close()
        assert timed_out.status == 408 and timed_out.json()["error"]["code"] == "request_timeout"
        assert CODES["request_timeout"] == 408 and len(timed_out.headers["x-request-id"]) == 32


def fed(*parts: bytes) -> bool:
    incoming = Incoming(deadline=0.0, max_body_bytes=LIMIT)
    for part in parts:
        incoming.data += part
        done = incoming.complete()
    return done


HEAD = b"POST /v1/classify HTTP/1.1\r\nHost: x\r\n"
CHUNKED = HEAD + b"Transfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(
    ("parts", "complete"),
    [
        ((b"GET / HTTP/1.1\r\nHost: x\r\n",), False),  # headers not finished
        ((b"GET / HTTP/1.1\r\nHost: x\r\n", b"\r\n"), True),
        ((HEAD + b"Content-Length: 10\r\n\r\n", b"12345"), False),  # half the body
        ((HEAD + b"Content-Length: 10\r\n\r\n", b"12345", b"67890"), True),
        ((CHUNKED, b"5\r\nhel"), False),
        ((CHUNKED, b"5\r\nhello\r\n", b"0\r\n"), False),  # the last chunk, but not the blank line after it
        ((CHUNKED, b"5\r\nhello\r\n", b"0\r\n\r\n"), True),
        ((CHUNKED, b"5;ext=1\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n"), True),
        # hopeless ones go to a thread at once: gunicorn's parser or the app answers without waiting
        ((HEAD + b"Content-Length: abc\r\n\r\n",), True),
        ((HEAD + b"Content-Length: 101\r\n\r\n",), True),  # past the body limit: 413 from the app
        ((HEAD + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\n",), True),
        ((HEAD + b"Transfer-Encoding: gzip\r\n\r\n",), True),
        ((CHUNKED, b"zz\r\n"), True),
        ((CHUNKED, b"40\r\n" + b"a" * 64 + b"\r\n", b"40\r\n"), True),  # chunks past the body limit
        ((b"GET /" + b"a" * 70_000,), True),  # no end of headers in sight: 414 from the parser
    ],
)
def test_a_request_goes_to_a_thread_once_whole_or_hopeless(parts, complete):
    assert fed(*parts) is complete
