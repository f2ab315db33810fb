"""Which versions of which models are on disk, which are loaded, and how they come and go.

Follows TF Serving's ServerCore/AspiredVersionsManager: every poll lists integer version folders
(leading zeros allowed, names starting with '.' or not integers ignored), picks the aspired ones by the
model's version policy (latest N, all, specific), loads new ones first (warm-up included, state LOADING)
and only then unloads those no longer aspired (availability-preserving). An unloaded version leaves the
lookup table at once but is freed only when the last in-flight request using it releases it.

It answers "what is loaded" (`serving_map`); resolving a request's ModelSpec to one version and pinning it
is the dataplane's job. Every failure it raises is a ServingError; start-up words them for the CLI.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping
from pathlib import Path

from tensorflow_serving.config import file_system_storage_path_source_pb2, model_server_config_pb2

from serving.contract import versions_on_disk
from serving.model_server.errors import ServingError, failed_precondition, invalid_argument, status_code
from serving.model_server.servable import Servable

log = logging.getLogger(__name__)

Loader = Callable[[str, int, Path], Servable]
VersionPolicy = file_system_storage_path_source_pb2.FileSystemStoragePathSourceConfig.ServableVersionPolicy


@dataclasses.dataclass
class VersionState:
    """One row of GetModelStatus: START, LOADING, AVAILABLE, UNLOADING or END, with the load error if any."""

    state: str
    error_code: str = "OK"
    error_message: str = ""


@dataclasses.dataclass(frozen=True)
class ServingMap:
    """A snapshot of one model as requests see it: its loaded versions and its labels."""

    versions: Mapping[int, Servable]
    labels: Mapping[str, int]


def aspired_versions(policy: VersionPolicy, available: list[int]) -> list[int]:
    """Apply a ServableVersionPolicy to the versions found (default: the latest one)."""
    choice = policy.WhichOneof("policy_choice")
    if choice == "all":
        return sorted(available)
    if choice == "specific":
        return sorted(set(policy.specific.versions) & set(available))
    keep = policy.latest.num_versions if choice == "latest" and policy.latest.num_versions > 0 else 1
    return sorted(available)[-keep:]


def unload_order(loaded: list[int], aspired: list[int], pinned: Collection[int] = ()) -> list[int]:
    """The loaded versions to unload, lowest first, as TF Serving's AvailabilityPreservingPolicy picks them one
    step at a time: an unaspired version goes once an aspired one serves, or when nothing is aspired (every
    folder deleted); while aspired versions exist but none has loaded (a new one failed), the newest unaspired
    one keeps the model up. A version the config names in a `specific` policy is never unloaded, nor any
    above it (the policy stops at the lowest candidate)."""
    serving = sorted(loaded)
    order: list[int] = []
    while True:
        stale = [v for v in serving if v not in aspired]
        may_unload = not aspired or any(v in aspired for v in serving) or len(stale) > 1
        if not stale or not may_unload or stale[0] in pinned:
            return order
        order.append(stale[0])
        serving.remove(stale[0])


class _Model:
    def __init__(self, config: model_server_config_pb2.ModelConfig) -> None:
        self.config = config
        self.states: dict[int, VersionState] = {}
        self.loaded: dict[int, Servable] = {}
        self.labels: dict[str, int] = {}
        self.failed: set[int] = set()


class ModelRepository:
    """Thread-safe table of models -> loaded versions; one lifecycle thread polls the file system."""

    def __init__(
        self, loader: Loader, *, poll_wait_seconds: int = 1, allow_labels_for_unavailable: bool = False
    ) -> None:
        self._loader = loader
        self._poll_wait = poll_wait_seconds
        self._allow_unavailable_labels = allow_labels_for_unavailable
        self._models: dict[str, _Model] = {}
        self._lock = threading.Lock()  # guards the tables; never held while loading
        self._lifecycle = threading.RLock()  # one poll / reload at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- configuration -------------------------------------------------------------------------------------
    def apply_config(self, config: model_server_config_pb2.ModelServerConfig) -> None:
        """ReloadConfig: serve exactly these models, wait until each new one has a version, then set labels."""
        if config.WhichOneof("config") != "model_config_list":
            raise invalid_argument("ModelServer does not yet support custom model config.")
        wanted = {c.name: c for c in config.model_config_list.config}
        with self._lifecycle:
            with self._lock:
                new = [name for name in wanted if name not in self._models or self._models[name].config is None]
                removed = [name for name, m in self._models.items() if name not in wanted and m.config is not None]
                for name, cfg in wanted.items():
                    model = self._models.setdefault(name, _Model(cfg))
                    model.config = cfg
                for name in removed:
                    self._models[name].config = None
            for name in removed:
                self._retire(name, list(self._models[name].loaded))
            self._wait_available(new)
            self._update_labels()

    def _wait_available(self, names: list[str]) -> None:
        while True:
            self.poll_once()
            with self._lock:
                pending = [n for n in names if not self._models[n].loaded]
                errors = [(n, v, s) for n in pending for v, s in self._models[n].states.items() if s.error_code != "OK"]
            if errors:
                state = errors[0][2]
                raise ServingError(status_code(state.error_code), state.error_message)
            if not pending:
                return
            time.sleep(max(self._poll_wait, 1) if self._poll_wait > 0 else 1)

    def _update_labels(self) -> None:
        with self._lock:
            for name, model in self._models.items():
                if model.config is None:
                    continue
                labels: dict[str, int] = {}
                for label, version in model.config.version_labels.items():
                    available = model.states.get(version, VersionState("END")).state == "AVAILABLE"
                    may_dangle = self._allow_unavailable_labels and model.labels.get(label, version) == version
                    if not available and not may_dangle:
                        raise failed_precondition(
                            f"Request to assign label to version {version} of model {name}, "
                            "which is not currently available for inference"
                        )
                    labels[label] = version
                model.labels = labels

    # ---- the lifecycle loop ------------------------------------------------------------------------------
    def start_polling(self) -> None:
        """Poll every --file_system_poll_wait_seconds; 0 means the startup poll was the only one."""
        if self._poll_wait <= 0:
            return
        self._thread = threading.Thread(target=self._poll_forever, name="fs-poll", daemon=True)
        self._thread.start()

    def _poll_forever(self) -> None:
        while not self._stop.wait(self._poll_wait):
            try:
                self.poll_once()
            except Exception:  # a broken poll must not end serving
                log.exception("file system poll failed")

    def poll_once(self) -> None:
        with self._lifecycle:
            with self._lock:
                models = [(name, m.config) for name, m in self._models.items() if m.config is not None]
            for name, config in models:
                base = Path(config.base_path)
                if not base.is_dir():
                    log.error(
                        "File system storage path source: Could not find base path %s for servable %s", base, name
                    )
                    continue
                on_disk = versions_on_disk(base)
                if not on_disk:
                    log.warning("No versions of servable %s found under base path %s.", name, base)
                aspired = aspired_versions(config.model_version_policy, list(on_disk))
                model = self._models[name]
                for version in aspired:
                    if version not in model.loaded and version not in model.failed:
                        self._load(name, version, on_disk[version])
                policy = config.model_version_policy
                pinned = policy.specific.versions if policy.WhichOneof("policy_choice") == "specific" else ()
                self._retire(name, unload_order(list(model.loaded), aspired, pinned))

    def _load(self, name: str, version: int, path: Path) -> None:
        model = self._models[name]
        with self._lock:
            model.states[version] = VersionState("LOADING")
        log.info("Loading servable version {name: %s version: %d}", name, version)
        try:
            servable = self._loader(name, version, path)
        except Exception as exc:  # the load failed: the version ends with its error, others keep serving
            log.error("Loading servable: {name: %s version: %d} failed: %s", name, version, exc)
            code = exc.code.name if isinstance(exc, ServingError) else "UNKNOWN"
            with self._lock:
                model.failed.add(version)
                model.states[version] = VersionState("END", code, str(exc))
            return
        with self._lock:
            model.loaded[version] = servable
            model.states[version] = VersionState("AVAILABLE")
        log.info("Successfully loaded servable version {name: %s version: %d}", name, version)

    def _retire(self, name: str, versions: list[int]) -> None:
        model = self._models[name]
        for version in versions:
            with self._lock:
                servable = model.loaded.pop(version)
                model.states[version] = VersionState("UNLOADING")
            servable.retire()  # requests that already hold it finish on it
            with self._lock:
                model.states[version] = VersionState("END")
            log.info("Done unloading servable version {name: %s version: %d}", name, version)

    def close(self) -> None:
        self._stop.set()

    # ---- lookups ----------------------------------------------------------------------------------------
    def serving_map(self, name: str) -> ServingMap | None:
        """What requests for `name` may use now; None for a model this server does not serve."""
        with self._lock:
            model = self._models.get(name)
            return ServingMap(dict(model.loaded), dict(model.labels)) if model else None

    def version_states(self, name: str) -> list[tuple[int, VersionState]]:
        """Every version the server has known for `name`, newest first (unloaded ones stay as END)."""
        with self._lock:
            model = self._models.get(name)
            return sorted(model.states.items(), reverse=True) if model else []
