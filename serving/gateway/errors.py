"""The gateway's error vocabulary: every failure a client sees is `{"error": {"code", "message"}}` with
one of these stable codes, and the upstream clients' failures are normalised to `UpstreamError`."""

from __future__ import annotations

import re

# code -> HTTP status. Clients branch on the code; the status follows HTTP semantics.
CODES = {
    "bad_json": 400,  # body is not JSON / not UTF-8
    "unauthorized": 401,  # X-API-Key missing or wrong
    "not_found": 404,  # no such route
    "model_not_found": 404,  # TF Serving has no such model / version / label
    "method_not_allowed": 405,  # with Allow
    "body_too_large": 413,  # sized or chunked
    "unsupported_media_type": 415,  # POST /v1/classify needs Content-Type: application/json
    "invalid_request": 422,  # JSON is fine but a field is missing, of the wrong type or out of range
    "too_many_texts": 422,
    "text_too_long": 422,
    "unsupported_model": 422,  # signature takes neither `tokens` nor `text`, or lacks the outputs we read
    "upstream_rejected": 422,  # TF Serving called the request invalid (INVALID_ARGUMENT)
    "upstream_error": 502,  # TF Serving answered with an error we cannot blame on the request
    "bad_model_output": 502,  # TF Serving answered, but not with what the signature promises
    "upstream_unavailable": 503,  # TF Serving unreachable after retries
    "model_unavailable": 503,  # TF Serving knows the model but no version of it is AVAILABLE now
    "circuit_open": 503,  # failing fast: TF Serving has been failing, retrying after a pause
    "upstream_timeout": 504,  # TF Serving too slow, or the client's X-Request-Timeout-Ms / timeout_ms spent
    "invalid_timeout": 400,  # X-Request-Timeout-Ms is not whole milliseconds in range
    "overloaded": 503,  # shed: the worker already works on max_in_flight requests (with Retry-After)
    "internal": 500,  # a bug: the only 500
    # answered by the front (buffering_worker.py / serving/nginx) before the app sees the request
    "bad_request": 400,  # malformed request line, header or chunked framing (e.g. Content-Length: abc, CR in a value)
    "request_timeout": 408,  # headers or body not received in time
    "uri_too_long": 414,
    "expectation_failed": 417,  # an Expect other than 100-continue
    "headers_too_large": 431,
    "not_implemented": 501,  # a Transfer-Encoding other than chunked
}


class ApiError(Exception):
    """An error with a stable code; the app renders it as JSON with the code's HTTP status (or `status`,
    for an HTTP error Werkzeug raised whose status no code names)."""

    def __init__(
        self, code: str, message: str, status: int | None = None, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status if status is not None else CODES[code]
        self.headers = headers or {}  # sent with the error answer, e.g. Retry-After


# HTTP status -> code, for what Werkzeug itself rejects before a route runs
_HTTP_CODES = {
    400: "bad_json",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


def http_code(status: int) -> str:
    """The code for an HTTP error Werkzeug raised: the one named for its status, else a catch-all by class."""
    return _HTTP_CODES.get(status, "invalid_request" if status < 500 else "internal")


# UpstreamError kinds and the client-facing code each becomes
UPSTREAM_KINDS = {
    "unavailable": "upstream_unavailable",  # connection refused/reset, gRPC UNAVAILABLE, HTTP 503
    "timeout": "upstream_timeout",
    "not_found": "model_not_found",
    "invalid_argument": "upstream_rejected",
    "failed": "upstream_error",
}


class UpstreamError(Exception):
    """TF Serving (REST or gRPC) failed; `kind` is protocol-independent."""

    def __init__(self, kind: str, message: str) -> None:
        assert kind in UPSTREAM_KINDS, kind
        super().__init__(message)  # str(exc): the whole message, for logs
        self.kind = kind
        self.message = public_message(message)  # what a client may see

    @property
    def is_outage(self) -> bool:
        """True if the failure says TF Serving is unhealthy (counts for the circuit breaker)."""
        return self.kind in ("unavailable", "timeout")

    def to_api_error(self) -> ApiError:
        code = UPSTREAM_KINDS[self.kind]
        if self.kind == "invalid_argument" and "version label" in self.message:
            code = "model_not_found"  # TF Serving says INVALID_ARGUMENT for an unknown label; to a client it is a 404
        return ApiError(code, f"TF Serving: {self.message}")


_INTERNALS = re.compile(r"\[\[|\{\{|\s+\(most recent call last\)|\bStack trace\b")
_PATH = re.compile(r"(?<![\w.])(?:[A-Za-z]:)?(?:[/\\][^\s/\\:'\"]+){2,}[/\\]?")
_MAX_MESSAGE = 200


def public_message(message: str) -> str:
    """TF Serving's message cut to what a client may see: the first line, without graph internals (node
    names, op stacks) or absolute paths, at most 200 characters; the whole message goes to the logs."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    first = _INTERNALS.split(lines[0] if lines else "", maxsplit=1)[0].strip().rstrip(":")
    first = _PATH.sub("<path>", first)
    if len(first) > _MAX_MESSAGE:
        first = first[: _MAX_MESSAGE - 3].rstrip() + "..."
    return first or "no details"
