"""TensorFlow's C++ start-up chatter is hidden by default and shown with TEXTCLF_TF_LOGS=1 or --verbose.

The command imports TensorFlow for real (`textclf model-server` with no gRPC port: TF loads, then the server
refuses to start in one line); the lines asserted on are the ones TF 2.21 prints on this CPU-only machine.
"""

from __future__ import annotations

import pytest

from tests.support.cli import cli_env, textclf

pytestmark = pytest.mark.slow  # each run imports TensorFlow in a fresh process

ABSL_NOTICE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
ONEDNN_NOTE = "oneDNN custom operations are on"
SERVER_ERROR = "Error: Failed to start server"


def start_model_server_without_a_port(*options: str, **env: str):
    environ = cli_env(**env)
    environ.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as a user's shell has it
    args = ["--port=0", "--rest_api_port=0", "--model_name=x", "--model_base_path=/nonexistent"]
    return textclf(*options, "model-server", *args, env=environ, timeout=180)


def test_tensorflow_start_up_chatter_is_hidden_and_the_real_error_kept():
    result = start_model_server_without_a_port()
    assert result.returncode == 1
    assert ABSL_NOTICE not in result.stderr and ONEDNN_NOTE not in result.stderr, result.stderr
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        line for line in result.stderr.splitlines() if line.startswith(SERVER_ERROR)
    ], result.stderr


@pytest.mark.parametrize("how", ["env", "flag"])
def test_tf_logs_or_verbose_shows_everything(how):
    options, env = (("--verbose",), {}) if how == "flag" else ((), {"TEXTCLF_TF_LOGS": "1"})
    result = start_model_server_without_a_port(*options, **env)
    assert result.returncode == 1
    assert ABSL_NOTICE in result.stderr and ONEDNN_NOTE in result.stderr and SERVER_ERROR in result.stderr
