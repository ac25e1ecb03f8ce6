"""Faults planted in the simulated market (``effectlake simulate --inject KIND[:TARGET]``, the
fault scenarios of ``tests/test_fault_scenarios.py`` and ``bench/signal_detection.py``).

A fault hits one provider (one user for ``depletion``) from ``start`` until ``end`` (when it
is removed; None: still on when the run ends). ``simulate_faults`` runs ``economics.simulator.
simulate`` and then changes its rows, in this order: extra demand, re-routing, per-call
changes, waiting (queue and boot time, which move a call's finish later). Each kind's model,
its ``magnitude`` (default in brackets) and what the classifier (``economics.bottlenecks``)
should make of it:

``latency-drift`` [g = 1.0 per hour]
    The provider's wall time grows linearly: duration × (1 + g·h), h = hours since ``start``
    (+100 % an hour: a degrading partner or a leaking worker). Back to normal at ``end``.
    → ``PROVIDER_LATENCY_DEGRADATION``.
``throttling`` [r = 0.3]
    A share r of the provider's calls is refused with HTTP 429 (``error_class = 'Throttled'``,
    ``telemetry.THROTTLE_CLASSES``) after ``REFUSAL_MS`` (lognormal); a refused call did no
    work and is not billed. → ``PROVIDER_API_THROTTLING``.
``cost-spike`` [f = 3]
    Every call costs f times as much from ``start``: compute seconds and partner bill × f, the
    simulator's price-shock convention (the cost model prices compute seconds through a fixed
    rate card, so scaling both scales the cost exactly). The decision tree has no price
    category: a cost-per-run rise (and the margin fall) is ``WORKFLOW_INEFFICIENCY`` — its
    runbook checks the provider's price as well as the workflow — and the Isolation Forest
    raises an ``EconomicAlert`` naming ``cost_per_run_usd``. → ``WORKFLOW_INEFFICIENCY``.
``cold-starts`` [λ = 6 calls an hour]
    The provider's traffic falls to a trickle of λ calls an hour (the rest of its calls go to
    the effect type's other active providers, redrawn from their models: what a routing change
    leaves a scale-to-zero provider), and every call that starts more than the keep-warm
    period after the provider's previous call ended waits ``BOOT_SECONDS`` for a node (queue
    wait, and its finish moves that much later). The platform sees a cold start the way
    ``cost_model.cold_starts`` defines it — a gap longer than keep-warm — so sparse traffic is
    what makes starts cold; the boot time is what makes them cost.
    → ``COLD_START_PENALTY``.
``saturation`` [ρ = 1.25]
    The provider's fleet has ``max(2, ceil(2 · base load))`` nodes (headroom for twice its
    load before ``start``, in erlangs: calls per second × mean wall time) and serves its calls
    first-come first-served (every call waits ``max(0, first free node − arrival)``, arrival =
    finish − duration as simulated). From ``start`` the demand for the provider's effect type
    grows until the load offered to the fleet is ρ × its capacity: the queue grows while it
    lasts and drains after. At least two nodes because ``metric_streams`` measures a 5-minute
    bucket's utilisation against its bursts plus the keep-warm tail (``measure_bursts``), so
    one busy node reads about 50 %. → ``GPU_SATURATION`` on a GPU instance type (elsewhere the
    queueing reads as ``PROVIDER_LATENCY_DEGRADATION``).
``depletion`` [h = 4 hours]
    A user (``target``: their user id) starts a batch at ``start``: a balance of
    ``BURN_TOKENS_PER_HOUR`` × h tokens is credited and a job of ``JOB_TOKENS`` is reserved and
    consumed every ``JOB_TOKENS / BURN_TOKENS_PER_HOUR`` hours while the balance allows; at
    ``end`` the user tops up ``TOPUP_HOURS`` hours' worth and the batch goes on. Ledger entries
    only (``FaultyRun.ledger``); the jobs' executions are not simulated.
    → ``TOKEN_DEPLETION_RISK``.
``inefficiency`` [q = 0.25]
    A share q of the provider's calls fails inside the workflow (``error_class =
    'WorkflowError'``: bad parameters, out of memory) after burning its full compute and
    partner cost — paid work thrown away, with no latency or queueing change.
    → ``WORKFLOW_INEFFICIENCY``.

Pure: NumPy and Polars, deterministic for a seed.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import numpy as np
import polars as pl

from economics import bottlenecks as bn
from economics import ledger as ledger_rules
from economics.cost_model import DEFAULT_KEEP_WARM_SECONDS
from economics.ids import stable_id
from economics.simulator import Market, call_outcomes, simulate

LATENCY_DRIFT = "latency-drift"
THROTTLING = "throttling"
COST_SPIKE = "cost-spike"
COLD_STARTS = "cold-starts"
SATURATION = "saturation"
DEPLETION = "depletion"
INEFFICIENCY = "inefficiency"
KINDS = (LATENCY_DRIFT, THROTTLING, COST_SPIKE, COLD_STARTS, SATURATION, DEPLETION, INEFFICIENCY)
DEFAULT_MAGNITUDE = {
    LATENCY_DRIFT: 1.0,
    THROTTLING: 0.3,
    COST_SPIKE: 3.0,
    COLD_STARTS: 6.0,
    SATURATION: 1.25,
    DEPLETION: 4.0,
    INEFFICIENCY: 0.25,
}
# The category the decision tree should raise for each kind (module docstring).
EXPECTED = {
    LATENCY_DRIFT: bn.PROVIDER_LATENCY_DEGRADATION,
    THROTTLING: bn.PROVIDER_API_THROTTLING,
    COST_SPIKE: bn.WORKFLOW_INEFFICIENCY,
    COLD_STARTS: bn.COLD_START_PENALTY,
    SATURATION: bn.GPU_SATURATION,
    DEPLETION: bn.TOKEN_DEPLETION_RISK,
    INEFFICIENCY: bn.WORKFLOW_INEFFICIENCY,
}

# A 429 comes back fast: the partner refuses before doing any work (median 300 ms).
REFUSAL_MS = 300.0
# Booting a scale-to-zero node (image pull, model load): 90 s, inside the 1–3 minutes GPU
# serverless platforms quote for a cold start with a model to load.
BOOT_SECONDS = 90.0
# The depleting user's batch: a 20-token job every 5 minutes.
JOB_TOKENS = 20
BURN_TOKENS_PER_HOUR = 240.0
# The top-up that removes the fault: a week of the batch.
TOPUP_HOURS = 24 * 7
THROTTLED, WORKFLOW_ERROR = "Throttled", "WorkflowError"

UTC_TS = pl.Datetime("us", "UTC")
# The simulator's rows plus the two telemetry columns faults write (null when unmodelled).
TELEMETRY_EXTRA = {"queue_wait_ms": pl.Int64, "error_class": pl.String}


@dataclass(frozen=True)
class Fault:
    """One planted fault (module docstring).

    Attributes:
        kind: one of ``KINDS``.
        target: the provider id (the user id for ``depletion``).
        start: when it begins (tz-aware).
        end: when it is removed; None: it lasts to the end of the run.
        magnitude: the kind's size (its unit in the module docstring); None: the default.

    Raises:
        ValueError: unknown kind, naive or inverted times, non-positive magnitude.
    """

    kind: str
    target: str
    start: datetime
    end: datetime | None = None
    magnitude: float | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault {self.kind!r}; one of {', '.join(KINDS)}")
        if self.start.tzinfo is None or (self.end is not None and self.end.tzinfo is None):
            raise ValueError("fault times must be tz-aware (UTC)")
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"{self.kind}: the fault must end after it starts")
        if self.magnitude is not None and not self.magnitude > 0:
            raise ValueError(f"{self.kind}: magnitude must be positive")
        if self.kind in (THROTTLING, INEFFICIENCY) and self.size > 1:
            raise ValueError(f"{self.kind}: magnitude is a share of calls, at most 1")

    @property
    def size(self) -> float:
        """The magnitude, or the kind's default."""
        return DEFAULT_MAGNITUDE[self.kind] if self.magnitude is None else float(self.magnitude)

    def window_us(self, run_end: datetime) -> tuple[int, int]:
        """[start, end) in µs since the epoch (end: the run's end when the fault lasts)."""
        return _us(self.start), _us(self.end or run_end)


