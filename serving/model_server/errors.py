"""TF Serving's error model: a canonical status code plus a message, mapped to gRPC and HTTP the way it does."""

from __future__ import annotations

import grpc

# http_server.cc ToHTTPStatusCode
_HTTP_STATUS = {
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}

_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


def status_code(value: int | str) -> grpc.StatusCode:
    """A canonical code from its number (TF's OpError.error_code) or its name (status protos)."""
    if isinstance(value, str):
        return grpc.StatusCode.__members__.get(value, grpc.StatusCode.UNKNOWN)
    return _BY_NUMBER.get(value, grpc.StatusCode.UNKNOWN)


class ServingError(Exception):
    """A request failed with a canonical code; both front ends render it as TF Serving would."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        return _HTTP_STATUS.get(self.code, 500)

    @property
    def code_name(self) -> str:
        """The name TF Serving puts in status protos and metric labels, e.g. NOT_FOUND."""
        return self.code.name


def invalid_argument(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.NOT_FOUND, message)


def failed_precondition(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.FAILED_PRECONDITION, message)


def unavailable(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.UNAVAILABLE, message)


def deadline_exceeded() -> ServingError:
    return ServingError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
