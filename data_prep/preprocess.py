"""The Preprocessor: cleaning + segmentation as one object built from a recorded config.

`textclf prep` writes `Preprocessor.config()` into meta.json under "preprocessing"; training copies it
into the model card; the gateway and `textclf predict` rebuild the object with `from_config`, which
refuses a config this installation cannot reproduce (other jieba, other dictionary): that is the guard
against training/serving skew. TensorFlow-free.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jieba

from data_prep.clean import CLEANING, clean_text
from data_prep.errors import UserError
from data_prep.segment import Segmenter, file_sha256


class Preprocessor:
    def __init__(self, segmenter: Segmenter | None = None, *, max_chars: int | None = None) -> None:
        self.segmenter = segmenter if segmenter is not None else Segmenter()
        self.max_chars = max_chars

    @classmethod
    def from_config(
        cls, cfg: dict[str, Any], *, user_dict: Path | None = None, stopwords: Path | None = None
    ) -> Preprocessor:
        """Rebuild the preprocessing recorded in `cfg`; UserError if the result would differ from it."""
        try:
            cleaning, seg = cfg["cleaning"], cfg["segmenter"]
            wanted = {key: cleaning[key] for key in CLEANING}
            max_chars, version, hmm = cleaning["max_chars"], seg["jieba_version"], seg["hmm"]
        except (KeyError, TypeError) as exc:
            raise UserError(
                f"preprocessing config is incomplete (missing {exc}); was it written by `textclf prep`?"
            ) from None
        if wanted != CLEANING:
            raise UserError(f"preprocessing config asks for cleaning {wanted}, this textclf cleans as {CLEANING}")
        if version != jieba.__version__:
            raise UserError(
                f"preprocessing config was made with jieba {version}, installed is jieba {jieba.__version__}"
            )
        _check_file("user dictionary", "--user-dict", seg.get("user_dict_sha256"), user_dict)
        _check_file("stopwords file", "--stopwords", seg.get("stopwords_sha256"), stopwords)
        return cls(Segmenter(user_dict=user_dict, hmm=hmm, stopwords=stopwords), max_chars=max_chars)

    def config(self) -> dict[str, Any]:
        return {"cleaning": {**CLEANING, "max_chars": self.max_chars}, "segmenter": self.segmenter.config()}

    def clean(self, text: str) -> str:
        return clean_text(text, max_chars=self.max_chars)

    def tokens(self, text: str) -> str:
        """Raw text -> jieba words joined by one space (= segment(clean(text)))."""
        return self.segmenter.tokens(self.clean(text))


def _check_file(what: str, flag: str, recorded: str | None, given: Path | None) -> None:
    """The file given now must be the one whose sha256 the config recorded (or both absent)."""
    if given is None:
        if recorded is not None:
            raise UserError(
                f"the model was prepared with a {what} (sha256 {recorded[:12]}...); pass the same file with {flag}"
            )
        return
    actual = file_sha256(given)
    if recorded is None:
        raise UserError(f"the model was prepared without a {what}, but {given} was given")
    if actual != recorded:
        raise UserError(f"{what} {given} has sha256 {actual[:12]}..., the model was prepared with {recorded[:12]}...")
