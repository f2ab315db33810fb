"""The web page at `/`: static HTML, CSS and JS (serving/gateway/static/, no build step) that call the
gateway's public JSON API, as any client does.

The page holds no data, so it and its static files answer without an API key; its API calls carry the
key the user types in. The app serves static/ itself (Flask's `static` endpoint, since the app's root is
this package); this blueprint adds `/` with a Content-Security-Policy that lets the page load nothing
but this gateway's own files and talk to nothing but this gateway.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app

blueprint = Blueprint("page", __name__)
PUBLIC_ENDPOINTS = frozenset({f"{blueprint.name}.index", "static"})

_CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


@blueprint.get("/")
def index() -> Response:
    response = current_app.send_static_file("index.html")
    response.headers["Content-Security-Policy"] = _CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
