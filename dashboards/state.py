"""What every page shares: the request context (lake locations, the real/simulated filter,
"as of", the signed-in admin) and the cached views of the lake.

Views are cached by Streamlit (``st.cache_data``) under the Delta versions of the tables
they read, so a page shows new data as soon as a job or a decision commits it, and moving
between pages costs no re-read while nothing changed. Cached values are aggregates (a few
thousand rows at most), never the raw million-row table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import polars as pl
import streamlit as st

from dashboards import data
from dashboards.sources import LakeReader
from economics.decomposition import MarginChange, why_margin_moved
from economics.forecast import Forecast
from resources.catalog import Catalog
from resources.lake import Lake
from resources.manifest_store import ManifestStore
from resources.media import MediaStore
from resources.schemas import (
    EXECUTION_COSTS,
    INGESTED_VIDEO,
    JOB_MARGINS,
    MARGINALITY_WINDOWS,
    PROVIDER_EFFECT_MATRIX,
    PROVIDER_OUTPUTS,
    PROVIDER_REGISTRY,
    QUALITY_SCORES,
    ROUTING_ESTIMATES,
    ROUTING_MANIFESTS,
    TableSpec,
)
from resources.services.approvals import pending_requests
from resources.services.recommendations import recommendations_with_status
from resources.settings import Settings
from resources.store.client import Store

CTX_KEY = "_effectlake_ctx"
# Cached entries per view: a few sources × as-of minutes × admins' choices.
ENTRIES = 32


@dataclass(frozen=True)
class Context:
    """The request's view of the platform.

    Attributes:
        settings: resources.settings.Settings read from the environment at this run.
        source: 'real' or 'simulated' (the sidebar filter).
        now: "as of" — the windows' end, the current minute (UTC).
        admin: who is signed in (recorded with every decision).
    """

    settings: Settings
    source: str
    now: datetime
    admin: str

    @property
    def lake(self) -> Lake:
        return Lake(uri=self.settings.lake_uri)

    @property
    def store(self) -> Store:
        """The transactional store (decisions), one per database URL for the process."""
        return _store(self.settings.database_url)

    @property
    def uri(self) -> str:
        return self.settings.lake_uri

    @property
    def manifest_store(self) -> ManifestStore:
        """The routing-manifest store (a routing change republishes it)."""
        return ManifestStore(uri=self.settings.manifest_uri, key_prefix=self.settings.manifest_key_prefix)

    @property
    def catalog(self) -> Catalog:
        """The shipped catalogs (list prices, rate card)."""
        return Catalog(data_dir=self.settings.data_dir, reference_suite_path=self.settings.reference_suite_path)


@lru_cache(maxsize=4)
def _store(url: str) -> Store:
    # One engine (and connection pool) per database for the dashboard's process, not per rerun.
    return Store(url)


def set_current(ctx: Context) -> None:
    """Make ``ctx`` the context of this run (app.py, before the page runs)."""
    st.session_state[CTX_KEY] = ctx


def current() -> Context:
    """The context app.py set for this run."""
    return st.session_state[CTX_KEY]


def now_minute() -> datetime:
    """The current minute, UTC (see ``dashboards.data.floor_minute``)."""
    return data.floor_minute(datetime.now(UTC))


def _v(ctx: Context, *specs: TableSpec) -> tuple[int, ...]:
    lake = ctx.lake
    return tuple(lake.version(s) for s in specs)


@st.cache_resource(show_spinner=False)
def _reader(uri: str) -> LakeReader:
    return LakeReader(Lake(uri=uri))


# -- execution_costs views -------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=ENTRIES)
def _hud(uri: str, version: tuple, source: str, now: datetime) -> pl.DataFrame:
    costs = _reader(uri).costs(source, start=now - timedelta(days=7), end=now)
    return data.hud_windows(costs, now)


def hud(ctx: Context) -> pl.DataFrame:
    """``data.hud_windows`` for the context's source and minute."""
    return _hud(ctx.uri, _v(ctx, EXECUTION_COSTS), ctx.source, ctx.now)