def parse(spec: str) -> tuple[str, str | None]:
    """``KIND[:TARGET]`` → (kind, target or None).

    Raises:
        ValueError: unknown kind.
    """
    kind, _, target = spec.partition(":")
    kind = kind.strip()
    if kind not in KINDS:
        raise ValueError(f"unknown fault {kind!r}; one of {', '.join(KINDS)}")
    return kind, target.strip() or None


def default_target(kind: str, market: Market) -> str:
    """The provider a fault of ``kind`` hits when none is named: the first GPU provider for
    ``saturation``, the first active provider whose effect type has another for
    ``cold-starts``, else the first active provider (``depletion`` has no default: it needs
    a user).

    Raises:
        ValueError: ``depletion``, or no provider fits.
    """
    active = [m for m in market.providers if m.mode == "active"]
    by_effect = market.providers_by_effect()
    if kind == DEPLETION:
        raise ValueError("depletion needs a user id as its target")
    if kind == SATURATION:
        fits = [m for m in market.providers if m.instance_type.startswith("gpu")]
    elif kind == COLD_STARTS:
        fits = [m for m in active if len(by_effect[m.effect_type]) > 1]
    else:
        fits = active
    if not fits:
        raise ValueError(f"no provider of the market fits a {kind} fault")
    return fits[0].provider_id


