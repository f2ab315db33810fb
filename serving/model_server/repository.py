"""Which versions of which models are on disk, which are loaded, and how they come and go.

Follows TF Serving's ServerCore/AspiredVersionsManager: every poll lists integer version folders
(leading zeros allowed, names starting with '.' or not integers ignored), picks the aspired ones by the
model's version policy (latest N, all, specific), loads new ones first (warm-up included, state LOADING)
and only then unloads those no longer aspired (availability-preserving). An unloaded version leaves the
lookup table at once but is freed only when the last in-flight request using it releases it.

A failed load is retried as LoaderHarness does: up to --max_num_load_retries more attempts,
--load_retry_interval_micros apart (the version shows LOADING with the last error meanwhile), then it ends
(END with its error) and stays failed while it is aspired; a version that leaves the aspired set (its
folder moved away) is forgotten, so putting it back loads it afresh; a model removed from the config ends its
pending retries the same way. Retries wait on their own clock, not inside a poll, so one broken version never
delays the other models.

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

import grpc
from tensorflow_serving.config import file_system_storage_path_source_pb2, model_server_config_pb2

from serving.contract import versions_on_disk
from serving.model_server.errors import ServingError, failed_precondition, invalid_argument, status_code, unavailable
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


@dataclasses.dataclass
class _Retry:
    """A version whose load failed: how many attempts failed, when to try again, and whether to give up."""

    path: Path
    failures: int
    next_try: float
    gave_up: bool


class _Model:
    def __init__(self, config: model_server_config_pb2.ModelConfig | None) -> None:
        self.config = config
        self.states: dict[int, VersionState] = {}
        self.loaded: dict[int, Servable] = {}
        self.labels: dict[str, int] = {}
        self.retries: dict[int, _Retry] = {}
        self.aspired: list[int] = []  # as of the last poll


class ModelRepository:
    """Thread-safe table of models -> loaded versions; one lifecycle thread polls the file system."""

    def __init__(
        self,
        loader: Loader,
        *,
        poll_wait_seconds: int = 1,
        allow_labels_for_unavailable: bool = False,
        max_num_load_retries: int = 5,
        load_retry_interval_micros: int = 60_000_000,
    ) -> None:
        self._loader = loader
        self._poll_wait = poll_wait_seconds
        self._allow_unavailable_labels = allow_labels_for_unavailable
        self._max_retries = max(max_num_load_retries, 0)
        self._retry_interval = max(load_retry_interval_micros, 0) / 1e6
        self._models: dict[str, _Model] = {}
        self._lock = threading.Lock()  # guards the tables; never held while loading
        self._lifecycle = threading.RLock()  # one poll / reload at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- configuration -------------------------------------------------------------------------------------
    def apply_config(self, config: model_server_config_pb2.ModelServerConfig, timeout_s: float | None = None) -> None:
        """ReloadConfig: serve exactly these models, wait until each new one has a version, then set labels.
        `timeout_s` bounds the wait (DEADLINE_EXCEEDED; the models stay configured and load when they can)."""
        if config.WhichOneof("config") != "model_config_list":
            raise invalid_argument("ModelServer does not yet support custom model config.")
        wanted = {c.name: c for c in config.model_config_list.config}
        with self._lifecycle:
            if self._stop.is_set():
                raise unavailable("The model server is shutting down.")
            with self._lock:
                new = [name for name in wanted if name not in self._models or self._models[name].config is None]
                removed = [name for name, m in self._models.items() if name not in wanted and m.config is not None]
                for name, cfg in wanted.items():
                    model = self._models.setdefault(name, _Model(cfg))
                    model.config = cfg
                for name in removed:
                    model = self._models[name]
                    model.config = None
                    self._cancel_retries(model, list(model.retries))
            for name in removed:
                self._retire(name, list(self._models[name].loaded))
        self._wait_available(new, None if timeout_s is None else time.monotonic() + timeout_s)
        with self._lifecycle:
            self._update_labels()

    def _wait_available(self, names: list[str], deadline: float | None) -> None:
        """Poll until each model has a loaded version (or one of its versions gave up: that error), as
        ServerCore waits; the lifecycle lock is held per poll only, so the poll thread keeps the others going."""
        while True:
            self.poll_once()
            with self._lock:  # a model a later reload removed is no longer waited for
                pending = [n for n in names if self._models[n].config is not None and not self._models[n].loaded]
                models = [self._models[n] for n in pending]
                errors = [m.states[v] for m in models for v, r in m.retries.items() if r.gave_up]
            if errors:
                raise ServingError(status_code(errors[0].error_code), errors[0].error_message)
            if not pending:
                return
            retry_in = self._next_retry_in()
            pause = min(max(self._poll_wait, 1), 1 if retry_in is None else retry_in)
            if deadline is not None:
                if time.monotonic() >= deadline:
                    raise ServingError(
                        grpc.StatusCode.DEADLINE_EXCEEDED,
                        f"No version of model(s) {', '.join(pending)} became available in time; they stay "
                        "configured and load when a version appears.",
                    )
                pause = min(pause, max(deadline - time.monotonic(), 0.0))
            if self._stop.wait(pause):
                raise unavailable("The model server is shutting down.")

    def _next_retry_in(self) -> float | None:
        """Seconds until the earliest pending load retry of a configured model (0 when one is due), None when none
        is pending."""
        with self._lock:
            due = [
                r.next_try
                for m in self._models.values()
                if m.config is not None
                for r in m.retries.values()
                if not r.gave_up
            ]
        return max(min(due) - time.monotonic(), 0.0) if due else None

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
        """Poll every --file_system_poll_wait_seconds (0: the startup poll was the only one) and run load
        retries when they are due, whichever comes first."""
        self._thread = threading.Thread(target=self._poll_forever, name="fs-poll", daemon=True)
        self._thread.start()

    def _poll_forever(self) -> None:
        next_poll = time.monotonic() + self._poll_wait if self._poll_wait > 0 else None
        while True:
            poll_in = None if next_poll is None else next_poll - time.monotonic()
            waits = [w for w in (self._next_retry_in(), poll_in) if w is not None]
            if self._stop.wait(max(min([*waits, 1.0]), 0.0)):  # wakes at least every second: new retries
                return
            polling = next_poll is not None and time.monotonic() >= next_poll
            try:
                self.poll_once(retries_only=not polling)
            except Exception:  # a broken poll must not end serving
                log.exception("file system poll failed")
            if polling and next_poll is not None:
                next_poll = time.monotonic() + self._poll_wait

    def poll_once(self, *, retries_only: bool = False) -> None:
        """One pass over every model; `retries_only` retries due failed loads without listing folders (a
        retry when file system polling is off). A model whose folder cannot be read is logged and skipped."""
        with self._lifecycle:
            if self._stop.is_set():  # closed: nothing loads any more
                return
            with self._lock:
                models = [(name, m.config) for name, m in self._models.items() if m.config is not None]
            for name, config in models:
                try:
                    if retries_only:
                        self._retry_due(name, config)
                    else:
                        self._poll_model(name, config)
                except Exception:  # noqa: BLE001 - one bad folder never stops the other models
                    log.exception("Polling servable %s under %s failed", name, config.base_path)

    def _poll_model(self, name: str, config: model_server_config_pb2.ModelConfig) -> None:
        base = Path(config.base_path)
        if not base.is_dir():
            log.error("File system storage path source: Could not find base path %s for servable %s", base, name)
            return
        on_disk = versions_on_disk(base)
        if not on_disk:
            log.warning("No versions of servable %s found under base path %s.", name, base)
        aspired = aspired_versions(config.model_version_policy, list(on_disk))
        model = self._models[name]
        model.aspired = aspired
        with self._lock:  # an unaspired failure is forgotten, a comeback loads afresh
            self._cancel_retries(model, [v for v in model.retries if v not in aspired])
        for version in sorted(aspired, reverse=True):  # the policy loads the highest new version first
            retry = model.retries.get(version)
            if version in model.loaded or (retry and (retry.gave_up or retry.next_try > time.monotonic())):
                continue
            self._load(name, version, on_disk[version])
        self._unload_stale(name, config)

    @staticmethod
    def _cancel_retries(model: _Model, versions: list[int]) -> None:
        """CancelLoadServableRetry (caller holds the lock): a version waiting for a retry ends with its error."""
        for version in versions:
            del model.retries[version]
            if model.states[version].state == "LOADING":
                model.states[version] = dataclasses.replace(model.states[version], state="END")

    def _retry_due(self, name: str, config: model_server_config_pb2.ModelConfig) -> None:
        model = self._models[name]
        due = [(v, r.path) for v, r in model.retries.items() if not r.gave_up and r.next_try <= time.monotonic()]
        for version, path in sorted(due, reverse=True):
            self._load(name, version, path)
        if due:
            self._unload_stale(name, config)

    def _unload_stale(self, name: str, config: model_server_config_pb2.ModelConfig) -> None:
        model = self._models[name]
        policy = config.model_version_policy
        pinned = policy.specific.versions if policy.WhichOneof("policy_choice") == "specific" else ()
        self._retire(name, unload_order(list(model.loaded), model.aspired, pinned))

    def _load(self, name: str, version: int, path: Path) -> None:
        model = self._models[name]
        retry = model.retries.get(version)
        with self._lock:
            model.states[version] = VersionState("LOADING")
        if retry is None:
            log.info("Loading servable version {name: %s version: %d}", name, version)
        else:
            log.info("Retrying of Loading servable: {name: %s version: %d} retry: %d", name, version, retry.failures)
        try:
            servable = self._loader(name, version, path)
        except Exception as exc:  # the load failed: retried later, then the version ends; others keep serving
            log.error("Loading servable: {name: %s version: %d} failed: %s", name, version, exc)
            code = exc.code.name if isinstance(exc, ServingError) else "UNKNOWN"
            failures = (retry.failures if retry else 0) + 1
            gave_up = failures > self._max_retries
            if gave_up and self._max_retries:
                log.info(
                    "Retrying of Loading servable: {name: %s version: %d} exhausted max_num_retries: %d",
                    name,
                    version,
                    self._max_retries,
                )
            with self._lock:
                model.retries[version] = _Retry(path, failures, time.monotonic() + self._retry_interval, gave_up)
                model.states[version] = VersionState("END" if gave_up else "LOADING", code, str(exc))
            return
        with self._lock:
            model.retries.pop(version, None)
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
        """Shutdown: stop polling and retries, wait for the poll thread, then retire every loaded version (each
        closes its session once its last request is done). Nothing loads afterwards."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lifecycle:
            for name, model in list(self._models.items()):
                self._retire(name, sorted(model.loaded))

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
