"""What one gateway app holds for its requests, and how a route reaches it.

Its own module so blueprints read the request context without importing the app factory (the flaskr
rule): the factory imports the routes, never the other way round.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app

from serving.gateway.classifier import Classifier
from serving.gateway.config import GatewayConfig
from serving.gateway.errors import ApiError
from serving.gateway.metrics import GatewayMetrics
from serving.gateway.payload_log import PayloadLog
from serving.gateway.resilience import CircuitBreaker, GuardedUpstream
from serving.gateway.routing import Router
from serving.gateway.shadow import ShadowSender
from serving.gateway.upstream import Upstream

EXTENSION = "textclf_gateway"  # the key in `app.extensions`


@dataclass
class Gateway:
    """Everything a request needs, hung off the app rather than module globals: one app per test."""

    config: GatewayConfig
    upstream: Upstream  # the raw client: readiness asks it directly, past the breaker
    guarded: GuardedUpstream
    classifier: Classifier
    metrics: GatewayMetrics
    router: Router = field(default_factory=Router)  # weighted canary (routing.py); default: no routes
    shadow: ShadowSender | None = None  # shadow traffic (shadow.py); None: off
    payload: PayloadLog | None = None  # the payload log (payload_log.py); None: off
    openapi: dict[str, Any] = field(default_factory=dict)  # this app's document (openapi.py), its limits and keys

    @property
    def breaker(self) -> CircuitBreaker:
        return self.guarded.breaker

    def check_served(self, model: str) -> None:
        """ApiError(model_not_found) for a model outside TEXTCLF_MODELS (when set): asked before any upstream call."""
        if self.config.models and model not in self.config.models:
            raise ApiError("model_not_found", f"model {model!r} is not served here; models: {list(self.config.models)}")


def gateway(app: Flask | None = None) -> Gateway:
    """The Gateway of `app`, by default the app handling the current request."""
    found: Gateway = (app or current_app).extensions[EXTENSION]
    return found
