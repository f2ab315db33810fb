"""The repository's version lifecycle and the dataplane's handle resolution, in process.

The loader is a fake: loading a real SavedModel takes TensorFlow seconds per version, and what is under
test here is which versions get loaded, kept, unloaded and handed out, not TensorFlow. The subprocess
tests (test_model_server.py) and the drills cover real loads.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc
import pytest
from google.protobuf import text_format
from tensorflow_serving.apis import model_pb2
from tensorflow_serving.config import model_server_config_pb2

from serving.model_server.admin import ConfigReloader
from serving.model_server.dataplane import DataPlane
from serving.model_server.errors import ServingError, not_found
from serving.model_server.inference import Inference
from serving.model_server.monitoring import Metrics
from serving.model_server.repository import ModelRepository, unload_order
from serving.model_server.servable import Servable

MODEL = "m"


class FakeLoader:
    """Records each load (with the states the repository showed while it ran) and fails where told."""

    def __init__(self) -> None:
        self.loads: list[tuple[int, Path]] = []
        self.states_during: dict[int, dict[int, str]] = {}
        self.failures: dict[int, Exception] = {}
        self.repository: ModelRepository | None = None

    def __call__(self, name: str, version: int, path: Path) -> Servable:
        self.loads.append((version, path))
        if self.repository is not None:
            self.states_during[version] = states(self.repository)
        if version in self.failures:
            raise self.failures[version]
        return Servable(name, version, {}, {})


def states(repository: ModelRepository, name: str = MODEL) -> dict[int, str]:
    return {version: state.state for version, state in repository.version_states(name)}


def config(
    base: Path, *, policy: str = "", labels: dict[str, int] | None = None
) -> model_server_config_pb2.ModelServerConfig:
    text = f'model_config_list {{ config {{ name: "{MODEL}" base_path: "{base}" {policy} }} }}'
    parsed = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    for label, version in (labels or {}).items():
        parsed.model_config_list.config[0].version_labels[label] = version
    return parsed


def versions(base: Path, *names: str) -> Path:
    for name in names:
        (base / name).mkdir(parents=True)
    return base


@pytest.fixture
def loader() -> FakeLoader:
    return FakeLoader()


def serve(
    loader: FakeLoader, cfg: model_server_config_pb2.ModelServerConfig, **kwargs: bool | int
) -> tuple[ModelRepository, DataPlane]:
    """A repository that polls only when the test says so; a failed load is final unless the test asks for
    retries (max_num_load_retries, load_retry_interval_micros)."""
    kwargs.setdefault("max_num_load_retries", 0)
    repository = ModelRepository(loader, poll_wait_seconds=0, **kwargs)  # type: ignore[arg-type]
    loader.repository = repository
    repository.apply_config(cfg)
    return repository, DataPlane(repository, Inference(Metrics()))


def spec(**fields: object) -> model_pb2.ModelSpec:
    return model_pb2.ModelSpec(name=MODEL, **fields)


@pytest.mark.parametrize(
    "policy, loaded",
    [
        ("", [3]),
        ("model_version_policy { latest { num_versions: 2 } }", [2, 3]),
        ("model_version_policy { all {} }", [1, 2, 3]),
        ("model_version_policy { specific { versions: 1 versions: 3 } }", [1, 3]),
    ],
)
def test_version_policy_picks_the_aspired_versions(tmp_path, loader, policy, loaded):
    repository, _ = serve(loader, config(versions(tmp_path, "1", "2", "3"), policy=policy))
    assert sorted(v for v, _ in loader.loads) == loaded
    assert states(repository) == dict.fromkeys(loaded, "AVAILABLE")


def test_leading_zeros_count_and_temp_or_other_names_are_not_versions(tmp_path, loader):
    base = versions(tmp_path, "007", ".8.tmp", "notes")
    (base / "9").write_text("a file, not a version folder")
    serve(loader, config(base))
    assert loader.loads == [(7, base / "007")]


def test_new_version_loads_before_the_old_one_unloads(tmp_path, loader):
    repository, plane = serve(loader, config(versions(tmp_path, "1")))
    versions(tmp_path, "2")
    repository.poll_once()
    assert loader.states_during[2] == {1: "AVAILABLE", 2: "LOADING"}  # v1 kept serving while v2 loaded
    assert states(repository) == {2: "AVAILABLE", 1: "END"}
    with plane.handle(spec()) as servable:
        assert servable.version == 2


def test_a_held_version_is_freed_only_after_its_last_request(tmp_path, loader):
    repository, plane = serve(loader, config(versions(tmp_path, "1")))
    versions(tmp_path, "2")
    with plane.handle(spec()) as held:
        poll = threading.Thread(target=repository.poll_once)
        poll.start()
        deadline = time.monotonic() + 5
        while states(repository).get(1) != "UNLOADING" and time.monotonic() < deadline:
            time.sleep(0.001)
        assert states(repository) == {2: "AVAILABLE", 1: "UNLOADING"}
        with plane.handle(spec()) as fresh:
            assert (held.version, fresh.version) == (1, 2)  # new requests already go to v2
        assert poll.is_alive()
    poll.join(5)
    assert states(repository) == {2: "AVAILABLE", 1: "END"}


def test_a_failed_load_ends_that_version_with_its_error_and_keeps_the_others(tmp_path, loader):
    repository, plane = serve(loader, config(versions(tmp_path, "1")))
    loader.failures[2] = not_found("missing variables")
    loader.failures[3] = RuntimeError("corrupt graph")
    versions(tmp_path, "2")
    repository.poll_once()
    assert [(v, s.state, s.error_code, s.error_message) for v, s in repository.version_states(MODEL)] == [
        (2, "END", "NOT_FOUND", "missing variables"),
        (1, "AVAILABLE", "OK", ""),
    ]
    repository.poll_once()
    assert [v for v, _ in loader.loads] == [1, 2]  # a failed version is not retried on every poll
    versions(tmp_path, "3")
    repository.poll_once()
    assert repository.version_states(MODEL)[0][1].error_code == "UNKNOWN"
    with plane.handle(spec()) as servable:
        assert servable.version == 1  # failed newer versions do not take the model down
    versions(tmp_path, "4")
    repository.poll_once()
    assert states(repository) == {4: "AVAILABLE", 3: "END", 2: "END", 1: "END"}


def test_a_model_that_cannot_load_raises_a_serving_error(tmp_path, loader):
    loader.failures[1] = RuntimeError("corrupt graph")
    with pytest.raises(ServingError) as failed:
        serve(loader, config(versions(tmp_path, "1")))
    assert (failed.value.code_name, failed.value.message) == ("UNKNOWN", "corrupt graph")


def test_only_model_config_list_is_supported(loader):
    with pytest.raises(ServingError, match="does not yet support custom model config"):
        ModelRepository(loader).apply_config(
            model_server_config_pb2.ModelServerConfig(custom_model_config={"type_url": "x"})
        )


def test_a_model_dropped_from_the_config_unloads(tmp_path, loader):
    repository, _ = serve(loader, config(versions(tmp_path, "1")))
    repository.apply_config(model_server_config_pb2.ModelServerConfig(model_config_list={}))
    assert states(repository) == {1: "END"}


def test_handles_resolve_latest_specific_and_labels(tmp_path, loader):
    cfg = config(
        versions(tmp_path, "1", "2"), policy="model_version_policy { all {} }", labels={"stable": 1, "canary": 2}
    )
    _, plane = serve(loader, cfg)
    for request, version in [
        (spec(), 2),
        (spec(version={"value": 1}), 1),
        (spec(version_label="stable"), 1),
        (spec(version_label="canary"), 2),
    ]:
        with plane.handle(request) as servable:
            assert servable.version == version


@pytest.mark.parametrize(
    "request_spec, code, message",
    [
        (model_pb2.ModelSpec(), grpc.StatusCode.INVALID_ARGUMENT, "ModelSpec has no name specified."),
        (model_pb2.ModelSpec(name="nope"), grpc.StatusCode.NOT_FOUND, "Servable not found for request: Latest(nope)"),
        (
            spec(version={"value": 7}),
            grpc.StatusCode.NOT_FOUND,
            "Servable not found for request: Specific(m, 7)",
        ),
        (spec(version_label="beta"), grpc.StatusCode.INVALID_ARGUMENT, "Unrecognized servable version label: beta"),
    ],
)
def test_handle_errors(tmp_path, loader, request_spec, code, message):
    _, plane = serve(loader, config(versions(tmp_path, "1")))
    with pytest.raises(ServingError) as failed, plane.handle(request_spec):
        pass
    assert (failed.value.code, failed.value.message) == (code, message)


def test_a_label_may_not_name_an_unavailable_version(tmp_path, loader):
    with pytest.raises(ServingError) as failed:
        serve(loader, config(versions(tmp_path, "1"), labels={"beta": 5}))
    assert failed.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "assign label to version 5 of model m, which is not currently available" in failed.value.message


def test_allowed_dangling_label_resolves_but_finds_no_servable(tmp_path, loader):
    _, plane = serve(loader, config(versions(tmp_path, "1"), labels={"beta": 5}), allow_labels_for_unavailable=True)
    with pytest.raises(ServingError, match=r"Servable not found for request: Specific\(m, 5\)"):
        with plane.handle(spec(version_label="beta")):
            pass


@pytest.mark.parametrize(
    "loaded, aspired, pinned, unload",
    [
        ([1], [], (), [1]),  # every folder deleted: nothing is aspired, so nothing is kept
        ([1, 2], [], (), [1, 2]),
        ([1, 2], [3], (), [1]),  # v3 has not loaded (or failed): the newest old one keeps serving
        ([2], [3], (), []),
        ([1, 2], [2], (), [1]),  # an aspired version serves: every unaspired one goes
        ([1, 2, 3], [3], (), [1, 2]),
        ([1], [1], (), []),
        ([1, 2], [], (1,), []),  # a config-pinned specific version stays, and the policy stops there
        ([1, 2], [], (2,), [1]),
    ],
)
def test_unload_order_follows_the_availability_preserving_policy(loaded, aspired, pinned, unload):
    assert unload_order(loaded, aspired, pinned) == unload


def test_deleting_every_version_folder_unloads_the_model(tmp_path, loader):
    repository, plane = serve(loader, config(versions(tmp_path, "1")))
    (tmp_path / "1").rmdir()
    repository.poll_once()
    assert states(repository) == {1: "END"}
    with pytest.raises(ServingError, match=r"Servable not found for request: Latest\(m\)"), plane.handle(spec()):
        pass


def test_a_deleted_specific_version_keeps_serving(tmp_path, loader):
    repository, _ = serve(
        loader,
        config(versions(tmp_path, "1", "2"), policy="model_version_policy { specific { versions: 1 versions: 2 } }"),
    )
    (tmp_path / "1").rmdir()
    repository.poll_once()
    assert states(repository) == {1: "AVAILABLE", 2: "AVAILABLE"}


def _retire_after_first_lookup(repository: ModelRepository, monkeypatch: pytest.MonkeyPatch) -> list[set[int]]:
    """The first lookup answers with the map as it was, then a poll retires that version before the handle can
    pin it: the race the handle's retry exists for. Returns the versions each lookup saw."""
    lookup = repository.serving_map
    seen: list[set[int]] = []

    def racing(name: str):
        found = lookup(name)
        if not seen:
            repository.poll_once()  # loads v2, retires v1
        seen.append(set(found.versions) if found else set())
        return found

    monkeypatch.setattr(repository, "serving_map", racing)
    return seen


