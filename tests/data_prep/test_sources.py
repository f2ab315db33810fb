"""Each source format, read through prepare_dataset into real shards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prep_corpus import Example, ReadSplit

from data_prep.dataset_format import SPLITS
from data_prep.prepare import prepare_dataset
from data_prep.sources import Row

ROWS = [(f"第{i}条新闻：球队赢了比赛", "体育") for i in range(5)] + [
    (f"第{i}条新闻：股价上涨", "财经") for i in range(5)
]


def _all_examples(read_split: ReadSplit, out: Path) -> list[Example]:
    return sorted(e for s in SPLITS for e in read_split(out, s))


def test_tsv_with_header_names(tmp_path: Path, read_split: ReadSplit) -> None:
    src = tmp_path / "data.tsv"
    lines = ["id\tcontent\tcategory"] + [f"{i}\t{t}\t{label}" for i, (t, label) in enumerate(ROWS)] + ["99\tonly two"]
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    meta = prepare_dataset(str(src), tmp_path / "out", workers=1, text_col="content", label_col="category")
    assert meta["labels"] == ["体育", "财经"] and meta["cleaning_stats"]["kept"] == 10
    assert meta["cleaning_stats"]["malformed_skipped"] == 1
    assert _all_examples(read_split, tmp_path / "out")[0][0].startswith("第0条新闻:")


def test_csv_without_header_by_index_with_quotes_and_bad_bytes(tmp_path: Path, read_split: ReadSplit) -> None:
    src = tmp_path / "data.csv"
    body = "".join(f'{label},"{t}, 带逗号\n第二行"\n' for t, label in ROWS).encode("utf-8") + b'\xff\xfe,"x"\n'
    src.write_bytes(body)
    meta = prepare_dataset(str(src), tmp_path / "out", workers=1, text_col=1, label_col="0")
    stats = meta["cleaning_stats"]
    assert (stats["rows_read"], stats["undecodable_skipped"], stats["kept"]) == (11, 1, 10)
    assert all(", 带逗号 第二行" in e[0] for e in _all_examples(read_split, tmp_path / "out"))


def test_jsonl_keys(tmp_path: Path, read_split: ReadSplit) -> None:
    src = tmp_path / "data.jsonl"
    lines = [json.dumps({"body": t, "y": label}, ensure_ascii=False) for t, label in ROWS] + [
        "",
        "not json",
        '{"body": 3, "y": "x"}',
    ]
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    meta = prepare_dataset(str(src), tmp_path / "out", workers=1, text_key="body", label_key="y")
    assert meta["source"]["kind"] == "jsonl" and meta["labels"] == ["体育", "财经"]
    assert meta["cleaning_stats"]["malformed_skipped"] == 2 and meta["cleaning_stats"]["kept"] == 10
    examples = _all_examples(read_split, tmp_path / "out")
    assert [e[2] for e in examples].count(0) == 5


def test_source_hash_follows_content(tmp_path: Path) -> None:
    src = tmp_path / "data.jsonl"
    src.write_text("".join(json.dumps({"text": t, "label": label}) + "\n" for t, label in ROWS), encoding="utf-8")
    first = prepare_dataset(str(src), tmp_path / "a", workers=1)["source"]["sha256"]
    src.write_text("".join(json.dumps({"text": t + "!", "label": label}) + "\n" for t, label in ROWS), encoding="utf-8")
    assert prepare_dataset(str(src), tmp_path / "b", workers=1)["source"]["sha256"] != first


def test_a_row_is_readable_only_without_a_problem() -> None:
    assert Row("文本", "体育").readable() == ("文本", "体育")
    assert Row(None, None, "malformed").readable() is None
    assert Row(None, "体育", "undecodable").readable() is None
    assert Row("文本", "体育", "malformed").readable() is None
    with pytest.raises(ValueError, match="needs a text and a label"):
        Row(None, "体育").readable()
