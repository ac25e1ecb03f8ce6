"""Workspaces, users and API keys.

A workspace is a tenant with a GPU quota (``max_concurrent_gpu_jobs``). A user belongs to one
workspace and has a role, ``user`` or ``admin`` (admin keys are simply users with that role).
Creating a user opens its token account, issues its first API key (plaintext returned once,
only its hash stored: ``keys``) and grants the welcome credit — all in one transaction, so
the credit is granted exactly once, when the user is created.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from resources.store import keys, ledger
from resources.store.errors import Conflict, InvalidApiKey, InvalidInput, UnknownApiKey, UnknownUser, UnknownWorkspace
from resources.store.models import ROLES, ApiKey, User, Workspace
from resources.store.sql import as_dict, new_id, utcnow

WELCOME_REASON = "welcome credit"


def welcome_topup_id(user_id: str) -> str:
    """The top-up id of a user's welcome credit (one per user)."""
    return f"welcome:{user_id}"


def _public_key(row: ApiKey) -> dict:
    return {k: v for k, v in as_dict(row).items() if k != "key_hash"}


def create_workspace(session: Session, name: str, max_concurrent_gpu_jobs: int = 2) -> dict:
    """A new workspace with a random id (``ws_…``).

    Raises:
        InvalidInput: empty name or a quota that is not a non-negative int.
    """
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise InvalidInput("a workspace needs a name of 1 to 200 characters")
    if (
        isinstance(max_concurrent_gpu_jobs, bool)
        or not isinstance(max_concurrent_gpu_jobs, int)
        or not 0 <= max_concurrent_gpu_jobs <= 10_000
    ):
        raise InvalidInput("max_concurrent_gpu_jobs must be an integer in 0..10000")
    workspace = Workspace(workspace_id=new_id("ws"), name=name.strip(), max_concurrent_gpu_jobs=max_concurrent_gpu_jobs)
    session.add(workspace)
    session.flush()
    return as_dict(workspace)


def get_workspace(session: Session, workspace_id: str) -> dict:
    """The workspace row. Raises ``UnknownWorkspace``."""
    workspace = session.get(Workspace, workspace_id)
    if workspace is None:
        raise UnknownWorkspace(f"no workspace {workspace_id!r}")
    return as_dict(workspace)


def create_user(
    session: Session,
    workspace_id: str,
    role: str = "user",
    name: str | None = None,
    welcome_tokens: int = 0,
    issue_key: bool = True,
) -> tuple[dict, str | None]:
    """(user row, plaintext API key): a new user (random ``u_…`` id) with an account, a first
    key (None when ``issue_key`` is False: the caller registers its own) and, when
    ``welcome_tokens > 0``, the welcome credit.

    Raises:
        UnknownWorkspace: no such workspace.
        InvalidInput: unknown role; InvalidTokens: a bad ``welcome_tokens``.
    """
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {ROLES}, not {role!r}")
    if session.get(Workspace, workspace_id) is None:
        raise UnknownWorkspace(f"no workspace {workspace_id!r}")
    user = User(user_id=new_id("u"), workspace_id=workspace_id, role=role, name=name)
    session.add(user)
    session.flush()  # the user row first: the account references it (no ORM relationship)
    ledger.open_account(session, user.user_id)
    session.flush()
    plaintext = create_api_key(session, user.user_id)[1] if issue_key else None
    if welcome_tokens:
        ledger.credit(session, user.user_id, welcome_tokens, welcome_topup_id(user.user_id), WELCOME_REASON)
    return as_dict(user), plaintext


def get_user(session: Session, user_id: str) -> dict:
    """The user row. Raises ``UnknownUser``."""
    user = session.get(User, user_id)
    if user is None:
        raise UnknownUser(f"no user {user_id!r}")
    return as_dict(user)


