"""The gateway never imports TensorFlow, Keras or tfmodels (fast start, slim image), yet speaks gRPC."""

from __future__ import annotations

import json
import os
import subprocess
import sys

PROBE = """
import json, sys
from serving.gateway import batch_predict, cli, grpc_client, rest_client, wsgi
from serving.gateway.app import create_app
from serving.gateway.config import GatewayConfig
create_app(GatewayConfig(tfserving_grpc="127.0.0.1:1"))
"""

CHECK = """
loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tfmodels', 'tf_keras'))
print(json.dumps({"loaded": loaded, "jieba": 'jieba' in sys.modules}))
"""


def test_gateway_imports_no_tensorflow():
    env = {**os.environ, "TEXTCLF_TFSERVING_REST": "http://127.0.0.1:1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-c", PROBE + CHECK], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert "tensorflow" not in report["loaded"] and "tensorflow.python" not in report["loaded"]
    assert not [m for m in report["loaded"] if m.split(".")[0] in ("keras", "tfmodels", "tf_keras")]
    # of TensorFlow's tree only the pure-protobuf *_pb2 modules (and the folders holding them) were loaded
    protos = [m for m in report["loaded"] if m.endswith("_pb2")]
    assert protos and all(any(p.startswith(m + ".") for p in protos) for m in report["loaded"] if m not in protos)
    assert report["jieba"]  # the dictionary is loaded when the app is created, not on the first request


PREDICT = """
import json, sys
from click.testing import CliRunner
from textclf import cli
input_path, output_path = sys.argv[1:3]
args = ["predict", "--input", input_path, "--output", output_path, "--model", "news"]
result = CliRunner().invoke(cli, [*args, "--tfserving-rest", "http://127.0.0.1:1"])
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("flask", "werkzeug"))
print(json.dumps({"exit": result.exit_code, "output": result.output, "loaded": loaded}))
"""


def test_predict_straight_through_tf_serving_needs_no_flask(tmp_path):
    """`textclf predict --tfserving-rest` builds the gateway's classifier (assembly.py), not its Flask app."""
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "看足球"}\n', encoding="utf-8")
    args = [sys.executable, "-c", PREDICT, str(source), str(tmp_path / "out.jsonl")]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    # it ran the whole direct path: preprocessing, the REST client, and TF Serving's absence as one line
    assert report["exit"] == 1 and "upstream_unavailable" in report["output"], report["output"]
    assert report["loaded"] == []
