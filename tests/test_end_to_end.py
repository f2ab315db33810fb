"""The whole product, as a user runs it, on real parts only: `textclf prep` (real jieba) -> `train lstm` ->
`export` -> `model-server` -> `serve` (gateway, gRPC upstream) -> `/v1/classify` and `textclf predict`.

The skew check is the point: the gateway's answer for a raw text must equal what the model server says
for the tokens that training's own preprocessing (meta.json's recorded Preprocessor) makes of that text.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest
import requests

from bench.processes import TEXTCLF, ModelServer, child_env, free_port, running
from data_prep.preprocess import Preprocessor
from tests.support.corpus import LABELS, SMALL, generated_rows

pytestmark = pytest.mark.slow

TEXTS = ["这个酒店非常干净，早餐好吃，推荐！", "服务太差了，房间又脏又贵，很失望。", "位置还不错"]


def textclf(*args: str) -> str:
    done = subprocess.run([str(TEXTCLF), *args], env=child_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"textclf {' '.join(args)}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    work = tmp_path_factory.mktemp("e2e")
    corpus = work / "reviews.tsv"
    rows = [f"{tokens.replace(' ', '')}\t{LABELS[label]}" for tokens, label in generated_rows(600)]
    corpus.write_text("text\tlabel\n" + "\n".join(rows) + "\n", encoding="utf-8")
    textclf("prep", str(corpus), "--out", str(work / "data"), "--workers", "1")
    textclf("train", "lstm", "--data", str(work / "data"), "--out", str(work / "run"), *SMALL)
    textclf("export", str(work / "run"), "--model-base", str(work / "models"), "--name", "reviews")

    server = ModelServer(
        ["--model_name=reviews", f"--model_base_path={work / 'models' / 'reviews'}"],
        work / "model-server.log",
        models=["reviews"],
    )
    gateway_port = free_port()
    gateway = f"http://127.0.0.1:{gateway_port}"
    gateway_cmd = [
        str(TEXTCLF),
        "serve",
        "--port",
        str(gateway_port),
        "--tfserving-grpc",
        server.grpc_target,
        "--model",
        "reviews",
        "--preprocessing",
        str(work / "data" / "meta.json"),
    ]
    with (
        server,
        running(gateway_cmd, work / "gateway.log", lambda: requests.get(f"{gateway}/readyz").ok, what="gateway"),
    ):
        yield {"work": work, "rest": server.rest_url, "gateway": gateway}


def test_gateway_answers_what_the_model_says_for_training_preprocessing(stack: dict) -> None:
    answer = requests.post(
        f"{stack['gateway']}/v1/classify", json={"model": "reviews", "texts": TEXTS, "top_k": 2}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["model"], body["version"]) == ("reviews", 1)

    meta = json.loads((stack["work"] / "data" / "meta.json").read_text(encoding="utf-8"))
    preprocessor = Preprocessor.from_config(meta["preprocessing"])
    direct = requests.post(
        f"{stack['rest']}/v1/models/reviews:predict",
        json={"instances": [preprocessor.tokens(t) for t in TEXTS]},
        timeout=30,
    ).json()
    for result, expected in zip(body["results"], direct["predictions"], strict=True):
        assert result["label"] == expected["label"]
        assert result["score"] == pytest.approx(expected["top_score"], abs=1e-6)
        assert {k["label"] for k in result["top_k"]} == set(LABELS)  # class_names names every column
    assert [r["label"] for r in body["results"][:2]] == ["positive", "negative"]  # the model learnt the words


def test_batch_predict_through_the_gateway(stack: dict) -> None:
    source, output = stack["work"] / "batch.jsonl", stack["work"] / "preds.jsonl"
    source.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in TEXTS), encoding="utf-8")
    textclf(
        "predict", "--input", str(source), "--output", str(output), "--model", "reviews", "--gateway", stack["gateway"]
    )
    lines = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [line["label"] for line in lines[:2]] == ["positive", "negative"] and len(lines) == len(TEXTS)