def test_a_handle_whose_version_retired_under_it_resolves_the_next_version(tmp_path, loader, monkeypatch):
    repository, plane = serve(loader, config(versions(tmp_path, "1")))
    versions(tmp_path, "2")
    seen = _retire_after_first_lookup(repository, monkeypatch)
    with plane.handle(spec()) as servable:
        assert servable.version == 2
    assert seen == [{1}, {2}]


def test_a_handle_on_a_specific_version_that_retired_under_it_is_not_found(tmp_path, loader, monkeypatch):
    repository, plane = serve(loader, config(versions(tmp_path, "1")))
    versions(tmp_path, "2")
    seen = _retire_after_first_lookup(repository, monkeypatch)
    with pytest.raises(ServingError) as failed, plane.handle(spec(version={"value": 1})):
        pass
    assert (failed.value.code, failed.value.message) == (
        grpc.StatusCode.NOT_FOUND,
        "Servable not found for request: Specific(m, 1)",
    )
    assert seen == [{1}, {2}]


def test_a_failed_load_is_retried_and_a_folder_repaired_in_place_recovers(tmp_path, loader):
    """LoaderHarness retries: LOADING with the last error meanwhile, the old version serving throughout."""
    repository, plane = serve(
        loader, config(versions(tmp_path, "1")), max_num_load_retries=3, load_retry_interval_micros=-1
    )
    loader.failures[2] = not_found("Could not find SavedModel .pb or .pbtxt")
    versions(tmp_path, "2")
    repository.poll_once()
    assert [(v, s.state, s.error_code) for v, s in repository.version_states(MODEL)] == [
        (2, "LOADING", "NOT_FOUND"),
        (1, "AVAILABLE", "OK"),
    ]
    with plane.handle(spec()) as servable:
        assert servable.version == 1
    repository.poll_once(retries_only=True)  # retry 1 of 3 fails too
    del loader.failures[2]  # the folder is repaired in place
    repository.poll_once(retries_only=True)
    assert [v for v, _ in loader.loads] == [1, 2, 2, 2]
    assert states(repository) == {2: "AVAILABLE", 1: "END"}


