"""Issue 13 items 7-8 on a default-flags server: REST input TF Serving answers with 400 (over raw sockets where
the HTTP framing itself is bad), the body size limit, the loopback bind and gRPC config reloads refused."""

from __future__ import annotations

import gzip
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import requests
from tensorflow_serving.apis import model_management_pb2, model_service_pb2_grpc

from tests.support.half_plus_two import export_half_plus_two
from tests.support.servers import ModelServer

pytestmark = pytest.mark.slow

MAX_BODY = 65536  # above the 20 kB deeply nested document below


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelServer]:
    base = tmp_path_factory.mktemp("robust") / "half"
    export_half_plus_two(base, "1", warmup=False)
    flags = ["--model_name=half", f"--model_base_path={base}", f"--rest_api_max_body_bytes={MAX_BODY}"]
    with ModelServer(flags, base.parent / "server.log", models=["half"]) as running:
        yield running


def raw_post(server: ModelServer, headers: str, body: bytes = b"") -> tuple[int, dict[str, str], dict]:
    """One request written byte for byte; returns (status, headers, JSON body) of the answer."""
    with socket.create_connection(("127.0.0.1", server.rest_port), timeout=30) as sock:
        sock.sendall(f"POST /v1/models/half:predict HTTP/1.1\r\nHost: t\r\n{headers}\r\n".encode() + body)
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.partition(b"\r\n\r\n")[2]) < _length(answer):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    head, _, payload = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), fields, json.loads(payload)


def _length(answer: bytes) -> int:
    for line in answer.partition(b"\r\n\r\n")[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 1 << 30


@pytest.mark.parametrize(
    "content_length, status, error",
    [
        ("abc", 400, "Invalid Content-Length header: 'abc'"),
        ("-5", 400, "Invalid Content-Length header: '-5'"),
        ("99999999999999999999", 400, "Invalid Content-Length header"),
        ("999999999999", 413, f"exceeds the limit of {MAX_BODY} bytes"),
        (str(MAX_BODY + 1), 413, f"exceeds the limit of {MAX_BODY} bytes"),
    ],
)
def test_a_bad_content_length_is_answered_at_once_and_the_connection_closed(server, content_length, status, error):
    code, headers, body = raw_post(server, f"Content-Length: {content_length}\r\n", b'{"instances": [1.0]}')
    assert (code, headers.get("Connection")) == (status, "close")
    assert error in body["error"]


def test_a_chunked_body_is_read_and_bounded(server):
    body = b'{"instances": [1.0, 2.0]}'
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    assert raw_post(server, "Transfer-Encoding: chunked\r\n", chunked)[::2] == (200, {"predictions": [2.5, 3.0]})
    big = b"%x\r\n" % (MAX_BODY + 1) + b" " * (MAX_BODY + 1) + b"\r\n0\r\n\r\n"
    assert raw_post(server, "Transfer-Encoding: chunked\r\n", big)[0] == 413


def test_a_gzip_body_is_uncompressed_and_bounded(server):
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    url = f"{server.rest_url}/v1/models/half:predict"
    answer = requests.post(url, data=gzip.compress(b'{"instances": [1.0]}'), headers=headers, timeout=30)
    assert answer.json() == {"predictions": [2.5]}
    bomb = gzip.compress(b'{"instances": [' + b" " * (MAX_BODY * 4) + b"1.0]}")  # small on the wire only
    assert len(bomb) < MAX_BODY
    assert requests.post(url, data=bomb, headers=headers, timeout=30).status_code == 413
    broken = requests.post(url, data=b"not gzip at all", headers=headers, timeout=30)
    assert broken.status_code == 400 and "gzip" in broken.json()["error"]


@pytest.mark.parametrize(
    "path, body, error",
    [
        (
            "/v1/models/half/versions/99999999999999999999:predict",
            b'{"instances": [1.0]}',
            "Failed to convert version: 99999999999999999999 to numeric.",
        ),
        ("/v1/models/half:predict", b'{"instances": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", "JSON Parse error"),
        (
            "/v1/models/half:predict",
            b'{"signature_name": "echo", "instances": ["\\ud800"]}',
            "JSON Parse error: The surrogate pair in string is invalid.",
        ),
        (
            "/v1/models/half:predict",
            b'{"signature_name": "echo", "instances": ["a\\udc00b"]}',
            "JSON Parse error: The surrogate pair in string is invalid.",
        ),
        (  # more digits than int() converts: refused by length first
            "/v1/models/half/versions/" + "9" * 5000 + ":predict",
            b'{"instances": [1.0]}',
            "Failed to convert version: " + "9" * 5000 + " to numeric.",
        ),
        (  # a surrogate encoded in UTF-8, not escaped: invalid UTF-8
            "/v1/models/half:predict",
            b'{"signature_name": "echo", "instances": ["\xed\xa0\x80"]}',
            "JSON Parse error: Invalid encoding in string. at offset: 42",
        ),
        (  # deeper than numpy's 64 dimensions, too shallow for a parse error
            "/v1/models/half:predict",
            b'{"instances": ' + b"[" * 100 + b"1.0" + b"]" * 100 + b"}",
            "tensor parsing error: x",
        ),
        ("/v1/models/half:predict", b'{"inputs": ' + b"[" * 900 + b"]" * 900 + b"}", "tensor parsing error: x"),
    ],
)
def test_json_tf_serving_refuses_is_a_400_with_its_error_format(server, path, body, error):
    answer = requests.post(
        f"{server.rest_url}{path}", data=body, headers={"Content-Type": "application/json"}, timeout=30
    )
    assert answer.status_code == 400 and list(answer.json()) == ["error"], answer.text
    assert error in answer.json()["error"]


def test_a_surrogate_pair_escape_is_a_character(server):
    answer = requests.post(
        f"{server.rest_url}/v1/models/half:predict",
        data=b'{"signature_name": "echo", "instances": ["\\ud83d\\ude00"]}',
        timeout=30,
    )
    assert answer.json() == {"predictions": [{"length": 1, "upper": "\U0001f600"}]}


def _listening_addresses(port: int) -> set[str]:
    """Local addresses listening on `port`, read from the kernel's socket tables."""
    found = set()
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        for line in table.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


def test_both_ports_listen_on_loopback_only(server):
    loopback_v4, loopback_mapped_v6 = "0100007F", "0000000000000000FFFF00000100007F"
    assert _listening_addresses(server.rest_port) == {loopback_v4}
    assert _listening_addresses(server.grpc_port) <= {loopback_v4, loopback_mapped_v6}
    assert _listening_addresses(server.grpc_port)


def test_grpc_config_reloads_are_refused_by_default(server, tmp_path):
    request = model_management_pb2.ReloadConfigRequest()
    request.config.model_config_list.config.add(name="elsewhere", base_path=str(tmp_path))
    with grpc.insecure_channel(server.grpc_target) as channel:
        with pytest.raises(grpc.RpcError) as refused:
            model_service_pb2_grpc.ModelServiceStub(channel).HandleReloadConfigRequest(request, timeout=30)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "--allow_reload_config" in refused.value.details()
    assert requests.get(f"{server.rest_url}/v1/models/elsewhere", timeout=5).status_code == 404
