"""The economic engine replayed cycle by cycle over a history, without the lake or Dagster: what
``signals_job`` would have concluded at each 5-minute cycle (docs/signals.md, "Fault
scenarios"). The fault scenario tests, the clean-week false-alarm count and
``bench/signal_detection.py`` run on it.

Each cycle at time ``now`` (a multiple of the 5-minute grain) does what the assets of
``assets/gold/signals.py`` do, with the same functions and windows:

1. metric streams of the complete buckets before ``now`` (provider and instance-type streams
   are computed once for the whole history — a bucket's row depends only on executions up to
   its end — and the user streams from the ledger entries before ``now``, since the balance
   is a "now" figure);
2. ``signal_detection.detect`` over the detectors' history; its signals are accumulated like
   the ``signals`` table (stable ids) and the classifier reads those of the report window;
3. ``bottlenecks.evidence_for`` on the streams of the last hour and ``bottlenecks.classify``
   against the classifications so far, upserted by id like ``bottleneck_classifications``.

One difference, for cost: the seasonal detector (Holt-Winters) is fitted once per simulated
day instead of every cycle — per stream and day, on the two days before it, judging the day
(its one-step-ahead predictions use only earlier data, so a cycle sees what it could have
seen); the asset refits on the two days before each cycle. A fit costs about a second per
series, so every-cycle fits would make a replayed week take hours.

The cycles run at bucket boundaries, so the current bucket is empty; the asset, running a few
seconds after the boundary, sees a few seconds of it. Pure: Polars and NumPy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from economics import bottlenecks as bn
from economics.cost_model import DEFAULT_KEEP_WARM_SECONDS, RateCard, cost_frame
from economics.metric_streams import EXECUTION_COLUMNS, GRAIN, metric_streams
from economics.signal_detection import SIGNAL_SCHEMA, Policy, detect, history_start

SEASONAL = "holt_winters"
DAY = timedelta(days=1)
_NO_EXECUTIONS = pl.DataFrame(schema=dict.fromkeys(EXECUTION_COLUMNS, pl.String))
_NO_COSTS = pl.DataFrame(
    schema=dict.fromkeys(("task_id", "cost_usd", "startup_cost_usd", "tokens_charged", "cost_tokens"), pl.Float64)
)
# The columns of a cycle's view of an open classification (``Replay.timeline``).
TIMELINE_COLUMNS = ("at", "classification_id", "category", "severity", "automatic_action", *bn.KEYS)


@dataclass(frozen=True)
class Replay:
    """What the replayed cycles concluded.

    Attributes:
        classifications: the ``bottleneck_classifications`` table after the last cycle
            (``CLASSIFICATION_SCHEMA``): one row per classification, its ``first_seen_at``
            (raised) and ``resolved_at`` (cleared, null while open).
        timeline: one row per cycle and classification open after it (``TIMELINE_COLUMNS``;
            ``at`` the cycle's time), so a severity or an automatic action at any cycle shows.
        signals: every signal the cycles reported (``SIGNAL_SCHEMA``, unique ids).
    """

    classifications: pl.DataFrame
    timeline: pl.DataFrame
    signals: pl.DataFrame


def cycle_times(start: datetime, end: datetime) -> list[datetime]:
    """The 5-minute boundaries in [start, end] (start rounded up to the grain)."""
    first = pl.Series([start]).dt.truncate("5m").item()
    if first < start:
        first += GRAIN
    out = []
    at = first
    while at <= end:
        out.append(at)
        at += GRAIN
    return out


def _seasonal_signals(base: pl.DataFrame, ledger: pl.DataFrame, days: list[datetime], policy: Policy) -> pl.DataFrame:
    """Holt-Winters signals of each day in ``days`` (midnights), judged in one go per day."""
    daily = dataclasses.replace(policy, detectors=(SEASONAL,), report_intervals=int(DAY / GRAIN))
    found = []
    for day in days:
        end = day + DAY
        view = _streams(base, ledger, end, policy)
        found.append(detect(view, end - GRAIN, daily))
    return pl.concat(found) if found else pl.DataFrame(schema=SIGNAL_SCHEMA)


def _streams(base: pl.DataFrame, ledger: pl.DataFrame, now: datetime, policy: Policy) -> pl.DataFrame:
    """The streams a cycle at ``now`` sees: complete buckets within the detectors' history."""
    complete = (pl.col("bucket_start") + GRAIN <= now) & (pl.col("bucket_start") >= history_start(now, policy))
    done = base.filter(complete)
    spent = ledger.filter(pl.col("occurred_at") < now)
    if spent.is_empty():
        return done
    users = metric_streams(_NO_EXECUTIONS, _NO_COSTS, spent).filter(complete)
    return pl.concat([done, users], how="vertical")


def replay(
    executions: pl.DataFrame,
    costs: pl.DataFrame,
    ledger: pl.DataFrame,
    start: datetime,
    end: datetime,
    *,
    token_usd_rate: float,
    keep_warm_seconds: float = DEFAULT_KEEP_WARM_SECONDS,
    signal_policy: Policy | None = None,
    bottleneck_policy: bn.Policy | None = None,
) -> Replay:
    """Run the signals cycles at every 5-minute boundary in [start, end].

    Args:
        executions: finished executions (``metric_streams.EXECUTION_COLUMNS``), all of the
            history the detectors should see (from ``start − signal_policy.history``).
        costs: their ``execution_costs`` columns (``task_id``, ``cost_usd``,
            ``startup_cost_usd``, ``tokens_charged``, ``cost_tokens``).
        ledger: ledger entries (``economics.ledger`` columns; may be empty).
        start, end: the first and last cycle (UTC).
        token_usd_rate: USD per token (prices token depletion).
        keep_warm_seconds: the rate card's keep-warm period.
        signal_policy, bottleneck_policy: the detectors' and the tree's settings.

    Returns:
        ``Replay``.
    """
    policy = signal_policy or Policy()
    tree = bottleneck_policy or bn.Policy()
    base = metric_streams(executions, costs, ledger.clear(), keep_warm_seconds).filter(pl.col("scope") != "user")
    cycles = cycle_times(start, end)
    per_cycle = dataclasses.replace(policy, detectors=tuple(d for d in policy.detectors if d != SEASONAL))
    seasonal = pl.DataFrame(schema=SIGNAL_SCHEMA)
    if SEASONAL in policy.detectors and cycles:
        days = sorted({pl.Series([c - GRAIN]).dt.truncate("1d").item() for c in cycles})
        seasonal = _seasonal_signals(base, ledger, days, policy)
    window = policy.report_intervals * GRAIN
    signals = [seasonal.clear()]
    seen_ids: set[str] = set()
    previous = pl.DataFrame(schema=bn.CLASSIFICATION_SCHEMA)
    timeline = []
    for now in cycles:
        view = _streams(base, ledger, now, policy)
        fresh = detect(view, now, per_cycle)
        fresh = pl.concat([fresh, seasonal.filter(pl.col("detected_at").is_between(now - window, now - GRAIN))])
        fresh = fresh.filter(~pl.col("signal_id").is_in(list(seen_ids)))
        seen_ids.update(fresh["signal_id"].to_list())
        signals.append(fresh)
        # The classifier's reads (assets/gold/signals.py bottleneck_classifications).
        found = pl.concat(signals).filter(pl.col("detected_at") > now - window)
        recent = view.filter(pl.col("bucket_start") > now - bn.EVIDENCE_WINDOW)
        evidence = bn.evidence_for(found, recent, now, previous, tree)
        rows = bn.classify(evidence, {}, previous, now, token_usd_rate, tree)
        if not rows.is_empty():
            previous = pl.concat(
                [previous.filter(~pl.col("classification_id").is_in(rows["classification_id"].to_list())), rows]
            )
        opened = previous.filter(pl.col("status") == "open")
        if not opened.is_empty():
            timeline.append(opened.select(pl.lit(now).alias("at"), *TIMELINE_COLUMNS[1:]))
    timeline_schema = pl.Schema({"at": bn.UTC_TS, **{c: bn.CLASSIFICATION_SCHEMA[c] for c in TIMELINE_COLUMNS[1:]}})
    return Replay(
        classifications=previous.sort("first_seen_at", "classification_id"),
        timeline=pl.concat(timeline).cast(timeline_schema) if timeline else pl.DataFrame(schema=timeline_schema),
        signals=pl.concat(signals).sort("detected_at", "signal_id"),
    )


def costed(rows: pl.DataFrame, rate_card: RateCard, prices: Mapping[str, int], token_usd_rate: float) -> pl.DataFrame:
    """``execution_costs``-like columns of simulated rows (``cost_frame`` with every term,
    list prices): what the economics job would store for them."""
    return cost_frame(rows, rate_card, dict(prices), token_usd_rate, breakdown=True)
