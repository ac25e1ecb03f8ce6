"""Effect runs: ``run_outputs``, the Dagster work of one user's run of a published effect on
their own video (one ``runs`` partition per run; ``run_sensor`` starts ``effect_run_job``).

The API queued the run and reserved its price (``resources/services/runs.py``). Here, in
order, each step recorded under the run's correlation id (its ``run_id``):

1. the run moves to ``running`` (``RunStarted``);
2. the routable providers of its effect type come from the current routing manifest (the
   same ``current_rankings`` as M5, healthy local providers only);
3. **result cache**: for each of them, best rank first, the cache key of this input ×
   revision × parameters × provider version (``plan.cache_key``); a delivered run of the
   workspace with that key → its output is reused: no provider call, ``RunCacheHit``, the
   price charged (docs/architecture.md, "Effect runs": the cache policy);
4. the input is probed and validated with M1's limits and normalized with M1's proxy
   encoding (content-addressed, so every run of the same bytes makes it once);
5. **routing**: ONE provider by ``economics.routing.route_run`` (exploit 1 − ε, explore ε;
   the decision and its propensity stored with the run, ``RunRouted``), plus copies on the
   shadow providers (costed, never delivered nor charged);
6. **execution**: a local provider through M6's local runner
   (``assets.execution.local.run_local``: the same adapters, breakers, telemetry); a remote
   one (ComfyUI) is sent through M6's asynchronous path (a ``remote_tasks`` row under the
   run's id, the provider's admission, retries and breaker; ``assets.execution.remote``) and
   the Dagster run ends with the effect run still ``running``; the remote task sensor follows
   the task and, once it has finished, starts this asset again for the run, which collects
   the output (``_resume``) and goes on from there. Each attempt's output goes through M7's
   technical gate (``assets.quality.gate.technical_gate``); a failure or a refused output
   falls back to the next provider in rank order (``TaskFellBack``) while the run's deadline
   (``Settings.run_deadline_s``) allows — a remote task still running at the deadline is
   stopped (``RunDeadline``);
7. **settlement**: delivered → the reservation consumed, the output's key and cache key
   stored, ``RunDelivered``, the user notified; nothing delivered → refunded and told
   (the reason in ``RunRefunded``). Settling is one compare-and-set in the store with the
   ledger entry (``Store.settle_run``): whoever ends the run first (this asset, or the
   recovery sensor giving a stuck run up) settles it, once.

Every task's ``TaskDispatched`` / ``TaskSucceeded`` / ``TaskFailed`` goes to
``execution_events`` with ``job_kind = run``, so the economics job costs runs with the same
model as the test batches. A run already final (a re-executed partition) changes nothing:
its earlier rows are returned as they are (a remote task of it left uncollected is released).
"""

import json
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import dagster as dg
import polars as pl

from assets.common import frame
from assets.execution import remote as remote_tasks
from assets.execution.asset import PENDING, cleanup_failed, result_events, store_breaker
from assets.execution.local import dispatched_event, output_key, run_local
from assets.ingest.asset import ingest_limits
from assets.ingest.probe import VideoRejected, probe_video, validate
from assets.ingest.proxy import make_proxy
from assets.lineage import reads, store_table_key
from assets.logs import warn
from assets.partitions import effect_runs
from assets.quality.gate import QualityInputError, technical_gate
from assets.registry.asset import unhealthy_providers
from assets.runs.plan import (
    STAGE,
    attempt_order,
    cache_key,
    cache_task_id,
    deadline_of,
    input_proxy_key,
    provider_version,
    run_rng,
    run_task_id,
)
from economics.revenue import CACHE_SELECTION
from economics.routing import RunRoute, current_rankings, route_run
from economics.telemetry import RUN
from resources.catalog import Catalog
from resources.events import event, record_execution_events, record_pipeline_events, utcnow
from resources.lake import Lake
from resources.manifest_store import ManifestStore
from resources.media import MediaStore
from resources.notifications import notify_user
from resources.providers.base import TaskResult
from resources.providers.client import ProviderRegistry, RegistryView
from resources.providers.resilience import breaker_allows
from resources.refunds import refund_and_notify
from resources.schemas import PROVIDER_REGISTRY, RUN_OUTPUTS
from resources.settings import Settings
from resources.store import remote
from resources.store.client import Store
from resources.store.models import CACHE_DECISION
from resources.store.runs import DELIVERED, FAILED, FINAL, REFUNDED

