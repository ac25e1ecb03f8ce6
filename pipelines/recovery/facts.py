"""The facts the recovery rules decide on (``pipelines.recovery.rules.VideoFacts``), read from
the store, the lake and the Dagster instance.

Which videos are watched, each tick (all indexed store queries, ``resources/store/watch.py``):
unfinished uploads and unsettled reservations older than the deadline (work in flight is by
nature few: the GPU admission caps it), plus delivered jobs and approval decisions as they
pass the deadline (a window from the cursor's watermark), which stay watched while they wait
on a run. Only for those are the lake's tables read, filtered to their videos.

Effect runs are watched by their own state (``Store.unfinished_runs``: queued or running,
queued before the deadline; migration 0013), not by their reservation: a free run reserves
nothing, and a run's reservation says nothing about where its work stands.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast

import dagster as dg
import polars as pl

from assets.runs.plan import deadline_of
from economics import ledger
from economics.telemetry import DISPATCHED_EVENT, TERMINAL_EVENTS
from pipelines.recovery.rules import REQUEUED_EVENT, RunFacts, VideoFacts
from pipelines.recovery.runs import partition_runs
from resources.lake import Lake
from resources.schemas import APPROVAL_REQUESTS, BEST_RESULT, EXECUTION_EVENTS, GALLERY_REVISIONS, PIPELINE_EVENTS
from resources.store.client import Store
from resources.store.errors import NotFound
from resources.store.remote import OPEN_STATES
from resources.store.runs import is_run_id

# A tick later than this many intervals after the previous one follows an outage (the daemon
# was down): every watched video is then given a full deadline from that tick, so the normal
# sensors get the first chance to move it on.
OUTAGE_INTERVALS = 3


@dataclass
class Cursor:
    """The sensor's cursor (JSON).

    Attributes:
        watermark: deliveries and decisions up to this time were taken under watch.
        watch: video id → when it came under watch (delivered or decided videos still
            waiting on a run).
        last_tick: this sensor's previous tick.
        resumed_at: its first tick after an outage (counts as activity for every video).
    """

    watermark: datetime | None = None
    watch: dict[str, datetime] = field(default_factory=dict)
    last_tick: datetime | None = None
    resumed_at: datetime | None = None

    @classmethod
    def load(cls, raw: str | None) -> Cursor:
        if not raw:
            return cls()
        doc = json.loads(raw)

        def at(value: str | None) -> datetime | None:
            return datetime.fromisoformat(value) if value else None

        return cls(
            watermark=at(doc.get("watermark")),
            watch={v: datetime.fromisoformat(t) for v, t in doc.get("watch", {}).items()},
            last_tick=at(doc.get("last_tick")),
            resumed_at=at(doc.get("resumed_at")),
        )

    def dump(self) -> str:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return json.dumps(
            {
                "watermark": iso(self.watermark),
                "watch": {v: t.isoformat() for v, t in sorted(self.watch.items())},
                "last_tick": iso(self.last_tick),
                "resumed_at": iso(self.resumed_at),
            }
        )

    def tick(self, now: datetime, interval_s: float) -> None:
        """Note this tick; a first tick, or one after an outage, sets ``resumed_at``."""
        if self.last_tick is None or now - self.last_tick > timedelta(seconds=OUTAGE_INTERVALS * interval_s + 30):
            self.resumed_at = now
        self.last_tick = now


@dataclass(frozen=True)
class Watched:
    """A watched video: since when, its user (for a notification) when known, and whether its
    upload is still unfinished in the store."""

    since: datetime
    user_id: str | None = None
    unfinished: bool = False


def watched(store: Store, cursor: Cursor, now: datetime, stuck_after_s: float, horizon_h: float) -> dict[str, Watched]:
    """The videos to decide on this tick (module docstring); moves the cursor's watermark."""
    before = now - timedelta(seconds=stuck_after_s)
    out: dict[str, Watched] = {}
    for u in store.stale_uploads(before):
        out[u["video_id"]] = Watched(u["uploaded_at"], u["user_id"], unfinished=True)
    # Effect runs reserve and consume in the same ledger; they are not videos (no phases to
    # re-queue) and are left to their own run.
    for r in store.open_reservations(before):
        if r["correlation_id"] and not is_run_id(r["correlation_id"]) and r["correlation_id"] not in out:
            out[r["correlation_id"]] = Watched(r["occurred_at"], r["user_id"])
    after = cursor.watermark or now - timedelta(hours=horizon_h)
    if after < before:
        for e in store.settlements_between(ledger.CONSUME, after, before):
            if e["correlation_id"] and not is_run_id(e["correlation_id"]):
                cursor.watch.setdefault(e["correlation_id"], e["occurred_at"])
        for d in store.approvals_decided_between(after, before):
            if d["correlation_id"]:
                cursor.watch.setdefault(d["correlation_id"], d["decided_at"])
        cursor.watermark = before
    for video_id, since in cursor.watch.items():
        out.setdefault(video_id, Watched(since))
    return out


