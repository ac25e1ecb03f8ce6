"""``effectlake simulate``: simulated execution history into the current lake, optionally with
faults planted (``--inject KIND[:TARGET]``, economics/faults.py).

Rows are written as ``execution_events`` with ``source = 'simulated'`` (a telemetry column), so
the economics job costs them like real ones but keeps them apart (marginality windows are
split by source; the routing manifest reads real executions only).

A fault starts ``--fault-hours`` before now and is still on when the history ends, so the next
signals cycle sees it. A ``depletion`` fault moves tokens: its ledger entries go through the
transactional store (credit, reserve, consume, like real jobs), for the user named as its
target or, without one, for a new user of a ``simulated`` workspace; the landing job brings
them to the lake.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import polars as pl

from economics import faults as fx
from economics.simulator import Market, execution_events, reference_market
from resources.events import utcnow
from resources.lake import Lake
from resources.schemas import EXECUTION_EVENTS
from resources.settings import Settings, get_settings
from resources.store.client import Store

BATCH_ROWS = 500_000  # bounded memory per Delta commit
SIMULATED_WORKSPACE = "simulated"


def _user_for(store: Store) -> str:
    """A new user of the ``simulated`` workspace (its id)."""
    workspace = store.create_workspace(SIMULATED_WORKSPACE)
    user, _key = store.create_user(workspace["workspace_id"], name="simulated heavy user")
    return user["user_id"]


def write_ledger(store: Store, ledger: pl.DataFrame) -> int:
    """Apply a fault's ledger entries (``FaultyRun.ledger``) through the store, in time order;
    returns how many were written (a repeat is a no-op: the store keys them)."""
    for e in ledger.sort("occurred_at").iter_rows(named=True):
        if e["kind"] == "credit":
            store.credit(e["user_id"], e["tokens"], e["task_id"], e["reason"], at=e["occurred_at"])
        elif e["kind"] == "reserve":
            store.reserve(e["user_id"], e["task_id"], e["tokens"], e["correlation_id"], at=e["occurred_at"])
        elif e["kind"] == "consume":
            store.consume(e["task_id"], e["reason"], at=e["occurred_at"])
    return ledger.height


def plan_faults(
    injects: Sequence[str], market: Market, start: datetime, new_user: Callable[[], str] | None = None
) -> list[fx.Fault]:
    """``--inject`` specs → faults starting at ``start`` and lasting (``KIND[:TARGET]``; the
    kind's default target when none is given, a new simulated user for ``depletion``).

    Raises:
        ValueError: an unknown kind or a target the market does not have.
    """
    faults = []
    for spec in injects:
        kind, target = fx.parse(spec)
        if target is None:
            target = new_user() if kind == fx.DEPLETION and new_user else fx.default_target(kind, market)
        faults.append(fx.Fault(kind, target, start))
    return faults


def run_simulation(
    days: float, seed: int, per_hour: float, injects: Sequence[str] = (), fault_hours: float = 2.0
) -> int:
    """Simulate ``days`` of history ending now at ``per_hour`` jobs/hour, with ``injects``
    planted for the last ``fault_hours``; returns the execution events written.

    Raises:
        ValueError: a bad ``--inject`` or ``fault_hours`` outside (0, days × 24].
    """
    settings: Settings = get_settings()
    lake = Lake(uri=settings.lake_uri)
    now = utcnow()
    start = now - timedelta(days=days)
    market = reference_market(start)
    if injects and not 0 < fault_hours <= days * 24:
        raise ValueError("--fault-hours must be positive and within the simulated days")
    store: Store | None = None

    def simulated_user() -> str:
        nonlocal store
        store = store or Store(settings.database_url)
        return _user_for(store)

    faults = plan_faults(injects, market, now - timedelta(hours=fault_hours), simulated_user)
    run = fx.simulate_faults(
        market, start, days * 24, per_hour, seed=seed, faults=faults, keep_warm_seconds=_keep_warm(settings)
    )
    rows = run.rows
    written = 0
    for offset in range(0, rows.height, BATCH_ROWS):
        written += lake.append(EXECUTION_EVENTS, execution_events(rows.slice(offset, BATCH_ROWS)))
    if not run.ledger.is_empty():
        store = store or Store(settings.database_url)
        write_ledger(store, run.ledger)
    print(
        f"simulated {rows.height:,} executions over {days:g} days (seed {seed}); "
        f"{written:,} new events in {lake.table_uri(EXECUTION_EVENTS)}"
    )
    for f in faults:
        print(f"fault {f.kind} on {f.target} since {f.start:%Y-%m-%d %H:%M} UTC (magnitude {f.size:g}), still on")
    return written


def _keep_warm(settings: Settings) -> float:
    from resources.catalog import Catalog

    return Catalog(data_dir=settings.data_dir).rate_card().keep_warm_seconds