RUN_KW = {
    "key_prefix": ["silver"],
    "partitions_def": effect_runs,
    # The Delta IO manager overwrites exactly this run's partition (predicate on run_id).
    "metadata": {"partition_expr": "run_id"},
    "kinds": {"polars", "deltalake"},
    "io_manager_key": "io_manager",
}
# Progress a user sees (GET /v1/runs/{id}) at each milestone: routed, each provider attempt
# started (the first at ATTEMPT, each fallback further on, at most GATED), gated, done = 1.
ROUTED, ATTEMPT, GATED = 0.2, 0.3, 0.9


class _Run:
    """One run's work: its store row, the clients, and what it has recorded so far (pipeline
    and execution events, ``run_outputs`` rows). Events are written in one commit each before
    the run is settled and once more at the end (``flush``)."""

    def __init__(
        self, context, run: dict, store: Store, lake: Lake, platform: Settings, catalog: Catalog, registry: RegistryView
    ):
        self.context, self.run, self.store, self.lake = context, run, store, lake
        self.platform, self.catalog, self.registry = platform, catalog, registry
        self.run_id, self.params = run["run_id"], json.loads(run["params"])
        self.pipeline: list[dict] = []
        self.executions: list[dict] = []
        self.rows: list[dict] = []

    def note(self, event_type: str, payload: dict, identity: str = "") -> None:
        self.pipeline.append(event(event_type, self.run_id, STAGE, payload, identity=identity))

    def row(self, task_id: str, provider_id: str, **fields) -> dict:
        row = {
            "run_id": self.run_id,
            "task_id": task_id,
            "user_id": self.run["user_id"],
            "slug": self.run["slug"],
            "revision_id": self.run["revision_id"],
            "effect_type": self.run["effect_type"],
            "provider_id": provider_id,
            "delivered": False,
            "finished_at": utcnow(),
            **fields,
        }
        self.rows.append(row)
        return row

    def flush(self) -> None:
        """Write the events recorded so far (execution events, then pipeline events) and
        start new lists."""
        record_execution_events(self.lake, self.executions)
        record_pipeline_events(self.lake, self.pipeline)
        self.pipeline, self.executions = [], []

    @property
    def status_url(self) -> str:
        return f"{self.platform.api_base_url.rstrip('/')}/v1/runs/{self.run_id}"

    def deliver(self, output: str, task_id: str, delivered_by: str, key: str, **state) -> bool:
        """Charge the reservation and store the outcome (``state``: run columns to set) in
        one compare-and-set, then tell the user; False (nothing done) when the run was
        already settled elsewhere (the recovery sensor gave it up meanwhile)."""
        tokens = self.run["tokens"]
        reason = f"effect run {self.run['slug']} delivered"
        # The tasks' events before the settlement: a worker dying right after it must not
        # leave a charged run whose compute the economics never see (nothing re-runs a
        # settled run). Dying before it instead leaves the run to the recovery sensor.
        self.flush()
        if self.store.settle_run(self.run_id, DELIVERED, reason, output_key=output, cache_key=key, **state) is None:
            return False
        name = self.catalog.effects()[self.run["effect_type"]]["display_name"]
        self.note(
            "RunDelivered",
            {"task_id": task_id, "provider_id": delivered_by, "output_key": output, "tokens_charged": tokens},
        )
        self.pipeline.append(
            notify_user(
                self.store,
                STAGE,
                self.run["user_id"],
                self.run_id,
                "run_ready",
                "Your video is ready",
                f"{name} is applied to your video ({tokens} tokens).",
                url=self.status_url,
            )
        )
        return True

    def refund(self, reason: str, **state) -> None:
        """Give the reservation back and store the outcome in one compare-and-set, then tell
        the user (``reason`` says why, in words a user understands); nothing when the run was
        already settled elsewhere."""
        self.flush()  # the tasks' events first: refund_and_notify appends its own after them
        status = REFUNDED if self.run["tokens"] > 0 else FAILED
        if (
            self.store.settle_run(
                self.run_id, status, f"effect run {self.run['slug']}: {reason}", error=reason, **state
            )
            is None
        ):
            return
        # The refund is made; this replays it (the ledger returns the first) for its tokens.
        refunded = refund_and_notify(
            self.store,
            self.lake,
            STAGE,
            f"effect run {self.run['slug']}: {reason}",
            outcome="RunRefunded",
            details={"reason": reason},
            user_id=self.run["user_id"],
            video_id=self.run_id,
            kind="run_refunded",
            title="Your video could not be made",
            body=f"{reason}. Your {{tokens}} tokens were refunded.",
            event_identity="refunded",
        )
        warn(
            self.context,
            f"run {self.run_id} refunded: {reason}",
            event_type="effect_run_refunded",
            economic_impact_usd=refunded * self.platform.token_usd_rate,  # the revenue given back
            urgency="medium",
            operator_action="None for one run; if refunds of one effect type climb, check its providers' "
            "health and breakers on the Providers page.",
            runbook="docs/runbooks/platform-logs.md#effect_run_refunded",
            run_id=self.run_id,
        )


