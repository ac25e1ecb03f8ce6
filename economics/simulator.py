"""Market simulator (docs/architecture.md, "Economics"): providers with latent cost, quality, latency and failure
rate, drifting over time, hit by price shocks and outages, under a seasonal volume — producing
executions in exactly the shape the economics job reads, marked ``source = 'simulated'``.

Model, per (provider_id, effect_type) — a ``ProviderModel`` — for one call finished at time t
(d = days since ``Market.origin``, h = UTC hour of day of t):

    compute_seconds  = median_s · exp(σ_c·Z) · cost_mult(t)      Z ~ N(0, 1): lognormal
    partner_cost_usd = partner_cost · cost_mult(t)
    cost_mult(t)     = (1 + cost_drift)^d · Π cost_factor of the shocks before t
    composite        = clip(q(t) + sd·Z, 0, 1)  or  Beta with mean q(t), sd   (succeeded only)
    q(t)             = clip(quality_mean + quality_drift·d + Σ quality_delta, 0, 1)
    duration_ms      = latency_median · exp(σ_l·Z) · (1 + latency_drift)^d · Π latency_factor
                       · volume(h)^latency_load_elasticity
    failed           ~ Bernoulli(failure_rate, or the latest shock's failure_rate);
                       always inside an outage window

A price shock is realised on both compute seconds and partner cost because ``cost_frame``
prices compute seconds through a fixed rate card: scaling both scales the cost of every call
by exactly ``cost_factor`` (cost is linear in them). A failed call burns
``FAILED_CALL_COST_SHARE`` of its cost; a call inside an outage is refused: no cost at all.

Arrivals: a Poisson process whose rate in clock hour h is ``executions_per_hour ·
volume(h)``, with ``volume`` normalised to mean 1 over the day (so ``executions_per_hour``
stays the daily average). Times are completion times (``finished_at``): the economics job
sees nothing else, so dispatch times are not modelled. Every user job of an effect type also
gets one copy per shadow provider of that type (``selection = 'shadow'``), like M5 does.

Routing: without a router, jobs go uniformly to the active providers of their effect type.
With one, the run is cut into cycles (default 15 simulated minutes); at the start of each
the router sees the history so far and returns routing weights; the cycle's jobs are drawn
from them. The effect type's highest-weight provider gets ``selection = 'ranked'``, the
others ``'exploration'``; every job logs its ``propensity``, the normalised weight of the
provider drawn (1 for shadow copies), as M5 logs its inclusion probability.

Everything is vectorised with numpy and deterministic for a seed (the router permitting).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Literal, NamedTuple

import duckdb
import numpy as np
import polars as pl

from economics.bandit import DEFAULT_CONFIG, BanditConfig, adaptive_manifest, decayed_stats, observations
from economics.cost_model import RateCard, cost_frame
from economics.ids import event_id_sql, stable_id
from economics.routing import EXPLORATION_RATE, build_manifest, manifest_weights
from economics.stats import provider_stats
from economics.telemetry import SIMULATED, TELEMETRY, terminal_event_expr

SOURCE = SIMULATED
SELECTIONS = ("ranked", "exploration", "shadow")
# A failure happens, on average, halfway through the call when its point is uniform over the
# call; partner APIs bill failed calls inconsistently, so the same half is the middle guess.
FAILED_CALL_COST_SHARE = 0.5
SECONDS_PER_DAY = 86_400.0
# Stand-in execution count for known-true statistics (confidence ≈ 1 in the manifest).
TRUE_STATS_EXECUTIONS = 1_000_000

UTC_TS = pl.Datetime("us", "UTC")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Columns of economics.telemetry.finished_executions (the execution_costs input), plus the
# quality composite of succeeded calls.
# (Annotated: mypy types a dict mixing dtype classes such as pl.String with the UTC_TS instance
# as dict[str, object], which pl.Schema does not take.)
_SIMULATED_COLUMNS: dict[str, pl.DataType | type[pl.DataType]] = {
    "task_id": pl.String,
    "video_id": pl.String,
    "provider_id": pl.String,
    "effect_type": pl.String,
    "instance_type": pl.String,
    "status": pl.String,
    "selection": pl.String,
    "propensity": pl.Float64,
    "compute_seconds": pl.Float64,
    "partner_cost_usd": pl.Float64,
    "duration_ms": pl.Int64,
    "finished_at": UTC_TS,
    "source": pl.String,
    "composite": pl.Float64,
}
SIMULATED_SCHEMA = pl.Schema(_SIMULATED_COLUMNS)
# The payload of a simulated task event: everything it says is in the telemetry columns
# (the same JSON as resources.events.event writes for an empty payload).
EMPTY_PAYLOAD = "{}"

RoutingTable = Mapping[str, Mapping[str, float]]
Router = Callable[[datetime, pl.DataFrame], RoutingTable]
"""``router(now, history) -> {effect_type: {provider_id: weight}}``: called at the start of
every cycle with the rows finished before ``now``; weights need not sum to 1 (normalised);
an effect type left out is routed uniformly."""


@dataclass(frozen=True)
class ProviderModel:
    """Latent behaviour of one provider for one effect type.

    Attributes:
        compute_median_s / compute_sigma: lognormal compute seconds per call (median, σ of
            the log).
        partner_cost_usd: partner bill per call, USD.
        quality_mean / quality_sd / quality_dist: composite quality 0..1, clipped normal or
            beta (method of moments: a = m·k, b = (1 − m)·k, k = m(1 − m)/sd² − 1).
        latency_median_ms / latency_sigma: lognormal wall time per call.
        failure_rate: probability a call fails (0..1).
        cost_drift_per_day / latency_drift_per_day: relative change per day, compounding.
        quality_drift_per_day: absolute composite change per day.
        mode: ``active`` (routed) or ``shadow`` (gets copies, never routed).
    """

    provider_id: str
    effect_type: str
    instance_type: str
    compute_median_s: float
    compute_sigma: float = 0.25
    partner_cost_usd: float = 0.0
    quality_mean: float = 0.8
    quality_sd: float = 0.05
    quality_dist: Literal["normal", "beta"] = "normal"
    latency_median_ms: float = 10_000.0
    latency_sigma: float = 0.3
    failure_rate: float = 0.0
    cost_drift_per_day: float = 0.0
    quality_drift_per_day: float = 0.0
    latency_drift_per_day: float = 0.0
    mode: Literal["active", "shadow"] = "active"

    def __post_init__(self):
        if self.compute_median_s < 0 or self.partner_cost_usd < 0 or self.latency_median_ms <= 0:
            raise ValueError(f"{self.provider_id}: compute, partner cost and latency must be ≥ 0 (latency > 0)")
        if not 0 <= self.failure_rate <= 1 or not 0 <= self.quality_mean <= 1:
            raise ValueError(f"{self.provider_id}: failure_rate and quality_mean must be within [0, 1]")
        if self.quality_dist == "beta" and not 0 < self.quality_sd**2 < self.quality_mean * (1 - self.quality_mean):
            raise ValueError(f"{self.provider_id}: a beta needs 0 < sd² < m(1 − m)")
        if self.mode not in ("active", "shadow") or self.quality_dist not in ("normal", "beta"):
            raise ValueError(f"{self.provider_id}: unknown mode or quality_dist")


@dataclass(frozen=True)
class Shock:
    """A step change from ``at`` on: cost × ``cost_factor``, quality + ``quality_delta``,
    latency × ``latency_factor``, failure rate := ``failure_rate`` (if given). Applies to
    every effect type of the provider unless ``effect_type`` is given."""

    provider_id: str
    at: datetime
    cost_factor: float = 1.0
    quality_delta: float = 0.0
    latency_factor: float = 1.0
    failure_rate: float | None = None
    effect_type: str | None = None


@dataclass(frozen=True)
class Outage:
    """Every call of the provider finishing in [start, end) fails (refused, no cost)."""

    provider_id: str
    start: datetime
    end: datetime
    effect_type: str | None = None


def diurnal(amplitude: float, peak_hour: float = 20.0) -> tuple[float, ...]:
    """24 hourly volume multipliers 1 + a·cos(2π(h − peak)/24): one smooth daily wave
    (consumer video apps peak in the evening; 20:00 UTC is an arbitrary default)."""
    if not 0 <= amplitude < 1:
        raise ValueError("amplitude must be within [0, 1) so every hour has traffic")
    return tuple(1 + amplitude * math.cos(2 * math.pi * (h - peak_hour) / 24) for h in range(24))


@dataclass(frozen=True)
class Market:
    """Providers, events and demand of a simulated market.

    Attributes:
        providers: one model per (provider_id, effect_type), registry order.
        origin: time at which the models' base values hold; drift counts days from it.
        shocks / outages: see Shock, Outage.
        effect_mix: effect type → share of user jobs (normalised); None: uniform over the
            effect types that have an active provider.
        volume_by_hour: 24 multipliers of the arrival rate by UTC hour (normalised to mean
            1); None: flat.
        latency_load_elasticity: latency × volume(h)^e — busy hours are slower (0: no effect).
    """

    providers: tuple[ProviderModel, ...]
    origin: datetime
    shocks: tuple[Shock, ...] = ()
    outages: tuple[Outage, ...] = ()
    effect_mix: Mapping[str, float] | None = None
    volume_by_hour: tuple[float, ...] | None = None
    latency_load_elasticity: float = 0.0
    _index: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        keys = [(m.provider_id, m.effect_type) for m in self.providers]
        if len(set(keys)) != len(keys):
            raise ValueError("duplicate (provider_id, effect_type) in the market")
        times = [self.origin, *(s.at for s in self.shocks), *(t for o in self.outages for t in (o.start, o.end))]
        if any(t.tzinfo is None for t in times):
            raise ValueError("origin, shock and outage times must be tz-aware (UTC)")
        if any(o.end <= o.start for o in self.outages):
            raise ValueError("an outage must end after it starts")
        if self.volume_by_hour is not None and (
            len(self.volume_by_hour) != 24 or min(self.volume_by_hour) < 0 or sum(self.volume_by_hour) <= 0
        ):
            raise ValueError("volume_by_hour needs 24 non-negative multipliers, not all 0")
        object.__setattr__(self, "_index", {k: i for i, k in enumerate(keys)})
        unknown = {e for e in (self.effect_mix or {}) if e not in self.providers_by_effect()}
        if unknown:
            raise ValueError(f"effect_mix names effect types without an active provider: {sorted(unknown)}")

    def providers_by_effect(self, mode: str = "active") -> dict[str, list[str]]:
        """effect type → provider ids of that mode, in market order (build_manifest input)."""
        out: dict[str, list[str]] = {}
        for m in self.providers:
            if m.mode == mode:
                out.setdefault(m.effect_type, []).append(m.provider_id)
        return out

    def index(self, provider_id: str, effect_type: str) -> int:
        """Position of a model. Raises KeyError for an unknown pair."""
        try:
            return self._index[(provider_id, effect_type)]
        except KeyError:
            raise KeyError(f"no model for provider {provider_id!r} on {effect_type!r}") from None

    def volume(self) -> np.ndarray:
        """Hourly multipliers normalised to mean 1 (24 floats)."""
        v = np.ones(24) if self.volume_by_hour is None else np.asarray(self.volume_by_hour, float)
        return v * 24 / v.sum()

    def expected_stats(self, at: datetime, rate_card: RateCard) -> pl.DataFrame:
        """The true statistics of every model at ``at``, in ``provider_stats`` shape (plus
        ``cost_per_call_usd``: expected cost of a call, failures included) — what an oracle
        knows. Means of lognormals are median·exp(σ²/2); the quality mean ignores the small
        shift a clip at 0 or 1 causes.
        """
        p = np.arange(len(self.providers))
        t = np.full(len(p), (at - self.origin).total_seconds())
        hour = np.full(len(p), at.astimezone(UTC).hour)
        lat = _latent(self, p, t, hour)
        rates = np.array([rate_card.rate(m.instance_type) for m in self.providers])
        c = _Columns.of(self)
        cost_ok = (c.compute_median * np.exp(c.compute_sigma**2 / 2) * rates + c.partner) * lat.cost_mult
        success = np.where(lat.down, 0.0, 1.0 - lat.fail_p)
        per_call = np.where(lat.down, 0.0, success * cost_ok + (1 - success) * FAILED_CALL_COST_SHARE * cost_ok)
        return pl.DataFrame(
            {
                "provider_id": [m.provider_id for m in self.providers],
                "effect_type": [m.effect_type for m in self.providers],
                "executions": np.full(len(p), TRUE_STATS_EXECUTIONS, dtype=np.int64),
                "success_rate": success,
                "mean_cost_usd": cost_ok,
                "mean_duration_ms": c.latency_median * np.exp(c.latency_sigma**2 / 2) * lat.latency_mult,
                "mean_quality": lat.quality_mean,
                "cost_per_call_usd": per_call,
            }
        )


class _Columns(NamedTuple):
    """The models' parameters as arrays indexed by model position."""

    compute_median: np.ndarray
    compute_sigma: np.ndarray
    partner: np.ndarray
    quality_mean: np.ndarray
    quality_sd: np.ndarray
    beta: np.ndarray
    latency_median: np.ndarray
    latency_sigma: np.ndarray
    failure_rate: np.ndarray
    cost_drift: np.ndarray
    quality_drift: np.ndarray
    latency_drift: np.ndarray

    @classmethod
    def of(cls, market: Market) -> _Columns:
        ms = market.providers
        col = lambda f: np.array([f(m) for m in ms], dtype=float)  # noqa: E731
        return cls(
            col(lambda m: m.compute_median_s),
            col(lambda m: m.compute_sigma),
            col(lambda m: m.partner_cost_usd),
            col(lambda m: m.quality_mean),
            col(lambda m: m.quality_sd),
            np.array([m.quality_dist == "beta" for m in ms], dtype=bool),
            col(lambda m: m.latency_median_ms),
            col(lambda m: m.latency_sigma),
            col(lambda m: m.failure_rate),
            col(lambda m: m.cost_drift_per_day),
            col(lambda m: m.quality_drift_per_day),
            col(lambda m: m.latency_drift_per_day),
        )


