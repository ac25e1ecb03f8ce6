"""``GET /metrics``: the API's operational figures in the Prometheus text format.

What is counted (all names start with ``effectlake_``):

- ``http_requests_total{method, route, status}`` and
  ``http_request_duration_seconds{method, route}`` (histogram): ``route`` is the route's
  template (``/v1/videos/{video_id}``), never the raw path, so ids do not multiply series;
  a path no route matched is ``<unmatched>``.
- ``uploads_accepted_total`` and ``uploads_rejected_total{code}``: answers of the POST routes
  tagged ``uploads`` (2xx = accepted; an error = rejected, by its problem code).
- ``rate_limited_total{scope}``: requests refused by a rate limit (``ip`` or ``key``).
- ``admission_decisions_total{decision}``: GPU admission decisions (``admit``, ``queue``,
  ``refuse``) at upload time.
- ``store_busy_total``: requests answered 503 because the store stayed locked.

Operational figures only: nothing about money (no margins, revenue, prices or tokens charged;
a test checks the names and labels). Those stay behind the admin dashboard.

Who may read it: clients whose address is in ``EFFECTLAKE_METRICS_ALLOW`` (CIDRs, default the
loopback). An allow-list and not the admin key, because a scraper's configuration would then
hold the key that approves effects and credits tokens; an address check gives the monitoring
network read access to counters and nothing else. Others get 403. Behind a proxy the
proxy's address is the client: keep ``/metrics`` off the public route (scrape the
instances directly).

Each app has its own registry (``app.state.metrics``), so several apps in one process (tests)
never share or clash.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from api.problems import ProblemError, problem_responses
from resources.settings import Settings

UNMATCHED = "<unmatched>"
UPLOADS_TAG = "uploads"
NOT_OBSERVED = frozenset({"/metrics"})


class ApiMetrics:
    """The API's metrics in a registry of their own (module docstring lists them)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "effectlake_http_requests", "HTTP requests answered", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "effectlake_http_request_duration_seconds",
            "Time to answer an HTTP request (until the handler returned), seconds",
            ["method", "route"],
            registry=r,
        )
        self.uploads_accepted = Counter("effectlake_uploads_accepted", "Uploads accepted", registry=r)
        self.uploads_rejected = Counter(
            "effectlake_uploads_rejected", "Uploads refused, by problem code", ["code"], registry=r
        )
        self.rate_limited = Counter(
            "effectlake_rate_limited", "Requests refused by a rate limit", ["scope"], registry=r
        )
        self.admission = Counter(
            "effectlake_admission_decisions", "GPU admission decisions at upload time", ["decision"], registry=r
        )
        self.store_busy = Counter("effectlake_store_busy", "Requests the busy store could not serve", registry=r)


def of(request: Request) -> ApiMetrics:
    """The metrics of the app serving ``request``."""
    return request.app.state.metrics


def _allowed_networks(settings: Settings) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(c.strip(), strict=False) for c in settings.metrics_allow.split(",") if c.strip()]


def client_allowed(host: str | None, networks: list) -> bool:
    """Whether ``host`` (an IP address as text) is in one of ``networks``; False when it is
    not an address at all."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    return any(address.version == n.version and address in n for n in networks)


def install_metrics(app: FastAPI, settings: Settings) -> None:
    """Create ``app.state.metrics``, the observing middleware and ``GET /metrics``.

    Raises:
        ValueError: an ``EFFECTLAKE_METRICS_ALLOW`` entry that is not a CIDR.
    """
    m = app.state.metrics = ApiMetrics()
    networks = _allowed_networks(settings)

    @app.middleware("http")
    async def observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if request.url.path in NOT_OBSERVED:
            return await call_next(request)
        start = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = request.scope.get("route")
            template = getattr(route, "path", UNMATCHED)
            m.requests.labels(request.method, template, str(status)).inc()
            m.latency.labels(request.method, template).observe(time.perf_counter() - start)
            if request.method == "POST" and UPLOADS_TAG in (getattr(route, "tags", None) or ()):
                if status < 400:
                    m.uploads_accepted.inc()
                else:
                    code = getattr(request.state, "problem_code", None) or "internal_error"
                    m.uploads_rejected.labels(code).inc()

    @app.get(
        "/metrics",
        tags=["health"],
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}}
        | problem_responses(403),
    )
    def metrics(request: Request) -> Response:
        """Operational metrics (Prometheus text format), for clients in ``EFFECTLAKE_METRICS_ALLOW``."""
        if not client_allowed(request.client.host if request.client else None, networks):
            raise ProblemError(403, "metrics_forbidden", "/metrics is served to the monitoring network only")
        return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
