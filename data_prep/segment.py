"""Chinese word segmentation with jieba: the `tokens` an LSTM model reads. TensorFlow-free.

Each Segmenter owns its own `jieba.Tokenizer`, so a user dictionary loaded here never leaks into (or
depends on) jieba's global default tokenizer, and a worker process rebuilds exactly the same one.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from pathlib import Path
from typing import Any, overload

import jieba

from data_prep.errors import UserError


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


@functools.cache
def _default_dictionary() -> tuple[dict[str, int], int]:
    """jieba's default prefix dictionary, loaded once per process (a slow load) and shared."""
    base = jieba.Tokenizer()
    base.initialize()
    return base.FREQ, base.total


def _new_tokenizer(private: bool) -> jieba.Tokenizer:
    """A Tokenizer on the default dictionary; `private` gives it its own copy to add user words to."""
    freq, total = _default_dictionary()
    tokenizer = jieba.Tokenizer()
    tokenizer.FREQ, tokenizer.total, tokenizer.initialized = (dict(freq) if private else freq), total, True
    return tokenizer


def _read_stopwords(path: Path) -> frozenset[str]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read stopwords {path}: {exc}") from None
    return frozenset(word.strip() for word in lines if word.strip())


class Segmenter:
    """jieba words joined by one space; whitespace tokens and stopwords dropped."""

    def __init__(self, user_dict: Path | None = None, hmm: bool = True, stopwords: Path | None = None) -> None:
        jieba.setLogLevel(logging.WARNING)  # jieba logs "Building prefix dict..." on every Tokenizer
        self.user_dict = Path(user_dict) if user_dict is not None else None
        self.hmm = hmm
        self.stopwords_path = Path(stopwords) if stopwords is not None else None
        self._config = {
            "jieba_version": jieba.__version__,
            "user_dict_sha256": file_sha256(self.user_dict),
            "hmm": hmm,
            "stopwords_sha256": file_sha256(self.stopwords_path),
        }
        self._stopwords = _read_stopwords(self.stopwords_path) if self.stopwords_path else frozenset()
        self._tokenizer = _new_tokenizer(private=self.user_dict is not None)
        if self.user_dict is not None:
            try:
                self._tokenizer.load_userdict(str(self.user_dict))
            except (ValueError, UnicodeDecodeError) as exc:
                raise UserError(f"user dictionary {self.user_dict} is not a jieba dictionary: {exc}") from None

    def tokens(self, cleaned_text: str) -> str:
        words = self._tokenizer.cut(cleaned_text, HMM=self.hmm)
        return " ".join(w for w in words if w.strip() and w not in self._stopwords)

    def config(self) -> dict[str, Any]:
        """jieba version, user-dict sha256, HMM on/off, stopwords sha256: what makes tokens reproducible."""
        return dict(self._config)
