"""``GET /healthz``: the process answers."""

from __future__ import annotations

from fastapi import APIRouter

from api.models import Health

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> Health:
    """Liveness: ``{"ok": true}``."""
    return Health(ok=True)