def create_api_key(session: Session, user_id: str) -> tuple[dict, str]:
    """(key row without its hash, plaintext key — shown once). Raises ``UnknownUser``."""
    if session.get(User, user_id) is None:
        raise UnknownUser(f"no user {user_id!r}")
    prefix, plaintext = keys.new_key()
    row = ApiKey(key_id=new_id("key"), user_id=user_id, prefix=prefix, key_hash=keys.hash_key(plaintext))
    session.add(row)
    session.flush()
    return _public_key(row), plaintext


def register_api_key(session: Session, user_id: str, plaintext: str) -> dict:
    """Store a key made elsewhere (the configured bootstrap admin key, ``keys.new_key``
    format) for ``user_id``; idempotent when that key is already this user's.

    Raises:
        InvalidInput: malformed key.
        UnknownUser: no such user.
        Conflict: the key's prefix belongs to another key or another user.
    """
    prefix = keys.prefix_of(plaintext)
    if prefix is None:
        raise InvalidInput("an API key reads elk_<12 hex>_<43 url-safe base64 characters>")
    if session.get(User, user_id) is None:
        raise UnknownUser(f"no user {user_id!r}")
    existing = session.scalars(select(ApiKey).where(ApiKey.prefix == prefix)).one_or_none()
    if existing is not None:
        if existing.user_id != user_id or not keys.verify_key(plaintext, existing.key_hash):
            raise Conflict("this key's prefix is already taken")
        return _public_key(existing)
    row = ApiKey(key_id=new_id("key"), user_id=user_id, prefix=prefix, key_hash=keys.hash_key(plaintext))
    session.add(row)
    session.flush()
    return _public_key(row)


def ensure_admin(session: Session, plaintext: str, workspace_name: str = "platform") -> dict:
    """The admin user of the configured bootstrap key ``plaintext``, created on first use (an
    ``admin`` user in the workspace named ``workspace_name``, made if missing) — so the
    configured secret is an ordinary admin key of the store.

    Raises:
        InvalidInput: malformed key; Conflict: the key's prefix is another key's, or the key
            belongs to a user without the admin role.
    """
    if keys.prefix_of(plaintext) is None:
        raise InvalidInput("an API key reads elk_<12 hex>_<43 url-safe base64 characters>")
    try:
        user = authenticate(session, plaintext)
    except InvalidApiKey:
        user = None
    if user is not None:
        if user["role"] != "admin":
            raise Conflict("the configured admin key belongs to a user without the admin role")
        return user
    workspace = session.scalars(select(Workspace).where(Workspace.name == workspace_name)).first()
    workspace_id = workspace.workspace_id if workspace else create_workspace(session, workspace_name)["workspace_id"]
    admin, _ = create_user(session, workspace_id, role="admin", name="bootstrap admin", issue_key=False)
    register_api_key(session, admin["user_id"], plaintext)
    return admin


def authenticate(session: Session, plaintext: str) -> dict:
    """The user row (plus ``key_id``) a valid, unrevoked key belongs to.

    Raises:
        InvalidApiKey: malformed, unknown, wrong or revoked key (one error for all).
    """
    prefix = keys.prefix_of(plaintext)
    row = session.scalars(select(ApiKey).where(ApiKey.prefix == prefix)).one_or_none() if prefix else None
    # Verify even on a miss (dummy hash), so timing does not tell which check failed.
    if not keys.verify_key(plaintext if isinstance(plaintext, str) else "", row.key_hash if row is not None else None):
        raise InvalidApiKey("invalid API key")
    if row.revoked_at is not None:
        raise InvalidApiKey("invalid API key")
    return get_user(session, row.user_id) | {"key_id": row.key_id}


def revoke_api_key(session: Session, key_id: str) -> dict:
    """Revoke a key (idempotent: the first revocation time stands); returns the key row
    without its hash. Raises ``UnknownApiKey``."""
    row = session.get(ApiKey, key_id)
    if row is None:
        raise UnknownApiKey(f"no API key {key_id!r}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()
    return _public_key(row)


def api_keys(session: Session, user_id: str) -> list[dict]:
    """The user's keys (without hashes), oldest first."""
    rows = session.scalars(select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.created_at))
    return [_public_key(r) for r in rows]