def test_a_load_that_exhausts_its_retries_ends_and_stays_failed_until_its_folder_comes_back(tmp_path, loader):
    repository, plane = serve(
        loader, config(versions(tmp_path, "1")), max_num_load_retries=1, load_retry_interval_micros=-1
    )
    loader.failures[2] = RuntimeError("truncated saved_model.pb")
    versions(tmp_path, "2")
    repository.poll_once()
    repository.poll_once()  # the one retry
    assert [(v, s.state, s.error_message) for v, s in repository.version_states(MODEL)] == [
        (2, "END", "truncated saved_model.pb"),
        (1, "AVAILABLE", ""),
    ]
    del loader.failures[2]
    repository.poll_once()
    assert [v for v, _ in loader.loads] == [1, 2, 2]  # as TF Serving: an errored aspired version is not reloaded
    (tmp_path / "2").rename(tmp_path / ".2.moved")  # no longer aspired: the failure is forgotten
    repository.poll_once()
    (tmp_path / ".2.moved").rename(tmp_path / "2")
    repository.poll_once()
    assert states(repository) == {2: "AVAILABLE", 1: "END"}
    with plane.handle(spec()) as servable:
        assert servable.version == 2


def test_odd_folder_names_and_a_broken_model_do_not_stop_the_other_models(tmp_path, loader, monkeypatch):
    """versions_on_disk is made to fail for one model: as root, no folder here can be made unreadable."""
    text = f"""model_config_list {{
      config {{ name: "bad" base_path: "{tmp_path / "bad"}" }}
      config {{ name: "{MODEL}" base_path: "{tmp_path / MODEL}" }}
    }}"""
    versions(tmp_path / "bad", "1", "²", "٦")
    versions(tmp_path / MODEL, "1", "²", "٦", "1²")
    repository, _ = serve(loader, text_format.Parse(text, model_server_config_pb2.ModelServerConfig()))
    assert sorted(loader.loads) == [(1, tmp_path / "bad" / "1"), (1, tmp_path / MODEL / "1")]
    from serving.model_server import repository as repository_module

    listing = repository_module.versions_on_disk

    def broken_for_bad(base: Path) -> dict[int, Path]:
        if base.name == "bad":
            raise OSError("Input/output error")
        return listing(base)

    monkeypatch.setattr(repository_module, "versions_on_disk", broken_for_bad)
    versions(tmp_path / MODEL, "2")
    repository.poll_once()
    assert states(repository) == {2: "AVAILABLE", 1: "END"}
    assert states(repository, "bad") == {1: "AVAILABLE"}


