"""Rate limits per API key and per client address: 429 problems with Retry-After and the
RateLimit header fields, counted in process memory embedded and in Redis in production
(shared by every API process)."""

from __future__ import annotations

import uuid

import httpx
import pytest
import redis

from api.app import create_app
from api.problems import PROBLEM_MEDIA_TYPE
from api.ratelimit import RateLimitMisconfigured
from tests.api_users import ADMIN_KEY
from tests.server import serve

REDIS_URL = "redis://127.0.0.1:6379/0"


def _key(n: int) -> dict:
    return {"Authorization": f"Bearer elk_notakey{n}_secret"}


def _assert_refused(r: httpx.Response, scope_phrase: str) -> None:
    assert r.status_code == 429, r.text
    assert r.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert r.json()["code"] == "rate_limited" and scope_phrase in r.json()["detail"]
    retry = int(r.headers["retry-after"])
    assert 1 <= retry <= 60
    assert r.headers["ratelimit-remaining"] == "0" and int(r.headers["ratelimit-reset"]) == retry


def _exercise(base: str, limit_key: int) -> None:
    with httpx.Client(base_url=base) as c:
        for i in range(limit_key):
            r = c.get("/v1/effects", headers=_key(1))
            assert r.status_code == 200, r.text
            assert r.headers["ratelimit-limit"] == str(limit_key)
            assert r.headers["ratelimit-remaining"] == str(limit_key - 1 - i)
        _assert_refused(c.get("/v1/effects", headers=_key(1)), "this API key")
        assert c.get("/v1/effects", headers=_key(2)).status_code == 200  # another key has its own budget
        assert c.get("/healthz", headers=_key(1)).status_code == 200  # probes are not limited


def test_memory_backend_limits_per_key_then_per_address(settings):
    limited = settings.model_copy(update={"rate_limit_key_per_minute": 3, "rate_limit_ip_per_minute": 6})
    with serve(create_app(limited)) as base:
        _exercise(base, 3)  # 5 requests from this address so far
        with httpx.Client(base_url=base) as c:
            assert c.get("/v1/effects", headers=_key(3)).status_code == 200  # the 6th
            _assert_refused(c.get("/v1/effects", headers=_key(4)), "this client address")
            r = c.get("/metrics")
    assert 'effectlake_rate_limited_total{scope="key"} 1.0' in r.text
    assert 'effectlake_rate_limited_total{scope="ip"} 1.0' in r.text


def test_zero_switches_a_limit_off(settings):
    unlimited = settings.model_copy(update={"rate_limit_key_per_minute": 0, "rate_limit_ip_per_minute": 0})
    with serve(create_app(unlimited)) as base, httpx.Client(base_url=base) as c:
        responses = [c.get("/v1/effects", headers=_key(1)) for _ in range(5)]
    assert all(r.status_code == 200 and "ratelimit-limit" not in r.headers for r in responses)


@pytest.fixture
def redis_prefix():
    """A unique key prefix on the local Redis; its keys are deleted afterwards."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.skip(f"Redis at {REDIS_URL} unreachable: {exc}")
    prefix = f"effectlake-test-rl-{uuid.uuid4().hex[:12]}"
    yield prefix, client
    keys = list(client.scan_iter(f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


def test_redis_backend_in_production_is_shared_by_every_api_process(settings, redis_prefix):
    prefix, client = redis_prefix
    prod = settings.model_copy(
        update={
            "deployment": "prod",
            "admin_api_key": ADMIN_KEY,
            "upload_signing_secret": "s" * 43,
            "redis_url": REDIS_URL,
            "rate_limit_prefix": prefix,
            "rate_limit_key_per_minute": 4,
            "rate_limit_ip_per_minute": 100,
        }
    )
    with serve(create_app(prod)) as first, serve(create_app(prod)) as second, httpx.Client() as c:
        assert c.get(f"{first}/v1/effects", headers=_key(1)).status_code == 200
        assert c.get(f"{second}/v1/effects", headers=_key(1)).status_code == 200
        assert c.get(f"{first}/v1/effects", headers=_key(1)).status_code == 200
        r = c.get(f"{second}/v1/effects", headers=_key(1))
        assert r.status_code == 200 and r.headers["ratelimit-remaining"] == "0"
        _assert_refused(c.get(f"{first}/v1/effects", headers=_key(1)), "this API key")
    assert list(client.scan_iter(f"{prefix}*")), "the counters were not kept in Redis"
    # The key is stored hashed, never in clear.
    assert not any(b"elk_notakey" in k for k in client.scan_iter(f"{prefix}*"))


def test_production_without_redis_refuses_to_start(settings):
    prod = settings.model_copy(
        update={"deployment": "prod", "admin_api_key": ADMIN_KEY, "redis_url": None, "upload_signing_secret": "s" * 43}
    )
    with pytest.raises(RateLimitMisconfigured, match="REDIS_URL"):
        create_app(prod)