class FaultyRun(NamedTuple):
    """``rows``: the simulated executions (``SIMULATED_SCHEMA`` plus ``TELEMETRY_EXTRA``),
    sorted by ``finished_at``; ``ledger``: the ledger entries the faults wrote
    (``economics.ledger`` entry columns), empty without a ``depletion``."""

    rows: pl.DataFrame
    ledger: pl.DataFrame


_LEDGER_COLUMNS: dict[str, pl.DataType | type[pl.DataType]] = {
    "entry_id": pl.String,
    "user_id": pl.String,
    "correlation_id": pl.String,
    "task_id": pl.String,
    "kind": pl.String,
    "tokens": pl.Int64,
    "reason": pl.String,
    "occurred_at": UTC_TS,
}
LEDGER_SCHEMA = pl.Schema(_LEDGER_COLUMNS)


def _us(at: datetime) -> int:
    return (at.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def _with_telemetry(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.with_columns([pl.lit(None, t).alias(c) for c, t in TELEMETRY_EXTRA.items() if c not in rows.columns])


def _hit(rows: pl.DataFrame, fault: Fault, run_end: datetime) -> np.ndarray:
    """Rows of the fault's provider finishing inside its window."""
    lo, hi = fault.window_us(run_end)
    us = rows["finished_at"].dt.epoch("us").to_numpy()
    return (rows["provider_id"] == fault.target).to_numpy() & (us >= lo) & (us < hi)


def _set(rows: pl.DataFrame, mask: np.ndarray, **values) -> pl.DataFrame:
    """Replace ``values`` (arrays over the masked rows, or scalars) in the rows of ``mask``."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return rows
    cols = []
    for name, value in values.items():
        dtype = rows.schema[name]
        new = value if np.isscalar(value) else pl.Series(name, value, dtype=dtype, strict=False)
        cols.append(rows[name].clone().scatter(idx, new))  # type: ignore[arg-type]
    return rows.with_columns(cols)


def _latency_drift(rows, fault, run_end, rng):
    hit = _hit(rows, fault, run_end)
    hours = (rows["finished_at"].dt.epoch("us").to_numpy()[hit] - _us(fault.start)) / 3.6e9
    grown = np.rint(rows["duration_ms"].to_numpy()[hit] * (1 + fault.size * hours)).astype(np.int64)
    return _set(rows, hit, duration_ms=grown)


def _refused(rows, fault, run_end, rng, error_class: str, burn: bool):
    hit = _hit(rows, fault, run_end)
    hit &= rng.random(rows.height) < fault.size
    values = {"status": "failed", "error_class": error_class, "composite": np.nan}
    if not burn:  # refused before any work: nothing billed, a short answer
        n = int(hit.sum())
        values |= {
            "compute_seconds": 0.0,
            "partner_cost_usd": 0.0,
            "duration_ms": np.rint(REFUSAL_MS * np.exp(0.3 * rng.standard_normal(n))).astype(np.int64),
        }
    return _set(rows, hit, **values).with_columns(pl.col("composite").fill_nan(None))


def _throttling(rows, fault, run_end, rng):
    return _refused(rows, fault, run_end, rng, THROTTLED, burn=False)


def _inefficiency(rows, fault, run_end, rng):
    return _refused(rows, fault, run_end, rng, WORKFLOW_ERROR, burn=True)


def _cost_spike(rows, fault, run_end, rng):
    hit = _hit(rows, fault, run_end)
    f = fault.size
    return _set(
        rows,
        hit,
        compute_seconds=rows["compute_seconds"].to_numpy()[hit] * f,
        partner_cost_usd=rows["partner_cost_usd"].to_numpy()[hit] * f,
    )


def _thin(rows: pl.DataFrame, market: Market, fault: Fault, run_end: datetime, rng) -> pl.DataFrame:
    """cold-starts, first half: keep λ of the provider's routed calls an hour (over its effect
    types), move the rest to each effect type's other active providers (outcomes redrawn from
    their models)."""
    hit = _hit(rows, fault, run_end) & (rows["selection"] != "shadow").to_numpy()
    if not hit.any():
        return rows
    lo, hi = fault.window_us(run_end)
    keep = min(1.0, fault.size / (hit.sum() / ((hi - lo) / 3.6e9)))
    move_all = hit & (rng.random(rows.height) >= keep)
    effects = rows["effect_type"].to_numpy()
    for effect in sorted(set(effects[move_all])):
        others = [p for p in market.providers_by_effect().get(effect, []) if p != fault.target]
        if not others:
            raise ValueError(
                f"cold-starts: {fault.target} has no other active provider for {effect} to take its traffic"
            )
        move = move_all & (effects == effect)
        to = np.array(others, dtype=object)[rng.integers(0, len(others), int(move.sum()))]
        models = np.array([market.index(p, effect) for p in to])
        out = call_outcomes(market, models, rows["finished_at"].dt.epoch("us").to_numpy()[move], rng)
        instance = {m.provider_id: m.instance_type for m in market.providers if m.effect_type == effect}
        rows = _set(
            rows,
            move,
            provider_id=to,
            instance_type=np.array([instance[p] for p in to], dtype=object),
            status=np.where(out["failed"], "failed", "succeeded").astype(object),
            compute_seconds=out["compute_seconds"],
            partner_cost_usd=out["partner_cost_usd"],
            duration_ms=out["duration_ms"],
            composite=out["composite"],
        )
    return rows.with_columns(pl.col("composite").fill_nan(None))


def _wait(rows: pl.DataFrame, provider: str, waits_of) -> pl.DataFrame:
    """Add waiting before the work of ``provider``'s calls: ``waits_of(arrival_us, duration_us)``
    → wait µs per call (calls in arrival order); the finish moves later by the wait and
    ``queue_wait_ms`` grows by it."""
    mine = (rows["provider_id"] == provider).to_numpy()
    if not mine.any():
        return rows
    finish = rows["finished_at"].dt.epoch("us").to_numpy()[mine]
    duration = rows["duration_ms"].to_numpy()[mine].astype(np.int64) * 1000
    arrival = finish - duration
    order = np.argsort(arrival, kind="stable")
    wait = np.empty(len(arrival), dtype=np.int64)
    wait[order] = waits_of(arrival[order], duration[order])
    queued = rows["queue_wait_ms"].to_numpy(allow_copy=True)[mine]
    queued = np.where(np.isnan(queued.astype(float)), 0, queued).astype(np.int64) + wait // 1000
    moved = pl.Series(finish + wait).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    idx = np.flatnonzero(mine)
    return rows.with_columns(
        finished_at=rows["finished_at"].scatter(idx, moved),
        queue_wait_ms=rows["queue_wait_ms"].scatter(idx, pl.Series(queued, dtype=pl.Int64)),
    )


def _boot(rows: pl.DataFrame, fault: Fault, run_end: datetime, keep_warm_s: float) -> pl.DataFrame:
    """cold-starts, second half: a call starting more than keep-warm after every earlier
    call of the provider ended (``cost_model.cold_starts``' rule, on the moved times) waits
    BOOT_SECONDS, inside the fault's window."""
    lo, hi = fault.window_us(run_end)
    warm_us, boot_us = int(keep_warm_s * 1e6), int(BOOT_SECONDS * 1e6)

    def waits(arrival, duration):
        out = np.zeros(len(arrival), dtype=np.int64)
        last_end = None
        for i, (a, d) in enumerate(zip(arrival.tolist(), duration.tolist(), strict=True)):
            cold = last_end is None or a > last_end + warm_us
            if cold and lo <= a + d < hi:
                out[i] = boot_us
            end = a + out[i] + d
            last_end = end if last_end is None else max(last_end, end)
        return out

    return _wait(rows, fault.target, waits)


def fleet_nodes(load_erlangs: float) -> int:
    """Nodes of a fleet sized for twice its load (at least 2; module docstring)."""
    return max(2, math.ceil(2 * load_erlangs))


def _offered_load(rows: pl.DataFrame, provider: str, until: datetime) -> float:
    """Erlangs of ``provider``'s calls finishing before ``until`` (all of them when none)."""
    mine = rows.filter(pl.col("provider_id") == provider)
    before = mine.filter(pl.col("finished_at") < until)
    sample = before if before.height > 1 else mine
    if sample.height < 2:
        return 0.0
    first, last = sample["finished_at"].min(), sample["finished_at"].max()
    span_s = (last - first).total_seconds()  # type: ignore[operator,union-attr]
    return float(sample["duration_ms"].sum()) / 1000 / max(span_s, 1.0)


def _surge(
    rows: pl.DataFrame,
    market: Market,
    fault: Fault,
    run_end: datetime,
    per_hour: float,
    seed: int,
    tag: str,
) -> tuple[pl.DataFrame, int]:
    """saturation, first half: the extra demand (its rows) and the fleet's nodes."""
    model = next((m for m in market.providers if m.provider_id == fault.target), None)
    if model is None:
        raise ValueError(f"saturation: no provider {fault.target!r} in the market")
    load = _offered_load(rows, fault.target, fault.start)
    nodes = fleet_nodes(load)
    factor = fault.size * nodes / load if load > 0 else 1.0
    mix = market.effect_mix or dict.fromkeys(market.providers_by_effect(), 1.0)
    share = mix.get(model.effect_type, 0.0) / sum(mix.values())
    extra_rate = max(0.0, factor - 1) * per_hour * share
    hours = ((fault.end or run_end) - fault.start).total_seconds() / 3600
    if extra_rate <= 0 or hours <= 0:
        return rows.clear(), nodes
    surge_market = dataclasses.replace(market, effect_mix={model.effect_type: 1.0})
    extra = simulate(surge_market, fault.start, hours, extra_rate, seed=seed, run_id=tag)
    return _with_telemetry(extra), nodes


def _queue(rows: pl.DataFrame, provider: str, nodes: int) -> pl.DataFrame:
    """saturation, second half: first-come first-served on ``nodes`` nodes (every call of the
    provider, before, during and after the fault)."""

    def waits(arrival, duration):
        free = [0] * nodes  # when each node is next free, µs
        out = np.zeros(len(arrival), dtype=np.int64)
        for i, (a, d) in enumerate(zip(arrival.tolist(), duration.tolist(), strict=True)):
            first = heapq.heappop(free)
            begin = max(a, first)
            out[i] = begin - a
            heapq.heappush(free, begin + d)
        return out

    return _wait(rows, provider, waits)


def depletion_ledger(fault: Fault, run_end: datetime, tag: str) -> pl.DataFrame:
    """The depleting user's ledger entries (module docstring), ``LEDGER_SCHEMA``."""
    user = fault.target
    balance = round(BURN_TOKENS_PER_HOUR * fault.size)
    step = timedelta(hours=JOB_TOKENS / BURN_TOKENS_PER_HOUR)
    entries = [ledger_rules.credit(user, balance, f"{tag}-batch", fault.start - timedelta(minutes=1), "batch")]
    available = balance
    at, k = fault.start, 0
    topped = False
    while at < run_end:
        if fault.end is not None and at >= fault.end and not topped:
            topup = round(BURN_TOKENS_PER_HOUR * TOPUP_HOURS)
            entries.append(ledger_rules.credit(user, topup, f"{tag}-topup", fault.end, "top-up"))
            available += topup
            topped = True
        if available >= JOB_TOKENS:
            video = f"{tag}-v{k}"
            task: dict = {"user_id": user, "video_id": video, "task_id": ledger_rules.job_id(video)}
            task["tokens_reserved"] = JOB_TOKENS
            entries += ledger_rules.reserve([task], at)
            consumed = ledger_rules.settle(task, "succeeded", at + timedelta(seconds=30), "delivered")
            entries += [consumed] if consumed else []
            available -= JOB_TOKENS
        at, k = at + step, k + 1
    return pl.DataFrame(entries, schema=LEDGER_SCHEMA)


def simulate_faults(
    market: Market,
    start: datetime,
    hours: float,
    executions_per_hour: float,
    seed: int,
    faults: Sequence[Fault] = (),
    run_id: str | None = None,
    keep_warm_seconds: float = DEFAULT_KEEP_WARM_SECONDS,
) -> FaultyRun:
    """``simulate`` with ``faults`` planted (module docstring for each model).

    Args:
        market, start, hours, executions_per_hour, seed, run_id: as ``simulate``.
        faults: the faults, applied in the module docstring's order.
        keep_warm_seconds: the keep-warm period that makes a start cold (the rate card's).

    Returns:
        ``FaultyRun``.

    Raises:
        ValueError: a fault names a provider that is not in the market (or cannot take its
            kind), or anything ``simulate`` refuses.
    """
    start = start.astimezone(UTC)
    run_end = start + timedelta(hours=hours)
    tag = f"sim-{stable_id(*([run_id] if run_id else [seed, start.isoformat()]), length=8)}"
    known = {m.provider_id for m in market.providers}
    for f in faults:
        if f.kind != DEPLETION and f.target not in known:
            raise ValueError(f"{f.kind}: no provider {f.target!r} in the market")
    rows = _with_telemetry(simulate(market, start, hours, executions_per_hour, seed, run_id=run_id))
    rng = np.random.default_rng([seed, 0xFA17])  # its own stream: the base rows stay simulate's
    fleets: list[tuple[str, int]] = []
    for i, f in enumerate(faults):
        if f.kind == SATURATION:
            extra, nodes = _surge(rows, market, f, run_end, executions_per_hour, seed + 1000 + i, f"{tag}-surge{i}")
            rows = pl.concat([rows, extra])
            fleets.append((f.target, nodes))
    for f in faults:
        if f.kind == COLD_STARTS:
            rows = _thin(rows, market, f, run_end, rng)
    per_call = {
        LATENCY_DRIFT: _latency_drift,
        THROTTLING: _throttling,
        COST_SPIKE: _cost_spike,
        INEFFICIENCY: _inefficiency,
    }
    for f in faults:
        if f.kind in per_call:
            rows = per_call[f.kind](rows, f, run_end, rng)
    for provider, nodes in fleets:
        rows = _queue(rows, provider, nodes)
    for f in faults:
        if f.kind == COLD_STARTS:
            rows = _boot(rows, f, run_end, keep_warm_seconds)
    ledgers = [depletion_ledger(f, run_end, f"{tag}-u{i}") for i, f in enumerate(faults) if f.kind == DEPLETION]
    ledger = pl.concat(ledgers) if ledgers else pl.DataFrame(schema=LEDGER_SCHEMA)
    return FaultyRun(rows.sort("finished_at", "task_id"), ledger)


def scenario_market(origin: datetime) -> Market:
    """The small market of the fault scenarios and of ``bench/signal_detection.py``: one effect
    type (``cartoon``) served by a local CPU workflow (``opencv-cartoon``, 12 s), a partner
    API billed per call (``partner-toon``: 0.25 USD a call, 40 s, the price class of
    generative-video APIs) and a GPU fleet (``gpu-toon`` on ``gpu-l4``, 20 s), all active,
    under a diurnal volume with load-dependent latency. The partner's bill makes its faults
    worth more than the classifier's critical 5 USD/h at a few hundred jobs an hour, as a
    real partner's would; the local providers' cost cents an hour."""
    from economics.simulator import ProviderModel, diurnal

    models = (
        ProviderModel("opencv-cartoon", "cartoon", "cpu-2c", 12.0, latency_median_ms=12_000, quality_mean=0.75),
        ProviderModel(
            "partner-toon",
            "cartoon",
            "cpu-2c",
            0.5,
            partner_cost_usd=0.25,
            latency_median_ms=40_000,
            quality_mean=0.85,
        ),
        ProviderModel("gpu-toon", "cartoon", "gpu-l4", 20.0, latency_median_ms=20_000, quality_mean=0.9),
    )
    return Market(models, origin, volume_by_hour=diurnal(0.4), latency_load_elasticity=0.5)
