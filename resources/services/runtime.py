"""Runtime parameters in use (docs/signals.md, "Runtime parameters"): the values the platform
runs with (shipped defaults overlaid with the parameters in force) and changing them with their
side effects, for the automatic actions, the recommendation applier, the API and the
dashboard alike.

Where each parameter is honoured:

* ``provider.<id>.concurrency`` — the dispatch: remote tasks claim slots against it inside
  the claim's transaction (``assets.execution.remote.send``), local tasks of a run share that
  many slots per provider (M6, ``assets.execution.runner.run_tasks``);
* ``effect.<type>.price_tokens`` — the list price M5 charges a job (``economics.pricing``), the
  price an effect run of the type is reserved when accepted (``economics.pricing.run_price``,
  read in the run's own transaction, ``resources.store.runs.create_run``) and the price the
  recommendations compare against;
* ``routing.<type>.pin`` / ``routing.<type>.demote.<id>`` — every routing manifest published,
  by the economics job (``assets.gold.economics.routing_manifest``) and at once on a change
  (``republish_routing``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from economics.manifest_adjustments import adjust, adjustments_from_parameters
from economics.routing import manifest_rows, override_manifest, regular_of
from resources.catalog import Catalog
from resources.events import utcnow
from resources.lake import Lake
from resources.manifest_store import ManifestStore
from resources.schemas import ROUTING_MANIFESTS
from resources.store import parameters
from resources.store.client import Store
from resources.store.parameters import CONCURRENCY, EFFECT, PRICE, PROVIDER, ROUTING

# How far back the store's manifest history is searched for the regular manifest an adjusted
# one was built on (the store keeps 1,000 versions).
_HISTORY = 1000


class BaseManifestMissing(LookupError):
    """The regular manifest under the published one is no longer in the store's history."""


def effective_prices(catalog: Catalog, store: Store) -> dict[str, int]:
    """Effect type → the list price in force (``effects.yaml``, overridden by an
    ``effect.<type>.price_tokens`` parameter)."""
    return {k: int(v) for k, v in parameters.overlay(catalog.prices(), store.parameter_values(EFFECT, PRICE)).items()}


def effective_concurrency(registry_concurrency: Mapping[str, int], store: Store) -> dict[str, int]:
    """Provider → dispatch slots in force (the registry's ``concurrency``, overridden by a
    ``provider.<id>.concurrency`` parameter)."""
    return {
        k: int(v)
        for k, v in parameters.overlay(registry_concurrency, store.parameter_values(PROVIDER, CONCURRENCY)).items()
    }


def with_routing_parameters(manifest: dict, store: Store) -> dict:
    """A freshly built regular manifest with the routing parameters in force applied (the
    economics job publishes this)."""
    return adjust(manifest, adjustments_from_parameters(store.parameters(ROUTING)), utcnow())


def _regular(current: dict, manifest_store: ManifestStore) -> dict:
    """The regular manifest ``current`` was built on (itself when it is one): the copy it
    carries, else (a manifest published before it carried one) found in the store's history."""
    base = current.get("base_version")
    if base is None or base == current["version"]:
        return current
    if "regular" in current:
        return regular_of(current)
    for m in manifest_store.history(_HISTORY):
        if m["version"] == base and "base_version" not in m:
            return m
    raise BaseManifestMissing(f"regular manifest {base} is not in the manifest store's last {_HISTORY} versions")


def republish_routing(lake: Lake, manifest_store: ManifestStore, store: Store) -> dict | None:
    """Publish the current regular manifest with the routing parameters in force now (and the
    admin's emergency overrides of the published one on top), if that changes anything.

    Returns:
        The published manifest, or None (nothing published yet, or nothing changed).

    Raises:
        BaseManifestMissing: the regular manifest is no longer in the history.
    """
    current = manifest_store.read()
    if current is None:
        return None
    now = utcnow()
    manifest = adjust(_regular(current, manifest_store), adjustments_from_parameters(store.parameters(ROUTING)), now)
    for effect, o in sorted((current.get("overrides") or {}).items()):
        try:
            manifest = override_manifest(manifest, effect, o["provider_id"], o["reason"], now)
        except (KeyError, ValueError):  # the forced provider left the ranking: the override lapses
            continue
    if manifest["version"] == current["version"]:
        return None
    manifest = {**manifest, "published_at": now.isoformat()}
    manifest_store.publish(manifest)
    lake.append(ROUTING_MANIFESTS, manifest_rows(manifest))
    return manifest


def apply_change(
    lake: Lake,
    store: Store,
    manifest_store: ManifestStore,
    scope: str,
    subject: str,
    name: str,
    after: Any,
    *,
    source: str,
    actor: str,
    reason: str,
    source_id: str | None = None,
    expect: Any = parameters.UNSET,
    cost_usd_per_hour: float | None = None,
    guard: Callable[[dict], None] | None = None,
) -> dict:
    """Change one parameter (``resources.store.parameters.apply``: value and audit row in one
    transaction), then carry out its side effect: a routing change is published at once.

    Returns:
        The audit row (``change_id``, ``before``, ``after``…).

    Raises:
        The store's ``InvalidInput``, ``ParameterConflict``, ``GuardrailRefused``.
    """
    with store.write() as s:
        change = parameters.apply(
            s,
            scope,
            subject,
            name,
            after,
            source=source,
            actor=actor,
            reason=reason,
            source_id=source_id,
            expect=expect,
            cost_usd_per_hour=cost_usd_per_hour,
            guard=guard,
        )
    _after_change([change], lake, store, manifest_store)
    return change


def rollback_change(
    lake: Lake, store: Store, manifest_store: ManifestStore, change_id: str, actor: str, reason: str
) -> dict:
    """Undo one change (``resources.store.parameters.rollback``: the value before, exactly),
    then its side effect (a routing change is published at once).

    Raises:
        The store's ``NotFound``, ``ParameterConflict``.
    """
    with store.write() as s:
        undo = parameters.rollback(s, change_id, actor=actor, reason=reason)
    _after_change([undo], lake, store, manifest_store)
    return undo


def _after_change(changes: Iterable[dict], lake: Lake, store: Store, manifest_store: ManifestStore) -> None:
    if any(c["scope"] == ROUTING for c in changes):
        republish_routing(lake, manifest_store, store)
