"""The one `textclf` command. Each package contributes subcommands, imported only when they run,
so `textclf serve` never pays for (or imports) TensorFlow."""

from __future__ import annotations

import atexit
import contextlib
import importlib.abc
import importlib.machinery
import itertools
import os
import pkgutil
import subprocess
import sys
import types
from collections.abc import Callable, Sequence

import click

from data_prep.errors import UserError

# subcommand -> "module:attribute" of a click command in the package that owns it
COMMANDS = {
    "prep": "data_prep.cli:prep",
    "model-server": "serving.model_server.cli:model_server",
    "serve": "serving.gateway.cli:serve",
    "predict": "serving.gateway.cli:predict",
    "drift": "serving.drift.cli:drift",
    "train": "tfmodels.cli:train",
    "evaluate": "tfmodels.cli:evaluate",
    "distill": "tfmodels.distill:distill",
    "export": "tfmodels.cli:export",
    "pipeline": "tfmodels.workflow:pipeline",
    "launch": "tfmodels.launch:launch",
    # top level, not under `train` (tfmodels.family.FAMILIES): it writes a preset for `train bert --preset`,
    # not a run folder that evaluate and export read
    "pretrain-mlm": "tfmodels.bert.cli:pretrain_mlm",
}


# TensorFlow's C++ chatter, written to fd 2 where TF_CPP_MIN_LOG_LEVEL cannot hide it (before TF's logging is set
# up, or at E level): absl's pre-init notice, INFO notes (oneDNN, CPU features, no CUDA driver), on a CPU-only
# machine "failed call to cuInit ... (303)", and at the first int64 op oneDNN's fallback notice. They read like
# failures; every other line (warnings, real errors, fatal messages) passes through at once.
TF_LOGS_ENV = "TEXTCLF_TF_LOGS"
_TF_CHATTER = (
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$"
    r"|I\d{4} [\d:.]+ +\d+ \S+:\d+\] "
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\.$"
    r"|E\d{4} [\d:.]+ +\d+ \S+:\d+\] failed call to cuInit: "
    r"|E\d{4} [\d:.]+ +\d+ \S+:\d+\] oneDNN supports DT_\w+ only on platforms with AVX-512\. "
    r"Falling back to the default Eigen-"
)
# The filter runs in its own process (argv[1] is _TF_CHATTER): it reads the pipe on its stdin and writes every
# other line to its stdout, the real stderr. A process of its own, not a thread, so that what the command wrote
# before an abort or a crash still gets out, and so that a child that inherited the pipe as its fd 2 and
# outlives the command can still write: the filter ends when the last writer has closed the pipe. It ignores
# Ctrl-C and SIGTERM/SIGHUP to the process group for the same reason. A partial line (a prompt, a progress bar's
# \r) is passed on as it comes: C++ log lines arrive whole, one write() each.
_FILTER_SOURCE = r"""
import os, re, signal, sys
for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(sig, signal.SIG_IGN)
chatter, out = re.compile(sys.argv[1].encode()), True
while chunk := os.read(0, 65536):
    kept = b"".join(line for line in chunk.splitlines(keepends=True) if not chatter.match(line))
    try:
        out and kept and os.write(1, kept)
    except OSError:  # the real stderr is gone (`| head` ended): drain, so writers do not get EPIPE either
        out = False
"""


# the running filter's undo, once fd 2 is filtered (at most one per process)
_UNFILTER: list[Callable[[], None]] = []


def _drain_filter() -> None:
    """fd 2 back to the real stderr and the filter drained, before a command's final error line: C++ lines reach
    stderr through the filter and Python's own lines directly, so without this a C++ line written just before
    the error (gRPC's "Failed to add port") could be shown after it."""
    for unfilter in _UNFILTER:
        unfilter()


def _filter_fd2() -> None:
    """Point fd 2 (C++ and child processes) at the chatter filter; sys.stderr keeps the real stderr, so
    Python's own output, progress bars and isatty() are unchanged. Undone at exit."""
    sys.stderr.flush()
    real = os.dup(2)
    read, write = os.pipe()
    filtering = subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", _FILTER_SOURCE, _TF_CHATTER], stdin=read, stdout=real, stderr=real
    )
    os.close(read)
    os.dup2(write, 2)
    os.close(write)
    sys.stderr = open(real, "w", buffering=1, encoding=sys.stderr.encoding, errors="backslashreplace")

    @atexit.register
    def unfilter() -> None:
        """Back to the real stderr, then let the filter pass on what is left, unless a child still holds the pipe."""
        os.dup2(real, 2)
        with contextlib.suppress(subprocess.TimeoutExpired):
            filtering.wait(timeout=2)

    _UNFILTER.append(unfilter)


class _FilteringLoader(importlib.abc.Loader):
    """TensorFlow's own loader, which starts the chatter filter first: only an import (exec_module) does, not a
    lookup such as the gateway's find_spec("tensorflow") for the protos' folder."""

    def __init__(self, finder: _QuietTensorFlowFinder, loader: importlib.abc.Loader) -> None:
        self.finder, self.loader = finder, loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        if self.finder in sys.meta_path:
            sys.meta_path.remove(self.finder)
            _filter_fd2()
        self.loader.exec_module(module)


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` on sys.path as usual, with a loader that starts the chatter filter when it is imported:
    a command that never imports TF pays nothing."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "tensorflow":
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _FilteringLoader(self, spec.loader)
        return spec


def quiet_tensorflow(args: Sequence[str]) -> None:
    """Silence TensorFlow's chatter in this process and in the subprocesses a command starts (they inherit the
    environment and fd 2), unless the group option --verbose is among ARGS or TEXTCLF_TF_LOGS=1. Run by main()
    only, once per process, before click dispatches: it changes the environment, fd 2 and sys.meta_path."""
    if "--verbose" in itertools.takewhile(lambda arg: arg.startswith("-"), args):
        os.environ[TF_LOGS_ENV] = "1"  # subprocesses (the model server a command starts) show everything too
    if os.environ.get(TF_LOGS_ENV, "") not in ("", "0"):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # TF's C++ INFO lines once its logging is up
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    if "tensorflow" not in sys.modules:
        sys.meta_path.insert(0, _QuietTensorFlowFinder())


class LazyGroup(click.Group):
    """Resolves subcommands on demand and turns known user errors into one line and exit code 1."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        return None if target is None else pkgutil.resolve_name(target)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except UserError as exc:
            _drain_filter()
            raise click.ClickException(str(exc)) from None
        except OSError as exc:  # missing files, permissions, full disk: the OS said it in one line
            _drain_filter()
            raise click.ClickException(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")) from None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="textclf")
@click.option(
    "--verbose", is_flag=True, help=f"Show TensorFlow's C++ log chatter (or {TF_LOGS_ENV}=1); hidden by default."
)
def cli(verbose: bool) -> None:
    """textclf: Chinese text classification from a folder of labelled text to a TF Serving service."""


def main() -> None:
    quiet_tensorflow(sys.argv[1:])  # before a subcommand's module can import TF
    cli()


if __name__ == "__main__":
    main()
