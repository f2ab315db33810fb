"""The payload log (serving/gateway/payload_log.py): sampled, redacted JSONL written off the request path, a file
per worker, rotated by size, read back oldest first; the live drift signals in /metrics; `textclf predict`
re-scoring a logged folder. Against the real local model server in process; under gunicorn (two workers, two
files, `textclf predict` re-scoring the folder) in test_gateway_serve_cli.py, on its one gunicorn start."""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from data_prep.clean import clean_text
from data_prep.errors import UserError
from serving.gateway.config import GatewayConfig
from serving.gateway.context import gateway
from serving.gateway.payload_log import FIELDS, PayloadLog, PayloadSettings, parse_time, prune, read_records
from serving.gateway.redaction import BUILTIN, Redactor

RESULT = {"label": "体育", "score": 0.9, "top_k": [{"label": "体育", "score": 0.9}]}


def written(directory: Path, count: int, **settings: Any) -> PayloadLog:
    """A payload log into `directory` that has written `count` one-text requests "文本0", "文本1", ..."""
    payload = PayloadLog(PayloadSettings(directory, **settings))
    for i in range(count):
        payload.offer(f"r{i}", "news", 1, [f"文本{i}"], [RESULT], 1.5)
    assert payload.join(30)
    return payload


def test_records_rotate_by_size_and_read_back_oldest_first(tmp_path):
    payload = written(tmp_path, 60, max_bytes=1024, backups=2)
    payload.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 3 and files[1:] == [files[0] + ".1", files[0] + ".2"]  # older ones were deleted
    records = list(read_records(tmp_path))
    kept = [int(r["text"].removeprefix("文本")) for r in records]
    assert kept == list(range(60 - len(kept), 60)) and 10 < len(kept) < 60  # the newest, in order
    assert list(records[0]) == list(FIELDS) and records[0]["time"].endswith("Z")
    assert records[0]["top_k"] == RESULT["top_k"] and records[0]["version"] == 1
    assert list(read_records(tmp_path / files[0])) == records  # one file: its rotated ones included
    for path in tmp_path.iterdir():
        assert all(len(line) <= 1024 for line in path.read_bytes().splitlines(keepends=True))


def test_a_cut_last_line_is_skipped_and_other_files_are_refused(tmp_path):
    written(tmp_path, 3).close()
    (log_file,) = tmp_path.iterdir()
    with open(log_file, "ab") as f:
        f.write('{"time": "2030-01-01T00:00:00.000000Z", "text": "被杀掉的进'.encode())  # a worker killed mid-write
    assert [r["request_id"] for r in read_records(tmp_path)] == ["r0", "r1", "r2"]
    assert list(read_records(tmp_path, model="other")) == []
    first = parse_time(next(read_records(tmp_path))["time"])
    assert len(list(read_records(tmp_path, since=first.replace(tzinfo=None) + timedelta(days=1)))) == 0
    assert len(list(read_records(tmp_path, since=first))) == 3
    other = tmp_path.parent / "train.jsonl"
    other.write_text('{"text": "我喜欢看足球", "label": "体育"}\n', encoding="utf-8")
    with pytest.raises(UserError, match="line 1 is not a payload log record"):
        list(read_records(other))
    with pytest.raises(UserError, match="holds no payload log files"):
        list(read_records(tmp_path.parent))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"time": "yesterday"}, "bad time"),
        ({"score": None}, "bad score"),
        ({"score": "0.9"}, "bad score"),
        ({"version": "2"}, "bad version"),
        ({"model": 7, "label": ["体育"]}, "bad model, label"),
        ({"chars": -1}, "bad chars"),
        ({"top_k": [{"label": "体育"}]}, "bad top_k"),
    ],
)
def test_a_record_with_a_bad_value_is_refused_naming_its_line(tmp_path, change, problem):
    written(tmp_path, 2).close()
    (log_file,) = tmp_path.iterdir()
    record = {**json.loads(log_file.read_text(encoding="utf-8").splitlines()[0]), **change}
    with open(log_file, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, ensure_ascii=False) + "\n")
    with pytest.raises(UserError, match=rf"{log_file.name} line 3 is not a payload log record \({problem}\)"):
        list(read_records(tmp_path))


def test_the_writer_recovers_from_a_deleted_file_and_a_failed_write(tmp_path):
    folder = tmp_path / "log"
    dropped: list[int] = []
    payload = PayloadLog(PayloadSettings(folder), on_dropped=dropped.append)

    def send(request_id: str) -> None:
        payload.offer(request_id, "news", 1, ["文本"], [RESULT], 1.0)
        assert payload.join(30)

    send("kept")
    (log_file,) = folder.iterdir()
    log_file.unlink()  # deleted under the writer (logrotate, a clean-up): it writes a new file, not the lost one
    send("after-delete")
    assert [r["request_id"] for r in read_records(folder)] == ["after-delete"]
    shutil.rmtree(folder)
    folder.write_text("a file where the folder was")  # the writer cannot re-make its folder: the write fails
    send("lost")
    assert dropped == [1]
    folder.unlink()
    send("after-failure")  # the failed file was dropped: the next batch re-makes the folder and writes again
    assert [r["request_id"] for r in read_records(folder)] == ["after-failure"]
    payload.close()


