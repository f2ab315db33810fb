"""Clean + fingerprint and clean + segment chunks of texts in worker processes, results in input order.

Workers are started with 'spawn' (no forked copy of the parent's memory or threads) and import only
this module, i.e. data_prep's cleaning and the segmenter backend, never TensorFlow. At most `window` chunks are in
flight, so a corpus of any size passes through in constant memory (Pool.imap would read ahead without
bound).
"""

from __future__ import annotations

import collections
import hashlib
import multiprocessing
import multiprocessing.pool
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import NamedTuple, TypeVar

from data_prep.preprocess import Preprocessor
from data_prep.segment import DEFAULT_BACKEND, Segmenter

A = TypeVar("A")
R = TypeVar("R")


class PreprocessorSpec(NamedTuple):
    """What a worker needs to rebuild the parent's Preprocessor (paths, not a pickled jieba)."""

    user_dict: Path | None
    hmm: bool
    stopwords: Path | None
    max_chars: int | None
    backend: str = DEFAULT_BACKEND

    def build(self) -> Preprocessor:
        segmenter = Segmenter(user_dict=self.user_dict, hmm=self.hmm, stopwords=self.stopwords, backend=self.backend)
        return Preprocessor(segmenter, max_chars=self.max_chars)


_preprocessor: Preprocessor | None = None  # one per worker process, set by _init


def _init(spec: PreprocessorSpec) -> None:
    global _preprocessor
    _preprocessor = spec.build()


def _worker_preprocessor() -> Preprocessor:
    """This process's Preprocessor; fingerprint and segment only run inside a WorkerPool, which sets it."""
    if _preprocessor is None:
        raise RuntimeError("fingerprint/segment called outside a WorkerPool")
    return _preprocessor


def text_digest(cleaned: str) -> bytes:
    """The 16-byte key de-duplication compares (and the second pass re-checks to detect a changed source)."""
    return hashlib.blake2b(cleaned.encode("utf-8"), digest_size=16).digest()


def fingerprint(texts: list[str]) -> list[tuple[bytes, int] | None]:
    """Per text: (text_digest of the cleaned text, its length in chars), or None if it cleans to ''."""
    preprocessor = _worker_preprocessor()
    out: list[tuple[bytes, int] | None] = []
    for text in texts:
        cleaned = preprocessor.clean(text)
        out.append((text_digest(cleaned), len(cleaned)) if cleaned else None)
    return out


def segment(texts: list[str]) -> list[tuple[str, str]]:
    """Per text: (cleaned text, its words joined by one space)."""
    preprocessor = _worker_preprocessor()
    out = []
    for text in texts:
        cleaned = preprocessor.clean(text)
        out.append((cleaned, preprocessor.segmenter.tokens(cleaned)))
    return out


class WorkerPool:
    """`workers` processes (or, for 1, this process) each holding a Preprocessor built from `spec`.

    `preprocessor` is also built here first: a bad dictionary fails here as a UserError, not in a
    worker initializer (where Pool would restart it forever).
    """

    def __init__(self, workers: int, spec: PreprocessorSpec, window_per_worker: int = 4) -> None:
        self.workers = max(1, workers)
        self.spec = spec
        self.window = window_per_worker * self.workers
        self.preprocessor = spec.build()
        self._pool: multiprocessing.pool.Pool | None = None

    def __enter__(self) -> WorkerPool:
        global _preprocessor
        if self.workers == 1:
            _preprocessor = self.preprocessor
        else:
            context = multiprocessing.get_context("spawn")
            self._pool = context.Pool(self.workers, initializer=_init, initargs=(self.spec,))
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()

    def apply(self, func: Callable[[A], R], arg: A) -> R:
        """Run one call in a worker (or here): warms the workers up, and lets tests look inside one."""
        return self._pool.apply(func, (arg,)) if self._pool is not None else func(arg)

    def map_ordered(self, func: Callable[[list[str]], R], chunks: Iterable[list[str]]) -> Iterator[R]:
        """func over chunks in the workers, results in input order, at most `window` chunks in flight."""
        if self._pool is None:
            yield from map(func, chunks)
            return
        pending: collections.deque[multiprocessing.pool.AsyncResult[R]] = collections.deque()
        for chunk in chunks:
            pending.append(self._pool.apply_async(func, (chunk,)))
            if len(pending) >= self.window:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()