def _latest(*values: datetime | None) -> datetime | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def gather(
    lake: Lake, store: Store, instance: dg.DagsterInstance, videos: dict[str, Watched], resumed_at: datetime | None
) -> dict[str, VideoFacts]:
    """``VideoFacts`` of each watched video: one filtered read per lake table for all of
    them, the store's remote tasks and decisions, and the instance's runs per partition."""
    if not videos:
        return {}
    ids = sorted(videos)
    events = lake.scan(PIPELINE_EVENTS).filter(pl.col("correlation_id").is_in(ids))
    events = events.select("correlation_id", "event_type", "occurred_at", "payload").collect()
    tasks = (
        lake.scan(EXECUTION_EVENTS)
        .filter(pl.col("correlation_id").is_in(ids) & pl.col("event_type").is_in([DISPATCHED_EVENT, *TERMINAL_EVENTS]))
        .select("correlation_id", "event_type", "task_id")
        .collect()
    )
    best = dict(lake.read(BEST_RESULT, pl.col("video_id").is_in(ids)).select("video_id", "outcome").iter_rows())
    approvals = dict(
        lake.read(APPROVAL_REQUESTS, pl.col("video_id").is_in(ids)).select("video_id", "approval_id").iter_rows()
    )
    revised = set(lake.read(GALLERY_REVISIONS, pl.col("video_id").is_in(ids))["video_id"].to_list())
    out = {}
    for video_id in ids:
        mine = events.filter(pl.col("correlation_id") == video_id)
        requeued: dict[str, int] = {}
        for payload in mine.filter(pl.col("event_type") == REQUEUED_EVENT)["payload"].to_list():
            p = json.loads(payload)["phase"]
            requeued[p] = requeued.get(p, 0) + 1
        own_tasks = tasks.filter(pl.col("correlation_id") == video_id)
        live, last_start = partition_runs(instance, video_id)
        approval_id = approvals.get(video_id)
        out[video_id] = VideoFacts(
            video_id=video_id,
            since=videos[video_id].since,
            last_activity=_latest(mine["occurred_at"].max() if mine.height else None, last_start, resumed_at),
            live_run=live,
            events=frozenset(mine["event_type"].to_list()),
            dispatched=frozenset(own_tasks.filter(pl.col("event_type") == DISPATCHED_EVENT)["task_id"].to_list()),
            finished=frozenset(own_tasks.filter(pl.col("event_type").is_in(TERMINAL_EVENTS))["task_id"].to_list()),
            remote_states=tuple(r["state"] for r in store.remote_tasks(OPEN_STATES, video_id)),
            best_outcome=best.get(video_id),
            approval_requested=approval_id is not None,
            decided=approval_id is not None and _decided(store, approval_id),
            revised=video_id in revised,
            requeued=requeued,
        )
    return out


def _decided(store: Store, approval_id: str) -> bool:
    try:
        store.decision("approval", approval_id)
    except NotFound:
        return False
    return True


def gather_runs(
    lake: Lake,
    store: Store,
    instance: dg.DagsterInstance,
    runs: list[dict],
    resumed_at: datetime | None,
    run_deadline_s: float,
) -> dict[str, RunFacts]:
    """``RunFacts`` of each unfinished effect run (``runs``: their store rows): one filtered
    read of ``pipeline_events`` for all of them, the store's remote tasks and the instance's
    runs per partition."""
    if not runs:
        return {}
    ids = sorted(r["run_id"] for r in runs)
    events = (
        lake.scan(PIPELINE_EVENTS)
        .filter(pl.col("correlation_id").is_in(ids))
        .select("correlation_id", "event_type", "occurred_at")
        .collect()
    )
    out = {}
    for run in runs:
        run_id = run["run_id"]
        mine = events.filter(pl.col("correlation_id") == run_id)
        live, last_start = partition_runs(instance, run_id)
        last_event = cast(datetime | None, mine["occurred_at"].max() if mine.height else None)
        out[run_id] = RunFacts(
            run_id=run_id,
            status=run["status"],
            since=run["created_at"],
            deadline=deadline_of(run["started_at"], run_deadline_s) if run["started_at"] else None,
            last_activity=_latest(last_event, last_start, resumed_at),
            live_run=live,
            remote_states=tuple(r["state"] for r in store.remote_tasks(OPEN_STATES, run_id)),
            requeued=mine.filter(pl.col("event_type") == REQUEUED_EVENT).height,
        )
    return out
