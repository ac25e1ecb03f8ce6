"""The platform's settings for a test: everything on a temporary folder (lake, media store,
manifest file, SQLite store), the API's bootstrap admin key and its public base URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from resources.settings import Settings
from tests.api_users import ADMIN_KEY


def local_settings(root: Path, **extra: Any) -> Settings:
    """Settings rooted in ``root`` (``lake/``, ``media/``, ``manifest/``, ``store.db``);
    ``extra`` adds or overrides fields by their environment names (e.g.
    ``EFFECTLAKE_PROVIDERS=...``)."""
    return Settings(
        LAKE_URI=str(root / "lake"),
        MEDIA_URI=str(root / "media"),
        MANIFEST_URI=str(root / "manifest" / "routing_manifest.json"),
        DATABASE_URL=f"sqlite:///{root / 'store.db'}",
        EFFECTLAKE_ADMIN_KEY=ADMIN_KEY,
        EFFECTLAKE_API_URL="http://testserver",
        **extra,
    )
