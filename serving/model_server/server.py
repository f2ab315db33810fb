"""Wire the pieces together the way tensorflow_model_server's Server::BuildAndStart does, then serve."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from pathlib import Path

from tensorflow_serving.config import model_server_config_pb2

from data_prep.errors import UserError
from serving.model_server import protos, warmup
from serving.model_server.admin import ConfigReloader
from serving.model_server.batching import BatchScheduler
from serving.model_server.dataplane import DataPlane
from serving.model_server.errors import ServingError, invalid_argument
from serving.model_server.flags import ServerOptions
from serving.model_server.grpc_service import host_port, make_grpc_server
from serving.model_server.inference import Inference
from serving.model_server.monitoring import Metrics
from serving.model_server.repository import Loader, ModelRepository
from serving.model_server.rest import RestApi, make_rest_server
from serving.model_server.servable import Servable

log = logging.getLogger("serving.model_server")

PROMETHEUS_DEFAULT_PATH = "/monitoring/prometheus/metrics"
TF_SERVING_VERSION = "2.21.0"


def model_server_config(options: ServerOptions) -> model_server_config_pb2.ModelServerConfig:
    if options.model_config_file:
        return protos.parse_text_file(options.model_config_file, model_server_config_pb2.ModelServerConfig())
    log.info(
        "Building single TensorFlow model file config:  model_name: %s model_base_path: %s",
        options.model_name,
        options.model_base_path,
    )
    config = model_server_config_pb2.ModelServerConfig()
    config.model_config_list.config.add(
        name=options.model_name, base_path=options.model_base_path, model_platform="tensorflow"
    )
    return config


def _configure_tensorflow(options: ServerOptions) -> None:
    import tensorflow as tf

    intra = options.tensorflow_intra_op_parallelism or options.tensorflow_session_parallelism
    inter = options.tensorflow_inter_op_parallelism or options.tensorflow_session_parallelism
    if intra:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
    if inter:
        tf.config.threading.set_inter_op_parallelism_threads(inter)


def build(options: ServerOptions) -> tuple[DataPlane, str | None]:
    """Check the options, read the config files and load every configured model (warm-up included); returns
    the dataplane and the Prometheus path. ServingError when any of it fails, as at TF Serving's start-up."""
    if options.port == 0 and not options.grpc_socket_path:
        raise invalid_argument(
            "At least one of server_options.grpc_port or server_options.grpc_socket_path must be set."
        )
    if not options.model_base_path and not options.model_config_file:
        raise invalid_argument("Both server_options.model_base_path and server_options.model_config_file are empty!")
    if options.tensorflow_session_parallelism and (
        options.tensorflow_intra_op_parallelism and options.tensorflow_inter_op_parallelism
    ):
        raise invalid_argument(
            "Either configure server_options.tensorflow_session_parallelism or "
            "(server_options.tensorflow_intra_op_parallelism, server_options.tensorflow_inter_op_parallelism) "
            "separately. You cannot configure all."
        )
    config = model_server_config(options)
    batcher = None
    if options.enable_batching:
        params = protos.BatchingParameters()
        if options.batching_parameters_file:
            protos.parse_text_file(options.batching_parameters_file, params)
        batcher = BatchScheduler(params)
    elif options.batching_parameters_file:
        raise invalid_argument(
            "server_options.batching_parameters_file is set without setting server_options.enable_batching to true."
        )
    metrics_path = None
    if options.monitoring_config_file and options.rest_api_port:
        monitoring = protos.parse_text_file(options.monitoring_config_file, protos.MonitoringConfig())
        if monitoring.prometheus_config.enable:
            metrics_path = monitoring.prometheus_config.path or PROMETHEUS_DEFAULT_PATH
    _configure_tensorflow(options)
    inference = Inference(Metrics(), batcher, method_name_check=options.enable_signature_method_name_check)
    repository = ModelRepository(
        loader(options, inference),
        poll_wait_seconds=options.file_system_poll_wait_seconds,
        allow_labels_for_unavailable=options.allow_version_labels_for_unavailable_models,
        max_num_load_retries=options.max_num_load_retries,
        load_retry_interval_micros=options.load_retry_interval_micros,
    )
    repository.apply_config(config)
    return DataPlane(repository, inference), metrics_path


