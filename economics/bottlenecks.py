"""Stage 2 of the economic engine: a readable decision tree that turns signals into bottleneck
classifications (docs/signals.md, "Classifier"; one runbook per category in docs/runbooks/).

For each stream with at least one signal in the cycle (``evidence_for``), ``classify`` walks
this tree, first match wins:

    user stream:
      hours to exhaustion < 24 (and tokens burning)             → TOKEN_DEPLETION_RISK
    provider × effect stream:
      throttle rate ≥ 5 %, or a signal on throttle_rate         → PROVIDER_API_THROTTLING
      a signal on p95 queue wait
        and the instance type is a GPU (``gpu-…``) and its
        utilisation ≥ 85 %                                      → GPU_SATURATION
      cold-start share ≥ 50 %, or a signal on cold_start_share,
        with a latency or queue signal                          → COLD_START_PENALTY
      a signal on p95 latency or queue wait, or on error rate
        with timeouts the main error                            → PROVIDER_LATENCY_DEGRADATION
      a signal on cold_start_share alone                        → COLD_START_PENALTY
      a signal on cost per run (up), margin (down), or on
        error rate with other errors                            → WORKFLOW_INEFFICIENCY
      otherwise                                                 → not classified

Throttling is tested first because 429s also raise latency (retries) and errors; queueing on a
saturated GPU before cold starts because a saturated fleet has no cold nodes to blame.

Cost impact (USD per hour, an estimate of what the condition costs while it lasts; runs per
hour = the stream's runs over the latest hour):

* PROVIDER_API_THROTTLING — throttled runs/h × cost per run (work paid and thrown away);
* GPU_SATURATION — runs/h × cost per run × queue share of latency (p95 queue / p95 latency):
  the share of each job's time users wait for a slot, priced at the job's cost;
* COLD_START_PENALTY — the startup cost of the latest hour (``startup_cost_usd``);
* PROVIDER_LATENCY_DEGRADATION — runs/h × cost per run × (p95 latency / baseline − 1), the
  extra instance time a slower provider bills, + failed runs/h × cost per run;
* WORKFLOW_INEFFICIENCY — runs/h × (cost per run − baseline) + failed runs/h × cost per run;
* TOKEN_DEPLETION_RISK — burn rate (tokens/h) × the token's USD value: the revenue that stops
  when the balance runs out.

A classification lasts while its condition does, not only while a detector fires: change
detectors fire on the change (CUSUM re-baselines after an alarm, the robust z-score's
trailing median catches up with a new level within about an hour), so a fault that goes on
would otherwise be resolved half an hour after the detectors fell silent and raised again at
their next alarm — flapping. Each open classification keeps, per metric that signalled, the
baseline the first detector compared with and the worst value seen since (``hold`` in its
evidence); in a cycle without a new signal on those metrics it is still seen while one of
the stream's last 3 values of one of them is beyond the midpoint between that baseline and
that worst value (``Policy.hold_fraction``) — a ``held`` signal in its evidence. (Any of
three, not their median: a stream with a few runs an hour shows its condition in some
intervals, not every one.) Once every such metric is back below the midpoint it is no longer seen, and is
resolved ``resolve_after`` later. While a stream has an open classification, the cycles'
conditions count for it (one episode per stream): symptoms shift inside an episode — a
saturated fleet's queue drains after the surge and leaves only slowness, a throttled
provider's errors hover around the threshold — and a new category at each shift would be
flapping, not news. The episode's category moves only up the tree (``SPECIFICITY``): when
a more specific cause shows under the symptom it opened with (the fleet's utilisation
crosses 85 % a cycle after the queue signal), the open classification is re-classified in
place (same id and start); a vaguer category than the episode's counts for the episode.

Severity is ``critical`` when the impact reaches ``Policy.critical_usd_per_hour`` or the
category's own critical condition holds (throttle or error rate ≥ 20 %, exhaustion within
6 hours), else ``warning``. A classification gets its category's automatic action
(``AUTOMATIC_ACTIONS``, at the severities ``ACT_AT_SEVERITY`` allows; ``economics.actions``
plans it, the action sensor carries it out). Pure: Polars only.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import polars as pl

from economics.ids import stable_id
from economics.signal_detection import KEYS, LOWER_IS_WORSE

GPU_SATURATION = "GPU_SATURATION"
PROVIDER_LATENCY_DEGRADATION = "PROVIDER_LATENCY_DEGRADATION"
PROVIDER_API_THROTTLING = "PROVIDER_API_THROTTLING"
TOKEN_DEPLETION_RISK = "TOKEN_DEPLETION_RISK"
WORKFLOW_INEFFICIENCY = "WORKFLOW_INEFFICIENCY"
COLD_START_PENALTY = "COLD_START_PENALTY"
CATEGORIES = (
    GPU_SATURATION,
    PROVIDER_LATENCY_DEGRADATION,
    PROVIDER_API_THROTTLING,
    TOKEN_DEPLETION_RISK,
    WORKFLOW_INEFFICIENCY,
    COLD_START_PENALTY,
)
RUNBOOKS = {c: f"docs/runbooks/{c.lower().replace('_', '-')}.md" for c in CATEGORIES}
RECOMMENDED = {
    GPU_SATURATION: "Add GPU capacity (raise the fleet's max instances) or move low-priority effects to CPU.",
    PROVIDER_LATENCY_DEGRADATION: "Shift routing weight away from the provider until its p95 is back under the SLO.",
    PROVIDER_API_THROTTLING: "Lower the provider's concurrency, ask for a higher rate limit, route overflow elsewhere.",
    TOKEN_DEPLETION_RISK: "Tell the user before the balance runs out; offer a top-up or pause their queued work.",
    WORKFLOW_INEFFICIENCY: "Review the workflow's cost per run against its baseline (parameters, resolution, retries).",
    COLD_START_PENALTY: "Keep nodes warm longer (keep_warm_seconds) or keep a minimum of warm instances at peak hours.",
}
# The tree's categories from the most specific cause to the vaguest symptom (its order of
# tests): an open episode may move up this list as the cause shows, never down.
SPECIFICITY = (
    TOKEN_DEPLETION_RISK,
    PROVIDER_API_THROTTLING,
    GPU_SATURATION,
    COLD_START_PENALTY,
    PROVIDER_LATENCY_DEGRADATION,
    WORKFLOW_INEFFICIENCY,
)
# The automatic action of each category (economics/actions.py plans it, within its guardrails;
# the action sensor carries it out) and the least severity it is taken at: demoting a provider
# takes all of an effect type's traffic off it, so only a critical degradation does; the others
# are bounded (halved concurrency, a budget, a message, a recommendation) and act on warnings.
AUTOMATIC_ACTIONS: dict[str, str] = {
    PROVIDER_API_THROTTLING: "reduce_concurrency",
    PROVIDER_LATENCY_DEGRADATION: "routing_demote",
    TOKEN_DEPLETION_RISK: "notify_user",
    GPU_SATURATION: "scale_up",
    WORKFLOW_INEFFICIENCY: "review_workflow",
    COLD_START_PENALTY: "warm_pool",
}
ACT_AT_SEVERITY: dict[str, str] = dict.fromkeys(CATEGORIES, "warning") | {PROVIDER_LATENCY_DEGRADATION: "critical"}


def automatic_action(category: str, severity: str) -> str | None:
    """The category's automatic action when ``severity`` reaches its ``ACT_AT_SEVERITY``."""
    if ACT_AT_SEVERITY[category] == "critical" and severity != "critical":
        return None
    return AUTOMATIC_ACTIONS[category]


