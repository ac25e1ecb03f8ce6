"""Carrying out the planned actions (``economics.actions.plan``): the platform's state the
planner reads, and the executor that applies each step and returns its
``bronze/bottleneck_actions`` row. Plain code (no Dagster): the ``bottleneck_actions`` asset
calls it, and so can a test or a script on a lake.

Every parameter change goes through ``resources.services.runtime`` (value + audit row in one
store transaction, compare-and-set on the value the planner saw, the scale-up budget re-checked
under the store's write lock), so two action runs racing never both reduce a concurrency or
both spend the last of the budget: the loser's change is refused and recorded as skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta

import polars as pl

from economics.actions import (
    CHANGE,
    DONE,
    FAILED,
    FLAG,
    FLAGGED,
    NOTIFY_KIND,
    RECOMMEND,
    RECOMMENDED,
    RESTORE,
    ROLLBACK,
    SKIPPED,
    ActionPolicy,
    State,
    Step,
    hourly_profile,
)
from economics.ids import stable_id
from resources.catalog import Catalog
from resources.lake import Lake
from resources.manifest_store import ManifestStore
from resources.notifications import notify_user
from resources.providers.client import RegistryView
from resources.schemas import BOTTLENECK_ACTIONS, METRIC_STREAMS
from resources.services.runtime import (
    CONCURRENCY,
    PROVIDER,
    apply_change,
    effective_prices,
    rollback_change,
)
from resources.settings import Settings
from resources.store.client import Store
from resources.store.errors import NotFound
from resources.store.parameters import GuardrailRefused, ParameterConflict

STAGE = "signals"
# The hourly volume a warm-pool schedule is drawn from: the metric streams' 3-day history.
PROFILE_DAYS = 3


def policy_of(settings: Settings) -> ActionPolicy:
    """The planner's guardrails from the settings."""
    return ActionPolicy(
        autoscale_budget_usd_per_hour=settings.autoscale_budget_usd_per_hour,
        act_on_simulated=settings.act_on_simulated,
    )


def current_state(
    lake: Lake,
    store: Store,
    manifest_store: ManifestStore,
    registry: RegistryView,
    catalog: Catalog,
    settings: Settings,
    now: datetime,
) -> State:
    """What the planner needs to know now (``economics.actions.State``)."""
    rates = catalog.rate_card().usd_per_second
    manifest = manifest_store.read() or {"effects": {}}
    streams = lake.read(
        METRIC_STREAMS,
        (pl.col("scope") == "provider_effect") & (pl.col("bucket_start") > now - timedelta(days=PROFILE_DAYS)),
    )
    return State(
        registry_concurrency={p.provider_id: p.concurrency for p in registry.providers},
        concurrency_overrides={k: int(v) for k, v in store.parameter_values(PROVIDER, CONCURRENCY).items()},
        usd_per_instance_hour={
            p.provider_id: rates[p.instance_type] * 3600 for p in registry.providers if p.instance_type in rates
        },
        retry_attempts={p.provider_id: p.retry.attempts for p in registry.providers},
        routing={
            effect: [e["provider_id"] for e in sorted(entries, key=lambda e: e["rank"])]
            for effect, entries in manifest["effects"].items()
        },
        prices=effective_prices(catalog, store),
        token_usd_rate=settings.token_usd_rate,
        hourly=hourly_profile(streams),
    )


def budget_guard(state: State, policy: ActionPolicy, provider_id: str, slots: int):
    """A ``parameters.apply`` guard: refuses when, with ``provider_id`` at ``slots``, the extra
    capacity in force (re-read under the store's write lock) exceeds the budget."""

    def guard(in_force: dict) -> None:
        overrides = {s: int(r["value"]) for (sc, s, n), r in in_force.items() if sc == PROVIDER and n == CONCURRENCY}
        overrides[provider_id] = slots
        extra = State(
            registry_concurrency=state.registry_concurrency,
            concurrency_overrides=overrides,
            usd_per_instance_hour=state.usd_per_instance_hour,
        ).extra_capacity_usd_per_hour()
        budget = policy.autoscale_budget_usd_per_hour
        if extra > budget + 1e-9:
            raise GuardrailRefused(f"extra capacity would cost ${extra:.2f}/h, over the ${budget:.2f}/h budget")

    return guard


