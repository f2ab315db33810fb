"""`textclf prep` through the root CLI: success prints the report; bad input is one line, exit != 0."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from prep_corpus import write_folder

from textclf import cli


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["prep", *args, "--workers", "1", "--quiet"])


def test_prep_prints_report(small_corpus: Path, tmp_path: Path) -> None:
    stopwords = tmp_path / "stop.txt"
    stopwords.write_text("的\n", encoding="utf-8")
    result = _run(
        str(small_corpus),
        "--out",
        str(tmp_path / "out"),
        "--split",
        "0.6,0.2,0.2",
        "--seed",
        "3",
        "--no-hmm",
        "--max-chars",
        "40",
        "--stopwords",
        str(stopwords),
    )
    assert result.exit_code == 0, result.output
    assert "exact duplicates (after cleaning), dropped | 1 |" in result.output
    meta = json.loads((tmp_path / "out" / "meta.json").read_text())
    assert meta["split_ratios"] == {"train": 0.6, "dev": 0.2, "test": 0.2} and meta["seed"] == 3
    assert meta["preprocessing"]["cleaning"]["max_chars"] == 40
    segmenter = meta["preprocessing"]["segmenter"]
    assert segmenter["hmm"] is False and segmenter["stopwords_sha256"] and segmenter["user_dict_sha256"] is None


def _table(tmp_path: Path, rows: list[str]) -> str:
    path = tmp_path / "t.tsv"
    path.write_text("text\tlabel\n" + "".join(r + "\n" for r in rows), encoding="utf-8")
    return str(path)


BAD = {
    "missing path": (lambda p: [str(p / "nope")], "does not exist"),
    "unsupported file": (lambda p: [str(_touch(p / "x.parquet"))], "cannot read"),
    "empty corpus": (lambda p: [str(write_folder(p / "c", {"a": ["  ", "<p></p>"], "b": []}))], "no usable texts"),
    "one label": (lambda p: [str(write_folder(p / "c", {"a": [f"文本{i}" for i in range(5)]}))], "only one label"),
    "too few to split": (
        lambda p: [str(write_folder(p / "c", {"a": [f"甲{i}" for i in range(5)], "b": ["乙", "丙"]}))],
        "label 'b' has only 2",
    ),
    "unknown column": (lambda p: [_table(p, ["好\tpos"]), "--text-col", "body"], "no column 'body'"),
    "column index out of range": (lambda p: [_table(p, ["好\tpos"]), "--text-col", "5", "--header"], "no column 5"),
    "unknown key": (lambda p: [str(_jsonl(p)), "--label-key", "cat"], "no key 'cat'"),
    "bad split": (lambda p: [str(p), "--split", "0.8,0.3"], "--split"),
    "split not summing to 1": (lambda p: [str(p), "--split", "0.8,0.3,0.1"], "sum to 1"),
    "split not numbers": (lambda p: [str(p), "--split", "a,b,c"], "three numbers"),
    "unknown builtin": (lambda p: ["builtin:nope"], "unknown built-in corpus"),
    "bad user dict": (lambda p: [str(p), "--user-dict", str(p / "missing.txt")], "cannot read"),
}


def _touch(path: Path) -> Path:
    path.write_text("x")
    return path


def _jsonl(tmp: Path) -> Path:
    path = tmp / "d.jsonl"
    path.write_text('{"text": "好", "label": "pos"}\n', encoding="utf-8")
    return path


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line(case: str, tmp_path: Path) -> None:
    make_args, message = BAD[case]
    out = tmp_path / "out"
    result = _run(*make_args(tmp_path), "--out", str(out))
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.output
    assert "Traceback" not in result.output and not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_existing_output_needs_force(small_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = _run(str(small_corpus), "--out", str(out))
    assert result.exit_code != 0 and "--force" in result.output and len(result.output.strip().splitlines()) == 1
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert _run(str(small_corpus), "--out", str(out), "--force").exit_code == 0
    assert (out / "meta.json").is_file() and not (out / "keep.txt").exists()