UTC_TS = pl.Datetime("us", "UTC")
# The streams the classifier reads: the latest hour's buckets and the one before it.
EVIDENCE_WINDOW = timedelta(minutes=65)
_CLASSIFICATION_SCHEMA_COLUMNS: dict[str, pl.DataType | type[pl.DataType]] = {
    "classification_id": pl.String,
    "category": pl.String,
    "severity": pl.String,
    "status": pl.String,
    "scope": pl.String,
    "provider_id": pl.String,
    "effect_type": pl.String,
    "instance_type": pl.String,
    "user_id": pl.String,
    "source": pl.String,
    "evidence": pl.String,
    "recommended_action": pl.String,
    "runbook": pl.String,
    "cost_impact_usd_per_hour": pl.Float64,
    "affected_jobs": pl.List(pl.String),
    "automatic_action": pl.String,
    "action_taken": pl.String,
    "first_seen_at": UTC_TS,
    "last_seen_at": UTC_TS,
    "resolved_at": UTC_TS,
}
CLASSIFICATION_SCHEMA = pl.Schema(_CLASSIFICATION_SCHEMA_COLUMNS)


@dataclass(frozen=True)
class Policy:
    """Limits of the tree (defaults documented in the module docstring).

    Attributes:
        throttle_rate: 429 share that is throttling on its own.
        gpu_utilisation: utilisation of a GPU fleet that counts as saturated.
        cold_start_share: share of runs starting cold that is a penalty on its own.
        exhaustion_hours: a user's balance running out sooner is a risk.
        critical_usd_per_hour: impact that makes any classification critical.
        critical_rate: throttle or error rate that is critical.
        critical_exhaustion_hours: exhaustion this soon is critical.
        resolve_after: a classification not seen for this long is resolved.
        hold_fraction: an open classification is still seen while a metric that signalled
            is beyond baseline + this × (worst value − baseline) (module docstring).
        hold_points: the latest values of the stream, any of which holds.
        spike_intervals: intervals of the report window a robust z-score must fire in to
            make a case on its own (module docstring).
    """

    throttle_rate: float = 0.05
    gpu_utilisation: float = 0.85
    cold_start_share: float = 0.5
    exhaustion_hours: float = 24.0
    critical_usd_per_hour: float = 5.0
    critical_rate: float = 0.2
    critical_exhaustion_hours: float = 6.0
    resolve_after: timedelta = timedelta(minutes=30)
    hold_fraction: float = 0.5
    hold_points: int = 3
    spike_intervals: int = 2


