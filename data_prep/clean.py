"""THE text cleaning: training (data_prep) and serving (gateway) call this one function, so a text is
cleaned the same way on both sides. Pure stdlib: cheap to import, no TensorFlow."""

from __future__ import annotations

import functools
import html
import re
import sys
import unicodedata

# What clean_text does, recorded in meta.json / the model card; a model made under other rules is refused.
CLEANING = {"unicode": "NFKC", "html": "unescape+strip-tags", "control_chars": "strip", "whitespace": "collapse"}

_TAG = re.compile(r"<!--.*?-->|</?[A-Za-z][^<>]*>", re.S)


@functools.cache
def _control_chars() -> re.Pattern[str]:
    """Unicode control (Cc) and format (Cf) characters, e.g. NUL, zero-width space, BOM.

    Built on first use (it scans every code point) so importing this module stays cheap.
    Whitespace controls (tab, newline) become a space instead, so words on two lines stay apart.
    """
    chars = "".join(
        re.escape(chr(c))
        for c in range(sys.maxunicode + 1)
        if unicodedata.category(chr(c)) in ("Cc", "Cf") and not chr(c).isspace()
    )
    return re.compile(f"[{chars}]+")


def clean_text(text: str, *, max_chars: int | None = None) -> str:
    """NFKC (full-width -> half-width), HTML entities decoded and tags removed, control characters
    removed, runs of whitespace turned into one space, ends trimmed; then cut to `max_chars`."""
    text = html.unescape(_TAG.sub(" ", text))
    text = unicodedata.normalize("NFKC", text)
    text = _TAG.sub(" ", text)  # tags that only appear after NFKC (full-width < and >)
    text = _control_chars().sub("", text)
    text = " ".join(text.split())
    if max_chars is not None:
        text = text[:max_chars].rstrip()
    return text
