"""Config files as tensorflow_model_server reads them: ModelServerConfig, BatchingParameters, bad text."""

from __future__ import annotations

import concurrent.futures
import os
import subprocess

import pytest
import requests

from bench.processes import TEXTCLF
from tests.support.half_plus_two import export_half_plus_two

pytestmark = pytest.mark.slow


def test_unparsable_model_config_fails_like_tf_serving(tmp_path):
    config = tmp_path / "models.config"
    config.write_text('model_config_list { config { name: "half" base_path: } }')
    done = subprocess.run(
        [
            str(TEXTCLF),
            "model-server",
            "--port=0",
            "--grpc_socket_path",
            str(tmp_path / "s"),
            f"--model_config_file={config}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert done.returncode != 0
    assert "Error parsing text-format tensorflow.serving.ModelServerConfig" in done.stderr
    assert "Traceback" not in done.stderr


def test_config_file_with_label_and_batching(tmp_path, start_server):
    base = tmp_path / "half"
    base.mkdir()
    export_half_plus_two(base, "3", warmup=False)
    config = tmp_path / "models.config"
    config.write_text(f'''model_config_list {{
      config {{
        name: "half" base_path: "{base}" model_platform: "tensorflow"
        model_version_policy {{ all {{}} }}
        version_labels {{ key: "stable" value: 3 }}
      }}
    }}''')
    batching = tmp_path / "batching.config"
    batching.write_text(
        "max_batch_size { value: 8 }\nbatch_timeout_micros { value: 20000 }\n"
        "num_batch_threads { value: 1 }\nmax_enqueued_batches { value: 100 }\n"
    )
    server = start_server(
        [
            f"--model_config_file={config}",
            "--enable_batching",
            f"--batching_parameters_file={batching}",
            "--rest_api_timeout_in_ms=20000",
        ],
        "half",
    )

    def call(x: float) -> list:
        answer = requests.post(f"{server.url}/v1/models/half/labels/stable:predict", json={"instances": [x, x + 1]})
        assert answer.status_code == 200, answer.text
        return answer.json()["predictions"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(call, [float(i) for i in range(24)]))
    assert results == [[0.5 * i + 2, 0.5 * (i + 1) + 2] for i in range(24)]

    too_big = requests.post(f"{server.url}/v1/models/half:predict", json={"instances": [1.0] * 9})
    assert too_big.status_code == 400
    assert "Task size 9 is larger than maximum input batch size 8" in too_big.json()["error"]
