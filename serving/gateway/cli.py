"""`textclf serve` (the gateway: gunicorn as in production, or Flask's dev server with --dev) and
`textclf predict` (offline batch prediction).

Thin: flags -> GatewayConfig / predict_file. Every GatewayConfig setting is a flag here and may also come
from its TEXTCLF_* env var (see config.py); the server's own flags read TEXTCLF_HOST, TEXTCLF_PORT,
TEXTCLF_WORKERS, TEXTCLF_THREADS and TEXTCLF_LOG_REQUESTS.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

_LIMITS = [
    click.option("--max-texts", type=int, default=None, help="Texts per request (default 256)."),
    click.option("--max-text-chars", type=int, default=None, help="Characters per text (default 10000)."),
    click.option("--max-body-bytes", type=int, default=None, help="Request body bytes (default 2 MiB)."),
    click.option(
        "--default-top-k", type=int, default=None, help="Labels per text when a request names none (default 1)."
    ),
    click.option("--max-top-k", type=int, default=None, help="Largest top_k a request may ask for (default 50)."),
    click.option(
        "--timeout", "upstream_timeout_s", type=float, default=None, help="Seconds per TF Serving call (default 5)."
    ),
    click.option("--retries", type=int, default=None, help="Retries on UNAVAILABLE (default 2)."),
    click.option(
        "--retry-backoff",
        "retry_backoff_s",
        type=float,
        default=None,
        help="Seconds before the first retry, doubling per retry (default 0.05).",
    ),
    click.option(
        "--breaker-failures", type=int, default=None, help="Consecutive outages that open the circuit (default 5)."
    ),
    click.option(
        "--breaker-reset", "breaker_reset_s", type=float, default=None, help="Seconds before a trial call (default 5)."
    ),
    click.option(
        "--metadata-ttl",
        "metadata_ttl_s",
        type=float,
        default=None,
        help="Seconds a model's signature and versions are cached (default 30).",
    ),
    click.option("--pool-size", type=int, default=None, help="REST keep-alive connections per worker (default 32)."),
    click.option(
        "--coalesce-max-texts",
        type=int,
        default=None,
        help="Texts one merged TF Serving call may carry (default 32; 0 = no coalescing).",
    ),
    click.option(
        "--coalesce-in-flight",
        type=int,
        default=None,
        help="TF Serving calls per model version a worker runs at once (default 2).",
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
@click.option("--host", default="127.0.0.1", show_default=True, envvar="TEXTCLF_HOST")
@click.option("--port", type=int, default=8080, show_default=True, envvar="TEXTCLF_PORT")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    envvar="TEXTCLF_WORKERS",
    help="gunicorn worker processes (default: gunicorn.conf.py's, 2).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    envvar="TEXTCLF_THREADS",
    help="Threads per worker, about one per concurrent client (default: gunicorn.conf.py's, 32).",
)
@click.option(
    "--log-requests", is_flag=True, envvar="TEXTCLF_LOG_REQUESTS", help="Log one line per request (off: it costs CPU)."
)
@click.option("--dev", is_flag=True, help="Flask's development server instead, for debugging (one process).")
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
def serve(
    host: str,
    port: int,
    workers: int | None,
    threads: int | None,
    log_requests: bool,
    dev: bool,
    models: tuple[str, ...],
    api_keys: tuple[str, ...],
    **options: Any,
) -> None:
    """Run the gateway: gunicorn with serving/gateway/gunicorn.conf.py, as the Docker image does.

    SIGTERM or Ctrl-C stops it (exit 0). --dev runs Flask's development server instead.
    """
    from serving.gateway import production_server

    # before the config (and prometheus_client with it) is imported: the workers' metrics go to files
    with contextlib.ExitStack() as stack:
        if not dev:
            stack.enter_context(production_server.multiprocess_metrics_dir())
        from serving.gateway.assembly import build_preprocessor
        from serving.gateway.config import GatewayConfig

        production_server.configure_logging(log_requests or dev)
        config = GatewayConfig.from_env(models=models or None, api_keys=api_keys or None, **options)
        upstream = config.tfserving_rest or config.tfserving_grpc
        if dev:
            from serving.gateway.app import create_app

            click.echo(f"gateway (Flask dev server) on http://{host}:{port} -> {upstream}", err=True)
            create_app(config).run(host=host, port=port, threaded=True)
            return
        # a bad preprocessing file or dictionary fails here in one line, not in every worker; jieba's
        # dictionary, loaded once here, is shared by the forked workers
        build_preprocessor(config)
        click.echo(f"gateway on http://{host}:{port} -> {upstream}", err=True)
        production_server.run(config, host=host, port=port, workers=workers, threads=threads)


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