@dg.asset(
    group_name="runs",
    output_required=False,
    deps=[store_table_key("effect_runs"), *reads(PROVIDER_REGISTRY)],
    **RUN_KW,
)
def run_outputs(
    context: dg.AssetExecutionContext,
    lake: dg.ResourceParam[Lake],
    media: dg.ResourceParam[MediaStore],
    providers: dg.ResourceParam[ProviderRegistry],
    manifest_store: dg.ResourceParam[ManifestStore],
    catalog: dg.ResourceParam[Catalog],
    platform: dg.ResourceParam[Settings],
    store: dg.ResourceParam[Store],
) -> Iterator[dg.Output]:
    """One row per provider task the run made (the routed provider, its fallbacks, the shadow
    copies) with its outcome, technical gate and whether it was delivered — a remote task
    still running is a ``pending`` row, replaced when it is collected —; or one ``cache`` row
    when a stored output was reused (module docstring). Nothing for a run refused before any
    provider ran (its input unreadable, no provider routable), nor for a run whose remote
    task is still at its provider."""
    run_id = context.partition_key
    run = store.effect_run(run_id)
    stored = store.video_remote_tasks(run_id)
    if run["status"] in FINAL:  # a re-executed partition: the run is settled, nothing twice
        _release(context, store, providers, stored)
        prior = lake.read(RUN_OUTPUTS, pl.col("run_id") == run_id)
        if prior.height:
            yield dg.Output(prior, metadata={"status": run["status"], "reexecuted": True})
        return
    run = store.start_run(run_id, utcnow())
    registry = providers.registry()
    work = _Run(context, run, store, lake, platform, catalog, registry)
    if stored:  # its remote task was sent by an earlier run of this partition
        resumed = _resume(work, stored, providers, media)
        if resumed is not None:
            yield resumed
        return
    work.note("RunStarted", {"slug": run["slug"], "revision_id": run["revision_id"], "tokens": run["tokens"]})
    entries, version, shadow = _routable(registry, lake, manifest_store, run["effect_type"])
    if not entries:
        work.refund(f"no provider can make {run['effect_type'].replace('_', ' ')} right now")
        work.flush()
        return
    if _cache_hit(work, registry, media, entries):
        work.flush()
        yield _output(work, "delivered from cache")
        return
    try:
        proxy = _input_proxy(work, media)
    except VideoRejected as rejected:
        work.refund(f"your video could not be used ({rejected.reason})")
        work.flush()
        return
    route = route_run(entries, run_rng(run_id), platform.exploration_rate, shadow)
    store.update_run(
        run_id,
        provider_id=route.provider_id,
        provider_version=provider_version(registry.spec(route.provider_id).model_dump()),
        routing_decision=route.decision,
        propensity=route.propensity,
        progress=ROUTED,
    )
    work.note(
        "RunRouted",
        {
            "provider_id": route.provider_id,
            "rank": route.rank,
            "decision": route.decision,
            "propensity": route.propensity,
            "fallbacks": list(route.fallbacks),
            "shadow": list(route.shadow),
            "manifest_version": version,
        },
    )
    with ExitStack() as stack, tempfile.TemporaryDirectory() as workdir:
        attempt = _Attempt(route, version, proxy, stack.enter_context(media.local_file(proxy)), workdir)
        outcome = _execute(work, attempt, providers, media)
    yield _settle(work, outcome)


def _settle(work: _Run, outcome: tuple[str, bool]) -> dg.Output:
    """Refund a run nothing was delivered for (``outcome``: ``_execute``'s), record its
    events, and its ``run_outputs`` rows as the asset's output."""
    state, late = outcome
    if state == EXHAUSTED:
        tried = sum(r["selection"] != "shadow" for r in work.rows)
        deadline = " before the run's deadline" if late else ""
        work.refund(f"no provider made a usable video{deadline} ({tried} tried)", attempts=tried)
    work.flush()
    return _output(work, "refunded" if state == EXHAUSTED else state)


