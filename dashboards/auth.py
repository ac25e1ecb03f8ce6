"""Who may open the admin dashboard: configuration, password hashes and the start-up checks.
Pure Python (hashlib, hmac; the settings and their defaults are ``resources.settings``); the
Streamlit side is ``dashboards/gate.py``.

Two ways to sign in, chosen by ``EFFECTLAKE_DEPLOYMENT``:

* ``prod``: Streamlit's own ``st.login`` (OpenID Connect, configured in the ``[auth]`` section
  of ``.streamlit/secrets.toml``), then the identity token's e-mail must be on the allow-list
  ``EFFECTLAKE_ADMIN_EMAILS`` (comma-separated, case-insensitive). No password sign-in.
* anything else (the embedded default, ``local``): one admin password whose hash is
  ``EFFECTLAKE_DASHBOARD_PASSWORD_HASH``. The plain password is never configured anywhere.

Hash format (the same strings as werkzeug's ``generate_password_hash``, so either tool can
make them)::

    scrypt:<N>:<r>:<p>$<salt>$<hex key>        hashlib.scrypt(password, salt, n=N, r=r, p=p),
                                               64-byte key — the default, N=32768 r=8 p=1
    pbkdf2:<digest>:<iterations>$<salt>$<hex>  hashlib.pbkdf2_hmac(digest, password, salt,
                                               iterations), the digest's own key length

``salt`` is the literal text between the ``$`` signs (UTF-8). Make one with
``python -m dashboards.auth hash`` (asks for the password twice; prints the hash).

The app refuses to start (``startup_problems``) in ``prod`` without OIDC settings or without
an allow-list, or when the configured password hash verifies a well-known default password
or the API's admin key (the browser password and the API key are separate secrets), and
anywhere when the hash is malformed. Without a hash at all in the embedded mode nobody can
sign in; ``effectlake dashboard`` and the demo then make a one-off password and print it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from resources.settings import Settings, alias_of, default_of

PROD = "prod"
# The environment variables, as Settings names them.
PASSWORD_HASH_ENV = alias_of("dashboard_password_hash")
ADMIN_EMAILS_ENV = alias_of("admin_emails")
DEPLOYMENT_ENV = alias_of("deployment")
ADMIN_KEY_ENV = alias_of("admin_api_key")

# scrypt's recommended interactive parameters (Percival 2009; OWASP keeps N=2^15, r=8):
# about 0.1 s and 32 MiB per verification, paid once per sign-in.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 32768, 8, 1
SCRYPT_KEY_BYTES = 64
_SALT_ALPHABET = string.ascii_letters + string.digits
# Passwords nobody may keep in production: the usual guesses, and the old development API key
# (a browser password must not be an API key).
DEFAULT_PASSWORDS = (
    "",
    "admin",
    "password",
    "changeme",
    "effectlake",
    "streamlit",
    "demo",
    "dev-admin-key",
    "admin123",
    "123456",
)
# Keys an [auth] section (or one of its provider subsections) needs for st.login.
OIDC_SHARED_KEYS = ("redirect_uri", "cookie_secret")
OIDC_PROVIDER_KEYS = ("client_id", "client_secret", "server_metadata_url")


class InvalidHash(ValueError):
    """The configured hash is not in one of the documented formats."""


def _scrypt(password: str, salt: str, n: int, r: int, p: int) -> bytes:
    # maxmem: OpenSSL's default cap (32 MiB) is exactly N=2^15, r=8 and refuses it; allow
    # the 128·N·r bytes scrypt needs plus slack.
    return hashlib.scrypt(
        password.encode(), salt=salt.encode(), n=n, r=r, p=p, maxmem=132 * n * r * p, dklen=SCRYPT_KEY_BYTES
    )


def hash_password(
    password: str, *, salt: str | None = None, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P
) -> str:
    """Hash ``password`` as ``scrypt:N:r:p$salt$hex`` (a fresh 16-character salt unless given).

    Raises:
        ValueError: ``salt`` contains ``$`` or N is not a power of two above 1.
    """
    salt = salt if salt is not None else "".join(secrets.choice(_SALT_ALPHABET) for _ in range(16))
    if "$" in salt:
        raise ValueError("salt must not contain '$'")
    if n < 2 or n & (n - 1):
        raise ValueError("scrypt N must be a power of two above 1")
    return f"scrypt:{n}:{r}:{p}${salt}${_scrypt(password, salt, n, r, p).hex()}"


def _parse(encoded: str) -> tuple[list[str], str, bytes]:
    """Split a hash into (method fields, salt, expected key); raises InvalidHash."""
    try:
        method, salt, hexkey = encoded.strip().split("$")
        expected = bytes.fromhex(hexkey)
    except ValueError as exc:
        raise InvalidHash("expected '<method>$<salt>$<hex key>'") from exc
    fields = method.split(":")
    if fields[0] == "scrypt" and len(fields) == 4 and all(f.isdigit() for f in fields[1:]):
        n, r, p = (int(f) for f in fields[1:])
        if n < 2 or n & (n - 1) or r < 1 or p < 1:
            raise InvalidHash("scrypt needs N a power of two, r ≥ 1, p ≥ 1")
    elif fields[0] == "pbkdf2" and len(fields) == 3 and fields[2].isdigit():
        if fields[1] not in hashlib.algorithms_guaranteed or int(fields[2]) < 1:
            raise InvalidHash(f"pbkdf2 needs a hashlib digest and iterations ≥ 1, not {method!r}")
    else:
        raise InvalidHash(f"unknown method {method!r} (scrypt:N:r:p or pbkdf2:digest:iterations)")
    if not expected:
        raise InvalidHash("empty key")
    return fields, salt, expected


def check_hash(encoded: str) -> None:
    """Raise InvalidHash unless ``encoded`` is a well-formed hash of a supported method."""
    _parse(encoded)


def verify_password(password: str, encoded: str) -> bool:
    """True when ``password`` matches ``encoded``; the keys are compared in constant time
    (``hmac.compare_digest``), so timing reveals nothing about how much of it matched.

    Raises:
        InvalidHash: ``encoded`` is malformed.
    """
    fields, salt, expected = _parse(encoded)
    if fields[0] == "scrypt":
        n, r, p = (int(f) for f in fields[1:])
        actual = hashlib.scrypt(
            password.encode(), salt=salt.encode(), n=n, r=r, p=p, maxmem=132 * n * r * p, dklen=len(expected)
        )
    else:
        actual = hashlib.pbkdf2_hmac(fields[1], password.encode(), salt.encode(), int(fields[2]), dklen=len(expected))
    return hmac.compare_digest(actual, expected)


def oidc_configured(auth_secrets: Mapping | None) -> bool:
    """True when an ``[auth]`` secrets section can drive ``st.login``: ``redirect_uri`` and
    ``cookie_secret``, plus ``client_id``, ``client_secret`` and ``server_metadata_url``
    either in ``[auth]`` itself (default provider) or in a named ``[auth.<provider>]``."""
    if not auth_secrets:
        return False
    if not all(auth_secrets.get(k) for k in OIDC_SHARED_KEYS):
        return False
    sections = [auth_secrets] + [v for v in auth_secrets.values() if isinstance(v, Mapping)]
    return any(all(s.get(k) for k in OIDC_PROVIDER_KEYS) for s in sections)


def parse_emails(raw: str | None) -> frozenset[str]:
    """Comma- or whitespace-separated e-mails, lower-cased; blanks dropped."""
    return frozenset(e.strip().lower() for e in (raw or "").replace(",", " ").split() if e.strip())


@dataclass(frozen=True)
class AuthConfig:
    """The dashboard's sign-in configuration.

    Attributes:
        deployment: ``prod`` (OIDC) or anything else (password; ``local`` by default).
        password_hash: EFFECTLAKE_DASHBOARD_PASSWORD_HASH, or None when unset/blank.
        admin_emails: lower-cased allow-list (EFFECTLAKE_ADMIN_EMAILS).
        oidc: True when the ``[auth]`` secrets are complete (``oidc_configured``).
        api_admin_key: the API's key (EFFECTLAKE_ADMIN_KEY), only to refuse it as password.
    """

    deployment: str = default_of("deployment")
    password_hash: str | None = None
    admin_emails: frozenset[str] = field(default_factory=frozenset)
    oidc: bool = False
    api_admin_key: str | None = None

    @property
    def is_prod(self) -> bool:
        return self.deployment == PROD

    @classmethod
    def from_settings(cls, settings: Settings, auth_secrets: Mapping | None = None) -> AuthConfig:
        """The configuration of ``settings`` and the ``[auth]`` secrets."""
        return cls(
            deployment=settings.deployment,
            password_hash=settings.dashboard_password_hash,
            admin_emails=parse_emails(settings.admin_emails),
            oidc=oidc_configured(auth_secrets),
            api_admin_key=settings.admin_api_key,
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str], auth_secrets: Mapping | None = None) -> AuthConfig:
        """The configuration of the environment ``env`` alone (e.g. one prepared for the
        dashboard's process; see ``Settings.from_environ``) and the ``[auth]`` secrets."""
        return cls.from_settings(Settings.from_environ(env), auth_secrets)


@lru_cache(maxsize=16)
def _weak(password_hash: str, candidates: tuple[str, ...], api_admin_key: str | None) -> str | None:
    """Which of ``candidates`` (or the API key) ``password_hash`` verifies, if any (cached:
    each check is a full scrypt run, ~0.1 s)."""
    for candidate in (*candidates, *([api_admin_key] if api_admin_key else [])):
        if verify_password(candidate, password_hash):
            return "the API admin key" if candidate == api_admin_key else f"the default password {candidate!r}"
    return None


def startup_problems(config: AuthConfig) -> list[str]:
    """Why the dashboard must refuse to start with ``config``; empty when it may.

    Checked: a malformed hash (anywhere); in ``prod``, missing OIDC secrets, an empty
    allow-list, and a configured hash that verifies a default password; anywhere, a hash
    that verifies the API admin key.
    """
    problems = []
    if config.password_hash:
        try:
            check_hash(config.password_hash)
        except InvalidHash as exc:
            problems.append(f"{PASSWORD_HASH_ENV} is malformed: {exc}")
    if config.is_prod:
        if not config.oidc:
            problems.append(
                "prod needs OpenID Connect: an [auth] section in .streamlit/secrets.toml with "
                "redirect_uri, cookie_secret, client_id, client_secret, server_metadata_url"
            )
        if not config.admin_emails:
            problems.append(f"prod needs {ADMIN_EMAILS_ENV} (comma-separated admin e-mails)")
    if config.password_hash and not problems:
        # The embedded default may keep a simple password; production may not.
        weak = _weak(config.password_hash, DEFAULT_PASSWORDS if config.is_prod else (), config.api_admin_key)
        if weak:
            problems.append(f"{PASSWORD_HASH_ENV} verifies {weak}; set a password of its own")
    return problems


def is_admin_email(email: str | None, allowed: frozenset[str], verified: bool | None = True) -> bool:
    """True when ``email`` is on the allow-list (case-insensitive) and the identity provider
    did not say it is unverified (``email_verified`` False)."""
    return bool(email) and verified is not False and email.strip().lower() in allowed


def new_password() -> str:
    """A random one-off password (about 96 bits) for the demo and ``effectlake dashboard``."""
    return secrets.token_urlsafe(12)


def _main(argv: list[str] | None = None) -> int:
    import argparse
    import getpass

    parser = argparse.ArgumentParser(prog="python -m dashboards.auth", description="dashboard password hashes")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("hash", help="print the hash of a password read from the terminal")
    parser.parse_args(argv)
    password = getpass.getpass("Dashboard password: ")
    if password != getpass.getpass("Again: "):
        print("the two passwords differ")
        return 1
    print(hash_password(password))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
