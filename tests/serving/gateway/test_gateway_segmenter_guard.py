"""The gateway segments with the backend its model was prepared with (jieba or rjieba, from the recorded
preprocessing), and refuses to start on one this installation cannot reproduce (another backend version)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from data_prep.preprocess import Preprocessor
from data_prep.segment import Segmenter
from tests.support.cli import textclf
from tests.support.fake_upstream import FakeUpstream, fake_app

URL_TEXT = "访问https://www.example.com看看"  # jieba cuts the host at each dot, jieba-rs keeps it whole


def model_card(path: Path, backend: str, **segmenter_fields: str) -> Path:
    """A model card whose recorded preprocessing is `backend`'s (fields overridden as given)."""
    preprocessing = Preprocessor(Segmenter(backend=backend)).config()
    preprocessing["segmenter"].update(segmenter_fields)
    path.write_text(json.dumps({"name": "news", "preprocessing": preprocessing}), encoding="utf-8")
    return path


def test_gateway_segments_with_the_recorded_backend(tmp_path: Path) -> None:
    words = {}
    for backend in ("jieba", "rjieba"):
        fake = FakeUpstream()
        client = fake_app(fake, preprocessing=str(model_card(tmp_path / f"{backend}.json", backend))).test_client()
        answer = client.post("/v1/classify", json={"model": "news", "texts": [URL_TEXT]})
        assert answer.status_code == 200, answer.get_json()
        (predict,) = [call for call in fake.calls if call[0] == "predict"]
        words[backend] = predict[4][0]
    assert words == {
        "jieba": "访问 https : / / www . example . com 看看",
        "rjieba": "访问 https : / / www.example.com 看看",
    }


def test_gateway_refuses_to_start_on_another_backend_version(tmp_path: Path) -> None:
    card = model_card(tmp_path / "model_card.json", "rjieba", rjieba_version="0.0.1")
    with socket.socket() as taken:  # were the guard missing, the gateway would fail to listen, not serve on
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = textclf("serve", "--port", port, "--tfserving-grpc", "127.0.0.1:1", "--preprocessing", str(card))
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "made with rjieba 0.0.1, installed is rjieba" in errors[0], result.stderr
    assert "Traceback" not in result.stderr and "gateway on" not in result.stderr
