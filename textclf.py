"""The one `textclf` command. Each package contributes subcommands, imported only when they run,
so `textclf serve` never pays for (or imports) TensorFlow."""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import pkgutil
import re
import sys
import tempfile
import types
from collections.abc import Iterator, Sequence
from typing import Any

import click

from data_prep.errors import UserError

# subcommand -> "module:attribute" of a click command in the package that owns it
COMMANDS = {
    "prep": "data_prep.cli:prep",
    "model-server": "serving.model_server.cli:model_server",
    "serve": "serving.gateway.cli:serve",
    "predict": "serving.gateway.cli:predict",
    "train": "tfmodels.cli:train",
    "evaluate": "tfmodels.cli:evaluate",
    "export": "tfmodels.cli:export",
    "pipeline": "tfmodels.workflow:pipeline",
    "launch": "tfmodels.launch:launch",
    # top level, not under `train` (tfmodels.family.FAMILIES): it writes a preset for `train bert --preset`,
    # not a run folder that evaluate and export read
    "pretrain-mlm": "tfmodels.bert.cli:pretrain_mlm",
}


# TensorFlow's C++ start-up lines, written to fd 2 before its logging is set up (so TF_CPP_MIN_LOG_LEVEL cannot
# hide them): absl's pre-init notice, INFO notes (oneDNN, CPU features, no CUDA driver) and, on a CPU-only
# machine, "failed call to cuInit ... (303)". They read like failures; warnings and real errors are kept.
TF_LOGS_ENV = "TEXTCLF_TF_LOGS"
_TF_CHATTER = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$"
    r"|I\d{4} [\d:.]+ +\d+ \S+:\d+\] "
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\.$"
    r"|E\d{4} [\d:.]+ +\d+ \S+:\d+\] failed call to cuInit: "
)


@contextlib.contextmanager
def _tf_chatter_filtered() -> Iterator[None]:
    """Everything written to fd 2 meanwhile (by C++ or Python) is held, then written again minus the chatter."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            lines = held.read().decode("utf-8", "replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not _TF_CHATTER.match(line)))
            sys.stderr.flush()


class _QuietTensorFlowLoader(importlib.abc.Loader):
    """Imports tensorflow, and starts its device platforms, with the start-up chatter filtered out."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        with _tf_chatter_filtered():
            self.loader.exec_module(module)
            module.config.list_physical_devices()  # the CUDA probe logs here, not at the first op

    def __getattr__(self, name: str) -> Any:  # resource readers and the like: the real loader's
        return getattr(self.loader, name)


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Wraps the loader of `tensorflow` in _QuietTensorFlowLoader, once; costs nothing if TF is never imported."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietTensorFlowLoader(spec.loader)
        return spec


def quiet_tensorflow(verbose: bool) -> None:
    """Silence TensorFlow's start-up chatter in this process, before TF is imported, and in the subprocesses
    a command starts (through the environment); --verbose or TEXTCLF_TF_LOGS=1 keeps everything."""
    if verbose:
        os.environ[TF_LOGS_ENV] = "1"  # subprocesses (the model server a command starts) show everything too
    if os.environ.get(TF_LOGS_ENV, "") not in ("", "0"):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # TF's C++ INFO lines once its logging is up
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietTensorFlowFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowFinder())


class LazyGroup(click.Group):
    """Resolves subcommands on demand and turns known user errors into one line and exit code 1."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        return None if target is None else pkgutil.resolve_name(target)

    def invoke(self, ctx: click.Context):
        quiet_tensorflow(ctx.params.get("verbose", False))  # before a subcommand's module can import TF
        try:
            return super().invoke(ctx)
        except UserError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:  # missing files, permissions, full disk: the OS said it in one line
            raise click.ClickException(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")) from None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="textclf")
@click.option(
    "--verbose", is_flag=True, help=f"Show TensorFlow's C++ start-up log lines (or {TF_LOGS_ENV}=1); hidden by default."
)
def cli(verbose: bool) -> None:
    """textclf: Chinese text classification from a folder of labelled text to a TF Serving service."""


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