@dataclass(frozen=True)
class Evidence:
    """What the tree sees for one stream.

    Attributes:
        key: the stream key (``signal_detection.KEYS`` → value).
        latest: the stream's latest interval (``STREAM_SCHEMA`` columns).
        fleet: the latest ``instance_type`` row of its instance type, or {}, with
            ``utilisation_hour``: the fleet's mean utilisation over the latest hour.
        signals: metric → list of {detector, value, baseline, score} of this cycle.
        runs_per_hour, cost_usd_last_hour, startup_usd_last_hour: over the latest hour.
        hold: metric → {baseline, peak}: the reference levels an open classification is held
            by (module docstring).
        rates: the error rates (``ERROR_RATES``) over the latest hour, weighted by runs; {}:
            the latest interval's are used.
    """

    key: dict
    latest: dict
    fleet: dict
    signals: dict[str, list[dict]]
    runs_per_hour: float
    cost_usd_last_hour: float
    startup_usd_last_hour: float
    hold: dict[str, dict] = field(default_factory=dict)
    rates: dict[str, float] = field(default_factory=dict)

    def rate(self, name: str) -> float:
        """An error rate of the latest hour (``rates``), else of the latest interval."""
        return self.rates[name] if name in self.rates else _num(self.latest.get(name))

    def has(self, metric: str) -> bool:
        """Whether any detector fired on ``metric`` this cycle."""
        return bool(self.signals.get(metric))

    def baseline(self, metric: str) -> float | None:
        """The baseline the first detector that fired on ``metric`` compared with."""
        hits = self.signals.get(metric) or []
        return hits[0]["baseline"] if hits else None


