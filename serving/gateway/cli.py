"""`textclf serve` (the gateway on Flask's dev server) and `textclf predict` (offline batch prediction).

Thin: flags -> GatewayConfig / predict_file. Every flag may also come from its TEXTCLF_* env var
(see config.py); production runs the same app under gunicorn (wsgi.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

_LIMITS = [
    click.option("--max-texts", type=int, default=None, help="Texts per request (default 256)."),
    click.option("--max-text-chars", type=int, default=None, help="Characters per text (default 10000)."),
    click.option("--max-body-bytes", type=int, default=None, help="Request body bytes (default 2 MiB)."),
    click.option(
        "--timeout", "upstream_timeout_s", type=float, default=None, help="Seconds per TF Serving call (default 5)."
    ),
    click.option("--retries", type=int, default=None, help="Retries on UNAVAILABLE (default 2)."),
    click.option(
        "--breaker-failures", type=int, default=None, help="Consecutive outages that open the circuit (default 5)."
    ),
    click.option(
        "--breaker-reset", "breaker_reset_s", type=float, default=None, help="Seconds before a trial call (default 5)."
    ),
    click.option(
        "--max-in-flight",
        type=int,
        default=None,
        help="Classify requests a worker works on at once; past it 503 overloaded (default 0 = no limit).",
    ),
    click.option(
        "--cache-entries", type=int, default=None, help="Response cache entries per worker (default 0 = off)."
    ),
    click.option("--cache-mb", type=float, default=None, help="Response cache MiB per worker (default 64)."),
]


def _limit_options(command: Callable[..., None]) -> Callable[..., None]:
    for option in reversed(_LIMITS):
        command = option(command)
    return command


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8080, show_default=True)
@click.option("--tfserving-rest", default=None, metavar="URL", help="TF Serving REST, e.g. http://localhost:8501.")
@click.option("--tfserving-grpc", default=None, metavar="HOST:PORT", help="TF Serving gRPC, e.g. localhost:8500.")
@click.option("--model", "models", multiple=True, help="A model this gateway fronts (repeat); default: any.")
@click.option(
    "--preprocessing",
    default=None,
    type=click.Path(dir_okay=False),
    help="meta.json / model_card.json whose recorded preprocessing to reproduce.",
)
@click.option("--user-dict", default=None, type=click.Path(dir_okay=False), help="jieba user dictionary.")
@click.option("--stopwords", default=None, type=click.Path(dir_okay=False), help="Stopwords file.")
@click.option(
    "--api-key", "api_keys", multiple=True, help="Require X-API-Key (repeat for several; or TEXTCLF_API_KEYS)."
)
@click.option(
    "--routes",
    default=None,
    metavar="JSON|FILE",
    help='Weighted canary per model, e.g. \'{"news": {"stable": 90, "canary": 10}}\' or a JSON file; '
    "sticky per X-Route-Key (or TEXTCLF_ROUTES).",
)
@click.option(
    "--shadow",
    default=None,
    metavar="JSON|FILE",
    help='Shadow traffic per model, e.g. \'{"news": {"version_label": "canary", "sample": 0.2}}\' or a JSON file '
    "(or TEXTCLF_SHADOW).",
)
@click.option(
    "--shadow-queue-size", type=int, default=None, help="Shadow copies queued per worker before dropping (default 64)."
)
@_limit_options
def serve(host: str, port: int, models: tuple[str, ...], api_keys: tuple[str, ...], **options: Any) -> None:
    """Run the gateway on Flask's development server (production: gunicorn, see serving/Dockerfile)."""
    from serving.gateway.app import create_app
    from serving.gateway.config import GatewayConfig

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    config = GatewayConfig.from_env(models=models or None, api_keys=api_keys or None, **options)
    app = create_app(config)
    click.echo(f"gateway on http://{host}:{port} -> {config.tfserving_rest or config.tfserving_grpc}", err=True)
    app.run(host=host, port=port, threaded=True)


@click.command()
@click.option("--input", "input_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--output",
    "output_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the answers: .jsonl, .tsv or .csv (written atomically).",
)
@click.option("--model", required=True, help="Model name.")
@click.option("--gateway", default=None, metavar="URL", help="A running gateway, e.g. http://localhost:8080.")
@click.option("--tfserving-rest", default=None, metavar="URL", help="Or TF Serving's REST API directly.")
@click.option("--text-col", default="text", show_default=True, help="TSV/CSV text column (name or 0-based index).")
@click.option("--text-key", default="text", show_default=True, help="JSONL key of the text.")
@click.option("--header/--no-header", default=None, help="TSV/CSV has a header row (default: if --text-col is a name).")
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--top-k", type=int, default=None, help="Best labels per text in the answer.")
@click.option("--version", type=int, default=None, help="Model version (default: latest).")
@click.option("--version-label", default=None, help="Model version label, e.g. stable or canary.")
@click.option("--api-key", default=None, envvar="TEXTCLF_API_KEY", help="X-API-Key for --gateway.")
@click.option(
    "--preprocessing",
    default="",
    type=click.Path(dir_okay=False),
    help="With --tfserving-rest: recorded preprocessing.",
)
@click.option(
    "--user-dict", default="", type=click.Path(dir_okay=False), help="With --tfserving-rest: jieba user dictionary."
)
@click.option("--stopwords", default="", type=click.Path(dir_okay=False), help="With --tfserving-rest: stopwords file.")
def predict(
    input_path: Path,
    output_path: Path,
    model: str,
    gateway: str | None,
    tfserving_rest: str | None,
    text_col: str,
    text_key: str,
    header: bool | None,
    batch_size: int,
    top_k: int | None,
    version: int | None,
    version_label: str | None,
    api_key: str | None,
    preprocessing: str,
    user_dict: str,
    stopwords: str,
) -> None:
    """Classify every text of a TSV/CSV/JSONL file, in batches, into an output file."""
    from data_prep.errors import UserError
    from serving.gateway.batch_predict import direct_classifier, gateway_classifier, predict_file

    if bool(gateway) == bool(tfserving_rest):
        raise UserError("give exactly one of --gateway URL or --tfserving-rest URL")
    if gateway:
        classify = gateway_classifier(
            gateway, model, api_key=api_key, version=version, version_label=version_label, top_k=top_k
        )
    elif tfserving_rest:  # always, past the guard; says so to the type checker
        classify = direct_classifier(
            tfserving_rest,
            model,
            preprocessing=preprocessing,
            user_dict=user_dict,
            stopwords=stopwords,
            version=version,
            version_label=version_label,
            top_k=top_k,
        )
    counts = predict_file(
        input_path, output_path, classify, text_col=text_col, text_key=text_key, header=header, batch_size=batch_size
    )
    click.echo(f"{counts['classified']} rows classified, {counts['errors']} unreadable -> {output_path}")
