"""API keys: generation, hashing and verification (pure; no database).

A key reads ``elk_<prefix>_<secret>``: ``prefix`` (12 hex characters) is public and stored in
clear to find the key's row; ``secret`` (32 random bytes, url-safe base64) is known only to
the holder. The store keeps an argon2id hash of the whole key, never the key itself, so a
copy of the database hands out no working key.

Hash cost: argon2id with 1 pass over 8 MiB (about 5–10 ms here). Passwords need the slow
OWASP settings because people choose guessable ones; these secrets are 256 random bits, so
no cost setting changes how hard guessing is, and a fast verify keeps authentication cheap
on every request. Verification is constant-time in the key (argon2's own comparison), and
an unknown prefix is verified against a dummy hash so a miss costs the same time as a wrong
secret.
"""

from __future__ import annotations

import hmac
import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

KEY_PATTERN = re.compile(r"^elk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_HASHER = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(32))


def new_key() -> tuple[str, str]:
    """(prefix, plaintext key) of a fresh random key."""
    prefix = secrets.token_hex(6)
    return prefix, f"elk_{prefix}_{secrets.token_urlsafe(32)}"


def prefix_of(key: str) -> str | None:
    """The public prefix of a well-formed key, else None."""
    match = KEY_PATTERN.match(key) if isinstance(key, str) else None
    return match.group(1) if match else None


def hash_key(key: str) -> str:
    """argon2id hash (PHC string, salt included) of ``key``."""
    return _HASHER.hash(key)


def verify_key(key: str, key_hash: str | None) -> bool:
    """Whether ``key`` matches ``key_hash``; ``None`` (no such prefix) runs a dummy verify
    and returns False, so both misses take as long as a mismatch."""
    try:
        ok = _HASHER.verify(key_hash or _DUMMY_HASH, key)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        ok = False
    # The dummy hash could only match by a 2**-256 accident; refuse it explicitly anyway.
    return ok and key_hash is not None and not hmac.compare_digest(key_hash, _DUMMY_HASH)
