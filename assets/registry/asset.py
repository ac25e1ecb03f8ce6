"""M3 ``provider_registry``: a versioned snapshot of ``data/providers.yaml`` with each
provider's live health, appended every economics cycle."""

import dagster as dg
import polars as pl

from assets.logs import warn
from resources.events import stable_id, utcnow
from resources.lake import Lake
from resources.providers.client import ProviderRegistry
from resources.schemas import PROVIDER_REGISTRY
from resources.store.client import Store


@dg.asset(key_prefix=["silver"], group_name="M3_registry", kinds={"polars", "deltalake"})
def provider_registry(
    context: dg.AssetExecutionContext,
    lake: dg.ResourceParam[Lake],
    providers: dg.ResourceParam[ProviderRegistry],
    store: dg.ResourceParam[Store],
) -> dg.MaterializeResult:
    """One row per provider: registry version, adapter, mode, effect types, instance type,
    the result of its health check (disabled providers are not probed) and the state of its
    circuit breaker (``closed`` when it never tripped)."""
    registry = providers.registry()
    breakers = store.breakers()
    now = utcnow()
    rows = []
    for spec in registry.providers:
        if spec.mode == "disabled":
            healthy, detail, latency = False, "disabled in the registry", 0
        else:
            try:
                h = providers.adapter(spec.provider_id).health_check()
                healthy, detail, latency = h.ok, h.detail, h.latency_ms
            except Exception as exc:  # noqa: BLE001 - an adapter that cannot be built is unhealthy
                healthy, detail, latency = False, f"{type(exc).__name__}: {exc}", 0
        rows.append(
            {
                "snapshot_id": stable_id(registry.version, spec.provider_id, now.isoformat()),
                "registry_version": registry.version,
                "provider_id": spec.provider_id,
                "adapter": spec.adapter,
                "mode": spec.mode,
                "effect_types": list(spec.effect_types),
                "instance_type": spec.instance_type,
                "healthy": healthy,
                "health_detail": detail,
                "latency_ms": latency,
                "checked_at": now,
                "breaker_state": breakers.get(spec.provider_id, {}).get("state", "closed"),
            }
        )
    lake.append(PROVIDER_REGISTRY, pl.DataFrame(rows, infer_schema_length=None))
    unhealthy = [r["provider_id"] for r in rows if not r["healthy"] and r["mode"] != "disabled"]
    for pid in unhealthy:
        warn(
            context,
            f"provider {pid} is unhealthy: it is left out of routing",
            event_type="provider_unhealthy",
            economic_impact_usd=0.0,  # its traffic goes to the next provider; the margin effect shows in signals
            urgency="high",
            operator_action="Check the provider's health detail in provider_registry and restore or disable it.",
            runbook="docs/runbooks/platform-logs.md#provider_unhealthy",
            provider_id=pid,
        )
    return dg.MaterializeResult(
        metadata={
            "registry_version": registry.version,
            "providers": len(rows),
            "unhealthy": ", ".join(unhealthy) or "none",
        }
    )


def unhealthy_providers(lake: Lake) -> set[str]:
    """Providers whose latest health snapshot failed (empty before the first snapshot)."""
    latest = (
        lake.scan(PROVIDER_REGISTRY)
        .sort("checked_at")
        .group_by("provider_id")
        .last()
        .filter(~pl.col("healthy") & (pl.col("mode") != "disabled"))
        .select("provider_id")
        .collect()
    )
    return set(latest["provider_id"])


def breaker_states(lake: Lake) -> dict[str, str]:
    """provider id → its circuit breaker's state in the latest health snapshot (``closed``,
    ``open``, ``half_open``; empty before the first snapshot)."""
    latest = (
        lake.scan(PROVIDER_REGISTRY)
        .sort("checked_at")
        .group_by("provider_id")
        .last()
        .select("provider_id", pl.col("breaker_state").fill_null("closed"))
        .collect()
    )
    return dict(latest.iter_rows())
