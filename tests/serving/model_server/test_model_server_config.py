"""Config files as tensorflow_model_server reads them: ModelServerConfig, BatchingParameters, bad text."""

from __future__ import annotations

import concurrent.futures
import os
import socket
import subprocess

import pytest
import requests

from bench.processes import TEXTCLF, free_port
from tests.support.half_plus_two import export_half_plus_two
from tests.support.servers import ModelServer

pytestmark = pytest.mark.slow


def run_model_server(*flags: str) -> subprocess.CompletedProcess[str]:
    """`textclf model-server FLAGS` expected to end on its own (a start-up failure)."""
    return subprocess.run(
        [str(TEXTCLF), "model-server", *flags],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


def assert_one_line_start_failure(done: subprocess.CompletedProcess[str], error: str) -> None:
    """tensorflow_model_server's ending: one line `Failed to start server. Error: CODE: message`, exit != 0."""
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    failures = [line for line in done.stderr.splitlines() if "Failed to start server." in line]
    assert len(failures) == 1 and failures[0] == done.stderr.strip().splitlines()[-1], done.stderr
    assert f"Failed to start server. Error: {error}" in failures[0]


def test_unparsable_model_config_fails_like_tf_serving(tmp_path):
    config = tmp_path / "models.config"
    config.write_text('model_config_list { config { name: "half" base_path: } }')
    done = run_model_server("--port=0", "--grpc_socket_path", str(tmp_path / "s"), f"--model_config_file={config}")
    assert done.returncode != 0
    assert "Error parsing text-format tensorflow.serving.ModelServerConfig" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_version_that_cannot_load_ends_start_up_in_one_line(tmp_path):
    (tmp_path / "half" / "1").mkdir(parents=True)  # a version folder without a SavedModel
    done = run_model_server(
        f"--port={free_port()}",
        "--model_name=half",
        f"--model_base_path={tmp_path / 'half'}",
        "--max_num_load_retries=1",  # start-up waits for the retries (5 x 1 min by default), as TF Serving does
        "--load_retry_interval_micros=0",
    )
    assert done.stderr.count("Could not find SavedModel") >= 2  # the first attempt and its retry
    assert_one_line_start_failure(
        done, f"NOT_FOUND: Could not find SavedModel .pb or .pbtxt at supplied export directory path: {tmp_path}"
    )


def test_a_grpc_port_in_use_ends_start_up_in_one_line(tmp_path):
    base = tmp_path / "half"
    base.mkdir()
    export_half_plus_two(base, "1", warmup=False)
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_model_server(f"--port={port}", "--model_name=half", f"--model_base_path={base}")
    assert_one_line_start_failure(done, "INVALID_ARGUMENT: Failed to BuildAndStart gRPC server")


def test_config_file_with_label_and_batching(tmp_path):
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
    flags = [
        f"--model_config_file={config}",
        "--enable_batching",
        f"--batching_parameters_file={batching}",
        "--rest_api_timeout_in_ms=20000",
    ]
    with ModelServer(flags, tmp_path / "server.log", models=["half"]) as server:

        def call(x: float) -> list:
            answer = requests.post(
                f"{server.rest_url}/v1/models/half/labels/stable:predict", json={"instances": [x, x + 1]}
            )
            assert answer.status_code == 200, answer.text
            return answer.json()["predictions"]

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(call, [float(i) for i in range(24)]))
        assert results == [[0.5 * i + 2, 0.5 * (i + 1) + 2] for i in range(24)]

        too_big = requests.post(f"{server.rest_url}/v1/models/half:predict", json={"instances": [1.0] * 9})
        process = server.proc
    assert process is not None and process.returncode == 0  # stop() is SIGTERM: the server shut down cleanly
    assert too_big.status_code == 400
    assert "Task size 9 is larger than maximum input batch size 8" in too_big.json()["error"]