def _output(work: _Run, outcome: str) -> dg.Output:
    rows = frame(work.rows, RUN_OUTPUTS)
    return dg.Output(
        rows,
        metadata={
            "outcome": outcome,
            "tasks": rows.height,
            "compute_seconds": round(float(rows["compute_seconds"].sum() or 0), 3),
        },
    )


def _routable(
    registry: RegistryView, lake: Lake, manifest_store: ManifestStore, effect_type: str
) -> tuple[list[dict], str, list[str]]:
    """(manifest entries of the effect type among the healthy providers, local or remote,
    manifest version, shadow providers that run inline). A remote shadow provider gets no
    copy: a copy is made alongside the run's first attempt, and a remote one would outlive
    it for an output nobody is shown (docs/architecture.md, "Effect runs")."""
    remote_ids = {p.provider_id for p in registry.providers if p.remote}
    active = registry.active_by_effect(exclude=unhealthy_providers(lake))
    rankings, version, _ = current_rankings(manifest_store.read(), active, utcnow())
    shadow = [p for p in registry.shadow_for(effect_type) if p not in remote_ids]
    return rankings.get(effect_type, []), version, shadow


def _key(work: _Run, registry: RegistryView, provider_id: str) -> tuple[str, str]:
    """(provider version, cache key) of this run's output on ``provider_id``."""
    version = provider_version(registry.spec(provider_id).model_dump())
    run = work.run
    key = cache_key(run["workspace_id"], run["input_sha256"], run["revision_id"], work.params, provider_id, version)
    return version, key


def _cache_hit(work: _Run, registry: RegistryView, media: MediaStore, entries: list[dict]) -> bool:
    """Deliver a stored output of an identical earlier run (the first routable provider, best
    rank first, whose key has one); False when there is none."""
    for entry in sorted(entries, key=lambda e: e["rank"]):
        provider_id = entry["provider_id"]
        version, key = _key(work, registry, provider_id)
        hit = work.store.cached_run(work.run["workspace_id"], key)
        if hit is None or not media.exists(hit["output_key"]):
            continue
        source_task = run_task_id(hit["run_id"], provider_id)
        task_id = cache_task_id(work.run_id)
        work.note(
            "RunCacheHit",
            {
                "cache_key": key,
                "provider_id": provider_id,
                "provider_version": version,
                "cached_from_run_id": hit["run_id"],
                "cached_from_task_id": source_task,
                "output_key": hit["output_key"],
            },
        )
        work.row(
            task_id,
            provider_id,
            provider_version=version,
            selection=CACHE_SELECTION,
            routing_decision=CACHE_DECISION,
            status="cached",
            delivered=True,
            output_key=hit["output_key"],
            cache_key=key,
            cached_from_task_id=source_task,
            cached_from_run_id=hit["run_id"],
            duration_ms=0,
            compute_seconds=0.0,
        )
        work.deliver(
            hit["output_key"],
            task_id,
            provider_id,
            key,
            provider_id=provider_id,
            provider_version=version,
            routing_decision=CACHE_DECISION,
            cached_from=hit["run_id"],
        )
        return True
    return False


def _input_proxy(work: _Run, media: MediaStore) -> str:
    """The run input's normalized proxy key, made if absent: the raw bytes probed and
    validated with M1's limits (``VideoRejected`` otherwise), encoded as M1 encodes proxies."""
    run, platform = work.run, work.platform
    key = input_proxy_key(run["workspace_id"], run["input_sha256"], platform.proxy_max_side)
    if media.exists(key):
        return key
    limits = ingest_limits(platform)
    with media.local_file(run["input_key"]) as raw:
        validate(probe_video(raw, limits), limits)
        with media.writable_file(key) as path:
            make_proxy(raw, path, max_side=platform.proxy_max_side)
    return key


def _past(work: _Run) -> bool:
    return utcnow() >= deadline_of(work.run["started_at"], work.platform.run_deadline_s)


def _task(work: _Run, provider_id: str, selection: str) -> dict:
    """The provider task dict (``assets.execution.local``) of this run on ``provider_id``."""
    return {
        "task_id": run_task_id(work.run_id, provider_id),
        "video_id": work.run_id,  # the correlation id of the task's events and output
        "effect_type": work.run["effect_type"],
        "provider_id": provider_id,
        "selection": selection,
        "params": json.dumps(work.params),
        "prompt": "",
    }


