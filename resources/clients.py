"""Every I/O client built from one Settings, so the API, the dashboard, the CLI and the Dagster
resources (``resources/dagster_resources.py``) point at the same lake, media store, manifest
store, catalogs and provider registry."""

from __future__ import annotations

from dataclasses import dataclass

from resources.catalog import Catalog
from resources.gemini.client import GeminiClient
from resources.lake import Lake
from resources.manifest_store import ManifestStore
from resources.media import MediaStore
from resources.media_links import MediaLinks
from resources.providers.client import ProviderRegistry
from resources.settings import Settings
from resources.store.client import Store


@dataclass(frozen=True)
class Clients:
    """The platform's I/O clients (plain objects, no Dagster). Building them does no I/O:
    the store's engine connects on first use, and whoever starts a process that writes it
    (the API, the Dagster resource) runs ``store.upgrade()`` first. The Gemini client reads
    its price table (shipped YAML) and makes no request without ``GOOGLE_API_KEY``."""

    lake: Lake
    media: MediaStore
    manifest_store: ManifestStore
    catalog: Catalog
    providers: ProviderRegistry
    store: Store
    gemini: GeminiClient
    links: MediaLinks

    @classmethod
    def from_settings(cls, settings: Settings) -> Clients:
        """The clients of ``settings``' locations."""
        media = MediaStore(uri=settings.media_uri)
        return cls(
            lake=Lake(uri=settings.lake_uri),
            media=media,
            manifest_store=ManifestStore(uri=settings.manifest_uri, key_prefix=settings.manifest_key_prefix),
            catalog=Catalog(data_dir=settings.data_dir, reference_suite_path=settings.reference_suite_path),
            providers=ProviderRegistry(path=settings.providers_path),
            store=Store(settings.database_url, upgrade=False),
            gemini=GeminiClient.from_settings(settings),
            links=MediaLinks(media, settings.api_base_url, settings.media_public_base_url, settings.media_url_ttl_s),
        )
