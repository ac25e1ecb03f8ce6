"""The API's refusals at start-up and at the door (pure checks plus one middleware).

- ``check_production_settings``: the admin key must be a store API key (random, so never
  weak), and a production deployment must have one. Production also needs an upload signing secret
  with a local media store, and admits no link-intake test hosts.
- ``install_security_headers``: every response says ``X-Content-Type-Options: nosniff`` so a
  browser never second-guesses a declared content type (a served file is never run as a
  script or a page).
- ``safe_media_key``: whether a ``/v1/media`` key can be looked up at all (no traversal, no
  backslash, no NUL, nothing longer than a filesystem accepts).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

from resources.settings import Settings, alias_of
from resources.store.keys import new_key, prefix_of

PROD = "prod"
# Media keys: a whole key and each of its segments stay under what local filesystems and S3
# accept (S3 keys: 1024 bytes; a POSIX file name: 255 bytes).
MAX_MEDIA_KEY_BYTES = 1024
MAX_MEDIA_SEGMENT_BYTES = 255
MAKE_A_KEY = "effectlake admin-key"


class InsecureSettings(RuntimeError):
    """Settings the API must not start with; the message names the variable to set."""


def check_production_settings(settings: Settings) -> None:
    """Refuse an admin key (``EFFECTLAKE_ADMIN_KEY``) that is not an API key of the store's
    format (``elk_<12 hex>_<43 characters>``: 256 random bits, so it cannot be weak), and a
    production deployment (``deployment == "prod"``) without one. The embedded default may
    run without one: ``admin_key`` then makes a one-off key.

    In production also refuse a local media store without an upload signing secret, and
    link-intake test hosts.

    Raises:
        InsecureSettings: naming ``EFFECTLAKE_ADMIN_KEY`` and how to make a key, or
            ``EFFECTLAKE_UPLOAD_SIGNING_SECRET`` (set it) / ``EFFECTLAKE_LINK_TEST_HOSTS``
            (unset it).
    """
    key = settings.admin_api_key
    env = alias_of("admin_api_key")
    if key is not None and prefix_of(key) is None:
        raise InsecureSettings(
            f"{env} is not an effectlake API key (elk_<12 hex>_<43 characters>); weak or hand-made "
            f"admin secrets are refused: make one with `{MAKE_A_KEY}`"
        )
    if key is None and settings.deployment == PROD:
        raise InsecureSettings(
            f"refusing to start in production with no admin: set {env} (make one with `{MAKE_A_KEY}`)"
        )
    if settings.deployment == PROD:
        # Presigned URLs of a local media store are signed by the API: several hosts must
        # share one configured key (a generated one lives on one host's disk).
        if not settings.media_uri.startswith("s3://") and not settings.upload_signing_secret:
            raise InsecureSettings(
                f"refusing to start in production without {alias_of('upload_signing_secret')} "
                "(the key of presigned upload URLs) while the media store is local"
            )
        if settings.link_test_hosts.strip():
            raise InsecureSettings(f"{alias_of('link_test_hosts')} admits hosts for tests only: unset it in production")


def admin_key(settings: Settings) -> tuple[str, bool]:
    """(the bootstrap admin key, whether it was made now): the configured key, else a one-off
    key for this process (embedded default only; ``check_production_settings`` runs first)."""
    if settings.admin_api_key is not None:
        return settings.admin_api_key, False
    return new_key()[1], True


def install_security_headers(app: FastAPI) -> None:
    """Add ``X-Content-Type-Options: nosniff`` to every response of ``app`` (errors included)."""

    @app.middleware("http")
    async def nosniff(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def safe_media_key(key: str) -> bool:
    """True when ``key`` (a ``/``-separated media key) has no ``..``, backslash or control
    character (NUL included), no empty or ``.`` segment, and stays within
    ``MAX_MEDIA_KEY_BYTES`` overall and ``MAX_MEDIA_SEGMENT_BYTES`` per segment (UTF-8)."""
    if ".." in key or "\\" in key or any(ord(c) < 32 or ord(c) == 127 for c in key):
        return False
    if len(key.encode("utf-8", errors="replace")) > MAX_MEDIA_KEY_BYTES:
        return False
    segments = key.split("/")
    return all(
        seg not in ("", ".") and len(seg.encode("utf-8", errors="replace")) <= MAX_MEDIA_SEGMENT_BYTES
        for seg in segments
    )
