"""`textclf drift`: the real CLI on a prepared dataset written by TensorFlow (Contract 1) and payload logs
written by the gateway's own writer (serving/gateway/payload_log.py), read back by its own reader."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from data_prep.clean import clean_text
from data_prep.dataset_format import META_FILE
from data_prep.preprocess import Preprocessor
from serving.drift.comparison import Thresholds, compare
from serving.drift.reference import read_reference
from serving.drift.statistics import binned_shares, length_edges, psi
from serving.gateway.payload_log import PayloadLog, PayloadSettings, read_records
from serving.gateway.redaction import BUILTIN, Redactor
from tests.support.corpus import LABELS, generated_rows
from tests.support.prepared import write_prepared
from textclf import cli

ROWS = generated_rows(500)
SPLIT = (300, 50, 150)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = write_prepared(tmp_path_factory.mktemp("drift") / "prepared", ROWS, SPLIT)
    meta = json.loads((out / META_FILE).read_text())
    meta["preprocessing"] = Preprocessor().config()  # what `textclf prep` records, so logged texts segment alike
    (out / META_FILE).write_text(json.dumps(meta, ensure_ascii=False))
    return out


def write_log(folder: Path, texts_labels_scores: list[tuple[str, str, float]], *, model: str = "news") -> Path:
    """A payload log DIR written by the gateway's own writer (built-in redaction on): one one-text request per
    row, the first half stamped on Dec 1, the rest on Dec 2, versions 1 and 2 in turn."""
    rows = len(texts_labels_scores)
    stamps = iter([datetime(2026, 12, 1 if i < rows / 2 else 2, 10, tzinfo=timezone.utc) for i in range(rows)])
    payload = PayloadLog(PayloadSettings(folder, redactor=Redactor(BUILTIN)), clock=lambda: next(stamps))
    for i, (text, label, score) in enumerate(texts_labels_scores):
        result = {"label": label, "score": score, "top_k": [{"label": label, "score": score}]}
        payload.offer(f"r{i}", model, 1 + i % 2, [clean_text(text)], [result], 3.5)
    assert payload.join(30)
    payload.close()
    return folder


def held_out_traffic() -> list[tuple[str, str, float]]:
    """The test split as the gateway would log it: cleaned text, the true label, a confident score."""
    return [(tokens.replace(" ", ""), LABELS[y], 0.9) for tokens, y in ROWS[-SPLIT[2] :]]


def drifted_traffic() -> list[tuple[str, str, float]]:
    """One label, long texts of words training never saw, unsure scores, and PII (redacted when logged)."""
    text = "量子计算机芯片发布会在深圳举行，联系13812345678或zhang@example.cn" * 3
    return [(text, "negative", 0.75 if i % 2 else 0.35) for i in range(120)]


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["drift", *args], catch_exceptions=False)
    return result.exit_code, result.output


def test_reference_reads_the_train_split_tensorflow_wrote(prepared: Path) -> None:
    reference = read_reference(prepared)
    train = ROWS[: SPLIT[0]]
    assert reference.labels == LABELS
    assert reference.label_counts == Counter(LABELS[y] for _, y in train)
    assert reference.lengths.tolist() == [len(tokens.replace(" ", "")) for tokens, _ in train]
    assert reference.words == Counter(word for tokens, _ in train for word in tokens.split())


def test_psi_and_length_bins() -> None:
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0
    assert psi([0.5, 0.5], [0.9, 0.1]) == pytest.approx(0.4 * np.log(1.8) - 0.4 * np.log(0.2))
    assert psi([1.0, 0.0], [0.0, 1.0]) > 10  # an empty bin is floored, not infinite
    reference = np.arange(1, 101)
    edges = length_edges(reference)
    assert len(edges) == 9 and binned_shares(reference, edges) == pytest.approx([0.1] * 10)
    assert binned_shares(np.array([1000, 1000]), edges)[-1] == 1


def test_held_out_traffic_does_not_drift(prepared: Path, tmp_path: Path) -> None:
    log = write_log(tmp_path / "log", held_out_traffic())
    code, output = run("--reference", str(prepared), "--log", str(log), "--out", str(tmp_path / "report"))
    assert code == 0, output
    report = json.loads((tmp_path / "report" / "drift.json").read_text())
    assert report["drifted"] is False and report["records"] == SPLIT[2] and report["versions"] == [1, 2]
    assert all(not s["crossed"] for s in report["signals"].values())
    assert report["signals"]["label_psi"]["value"] < 0.05 and report["signals"]["low_confidence"]["value"] == 0
    assert (tmp_path / "report" / "drift.png").read_bytes().startswith(b"\x89PNG")
    assert "no drift" in (tmp_path / "report" / "drift.md").read_text()


def test_drifted_traffic_crosses_every_threshold(prepared: Path, tmp_path: Path) -> None:
    log = write_log(tmp_path / "log", drifted_traffic())
    out = tmp_path / "report"
    code, output = run("--reference", str(prepared), "--log", str(log), "--out", str(out), "--model", "news")
    assert code == 3, output
    report = json.loads((out / "drift.json").read_text())
    assert {name for name, s in report["signals"].items() if s["crossed"]} == {
        "label_psi",
        "length_psi",
        "low_confidence",
        "unknown_words",
    }
    assert report["signals"]["low_confidence"]["value"] == 0.5
    logged = next(read_records(log))  # PII redacted, its length measured before (as training and /metrics do)
    chars = len(clean_text(drifted_traffic()[0][0]))
    assert logged["text"].count("[PHONE]") == 3 and logged["chars"] == chars > len(logged["text"])
    new_words = [w["word"] for w in report["top_new_words"]]
    assert "量子" in new_words and not any(w in new_words for w in ("PHONE", "EMAIL", "<", ">"))
    markdown = (out / "drift.md").read_text()
    assert "DRIFT: label_psi, length_psi, low_confidence, unknown_words" in markdown and "量子" in markdown
    # thresholds are flags: loosened far enough, the same traffic passes
    loose = ["--max-label-psi", "99", "--max-length-psi", "99", "--max-low-confidence", "1", "--max-unknown-words", "1"]
    code, output = run("--reference", str(prepared), "--log", str(log), "--out", str(out), *loose)
    assert code == 0, output


def test_text_length_is_measured_before_redaction(prepared: Path, tmp_path: Path) -> None:
    """A logged "电话[PHONE]" (9 characters) was a 13-character text when classified: that length is compared."""
    log = write_log(tmp_path / "log", [("电话13812345678", "positive", 0.9)] * 4)
    reference = read_reference(prepared)
    thresholds = Thresholds()
    found = compare(
        reference,
        read_records(log),
        Preprocessor(),
        vocabulary=set(),
        vocabulary_source="-",
        thresholds=thresholds,
        min_records=1,
    )
    edges = length_edges(reference.lengths)
    assert found.length_shares[1] == binned_shares(np.array([13]), edges) != binned_shares(np.array([9]), edges)


def test_run_vocabulary_and_since(prepared: Path, tmp_path: Path) -> None:
    log = write_log(tmp_path / "log", held_out_traffic())
    run_dir = tmp_path / "run"
    (run_dir / "model").mkdir(parents=True)
    (run_dir / "model" / "vocab.txt").write_text("酒店\n服务\n")  # a tiny LSTM vocabulary: most words unknown
    out = tmp_path / "report"
    code, output = run("--reference", str(prepared), "--log", str(log), "--out", str(out), "--run", str(run_dir))
    assert code == 3, output
    report = json.loads((out / "drift.json").read_text())
    assert report["signals"]["unknown_words"]["crossed"] and "vocab.txt" in report["signals"]["unknown_words"]["what"]
    # half the records are from Dec 2: --since keeps those only (too few for a length PSI worth a threshold)
    since = ["--since", "2026-12-02", "--min-records", "1", "--max-length-psi", "99"]
    code, output = run("--reference", str(prepared), "--log", str(log), "--out", str(out), *since)
    assert code == 0, output
    assert json.loads((out / "drift.json").read_text())["records"] == SPLIT[2] // 2


@pytest.mark.parametrize(
    "case, message",
    [
        ("no_reference", "is not a prepared dataset"),
        ("two_models", "several models (chars, news): pass --model"),
        ("few_records", "fewer than --min-records 100"),
        ("bad_since", "--since 'yesterday'"),
        ("foreign_labels", "labels the reference dataset does not have (体育)"),
        ("not_a_log", "holds no payload log files"),
        ("bad_value", "line 151 is not a payload log record (bad version, score)"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(prepared: Path, tmp_path: Path, case: str, message: str) -> None:
    log = write_log(tmp_path / "log", held_out_traffic())
    args = ["--reference", str(prepared), "--log", str(log), "--out", str(tmp_path / "report")]
    if case == "no_reference":
        args[1] = str(tmp_path)
    elif case == "two_models":
        write_log(log, held_out_traffic(), model="chars")
    elif case == "few_records":
        args += ["--since", "2027-01-01"]
    elif case == "bad_since":
        args += ["--since", "yesterday"]
    elif case == "foreign_labels":
        write_log(log, [("体育新闻", "体育", 0.9)] * 10)
    elif case == "bad_value":  # every field there, but a wrong value: a readable line, not a traceback
        (log_file,) = log.iterdir()
        record = {**json.loads(log_file.read_text(encoding="utf-8").splitlines()[0]), "score": None, "version": "1"}
        with open(log_file, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
    elif case == "not_a_log":
        args[3] = str(tmp_path / "report")
        (tmp_path / "report").mkdir()
    code, output = run(*args)
    assert code == 2 and message in output and len(output.strip().splitlines()) == 1, output
    assert not (tmp_path / "report" / "drift.md").exists()
