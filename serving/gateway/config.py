"""The gateway's settings as one object (no globals): from TEXTCLF_* env vars, CLI flags on top.

Every field can be set by the environment variable `TEXTCLF_` + its upper-cased name (tuples are
comma-separated); `from_env` is what the gunicorn entry point uses.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from data_prep.errors import UserError
from serving.gateway.payload_log import DEFAULT_LOW_CONFIDENCE, DEFAULT_MAX_TOTAL_BYTES
from serving.gateway.redaction import Redactor, load_redactor
from serving.gateway.routing import Route, load_routes
from serving.gateway.shadow import ShadowTarget, parse_shadow

ENV_PREFIX = "TEXTCLF_"


@dataclasses.dataclass(frozen=True)
class GatewayConfig:
    # where TF Serving is: exactly one of the two
    tfserving_rest: str = ""  # e.g. http://tfserving:8501
    tfserving_grpc: str = ""  # e.g. tfserving:8500
    # models this gateway fronts: listed by /v1/models, required AVAILABLE by /readyz; empty = any name
    models: tuple[str, ...] = ()
    # preprocessing: a JSON file holding the recorded config (meta.json, model_card.json or the bare
    # "preprocessing" dict); without it the default cleaning + jieba is used
    preprocessing: str = ""
    user_dict: str = ""
    stopwords: str = ""
    # auth: empty = no auth; otherwise X-API-Key must be one of these
    api_keys: tuple[str, ...] = ()
    # request limits
    max_texts: int = 256
    max_text_chars: int = 10_000
    max_body_bytes: int = 2 * 1024 * 1024
    default_top_k: int = 1
    max_top_k: int = 50
    # toward TF Serving
    upstream_timeout_s: float = 5.0
    retries: int = 2  # extra attempts on UNAVAILABLE / connection errors
    retry_backoff_s: float = 0.05  # first backoff; doubles per attempt
    breaker_failures: int = 5  # consecutive failures that open the circuit
    breaker_reset_s: float = 5.0  # open -> half-open after this long
    metadata_ttl_s: float = 30.0  # signature/version cache per model, version or label
    pool_size: int = 32  # REST keep-alive connections
    # merge one worker's overlapping predict calls into one TF Serving call of up to this many texts, and
    # send larger requests in parts of this size (0 = off); keep it <= TF Serving's max_batch_size
    coalesce_max_texts: int = 32
    coalesce_in_flight: int = 2  # TF Serving calls per model version one worker runs at once
    # load shedding (admission.py): classify requests one worker works on at once; past it 503 overloaded
    # with Retry-After at once (0 = no limit). Keep it <= the worker's threads (GUNICORN_THREADS)
    max_in_flight: int = 0
    # weighted canary: per model, version label or number -> weight, as JSON or a JSON file's path, e.g.
    # {"news": {"stable": 90, "canary": 10}}; sticky per X-Route-Key (see routing.py); empty = off
    routes: str = ""
    # response cache per worker (cache.py): an LRU of this many per-text results, at most cache_mb MiB;
    # 0 (either) = off
    cache_entries: int = 0
    cache_mb: float = 64.0
    # shadow traffic (shadow.py): per model, where a sampled copy of classify requests goes, as JSON or a JSON
    # file's path, e.g. {"news": {"version_label": "canary", "sample": 0.2}}; empty = off
    shadow: str = ""
    shadow_queue_size: int = 64  # copies waiting per worker; past it a copy is dropped (and counted)
    # the payload log (payload_log.py): a folder turns it on; the share of classify requests logged; bytes per
    # file before it rotates, rotated files kept per worker, requests queued per worker before dropping, and
    # bytes of this host's files in the folder past which rotation deletes the oldest
    payload_log: str = ""
    payload_sample: float = 1.0
    payload_max_bytes: int = 64 * 1024 * 1024
    payload_backups: int = 5
    payload_queue_size: int = 1024
    payload_max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES
    # PII redaction of logged texts (redaction.py): empty = built-in rules, "off", or a JSON file of rules
    payload_redaction: str = ""
    low_confidence: float = DEFAULT_LOW_CONFIDENCE
    # derived in __post_init__ from `routes`, `shadow` and `payload_redaction`: not settings of their own
    route_table: dict[str, tuple[tuple[Route, float], ...]] = dataclasses.field(
        init=False, repr=False, compare=False, default_factory=dict
    )
    shadow_targets: dict[str, ShadowTarget] = dataclasses.field(
        init=False, repr=False, compare=False, default_factory=dict
    )
    redactor: Redactor | None = dataclasses.field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        if bool(self.tfserving_rest) == bool(self.tfserving_grpc):
            raise UserError("give exactly one of --tfserving-rest URL or --tfserving-grpc HOST:PORT")
        if self.tfserving_rest and not self.tfserving_rest.startswith(("http://", "https://")):
            raise UserError(f"--tfserving-rest must be an http(s) URL, got {self.tfserving_rest!r}")
        for name in (
            "max_texts",
            "max_text_chars",
            "max_body_bytes",
            "default_top_k",
            "max_top_k",
            "breaker_failures",
            "pool_size",
            "coalesce_in_flight",
        ):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.coalesce_max_texts < 0:
            raise UserError(f"coalesce_max_texts must be >= 0, got {self.coalesce_max_texts}")
        if self.max_in_flight < 0:
            raise UserError(f"max_in_flight must be >= 0 (0 = no limit), got {self.max_in_flight}")
        if self.cache_entries < 0 or self.cache_mb < 0:
            raise UserError(f"cache_entries and cache_mb must be >= 0, got {self.cache_entries}, {self.cache_mb}")
        if self.retries < 0 or self.upstream_timeout_s <= 0 or self.breaker_reset_s <= 0:
            raise UserError("retries must be >= 0, upstream_timeout_s and breaker_reset_s > 0")
        for name in ("preprocessing", "user_dict", "stopwords"):
            if getattr(self, name) and not Path(getattr(self, name)).is_file():
                raise UserError(f"{name} file {getattr(self, name)} does not exist")
        if self.shadow_queue_size < 1:
            raise UserError(f"shadow_queue_size must be >= 1, got {self.shadow_queue_size}")
        if not 0 <= self.payload_sample <= 1 or not 0 <= self.low_confidence <= 1:
            given = f"{self.payload_sample}, {self.low_confidence}"
            raise UserError(f"payload_sample and low_confidence must be from 0 to 1, got {given}")
        if self.payload_max_bytes < 1024 or self.payload_backups < 1 or self.payload_queue_size < 1:
            raise UserError("payload_max_bytes must be >= 1024, payload_backups and payload_queue_size >= 1")
        if self.payload_max_total_bytes < self.payload_max_bytes:
            raise UserError(f"payload_max_total_bytes must be >= payload_max_bytes, got {self.payload_max_total_bytes}")
        if self.payload_log:
            _writable_folder(Path(self.payload_log))
        # parsed once, here, so a bad setting fails at start-up in one line and the app reuses the result
        object.__setattr__(self, "route_table", load_routes(self.routes, self.models))
        object.__setattr__(self, "shadow_targets", parse_shadow(self.shadow, self.models))
        object.__setattr__(self, "redactor", load_redactor(self.payload_redaction) if self.payload_log else None)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> GatewayConfig:
        """TEXTCLF_* variables, then `overrides` (CLI flags; None means "not given") on top."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            if not field.init:
                continue
            raw = environ.get(ENV_PREFIX + field.name.upper())
            if raw is None or raw == "":
                continue
            values[field.name] = _parse(field.name, field.type, raw)
        values.update({name: value for name, value in overrides.items() if value is not None})
        return cls(**values)


def _writable_folder(folder: Path) -> None:
    """Make the payload log's folder now, so a folder the gateway cannot write fails start-up in one line
    instead of every record being dropped later."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"TEXTCLF_PAYLOAD_LOG: cannot make the folder {folder}: {exc.strerror or exc}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"TEXTCLF_PAYLOAD_LOG: the folder {folder} is not writable by this user")


def _parse(name: str, type_name: Any, raw: str) -> Any:
    kind = str(type_name)
    try:
        if kind.startswith("tuple"):
            return tuple(item.strip() for item in raw.split(",") if item.strip())
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError:
        raise UserError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a valid {kind}") from None
    return raw