def _num(v) -> float:
    return float(v) if v is not None and not (isinstance(v, float) and math.isnan(v)) else 0.0


# The error rates the tree splits errors by. They are judged over the latest hour: one
# 5-minute bucket holds a handful of runs, so its split of a 30 % throttle rate is 0 % one
# time in twenty, and the category would flip with it.
ERROR_RATES = ("error_rate", "throttle_rate", "timeout_rate", "other_error_rate")


def decide(ev: Evidence, policy: Policy) -> str | None:
    """The category of ``ev`` by the tree in the module docstring, or None."""
    m = ev.latest
    if ev.key["scope"] == "user":
        hours = m.get("hours_to_exhaustion")
        return TOKEN_DEPLETION_RISK if hours is not None and hours < policy.exhaustion_hours else None
    if ev.key["scope"] != "provider_effect":
        return None
    throttled = max(ev.rate("throttle_rate"), _num(m.get("throttle_rate")))
    if throttled >= policy.throttle_rate or ev.has("throttle_rate"):
        return PROVIDER_API_THROTTLING
    queue = ev.has("p95_queue_wait_ms")
    slow = ev.has("p95_latency_ms") or queue
    gpu = (m.get("instance_type") or "").startswith("gpu")
    busy = max(_num(ev.fleet.get("utilisation")), _num(ev.fleet.get("utilisation_hour")))
    if queue and gpu and busy >= policy.gpu_utilisation:
        return GPU_SATURATION
    cold = _num(m.get("cold_start_share")) >= policy.cold_start_share or ev.has("cold_start_share")
    if cold and slow:
        return COLD_START_PENALTY
    errors = ev.has("error_rate")
    timeouts = ev.rate("timeout_rate") >= ev.rate("other_error_rate") and ev.rate("timeout_rate") > 0
    if slow or (errors and timeouts):
        return PROVIDER_LATENCY_DEGRADATION
    if ev.has("cold_start_share"):
        return COLD_START_PENALTY
    if ev.has("cost_per_run_usd") or ev.has("margin") or errors:
        return WORKFLOW_INEFFICIENCY
    return None


def cost_impact(category: str, ev: Evidence, token_usd_rate: float) -> float:
    """USD per hour the condition costs (module docstring), ≥ 0."""
    m = ev.latest
    per_run = _num(m.get("cost_per_run_usd"))
    runs = ev.runs_per_hour
    failed = runs * ev.rate("error_rate") * per_run
    if category == TOKEN_DEPLETION_RISK:
        return _num(m.get("token_burn_per_hour")) * token_usd_rate
    if category == PROVIDER_API_THROTTLING:
        return runs * ev.rate("throttle_rate") * per_run
    if category == GPU_SATURATION:
        p95 = _num(m.get("p95_latency_ms"))
        return runs * per_run * (_num(m.get("p95_queue_wait_ms")) / p95 if p95 > 0 else 0.0)
    if category == COLD_START_PENALTY:
        return ev.startup_usd_last_hour
    if category == PROVIDER_LATENCY_DEGRADATION:
        base = ev.baseline("p95_latency_ms")
        slower = max(0.0, _num(m.get("p95_latency_ms")) / base - 1) if base else 0.0
        return runs * per_run * slower + failed
    base = ev.baseline("cost_per_run_usd")
    return runs * max(0.0, per_run - base if base is not None else 0.0) + failed


def severity(category: str, ev: Evidence, impact: float, policy: Policy) -> str:
    """``critical`` or ``warning`` (module docstring)."""
    m = ev.latest
    if impact >= policy.critical_usd_per_hour:
        return "critical"
    if category == TOKEN_DEPLETION_RISK:
        hours = m.get("hours_to_exhaustion")
        return "critical" if hours is not None and hours < policy.critical_exhaustion_hours else "warning"
    rate = ev.rate("throttle_rate") if category == PROVIDER_API_THROTTLING else ev.rate("error_rate")
    return "critical" if rate >= policy.critical_rate else "warning"


