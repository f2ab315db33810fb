"""Chinese word segmentation: the `tokens` an LSTM model reads. TensorFlow-free.

Two backends cut text into words: `jieba` (the Python original, the default) and `rjieba` (the Python
binding of jieba-rs, a Rust port with the same dictionary and HMM, several times faster, but not identical
on e.g. URLs). Which one made the tokens is recorded with its version, because a model only works on
tokens cut the way its training data was cut.

Each Segmenter owns its own tokenizer, so a user dictionary loaded here never leaks into (or depends on)
a library's global default tokenizer, and a worker process rebuilds exactly the same one. The backends are
imported when a Segmenter is built, not with this module (which `textclf prep --help` imports).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, overload

from data_prep.errors import UserError

BACKENDS = ("jieba", "rjieba")
DEFAULT_BACKEND = "jieba"

# (text, hmm) -> words
Cut = Callable[[str, bool], Iterable[str]]
# a user dictionary's entries, as jieba reads them: word, frequency (None: jieba's suggestion), part of speech
UserWord = tuple[str, int | None, str | None]


@overload
def file_sha256(path: Path) -> str: ...
@overload
def file_sha256(path: None) -> None: ...
@overload
def file_sha256(path: Path | None) -> str | None: ...


def file_sha256(path: Path | None) -> str | None:
    """Hash of a dictionary/stopword file, recorded so serving can prove it uses the same one."""
    if path is None:
        return None
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None


def backend_version(backend: str) -> str:
    """The installed version of `backend`: recorded at prep, compared when the tokens are made again."""
    if backend not in BACKENDS:
        raise UserError(f"unknown segmenter {backend!r}; this textclf has {', '.join(BACKENDS)}")
    try:
        return importlib.metadata.version(backend)
    except importlib.metadata.PackageNotFoundError:
        raise UserError(f"segmenter {backend} is not installed here: pip install {backend}") from None


def version_key(backend: str) -> str:
    """The config key holding the backend's version: `jieba_version` (as before backends) or `rjieba_version`."""
    return f"{backend}_version"


@functools.cache
def _default_dictionary() -> tuple[dict[str, int], int]:
    """jieba's default prefix dictionary, loaded once per process (a slow load) and shared."""
    import jieba

    base = jieba.Tokenizer()
    base.initialize()
    return base.FREQ, base.total


def _jieba_cut(user_words: list[UserWord]) -> Cut:
    """A jieba Tokenizer on the default dictionary; with user words, on its own copy of it."""
    import jieba

    freq, total = _default_dictionary()
    tokenizer = jieba.Tokenizer()
    tokenizer.FREQ, tokenizer.total, tokenizer.initialized = (dict(freq) if user_words else freq), total, True
    for word, frequency, tag in user_words:
        tokenizer.add_word(word, frequency, tag)
    return lambda text, hmm: tokenizer.cut(text, HMM=hmm)


@functools.cache
def _rjieba_default() -> Any:
    import rjieba

    return rjieba.Jieba()


def _rjieba_cut(user_words: list[UserWord]) -> Cut:
    """A jieba-rs Jieba (its built-in dictionary); with user words, one of its own."""
    import rjieba

    segmenter = rjieba.Jieba() if user_words else _rjieba_default()
    for word, frequency, tag in user_words:
        segmenter.add_word(word, frequency, tag)
    cut: Cut = segmenter.cut
    return cut


_CUTS: dict[str, Callable[[list[UserWord]], Cut]] = {"jieba": _jieba_cut, "rjieba": _rjieba_cut}


def _read_user_dict(path: Path) -> list[UserWord]:
    """jieba's user dictionary format (`word [freq] [tag]` per line, UTF-8), read once for either backend."""
    import jieba

    try:
        lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    except OSError as exc:
        raise UserError(f"cannot read user dictionary {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"user dictionary {path} is not a jieba dictionary (UTF-8): {exc}") from None
    words: list[UserWord] = []
    for line in lines:
        match = jieba.re_userdict.match(line.strip())
        if match is None:  # an empty line
            continue
        word, frequency, tag = match.groups()
        words.append((word, int(frequency) if frequency else None, tag.strip() if tag else None))
    return words


def _read_stopwords(path: Path) -> frozenset[str]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read stopwords {path}: {exc}") from None
    return frozenset(word.strip() for word in lines if word.strip())


class Segmenter:
    """`backend`'s words joined by one space; whitespace tokens and stopwords dropped."""

    def __init__(
        self,
        user_dict: Path | None = None,
        hmm: bool = True,
        stopwords: Path | None = None,
        backend: str = DEFAULT_BACKEND,
    ) -> None:
        import jieba

        jieba.setLogLevel(logging.WARNING)  # jieba logs "Building prefix dict..." on every Tokenizer
        self.user_dict = Path(user_dict) if user_dict is not None else None
        self.hmm = hmm
        self.stopwords_path = Path(stopwords) if stopwords is not None else None
        self.backend = backend
        self._config = {
            "backend": backend,
            version_key(backend): backend_version(backend),
            "user_dict_sha256": file_sha256(self.user_dict),
            "hmm": hmm,
            "stopwords_sha256": file_sha256(self.stopwords_path),
        }
        self._stopwords = _read_stopwords(self.stopwords_path) if self.stopwords_path else frozenset()
        self._cut = _CUTS[backend](_read_user_dict(self.user_dict) if self.user_dict else [])

    def tokens(self, cleaned_text: str) -> str:
        words = self._cut(cleaned_text, self.hmm)
        return " ".join(w for w in words if w.strip() and w not in self._stopwords)

    def config(self) -> dict[str, Any]:
        """Backend and its version, user-dict sha256, HMM on/off, stopwords sha256: what makes tokens reproducible."""
        return dict(self._config)
