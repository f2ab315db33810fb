"""tensorflow_model_server's command line: every 2.21 flag is accepted, the ones this server honours are typed.

TF's flag parser takes `--name=value`, `--name value` and, for booleans, a bare `--name`; so does this one.
Flags the local server does not implement are read and reported in ONE warning line, so a command line
written for the real binary starts this server unchanged.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable

from data_prep.errors import UserError


@dataclasses.dataclass
class ServerOptions:
    """Defaults are tensorflow_model_server's (server.h Server::Options)."""

    port: int = 8500
    grpc_socket_path: str = ""
    grpc_channel_arguments: str = ""
    rest_api_port: int = 0
    rest_api_timeout_in_ms: int = 30000
    model_name: str = "default"
    model_base_path: str = ""
    model_config_file: str = ""
    model_config_file_poll_wait_seconds: int = 0
    file_system_poll_wait_seconds: int = 1
    enable_batching: bool = False
    batching_parameters_file: str = ""
    monitoring_config_file: str = ""
    enable_model_warmup: bool = True
    num_request_iterations_for_warmup: int = 0
    saved_model_tags: str = "serve"
    tensorflow_intra_op_parallelism: int = 0
    tensorflow_inter_op_parallelism: int = 0
    tensorflow_session_parallelism: int = 0
    allow_version_labels_for_unavailable_models: bool = False
    grpc_max_threads: int = 4 * (os.cpu_count() or 1)
    enable_signature_method_name_check: bool = False
    max_num_load_retries: int = 5
    load_retry_interval_micros: int = 60_000_000
    version: bool = False
    # serve a version folder's model.tflite instead of its SavedModel, with this many single-threaded interpreters
    prefer_tflite_model: bool = False
    num_tflite_pools: int = len(os.sched_getaffinity(0))  # TF Serving: port::NumSchedulableCPUs()
    # This server's own flags (tensorflow_model_server has none of them): bind to loopback, refuse gRPC config
    # reloads, bound a reload's wait and the REST body size (TF Serving: no raw limit, 100 MiB gunzipped).
    bind_address: str = "127.0.0.1"
    allow_reload_config: bool = False
    reload_config_timeout_seconds: int = 60
    rest_api_max_body_bytes: int = 100 * 1024 * 1024


# Flags of tensorflow_model_server 2.21 (main.cc) that are parsed and then ignored, with their kind.
IGNORED_FLAGS: dict[str, type] = {
    "rest_api_num_threads": int,  # the REST front end runs a thread per connection
    "rest_api_enable_cors_support": bool,
    "enable_per_model_batching_parameters": bool,
    "num_load_threads": int,
    "num_unload_threads": int,
    "flush_filesystem_caches": bool,
    "tensorflow_session_config_file": str,
    "use_alts_credentials": bool,
    "ssl_config_file": str,
    "platform_config_file": str,
    "per_process_gpu_memory_fraction": float,
    "remove_unused_fields_from_bundle_metagraph": bool,
    "num_tflite_interpreters_per_pool": int,  # its per-pool batch scheduler is not implemented: one interpreter
    "xla_cpu_compilation_enabled": bool,
    "xla_gpu_compilation_enabled": bool,
    "enable_profiler": bool,
    "thread_pool_factory_config_file": str,
    "mixed_precision": str,
    "skip_initialize_tpu": bool,
    "enable_grpc_healthcheck_service": bool,
    "enable_serialization_as_tensor_content": bool,
}

_KINDS = {"int": int, "str": str, "bool": bool}
IMPLEMENTED_FLAGS: dict[str, type] = {f.name: _KINDS[str(f.type)] for f in dataclasses.fields(ServerOptions)}


def _convert(name: str, kind: type, text: str) -> object:
    if kind is bool:
        lowered = text.lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
    else:
        try:
            return kind(text)
        except ValueError:
            pass
    raise UserError(f"Illegal value '{text}' for flag --{name}")


def parse_flags(argv: Iterable[str]) -> tuple[ServerOptions, list[str], list[str]]:
    """Return (options, ignored flag names, unknown arguments). Bad values raise UserError."""
    options = ServerOptions()
    ignored: list[str] = []
    unknown: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not arg.startswith("-") or arg in ("-", "--"):
            unknown.append(arg)
            continue
        name, has_value, value = arg.lstrip("-").partition("=")
        kind = IMPLEMENTED_FLAGS.get(name) or IGNORED_FLAGS.get(name)
        if kind is None:
            unknown.append(arg)
            continue
        if not has_value:
            if kind is bool and (i >= len(args) or args[i].lower() not in ("true", "false", "1", "0")):
                value = "true"
            elif i < len(args):
                value = args[i]
                i += 1
            else:
                raise UserError(f"Flag --{name} needs a value")
        converted = _convert(name, kind, value)
        if name in IMPLEMENTED_FLAGS:
            setattr(options, name, converted)
        else:
            ignored.append(name)
    return options, ignored, unknown
