"""The API's refusals at start-up and at the door (pure checks plus one middleware).

- ``check_production_settings``: a production deployment must not run on the development admin
  key, nor on a key short enough to guess; nor sign upload URLs with a key it did not
  configure, nor admit the link intake's test hosts.
- ``install_security_headers``: every response says ``X-Content-Type-Options: nosniff`` so a
  browser never second-guesses a declared content type (a served file is never run as a
  script or a page).
- ``safe_media_key``: whether a ``/v1/media`` key can be looked up at all (no traversal, no
  backslash, no NUL, nothing longer than a filesystem accepts).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

from resources.settings import Settings, alias_of, default_of

PROD = "prod"
# 32 characters: 192 bits from ``secrets.token_urlsafe(24)``, beyond any online guessing.
MIN_ADMIN_KEY_CHARS = 32
# The development default is refused whatever its length (shorter keys are refused anyway).
WEAK_ADMIN_KEYS = frozenset({default_of("admin_api_key")})
# Media keys: a whole key and each of its segments stay under what local filesystems and S3
# accept (S3 keys: 1024 bytes; a POSIX file name: 255 bytes).
MAX_MEDIA_KEY_BYTES = 1024
MAX_MEDIA_SEGMENT_BYTES = 255


class InsecureSettings(RuntimeError):
    """Settings a production API must not start with; the message names the variable to set."""


def check_production_settings(settings: Settings) -> None:
    """Refuse a production deployment (``deployment == "prod"``) whose admin key is unset,
    the development default or shorter than ``MIN_ADMIN_KEY_CHARS``, that has a local media
    store but no upload signing secret, or that sets link test hosts; other deployments pass.

    Raises:
        InsecureSettings: naming the variable to set (``EFFECTLAKE_ADMIN_KEY``,
            ``EFFECTLAKE_UPLOAD_SIGNING_SECRET``) or unset (``EFFECTLAKE_LINK_TEST_HOSTS``).
    """
    if settings.deployment != PROD:
        return
    key = settings.admin_api_key
    env = alias_of("admin_api_key")
    if key in WEAK_ADMIN_KEYS or len(key) < MIN_ADMIN_KEY_CHARS:
        raise InsecureSettings(
            f"refusing to start in production with a missing, default or weak admin key: set {env} "
            f"to a random key of at least {MIN_ADMIN_KEY_CHARS} characters "
            '(e.g. python -c "import secrets; print(secrets.token_urlsafe(32))")'
        )
    # Presigned URLs of a local media store are signed by the API: several hosts must share
    # one configured key (a generated one lives on one host's disk).
    if not settings.media_uri.startswith("s3://") and not settings.upload_signing_secret:
        raise InsecureSettings(
            f"refusing to start in production without {alias_of('upload_signing_secret')} "
            "(the key of presigned upload URLs) while the media store is local"
        )
    if settings.link_test_hosts.strip():
        raise InsecureSettings(f"{alias_of('link_test_hosts')} admits hosts for tests only: unset it in production")


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
