"""The body limit holds for chunked bodies as for sized ones: over it is 413 body_too_large, never a body
cut at the limit (and answered 200) nor a 400; a body of exactly the limit is read whole.

Real HTTP over loopback with hand-written requests (a raw socket: `Transfer-Encoding: chunked` as a
client sends it), against werkzeug's threaded server and against gunicorn as production runs it. The
limit is decided before any TF Serving call, so no model server is needed: werkzeug serves the app on the
in-process fake upstream, gunicorn points at a port where nothing listens.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator

import pytest

from bench.processes import free_port
from tests.support.fake_upstream import FakeUpstream, fake_app
from tests.support.gated_upstream import serving
from tests.support.live_gateway import gunicorn_gateway

LIMIT = 2 * 1024 * 1024  # the default TEXTCLF_MAX_BODY_BYTES


def body_of(size: int) -> bytes:
    """A classify body of exactly `size` bytes: valid JSON (padded with spaces) with no texts (a 422)."""
    start = b'{"model": "news", "texts": []'
    return start + b" " * (size - len(start) - 1) + b"}"


def post(url: str, body: bytes, *, chunked: bool, chunk: int = 65536) -> tuple[int, dict]:
    """POST /v1/classify over a raw socket; the body sized or in chunks; the answer's status and JSON.

    The body is sent from a thread while the answer is read: a server may answer 413 before the whole
    body is in, and the answer must be read even if it stops reading (then the send fails, which is fine)."""
    host, port = url.removeprefix("http://").split(":")
    framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % len(body)
    head = (
        b"POST /v1/classify HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n%s\r\nConnection: close\r\n\r\n"
        % (host.encode(), framing)
    )
    with socket.create_connection((host, int(port)), timeout=30) as sock:

        def send() -> None:
            with contextlib.suppress(OSError):  # the server answered and closed before taking it all
                sock.sendall(head)
                for i in range(0, len(body), chunk):
                    piece = body[i : i + chunk]
                    sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                if chunked:
                    sock.sendall(b"0\r\n\r\n")

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        status, headers, payload = read_answer(sock)
        with contextlib.suppress(OSError):  # the server may have closed first (gunicorn answers 413 and closes)
            sock.shutdown(socket.SHUT_RDWR)  # werkzeug drains the rest of the body until the client is gone
        sender.join(30)
    assert b"chunked" not in headers.lower(), headers  # the gateway answers with a Content-Length
    return status, json.loads(payload)


def read_answer(sock: socket.socket) -> tuple[int, bytes, bytes]:
    """Status, header block and body of one HTTP answer framed by Content-Length (not by the close)."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(65536)
    head, _, payload = answer.partition(b"\r\n\r\n")
    status_line, _, headers = head.partition(b"\r\n")
    length = int(
        next(line.split(b":")[1] for line in headers.split(b"\r\n") if line.lower().startswith(b"content-length"))
    )
    while len(payload) < length:
        payload += sock.recv(65536)
    return int(status_line.split()[1]), headers, payload


@pytest.fixture(scope="module")
def werkzeug_url() -> Iterator[str]:
    with serving(fake_app(FakeUpstream())) as url:
        yield url


@pytest.fixture(scope="module")
def gunicorn_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("gunicorn") / "gateway.log"
    # nobody listens at the TF Serving address: the limit is decided before any call
    with gunicorn_gateway(log, tfserving_rest=f"http://127.0.0.1:{free_port()}", models="news") as url:
        yield url


@pytest.fixture(params=["werkzeug", "gunicorn"])
def url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue(f"{request.param}_url")


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "sized"])
def test_a_body_of_the_limit_is_read_whole(url, chunked):
    status, answer = post(url, body_of(LIMIT), chunked=chunked)
    assert (status, answer["error"]["code"]) == (422, "invalid_request"), answer  # parsed, not refused


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "sized"])
@pytest.mark.parametrize("size", [LIMIT + 1, 20 * 1024 * 1024], ids=["one_byte_over", "20MB"])
def test_a_body_past_the_limit_is_413(url, chunked, size):
    status, answer = post(url, body_of(size), chunked=chunked)
    assert (status, answer["error"]["code"]) == (413, "body_too_large"), answer
    assert str(LIMIT) in answer["error"]["message"]


def test_a_chunked_classify_that_fits_is_answered(werkzeug_url):
    body = json.dumps({"model": "news", "texts": ["足球 比赛"]}).encode()
    status, answer = post(werkzeug_url, body, chunked=True, chunk=7)
    assert status == 200 and answer["results"][0]["label"] == "体育"
