"""Unlabeled text for MLM pretraining: the builtin People's Daily corpus and --extra-text files."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_prep.errors import UserError
from tfmodels.bert.corpus import PEOPLES_DAILY, check_sources, extra_lines, untag


def test_peoples_daily_is_untagged_and_cleaned() -> None:
    assert (
        untag("迈向/v  充满/v  希望/n  的/u  新/a  世纪/n  ——/w  一九九八年/t\n") == "迈向充满希望的新世纪——一九九八年"
    )
    lines = []
    for line in extra_lines(PEOPLES_DAILY):
        lines.append(line)
        if len(lines) == 50:
            break
    assert lines[0].startswith("迈向充满希望的新世纪")
    assert not any("/n" in line or "  " in line for line in lines)
    assert any("12月31日" in line for line in lines)  # NFKC: full-width digits became ASCII, as in prep


def test_extra_text_file_and_bad_sources(tmp_path: Path) -> None:
    good = tmp_path / "extra.txt"
    good.write_text("第一行 <b>加粗</b>\n\n   \n第二行&amp;\n", encoding="utf-8")
    assert list(extra_lines(str(good))) == ["第一行 加粗", "第二行&"]
    (tmp_path / "bad.txt").write_bytes("中文".encode("gbk"))
    for source, message in [
        (str(tmp_path / "missing.txt"), "no such file"),
        ("builtin:nothing", "unknown builtin"),
        (str(tmp_path / "bad.txt"), "not UTF-8"),
    ]:
        with pytest.raises(UserError, match=message):
            check_sources([str(good), source])
