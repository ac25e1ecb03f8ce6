"""The intake API (FastAPI): uploads, video status, gallery, media, users, admin.

Run with ``effectlake api`` (uvicorn). ``create_app`` builds the I/O clients once from
Settings (the same settings as the Dagster definitions, so both see one lake) and keeps them
on ``app.state``; the routes (``api/routers``) take them as dependencies (``api/deps.py``)
and leave the work to ``resources/services``.
"""

from __future__ import annotations

import sys

from fastapi import FastAPI

from api import errors, hardening
from api.routers import admin, effects, health, media, uploads, users, videos
from resources.clients import Clients
from resources.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app for ``settings`` (default: from the environment).

    Migrates the store and registers the bootstrap admin key (``api.hardening.admin_key``).

    Raises:
        api.hardening.InsecureSettings: an admin key that is not a store API key, or a
            production deployment without one (``EFFECTLAKE_ADMIN_KEY``).
    """
    settings = settings or get_settings()
    hardening.check_production_settings(settings)
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
    hardening.install_security_headers(app)
    for module in (health, uploads, videos, users, admin, effects, media):
        app.include_router(module.router)
    return app
