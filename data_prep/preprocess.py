"""The Preprocessor: cleaning + segmentation as one object built from a recorded config.

`textclf prep` writes `Preprocessor.config()` into meta.json under "preprocessing"; training copies it
into the model card; the gateway and `textclf predict` rebuild the object with `from_config`, which
refuses a config this installation cannot reproduce (another segmenter backend or version, another
dictionary): that is the guard against training/serving skew. A config without "backend" was written
before there was a choice, by jieba. TensorFlow-free.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from data_prep.clean import CLEANING, clean_text
from data_prep.errors import UserError
from data_prep.segment import Segmenter, backend_version, file_sha256, version_key


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
            max_chars, hmm, backend = cleaning["max_chars"], seg["hmm"], seg.get("backend", "jieba")
            installed = backend_version(backend)  # an unknown or missing backend is named before its version
            version = seg[version_key(backend)]
        except (KeyError, TypeError, AttributeError) as exc:
            raise UserError(
                f"preprocessing config is incomplete (missing {exc}); was it written by `textclf prep`?"
            ) from None
        if wanted != CLEANING:
            raise UserError(f"preprocessing config asks for cleaning {wanted}, this textclf cleans as {CLEANING}")
        if version != installed:
            raise UserError(
                f"preprocessing config was made with {backend} {version}, installed is {backend} {installed}"
            )
        _check_file("user dictionary", "--user-dict", seg.get("user_dict_sha256"), user_dict)
        _check_file("stopwords file", "--stopwords", seg.get("stopwords_sha256"), stopwords)
        return cls(Segmenter(user_dict=user_dict, hmm=hmm, stopwords=stopwords, backend=backend), max_chars=max_chars)

    def config(self) -> dict[str, Any]:
        return {"cleaning": {**CLEANING, "max_chars": self.max_chars}, "segmenter": self.segmenter.config()}

    def clean(self, text: str) -> str:
        return clean_text(text, max_chars=self.max_chars)

    def tokens(self, text: str) -> str:
        """Raw text -> words joined by one space (= segment(clean(text)))."""
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
