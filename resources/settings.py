"""Process-wide settings read from the environment (pydantic-settings).

Every location the platform touches is named here once; the lake and media resources are the
only code that turns these URIs into paths. Relative defaults resolve against the project root
so the API, the Dagster processes and the CLI agree whatever their working directory.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = PROJECT_ROOT / "data"


def _under_data(name: str) -> str:
    return str(DATA_DIR / name)


class Settings(BaseSettings):
    """Deployment settings.

    Attributes:
        deployment: ``local`` (embedded default: everything on this disk) or ``prod``.
        lake_uri: root of every Delta table (local dir or ``s3://bucket/prefix``).
        media_uri: root of video bytes (local dir or ``s3://bucket/prefix``).
        manifest_uri: routing-manifest store: a local JSON file path or ``redis://…``
            (default: ``$REDIS_URL`` when set, else a file under ``data/manifest``).
        providers_path: the provider registry YAML (``effects.yaml`` and ``rate_card.yaml``
            beside it are used to validate it).
        admin_api_key: key for ``/v1/admin/*`` routes (header ``X-Admin-Key``).
        max_upload_bytes: hard upload size limit enforced by the API and by M1.
        max_duration_ms / min_duration_ms: accepted video duration range (M1).
        welcome_credit_tokens: tokens credited once to a user's account on their first
            upload (a free trial; 0 disables it, then users need an admin top-up first).
        token_usd_rate: USD value of one token (DESIGN.md §6).
        exploration_rate: epsilon for epsilon-greedy provider exploration (DESIGN.md §6).
    """

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    deployment: str = Field(default="local", alias="EFFECTLAKE_DEPLOYMENT")
    lake_uri: str = Field(default_factory=lambda: _under_data("lake"), alias="LAKE_URI")
    media_uri: str = Field(default_factory=lambda: _under_data("media"), alias="MEDIA_URI")
    manifest_uri: str = Field(
        # Production sets REDIS_URL; the embedded default is a file under data/.
        default_factory=lambda: os.environ.get("REDIS_URL") or _under_data("manifest/routing_manifest.json"),
        alias="MANIFEST_URI",
    )
    providers_path: str = Field(
        default_factory=lambda: _under_data("providers.yaml"), alias="EFFECTLAKE_PROVIDERS"
    )
    reference_suite_path: str = Field(default="", alias="EFFECTLAKE_REFERENCE_SUITE")
    admin_api_key: str = Field(default="dev-admin-key", alias="EFFECTLAKE_ADMIN_KEY")
    api_base_url: str = Field(default="http://127.0.0.1:8000", alias="EFFECTLAKE_API_URL")
    max_upload_bytes: int = Field(default=200 * 1024 * 1024, alias="EFFECTLAKE_MAX_UPLOAD_BYTES")
    max_duration_ms: int = Field(default=120_000, alias="EFFECTLAKE_MAX_DURATION_MS")
    min_duration_ms: int = Field(default=500, alias="EFFECTLAKE_MIN_DURATION_MS")
    welcome_credit_tokens: int = Field(default=200, alias="EFFECTLAKE_WELCOME_CREDIT")
    token_usd_rate: float = Field(default=0.01, alias="EFFECTLAKE_TOKEN_USD_RATE")
    exploration_rate: float = Field(default=0.05, alias="EFFECTLAKE_EXPLORATION_RATE")


def get_settings() -> Settings:
    """Read settings from the current environment (no caching: tests change the env)."""
    return Settings()
