"""The routing-manifest store: file (embedded default) and Redis (the server on this
machine), same behaviour."""

import uuid

import pytest
import redis

from resources.manifest_store import ManifestStore

REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture(params=["file", "redis"])
def store(request, tmp_path):
    if request.param == "file":
        yield ManifestStore(uri=str(tmp_path / "m" / "routing_manifest.json"))
        return
    client = redis.Redis.from_url(REDIS_URL)
    client.ping()  # the server runs on this machine (CI starts it): no skip
    prefix = f"test-{uuid.uuid4().hex}"
    yield ManifestStore(uri=REDIS_URL, key_prefix=prefix)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


def _manifest(version: str) -> dict:
    return {
        "version": version,
        "published_at": "2026-11-21T12:00:00+00:00",
        "priority": "balanced",
        "effects": {"cartoon": [{"provider_id": "a", "rank": 1, "weight": 0.95}]},
    }


def test_read_before_publish_is_none_then_latest_wins(store):
    assert store.read() is None
    store.publish(_manifest("v1"))
    store.publish(_manifest("v2"))
    assert store.read()["version"] == "v2"
    assert [m["version"] for m in store.history(limit=10)] == ["v2", "v1"]
