"""clean_text: the one cleaning training and serving share."""

from __future__ import annotations

import pytest

from data_prep.clean import clean_text


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("ＡＢＣ１２３，ｆｕｌｌ－ｗｉｄｔｈ！", "ABC123,full-width!"),  # NFKC: full-width -> half-width
        ("<p>很<b>好</b>看</p>&amp;&lt;i&gt;&lt;3&gt; &nbsp;", "很 好 看 & <3>"),  # tags, entities, escaped tags
        ("<!-- 注释 -->正文", "正文"),
        ("a\x00b\u200bc\ufeffd\x7f", "abcd"),  # control and format characters (NUL, zero-width space, BOM, DEL)
        ("词 \u200b\x00 词\u00ad\n\x85句", "词 词 句"),  # a word of only controls leaves one space; NEL is a space
        ("  第一行\n\n第二行\t\r\n  第三行\u3000 ", "第一行 第二行 第三行"),  # whitespace, ideographic space
        ("3 < 5 and 6 > 2", "3 < 5 and 6 > 2"),  # a lone < is text, not a tag
        ("", ""),
    ],
)
def test_clean_text(raw: str, cleaned: str) -> None:
    assert clean_text(raw) == cleaned


def test_max_chars_cuts_after_cleaning() -> None:
    assert clean_text("  ＡＢ  ＣＤ ", max_chars=4) == "AB C"
    assert clean_text("AB CD", max_chars=3) == "AB"  # no trailing space after the cut


def test_cleaning_is_stable_on_cleaned_text() -> None:
    text = clean_text("<div>今天　天气 &quot;很好&quot;！</div>\n明天？")
    assert clean_text(text) == text