def test_rotation_prunes_this_hosts_oldest_files_past_the_total_cap(tmp_path):
    payload = written(tmp_path / "capped", 60, max_bytes=1024, backups=5, max_total_bytes=2048)
    payload.close()
    files = list((tmp_path / "capped").iterdir())
    assert len(files) <= 3 and sum(f.stat().st_size for f in files) <= 2048 + 1024  # 5 backups would be 6 files
    kept = [int(r["text"].removeprefix("文本")) for r in read_records(tmp_path / "capped")]
    assert kept == list(range(60 - len(kept), 60))
    # worker restarts leave files of dead pids: those go first, with rotated ones; live files of running
    # processes (this one, its parent) and other hosts' files are never deleted
    folder = tmp_path / "restarts"
    folder.mkdir()
    host, dead = socket.gethostname(), 2**31 - 2  # above any pid_max: never running
    names = [
        f"payload-{host}-{os.getppid()}.jsonl",
        f"payload-{host}-{os.getpid()}.jsonl",
        f"payload-{host}-{dead}.jsonl",
        f"payload-{host}-{os.getpid()}.jsonl.1",
        f"payload-{host}-{os.getpid()}.jsonl.2",
        "payload-otherhost-1.jsonl",
    ]
    for age, name in enumerate(names):
        (folder / name).write_bytes(b"x" * (1000 if name.startswith("payload-otherhost") else 100))
        os.utime(folder / name, (1_000_000 + age, 1_000_000 + age))
    assert [p.name for p in prune(folder, 300)] == names[2:4]
    assert sorted(p.name for p in folder.iterdir()) == sorted(names[:2] + names[4:])
    assert prune(folder, 0) == [folder / names[4]]  # never a running process's live file


def test_an_unwritable_payload_log_folder_fails_at_start_up(tmp_path):
    settings = {"tfserving_rest": "http://127.0.0.1:1"}
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="TEXTCLF_PAYLOAD_LOG: cannot make the folder .*file/log"):
        GatewayConfig(**settings, payload_log=str(tmp_path / "file" / "log"))
    readonly = tmp_path / "readonly"
    readonly.mkdir(mode=0o555)
    if os.access(readonly, os.W_OK):  # root writes where a mode forbids it; /proc/1 is not writable even by root
        readonly = Path("/proc/1")
    with pytest.raises(UserError, match=f"the folder {readonly} is not writable"):
        GatewayConfig(**settings, payload_log=str(readonly))
    made = tmp_path / "made" / "log"
    assert GatewayConfig(**settings, payload_log=str(made)).payload_log and made.is_dir()


class _HeldRedactor(Redactor):
    """Holds the writer thread inside its first record until released: the queue then fills for sure."""

    def __init__(self) -> None:
        super().__init__(BUILTIN)
        self.entered, self.release = threading.Event(), threading.Event()

    def redact(self, text: str) -> str:
        self.entered.set()
        self.release.wait(30)
        return super().redact(text)


def test_a_full_queue_drops_and_counts_and_sampling_skips_requests(tmp_path):
    redactor = _HeldRedactor()
    dropped: list[int] = []
    samples = iter([0.1, 0.1, 0.1, 0.1, 0.7])
    settings = PayloadSettings(tmp_path, queue_size=2, sample=0.5, redactor=redactor)
    payload = PayloadLog(settings, on_dropped=dropped.append, sample=lambda: next(samples))
    payload.offer("a", "news", 1, ["电话13812345678"], [RESULT], 1.0)
    assert redactor.entered.wait(30)  # the writer holds "a"
    for request_id in "bcde":  # b, c queued; d dropped (its one text counted); e not sampled
        payload.offer(request_id, "news", 1, ["文本"], [RESULT], 1.0)
    assert dropped == [1]
    redactor.release.set()
    assert payload.join(30)
    records = list(read_records(tmp_path))
    assert [r["request_id"] for r in records] == ["a", "b", "c"] and records[0]["text"] == "电话[PHONE]"


def metric(body: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
        if s.name == name
    }


def test_classify_logs_redacted_cleaned_texts_and_exports_drift_signals(make_client, tmp_path):
    client = make_client(payload_log=str(tmp_path), low_confidence=1.0)  # every score is below 1: all unsure
    texts = ["我喜欢看足球，电话１３８１２３４５６７８", "<p> </p>", "邮件a@b.cn 买了电脑"]
    answer = client.post("/v1/classify", json={"model": "news", "texts": texts, "top_k": 2})
    assert answer.status_code == 200
    body = answer.get_json()
    assert gateway(client.application).payload.join(30)
    records = list(read_records(tmp_path))
    assert [r["text"] for r in records] == ["我喜欢看足球,电话[PHONE]", "邮件[EMAIL] 买了电脑"]  # "<p> </p>" is empty
    kept = [(k["label"], k["score"], k["top_k"]) for k in (body["results"][0], body["results"][2])]
    assert [(r["label"], r["score"], r["top_k"]) for r in records] == kept
    assert {(r["request_id"], r["model"], r["version"]) for r in records} == {(body["request_id"], "news", 2)}
    assert all(r["latency_ms"] > 0 for r in records)
    assert datetime.now(timezone.utc) - parse_time(records[0]["time"]) < timedelta(hours=1)
    scraped = client.get("/metrics").get_data(as_text=True)
    version = (("model", "news"), ("version", "2"))
    assert metric(scraped, "textclf_gateway_text_length_chars_count") == {version: 2.0}
    lengths = float(len(clean_text(texts[0])) + len(clean_text(texts[2])))  # measured before redaction
    assert metric(scraped, "textclf_gateway_text_length_chars_sum") == {version: lengths}
    assert metric(scraped, "textclf_gateway_low_confidence_total") == {version: 2.0}
    assert metric(scraped, "textclf_gateway_payload_written_total") == {(): 2.0}
