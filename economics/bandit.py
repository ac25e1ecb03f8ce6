"""Adaptive routing estimates: discounted statistics per provider × effect type and discounted
Thompson sampling over the manifest's score (docs/routing.md).

The routing problem is a non-stationary multi-armed bandit per effect type: each provider is
an arm, each execution a pull, and the manifest's score (``economics.routing``) the objective.
A trailing window forgets abruptly and at a speed fixed in hours, so it either lags a price
shock (24 h) or starves at low volume (1 h). Here every observation is instead discounted by
the number of executions of its effect type that finished after it:

    w_i = 2^(−a_i / H)      a_i = executions of the same effect type finished after row i

(the per-round discount γ = 2^(−1/H) of discounted UCB, Garivier & Moulines, "On
upper-confidence bound policies for switching bandit problems", ALT 2011, and of discounted
Thompson sampling, Raj & Kalyani, "Taming non-stationary bandits: a Bayesian approach",
2017). The half-life H is counted in executions, not hours, so the estimates forget at the
pace evidence arrives: at 2,000 jobs/h a price shock is absorbed in minutes, at 50 jobs/h the
same number of jobs spans hours and nothing starves. ``HALF_LIFE_EXECUTIONS`` says how H was
chosen.

Per (provider_id, effect_type) the decayed sums give

    n        = Σ w                      (effective executions)
    success  = Σ w·ok / n
    cost     = Σ w·ok·cost / Σ w·ok     (succeeded calls, as ``economics.stats``)
    duration = Σ w·ok·ms / Σ w·ok
    quality  = Σ w·q / Σ w              over the scored rows

and their weighted variances. Because all arms of an effect type are discounted at every
execution, an arm that stops being tried loses effective executions, its posterior widens
again and Thompson sampling tries it again: the estimates never freeze on a stale view.

Thompson sampling (Thompson 1933; Russo et al., "A Tutorial on Thompson Sampling", 2018) routes
each job to a provider with the posterior probability that it is the best. The probability is
estimated by drawing ``samples`` joint posterior draws of every provider's success rate
(Beta(1 + Σw·ok, 1 + Σw·(1 − ok))), mean quality, and log mean cost and duration (normal, the
variance of a weighted mean with n effective observations), scoring each draw with the
manifest's formula and counting how often each provider wins. A floor mixes in a uniform share
``floor`` (π = (1 − f)·TS + f/K) so every provider keeps a known, non-zero propensity: the
off-policy estimators (``economics.off_policy``) divide by it.

Pure: polars / numpy, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import polars as pl

from economics.routing import EXPLORATION_RATE, PRIORITY_WEIGHTS, _version, build_manifest

KEYS = ["provider_id", "effect_type"]

# Half-life of an observation, in executions of its effect type. Chosen on the regret bench
# (bench/routing_regret.py, docs/routing.md): short enough that a 5× price shock on the
# leading provider flips the ranking within ~100 of its jobs, long enough that the providers
# explored a few percent of the time keep several effective observations at 50 jobs/h. It is
# also the order of Garivier & Moulines' tuning γ = 1 − ¼·√(Υ/T) for a few breakpoints Υ per
# horizon T of a few thousand executions.
HALF_LIFE_EXECUTIONS = 200.0
# Observations older than this many half-lives weigh under 2⁻¹² (0.02 %): they are dropped, so
# an estimate needs at most that many executions per effect type.
KEEP_HALF_LIVES = 12
# Posterior draws per manifest: the Monte Carlo error of a probability p is √(p(1−p)/S) ≤ 0.7 %.
THOMPSON_SAMPLES = 5_000
# Uniform share mixed into the Thompson probabilities: exploration never stops and every
# propensity is at least FLOOR / K.
FLOOR = 0.02
# Priors of a provider without evidence (per effect type): success Beta(1, 1); quality a
# normal around 0.5 with sd 0.25 (weight of one observation); log cost and duration a normal
# around the effect type's observed mean with sd 1 (a factor e either way).
QUALITY_PRIOR, QUALITY_PRIOR_SD = 0.5, 0.25
LOG_PRIOR_SD = 1.0
# A weighted variance needs this many effective observations before it replaces the prior's.
MIN_VARIANCE_N = 2.0

# Change detection (``change_points``): candidate numbers of newest executions that follow a
# change, roughly geometric so a step is located within ~40 % at any age up to 512 executions.
CHANGE_GRID = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512]
# GLR statistic above which a change is declared: χ²₁'s 1 − 10⁻⁶ quantile is 23.9; 25 keeps
# false restarts rare over the ~70 tests (grid × metrics) per provider and cycle, while three
# failures in a row of a provider that failed 1 % of the time (GLR ≈ 25) or one call at 5× its
# usual cost (GLR ≈ 40 at σ_log = 0.25) are enough.
CHANGE_THRESHOLD = 25.0
# Least variance of one observation in a Gaussian GLR (log cost, log duration, quality): a
# provider whose values never varied would otherwise make any difference infinitely significant.
VARIANCE_FLOOR = {"_lc": 0.05**2, "_ld": 0.05**2, "_q": 0.02**2}

# Input of ``decayed_stats``: one row per execution.
# (Annotated: mypy types a dict mixing dtype classes with a Datetime instance as object.)
_OBSERVATION_COLUMNS: dict[str, pl.DataType | type[pl.DataType]] = {
    "provider_id": pl.String,
    "effect_type": pl.String,
    "finished_at": pl.Datetime("us", "UTC"),
    "ok": pl.Boolean,
    "cost_usd": pl.Float64,
    "duration_ms": pl.Float64,
    "quality": pl.Float64,
}
OBSERVATION_SCHEMA = pl.Schema(_OBSERVATION_COLUMNS)
_STATS_COLUMNS: dict[str, pl.DataType | type[pl.DataType]] = {
    "provider_id": pl.String,
    "effect_type": pl.String,
    "executions": pl.Float64,
    "success_rate": pl.Float64,
    "mean_cost_usd": pl.Float64,
    "mean_duration_ms": pl.Float64,
    "mean_quality": pl.Float64,
    "n_ok": pl.Float64,
    "n_quality": pl.Float64,
    "var_cost": pl.Float64,
    "var_duration": pl.Float64,
    "var_quality": pl.Float64,
    "changed_at": pl.Datetime("us", "UTC"),
}
STATS_SCHEMA = pl.Schema(_STATS_COLUMNS)


@dataclass(frozen=True)
class BanditConfig:
    """Settings of the adaptive estimates (defaults: the module constants).

    Attributes:
        half_life: H, executions of the effect type (> 0).
        floor: uniform share f of the routing probabilities, in [0, 1].
        samples: Thompson draws per manifest (≥ 1).
        detect_changes: restart a provider's estimates at its latest change point
            (``change_points``); off, only the discount forgets.
    """

    half_life: float = HALF_LIFE_EXECUTIONS
    floor: float = FLOOR
    samples: int = THOMPSON_SAMPLES
    detect_changes: bool = True

    def __post_init__(self):
        if not self.half_life > 0:
            raise ValueError(f"half_life must be > 0 executions, got {self.half_life}")
        if not 0.0 <= self.floor <= 1.0:
            raise ValueError(f"floor must be within [0, 1], got {self.floor}")
        if self.samples < 1:
            raise ValueError(f"samples must be ≥ 1, got {self.samples}")

    @property
    def keep_executions(self) -> int:
        """Executions per effect type an estimate reads (KEEP_HALF_LIVES half-lives)."""
        return math.ceil(KEEP_HALF_LIVES * self.half_life)


# The product's defaults (the Settings defaults take theirs from the module constants).
DEFAULT_CONFIG = BanditConfig()


def observations(costs: pl.DataFrame, quality: pl.DataFrame | None = None) -> pl.DataFrame:
    """``OBSERVATION_SCHEMA`` rows from ``execution_costs``-shaped rows.

    Args:
        costs: provider_id, effect_type, finished_at, status, cost_usd, duration_ms, and
            either ``composite`` (simulated rows) or ``task_id`` to join ``quality`` on.
        quality: ``quality_scores`` rows (task_id, status, composite); the ``scored`` ones
            give the quality of their task. None: take ``composite`` from ``costs``.
    """
    if quality is not None:
        scored = quality.filter(pl.col("status") == "scored").group_by("task_id").agg(_q=pl.col("composite").mean())
        costs = costs.join(scored, on="task_id", how="left")
    else:
        costs = costs.with_columns(_q=pl.col("composite") if "composite" in costs.columns else pl.lit(None))
    return costs.select(
        "provider_id",
        "effect_type",
        "finished_at",
        ok=pl.col("status") == "succeeded",
        cost_usd=pl.col("cost_usd").cast(pl.Float64),
        duration_ms=pl.col("duration_ms").cast(pl.Float64),
        quality=pl.col("_q").cast(pl.Float64),
    )


def newest_per_effect(rows: pl.DataFrame, n: int) -> pl.DataFrame:
    """The newest ``n`` rows (by ``finished_at``) of each effect type: all an estimate with
    ``keep_executions`` = n reads. Row order is not kept."""
    if rows.is_empty():
        return rows
    return rows.filter(pl.col("finished_at").rank("ordinal", descending=True).over("effect_type") <= n)


def _weighted(rows: pl.DataFrame, config: BanditConfig) -> pl.DataFrame:
    """``rows`` with the discount weight ``_w`` (by executions of the effect type after the
    row), the row's position from the newest among its provider's rows ``_r`` (0 = newest),
    and the per-metric columns the sums read: ``_ok`` (0/1), ``_lc`` / ``_ld`` (log cost and
    duration of succeeded calls, else null) and ``_q`` (quality, null unscored)."""
    ln_half = math.log(2.0) / config.half_life
    return (
        rows.sort("effect_type", "finished_at")
        .with_columns(_age=(pl.len() - 1 - pl.int_range(pl.len())).over("effect_type"))
        .filter(pl.col("_age") < config.keep_executions)
        .with_columns(
            _w=(-ln_half * pl.col("_age").cast(pl.Float64)).exp(),
            _r=(pl.len() - 1 - pl.int_range(pl.len())).over(KEYS),
            _ok=pl.col("ok").cast(pl.Float64),
            # Costs and durations are right-skewed (lognormal compute): their shifts are
            # tested on the log scale, where a price ×5 is the same step at any price level.
            _lc=pl.when(pl.col("ok") & (pl.col("cost_usd") > 0)).then(pl.col("cost_usd").log()),
            _ld=pl.when(pl.col("ok") & (pl.col("duration_ms") > 0)).then(pl.col("duration_ms").log()),
            _q=pl.col("quality"),
        )
    )


def _bernoulli_ll(k: pl.Expr, n: pl.Expr) -> pl.Expr:
    """Maximised Bernoulli log-likelihood k·ln(k/n) + (n − k)·ln(1 − k/n), 0·ln 0 = 0."""
    p = k / n
    return (
        pl.when(n > 0)
        .then(
            pl.when(k > 0).then(k * p.log()).otherwise(0.0)
            + pl.when(n - k > 0).then((n - k) * (1 - p).log()).otherwise(0.0)
        )
        .otherwise(0.0)
    )


def _gaussian_glr(col: str) -> dict[str, pl.Expr]:
    """Sums of the recent (unweighted, ``_rec``) and older (discounted) values of ``col``."""
    defined = pl.col(col).is_not_null()
    recent = defined & pl.col("_rec")
    old = defined & ~pl.col("_rec")
    v = pl.col(col).fill_null(0.0)
    return {
        f"{col}_rn": recent.sum().cast(pl.Float64),
        f"{col}_rs": (v * recent).sum(),
        f"{col}_on": (pl.col("_w") * old).sum(),
        f"{col}_os": (pl.col("_w") * v * old).sum(),
        f"{col}_os2": (pl.col("_w") * v**2 * old).sum(),
    }


def _glr_stat(col: str) -> pl.Expr:
    """Two-sample GLR for a mean shift with known variance (the older segment's):
    (x̄_recent − x̄_old)² / (σ²_old · (1/n_recent + 1/n_old)), 0 where undefined."""
    rn, rs, on, os_, os2 = (pl.col(f"{col}_{x}") for x in ("rn", "rs", "on", "os", "os2"))
    mean_old = os_ / on
    var_old = (os2 / on - mean_old**2).clip(lower_bound=VARIANCE_FLOOR[col])
    stat = (rs / rn - mean_old) ** 2 / (var_old * (1 / rn + 1 / on))
    return pl.when((rn > 0) & (on >= MIN_VARIANCE_N)).then(stat).otherwise(0.0)


def change_points(weighted: pl.DataFrame) -> pl.DataFrame:
    """The most recent change in each provider's behaviour, if any: per (provider_id,
    effect_type) the number ``keep`` of its newest executions that follow the change.

    For each candidate m of ``CHANGE_GRID``, the provider's newest m executions (unweighted)
    are compared with its older, discounted ones by generalised likelihood ratio tests of a
    shift (Lai, "Sequential changepoint detection in quality control and dynamical systems",
    JRSS B 1995; the CUSUM's statistic maximised over the change time): the success rate
    (Bernoulli GLR, 2·[ℓ(recent) + ℓ(old) − ℓ(pooled)]), and the means of log cost, log
    duration and quality (Gaussian GLR with the older segment's variance). Each is ≈ χ²₁
    under no change; the largest over metrics and m wins when it exceeds ``CHANGE_THRESHOLD``.

    Returns:
        provider_id, effect_type, keep (Int64), glr (Float64): only providers with a change.
    """
    grid = pl.DataFrame({"_m": CHANGE_GRID}, schema={"_m": pl.Int64})
    arms = weighted.group_by(KEYS).agg(_rows=pl.len())
    pairs = (
        weighted.join(arms, on=KEYS)
        .join(grid, how="cross")
        # A candidate needs older evidence to compare with.
        .filter(pl.col("_m") < pl.col("_rows"))
        .with_columns(_rec=pl.col("_r") < pl.col("_m"))
    )
    if pairs.is_empty():
        return pl.DataFrame(
            schema={"provider_id": pl.String, "effect_type": pl.String, "keep": pl.Int64, "glr": pl.Float64}
        )
    sums = pairs.group_by(*KEYS, "_m").agg(
        _rk=(pl.col("_ok") * pl.col("_rec")).sum(),
        _rn=pl.col("_rec").sum().cast(pl.Float64),
        _ok_=(pl.col("_w") * pl.col("_ok") * ~pl.col("_rec")).sum(),
        _on=(pl.col("_w") * ~pl.col("_rec")).sum(),
        **_gaussian_glr("_lc"),
        **_gaussian_glr("_ld"),
        **_gaussian_glr("_q"),
    )
    bern = 2 * (
        _bernoulli_ll(pl.col("_rk"), pl.col("_rn"))
        + _bernoulli_ll(pl.col("_ok_"), pl.col("_on"))
        - _bernoulli_ll(pl.col("_rk") + pl.col("_ok_"), pl.col("_rn") + pl.col("_on"))
    )
    stats = sums.with_columns(glr=pl.max_horizontal(bern, _glr_stat("_lc"), _glr_stat("_ld"), _glr_stat("_q")))
    return (
        stats.filter(pl.col("glr") > CHANGE_THRESHOLD)
        .sort("glr", descending=True)
        .group_by(KEYS, maintain_order=True)
        .first()
        .select(*KEYS, keep=pl.col("_m"), glr="glr")
    )


def decayed_stats(rows: pl.DataFrame, config: BanditConfig = DEFAULT_CONFIG) -> pl.DataFrame:
    """Discounted per-(provider, effect type) statistics (module docstring formulas), each
    provider's restarted at its latest change point (``change_points``) when one is found.

    Args:
        rows: ``OBSERVATION_SCHEMA`` columns, any order; only the newest
            ``config.keep_executions`` per effect type matter.
        config: the half-life.

    Returns:
        ``STATS_SCHEMA``, one row per (provider_id, effect_type) in ``rows``, sorted by them:
        the ``economics.stats.provider_stats`` columns (``executions`` = effective count, a
        float) so ``economics.routing.build_manifest`` ranks on them, plus the effective
        succeeded and scored counts, the weighted variances Thompson sampling needs (a
        restarted provider keeps its pre-change variances until it has MIN_VARIANCE_N
        executions again; null where undefined) and ``changed_at`` (the first execution after
        the detected change, null when none).
    """
    if rows.is_empty():
        return pl.DataFrame(schema=STATS_SCHEMA)
    weighted = _weighted(rows, config)
    changes = change_points(weighted) if config.detect_changes else None
    if changes is not None and not changes.is_empty():
        weighted = weighted.join(changes.select(*KEYS, "keep"), on=KEYS, how="left").with_columns(
            _kept=pl.col("keep").is_null() | (pl.col("_r") < pl.col("keep"))
        )
    else:
        weighted = weighted.with_columns(_kept=pl.lit(True), keep=pl.lit(None, pl.Int64))
    ok = pl.col("_ok")
    scored = pl.col("_q").is_not_null().cast(pl.Float64)
    c = pl.when(pl.col("ok")).then(pl.col("cost_usd")).otherwise(0.0)
    d = pl.when(pl.col("ok")).then(pl.col("duration_ms")).otherwise(0.0)
    q = pl.col("_q").fill_null(0.0)

    def sums(prefix: str, kept: pl.Expr) -> dict[str, pl.Expr]:
        w = pl.col("_w") * kept
        return {
            f"{prefix}n": w.sum(),
            f"{prefix}n_ok": (w * ok).sum(),
            f"{prefix}n_q": (w * scored).sum(),
            f"{prefix}sc": (w * ok * c).sum(),
            f"{prefix}sc2": (w * ok * c**2).sum(),
            f"{prefix}sd": (w * ok * d).sum(),
            f"{prefix}sd2": (w * ok * d**2).sum(),
            f"{prefix}sq": (w * scored * q).sum(),
            f"{prefix}sq2": (w * scored * q**2).sum(),
        }

    agg = weighted.group_by(KEYS).agg(
        **sums("", pl.col("_kept").cast(pl.Float64)),
        **sums("all_", pl.lit(1.0)),
        changed_at=pl.col("finished_at").filter(pl.col("keep").is_not_null() & pl.col("_kept")).min(),
    )

    def mean(total: str, n: str) -> pl.Expr:
        return pl.when(pl.col(n) > 0).then(pl.col(total) / pl.col(n))

    def var(total: str, squares: str, n: str) -> pl.Expr:
        # Weighted second moment minus the squared mean; clipped at 0 against rounding.
        def one(prefix: str) -> pl.Expr:
            t, sq, nn = (pl.col(prefix + x) for x in (total, squares, n))
            return pl.when(nn >= MIN_VARIANCE_N).then((sq / nn - (t / nn) ** 2).clip(lower_bound=0.0))

        return pl.coalesce(one(""), one("all_"))

    return (
        agg.with_columns(
            executions="n",
            success_rate=pl.col("n_ok") / pl.col("n"),
            mean_cost_usd=mean("sc", "n_ok"),
            mean_duration_ms=mean("sd", "n_ok"),
            mean_quality=mean("sq", "n_q"),
            n_quality="n_q",
            var_cost=var("sc", "sc2", "n_ok"),
            var_duration=var("sd", "sd2", "n_ok"),
            var_quality=var("sq", "sq2", "n_q"),
        )
        .select(STATS_SCHEMA.names())
        .cast(STATS_SCHEMA)
        .sort(KEYS)
    )


def _log_mean_draws(
    rng: np.random.Generator, mean: np.ndarray, var: np.ndarray, n: np.ndarray, samples: int
) -> np.ndarray:
    """Draws of log(mean) per provider: normal around log(mean) with the delta-method variance
    var / (n·mean²) of a weighted mean; providers without a mean draw from the prior around
    the mean of the known ones' logs (sd LOG_PRIOR_SD). Shape (samples, K)."""
    known = np.isfinite(mean) & (mean > 0) & (n > 0)
    centre = np.log(np.where(known, mean, 1.0))
    prior = float(centre[known].mean()) if known.any() else 0.0
    # Coefficient of variation² of one observation; without a variance yet, the prior's.
    cv2 = np.where(known & np.isfinite(var), var / np.where(known, mean, 1.0) ** 2, LOG_PRIOR_SD**2)
    sd = np.where(known, np.sqrt(cv2 / np.maximum(n, 1e-12)), LOG_PRIOR_SD)
    # A known mean never gets a narrower posterior than the prior gives one observation's worth
    # of evidence on top of it (precision-weighted); an unknown one is the prior.
    loc = np.where(known, centre, prior)
    return rng.normal(loc, np.minimum(sd, LOG_PRIOR_SD), size=(samples, len(mean)))


def thompson_probabilities(
    stats: pl.DataFrame,
    provider_ids: list[str],
    priority: str = "balanced",
    config: BanditConfig = DEFAULT_CONFIG,
    rng: np.random.Generator | None = None,
) -> dict[str, float]:
    """Probability that each provider of one effect type is the best by the manifest's score,
    mixed with the uniform floor (module docstring).

    Args:
        stats: ``decayed_stats`` rows of that effect type (any subset of the providers).
        provider_ids: the routable providers, registry order.
        priority: key of ``economics.routing.PRIORITY_WEIGHTS``.
        config: samples and floor.
        rng: the draws' generator (seed it for a reproducible manifest).

    Returns:
        provider_id → probability, summing to 1 (empty for no providers).
    """
    k = len(provider_ids)
    if k == 0:
        return {}
    if k == 1:
        return {provider_ids[0]: 1.0}
    rng = rng or np.random.default_rng()
    w = PRIORITY_WEIGHTS[priority]
    by_id = {r["provider_id"]: r for r in stats.iter_rows(named=True)}

    def col(name: str) -> np.ndarray:
        return np.array(
            [(by_id[p][name] if p in by_id and by_id[p][name] is not None else np.nan) for p in provider_ids],
            dtype=float,
        )

    s = config.samples
    n, n_ok, n_q = (np.nan_to_num(col(c)) for c in ("executions", "n_ok", "n_quality"))
    success = rng.beta(1.0 + n_ok, 1.0 + np.maximum(n - n_ok, 0.0), size=(s, k))
    # Quality: normal–normal with the prior as one observation.
    q_mean, q_var = col("mean_quality"), col("var_quality")
    q_var = np.where(np.isfinite(q_var), np.maximum(q_var, 1e-6), QUALITY_PRIOR_SD**2)
    q_known = np.isfinite(q_mean) & (n_q > 0)
    post_mean = np.where(q_known, (n_q * np.nan_to_num(q_mean) + QUALITY_PRIOR) / (n_q + 1.0), QUALITY_PRIOR)
    post_sd = np.where(q_known, np.sqrt(q_var / (n_q + 1.0)), QUALITY_PRIOR_SD)
    quality = np.clip(rng.normal(post_mean, post_sd, size=(s, k)), 0.0, 1.0)
    cost = np.exp(_log_mean_draws(rng, col("mean_cost_usd"), col("var_cost"), n_ok, s))
    duration = np.exp(_log_mean_draws(rng, col("mean_duration_ms"), col("var_duration"), n_ok, s))
    score = success * (
        w["quality"] * quality
        + w["cost"] * cost.min(axis=1, keepdims=True) / cost
        + w["speed"] * duration.min(axis=1, keepdims=True) / duration
    )
    wins = np.bincount(score.argmax(axis=1), minlength=k) / s
    probs = (1.0 - config.floor) * wins + config.floor / k
    return dict(zip(provider_ids, (float(p) for p in probs), strict=True))


def thompson_weights(
    stats: pl.DataFrame,
    providers_by_effect: Mapping[str, list[str]],
    priority: str = "balanced",
    config: BanditConfig = DEFAULT_CONFIG,
    seed: int | None = None,
) -> dict[str, dict[str, float]]:
    """``thompson_probabilities`` of every effect type: effect type → provider_id → probability.

    ``seed`` seeds one generator for all effect types (in sorted order), so the same stats
    and seed give the same weights."""
    rng = np.random.default_rng(seed)
    return {
        effect: thompson_probabilities(stats.filter(pl.col("effect_type") == effect), list(ids), priority, config, rng)
        for effect, ids in sorted(providers_by_effect.items())
    }


def adaptive_manifest(
    stats: pl.DataFrame,
    providers_by_effect: Mapping[str, list[str]],
    published_at: datetime,
    priority: str = "balanced",
    config: BanditConfig = DEFAULT_CONFIG,
    exploration_rate: float = EXPLORATION_RATE,
    exclude: Iterable[str] = frozenset(),
    seed: int | None = None,
    breakers: Mapping[str, str] | None = None,
) -> dict:
    """A routing manifest whose weights are the Thompson probabilities.

    ``economics.routing.build_manifest`` scores the providers on the decayed point estimates
    (its reasons and expectations); each entry's ``weight`` is then its
    ``thompson_probabilities`` value and the ranks follow the weights (ties: the score order).
    ``exploration_rate`` is kept for M5's test batch (``select_providers``), which explores
    with it on top of the manifest's top ranks.

    Args:
        stats: ``decayed_stats`` output.
        providers_by_effect, published_at, priority, exclude, breakers: as ``build_manifest``
            (a provider whose breaker is open ranks last with weight 0; the others share
            its Thompson probability in proportion to theirs).
        config: half-life, floor and Thompson draws.
        seed: seeds the draws; None derives it from ``published_at`` so a manifest is
            reproducible from its inputs.

    Returns:
        ``build_manifest``'s dict with the weights and ranks above and ``policy`` =
        ``{"kind": "thompson", "half_life_executions", "floor", "samples"}``.
    """
    manifest = build_manifest(
        stats, dict(providers_by_effect), published_at, priority, exploration_rate, exclude, breakers
    )
    listed = {effect: [e["provider_id"] for e in entries] for effect, entries in manifest["effects"].items()}
    if seed is None:
        seed = int(published_at.timestamp() * 1e6)
    probs = thompson_weights(stats, listed, priority, config, seed)
    for effect, entries in manifest["effects"].items():
        open_ = {e["provider_id"] for e in entries if not e.get("available", True)}
        kept = sum(v for k, v in probs[effect].items() if k not in open_)
        if open_ and len(open_) < len(entries) and kept > 0:
            probs[effect] = {k: (0.0 if k in open_ else v / kept) for k, v in probs[effect].items()}
        order = {e["provider_id"]: i for i, e in enumerate(entries)}
        entries.sort(
            key=lambda e: (e["provider_id"] in open_, -probs[effect][e["provider_id"]], order[e["provider_id"]])
        )
        for rank, e in enumerate(entries, start=1):
            e["rank"] = rank
            e["weight"] = round(probs[effect][e["provider_id"]], 6)
    manifest["policy"] = {
        "kind": "thompson",
        "half_life_executions": config.half_life,
        "floor": config.floor,
        "samples": config.samples,
    }
    manifest["version"] = _version({"effects": manifest["effects"], "policy": manifest["policy"]})
    return manifest
