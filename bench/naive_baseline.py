"""The serving code of a typical tutorial, as the baseline the real stack is measured against.

One Flask process loads the Keras model and, per request, cleans the text with its own regexes,
segments it with jieba, maps words to ids, pads to a fixed length and calls `model.predict`.
No TF Serving, no batching, no second process. It is deliberately NOT built from our serving code;
it reads only what a training run leaves behind (RUN_DIR/model/model.keras, vocab.txt, config.json,
and the prepared dataset's meta.json for the label names).

    python -m bench.naive_baseline --run-dir RUN_DIR --port 8000
    POST /predict {"text": "..."}  ->  {"label": "...", "score": 0.97}
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import jieba
import keras
import numpy as np
from flask import Flask, Response, jsonify, request

import tfmodels.lstm.network  # noqa: F401  (registers the saved model's custom layers with Keras)
from data_prep.dataset_format import META_FILE
from data_prep.json_file import read_json_object
from tfmodels.lstm.family import MODEL_FILE, VOCAB_FILE
from tfmodels.run_dir import RunDir

HTML_TAG = re.compile(r"<[^>]+>")
SPACES = re.compile(r"\s+")


def build_app(run_dir: Path) -> Flask:
    run = RunDir(run_dir)
    config = read_json_object(run.config)
    labels = read_json_object(Path(config["data"]) / META_FILE)["labels"]
    words = (run.model / VOCAB_FILE).read_text(encoding="utf-8").split("\n")[:-1]
    word_index = {w: i + 2 for i, w in enumerate(words)}  # 0 = padding, 1 = unknown word
    max_len = int(config["max_len"])
    model = keras.saving.load_model(run.model / MODEL_FILE, compile=False)  # inference only
    app = Flask(__name__)

    @app.post("/predict")
    def predict() -> Response:
        text = request.get_json(force=True)["text"]
        text = SPACES.sub(" ", HTML_TAG.sub("", text)).strip()
        ids = [word_index.get(w, 1) for w in jieba.lcut(text) if w.strip()][:max_len]
        x = np.zeros((1, max_len), dtype="int64")
        x[0, : len(ids)] = ids
        logits = model.predict(x, verbose=0)[0]
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        best = int(probs.argmax())
        return jsonify(label=labels[best], score=float(probs[best]))

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="tutorial-style Flask + model.predict baseline")
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    build_app(args.run_dir).run(host="127.0.0.1", port=args.port, threaded=True)


if __name__ == "__main__":
    main()