def test_a_reload_naming_an_empty_base_path_ends_in_time_and_loads_once_a_version_appears(tmp_path, loader):
    repository, plane = serve(loader, config(versions(tmp_path / "a", "1")))
    both = config(tmp_path / "a")
    both.model_config_list.config.add(name="late", base_path=str(tmp_path / "late"))
    with pytest.raises(ServingError) as failed:
        repository.apply_config(both, timeout_s=0.05)
    assert failed.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    with plane.handle(spec()) as servable:
        assert servable.version == 1
    versions(tmp_path / "late", "3")
    repository.poll_once()
    assert states(repository, "late") == {3: "AVAILABLE"}


class GatedLoader(FakeLoader):
    """Holds every load of model "slow" until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.entered = threading.Event()

    def __call__(self, name: str, version: int, path: Path) -> Servable:
        if name == "slow":
            self.entered.set()
            self.gate.wait(30)
        return super().__call__(name, version, path)


def test_reloads_are_refused_over_grpc_unless_allowed_and_one_at_a_time(tmp_path):
    loader = GatedLoader()
    repository, _ = serve(loader, config(versions(tmp_path / "a", "1")))
    stop = threading.Event()
    cfg = config(tmp_path / "a")
    cfg.model_config_list.config.add(name="slow", base_path=str(versions(tmp_path / "slow", "1")))
    with pytest.raises(ServingError) as refused:
        ConfigReloader(repository, stop, allow_grpc=False, timeout_s=5).reload_from_grpc(cfg, None)
    assert refused.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert "--allow_reload_config" in refused.value.message
    assert repository.serving_map("slow") is None  # nothing was applied

    reloader = ConfigReloader(repository, stop, allow_grpc=True, timeout_s=5)
    first = threading.Thread(target=lambda: reloader.reload_from_grpc(cfg, None))
    first.start()
    assert loader.entered.wait(10)
    with pytest.raises(ServingError) as busy:
        reloader.reload_from_grpc(cfg, None)
    assert busy.value.code == grpc.StatusCode.ABORTED
    loader.gate.set()
    first.join(10)
    assert states(repository, "slow") == {1: "AVAILABLE"}
    reloader.reload_from_grpc(cfg, None)  # the first one finished: the next is accepted


def test_a_waiting_reload_returns_at_its_deadline_and_at_shutdown(tmp_path, loader):
    repository, _ = serve(loader, config(versions(tmp_path / "a", "1")))
    stop = threading.Event()
    cfg = config(tmp_path / "a")
    cfg.model_config_list.config.add(name="empty", base_path=str(tmp_path / "empty"))
    reloader = ConfigReloader(repository, stop, allow_grpc=True, timeout_s=60)
    with pytest.raises(ServingError) as late:
        reloader.reload_from_grpc(cfg, 0.05)  # the caller's gRPC deadline is sooner than the server's bound
    assert late.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    stop.set()
    repository.close()
    cfg.model_config_list.config.add(name="empty2", base_path=str(tmp_path / "empty2"))
    with pytest.raises(ServingError) as stopping:
        ConfigReloader(repository, stop, allow_grpc=True, timeout_s=60).reload_from_grpc(cfg, None)
    assert stopping.value.code == grpc.StatusCode.UNAVAILABLE


def test_a_version_folder_above_int64_is_ignored_and_version_1_serves(tmp_path, loader):
    repository, plane = serve(loader, config(versions(tmp_path, "1", "99999999999999999999")))
    assert loader.loads == [(1, tmp_path / "1")]
    assert states(repository) == {1: "AVAILABLE"}
    with plane.handle(spec()) as servable:
        assert servable.version == 1


class RecordingStop(threading.Event):
    """The repository's stop event, recording how long the poll thread sleeps between passes."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []
        self.waited = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        if threading.current_thread().name == "fs-poll":
            self.waits.append(timeout if timeout is not None else float("inf"))
            self.waited.set()
        return super().wait(timeout)


