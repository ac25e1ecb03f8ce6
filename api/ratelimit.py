"""Rate limits per client IP and per API key (the ``limits`` library), answered 429.

Two budgets per minute, both from Settings (0 switches one off):

- per client IP (``EFFECTLAKE_RATE_LIMIT_IP_PER_MINUTE``): checked first, before any
  authentication, so guessing keys costs the guesser its own budget;
- per API key (``EFFECTLAKE_RATE_LIMIT_KEY_PER_MINUTE``): the ``Authorization: Bearer`` or
  ``X-Admin-Key`` credential, identified by its SHA-256 (never stored in clear). A key that
  turns out invalid only spends a budget of its own; nobody can spend another's budget
  without holding that key.

The algorithm is the sliding-window counter (``limits.strategies.SlidingWindowCounterRateLimiter``):
two counters per identity approximate a true sliding minute, without the double burst at a
fixed window's edge and without the moving window's one entry per request. Storage: Redis
in production (``EFFECTLAKE_DEPLOYMENT=prod``, ``REDIS_URL``; every API process shares the
counters; keys under ``EFFECTLAKE_RATE_LIMIT_PREFIX``), process memory embedded. If Redis
fails, requests pass (fail open) and the failure is logged: the limits protect the API, they
must not take it down.

Every limited response says where the caller stands (``RateLimit-Limit``,
``RateLimit-Remaining``, ``RateLimit-Reset`` in seconds, of the tighter budget: the
IETF httpapi RateLimit header fields); a 429 adds ``Retry-After`` (seconds). ``/healthz``
and ``/metrics`` are not limited (probes and scrapers).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from fastapi import FastAPI, Request, Response
from limits import RateLimitItemPerMinute
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import SlidingWindowCounterRateLimiter
from starlette.concurrency import run_in_threadpool

from api import metrics
from api.problems import problem_response
from resources.settings import Settings

PROD = "prod"
EXEMPT_PATHS = frozenset({"/healthz", "/metrics"})
IP, KEY = "ip", "key"

log = structlog.get_logger("effectlake.api.ratelimit")


class RateLimitMisconfigured(RuntimeError):
    """A production API without Redis for its counters (each process would count alone)."""


@dataclass(frozen=True)
class Standing:
    """Where one identity stands in one budget.

    Attributes:
        scope: ``ip`` or ``key``.
        allowed: this request fits the budget.
        limit: requests per minute.
        remaining: requests left in the current window.
        reset_s: seconds until the budget has room again (≥ 1 when exhausted).
    """

    scope: str
    allowed: bool
    limit: int
    remaining: int
    reset_s: int


def storage_for(settings: Settings) -> Storage:
    """Redis (prod) or memory (embedded) counters.

    Raises:
        RateLimitMisconfigured: ``deployment == "prod"`` without ``REDIS_URL``.
    """
    if settings.deployment != PROD:
        return MemoryStorage()
    if not settings.redis_url:
        raise RateLimitMisconfigured("a production API keeps its rate-limit counters in Redis: set REDIS_URL")
    return RedisStorage(settings.redis_url, key_prefix=settings.rate_limit_prefix, wrap_exceptions=True)


def credential_id(request: Request) -> str | None:
    """SHA-256 (hex, 32 digits) of the request's API key (Bearer or ``X-Admin-Key``), or None."""
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    credential = token.strip() if scheme.lower() == "bearer" else ""
    credential = credential or request.headers.get("x-admin-key", "").strip()
    return hashlib.sha256(credential.encode()).hexdigest()[:32] if credential else None


class RateLimiter:
    """The two budgets over one storage.

    Args:
        storage: a ``limits`` storage (``storage_for``).
        per_ip_per_minute / per_key_per_minute: budgets, requests per minute (0 = no limit).
    """

    def __init__(self, storage: Storage, per_ip_per_minute: int, per_key_per_minute: int):
        self.storage = storage
        self.strategy = SlidingWindowCounterRateLimiter(storage)
        self.items = {
            scope: RateLimitItemPerMinute(n, namespace=f"effectlake-{scope}")
            for scope, n in ((IP, per_ip_per_minute), (KEY, per_key_per_minute))
            if n > 0
        }

    def _standing(self, scope: str, identity: str) -> Standing:
        item = self.items[scope]
        allowed = self.strategy.hit(item, identity)
        stats = self.strategy.get_window_stats(item, identity)
        reset_s = max(0, math.ceil(stats.reset_time - time.time()))
        return Standing(scope, allowed, item.amount, stats.remaining, reset_s if allowed else max(1, reset_s))

    def check(self, ip: str, key_id: str | None) -> list[Standing]:
        """Spend one request of each budget that applies, IP first; stops at the first
        refusal (a refused request spends nothing further). Raises ``StorageError``."""
        standings: list[Standing] = []
        for scope, identity in ((IP, ip), (KEY, key_id)):
            if scope in self.items and identity:
                standings.append(self._standing(scope, identity))
                if not standings[-1].allowed:
                    break
        return standings


def headers_of(standings: list[Standing]) -> dict[str, str]:
    """RateLimit header fields of the tightest standing (a refused one, else the one with
    the fewest requests left); Retry-After too when refused."""
    if not standings:
        return {}
    tightest = min(standings, key=lambda s: (s.allowed, s.remaining))
    headers = {
        "RateLimit-Limit": str(tightest.limit),
        "RateLimit-Remaining": str(tightest.remaining),
        "RateLimit-Reset": str(tightest.reset_s),
    }
    if not tightest.allowed:
        headers["Retry-After"] = str(tightest.reset_s)
    return headers


def install_rate_limits(app: FastAPI, settings: Settings) -> None:
    """Add the rate-limit middleware to ``app`` (inside the tracing and metrics middlewares).

    Raises:
        RateLimitMisconfigured: see ``storage_for``.
    """
    limiter = RateLimiter(storage_for(settings), settings.rate_limit_ip_per_minute, settings.rate_limit_key_per_minute)
    app.state.rate_limiter = limiter

    @app.middleware("http")
    async def rate_limit(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if request.url.path in EXEMPT_PATHS or not limiter.items:
            return await call_next(request)
        ip = request.client.host if request.client else "unknown"
        try:
            # Redis calls block: off the event loop.
            standings = await run_in_threadpool(limiter.check, ip, credential_id(request))
        except StorageError as exc:
            log.warning("rate limiter storage failed; request let through", error=str(exc))
            return await call_next(request)
        headers = headers_of(standings)
        refused = next((s for s in standings if not s.allowed), None)
        if refused is not None:
            metrics.of(request).rate_limited.labels(scope=refused.scope).inc()
            who = "this client address" if refused.scope == IP else "this API key"
            detail = f"More than {refused.limit} requests a minute from {who}; retry in {refused.reset_s} s."
            return problem_response(request, 429, "rate_limited", detail, headers)
        response = await call_next(request)
        response.headers.update(headers)
        return response
