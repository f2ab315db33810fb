"""Weighted canary routing with sticky keys (TEXTCLF_ROUTES / `textclf serve --routes`).

The routes name, per model, a version label or version number and its weight, e.g.
`{"news": {"stable": 90, "canary": 10}}` (a key of digits is a version number, any other key a label).
A classify request that names neither `version` nor `version_label` is routed by weight:

- with an `X-Route-Key` header, by a stable hash of (model, key): blake2b mapped to a point in [0, 1)
  and looked up on the cumulative weights in the order the routes list them. The same key lands on the
  same version in every gateway worker and replica (Python's `hash()` is salted per process, so it is
  not used), and raising the canary's weight moves only the keys between the old and new boundary;
- without the header, by a uniform random draw per request.

An explicit `version` or `version_label` in the body always wins. Routes are checked once at start-up;
a bad one is a UserError of one line.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from data_prep.errors import UserError

ROUTE_KEY_HEADER = "X-Route-Key"
EXPLICIT = "explicit"  # the `route` metric label when the body named a version or label
LATEST = "latest"  # ... when the model has no routes (TF Serving's latest version answers)

# the rule validation.py applies to model names and version labels in a request body
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_DIGEST_BYTES = 8


@dataclass(frozen=True)
class Route:
    """Where one request goes: a version, a label, or neither (latest); `name` labels the metric."""

    name: str
    version: int | None = None
    label: str | None = None


@dataclass(frozen=True)
class _Table:
    routes: tuple[Route, ...]
    bounds: tuple[float, ...]  # cumulative weights / total, the last one 1.0


def load_routes(spec: str, models: Sequence[str] = ()) -> dict[str, tuple[tuple[Route, float], ...]]:
    """Parse and check `spec` (inline JSON, or the path of a JSON file): model -> ((route, weight), ...).

    `models` are the models the gateway fronts; if any are given, every routed model must be one.
    """
    if not spec.strip():
        return {}
    text = spec
    if not spec.lstrip().startswith(("{", "[")):
        path = Path(spec)
        if not path.is_file():
            raise UserError(f"routes: {spec!r} is neither a JSON object nor an existing file")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"routes: cannot read {spec}: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"routes: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise UserError('routes: must be a JSON object such as {"news": {"stable": 90, "canary": 10}}')
    parsed: dict[str, tuple[tuple[Route, float], ...]] = {}
    for model, weights in data.items():
        if not NAME_PATTERN.match(model):
            raise UserError(f"routes: {model!r} is not a model name (letters, digits, _ . -)")
        if models and model not in models:
            raise UserError(f"routes: model {model!r} is not one this gateway fronts ({', '.join(models)})")
        if not isinstance(weights, dict) or not weights:
            raise UserError(f"routes: {model!r} must map version labels or numbers to weights")
        entries = []
        for key, weight in weights.items():
            if not NAME_PATTERN.match(key):
                raise UserError(f"routes: {model}: {key!r} is neither a version number nor a version label")
            if not isinstance(weight, int | float) or isinstance(weight, bool) or not math.isfinite(weight):
                raise UserError(f"routes: {model}.{key}: the weight must be a number, got {weight!r}")
            if weight < 0:
                raise UserError(f"routes: {model}.{key}: the weight must be >= 0, got {weight}")
            route = Route(key, version=int(key)) if key.isascii() and key.isdigit() else Route(key, label=key)
            entries.append((route, float(weight)))
        versions = [route.version if route.version is not None else route.label for route, _ in entries]
        if len(set(versions)) != len(versions):
            raise UserError(f"routes: {model}: a version is named twice ({list(weights)})")
        if sum(weight for _, weight in entries) <= 0:
            raise UserError(f"routes: {model}: the weights add up to 0; give at least one a positive weight")
        parsed[model] = tuple(entries)
    return parsed


def key_point(model: str, key: str) -> float:
    """A point in [0, 1) for (model, key): the same in every process, Python version and machine."""
    digest = hashlib.blake2b(f"{model}\0{key}".encode(), digest_size=_DIGEST_BYTES, person=b"textclf-route").digest()
    return int.from_bytes(digest, "big") / 2.0 ** (8 * _DIGEST_BYTES)


class Router:
    """Chooses the version a classify request goes to. Without routes every request goes to latest."""

    def __init__(
        self, routes: Mapping[str, Sequence[tuple[Route, float]]] | None = None, rng: random.Random | None = None
    ) -> None:
        self._rng = rng or random.Random()
        self._tables: dict[str, _Table] = {}
        for model, entries in (routes or {}).items():
            total = sum(weight for _, weight in entries)
            running, bounds = 0.0, []
            for _, weight in entries:
                running += weight
                bounds.append(running / total)
            bounds[-1] = 1.0  # no float shortfall leaves a gap at the top
            self._tables[model] = _Table(tuple(route for route, _ in entries), tuple(bounds))

    @property
    def models(self) -> list[str]:
        return list(self._tables)

    def weights(self, model: str) -> dict[str, float]:
        """The share of traffic (0..1) each route of `model` gets; empty if the model is not routed."""
        table = self._tables.get(model)
        if table is None:
            return {}
        lower = (0.0, *table.bounds[:-1])
        return {
            route.name: round(upper - low, 9)
            for route, low, upper in zip(table.routes, lower, table.bounds, strict=True)
        }

    def labels(self, model: str) -> list[str]:
        """The version labels the routes of `model` name."""
        table = self._tables.get(model)
        return [route.label for route in table.routes if route.label is not None] if table else []

    def choose(self, model: str, version: int | None, label: str | None, route_key: str | None) -> Route:
        """The route of one request: the body's version or label if given, else by weight (sticky per key)."""
        if version is not None or label is not None:
            return Route(EXPLICIT, version=version, label=label)
        table = self._tables.get(model)
        if table is None:
            return Route(LATEST)
        point = key_point(model, route_key) if route_key else self._rng.random()
        for route, bound in zip(table.routes, table.bounds, strict=True):
            if point < bound:
                return route
        return table.routes[-1]
