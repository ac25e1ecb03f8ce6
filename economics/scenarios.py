"""The fault scenarios and clean weeks the signals engine is judged on (``tests/
test_fault_scenarios.py``, ``bench/signal_detection.py``, docs/signals.md "Fault scenarios").

A scenario simulates ``faults.scenario_market`` at ``JOBS_PER_HOUR`` for ``WARMUP`` of clean
history (the detectors' baselines), plants one fault for ``FAULT_FOR``, and replays the
signals cycles (``economics.replay``) from just before the fault until ``RECOVERY`` after it
is removed. A clean run simulates days without a fault and replays its last days. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from economics import faults as fx
from economics.cost_model import RateCard
from economics.metric_streams import GRAIN
from economics.replay import Replay, costed, replay
from economics.signal_detection import Policy

# A Monday, 00:00 UTC: the fault starts at midnight after a day of history.
ORIGIN = datetime(2026, 3, 2, tzinfo=UTC)
WARMUP = timedelta(hours=24)
FAULT_FOR = timedelta(hours=2)
# Long enough for a saturated fleet's queue to drain and the classification to resolve.
RECOVERY = timedelta(hours=3)
JOBS_PER_HOUR = 300.0
# The provider each kind hits in the scenario market (the user for depletion).
TARGETS = {
    fx.LATENCY_DRIFT: "partner-toon",
    fx.THROTTLING: "partner-toon",
    fx.COST_SPIKE: "partner-toon",
    fx.COLD_STARTS: "opencv-cartoon",
    fx.SATURATION: "gpu-toon",
    fx.DEPLETION: "sim-heavy-user",
    fx.INEFFICIENCY: "opencv-cartoon",
}


@dataclass(frozen=True)
class Scenario:
    """One replayed run: its fault (None for a clean run), rows and what the cycles said."""

    fault: fx.Fault | None
    run: fx.FaultyRun
    replay: Replay


def fault_window(origin: datetime = ORIGIN) -> tuple[datetime, datetime]:
    """(start, end) of a scenario's fault."""
    return origin + WARMUP, origin + WARMUP + FAULT_FOR


def run_fault(
    kind: str,
    seed: int,
    rate_card: RateCard,
    prices: Mapping[str, int],
    token_usd_rate: float,
    target: str | None = None,
    policy: Policy | None = None,
    origin: datetime = ORIGIN,
) -> Scenario:
    """Plant a ``kind`` fault (on ``TARGETS[kind]`` unless ``target``) and replay from one
    cycle before it to ``RECOVERY`` after its end."""
    start, end = fault_window(origin)
    fault = fx.Fault(kind, target or TARGETS[kind], start, end)
    hours = (end + RECOVERY - origin).total_seconds() / 3600
    run = fx.simulate_faults(fx.scenario_market(origin), origin, hours, JOBS_PER_HOUR, seed, [fault])
    costs = costed(run.rows, rate_card, prices, token_usd_rate)
    cycles = replay(
        run.rows,
        costs,
        run.ledger,
        start - GRAIN,
        end + RECOVERY,
        token_usd_rate=token_usd_rate,
        keep_warm_seconds=rate_card.keep_warm_seconds,
        signal_policy=policy,
    )
    return Scenario(fault, run, cycles)


def run_clean(
    days: float,
    judged_days: float,
    seed: int,
    rate_card: RateCard,
    prices: Mapping[str, int],
    token_usd_rate: float,
    policy: Policy | None = None,
    origin: datetime = ORIGIN,
) -> Scenario:
    """Simulate ``days`` without a fault and replay the cycles of the last ``judged_days``."""
    run = fx.simulate_faults(fx.scenario_market(origin), origin, days * 24, JOBS_PER_HOUR, seed)
    costs = costed(run.rows, rate_card, prices, token_usd_rate)
    end = origin + timedelta(days=days)
    cycles = replay(
        run.rows,
        costs,
        run.ledger,
        end - timedelta(days=judged_days) + GRAIN,
        end,
        token_usd_rate=token_usd_rate,
        keep_warm_seconds=rate_card.keep_warm_seconds,
        signal_policy=policy,
    )
    return Scenario(None, run, cycles)
