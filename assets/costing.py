"""A task's cost, stated once: what the gold ``execution_costs`` asset stores and what M5's
best-result selection weighs (docs/architecture.md, "Economics").

Both call ``task_costs``: the cost model (``economics.cost_model.cost_frame`` with every term:
compute, startup, idle share, partner, storage, bandwidth) with the providers' cost profiles
measured from the lake. The profiles depend only on the lake and the moment (the finished
executions of the UTILISATION_WINDOW ending then), not on which tasks are being costed, so a
task costed by selection and by the next economics cycle gets the same number while its
window holds the same executions.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from economics.cost_model import cost_frame, measure_bursts, profiles_from_registry
from economics.telemetry import finished_executions
from resources.catalog import Catalog
from resources.lake import Lake
from resources.schemas import EXECUTION_EVENTS

# Utilisation (hence the idle share of the bill) is measured over the last day of work on
# each instance type: long enough to see the daily pattern, short enough to follow it.
UTILISATION_WINDOW = timedelta(hours=24)


def cost_profiles(lake: Lake, registry_providers: list, now: datetime) -> dict:
    """Per-provider cost profiles (cold start, partner pricing, measured utilisation) for
    ``economics.cost_model.cost_breakdown``.

    Utilisation is measured per instance type, because local providers share their host: its
    idle time is one bill, not one per provider; from the tasks that finished in the
    UTILISATION_WINDOW before ``now`` (``execution_events``, each task once).

    Args:
        registry_providers: the registry's provider models (``ProviderRegistry.registry().providers``).
    """
    events = lake.scan(EXECUTION_EVENTS).filter(
        (pl.col("occurred_at") > now - UTILISATION_WINDOW) & (pl.col("occurred_at") <= now)
    )
    window = finished_executions(events)
    bursts = measure_bursts(window, by="instance_type") if not window.is_empty() else None
    return profiles_from_registry([p.model_dump() for p in registry_providers], bursts, by="instance_type")


def task_costs(
    executions: pl.DataFrame,
    lake: Lake,
    catalog: Catalog,
    token_usd_rate: float,
    registry_providers: list | None,
    now: datetime,
) -> pl.DataFrame:
    """Cost and list-price margin of finished executions, every term of the cost model.

    Args:
        executions: ``economics.telemetry.finished_executions`` rows.
        registry_providers: the registry's providers, for cold starts, partner pricing and
            measured utilisation; None = compute + partner + storage + bandwidth only (no
            profiles, e.g. a bench without a registry).
        now: end of the utilisation window.

    Returns:
        ``executions`` plus the columns of ``cost_frame(..., breakdown=True)``: the six cost
        terms, ``cost_usd``, ``tokens_charged`` (list price), ``revenue_usd``,
        ``cost_tokens``, ``margin``.

    Raises:
        KeyError: an instance type is not on the rate card.
    """
    profiles = cost_profiles(lake, registry_providers, now) if registry_providers else None
    return cost_frame(
        executions, catalog.rate_card(), catalog.prices(), token_usd_rate, profiles=profiles, breakdown=True
    )