def _worse(metric: str) -> int:
    return -1 if metric in LOWER_IS_WORSE else 1


def _key_expr() -> pl.Expr:
    return pl.concat_str([pl.col(k).fill_null("") for k in KEYS], separator="|")


def _prior_holds(open_rows: pl.DataFrame | None) -> dict[str, dict[str, dict]]:
    """stream key → the hold levels of its open (non-user) classification, from its evidence
    (rows written before holds existed: the first signal's baseline and value)."""
    if open_rows is None or open_rows.is_empty():
        return {}
    out: dict[str, dict[str, dict]] = {}
    rows = open_rows.filter((pl.col("status") == "open") & (pl.col("scope") != "user"))
    for r in rows.with_columns(_key=_key_expr()).iter_rows(named=True):
        evidence = json.loads(r["evidence"] or "{}")
        hold = evidence.get("hold") or {
            m: {"baseline": hits[0]["baseline"], "peak": hits[0]["value"]}
            for m, hits in evidence.get("signals", {}).items()
            if hits and hits[0].get("baseline") is not None
        }
        out.setdefault(r["_key"], {}).update(hold)
    return out


def _updated_hold(prior: dict[str, dict], signals: dict[str, list[dict]]) -> dict[str, dict]:
    """The hold levels after this cycle's fresh signals: a new metric starts at its first
    signal's baseline; the peak is the worst value seen."""
    hold = {m: dict(v) for m, v in prior.items()}
    for metric, hits in signals.items():
        values = [h["value"] for h in hits if h.get("value") is not None and math.isfinite(h["value"])]
        if not values:
            continue
        worst = max(values) if _worse(metric) > 0 else min(values)
        ref = hold.setdefault(metric, {"baseline": hits[0]["baseline"], "peak": worst})
        ref["peak"] = max(ref["peak"], worst) if _worse(metric) > 0 else min(ref["peak"], worst)
    return hold


def _held(hold: dict[str, dict], rows: pl.DataFrame, now: datetime, policy: Policy) -> dict[str, list[dict]]:
    """Held signals of an open classification without a fresh one (module docstring)."""
    out: dict[str, list[dict]] = {}
    for metric, ref in hold.items():
        if metric not in rows.columns or ref.get("baseline") is None:
            continue
        recent = rows[metric].drop_nulls().drop_nans().tail(policy.hold_points)
        if recent.is_empty():
            continue
        value = float(recent.max() if _worse(metric) > 0 else recent.min())  # type: ignore[arg-type]
        base, peak = float(ref["baseline"]), float(ref["peak"])
        clear = base + policy.hold_fraction * (peak - base)
        if (value - clear) * _worse(metric) > 0:
            span = peak - base
            out[metric] = [
                {
                    "detector": "held",
                    "value": value,
                    "baseline": base,
                    "score": (value - base) / span if span else math.inf,
                    "at": now.isoformat(),
                }
            ]
    return out


# Detectors that judge one interval at a time (a point against its trailing window or its
# prediction band): one such alarm is a spike, not yet a condition.
POINT_DETECTORS = frozenset({"robust_z", "holt_winters"})


def _corroborated(signals: dict[str, list[dict]], policy: Policy) -> dict[str, list[dict]]:
    """The metrics whose signals make a case: a CUSUM or threshold signal, or point detectors
    firing in at least ``policy.spike_intervals`` intervals of the report window (module
    docstring)."""
    out = {}
    for metric, hits in signals.items():
        points = [h for h in hits if h["detector"] in POINT_DETECTORS]
        if len(points) < len(hits) or len({h["at"] for h in points}) >= policy.spike_intervals:
            out[metric] = hits
    return out


