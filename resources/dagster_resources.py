"""The Dagster face of the I/O clients: the only module of ``resources/`` that imports Dagster.

Each wrapper is a ``dg.ConfigurableResource`` whose config mirrors its client's fields (so the
Dagster UI shows where the lake, media store… are) and whose ``create_resource`` hands the
plain client to user code; assets, sensors and checks take it as ``dg.ResourceParam[Lake]``
and so on. (Dagster 1.13 documents exactly this on ``ConfigurableResource``: override
``create_resource`` to vend another object. Its base class ``ConfigurableResourceFactory`` is
not exported from the ``dagster`` package.) The ``platform`` resource needs no wrapper: it is
the ``Settings`` object itself, passed as a plain resource.

Resource keys: ``lake``, ``media``, ``manifest_store``, ``catalog``, ``providers``,
``store``, ``gemini``, ``platform`` (plus ``io_manager``, the Delta IO manager, built in ``pipelines/definitions.py``).
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from resources.catalog import Catalog
from resources.clients import Clients
from resources.gemini.client import GeminiClient
from resources.gemini.pricing import PriceTable
from resources.lake import Lake
from resources.manifest_store import ManifestStore
from resources.media import MediaStore
from resources.providers.client import ProviderRegistry
from resources.settings import Settings
from resources.store.client import Store


class LakeResource(dg.ConfigurableResource[Lake]):
    """``resources.lake.Lake`` for Dagster (config: ``uri``, ``storage_options``)."""

    uri: str
    storage_options: dict[str, str]

    def create_resource(self, context: dg.InitResourceContext) -> Lake:
        return Lake(uri=self.uri, storage_options=self.storage_options)


class MediaResource(dg.ConfigurableResource[MediaStore]):
    """``resources.media.MediaStore`` for Dagster (config: ``uri``, ``storage_options``)."""

    uri: str
    storage_options: dict[str, str]

    def create_resource(self, context: dg.InitResourceContext) -> MediaStore:
        return MediaStore(uri=self.uri, storage_options=self.storage_options)


class ManifestStoreResource(dg.ConfigurableResource[ManifestStore]):
    """``resources.manifest_store.ManifestStore`` for Dagster (config: ``uri``,
    ``key_prefix``)."""

    uri: str
    key_prefix: str

    def create_resource(self, context: dg.InitResourceContext) -> ManifestStore:
        return ManifestStore(uri=self.uri, key_prefix=self.key_prefix)


class CatalogResource(dg.ConfigurableResource[Catalog]):
    """``resources.catalog.Catalog`` for Dagster (config: ``data_dir``,
    ``reference_suite_path``)."""

    data_dir: str
    reference_suite_path: str

    def create_resource(self, context: dg.InitResourceContext) -> Catalog:
        return Catalog(data_dir=self.data_dir, reference_suite_path=self.reference_suite_path)


class ProviderRegistryResource(dg.ConfigurableResource[ProviderRegistry]):
    """``resources.providers.client.ProviderRegistry`` for Dagster (config: ``path``)."""

    path: str

    def create_resource(self, context: dg.InitResourceContext) -> ProviderRegistry:
        return ProviderRegistry(path=self.path)


class StoreResource(dg.ConfigurableResource[Store]):
    """``resources.store.client.Store`` for Dagster (config: ``url``, the database URL).
    Migrates to head when a run or sensor first builds it (idempotent, serialized by the
    store's migration lock)."""

    url: str

    def create_resource(self, context: dg.InitResourceContext) -> Store:
        return Store(self.url, upgrade=True)


class GeminiResource(dg.ConfigurableResource[GeminiClient]):
    """``resources.gemini.client.GeminiClient`` for Dagster (config: the ``EFFECTLAKE_GEMINI_*``
    settings and ``api_key``, passed as ``EnvVar("GOOGLE_API_KEY")`` when it comes from the
    environment so the UI never shows it; empty = no key: every stage runs locally)."""

    api_key: str
    model: str
    data_dir: str
    base_url: str
    timeout_s: float
    attempts: int
    max_wait_s: float
    file_timeout_s: float
    inline_max_bytes: int
    cache_dir: str

    def create_resource(self, context: dg.InitResourceContext) -> GeminiClient:
        return GeminiClient(
            self.api_key or None,
            self.model,
            PriceTable.load(self.data_dir),
            base_url=self.base_url,
            timeout_s=self.timeout_s,
            attempts=self.attempts,
            max_wait_s=self.max_wait_s,
            file_timeout_s=self.file_timeout_s,
            inline_max_bytes=self.inline_max_bytes,
            cache_dir=self.cache_dir or None,
        )


def gemini_resource(settings: Settings) -> GeminiResource:
    """The Gemini resource of ``settings`` (the key as an ``EnvVar`` when the environment set it)."""
    key = settings.google_api_key or ""
    from_env = bool(key) and os.environ.get("GOOGLE_API_KEY", "").strip() == key
    c = GeminiClient.from_settings(settings)
    return GeminiResource(
        api_key=dg.EnvVar("GOOGLE_API_KEY") if from_env else key,
        model=c.model,
        data_dir=settings.data_dir,
        base_url=c.base_url,
        timeout_s=c.timeout_s,
        attempts=c.attempts,
        max_wait_s=c.max_wait_s,
        file_timeout_s=c.file_timeout_s,
        inline_max_bytes=c.inline_max_bytes,
        cache_dir=str(c.cache.root) if c.cache is not None else "",
    )


def client_resources(settings: Settings) -> dict[str, Any]:
    """The resources of ``settings`` by key, except the IO manager: a wrapper per client and
    ``platform`` = ``settings``."""
    # Wrappers declare no defaults: each is configured from the client Settings built, so a
    # default lives in one place (Settings, or the client for a field Settings lacks).
    c = Clients.from_settings(settings)
    return {
        "lake": LakeResource(**c.lake.model_dump()),
        "media": MediaResource(**c.media.model_dump()),
        "manifest_store": ManifestStoreResource(**c.manifest_store.model_dump()),
        "catalog": CatalogResource(**c.catalog.model_dump()),
        "providers": ProviderRegistryResource(**c.providers.model_dump()),
        "store": StoreResource(url=c.store.url),
        "gemini": gemini_resource(settings),
        "platform": settings,
    }
