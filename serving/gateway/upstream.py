"""The one small interface the gateway needs from TF Serving, whichever protocol carries it.

`rest_client.RestUpstream` and `grpc_client.GrpcUpstream` implement it (and the tests' in-process
FakeUpstream); `resilience.GuardedUpstream` wraps either with retries and a circuit breaker. All raise
`errors.UpstreamError` on failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Signature:
    """The serving signature (contract.SIGNATURE) of one resolved model version (from the metadata API)."""

    model: str
    version: int
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class VersionStatus:
    version: int
    state: str  # START, LOADING, AVAILABLE, UNLOADING, END
    error_code: str
    error_message: str


class Upstream(Protocol):
    target: str  # where TF Serving is, for messages and /v1/models

    def metadata(self, model: str, version: int | None = None, label: str | None = None) -> Signature:
        """Resolve a version (latest, a number or a label) and read its serving signature."""

    def status(self, model: str) -> list[VersionStatus]: ...

    def predict(
        self, model: str, version: int, input_name: str, values: Sequence[str], outputs: Sequence[str]
    ) -> dict[str, list[Any]]:
        """Run the serving signature on a batch of strings; output name -> nested Python lists."""

    def close(self) -> None: ...
