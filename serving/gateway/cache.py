"""The gateway's response cache: one LRU per gateway worker, bounded in entries and in bytes.

A result is cached per text under (model, resolved version, cleaned text, top_k). The version is the one
the Classifier resolved for this request (a number, a label or "latest", through its signature cache),
never the one the client asked for: once a label moves or a new latest version loads, the request
resolves to another version and finds no entry under it, so the cache never answers for a version the
request no longer resolves to. (Resolution itself is as fresh as `metadata_ttl_s`, with or without the
cache.) Texts are cleaned before the lookup, so texts that differ only in what cleaning removes share an
entry. One request may mix hits and misses: only the misses go upstream, in one call, each distinct text
once.

Why a lock around an OrderedDict rather than a library: `move_to_end` and `popitem(last=False)` are the
LRU in O(1), and the cache needs two bounds at once (entries and bytes), which cachetools' caches do not
offer (one `maxsize` with one `getsizeof`), and gthread workers need a lock around either. Entries are
stored as JSON strings: a hit decodes a fresh copy (no caller can mutate what the cache holds), and the
string's size is what the byte bound counts.
"""

from __future__ import annotations

import json
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

CacheKey = tuple[str, int, str, int]  # (model, resolved version, cleaned text, top_k)
Result = dict[str, Any]  # one text's {"label", "score", "top_k"}

# what an entry holds besides its two strings: the key tuple, its ints and the OrderedDict's link
ENTRY_OVERHEAD_BYTES = 200


class ResponseCache:
    def __init__(
        self,
        max_entries: int,
        max_bytes: int,
        *,
        on_lookup: Callable[[str, int, int], None] | None = None,
        on_size: Callable[[int, int], None] | None = None,
    ) -> None:
        """`on_lookup(model, hits, misses)` after each lookup; `on_size(entries, bytes)` after each change."""
        if max_entries < 1 or max_bytes < 1:
            raise ValueError(f"a cache needs room: max_entries={max_entries}, max_bytes={max_bytes}")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._on_lookup = on_lookup
        self._on_size = on_size
        self._lock = threading.Lock()
        self._entries: OrderedDict[CacheKey, tuple[str, int]] = OrderedDict()  # key -> (JSON, bytes)
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        """The bytes the entries hold, as the bound counts them."""
        return self._bytes

    def results(
        self,
        model: str,
        version: int,
        top_k: int,
        cleaned: Sequence[str],
        compute: Callable[[list[int]], list[Result]],
    ) -> list[Result]:
        """One result per cleaned text: cached ones, and for the rest ONE `compute(positions)` call (each
        distinct missing text once) whose results are cached. An exception from `compute` caches nothing."""
        keys = [(model, version, text, top_k) for text in cleaned]
        found: list[Result | None] = [None] * len(keys)
        with self._lock:
            for position, key in enumerate(keys):
                entry = self._entries.get(key)
                if entry is not None:
                    self._entries.move_to_end(key)
                    found[position] = json.loads(entry[0])
        misses = [position for position, result in enumerate(found) if result is None]
        if self._on_lookup is not None:
            self._on_lookup(model, len(keys) - len(misses), len(misses))
        if not misses:
            return [result for result in found if result is not None]
        first: dict[CacheKey, int] = {}  # each distinct missing key goes upstream once
        for position in misses:
            first.setdefault(keys[position], position)
        asked = list(first.values())
        computed = compute(asked)
        if len(computed) != len(asked):
            raise ValueError(f"compute returned {len(computed)} results for {len(asked)} texts")
        encoded = {
            keys[position]: json.dumps(result, ensure_ascii=False)
            for position, result in zip(asked, computed, strict=True)
        }
        for position in misses:
            found[position] = json.loads(encoded[keys[position]])
        self._store(encoded)
        return [result for result in found if result is not None]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0
            sizes = (0, 0)
        self._report(sizes)

    def _store(self, encoded: dict[CacheKey, str]) -> None:
        with self._lock:
            for key, value in encoded.items():
                size = entry_bytes(key, value)
                if size > self.max_bytes:
                    continue  # it would evict everything else and still not fit
                old = self._entries.pop(key, None)
                if old is not None:
                    self._bytes -= old[1]
                self._entries[key] = (value, size)
                self._bytes += size
                while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                    _, (_, evicted) = self._entries.popitem(last=False)
                    self._bytes -= evicted
            sizes = (len(self._entries), self._bytes)
        self._report(sizes)

    def _report(self, sizes: tuple[int, int]) -> None:
        if self._on_size is not None:
            self._on_size(*sizes)


def entry_bytes(key: CacheKey, value: str) -> int:
    """What one entry costs against the byte bound: its text and JSON strings as Python holds them, plus
    the fixed cost of the key and the LRU link."""
    return sys.getsizeof(key[0]) + sys.getsizeof(key[2]) + sys.getsizeof(value) + ENTRY_OVERHEAD_BYTES
