"""The automatic actions on critical bottleneck classifications (``economics.bottlenecks.
AUTOMATIC_ACTIONS``), started by ``bottleneck_action_sensor`` and recorded in
``bronze/bottleneck_actions`` — once per classification.

* ``routing_demote`` — publish a routing override that puts the next-ranked provider of the
  effect type first (``resources.services.routing_admin.emergency_override``); the next
  economics cycle's manifest replaces it, so a recovered provider wins traffic back on
  evidence. Skipped (recorded as such) when no manifest is published or the provider has no
  alternative.
* ``notify_user`` — an in-app notification (the store's outbox) to the user whose tokens run out.

New action kinds register in ``ACTIONS``: a function (lake, transactional store, manifest store, classification
store, row) → (outcome, detail).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import dagster as dg
import polars as pl

from assets.gold.signals import bottleneck_classifications
from economics.ids import stable_id
from resources.events import utcnow
from resources.lake import Lake
from resources.manifest_store import ManifestStore
from resources.notifications import notify_user
from resources.schemas import BOTTLENECK_ACTIONS, BOTTLENECK_CLASSIFICATIONS
from resources.services.routing_admin import emergency_override
from resources.store.client import Store

STAGE = "signals"


def _demote(lake: Lake, _store: Store, store: ManifestStore, row: dict) -> tuple[str, str]:
    manifest = store.read()
    if manifest is None:
        return "skipped", "no routing manifest is published"
    ranked = [e["provider_id"] for e in manifest["effects"].get(row["effect_type"], [])]
    others = [p for p in ranked if p != row["provider_id"]]
    if not others:
        return "skipped", f"{row['provider_id']} has no alternative for {row['effect_type']}"
    reason = f"{row['category']} on {row['provider_id']} (classification {row['classification_id']})"
    emergency_override(lake, store, row["effect_type"], others[0], reason)
    return "done", f"{row['effect_type']}: {others[0]} put first instead of {row['provider_id']}"


def _notify(_lake: Lake, store: Store, _manifests: ManifestStore, row: dict) -> tuple[str, str]:
    numbers = json.loads(row["evidence"] or "{}").get("numbers", {})
    hours = numbers.get("hours_to_exhaustion")
    when = f"in about {hours:.1f} hours" if hours is not None else "soon"
    # The UserNotified event notify_user returns is not recorded: the bottleneck_actions row
    # is the record of this notice (it has no video whose pipeline events it would join).
    notify_user(
        store,
        STAGE,
        row["user_id"],
        row["classification_id"],
        "token_depletion_risk",
        "Your tokens are running out",
        f"At your current rate your token balance runs out {when}. Top up to keep your effects running.",
    )
    return "done", f"user {row['user_id']} notified (exhaustion {when})"


ACTIONS: dict[str, Callable[[Lake, Store, ManifestStore, dict], tuple[str, str]]] = {
    "routing_demote": _demote,
    "notify_user": _notify,
}


def pending(lake: Lake) -> pl.DataFrame:
    """Open critical classifications with an automatic action and no recorded action yet."""
    rows = lake.read(
        BOTTLENECK_CLASSIFICATIONS,
        (pl.col("status") == "open") & (pl.col("severity") == "critical") & pl.col("automatic_action").is_not_null(),
    )
    done = lake.read(BOTTLENECK_ACTIONS).select("classification_id")
    return rows.join(done, on="classification_id", how="anti").sort("first_seen_at", "classification_id")


def taken_actions(lake: Lake) -> pl.DataFrame:
    """classification_id → ``action_taken`` text ("<action>: <outcome> — <detail>"), the
    latest per classification."""
    acts = lake.read(BOTTLENECK_ACTIONS).sort("taken_at")
    return acts.group_by("classification_id").agg(
        action_taken=pl.concat_str("action", pl.lit(": "), "outcome", pl.lit(" — "), "detail").last()
    )


@dg.asset(
    key=["bronze", "bottleneck_actions"],
    deps=[bottleneck_classifications],
    group_name="bronze",
    kinds={"deltalake"},
)
def bottleneck_actions(
    lake: dg.ResourceParam[Lake], store: dg.ResourceParam[Store], manifest_store: dg.ResourceParam[ManifestStore]
) -> dg.MaterializeResult:
    """Carry out the automatic action of each new critical classification, once; a failed
    action is recorded as ``failed`` with its error (and not retried: an operator looks)."""
    rows = []
    for row in pending(lake).iter_rows(named=True):
        action = row["automatic_action"]
        try:
            outcome, detail = ACTIONS[action](lake, store, manifest_store, row)
        except Exception as exc:  # noqa: BLE001 — recorded, not raised: one failed action must not block the others
            outcome, detail = "failed", f"{type(exc).__name__}: {exc}"
        rows.append(
            {
                "action_id": stable_id("bottleneck_action", row["classification_id"], action),
                "classification_id": row["classification_id"],
                "category": row["category"],
                "action": action,
                "outcome": outcome,
                "detail": detail,
                "taken_at": utcnow(),
            }
        )
    if rows:
        lake.append(BOTTLENECK_ACTIONS, pl.DataFrame(rows, schema=BOTTLENECK_ACTIONS.schema))
    return dg.MaterializeResult(metadata={"actions": len(rows), "done": sum(r["outcome"] == "done" for r in rows)})