@st.cache_data(show_spinner=False, max_entries=ENTRIES)
def _cube(uri: str, version: tuple, source: str) -> pl.DataFrame:
    return _reader(uri).hourly_cube(source)


def cube(ctx: Context) -> pl.DataFrame:
    """``LakeReader.hourly_cube`` of the context's source."""
    return _cube(ctx.uri, _v(ctx, EXECUTION_COSTS), ctx.source)


@st.cache_data(show_spinner=False, max_entries=ENTRIES)
def _forecast(uri: str, version: tuple, source: str, hour: datetime) -> Forecast | None:
    return data.forecast(_cube(uri, version, source), hour)


def forecast(ctx: Context) -> Forecast | None:
    """Next-24h forecast from the complete hours before now (refitted once an hour)."""
    return _forecast(ctx.uri, _v(ctx, EXECUTION_COSTS), ctx.source, ctx.now.replace(minute=0))


@st.cache_data(show_spinner=False, max_entries=ENTRIES)
def _decomposition(uri: str, version: tuple, source: str, a: tuple, b: tuple) -> MarginChange:
    lo, hi = min(a[0], b[0]), max(a[1], b[1])
    costs = _reader(uri).costs(source, start=lo, end=hi)
    return why_margin_moved(costs, a, b)


def decomposition(ctx: Context, a: tuple[datetime, datetime], b: tuple[datetime, datetime]) -> MarginChange:
    """``economics.decomposition.why_margin_moved`` between periods ``a`` and ``b``."""
    return _decomposition(ctx.uri, _v(ctx, EXECUTION_COSTS), ctx.source, tuple(a), tuple(b))


DRILL_COLUMNS = (
    "finished_at",
    "task_id",
    "video_id",
    "provider_id",
    "effect_type",
    "status",
    "selection",
    "instance_type",
    "compute_seconds",
    "duration_ms",
    "cost_usd",
    "revenue_usd",
    "tokens_charged",
    "margin",
)


def executions(ctx: Context, start: datetime, end: datetime, where: dict[str, str], limit: int = 500) -> pl.DataFrame:
    """The newest ``limit`` executions of the context's source in (start, end] matching
    ``where`` (drill-down; not cached: it is one query, bounded by ``limit``)."""
    return _reader(ctx.uri).costs(ctx.source, start, end, DRILL_COLUMNS, where=where, limit=limit)


@st.cache_data(show_spinner=False, max_entries=ENTRIES)
def _matrix(uri: str, version: tuple, source: str, since: datetime | None, now: datetime) -> pl.DataFrame:
    reader = _reader(uri)
    runs = reader.costs(
        source,
        start=since,
        end=None,
        columns=(
            "task_id",
            "provider_id",
            "effect_type",
            "status",
            "duration_ms",
            "cost_usd",
            "tokens_charged",
            "cost_tokens",
        ),
    )
    quality = (
        reader.table(QUALITY_SCORES)
        if source == "real"
        else pl.DataFrame(schema={"task_id": pl.String, "composite": pl.Float64})
    )
    return data.execution_matrix(runs, quality, now)


def execution_matrix(ctx: Context, since: datetime | None) -> pl.DataFrame:
    """Quality × cost × speed per provider × effect type from the executions since ``since``."""
    return _matrix(ctx.uri, _v(ctx, EXECUTION_COSTS, QUALITY_SCORES), ctx.source, since, ctx.now)


@st.cache_data(show_spinner=False, max_entries=ENTRIES)
def _job_kinds(uri: str, version: tuple, source: str, start: datetime, end: datetime) -> pl.DataFrame:
    return data.job_kind_totals(_reader(uri).job_kind_totals(source, start, end))


def job_kinds(ctx: Context, window: timedelta) -> pl.DataFrame:
    """``data.job_kind_totals`` of the context's source over the ``window`` ending now."""
    return _job_kinds(ctx.uri, _v(ctx, EXECUTION_COSTS), ctx.source, ctx.now - window, ctx.now)