def _refused(t: dict, instance_type: str) -> TaskResult:
    """A task its open breaker kept from the provider: failed, nothing spent, no attempt."""
    return TaskResult(
        t["task_id"], "failed", None, 0, 0.0, instance_type, attempts=0, error_class="BreakerOpen",
        error_message=f"{t['provider_id']}'s breaker is open",
    )  # fmt: skip


DELIVERED_NOW, SENT, EXHAUSTED = "delivered", "pending", "exhausted"  # _execute's outcomes


@dataclass(frozen=True)
class _Attempt:
    """What the run's attempts share: its route, the manifest version it was routed by, its
    input (the proxy's media key and a local copy) and a work directory."""

    route: RunRoute
    version: str
    proxy_key: str
    input_path: str
    workdir: str


def _execute(
    work: _Run, a: _Attempt, providers: ProviderRegistry, media: MediaStore, start: int = 0, failed: dict | None = None
) -> tuple[str, bool]:
    """Try the run's providers in ``attempt_order`` from the ``start``-th (the shadow copies
    alongside the first) until one's output passes the technical gate, within the deadline,
    and deliver it; a remote provider's task is sent instead and the run waits for it.

    Args:
        failed: the ``run_outputs`` row of the attempt before ``start`` when it failed (the
            fallback names it).

    Returns:
        (``DELIVERED_NOW``, ``SENT`` (a remote task is now the run's attempt) or
        ``EXHAUSTED``, whether the deadline stopped the fallbacks).
    """
    route, registry = a.route, work.registry
    ranks = {p: i for i, p in enumerate(route.candidates, start=1)}
    for n, provider_id in enumerate(attempt_order(route)):
        if n < start:
            continue
        if n and _past(work):
            return EXHAUSTED, True
        t = _task(work, provider_id, route.selection if n == 0 else "ranked")
        shadows = [_task(work, p, "shadow") for p in route.shadow] if n == 0 else []
        now = utcnow()
        fallback_for = failed["task_id"] if failed else None
        work.executions += [
            dispatched_event(work.run_id, b, ranks.get(b["provider_id"], 0), a.version, fallback_for, now, STAGE, RUN)
            for b in [t, *shadows]
        ]
        if failed is not None:
            work.note(
                "TaskFellBack",
                {
                    "task_id": failed["task_id"],
                    "provider_id": failed["provider_id"],
                    "fallback_task_id": t["task_id"],
                    "fallback_provider_id": provider_id,
                    "reason": failed["error_class"],
                },
                identity=failed["task_id"],
            )
        work.store.update_run(work.run_id, attempts=n + 1, progress=min(ATTEMPT + 0.15 * n, GATED - 0.05))
        spec = registry.spec(provider_id)
        sending = spec.remote and breaker_allows(store_breaker(work.store, provider_id), spec.breaker_policy(), now)
        results = _run_batch(work, shadows if sending else [t, *shadows], a, providers, media, now)
        for b in shadows:
            _shadow_row(work, registry, b, results[b["task_id"]])
        if sending:
            _send(work, a, t, n, fallback_for, providers, media, now)
            return SENT, False
        row = _attempt_row(work, registry, route, t, results[t["task_id"]])
        if _gate_and_deliver(work, row, t, results[t["task_id"]], a.input_path, n):
            return DELIVERED_NOW, False
        failed = row
    return EXHAUSTED, False


