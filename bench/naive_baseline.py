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
import json
import re
from pathlib import Path

import jieba
import keras
import numpy as np
from flask import Flask, jsonify, request

import tfmodels.lstm_family  # noqa: F401  registers the custom layer the saved model names (custom_objects)

HTML_TAG = re.compile(r"<[^>]+>")
SPACES = re.compile(r"\s+")


def build_app(run_dir: Path) -> Flask:
    config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    labels = json.loads((Path(config["data"]) / "meta.json").read_text(encoding="utf-8"))["labels"]
    words = (run_dir / "model" / "vocab.txt").read_text(encoding="utf-8").split("\n")[:-1]
    word_index = {w: i + 2 for i, w in enumerate(words)}  # 0 = padding, 1 = unknown word
    max_len = int(config["max_len"])
    model = keras.saving.load_model(run_dir / "model" / "model.keras", compile=False)  # inference only
    app = Flask(__name__)

    @app.post("/predict")
    def predict():
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