def evidence_for(
    signals: pl.DataFrame,
    streams: pl.DataFrame,
    now: datetime,
    open_classifications: pl.DataFrame | None = None,
    policy: Policy | None = None,
) -> list[Evidence]:
    """One ``Evidence`` per stream key with a signal in ``signals`` (and every user stream
    with a projected exhaustion, which is a condition, not a detection), plus the streams of
    open classifications whose condition is held (module docstring).

    Args:
        signals: this cycle's ``signal_detection.detect`` rows.
        streams: ``metric_streams`` rows of at least the latest hour.
        now: the cycle's time.
        open_classifications: the ``bottleneck_classifications`` rows so far (the open ones
            are held); None: nothing is held.
        policy: the tree's limits (the hold's).
    """
    policy = policy or Policy()
    hour_ago = now - timedelta(hours=1)
    keyed = streams.with_columns(_key=_key_expr())
    sig = signals.with_columns(_key=_key_expr())
    holds = _prior_holds(open_classifications)
    wanted = set(sig["_key"].to_list()) | set(holds)
    wanted |= set(
        keyed.filter((pl.col("scope") == "user") & pl.col("hours_to_exhaustion").is_not_null())["_key"].to_list()
    )
    fleet_rows = keyed.filter(pl.col("scope") == "instance_type").sort("bucket_start")
    fleets = {(r["instance_type"], r["source"]): r for r in fleet_rows.iter_rows(named=True)}
    for r in (
        fleet_rows.filter(pl.col("bucket_start") > hour_ago)
        .group_by("instance_type", "source")
        .agg(pl.col("utilisation").mean())
        .iter_rows(named=True)
    ):
        if (r["instance_type"], r["source"]) in fleets:
            fleets[(r["instance_type"], r["source"])] = {
                **fleets[(r["instance_type"], r["source"])],
                "utilisation_hour": r["utilisation"],
            }
    out = []
    for key in sorted(wanted):
        rows = keyed.filter(pl.col("_key") == key).sort("bucket_start")
        if rows.is_empty():
            continue
        latest = rows.row(-1, named=True)
        hour = rows.filter(pl.col("bucket_start") > hour_ago)
        by_metric: dict[str, list[dict]] = {}
        for s in sig.filter(pl.col("_key") == key).sort("detected_at").iter_rows(named=True):
            by_metric.setdefault(s["metric"], []).append(
                {k: s[k] for k in ("detector", "value", "baseline", "score")} | {"at": s["detected_at"].isoformat()}
            )
        by_metric = _corroborated(by_metric, policy)
        prior = holds.get(key, {})
        if prior:
            # Fresh signals, and the hold of the metrics that did not fire again.
            held = _held({m: v for m, v in prior.items() if m not in by_metric}, rows, now, policy)
            if not by_metric and not held:
                continue  # back below every hold level: the condition is gone
            by_metric = {**by_metric, **held}
        elif not by_metric and latest["scope"] != "user":
            continue  # its signals made no case
        hold = _updated_hold(prior, by_metric) if latest["scope"] != "user" else {}
        runs = hour["runs"].fill_null(0)
        total = float(runs.sum() or 0)
        rates = (
            {r: float((hour[r].fill_null(0) * runs).sum()) / total for r in ERROR_RATES if r in hour.columns}
            if total > 0
            else {}
        )
        out.append(
            Evidence(
                key={k: latest[k] for k in KEYS},
                latest=latest,
                fleet=fleets.get((latest["instance_type"], latest["source"]), {}),
                signals=by_metric,
                runs_per_hour=float(hour["runs"].sum() or 0),
                cost_usd_last_hour=float(hour["cost_usd"].sum() or 0),
                startup_usd_last_hour=float(hour["startup_cost_usd"].sum() or 0),
                hold=hold,
                rates=rates,
            )
        )
    return out


