"""The Flask app: wires auth, storage, the two asset kinds and the error shape."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from http import HTTPStatus

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from . import datasets, models
from .auth import InvalidToken, TokenVerifier, bearer_token, forbidden, unauthorized
from .config import Settings
from .problems import Problem
from .store import Store
from .wsgi import AccessLog, RawPathRouting

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


@dataclass(frozen=True)
class Services:
    """What views reach through `current_app.extensions["asset_api"]`."""

    store: Store
    verifier: TokenVerifier
    writer_role: str


def create_app(settings: Settings) -> Flask:
    app = Flask("asset_api")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.extensions["asset_api"] = Services(
        store=Store(settings.db),
        verifier=TokenVerifier(settings.issuer, settings.jwks_url, settings.audience),
        writer_role=settings.writer_role,
    )

    app.add_url_rule("/healthz", "healthz", healthz)
    app.register_blueprint(datasets.blueprint)
    app.register_blueprint(models.blueprint)
    app.before_request(authenticate)

    app.register_error_handler(Problem, Problem.to_response)
    app.register_error_handler(HTTPException, http_problem)
    app.register_error_handler(Exception, internal_problem)

    app.wsgi_app = AccessLog(RawPathRouting(app.wsgi_app))  # type: ignore[method-assign]
    return app


def services() -> Services:
    return current_app.extensions["asset_api"]


def healthz() -> Response:
    services().store.ping()
    return Response('{"status": "ok"}', mimetype="application/json")


def authenticate() -> None:
    """401 before 404/405 (unknown paths tell strangers nothing), then 403."""
    if request.endpoint == "healthz":
        return
    token = bearer_token(request.headers.get("Authorization"))
    if token is None:
        raise unauthorized(None)
    try:
        g.principal = services().verifier.verify(token)
    except InvalidToken as exc:
        raise unauthorized(str(exc) or "the token is invalid") from exc

    if request.routing_exception is not None:
        return  # Flask raises it next, as a 404 or 405 problem
    role = services().writer_role
    if request.method not in SAFE_METHODS and role not in g.principal.roles:
        raise forbidden(role)


def http_problem(exc: HTTPException) -> BaseResponse:
    status = exc.code or 500
    if status < 400:
        return exc.get_response()
    allow = [(k, v) for k, v in exc.get_headers() if k.lower() == "allow"]
    detail = exc.description or HTTPStatus(status).phrase
    return Problem(status, detail, headers=dict(allow)).to_response()


def internal_problem(exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.path)
    return Problem(500, "the server failed; its log says why").to_response()
