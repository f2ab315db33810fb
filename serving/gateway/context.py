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
from serving.gateway.metrics import GatewayMetrics
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
    openapi: dict[str, Any] = field(default_factory=dict)  # this app's document (openapi.py), its limits and keys

    @property
    def breaker(self) -> CircuitBreaker:
        return self.guarded.breaker


def gateway(app: Flask | None = None) -> Gateway:
    """The Gateway of `app`, by default the app handling the current request."""
    found: Gateway = (app or current_app).extensions[EXTENSION]
    return found
