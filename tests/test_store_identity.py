"""Workspaces, users and API keys in the store: keys are stored hashed (argon2id), shown
once, refused when wrong or revoked."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from resources.store import keys
from resources.store.errors import InvalidApiKey, InvalidInput, UnknownApiKey, UnknownWorkspace
from resources.store.models import ApiKey

pytest_plugins = ["tests.store_fixtures"]


def _stored_text(store) -> str:
    """Every value of every api_keys row, as one string."""
    with store.read() as s:
        return " ".join(str(v) for row in s.execute(select(ApiKey.__table__)).all() for v in row)


def test_a_key_is_shown_once_and_stored_only_as_its_hash(store, new_user):
    user = new_user()
    plaintext = user["api_key"]
    prefix = keys.prefix_of(plaintext)
    secret = plaintext.split("_", 2)[2]
    assert prefix and len(secret) == 43
    stored = _stored_text(store)
    assert prefix in stored and plaintext not in stored and secret not in stored
    [key] = store.api_keys(user["user_id"])
    assert "key_hash" not in key and key["prefix"] == prefix
    with store.read() as s:
        key_hash = s.scalars(select(ApiKey.key_hash).where(ApiKey.prefix == prefix)).one()
    assert key_hash.startswith("$argon2id$")

    me = store.authenticate(plaintext)
    assert (me["user_id"], me["workspace_id"], me["role"], me["key_id"]) == (
        user["user_id"],
        user["workspace_id"],
        "user",
        key["key_id"],
    )


def test_wrong_malformed_unknown_and_revoked_keys_are_refused(store, new_user):
    user = new_user()
    plaintext = user["api_key"]
    prefix, secret = keys.prefix_of(plaintext), plaintext.split("_", 2)[2]
    flipped = ("A" if secret[0] != "A" else "B") + secret[1:]
    other = new_user()["api_key"]
    candidates = [
        f"elk_{prefix}_{flipped}",  # right prefix, wrong secret
        f"elk_{keys.prefix_of(other)}_{secret}",  # someone else's prefix with this secret
        f"elk_{'0' * 12}_{secret}",  # unknown prefix
        plaintext[:-1],
        plaintext + "x",
        "",
        "Bearer " + plaintext,
        None,
        42,
    ]
    for candidate in candidates:
        with pytest.raises(InvalidApiKey) as refused:
            store.authenticate(candidate)
        assert refused.value.http_status == 401

    # A second key works alongside; revoking the first refuses it and only it.
    second_row, second = store.create_api_key(user["user_id"])
    [first_row] = [k for k in store.api_keys(user["user_id"]) if k["prefix"] == prefix]
    revoked = store.revoke_api_key(first_row["key_id"])
    assert revoked["revoked_at"] is not None
    assert store.revoke_api_key(first_row["key_id"])["revoked_at"] == revoked["revoked_at"]
    with pytest.raises(InvalidApiKey):
        store.authenticate(plaintext)
    assert store.authenticate(second)["key_id"] == second_row["key_id"]
    with pytest.raises(UnknownApiKey):
        store.revoke_api_key("key_missing")


def test_users_roles_and_workspaces(store, workspace):
    admin, key = store.create_user(workspace["workspace_id"], role="admin", name="Ops")
    assert admin["user_id"].startswith("u_") and admin["role"] == "admin"
    assert store.authenticate(key)["role"] == "admin"
    assert store.user(admin["user_id"])["name"] == "Ops"
    with pytest.raises(InvalidInput):
        store.create_user(workspace["workspace_id"], role="root")
    with pytest.raises(UnknownWorkspace):
        store.create_user("ws_missing")
    ids = {store.create_user(workspace["workspace_id"])[0]["user_id"] for _ in range(3)}
    assert len(ids) == 3  # random ids
    ws = store.create_workspace("  Studio  ", max_concurrent_gpu_jobs=5)
    assert store.workspace(ws["workspace_id"]) | {} == ws and ws["name"] == "Studio"
    for quota in (-1, True, 1.5, "3"):
        with pytest.raises(InvalidInput):
            store.create_workspace("x", max_concurrent_gpu_jobs=quota)
    with pytest.raises(InvalidInput):
        store.create_workspace("   ")


def test_key_helpers():
    prefix, plaintext = keys.new_key()
    assert keys.prefix_of(plaintext) == prefix
    digest = keys.hash_key(plaintext)
    assert keys.verify_key(plaintext, digest)
    assert not keys.verify_key(plaintext + "x", digest)
    assert not keys.verify_key(plaintext, None)
    assert not keys.verify_key(plaintext, "not-a-hash")
    assert keys.hash_key(plaintext) != digest  # salted
