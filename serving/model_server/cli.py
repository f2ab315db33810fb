"""`textclf model-server`: a local stand-in for tensorflow_model_server with the same flags."""

from __future__ import annotations

import click

from serving.model_server.flags import IGNORED_FLAGS, IMPLEMENTED_FLAGS


@click.command(
    "model-server",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": ["-h", "--help"]},
    epilog="Implemented: "
    + " ".join(f"--{n}" for n in IMPLEMENTED_FLAGS)
    + ". Accepted and ignored: "
    + " ".join(f"--{n}" for n in IGNORED_FLAGS)
    + ".",
)
@click.argument("flags", nargs=-1, type=click.UNPROCESSED)
def model_server(flags: tuple[str, ...]) -> None:
    """Serve SavedModels over TF Serving's REST and gRPC APIs, e.g.

    textclf model-server --port=8500 --rest_api_port=8501 --model_name=news --model_base_path=/models/news
    """
    from serving.model_server.flags import parse_flags
    from serving.model_server.server import serve

    serve(*parse_flags(flags))
