"""The one reader of JSON files a user or a run holds: every failure is one UserError line naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_prep.errors import UserError
from data_prep.json_file import read_json, read_json_object


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"a": 1', "is not valid JSON"),
        (b"\xff\xfe{}", "is not valid JSON"),
        (None, "cannot read"),
    ],
)
def test_unreadable_or_invalid_json_is_one_line(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "config.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UserError) as raised:
        read_json(path)
    assert message in str(raised.value) and str(path) in str(raised.value) and "\n" not in str(raised.value)


def test_an_object_is_required_where_one_is_expected(tmp_path: Path) -> None:
    path = tmp_path / "meta.json"
    path.write_text('["a list"]', encoding="utf-8")
    assert read_json(path) == ["a list"]
    with pytest.raises(UserError, match="must hold a JSON object"):
        read_json_object(path)
    path.write_text('{"labels": ["neg", "pos"]}', encoding="utf-8")
    assert read_json_object(path) == {"labels": ["neg", "pos"]}