class _Latent(NamedTuple):
    cost_mult: np.ndarray
    quality_mean: np.ndarray
    latency_mult: np.ndarray
    fail_p: np.ndarray
    down: np.ndarray


def _selected(market: Market, provider_id: str, effect_type: str | None) -> np.ndarray:
    """Boolean lookup by model index: the models a shock or outage applies to."""
    return np.array(
        [m.provider_id == provider_id and effect_type in (None, m.effect_type) for m in market.providers], dtype=bool
    )


def _compounding(rate_per_day: np.ndarray, p: np.ndarray, days: np.ndarray) -> np.ndarray:
    """(1 + rate)^days per call; exactly 1 (and cheap) when no model drifts."""
    if not rate_per_day.any():
        return np.ones(len(p))
    return np.exp(np.log1p(rate_per_day)[p] * days)


def _latent(market: Market, p: np.ndarray, t: np.ndarray, hour: np.ndarray) -> _Latent:
    """Current latent parameters of calls of models ``p`` finishing ``t`` seconds after
    ``market.origin`` in UTC hour ``hour`` (module docstring formulas)."""
    c = _Columns.of(market)
    days = t / SECONDS_PER_DAY
    cost_mult = _compounding(c.cost_drift, p, days)
    latency_mult = _compounding(c.latency_drift, p, days)
    if market.latency_load_elasticity:
        latency_mult *= (market.volume() ** market.latency_load_elasticity)[hour]
    quality = c.quality_mean[p] + c.quality_drift[p] * days
    fail_p = c.failure_rate[p]
    # Chronological, so the latest shock's failure rate wins.
    for s in sorted(market.shocks, key=lambda s: s.at):
        hit = np.flatnonzero(
            _selected(market, s.provider_id, s.effect_type)[p] & (t >= (s.at - market.origin).total_seconds())
        )
        cost_mult[hit] *= s.cost_factor
        latency_mult[hit] *= s.latency_factor
        quality[hit] += s.quality_delta
        if s.failure_rate is not None:
            fail_p[hit] = s.failure_rate
    down = np.zeros(len(p), dtype=bool)
    for o in market.outages:
        lo, hi = ((x - market.origin).total_seconds() for x in (o.start, o.end))
        down |= _selected(market, o.provider_id, o.effect_type)[p] & (t >= lo) & (t < hi)
    return _Latent(cost_mult, np.clip(quality, 0.0, 1.0, out=quality), latency_mult, fail_p, down)


