"""Emergency routing override: an admin forces one provider for an effect type, published
at once (not at the next 15-minute cycle) and kept in ``routing_manifests`` like any
version. The next regular publication of the economics job replaces it."""

from __future__ import annotations

from economics.routing import manifest_rows, override_manifest
from resources.events import utcnow
from resources.lake import Lake
from resources.manifest_store import ManifestStore
from resources.schemas import ROUTING_MANIFESTS


class NoManifest(LookupError):
    """Nothing is published yet: there is no manifest to override."""


def emergency_override(lake: Lake, store: ManifestStore, effect_type: str, provider_id: str, reason: str) -> dict:
    """Publish an override of the current manifest; return it.

    Raises:
        NoManifest: no manifest was ever published.
        KeyError / ValueError: unknown effect type, provider not in it, or no reason
            (``economics.routing.override_manifest``).
    """
    current = store.read()
    if current is None:
        raise NoManifest("no routing manifest is published yet")
    manifest = override_manifest(current, effect_type, provider_id, reason, utcnow())
    store.publish(manifest)
    lake.append(ROUTING_MANIFESTS, manifest_rows(manifest))
    return manifest
