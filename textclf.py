"""The one `textclf` command. Each package contributes subcommands, imported only when they run,
so `textclf serve` never pays for (or imports) TensorFlow."""

from __future__ import annotations

import pkgutil

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
    # top level, not under `train` (tfmodels.family.FAMILIES): it writes a preset for `train bert --preset`,
    # not a run folder that evaluate and export read
    "pretrain-mlm": "tfmodels.bert.cli:pretrain_mlm",
}


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
            raise click.ClickException(str(exc)) from None
        except OSError as exc:  # missing files, permissions, full disk: the OS said it in one line
            raise click.ClickException(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")) from None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="textclf")
def cli() -> None:
    """textclf: Chinese text classification from a folder of labelled text to a TF Serving service."""


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
