"""p50/p99 REST predict latency of one version folder served as a SavedModel and, with --prefer_tflite_model,
from its model.tflite, on the local model server: batch 1 and batch 32, sequential requests after a warm-up.

    .venv/bin/python -m bench.tflite_latency MODEL_BASE/NAME --texts FILE [--requests 300]

MODEL_BASE/NAME's latest version must hold model.tflite (`textclf export --tflite`); FILE has one input
string per line (what the version's input takes: space-joined words for the LSTM family).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import requests

from bench.processes import ModelServer
from data_prep.errors import UserError
from serving.contract import SIGNATURE

MODEL = "bench"
LOG_TAIL_LINES = 30


def measure(server: ModelServer, texts: list[str], batch: int, requests_n: int) -> dict[str, float]:
    url = f"{server.rest_url}/v1/models/{MODEL}:predict"
    bodies = [
        {"signature_name": SIGNATURE, "instances": [texts[(i * batch + j) % len(texts)] for j in range(batch)]}
        for i in range(requests_n)
    ]
    for body in bodies[:20]:  # warm-up
        requests.post(url, json=body, timeout=60).raise_for_status()
    took = []
    with requests.Session() as session:
        for body in bodies:
            start = time.perf_counter()
            session.post(url, json=body, timeout=60).raise_for_status()
            took.append((time.perf_counter() - start) * 1e3)
    return {"p50_ms": round(float(np.percentile(took, 50)), 2), "p99_ms": round(float(np.percentile(took, 99)), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--texts", type=Path, required=True)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    texts = [line for line in args.texts.read_text(encoding="utf-8").splitlines() if line.strip()]
    results = {}
    for kind, extra in (("saved_model", []), ("tflite", ["--prefer_tflite_model=true"])):
        flags = [f"--model_name={MODEL}", f"--model_base_path={args.model_dir.resolve()}", *extra]
        with tempfile.TemporaryDirectory() as logs:
            log = Path(logs) / "server.log"
            try:
                server = ModelServer(flags, log, models=(MODEL,)).start()
            except UserError:  # the log goes with the temporary folder: show why it did not start
                tail = log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:] if log.exists() else []
                print("\n".join([f"model server log ({kind}), last lines:", *tail]), file=sys.stderr)
                raise
            with server:
                results[kind] = {f"batch_{b}": measure(server, texts, b, args.requests) for b in (1, 32)}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
