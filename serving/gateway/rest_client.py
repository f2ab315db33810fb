"""TF Serving over its REST API (Contract 3): one pooled keep-alive `requests.Session` per client."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter

from serving.contract import SIGNATURE
from serving.gateway import deadline
from serving.gateway.errors import UpstreamError
from serving.gateway.upstream import Signature, VersionStatus

# HTTP status TF Serving answers with -> UpstreamError kind
_STATUS_KINDS = {400: "invalid_argument", 404: "not_found", 408: "timeout", 503: "unavailable", 504: "timeout"}


class RestUpstream:
    def __init__(self, base_url: str, *, timeout_s: float = 5.0, pool_size: int = 32) -> None:
        self.target = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.session = requests.Session()
        # no urllib3 retries: retrying is GuardedUpstream's job, once, with backoff and a breaker
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def metadata(self, model: str, version: int | None = None, label: str | None = None) -> Signature:
        body = self._call("GET", _model_path(model, version, label) + "/metadata")
        try:
            resolved = int(body["model_spec"]["version"])
            signatures = body["metadata"]["signature_def"]["signature_def"]
        except (KeyError, TypeError, ValueError):
            raise UpstreamError("failed", f"unexpected metadata answer for model {model!r}") from None
        signature = signatures.get(SIGNATURE, {})
        return Signature(model, resolved, tuple(signature.get("inputs", {})), tuple(signature.get("outputs", {})))

    def status(self, model: str) -> list[VersionStatus]:
        body = self._call("GET", _model_path(model, None, None))
        try:
            return [
                VersionStatus(
                    int(item["version"]),
                    item["state"],
                    item.get("status", {}).get("error_code", "OK"),
                    item.get("status", {}).get("error_message", ""),
                )
                for item in body["model_version_status"]
            ]
        except (KeyError, TypeError, ValueError):
            raise UpstreamError("failed", f"unexpected status answer for model {model!r}") from None

    def predict(
        self, model: str, version: int, input_name: str, values: Sequence[str], outputs: Sequence[str]
    ) -> dict[str, list[Any]]:
        payload = {"signature_name": SIGNATURE, "inputs": {input_name: list(values)}}
        body = self._call("POST", _model_path(model, version, None) + ":predict", payload)
        result = body.get("outputs") if isinstance(body, dict) else None
        if not isinstance(result, dict):  # columnar format with ONE output returns the bare value
            result = {outputs[0]: result} if len(outputs) == 1 else None
        if result is None:
            raise UpstreamError("failed", f"unexpected predict answer for model {model!r}")
        return {name: result[name] for name in outputs if name in result}

    def close(self) -> None:
        self.session.close()

    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        timeout_s = deadline.call_timeout(self.timeout_s)  # cut to the client's deadline, if it has one
        try:
            response = self.session.request(method, self.target + path, json=payload, timeout=timeout_s)
        except requests.ConnectTimeout as exc:
            raise UpstreamError("unavailable", f"cannot connect to {self.target}: {exc}") from None
        except requests.Timeout:
            raise UpstreamError("timeout", f"no answer from {self.target} within {timeout_s:.3g} s") from None
        except requests.ConnectionError as exc:
            raise UpstreamError("unavailable", f"cannot reach {self.target}: {type(exc).__name__}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200:
            message = body.get("error") if isinstance(body, dict) else None
            kind = _STATUS_KINDS.get(response.status_code, "failed")
            raise UpstreamError(kind, str(message or f"HTTP {response.status_code}: {response.text[:200]}"))
        if body is None:
            raise UpstreamError("failed", f"{self.target}{path} did not answer JSON")
        return body


def _model_path(model: str, version: int | None, label: str | None) -> str:
    path = f"/v1/models/{quote(model, safe='')}"
    if version is not None:
        path += f"/versions/{version}"
    elif label is not None:
        path += f"/labels/{quote(label, safe='')}"
    return path
