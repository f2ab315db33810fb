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
def _control_chars() -> dict[int, None]:
    """A str.translate table deleting Unicode control (Cc) and format (Cf) characters, e.g. NUL, zero-width
    space, BOM (translate is several times faster than a regex character class of them).

    Built on first use (it scans every code point) so importing this module stays cheap.
    Whitespace controls (tab, newline) become a space instead, so words on two lines stay apart.
    """
    return dict.fromkeys(
        c for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) in ("Cc", "Cf") and not chr(c).isspace()
    )


def clean_text(text: str, *, max_chars: int | None = None) -> str:
    """NFKC (full-width -> half-width), HTML entities decoded and tags removed, control characters
    removed, runs of whitespace turned into one space, ends trimmed; then cut to `max_chars`."""
    text = html.unescape(_TAG.sub(" ", text))
    text = unicodedata.normalize("NFKC", text)
    text = _TAG.sub(" ", text)  # tags that only appear after NFKC (full-width < and >)
    text = " ".join(text.split())
    # a printable text holds no control or format character: the common case skips the deletion; deleting
    # after collapsing whitespace, then collapsing again, gives what deleting first would
    if not text.isprintable():
        text = " ".join(text.translate(_control_chars()).split())
    if max_chars is not None:
        text = text[:max_chars].rstrip()
    return text
