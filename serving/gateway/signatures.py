"""Per model/version/label cache of the resolved version and its serving_default signature.

The gateway learns each model's input kind (`tokens` or `text`) and outputs from TF Serving's metadata
API, and pins every predict to the version the metadata resolved, so the answer (and the metrics) can
name the version even over REST, whose predict response does not say which version ran. A TTL lets a
new version or a moved label (`stable`/`canary`) take over without a restart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from serving.gateway.upstream import Signature

Key = tuple[str, "int | None", "str | None"]


class SignatureCache:
    def __init__(
        self,
        fetch: Callable[[str, int | None, str | None], Signature],
        ttl_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[Key, tuple[float, Signature]] = {}

    def get(self, model: str, version: int | None = None, label: str | None = None) -> Signature:
        key = (model, version, label)
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and entry[0] > self._clock():
            return entry[1]
        signature = self._fetch(model, version, label)  # outside the lock: a slow upstream blocks no one else
        with self._lock:
            self._entries[key] = (self._clock() + self._ttl_s, signature)
        return signature

    def invalidate(self, model: str, version: int | None = None, label: str | None = None) -> None:
        with self._lock:
            self._entries.pop((model, version, label), None)
