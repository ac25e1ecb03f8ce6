"""Signed, expiring upload URLs served by the API itself (a local media store; S3 media get
boto3's presigned URLs instead).

A signature is HMAC-SHA256 (RFC 2104, ``hmac``/``hashlib``) over the method, the media key,
the expiry (Unix seconds) and the largest body the URL admits, with a server secret: the URL
can be handed to a client that holds no API key, and nothing in it can be changed — another
key, a later expiry, a larger size — without the secret.

The secret is ``Settings.upload_signing_secret`` when configured. Otherwise it is generated
once and kept in a file under the data directory, so every API worker on the host signs and
verifies with the same key (a per-process random key would make a URL signed by one worker
fail on another); production with a local media store must configure it
(``api.hardening``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

# 256 bits: the HMAC-SHA256 block-size rule of thumb is "at least the output size".
SECRET_BYTES = 32
SECRET_FILE = Path("secrets") / "upload_signing.key"


class InvalidSignature(Exception):
    """A signed URL that is forged, altered or expired; the message says which."""


@dataclass(frozen=True)
class SignedGrant:
    """What a signed URL allows: ``method`` on media ``key`` until ``expires`` (Unix seconds)
    with a body of at most ``max_bytes``."""

    method: str
    key: str
    expires: int
    max_bytes: int

    def message(self) -> bytes:
        """The signed bytes: the four fields, newline-separated (a key holds no newline:
        ``api.hardening.safe_media_key``)."""
        return f"{self.method.upper()}\n{self.key}\n{self.expires}\n{self.max_bytes}".encode()


def sign(secret: bytes, grant: SignedGrant) -> str:
    """The URL-safe base64 HMAC-SHA256 of ``grant`` under ``secret`` (43 characters)."""
    mac = hmac.new(secret, grant.message(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def verify(secret: bytes, grant: SignedGrant, signature: str, now: float) -> None:
    """Pass when ``signature`` is ``sign(secret, grant)`` and ``now`` (Unix seconds) is
    before ``grant.expires``.

    Raises:
        InvalidSignature: forged or altered (compared in constant time), or expired.
    """
    if not hmac.compare_digest(sign(secret, grant).encode(), signature.encode("utf-8", "replace")):
        raise InvalidSignature("the upload URL's signature does not match")
    if now >= grant.expires:
        raise InvalidSignature("the upload URL has expired")


def signing_secret(configured: str | None, data_dir: str | Path) -> bytes:
    """The HMAC key: ``configured`` (``Settings.upload_signing_secret``) when set, else the
    key in ``<data_dir>/secrets/upload_signing.key``, created on first use.

    Creation is atomic and first-wins: the key is written to a private temporary file and
    hard-linked into place, so racing workers all end up reading the one key that landed.
    """
    if configured:
        return configured.encode()
    path = Path(data_dir) / SECRET_FILE
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(SECRET_BYTES))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another worker's key landed first: use it
        finally:
            tmp.unlink()
    return path.read_text().strip().encode()