def jobs_by_kind(ctx: Context, window: timedelta) -> pl.DataFrame:
    """``data.jobs_by_kind`` of gold job_margins over the ``window`` ending now (real jobs:
    simulated executions have no ledger)."""
    return data.jobs_by_kind(table(ctx, JOB_MARGINS), ctx.now - window)


# -- other tables ----------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=ENTRIES)
def _table(uri: str, version: tuple, name: str) -> pl.DataFrame:
    from resources.schemas import BY_NAME

    return _reader(uri).table(BY_NAME[name])


def table(ctx: Context, spec: TableSpec) -> pl.DataFrame:
    """A small declared table, whole (cached by its version)."""
    return _table(ctx.uri, _v(ctx, spec), spec.name)


def windows(ctx: Context) -> pl.DataFrame:
    """Gold marginality_windows rows of the context's source."""
    return table(ctx, MARGINALITY_WINDOWS).filter(pl.col("source") == ctx.source)


def benchmark(ctx: Context) -> pl.DataFrame:
    """The latest benchmark's provider × effect matrix."""
    return data.benchmark_matrix(table(ctx, PROVIDER_EFFECT_MATRIX))


def health(ctx: Context) -> pl.DataFrame:
    """Latest health snapshot per provider."""
    return data.latest_health(table(ctx, PROVIDER_REGISTRY))


def quality_by_selection(ctx: Context) -> pl.DataFrame:
    """quality_scores with each task's selection (ranked / exploration / shadow)."""
    q = table(ctx, QUALITY_SCORES).select("task_id", "provider_id", "effect_type", "composite")
    sel = table(ctx, PROVIDER_OUTPUTS).select("task_id", "selection")
    return q.join(sel, on="task_id", how="left")


def manifest_history(ctx: Context) -> pl.DataFrame:
    """``data.manifest_history`` of gold routing_manifests."""
    return data.manifest_history(table(ctx, ROUTING_MANIFESTS))


def estimate_history(ctx: Context) -> pl.DataFrame:
    """``data.estimate_history`` (DR) of gold routing_estimates."""
    return data.estimate_history(table(ctx, ROUTING_ESTIMATES))


def manifest(ctx: Context) -> dict | None:
    """The current routing manifest from the manifest store (file or Redis)."""
    return ctx.manifest_store.read()


def recommendations(ctx: Context) -> pl.DataFrame:
    """Current recommendations with their status (``resources.services.recommendations``; not cached:
    a decision must show at once)."""
    return recommendations_with_status(ctx.lake, ctx.store)


def pending_approvals(ctx: Context) -> pl.DataFrame:
    """Approval requests without a decision, oldest first (``resources.services.approvals``)."""
    return pending_requests(ctx.lake, ctx.store)


def approval_item(ctx: Context, request: dict) -> data.ApprovalItem:
    """The request with every output's media key (see ``data.approval_item``)."""
    vid = pl.col("video_id") == request["video_id"]
    outputs = ctx.lake.read(PROVIDER_OUTPUTS, vid)
    video = ctx.lake.read(INGESTED_VIDEO, vid)
    return data.approval_item(request, outputs, video["proxy_key"][0] if video.height else None)


@st.cache_data(show_spinner=False, max_entries=256, ttl=3600)
def _media(media_uri: str, key: str) -> bytes | None:
    try:
        with MediaStore(uri=media_uri).open(key) as fh:
            return fh.read()
    except FileNotFoundError:
        return None


def media_bytes(ctx: Context, key: str | None) -> bytes | None:
    """The bytes stored under ``key`` in the media store (None when absent). Keys name
    immutable objects (content hashes, task ids), so they are cached for an hour."""
    return _media(ctx.settings.media_uri, key) if key else None


def parameter_changes(ctx: Context, limit: int = 500) -> list[dict]:
    """The runtime parameters' audit trail, newest first (the store; not cached: a rollback
    must show at once)."""
    return ctx.store.parameter_changes(limit=limit, newest_first=True)
