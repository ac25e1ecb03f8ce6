"""The provider registry client: specs from ``data/providers.yaml`` and an adapter per
provider, built once per process. A plain pydantic model;
``resources.dagster_resources.ProviderRegistryResource`` hands it to assets."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from resources.providers.base import ProviderAdapter, RemoteAdapter
from resources.providers.registry import ProviderSpec, Registry, build_adapter, load_registry


class RegistryView:
    """Routing-oriented questions over a loaded Registry."""

    def __init__(self, registry: Registry):
        self._registry = registry
        self.version = registry.version
        self.providers = list(registry.providers)

    def spec(self, provider_id: str) -> ProviderSpec:
        """The spec of ``provider_id``.

        Raises:
            KeyError: unknown provider id.
        """
        for p in self.providers:
            if p.provider_id == provider_id:
                return p
        raise KeyError(f"unknown provider {provider_id!r} (registry {self.version})")

    def instance_type(self, provider_id: str) -> str:
        """The rate-card instance type ``provider_id`` runs on (for results of tasks whose
        adapter could not even be built).

        Raises:
            KeyError: unknown provider id.
        """
        return self.spec(provider_id).instance_type

    def active_by_effect(self, exclude: set[str] | frozenset[str] = frozenset()) -> dict[str, list[str]]:
        """Effect type → active provider ids in registry order (``exclude``: unhealthy ones)."""
        out: dict[str, list[str]] = {}
        for p in self.providers:
            if p.mode == "active" and p.provider_id not in exclude:
                for e in p.effect_types:
                    out.setdefault(e, []).append(p.provider_id)
        return out

    def shadow_for(self, effect_type: str) -> list[str]:
        """Shadow providers of ``effect_type``: they get copies never shown nor charged."""
        return [p.provider_id for p in self.providers if p.mode == "shadow" and effect_type in p.effect_types]


@lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> RegistryView:
    return RegistryView(load_registry(path))


@lru_cache(maxsize=64)
def _adapter(path: str, mtime: float, provider_id: str) -> ProviderAdapter:
    return build_adapter(_load(path, mtime).spec(provider_id))


class ProviderRegistry(BaseModel):
    """Provider specs and adapters.

    Attributes:
        path: the registry YAML (``Settings.providers_path``).
    """

    model_config = ConfigDict(frozen=True)

    path: str

    def _mtime(self) -> float:
        return Path(self.path).stat().st_mtime

    def registry(self) -> RegistryView:
        """The registry as currently on disk (reloaded when the file changes)."""
        return _load(self.path, self._mtime())

    def adapter(self, provider_id: str) -> ProviderAdapter:
        """The adapter of ``provider_id`` (cached per registry file version)."""
        return _adapter(self.path, self._mtime(), provider_id)

    def remote_adapter(self, provider_id: str) -> RemoteAdapter:
        """The adapter of a remote provider, as the asynchronous protocol (submit, status,
        fetch, cleanup).

        Raises:
            TypeError: ``provider_id``'s adapter runs inline (a local provider).
        """
        adapter = self.adapter(provider_id)
        if not isinstance(adapter, RemoteAdapter):
            raise TypeError(f"{provider_id} is not a remote provider")
        return adapter