def _arrivals(market: Market, start: datetime, hours: float, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted completion times, seconds after ``start``: Poisson per clock-hour segment with
    rate ``rate · volume(h)``, uniform within the segment.

    The c uniforms of a segment come out sorted without a sort (O(n), not O(n log n)) from
    c + 1 exponential spacings: (E₁ + … + E_k) / (E₁ + … + E_{c+1}), k = 1..c, are the order
    statistics of c uniforms (Rényi's representation; Devroye, Non-Uniform Random Variate
    Generation, 1986, §V.2).
    """
    total = hours * 3600.0
    epoch = start.timestamp()
    first = math.ceil(epoch / 3600.0) * 3600.0 - epoch
    edges = np.unique(np.clip(np.concatenate([[0.0], np.arange(first, total, 3600.0), [total]]), 0, total))
    lo, length = edges[:-1], np.diff(edges)
    hour = (np.floor((epoch + lo) / 3600.0) % 24).astype(np.int64)
    counts = rng.poisson(rate * market.volume()[hour] * length / 3600.0)
    cum = np.cumsum(rng.standard_exponential(int(counts.sum()) + len(counts)))
    last = np.cumsum(counts + 1) - 1  # each segment's closing spacing
    before = np.concatenate([[0.0], cum[last[:-1]]])
    keep = np.ones(len(cum), dtype=bool)
    keep[last] = False
    seg = np.repeat(np.arange(len(counts)), counts)
    return lo[seg] + (cum[keep] - before[seg]) / (cum[last] - before)[seg] * length[seg]


def _uniform_table(market: Market) -> dict[str, dict[str, float]]:
    return {e: dict.fromkeys(ps, 1.0) for e, ps in market.providers_by_effect().items()}


def _assign(
    market: Market, table: RoutingTable, effects: list[str], e_code: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model index, selection code (0 ranked / 1 exploration) and propensity (the normalised
    weight of the provider drawn) of each job."""
    p = np.empty(len(e_code), dtype=np.int64)
    sel = np.zeros(len(e_code), dtype=np.int8)
    prop = np.ones(len(e_code), dtype=float)
    u = rng.random(len(e_code))
    for code, effect in enumerate(effects):
        weights = dict(table.get(effect) or _uniform_table(market)[effect])
        models = np.array([market.index(pid, effect) for pid in weights])
        if any(market.providers[i].mode != "active" for i in models):
            raise ValueError(f"router sends {effect!r} jobs to a provider that is not active")
        w = np.asarray(list(weights.values()), dtype=float)
        if (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"router weights for {effect!r} must be ≥ 0 and not all 0: {weights}")
        jobs = np.flatnonzero(e_code == code)
        k = np.minimum(np.searchsorted(np.cumsum(w / w.sum()), u[jobs], side="right"), len(w) - 1)
        p[jobs] = models[k]
        prop[jobs] = (w / w.sum())[k]
        # Ties at the top (uniform traffic) are all 'ranked': nobody is exploring.
        sel[jobs] = (w[k] < w.max() - 1e-12).astype(np.int8)
    return p, sel, prop


def _outcomes(
    market: Market, p: np.ndarray, t_origin: np.ndarray, hour: np.ndarray, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Draw every call's compute, partner cost, status, quality and duration."""
    n = len(p)
    c = _Columns.of(market)
    lat = _latent(market, p, t_origin, hour)
    z_compute, z_latency, z_quality = rng.standard_normal((3, n))
    failed = (rng.random(n) < lat.fail_p) | lat.down
    # In place on the 3·n normals and the latent arrays: at 10M rows every temporary costs
    # 80 MB and ~20 ms.
    burn = lat.cost_mult
    burn[failed] *= FAILED_CALL_COST_SHARE
    burn[lat.down] = 0.0
    compute = _lognormal(c.compute_median[p], c.compute_sigma[p], z_compute)
    compute *= burn
    duration = _lognormal(c.latency_median[p], c.latency_sigma[p], z_latency)
    duration *= lat.latency_mult
    composite = z_quality
    composite *= c.quality_sd[p]
    composite += lat.quality_mean
    np.clip(composite, 0.0, 1.0, out=composite)
    beta = c.beta[p]
    if beta.any():
        m, sd = np.clip(lat.quality_mean[beta], 1e-3, 1 - 1e-3), c.quality_sd[p][beta]
        k = np.maximum(m * (1 - m) / sd**2 - 1, 1e-3)
        composite[beta] = rng.beta(m * k, (1 - m) * k)
    composite[failed] = np.nan
    return {
        "compute_seconds": compute,
        "partner_cost_usd": c.partner[p] * burn,
        "failed": failed,
        "composite": composite,
        "duration_ms": np.rint(duration).astype(np.int64),
    }


def call_outcomes(
    market: Market, models: np.ndarray, finished_at_us: np.ndarray, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Draw fresh outcomes for calls of ``models`` (model indices, ``Market.index``) finishing
    at ``finished_at_us`` (µs since the epoch, UTC): ``compute_seconds``, ``partner_cost_usd``,
    ``failed``, ``composite`` (NaN when failed) and ``duration_ms``, by the module docstring's
    formulas — what ``simulate`` draws for a call, for code that moves a call to another
    provider after the fact (``economics.faults``)."""
    epoch_s = np.asarray(finished_at_us, dtype=np.int64) / 1e6
    hour = (np.floor(epoch_s / 3600.0) % 24).astype(np.int64)
    return _outcomes(market, np.asarray(models, dtype=np.int64), epoch_s - market.origin.timestamp(), hour, rng)


def _lognormal(median: np.ndarray, sigma: np.ndarray, z: np.ndarray) -> np.ndarray:
    """median · exp(σ·Z), computed in ``z``'s buffer."""
    z *= sigma
    np.exp(z, out=z)
    z *= median
    return z


class _Run(NamedTuple):
    market: Market
    start: datetime
    prefix: str
    effects: list[str]
    rng: np.random.Generator


def _cycle_frame(
    run: _Run, t: np.ndarray, e_code: np.ndarray, job0: int, row0: int, table: RoutingTable
) -> pl.DataFrame:
    """Rows of one cycle: its user jobs (routed by ``table``) and their shadow copies."""
    market = run.market
    p, sel, prop = _assign(market, table, run.effects, e_code, run.rng)
    job = np.arange(len(t))
    shadows = [[market.index(pid, e) for pid in market.providers_by_effect("shadow").get(e, [])] for e in run.effects]
    width = max(map(len, shadows))
    if width:
        # Each job is followed by one copy per shadow provider of its effect type: rows stay
        # in time order without a sort.
        copies = 1 + np.array(list(map(len, shadows)))[e_code]
        job = np.repeat(job, copies)
        k = np.arange(len(job)) - np.repeat(np.cumsum(copies) - copies, copies)
        table_s = np.array([row + [-1] * (width - len(row)) for row in shadows])
        p = np.where(k == 0, p[job], table_s[e_code[job], np.maximum(k - 1, 0)])
        sel = np.where(k == 0, sel[job], np.int8(SELECTIONS.index("shadow"))).astype(np.int8)
        # A shadow copy always runs: probability 1 (not a routing draw).
        prop = np.where(k == 0, prop[job], 1.0)
        t = t[job]
    job += job0
    epoch = run.start.timestamp()
    hour = (np.floor((epoch + t) / 3600.0) % 24).astype(np.int64)
    out = _outcomes(market, p, t + (run.start - market.origin).total_seconds(), hour, run.rng)
    names = lambda values: pl.Series(values, dtype=pl.String).gather(p)  # noqa: E731
    start_us = (run.start - _EPOCH) // timedelta(microseconds=1)  # exact, unlike float seconds
    return pl.DataFrame(
        {
            "_row": np.arange(row0, row0 + len(p)),
            "_job": job,
            "provider_id": names([m.provider_id for m in market.providers]),
            "effect_type": names([m.effect_type for m in market.providers]),
            "instance_type": names([m.instance_type for m in market.providers]),
            "_failed": out["failed"],
            "selection": pl.Series(SELECTIONS, dtype=pl.String).gather(sel),
            "propensity": prop,
            "compute_seconds": out["compute_seconds"],
            "partner_cost_usd": out["partner_cost_usd"],
            "duration_ms": out["duration_ms"],
            "_us": start_us + np.rint(t * 1e6).astype(np.int64),
            "composite": out["composite"],
        }
    ).select(
        task_id=pl.concat_str(pl.lit(f"sim-{run.prefix}-t"), "_row"),
        video_id=pl.concat_str(pl.lit(f"sim-{run.prefix}-v"), "_job"),
        provider_id="provider_id",
        effect_type="effect_type",
        instance_type="instance_type",
        status=pl.when(pl.col("_failed")).then(pl.lit("failed")).otherwise(pl.lit("succeeded")),
        selection="selection",
        propensity="propensity",
        compute_seconds="compute_seconds",
        partner_cost_usd="partner_cost_usd",
        duration_ms="duration_ms",
        finished_at=pl.from_epoch("_us", time_unit="us").dt.replace_time_zone("UTC"),
        source=pl.lit(SOURCE),
        composite=pl.col("composite").fill_nan(None),
    )


def empty_history() -> pl.DataFrame:
    """A zero-row frame of simulated rows."""
    return pl.DataFrame(schema=SIMULATED_SCHEMA)


def simulate(
    market: Market,
    start: datetime,
    hours: float,
    executions_per_hour: float,
    seed: int,
    router: Router | None = None,
    cycle: timedelta = timedelta(minutes=15),
    history: pl.DataFrame | None = None,
    run_id: str | None = None,
) -> pl.DataFrame:
    """Simulate ``hours`` of executions from ``start``.

    Args:
        market: see Market.
        start: tz-aware start time (UTC or convertible).
        hours: simulated duration (≥ 0).
        executions_per_hour: mean user jobs per hour over a day (shadow copies come on top).
        seed: numpy seed; the same arguments give the same rows (for a deterministic router).
        router: see Router; None: uniform over the active providers, in one go.
        cycle: routing period when a router is given.
        history: earlier rows the router sees before this run's (not returned).
        run_id: names the run in task/video ids (``sim-<8 hex>-t<n>`` / ``-v<n>``); default
            derived from seed and start — give distinct ones to runs written to one lake.

    Returns:
        One row per execution, SIMULATED_SCHEMA, sorted by ``finished_at``.

    Raises:
        ValueError: naive start, negative hours / rate, or bad router weights.
    """
    if start.tzinfo is None:
        raise ValueError("start must be tz-aware (UTC)")
    if hours < 0 or executions_per_hour < 0:
        raise ValueError("hours and executions_per_hour must be ≥ 0")
    start = start.astimezone(UTC)
    rng = np.random.default_rng(seed)
    mix = market.effect_mix or dict.fromkeys(market.providers_by_effect(), 1.0)
    effects = sorted(mix)
    prefix = stable_id(*([run_id] if run_id else [seed, start.isoformat()]), length=8)
    run = _Run(market, start, prefix, effects, rng)
    t = _arrivals(market, start, hours, executions_per_hour, rng)
    share = np.array([mix[e] for e in effects], dtype=float)
    e_code = np.minimum(
        np.searchsorted(np.cumsum(share / share.sum()), rng.random(len(t)), side="right"), len(effects) - 1
    )
    step = cycle.total_seconds() if router else max(hours * 3600.0, 1.0)
    if step <= 0:
        raise ValueError("cycle must be positive")
    bounds = np.searchsorted(t, np.arange(0.0, hours * 3600.0 + step, step), side="left")
    frames: list[pl.DataFrame] = []
    past = [empty_history() if history is None else history.select(SIMULATED_SCHEMA.names())]
    job0 = row0 = 0
    for k, (lo, hi) in enumerate(pairwise(bounds)):
        if router is None:
            table: RoutingTable = _uniform_table(market)
        else:
            table = router(start + timedelta(seconds=k * step), pl.concat(past + frames, rechunk=False))
        if hi > lo:
            frames.append(_cycle_frame(run, t[lo:hi], e_code[lo:hi], job0, row0, table))
            job0, row0 = job0 + int(hi - lo), row0 + frames[-1].height
    return pl.concat(frames) if frames else empty_history()


def re_executions(
    rows: pl.DataFrame, share: float, seed: int, delay: timedelta = timedelta(minutes=10)
) -> pl.DataFrame:
    """Second outcomes for a ``share`` of ``rows``' tasks: each chosen task ran again (a
    re-executed run) ``delay`` to 2 × ``delay`` after its first outcome and got the other
    one (failed ↔ succeeded), with a fresh draw of its compute seconds and duration (the
    first ones × U(0.5, 1.5)). Appended after ``rows`` as execution events, the economics
    must keep the later outcome of each such task (``economics.telemetry.latest_outcomes``);
    the flipped status gives the second event its own id, as in M6.

    Args:
        rows: simulated rows (SIMULATED_SCHEMA).
        share: fraction of the tasks re-executed, 0..1.
        seed: numpy seed of the choice and the draws.
        delay: shortest time between the two outcomes.

    Returns:
        SIMULATED_SCHEMA rows, one per re-executed task; ``composite`` null (the second
        output is not scored).
    """
    if not 0 <= share <= 1:
        raise ValueError(f"share must be in [0, 1], got {share}")
    rng = np.random.default_rng(seed)
    chosen = rows.filter(pl.Series(rng.random(rows.height) < share))
    scale = pl.Series(rng.uniform(0.5, 1.5, chosen.height))
    later = pl.Series(rng.uniform(1.0, 2.0, chosen.height) * delay.total_seconds() * 1e6).cast(pl.Int64)
    ok = pl.col("status") == "failed"  # the other outcome: succeeded when the first failed
    return chosen.with_columns(
        status=pl.when(ok).then(pl.lit("succeeded")).otherwise(pl.lit("failed")),
        compute_seconds=pl.col("compute_seconds") * scale,
        duration_ms=(pl.col("duration_ms") * scale).round().cast(pl.Int64),
        finished_at=pl.col("finished_at") + pl.duration(microseconds=pl.lit(later)),
        composite=pl.lit(None, pl.Float64),
    ).select(SIMULATED_SCHEMA.names())


def quality_rows(rows: pl.DataFrame) -> pl.DataFrame:
    """``quality_scores``-shaped rows (task_id, video_id, provider_id, effect_type,
    status ``'scored'``, composite) for the succeeded simulated executions."""
    return rows.filter(pl.col("status") == "succeeded").select(
        "task_id", "video_id", "provider_id", "effect_type", status=pl.lit("scored"), composite="composite"
    )


def execution_events(rows: pl.DataFrame, stage: str = "M6") -> pl.DataFrame:
    """``execution_events`` rows for simulated executions: TaskSucceeded / TaskFailed at
    ``finished_at``, correlation id = video id, the telemetry as its typed columns
    (``economics.telemetry.TELEMETRY``; what a simulation does not model stays null) and an
    empty payload.

    ``event_id`` is ``economics.ids.event_id`` of (stage, event type, video id, task id),
    computed in DuckDB from the same rule, so writing the same rows twice is idempotent in
    the lake and a real M6 event of the same task would have the same id (the lake derives
    the task key on write, as for M6's). Pure: returns a frame, writes nothing.
    """
    events = rows.select(
        terminal_event_expr(pl.col("status")).alias("event_type"),
        pl.col("video_id").alias("correlation_id"),
        pl.lit(stage).alias("stage"),
        pl.col("finished_at").alias("occurred_at"),
        pl.lit(EMPTY_PAYLOAD).alias("payload"),
        "task_id",
        "provider_id",
        "effect_type",
        *(pl.col(c) if c in rows.columns else pl.lit(None, t).alias(c) for c, t in TELEMETRY.items()),
    )
    with duckdb.connect() as con:  # private in-memory database: no shared default connection
        ids = con.sql(f"SELECT {event_id_sql()} AS event_id FROM events").pl()
    return pl.concat([ids, events], how="horizontal")


class ManifestPolicy:
    """Router that re-publishes the routing manifest every cycle, as the economics job would:
    ``cost_frame`` → ``provider_stats`` over the trailing ``window`` → ``build_manifest`` →
    its epsilon-greedy weights. Every published manifest is kept in ``published``.

    Args:
        providers_by_effect: the routable providers (``Market.providers_by_effect()``).
        rate_card: prices compute seconds.
        window: history the statistics look back over; None: all of it.
    """

    def __init__(
        self,
        providers_by_effect: dict[str, list[str]],
        rate_card: RateCard,
        priority: str = "balanced",
        epsilon: float = EXPLORATION_RATE,
        window: timedelta | None = None,
        exclude: frozenset[str] = frozenset(),
    ):
        self.providers_by_effect, self.rate_card = providers_by_effect, rate_card
        self.priority, self.epsilon, self.window, self.exclude = priority, epsilon, window, exclude
        self.published: list[dict] = []

    def __call__(self, now: datetime, history: pl.DataFrame) -> RoutingTable:
        if self.window is not None:
            history = history.filter(pl.col("finished_at") >= now - self.window)
        # Prices do not enter the ranking: cost_frame is only asked for cost_usd.
        stats = provider_stats(cost_frame(history, self.rate_card, {}, 1.0), quality_rows(history))
        manifest = build_manifest(
            stats, self.providers_by_effect, now, self.priority, exploration_rate=self.epsilon, exclude=self.exclude
        )
        self.published.append(manifest)
        return manifest_weights(manifest)


class OraclePolicy:
    """Router that knows the market's true current statistics (``Market.expected_stats``
    at the cycle start) and sends every job to the best provider by the manifest's own
    score — the regret baseline: same objective, no estimation lag, no exploration."""

    def __init__(self, market: Market, rate_card: RateCard, priority: str = "balanced"):
        self.market, self.rate_card, self.priority = market, rate_card, priority

    def __call__(self, now: datetime, history: pl.DataFrame) -> RoutingTable:
        stats = self.market.expected_stats(now, self.rate_card)
        manifest = build_manifest(stats, self.market.providers_by_effect(), now, self.priority, exploration_rate=0.0)
        return manifest_weights(manifest)


def reference_market(origin: datetime) -> Market:
    """A market shaped after ``data/providers.yaml``: the 9 local providers over 4 effect
    types plus the ComfyUI provider as shadow, with one price shock (opencv-cartoon ×3 at
    +30 h), one outage (ffmpeg-slowmo-mci, +10 h to +11 h), a diurnal volume curve and
    load-dependent latency. Median compute seconds are rough guesses in the ratios measured
    on the real providers (docs/architecture.md), not measurements. Used by
    ``effectlake simulate`` and the benches."""
    models = (
        [ProviderModel("ffmpeg-colortemp", e, "cpu-2c", 2.0, quality_mean=0.78) for e in ("warm_grade", "cool_grade")]
        + [
            ProviderModel("opencv-curves", e, "cpu-2c", 6.0, quality_mean=0.80, quality_dist="beta")
            for e in ("warm_grade", "cool_grade")
        ]
        + [
            ProviderModel("ffmpeg-slowmo-dup", "slow_motion", "cpu-2c", 1.5, quality_mean=0.6),
            ProviderModel("ffmpeg-slowmo-mci", "slow_motion", "cpu-8c", 40.0, quality_mean=0.9, failure_rate=0.02),
            ProviderModel("opencv-cartoon", "cartoon", "cpu-2c", 12.0, quality_mean=0.75),
            ProviderModel("ffmpeg-posterize", "cartoon", "cpu-2c", 4.0, quality_mean=0.65),
            ProviderModel("comfyui-gpu", "cartoon", "gpu-l4", 20.0, quality_mean=0.9, mode="shadow"),
        ]
    )
    return Market(
        tuple(models),
        origin,
        shocks=(Shock("opencv-cartoon", origin + timedelta(hours=30), cost_factor=3.0),),
        outages=(Outage("ffmpeg-slowmo-mci", origin + timedelta(hours=10), origin + timedelta(hours=11)),),
        volume_by_hour=diurnal(0.4),
        latency_load_elasticity=0.5,
    )


class AdaptivePolicy:
    """Router that publishes the product's default manifest every cycle, as the economics job
    does: ``cost_frame`` → ``economics.bandit.decayed_stats`` (discounted by executions) →
    ``adaptive_manifest`` (discounted Thompson sampling) → its weights. Every published
    manifest is kept in ``published``.

    Args:
        providers_by_effect: the routable providers (``Market.providers_by_effect()``).
        rate_card: prices compute seconds.
        config: half-life, floor and draws (``economics.bandit.BanditConfig``).
    """

    def __init__(
        self,
        providers_by_effect: dict[str, list[str]],
        rate_card: RateCard,
        priority: str = "balanced",
        config: BanditConfig = DEFAULT_CONFIG,
        exclude: frozenset[str] = frozenset(),
    ):
        self.providers_by_effect, self.rate_card = providers_by_effect, rate_card
        self.priority, self.config, self.exclude = priority, config, exclude
        self.published: list[dict] = []

    def __call__(self, now: datetime, history: pl.DataFrame) -> RoutingTable:
        stats = decayed_stats(observations(cost_frame(history, self.rate_card, {}, 1.0)), self.config)
        manifest = adaptive_manifest(
            stats, self.providers_by_effect, now, self.priority, self.config, exclude=self.exclude
        )
        self.published.append(manifest)
        return manifest_weights(manifest)
