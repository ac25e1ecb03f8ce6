"""FastAPI dependencies: the settings and I/O clients ``create_app`` keeps on ``app.state``,
and the caller (the user of the request's API key) with the admin-role check. Routes
declare what they use (``lake: LakeDep``), so a test can override any of them through
``app.dependency_overrides``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from resources.catalog import Catalog
from resources.clients import Clients
from resources.lake import Lake
from resources.manifest_store import ManifestStore
from resources.media import MediaStore
from resources.media_links import MediaLinks
from resources.providers.client import ProviderRegistry
from resources.settings import Settings
from resources.store.client import Store
from resources.store.errors import InvalidApiKey


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


def media_links(clients: ClientsDep) -> MediaLinks:
    """Public URLs of media keys."""
    return clients.links


def catalog_client(clients: ClientsDep) -> Catalog:
    """The shipped catalogs (effects, prices, parameter ranges)."""
    return clients.catalog


def store_client(clients: ClientsDep) -> Store:
    """The transactional store."""
    return clients.store


LakeDep = Annotated[Lake, Depends(lake_client)]
StoreDep = Annotated[Store, Depends(store_client)]
MediaDep = Annotated[MediaStore, Depends(media_client)]
LinksDep = Annotated[MediaLinks, Depends(media_links)]
ManifestStoreDep = Annotated[ManifestStore, Depends(manifest_store_client)]
ProvidersDep = Annotated[ProviderRegistry, Depends(provider_registry)]
CatalogDep = Annotated[Catalog, Depends(catalog_client)]


@dataclass(frozen=True)
class Caller:
    """Who is calling: the user of the request's API key.

    Attributes:
        user_id: the store's ``u_…`` id; every read and write of the request is scoped to it
            (never taken from the body or the query).
        workspace_id: the user's workspace (de-duplication, GPU quota).
        role: ``user`` or ``admin``.
    """

    user_id: str
    workspace_id: str
    role: str

    @property
    def is_admin(self) -> bool:
        """Whether the caller has the admin role."""
        return self.role == "admin"


# auto_error=False: a missing or malformed header is answered by ``current_caller`` with
# the same 401 as a wrong key, not by FastAPI's 403.
_bearer = HTTPBearer(auto_error=False, description="an API key: Authorization: Bearer elk_…")


def current_caller(
    store: StoreDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Caller:
    """The caller of ``Authorization: Bearer <API key>``.

    Raises:
        HTTPException: 401 (with ``WWW-Authenticate: Bearer``) when the header is missing or
            the key is malformed, unknown or revoked — one answer for all, so it tells nothing.
    """
    try:
        if credentials is None:
            raise InvalidApiKey("missing")
        user = store.authenticate(credentials.credentials)
    except InvalidApiKey:
        raise HTTPException(
            401, "a valid API key is required (Authorization: Bearer <key>)", headers={"WWW-Authenticate": "Bearer"}
        ) from None
    return Caller(user_id=user["user_id"], workspace_id=user["workspace_id"], role=user["role"])


CallerDep = Annotated[Caller, Depends(current_caller)]


def admin_caller(caller: CallerDep) -> Caller:
    """The caller, when an admin.

    Raises:
        HTTPException: 403 for a valid key without the admin role (401 as ``current_caller``).
    """
    if not caller.is_admin:
        raise HTTPException(403, "this operation needs an admin key")
    return caller


AdminDep = Annotated[Caller, Depends(admin_caller)]