def _send(
    work: _Run, a: _Attempt, t: dict, n: int, fallback_for: str | None, providers: ProviderRegistry,
    media: MediaStore, now: datetime,
) -> None:  # fmt: skip
    """Enqueue attempt ``n`` of the run on its remote provider (a ``remote_tasks`` row under
    the run's id) and send it if the provider has a slot now (else the remote task sensor
    sends it when one frees). The row's spec carries what the collect needs to go on without
    this run: the route, the manifest version, the attempt's number and the run's deadline
    (past it the remote task sensor stops the task, ``RunDeadline``)."""
    spec = {
        "input_key": a.proxy_key,
        "params": work.params,
        "prompt": "",
        "fallback_for": fallback_for,
        "deadline": deadline_of(work.run["started_at"], work.platform.run_deadline_s).isoformat(),
        "run": {"route": asdict(a.route), "manifest_version": a.version, "attempt": n},
    }
    with work.store.write() as s:
        remote.enqueue(
            s,
            [
                {
                    "task_id": t["task_id"],
                    "video_id": work.run_id,
                    "provider_id": t["provider_id"],
                    "effect_type": t["effect_type"],
                    "selection": t["selection"],
                    "spec": json.dumps(spec),
                }
            ],
            now,
        )
    sent = remote_tasks.send(work.store, work.registry, providers.remote_adapter, media, now, work.run_id)
    work.pipeline.extend(sent.events)
    version, _ = _key(work, work.registry, t["provider_id"])
    routed = t["provider_id"] == a.route.provider_id
    work.row(
        t["task_id"],
        t["provider_id"],
        provider_version=version,
        selection=t["selection"],
        routing_decision=a.route.decision if routed else None,
        propensity=a.route.propensity if routed else None,
        status=PENDING,
        finished_at=None,
    )


def _resume(work: _Run, stored: list[dict], providers: ProviderRegistry, media: MediaStore) -> dg.Output | None:
    """Go on with a run whose remote task an earlier run of its partition sent: collect the
    finished task (output stored, provider cleaned up, outcome recorded as the provider
    timed it), gate it against the run's input and deliver it, or fall back to the next
    provider (``_execute`` from the next attempt) within the deadline, else refund. The task
    is marked collected once that is done, so a run that stops half-way collects it again.

    Returns:
        The run's ``run_outputs`` rows, or None when there is nothing to do yet (the
        task is still at its provider; the remote task sensor follows it) or any more (it
        was collected: a recovery re-queue of a run that stopped after that finds it so).
    """
    if any(r["state"] not in ("finished", "collected") for r in stored):
        return None
    finished = [r for r in stored if r["state"] == "finished"]
    if not finished:
        return None
    row = finished[-1]  # a run has one remote attempt at a time: its latest
    spec = json.loads(row["spec"])
    plan = spec["run"]
    doc = plan["route"]
    route = RunRoute(**{**doc, "fallbacks": tuple(doc["fallbacks"]), "shadow": tuple(doc["shadow"])})
    n = int(plan["attempt"])
    t = {**_task(work, row["provider_id"], row["selection"]), "task_id": row["task_id"]}
    prior = work.lake.read(RUN_OUTPUTS, pl.col("run_id") == work.run_id)
    work.rows = [r for r in prior.to_dicts() if r["task_id"] != row["task_id"]]
    spec_of = work.registry.spec(row["provider_id"])
    with ExitStack() as stack, tempfile.TemporaryDirectory() as workdir:
        input_path = stack.enter_context(media.local_file(spec["input_key"]))
        a = _Attempt(route, plan["manifest_version"], spec["input_key"], input_path, workdir)
        got = remote_tasks.collect(
            row,
            spec_of,
            providers.remote_adapter(row["provider_id"]),
            media,
            output_key(work.run_id, row["task_id"]),
            str(Path(workdir) / f"{row['task_id']}.mp4"),
        )
        if got.cleanup_error is not None:
            cleanup_failed(work.context, t, got.cleanup_error)
        p, e = result_events(t, got.result, utcnow(), got.output_bytes, stage=STAGE, job_kind=RUN)
        work.pipeline.append(p)
        work.executions.append(e)
        attempt = _attempt_row(work, work.registry, route, t, got.result)
        if _gate_and_deliver(work, attempt, t, got.result, a.input_path, n):
            outcome: tuple[str, bool] = (DELIVERED_NOW, False)
        elif _past(work):
            outcome = (EXHAUSTED, True)
        else:
            outcome = _execute(work, a, providers, media, start=n + 1, failed=attempt)
    output = _settle(work, outcome)
    with work.store.write() as s:
        remote.collected(s, [row["task_id"]], utcnow())
    return output


def _release(context, store: Store, providers: ProviderRegistry, stored: list[dict]) -> None:
    """A settled run's remote tasks that finished but were never collected (the run was
    given up by the recovery sensor, or settled before it marked them): marked collected and
    their provider cleaned up, so the remote task sensor stops asking for them."""
    left = [r for r in stored if r["state"] == "finished"]
    for row in left:
        result = json.loads(row["result"] or "{}")
        if result.get("handle") and row["provider_id"] in {p.provider_id for p in providers.registry().providers}:
            try:
                providers.remote_adapter(row["provider_id"]).cleanup(result["handle"], result.get("output"))
            except Exception as exc:  # noqa: BLE001 - leftovers cost disk, not correctness
                cleanup_failed(context, row, str(exc))
    if left:
        with store.write() as s:
            remote.collected(s, [r["task_id"] for r in left], utcnow())


