"""Users and API keys for tests that call the API: the bootstrap admin key the test
settings configure, and ``new_user`` to make a user (in a new workspace unless one is given)
through ``POST /v1/admin/users``, as an operator would."""

from __future__ import annotations

from typing import Any

# A well-formed store API key (elk_<12 hex>_<43 characters>), registered as the bootstrap
# admin by create_app; fixed so tests and the settings fixture agree on it.
ADMIN_KEY = "elk_00000000ad01_" + "T" * 43


def bearer(key: str) -> dict[str, str]:
    """The ``Authorization`` header of an API key."""
    return {"Authorization": f"Bearer {key}"}


ADMIN = bearer(ADMIN_KEY)


def new_workspace(client: Any, name: str = "test workspace", max_concurrent_gpu_jobs: int = 2) -> str:
    """A new workspace's id (``client``: an httpx or FastAPI test client on the API)."""
    r = client.post(
        "/v1/admin/workspaces", headers=ADMIN, json={"name": name, "max_concurrent_gpu_jobs": max_concurrent_gpu_jobs}
    )
    assert r.status_code == 201, r.text
    return r.json()["workspace_id"]


def new_user(client: Any, workspace_id: str | None = None, role: str = "user", name: str | None = None) -> dict:
    """A new user: ``POST /v1/admin/users``'s body plus ``headers`` (its Bearer header)."""
    workspace_id = workspace_id or new_workspace(client)
    r = client.post("/v1/admin/users", headers=ADMIN, json={"workspace_id": workspace_id, "role": role, "name": name})
    assert r.status_code == 201, r.text
    return r.json() | {"headers": bearer(r.json()["api_key"])}


def upload(client: Any, user: dict, path_or_bytes: Any, name: str | None = None, content_type: str = "video/mp4"):
    """``POST /v1/uploads`` of a file (path) or bytes as ``user``; returns the response."""
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else path_or_bytes.read_bytes()
    filename = name or getattr(path_or_bytes, "name", "clip.mp4")
    return client.post("/v1/uploads", headers=user["headers"], files={"file": (filename, data, content_type)})


def new_user_at(base: str, **kwargs: Any) -> dict:
    """``new_user`` on the API served at ``base`` (for tests that post without a client)."""
    import httpx

    with httpx.Client(base_url=base, timeout=30) as client:
        return new_user(client, **kwargs)