def action_id(step: Step) -> str:
    """The row's id: one apply and one restore per classification and action."""
    parts = (
        (step.classification_id, step.action)
        if step.phase != RESTORE
        else (step.classification_id, step.action, RESTORE)
    )
    return stable_id("bottleneck_action", *parts)


def execute(
    steps: Iterable[Step],
    lake: Lake,
    store: Store,
    manifest_store: ManifestStore,
    state: State,
    policy: ActionPolicy,
    now: datetime,
) -> list[dict]:
    """Carry out ``steps``; returns their ``BOTTLENECK_ACTIONS`` rows. A failing step is
    recorded ``failed`` with its error (not raised: one failed action must not block the
    others, and an operator looks at it rather than a retry loop)."""
    rows = []
    for step in steps:
        change_id = None
        try:
            outcome, detail, change_id = _carry_out(step, lake, store, manifest_store, state, policy)
        except Exception as exc:  # noqa: BLE001 — recorded, not raised (docstring)
            outcome, detail = FAILED, f"{type(exc).__name__}: {exc}"
        proposal = step.proposal or (step.change.as_dict() if step.change else None)
        rows.append(
            {
                "action_id": action_id(step),
                "classification_id": step.classification_id,
                "category": step.category,
                "action": step.action,
                "phase": step.phase,
                "outcome": outcome,
                "detail": detail,
                "change_id": change_id,
                "proposal": json.dumps(proposal, sort_keys=True, default=str) if proposal is not None else None,
                "taken_at": now,
            }
        )
    return rows


def _carry_out(
    step: Step, lake: Lake, store: Store, manifest_store: ManifestStore, state: State, policy: ActionPolicy
) -> tuple[str, str, str | None]:
    if step.kind == CHANGE and step.change is not None:
        c = step.change
        guard = budget_guard(state, policy, c.subject, int(c.after)) if step.guard_budget else None
        try:
            applied = apply_change(
                lake,
                store,
                manifest_store,
                c.scope,
                c.subject,
                c.name,
                c.after,
                source="bottleneck",
                source_id=step.classification_id,
                actor="auto",
                reason=step.detail,
                expect=c.before,
                cost_usd_per_hour=c.cost_usd_per_hour,
                guard=guard,
            )
        except ParameterConflict as exc:
            return SKIPPED, f"not applied, the value changed meanwhile: {exc}", None
        except GuardrailRefused as exc:
            return RECOMMENDED, f"{step.detail} — not applied, an admin decides: {exc}", None
        return DONE, step.detail, applied["change_id"]
    if step.kind == ROLLBACK and step.restores is not None:
        try:
            undo = rollback_change(lake, store, manifest_store, step.restores, "auto", step.detail)
        except ParameterConflict as exc:
            return SKIPPED, f"not restored, a later change stands: {exc}", None
        except NotFound as exc:
            return FAILED, str(exc), None
        return DONE, step.detail, undo["change_id"]
    if step.kind == NOTIFY_KIND and step.user_id:
        # The UserNotified event notify_user returns is not recorded: this row is the record
        # of the notice (it has no video whose pipeline events it would join). The
        # notification's id derives from the classification: once per episode.
        notify_user(
            store,
            STAGE,
            step.user_id,
            step.classification_id,
            "token_depletion_risk",
            step.title or "",
            step.body or "",
        )
        return DONE, step.detail, None
    if step.kind == RECOMMEND:
        return RECOMMENDED, step.detail, None
    if step.kind == FLAG:
        return FLAGGED, step.detail, None
    return step.outcome or SKIPPED, step.detail, None


def record(lake: Lake, rows: list[dict]) -> None:
    """Append the rows to ``bronze/bottleneck_actions`` (idempotent by ``action_id``)."""
    if rows:
        lake.append(BOTTLENECK_ACTIONS, pl.DataFrame(rows, schema=BOTTLENECK_ACTIONS.schema))