EVIDENCE_NUMBERS = (
    "instance_type",
    "runs",
    "p95_latency_ms",
    "p95_queue_wait_ms",
    "error_rate",
    "throttle_rate",
    "timeout_rate",
    "cost_per_run_usd",
    "margin",
    "cold_start_share",
    "token_burn_per_hour",
    "tokens_available",
    "hours_to_exhaustion",
)


def classify(
    evidence: list[Evidence],
    affected_jobs: dict[tuple, list[str]],
    previous: pl.DataFrame,
    now: datetime,
    token_usd_rate: float,
    policy: Policy | None = None,
) -> pl.DataFrame:
    """This cycle's classifications merged with the open ones from earlier cycles.

    Args:
        evidence: ``evidence_for`` output.
        affected_jobs: (provider_id, effect_type) or ("user", user_id) → ids of the videos
            (jobs) in the latest hour the condition touches.
        previous: the ``bottleneck_classifications`` table (CLASSIFICATION_SCHEMA).
        now: the cycle's time (UTC).
        token_usd_rate: USD per token (prices TOKEN_DEPLETION_RISK).
        policy: the tree's limits.

    Returns:
        CLASSIFICATION_SCHEMA rows to upsert: each detected condition (an open one keeps its
        id, first_seen_at and action_taken; a new one gets an id from its category, stream
        and first interval), and each earlier open classification not seen for
        ``resolve_after``, now ``resolved``.
    """
    policy = policy or Policy()
    open_prev = {
        (r["category"], *(r[k] for k in KEYS)): r
        for r in previous.filter(pl.col("status") == "open").iter_rows(named=True)
    }
    # One open episode per stream: its category moves only up the tree (module docstring).
    episodes = {ident[1:]: ident for ident, _ in sorted(open_prev.items(), key=lambda kv: kv[1]["first_seen_at"])}
    rows: list[dict] = []
    seen = set()
    for ev in evidence:
        category = decide(ev, policy)
        if category is None:
            continue
        episode = episodes.get(tuple(ev.key[k] for k in KEYS))
        if episode is not None and episode[0] != category:
            if SPECIFICITY.index(category) < SPECIFICITY.index(episode[0]):
                # A cause found under the symptom it opened with: the episode is re-classified
                # (same id, same start), not opened again.
                open_prev[(category, *episode[1:])] = open_prev.pop(episode)
            else:
                category = episode[0]
        ident = (category, *(ev.key[k] for k in KEYS))
        seen.add(ident)
        impact = round(cost_impact(category, ev, token_usd_rate), 6)
        sev = severity(category, ev, impact, policy)
        prior = open_prev.get(ident)
        first = prior["first_seen_at"] if prior else now
        jobs_key = (
            ("user", ev.key["user_id"]) if ev.key["scope"] == "user" else (ev.key["provider_id"], ev.key["effect_type"])
        )
        numbers = {k: ev.latest.get(k) for k in EVIDENCE_NUMBERS if ev.latest.get(k) is not None}
        rows.append(
            {
                "classification_id": prior["classification_id"] if prior else stable_id("bottleneck", *ident, first),
                "category": category,
                "severity": sev,
                "status": "open",
                **ev.key,
                "evidence": json.dumps(
                    {"signals": ev.signals, "numbers": numbers, "runs_per_hour": ev.runs_per_hour, "hold": ev.hold},
                    default=str,
                ),
                "recommended_action": RECOMMENDED[category],
                "runbook": RUNBOOKS[category],
                "cost_impact_usd_per_hour": impact,
                "affected_jobs": sorted(affected_jobs.get(jobs_key, [])),
                "automatic_action": automatic_action(category, sev),
                "action_taken": prior["action_taken"] if prior else None,
                "first_seen_at": first,
                "last_seen_at": now,
                "resolved_at": None,
            }
        )
    for ident, prior in open_prev.items():
        if ident not in seen and prior["last_seen_at"] <= now - policy.resolve_after:
            rows.append({**prior, "status": "resolved", "resolved_at": now})
    return pl.DataFrame(rows, schema=CLASSIFICATION_SCHEMA)