def test_removing_a_model_whose_load_waits_for_a_retry_cancels_it_and_the_poll_thread_sleeps(tmp_path, loader):
    """CancelLoadServableRetry on removal: the retry table empties, the version ends with its error, and nothing
    is left for the poll thread to wake for (it once woke with wait(0) in a loop)."""
    repository, _ = serve(
        loader, config(versions(tmp_path / "a", "1")), max_num_load_retries=100, load_retry_interval_micros=200_000
    )
    both = config(tmp_path / "a")
    both.model_config_list.config.add(name="b", base_path=str(versions(tmp_path / "b", "2")))
    loader.failures[2] = RuntimeError("b is broken")
    with pytest.raises(ServingError):
        repository.apply_config(both, timeout_s=0.05)
    assert states(repository, "b") == {2: "LOADING"}  # a retry is pending
    repository.apply_config(config(tmp_path / "a"))
    assert [(v, s.state, s.error_message) for v, s in repository.version_states("b")] == [(2, "END", "b is broken")]
    stop = RecordingStop()
    repository._stop = stop  # the seam that shows how long the poll thread sleeps
    repository.start_polling()
    assert stop.waited.wait(10)
    repository.close()
    assert stop.waits[0] == 1.0  # no retry to wake for: it sleeps its full second (it was < 0.2 s, then 0)