def loader(options: ServerOptions, inference: Inference) -> Loader:
    """Load a version with the server's tags and replay its warm-up records through `inference`."""
    tags = [t for t in options.saved_model_tags.split(",") if t]

    def load(name: str, version: int, path: Path) -> Servable:
        servable = Servable.load(
            name, version, path, tags, prefer_tflite=options.prefer_tflite_model, tflite_pools=options.num_tflite_pools
        )
        if options.enable_model_warmup:
            start = time.monotonic()
            try:
                records = warmup.replay(
                    path, lambda entry: inference.replay(servable, entry), options.num_request_iterations_for_warmup
                )
            except BaseException:
                servable.retire()  # close the session of a version that never became available
                raise
            if records:
                inference.metrics.count("model_warmup_records_read", str(path), "OK", by=records)
                inference.metrics.observe("model_warmup_latency", (time.monotonic() - start) * 1e6, str(path), "OK")
        return servable

    return load


def serve(
    options: ServerOptions, ignored_flags: list[str], unknown_args: list[str], stop: threading.Event | None = None
) -> None:
    """Build everything, load the initial models, open the ports and serve until SIGTERM/SIGINT or `stop`."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if ignored_flags:
        log.warning(
            "Flags accepted but ignored by this local model server: %s", " ".join(f"--{name}" for name in ignored_flags)
        )
    for arg in unknown_args:
        log.warning("unknown argument: %s", arg)
    if options.version:
        import tensorflow as tf

        print(f"TensorFlow ModelServer: {TF_SERVING_VERSION}-textclf-local\nTensorFlow Library: {tf.__version__}")
        return
    stop = stop or threading.Event()
    try:
        plane, metrics_path = build(options)
        reloader = ConfigReloader(
            plane.repository,
            stop,
            allow_grpc=options.allow_reload_config,
            timeout_s=options.reload_config_timeout_seconds,
        )
        grpc_server = make_grpc_server(
            plane,
            reloader.reload_from_grpc,
            host=options.bind_address,
            port=options.port,
            socket_path=options.grpc_socket_path,
            channel_arguments=options.grpc_channel_arguments,
            max_threads=options.grpc_max_threads,
        )
    except ServingError as exc:  # tensorflow_model_server's last line before it exits non-zero
        raise UserError(f"Failed to start server. Error: {exc.code_name}: {exc.message}") from None
    repository = plane.repository
    repository.start_polling()

    if options.model_config_file and options.model_config_file_poll_wait_seconds > 0:
        threading.Thread(target=_poll_config, args=(reloader, options, stop), name="config-poll", daemon=True).start()

    grpc_server.start()
    if options.port:
        log.info("Running gRPC ModelServer at %s ...", host_port(options.bind_address, options.port))
    if options.grpc_socket_path:
        log.info("Running gRPC ModelServer at UNIX socket %s ...", options.grpc_socket_path)
    rest_server = None
    if options.rest_api_port and options.rest_api_port != options.port:
        rest_server = make_rest_server(
            RestApi(plane, options.rest_api_timeout_in_ms),
            options.bind_address,
            options.rest_api_port,
            metrics_path,
            options.rest_api_max_body_bytes,
        )
        if rest_server is not None:
            threading.Thread(target=rest_server.serve_forever, name="rest", daemon=True).start()
            log.info("Exporting HTTP/REST API at:%s ...", host_port(options.bind_address, options.rest_api_port))
    elif options.rest_api_port:
        log.error(
            "server_options.http_port cannot be same as grpc_port. Please use a different port for "
            "HTTP/REST API. Skipped exporting HTTP/REST API."
        )

    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    if rest_server is not None:
        rest_server.shutdown()
        rest_server.server_close()
    grpc_server.stop(grace=2).wait()
    repository.close()  # after the front ends: requests still running finish on their versions first
    if plane.inference.batcher is not None:
        plane.inference.batcher.close()


def _poll_config(reloader: ConfigReloader, options: ServerOptions, stop: threading.Event) -> None:
    """Re-read --model_config_file every --model_config_file_poll_wait_seconds; a bad file is logged, not fatal."""
    while not stop.wait(options.model_config_file_poll_wait_seconds):
        try:
            reloader.reload(model_server_config(options))
        except Exception as exc:  # keep serving the previous config, as TF Serving does
            log.error("PollFilesystemAndReloadConfig failed to ReloadConfig: %s", exc)
