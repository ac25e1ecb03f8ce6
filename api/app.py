"""The intake API (FastAPI): uploads, video status, gallery, media, users, admin.

Run with ``effectlake api`` (uvicorn). ``create_app`` builds the I/O clients once from
Settings (the same settings as the Dagster definitions, so both see one lake) and keeps them
on ``app.state``; the routes (``api/routers``) take them as dependencies (``api/deps.py``)
and leave the work to ``resources/services``.
"""

from __future__ import annotations

import sys

from fastapi import FastAPI

from api import errors, hardening, limits
from api.metrics import install_metrics
from api.openapi import install_problem_openapi
from api.ratelimit import install_rate_limits
from api.routers import admin, effects, health, media, runs, upload_flows, uploads, usage, users, videos
from api.tracing import install_tracing
from resources import logconfig
from resources.clients import Clients
from resources.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app for ``settings`` (default: from the environment).

    Migrates the store and registers the bootstrap admin key (``api.hardening.admin_key``).
    Every error is answered as an RFC 9457 problem (``api.problems``, ``api.errors``). The
    middlewares, outermost first: ``nosniff`` on every response, the trace id
    (``api.tracing``, which also answers unhandled errors), the metrics (``api.metrics``),
    the rate limits (``api.ratelimit``), the request-body limits (``api.limits``).

    Raises:
        api.hardening.InsecureSettings: an admin key that is not a store API key, or a
            production deployment without one (``EFFECTLAKE_ADMIN_KEY``).
        api.ratelimit.RateLimitMisconfigured: a production deployment without ``REDIS_URL``.
    """
    settings = settings or get_settings()
    hardening.check_production_settings(settings)
    logconfig.configure()
    app = FastAPI(title="effectlake intake API", version="0.1.0")
    app.state.settings = settings
    app.state.clients = clients = Clients.from_settings(settings)
    clients.store.upgrade()
    key, one_off = hardening.admin_key(settings)
    clients.store.ensure_admin(key)
    if one_off:
        # Like the dashboard's one-off password: shown once, on this process's console only.
        sys.stderr.write(f"effectlake API: one-off admin key (set EFFECTLAKE_ADMIN_KEY to keep one): {key}\n")
    errors.install(app)
    # Starlette runs the middleware added last outermost: the body limits answer inside the
    # trace (their refusals carry a trace id) and are counted by the metrics.
    limits.install(app, settings)
    install_rate_limits(app, settings)
    install_metrics(app, settings)
    install_tracing(app)
    hardening.install_security_headers(app)
    for module in (health, uploads, upload_flows, videos, users, usage, admin, effects, runs, media):
        app.include_router(module.router)
    install_problem_openapi(app)
    return app
