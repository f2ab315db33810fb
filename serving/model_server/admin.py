"""HandleReloadConfigRequest that cannot hang the server.

TF Serving runs ReloadConfig on the calling gRPC thread and waits, without a bound, until every new model
has a version: a base path with no versions holds that thread for good, a few such calls take every thread,
and shutdown waits on them. Here a reload runs on its own daemon thread, one at a time (a second one while
one runs is refused with ABORTED: the caller retries, nothing queues up behind a stuck reload), the caller
waits at most --reload_config_timeout_seconds (or its gRPC deadline, if sooner) and never past shutdown.
With --allow_reload_config off (the default) gRPC callers cannot change the config at all, so nobody who
reaches the port can make the server load arbitrary paths; the --model_config_file poll still reloads.
"""

from __future__ import annotations

import threading
import time

import grpc
from tensorflow_serving.config import model_server_config_pb2

from serving.model_server.errors import ServingError, invalid_argument, unavailable
from serving.model_server.repository import ModelRepository


class ConfigReloader:
    def __init__(
        self, repository: ModelRepository, stop: threading.Event, *, allow_grpc: bool, timeout_s: float
    ) -> None:
        self._repository = repository
        self._stop = stop
        self._allow_grpc = allow_grpc
        self._timeout_s = timeout_s
        self._busy = threading.Lock()

    def reload_from_grpc(self, config: model_server_config_pb2.ModelServerConfig, time_left: float | None) -> None:
        """ModelService.HandleReloadConfigRequest; raises the ServingError the RPC ends with."""
        if not self._allow_grpc:
            raise ServingError(
                grpc.StatusCode.PERMISSION_DENIED,
                "Config reloads over gRPC are disabled on this model server; start it with "
                "--allow_reload_config=true to allow them.",
            )
        if config.WhichOneof("config") != "model_config_list":  # model_service_impl.cc's own check
            raise invalid_argument(
                "ServerModelConfig type not supported by HandleReloadConfigRequest. "
                "Only ModelConfigList is currently supported"
            )
        self.reload(config, time_left)

    def reload(self, config: model_server_config_pb2.ModelServerConfig, time_left: float | None = None) -> None:
        """Apply `config` off the caller's thread and wait for it, bounded; ABORTED while another one runs."""
        if not self._busy.acquire(blocking=False):
            raise ServingError(
                grpc.StatusCode.ABORTED, "Another config reload is still running; try again when it has finished."
            )
        done = threading.Event()
        failure: list[Exception] = []

        def run() -> None:
            try:
                self._repository.apply_config(config, self._timeout_s)
            except Exception as exc:  # noqa: BLE001 - handed to the waiting caller
                failure.append(exc)
            finally:
                self._busy.release()
                done.set()

        threading.Thread(target=run, name="reload-config", daemon=True).start()
        wait_s = self._timeout_s if time_left is None else min(time_left, self._timeout_s)
        deadline = time.monotonic() + wait_s
        while not done.wait(min(0.1, max(deadline - time.monotonic(), 0.0))):
            if self._stop.is_set():
                raise unavailable("The model server is shutting down.")
            if time.monotonic() >= deadline:
                raise ServingError(
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    f"The config reload did not finish within {wait_s:g}s; it goes on in the background.",
                )
        if failure:
            exc = failure[0]
            raise exc if isinstance(exc, ServingError) else ServingError(grpc.StatusCode.UNKNOWN, str(exc))