def _run_batch(
    work: _Run, batch: list[dict], a: _Attempt, providers: ProviderRegistry, media: MediaStore, now: datetime
) -> dict[str, TaskResult]:
    """Run ``batch`` through M6's local runner on the run's input (a task whose provider's
    breaker is open is refused without running) and record each outcome's events; task id →
    result."""
    registry, input_path, workdir = work.registry, a.input_path, a.workdir
    allowed = []
    results: dict[str, TaskResult] = {}
    for b in batch:
        spec = registry.spec(b["provider_id"])
        if breaker_allows(store_breaker(work.store, spec.provider_id), spec.breaker_policy(), now):
            allowed.append(b)
        else:
            results[b["task_id"]] = _refused(b, spec.instance_type)
    ran = run_local(
        allowed,
        lambda _t: input_path,
        workdir,
        providers,
        registry,
        work.store,
        media,
        max_workers=work.platform.max_parallel_tasks,
        now=now,
        at=utcnow(),
        stage=STAGE,
    )
    sizes: dict[str, int | None] = {}
    for r in ran:
        work.pipeline.extend(r.events)
        results[r.task["task_id"]], sizes[r.task["task_id"]] = r.result, r.output_bytes
    for b in batch:
        p, e = result_events(b, results[b["task_id"]], utcnow(), sizes.get(b["task_id"]), stage=STAGE, job_kind=RUN)
        work.pipeline.append(p)
        work.executions.append(e)
    return results


def _shadow_row(work: _Run, registry: RegistryView, t: dict, result: TaskResult) -> None:
    version, _ = _key(work, registry, t["provider_id"])
    work.row(
        t["task_id"],
        t["provider_id"],
        provider_version=version,
        selection="shadow",
        status=result.status,
        output_key=output_key(work.run_id, t["task_id"]) if result.status == "succeeded" else None,
        duration_ms=result.duration_ms,
        compute_seconds=result.compute_seconds,
        error_class=result.error_class,
        error_message=result.error_message,
    )


def _attempt_row(work: _Run, registry: RegistryView, route: RunRoute, t: dict, result: TaskResult) -> dict:
    """The ``run_outputs`` row of an attempt (the routed provider's carries the routing
    decision and its propensity)."""
    version, _ = _key(work, registry, t["provider_id"])
    routed = t["provider_id"] == route.provider_id
    return work.row(
        t["task_id"],
        t["provider_id"],
        provider_version=version,
        selection=t["selection"],
        routing_decision=route.decision if routed else None,
        propensity=route.propensity if routed else None,
        status=result.status,
        duration_ms=result.duration_ms,
        compute_seconds=result.compute_seconds,
        error_class=result.error_class,
        error_message=result.error_message,
    )


def _gate_and_deliver(work: _Run, row: dict, t: dict, result: TaskResult, input_path: str, n: int) -> bool:
    """Gate a succeeded attempt's output (M7's technical gate against the run's input) and
    deliver it when it passes; True when the run is settled by it (delivered, or found settled
    elsewhere: nothing more to try). A refused output's row says why."""
    if result.status != "succeeded":
        return False
    try:
        gate = technical_gate(input_path, result.output_path, work.run["effect_type"], work.params)
    except QualityInputError as exc:
        row.update(gate_passed=False, gate_failures=[str(exc)], error_class="GateInputUnreadable")
        return False
    row.update(gate_passed=gate.passed, gate_failures=gate.failures)
    if not gate.passed:
        row["error_class"] = "GateFailed"
        work.note(
            "RunGateFailed",
            {"task_id": t["task_id"], "provider_id": t["provider_id"], "failures": gate.failures},
            identity=t["task_id"],
        )
        return False
    output = output_key(work.run_id, t["task_id"])
    _, key = _key(work, work.registry, t["provider_id"])
    row.update(delivered=True, output_key=output, cache_key=key)
    work.store.update_run(work.run_id, progress=GATED)
    if not work.deliver(output, t["task_id"], t["provider_id"], key, attempts=n + 1):
        # Settled meanwhile by the recovery sensor (given up and refunded): never charged now.
        row.update(delivered=False, error_class="RunSettled")
    return True
