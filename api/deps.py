"""FastAPI dependencies: the settings and I/O clients ``create_app`` keeps on ``app.state``,
and the admin-key check. Routes declare what they use (``lake: LakeDep``), so a test can
override any of them through ``app.dependency_overrides``."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from resources.clients import Clients
from resources.lake import Lake
from resources.manifest_store import ManifestStore
from resources.media import MediaStore
from resources.providers.client import ProviderRegistry
from resources.settings import Settings


def app_settings(request: Request) -> Settings:
    """The Settings the app was built with."""
    return request.app.state.settings


def app_clients(request: Request) -> Clients:
    """The clients built once from those settings."""
    return request.app.state.clients


SettingsDep = Annotated[Settings, Depends(app_settings)]
ClientsDep = Annotated[Clients, Depends(app_clients)]


def lake_client(clients: ClientsDep) -> Lake:
    """The lake."""
    return clients.lake


def media_client(clients: ClientsDep) -> MediaStore:
    """The media store."""
    return clients.media


def manifest_store_client(clients: ClientsDep) -> ManifestStore:
    """The routing-manifest store."""
    return clients.manifest_store


def provider_registry(clients: ClientsDep) -> ProviderRegistry:
    """The provider registry."""
    return clients.providers


LakeDep = Annotated[Lake, Depends(lake_client)]
MediaDep = Annotated[MediaStore, Depends(media_client)]
ManifestStoreDep = Annotated[ManifestStore, Depends(manifest_store_client)]
ProvidersDep = Annotated[ProviderRegistry, Depends(provider_registry)]


def require_admin(settings: SettingsDep, x_admin_key: Annotated[str | None, Header()] = None) -> None:
    """Pass when header ``X-Admin-Key`` holds the admin key.

    Raises:
        HTTPException: 401 when it is missing or wrong.
    """
    # Constant-time comparison: the key must not leak through response timing.
    if not x_admin_key or not hmac.compare_digest(x_admin_key.encode(), settings.admin_api_key.encode()):
        raise HTTPException(401, "admin key missing or wrong (header X-Admin-Key)")