def test_close_stops_the_poll_thread_and_retires_every_version(tmp_path, loader):
    repository, plane = serve(loader, config(versions(tmp_path, "1", "2"), policy="model_version_policy { all {} }"))
    repository.start_polling()
    with plane.handle(spec()) as held:
        closing = threading.Thread(target=repository.close)
        closing.start()
        deadline = time.monotonic() + 5
        while states(repository).get(2) != "UNLOADING" and time.monotonic() < deadline:
            time.sleep(0.001)
        assert states(repository) == {2: "UNLOADING", 1: "END"}  # the held version waits for its request
        assert not held.try_acquire()
    closing.join(10)
    assert states(repository) == {2: "END", 1: "END"}
    assert "fs-poll" not in [thread.name for thread in threading.enumerate()]
    with pytest.raises(ServingError) as stopped:
        repository.apply_config(config(tmp_path))
    assert stopped.value.code == grpc.StatusCode.UNAVAILABLE
    versions(tmp_path, "3")
    repository.poll_once()
    assert sorted(v for v, _ in loader.loads) == [1, 2]  # nothing loads after close


def test_a_reload_over_grpc_must_carry_a_model_config_list(tmp_path, loader):
    repository, _ = serve(loader, config(versions(tmp_path, "1")))
    reloader = ConfigReloader(repository, threading.Event(), allow_grpc=True, timeout_s=5)
    for custom in (
        model_server_config_pb2.ModelServerConfig(custom_model_config={"type_url": "x"}),
        model_server_config_pb2.ModelServerConfig(),
    ):
        with pytest.raises(ServingError) as refused:
            reloader.reload_from_grpc(custom, None)
        assert (refused.value.code, refused.value.message) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "ServerModelConfig type not supported by HandleReloadConfigRequest. "
            "Only ModelConfigList is currently supported",
        )
    assert states(repository) == {1: "AVAILABLE"}
