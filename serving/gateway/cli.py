"""`textclf serve` (the gateway: gunicorn as in production, or Flask's dev server with --dev) and
`textclf predict` (offline batch prediction).

Thin: flags -> GatewayConfig / predict_file. Every option of `serve` but --dev may also come from the variable
TEXTCLF_ + its name upper-cased, and --help says which: GatewayConfig.from_env reads the settings' variables
(commas for lists, its own one-line errors), click reads the server's own (TEXTCLF_HOST, TEXTCLF_PORT,
TEXTCLF_WORKERS, TEXTCLF_THREADS, TEXTCLF_LOG_REQUESTS).
"""

from __future__ import annotations

import contextlib
import functools
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

ENV_PREFIX = "TEXTCLF_"  # as serving/gateway/config.py's (not imported here: it pulls in prometheus_client)


class _SettingOption(click.Option):
    """A GatewayConfig setting: --help names its TEXTCLF_* variable, which GatewayConfig.from_env reads, not click
    (so a list is comma-separated and a bad value fails in GatewayConfig's one line, as in the Docker image)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **{**kwargs, "show_envvar": True})
        assert self.name is not None  # every option here has a name
        self.envvar = ENV_PREFIX + self.name.upper()

    def resolve_envvar_value(self, ctx: click.Context) -> str | None:
        return None


_setting = functools.partial(click.option, cls=_SettingOption)

_LIMITS = [
    _setting("--max-texts", type=int, default=None, help="Texts per request (default 256)."),
    _setting("--max-text-chars", type=int, default=None, help="Characters per text (default 10000)."),
    _setting("--max-body-bytes", type=int, default=None, help="Request body bytes (default 2 MiB)."),
    _setting("--default-top-k", type=int, default=None, help="Labels per text when a request names none (default 1)."),
    _setting("--max-top-k", type=int, default=None, help="Largest top_k a request may ask for (default 50)."),
    _setting(
        "--timeout", "upstream_timeout_s", type=float, default=None, help="Seconds per TF Serving call (default 5)."
    ),
    _setting("--retries", type=int, default=None, help="Retries on UNAVAILABLE (default 2)."),
    _setting(
        "--retry-backoff",
        "retry_backoff_s",
        type=float,
        default=None,
        help="Seconds before the first retry, doubling per retry (default 0.05).",
    ),
    _setting(
        "--breaker-failures", type=int, default=None, help="Consecutive outages that open the circuit (default 5)."
    ),
    _setting(
        "--breaker-reset", "breaker_reset_s", type=float, default=None, help="Seconds before a trial call (default 5)."
    ),
    _setting(
        "--metadata-ttl",
        "metadata_ttl_s",
        type=float,
        default=None,
        help="Seconds a model's signature and versions are cached (default 30).",
    ),
    _setting("--pool-size", type=int, default=None, help="REST keep-alive connections per worker (default 32)."),
    _setting(
        "--coalesce-max-texts",
        type=int,
        default=None,
        help="Texts one merged TF Serving call may carry (default 32; 0 = no coalescing).",
    ),
    _setting(
        "--coalesce-in-flight",
        type=int,
        default=None,
        help="TF Serving calls per model version a worker runs at once (default 2).",
    ),
    _setting(
        "--max-in-flight",
        type=int,
        default=None,
        help="Classify requests a worker works on at once; past it 503 overloaded (default 0 = no limit).",
    ),
    _setting("--cache-entries", type=int, default=None, help="Response cache entries per worker (default 0 = off)."),
    _setting("--cache-mb", type=float, default=None, help="Response cache MiB per worker (default 64)."),
]


def _limit_options(command: Callable[..., None]) -> Callable[..., None]:
    for option in reversed(_LIMITS):
        command = option(command)
    return command


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, envvar="TEXTCLF_HOST", show_envvar=True)
@click.option("--port", type=int, default=8080, show_default=True, envvar="TEXTCLF_PORT", show_envvar=True)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    envvar="TEXTCLF_WORKERS",
    show_envvar=True,
    help="gunicorn worker processes (default: gunicorn.conf.py's, 2).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    envvar="TEXTCLF_THREADS",
    show_envvar=True,
    help="Threads per worker, about one per concurrent client (default: gunicorn.conf.py's, 32).",
)
@click.option(
    "--log-requests",
    is_flag=True,
    envvar="TEXTCLF_LOG_REQUESTS",
    show_envvar=True,
    help="Log one line per request (off: it costs CPU; --dev always logs them).",
)
@click.option(
    "--dev",
    is_flag=True,
    help="Flask's development server instead, for debugging: one process, a thread per request, every request "
    "logged (so no --workers or --threads).",
)
@_setting("--tfserving-rest", default=None, metavar="URL", help="TF Serving REST, e.g. http://localhost:8501.")
@_setting("--tfserving-grpc", default=None, metavar="HOST:PORT", help="TF Serving gRPC, e.g. localhost:8500.")
@_setting(
    "--model",
    "models",
    multiple=True,
    help="A model this gateway fronts (repeat; comma-separated in the variable); default: any.",
)
@_setting(
    "--preprocessing",
    default=None,
    type=click.Path(dir_okay=False),
    help="meta.json / model_card.json whose recorded preprocessing to reproduce.",
)
@_setting("--user-dict", default=None, type=click.Path(dir_okay=False), help="jieba user dictionary.")
@_setting("--stopwords", default=None, type=click.Path(dir_okay=False), help="Stopwords file.")
@_setting(
    "--api-key",
    "api_keys",
    multiple=True,
    help="Require X-API-Key (repeat for several; comma-separated in the variable).",
)
@_setting(
    "--routes",
    default=None,
    metavar="JSON|FILE",
    help='Weighted canary per model, e.g. \'{"news": {"stable": 90, "canary": 10}}\' or a JSON file; '
    "sticky per X-Route-Key.",
)
@_setting(
    "--shadow",
    default=None,
    metavar="JSON|FILE",
    help='Shadow traffic per model, e.g. \'{"news": {"version_label": "canary", "sample": 0.2}}\' or a JSON file.',
)
@_setting(
    "--shadow-queue-size", type=int, default=None, help="Shadow copies queued per worker before dropping (default 64)."
)
@_setting(
    "--payload-log",
    default=None,
    metavar="DIR",
    help="Log sampled classified texts (cleaned, PII redacted) as JSONL here, a file per worker.",
)
@_setting("--payload-sample", type=float, default=None, help="Share of classify requests logged, 0-1 (default 1).")
@_setting(
    "--payload-max-bytes", type=int, default=None, help="Bytes per payload log file before it rotates (default 64 MiB)."
)
@_setting("--payload-backups", type=int, default=None, help="Rotated payload log files kept per worker (default 5).")
@_setting(
    "--payload-queue-size",
    type=int,
    default=None,
    help="Requests queued per worker for the payload log before dropping (default 1024).",
)
@_setting(
    "--payload-max-total-bytes",
    type=int,
    default=None,
    help="Bytes of this host's payload log files past which rotation deletes the oldest (default 1 GiB).",
)
@_setting(
    "--payload-redaction",
    default=None,
    metavar="off|FILE",
    help="PII redaction of logged texts: default built-in rules, 'off', or a JSON file of rules.",
)
@_setting(
    "--low-confidence",
    type=float,
    default=None,
    help="A top score below this counts in textclf_gateway_low_confidence_total (default 0.6).",
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
    if dev:
        _reject_with_dev(workers=workers, threads=threads)
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


def _reject_with_dev(**server_options: int | None) -> None:
    """--workers and --threads shape gunicorn; Flask's development server has neither, so saying one with --dev
    is a mistake to name, not a setting to drop silently."""
    context = click.get_current_context()
    for name, value in server_options.items():
        if value is not None:
            given = (
                f"{ENV_PREFIX}{name.upper()}"
                if context.get_parameter_source(name) == ParameterSource.ENVIRONMENT
                else f"--{name}"
            )
            raise click.UsageError(f"{given} does not apply with --dev (Flask's development server is one process)")


@click.command()
@click.option(
    "--input",
    "input_path",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="A TSV/CSV/JSONL file, or a payload log (TEXTCLF_PAYLOAD_LOG's folder or one payload-*.jsonl file).",
)
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
@click.option(
    "--logged-model",
    default=None,
    help="With a payload log as --input: re-score the texts logged for this model (default: --model's).",
)
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
    logged_model: str | None,
) -> None:
    """Classify every text of a TSV/CSV/JSONL file or a payload log, in batches, into an output file."""
    from data_prep.errors import UserError
    from serving.gateway.batch_predict import direct_classifier, gateway_classifier, predict_file
    from serving.gateway.payload_log import is_payload_log

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
    with contextlib.ExitStack() as stack:
        if is_payload_log(input_path):
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="textclf-payload-")))
            input_path, text_key = _logged_texts(input_path, logged_model or model, scratch), "text"
        elif logged_model:
            raise UserError("--logged-model applies only to a payload log as --input")
        counts = predict_file(
            input_path,
            output_path,
            classify,
            text_col=text_col,
            text_key=text_key,
            header=header,
            batch_size=batch_size,
        )
    click.echo(f"{counts['classified']} rows classified, {counts['errors']} unreadable -> {output_path}")


def _logged_texts(log: Path, model: str, folder: Path) -> Path:
    """The logged (cleaned, redacted) texts of `model`, oldest first, as a JSONL file predict_file reads."""
    from data_prep.errors import UserError
    from serving.gateway.payload_log import read_records

    path = folder / "texts.jsonl"
    count = 0
    with open(path, "w", encoding="utf-8") as f:
        for record in read_records(log, model=model):
            f.write(json.dumps({"text": record["text"]}, ensure_ascii=False) + "\n")
            count += 1
    if not count:
        raise UserError(f"the payload log {log} holds no texts of model {model!r} (see --logged-model)")
    return path
