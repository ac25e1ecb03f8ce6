"""The provider registry: ``data/providers.yaml`` parsed and validated, and adapters built from it.

Shapes (docs/architecture.md, "Providers"): a provider is ``provider_id`` + ``adapter`` kind + ``workflow`` + the
``effect_types`` it makes + where it runs (``instance_type`` from ``data/rate_card.yaml``) + its
price (``cost``) + ``concurrency`` + ``mode``. Every mistake in the YAML surfaces as a pydantic
``ValidationError`` whose locations name the provider (``providers.ffmpeg-lut3d.cost…``), not
its list index.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import string
from collections import Counter
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import InitErrorDetails

from resources.catalog import load_yaml
from resources.providers.base import ProviderAdapter
from resources.providers.params import ParamError, check_syntax
from resources.providers.resilience import BreakerPolicy, Deadlines, RetryPolicy
from resources.settings import DATA_DIR, PROJECT_ROOT
from resources.yamlio import safe_load

AdapterKind = Literal["ffmpeg", "opencv", "comfyui"]
Mode = Literal["active", "shadow", "disabled"]
ParamValue = int | float | str
# effect type → {parameter name → number or expression over the effect's params}
ParamsByEffect = dict[str, dict[str, ParamValue]]

DEFAULT_REGISTRY_PATH = DATA_DIR / "providers.yaml"
_SIBLING = object()  # "look next to the registry file" default for the cross-checks


class ProviderUnavailable(RuntimeError):
    """An adapter cannot be built here: its module is not installed, or its configuration
    (e.g. a ComfyUI ``base_url``) is missing. Routing should treat the provider as down."""


class RegistryError(ValueError):
    """The registry file is not a YAML mapping with a ``providers`` list."""


class ProviderCost(BaseModel):
    """What a provider costs beyond compute-seconds × rate card.

    Attributes:
        partner_cost_usd_per_call: USD billed per call by a partner API (0 for local work).
        cold_start_seconds: seconds of start-up billed/paid before the first task of a burst
            (0 for local adapters: the ffmpeg binary and cv2 are already on the machine).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    partner_cost_usd_per_call: float = Field(0.0, ge=0)
    cold_start_seconds: float = Field(0.0, ge=0)


class RetrySpec(BaseModel):
    """A provider's retry policy (``resources.providers.resilience.RetryPolicy``).

    Attributes:
        attempts: attempts in all, first included (1 = never retry).
        base_seconds: first backoff pause (doubling, jittered ×0.5–1).
        max_seconds: longest pause and longest ``Retry-After`` honoured.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    attempts: int = Field(3, ge=1, le=20)
    base_seconds: float = Field(2.0, ge=0)
    max_seconds: float = Field(60.0, gt=0)


class BreakerSpec(BaseModel):
    """A provider's circuit breaker (``resources.providers.resilience.BreakerPolicy``):
    opens after ``consecutive_failures`` in a row or a ``failure_rate`` over ``window_seconds``
    (at least ``min_calls`` outcomes); after ``cooldown_seconds`` lets ``probes`` through."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    consecutive_failures: int = Field(5, ge=1)
    failure_rate: float = Field(0.5, gt=0, le=1)
    min_calls: int = Field(10, ge=1)
    window_seconds: float = Field(600.0, gt=0)
    cooldown_seconds: float = Field(120.0, ge=0)
    probes: int = Field(1, ge=1)


class LutSpec(BaseModel):
    """A file generated per task before the graph runs (a ``.cube`` 3D LUT).

    Attributes:
        generator: name in ``resources.providers.color_luts.LUT_GENERATORS``.
        args: generator keyword → number or expression (same scope as ``params``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    generator: str
    args: dict[str, ParamValue] = Field(default_factory=dict)

    @field_validator("generator")
    @classmethod
    def _known_generator(cls, v: str) -> str:
        from resources.providers.color_luts import LUT_GENERATORS

        if v not in LUT_GENERATORS:
            known = ", ".join(sorted(LUT_GENERATORS))
            raise ValueError(f"unknown LUT generator {v!r} (known: {known})")
        return v

    @field_validator("args")
    @classmethod
    def _args_syntax(cls, v: dict[str, ParamValue]) -> dict[str, ParamValue]:
        _check_exprs(v)
        return v


class _Workflow(BaseModel):
    """What every local workflow shares: per-effect derived parameters, syntax-checked."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    params: ParamsByEffect = Field(default_factory=dict)

    @field_validator("params")
    @classmethod
    def _params_syntax(cls, v: ParamsByEffect) -> ParamsByEffect:
        for exprs in v.values():
            _check_exprs(exprs)
        return v


class FFmpegWorkflow(_Workflow):
    """Workflow of an ``ffmpeg`` provider.

    Attributes:
        graph: a ``-vf`` filter graph with ``{name}`` placeholders. Names available: the
            effect's params, the names in ``params[effect_type]``, ``lut_file`` (when ``lut``
            is set) and the input's ``width``, ``height``, ``fps`` (rational string, e.g.
            ``25/1``), ``fps_value`` and ``duration`` (seconds).
        params: effect type → derived parameters (numbers or expressions), evaluated in order.
        lut: optional per-task LUT file.
    """

    graph: str = Field(min_length=1)
    lut: LutSpec | None = None

    @field_validator("graph")
    @classmethod
    def _graph_template(cls, v: str) -> str:
        try:
            list(string.Formatter().parse(v))
        except ValueError as exc:
            raise ValueError(f"graph is not a valid template ({exc}); write literal braces as {{{{ }}}}") from None
        return v


class OpenCVWorkflow(_Workflow):
    """Workflow of an ``opencv`` provider.

    Attributes:
        transform: name of a frame transform in
            ``resources.providers.opencv_transforms.TRANSFORMS`` or of a retiming transform in
            its ``RETIMING``.
        params: effect type → the transform's keyword arguments (numbers or expressions over
            the effect's params and the input's facts). When an effect type has no entry the
            effect's params are passed as they are.
    """

    transform: str

    @field_validator("transform")
    @classmethod
    def _known_transform(cls, v: str) -> str:
        from resources.providers.opencv_transforms import RETIMING, TRANSFORMS

        if v not in TRANSFORMS and v not in RETIMING:
            known = ", ".join(sorted([*TRANSFORMS, *RETIMING]))
            raise ValueError(f"unknown frame transform {v!r} (known: {known})")
        return v


def _check_exprs(exprs: dict[str, ParamValue]) -> None:
    for key, expr in exprs.items():
        try:
            check_syntax(expr)
        except ParamError as exc:
            raise ValueError(f"parameter {key!r}: {exc}") from None


_WORKFLOW_MODELS: dict[str, type[BaseModel]] = {"ffmpeg": FFmpegWorkflow, "opencv": OpenCVWorkflow}


class ProviderSpec(BaseModel):
    """One provider of ``data/providers.yaml``.

    Attributes:
        provider_id: stable id (lowercase, digits, ``-``, ``.``, ``_``), e.g. ``ffmpeg-colortemp``.
        display_name: human name for dashboards.
        adapter: ``ffmpeg`` | ``opencv`` | ``comfyui``.
        effect_types: catalog effect types it produces (``data/effects.yaml``).
        workflow: adapter-specific: an ``FFmpegWorkflow`` / ``OpenCVWorkflow`` mapping, or for
            ComfyUI a workflow JSON path relative to the project root (or the mapping itself).
        instance_type: rate-card instance type the work runs on (``data/rate_card.yaml``).
        cost: partner cost per call and cold start.
        concurrency: tasks the provider really runs at once (≥ 1); more wait for a slot.
            For ComfyUI, which runs one prompt at a time per server, it must equal ``servers``.
        servers: ComfyUI servers (1 for local providers): behind ``base_url`` (a balancer
            that picks one), or the count of ``base_urls``.
        mode: ``active`` (routed), ``shadow`` (gets copies never shown) or ``disabled``.
        base_url: server of a remote adapter (ComfyUI), or the balancer in front of its
            servers; None for local ones.
        base_urls: several ComfyUI servers, one URL each (instead of ``base_url``): each task
            is admitted to one server with no prompt of ours and sent there
            (``resources.providers.comfyui.ComfyUIFleet``); ``servers`` must equal their count.
        timeout_seconds: a task attempt is stopped this many seconds after it *started* on the
            provider.
        queue_timeout_seconds: a remote task that has not started this many seconds after it
            was dispatched (waiting for a slot or in the provider's queue) is given up.
        retry: retry policy (transient failures only).
        breaker: circuit breaker policy.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider_id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=64)
    display_name: str = Field(min_length=1)
    adapter: AdapterKind
    effect_types: list[str] = Field(min_length=1)
    workflow: dict[str, Any] | str
    instance_type: str
    cost: ProviderCost = Field(default_factory=ProviderCost)
    concurrency: int = Field(1, ge=1, le=256)
    servers: int = Field(1, ge=1, le=256)
    mode: Mode = "active"
    base_url: str | None = None
    base_urls: list[str] | None = None
    timeout_seconds: float = Field(600.0, gt=0)
    queue_timeout_seconds: float = Field(600.0, gt=0)
    retry: RetrySpec = Field(default_factory=RetrySpec)
    breaker: BreakerSpec = Field(default_factory=BreakerSpec)

    @field_validator("servers")
    @classmethod
    def _one_prompt_per_server(cls, v: int, info: ValidationInfo) -> int:
        # ComfyUI executes one prompt at a time: more in flight than servers only queue on
        # the server, where our run deadline cannot tell waiting from working.
        if info.data.get("adapter") == "comfyui" and info.data.get("concurrency") not in (None, v):
            raise ValueError(
                f"a comfyui provider runs one prompt per server: concurrency must equal servers ({v}), "
                f"got {info.data.get('concurrency')}"
            )
        return v

    @model_validator(mode="after")
    def _servers_match_urls(self) -> ProviderSpec:
        if self.base_urls is not None:
            if self.adapter != "comfyui":
                raise ValueError("base_urls is for comfyui providers (one URL per server)")
            if len(self.base_urls) != self.servers or len(set(self.base_urls)) != len(self.base_urls):
                raise ValueError(
                    f"servers ({self.servers}) must equal the number of distinct base_urls ({len(self.base_urls)})"
                )
        return self

    @property
    def remote(self) -> bool:
        """True when tasks run elsewhere and outlive the run that sends them (ComfyUI)."""
        return self.adapter == "comfyui"

    def retry_policy(self) -> RetryPolicy:
        """The pure retry policy of this provider."""
        return RetryPolicy(self.retry.attempts, self.retry.base_seconds, self.retry.max_seconds)

    def breaker_policy(self) -> BreakerPolicy:
        """The pure breaker policy of this provider."""
        b = self.breaker
        return BreakerPolicy(
            b.consecutive_failures, b.failure_rate, b.min_calls, b.window_seconds, b.cooldown_seconds, b.probes
        )

    def deadlines(self) -> Deadlines:
        """The queue and run bounds of this provider's remote tasks."""
        return Deadlines(queue_s=self.queue_timeout_seconds, run_s=self.timeout_seconds)

    @field_validator("effect_types")
    @classmethod
    def _known_effects(cls, v: list[str], info: ValidationInfo) -> list[str]:
        known = (info.context or {}).get("effect_types")
        if len(set(v)) != len(v):
            raise ValueError(f"effect_types has duplicates: {v}")
        if known is not None:
            unknown = sorted(set(v) - set(known))
            if unknown:
                raise ValueError(f"unknown effect types {unknown} (catalog: {sorted(known)})")
        return v

    @field_validator("instance_type")
    @classmethod
    def _known_instance(cls, v: str, info: ValidationInfo) -> str:
        known = (info.context or {}).get("instance_types")
        if known is not None and v not in known:
            listed = ", ".join(sorted(known))
            raise ValueError(f"instance type {v!r} is not on the rate card ({listed})")
        return v

    @field_validator("workflow")
    @classmethod
    def _workflow_matches_adapter(cls, v: dict[str, Any] | str, info: ValidationInfo) -> dict[str, Any] | str:
        # A field validator (not a model validator) so its errors are reported together with
        # those of the other fields; it sees adapter and effect_types when they were valid.
        adapter = info.data.get("adapter")
        model = _WORKFLOW_MODELS.get(adapter or "")
        if model is None:  # comfyui (the adapter owns its template format) or adapter invalid
            return v
        if not isinstance(v, dict):
            raise ValueError(f"an {adapter} workflow is a mapping, got {type(v).__name__}")
        try:
            parsed = model.model_validate(v)
        except ValidationError as exc:
            problems = "; ".join(
                f"workflow.{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors()
            )
            raise ValueError(problems) from None
        declared = info.data.get("effect_types")
        params = getattr(parsed, "params", {})
        extra = sorted(set(params) - set(declared)) if declared else []
        if extra:
            raise ValueError(f"workflow.params has effect types the provider does not declare: {extra}")
        return v

    def ffmpeg_workflow(self) -> FFmpegWorkflow:
        """The workflow as an ``FFmpegWorkflow`` (ffmpeg providers only)."""
        return FFmpegWorkflow.model_validate(self.workflow)

    def opencv_workflow(self) -> OpenCVWorkflow:
        """The workflow as an ``OpenCVWorkflow`` (opencv providers only)."""
        return OpenCVWorkflow.model_validate(self.workflow)


class Registry(BaseModel):
    """All providers of one registry file.

    Attributes:
        version: first 12 hex digits of the sha256 of the file's bytes (changes with any edit).
        schema_version: the file's ``schema_version`` (1).
        source: path the registry was read from, if any.
        providers: in file order (ids unique).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(pattern=r"^[0-9a-f]{12}$")
    schema_version: Literal[1] = 1
    source: str | None = None
    providers: list[ProviderSpec]

    @field_validator("providers")
    @classmethod
    def _unique_ids(cls, v: list[ProviderSpec]) -> list[ProviderSpec]:
        dupes = sorted(pid for pid, n in Counter(p.provider_id for p in v).items() if n > 1)
        if dupes:
            raise ValueError(f"duplicate provider ids: {dupes}")
        return v

    @classmethod
    def from_mapping(
        cls, data: Any, *, version: str, source: str | None = None, context: dict[str, Any] | None = None
    ) -> Registry:
        """Validate a parsed registry document.

        Args:
            data: ``{"schema_version": 1, "providers": [ {...}, ... ]}``.
            version: content hash (see ``Registry.version``).
            source: where it came from (for messages).
            context: optional ``{"effect_types": set, "instance_types": set}`` to check
                against the effect catalog and rate card.

        Raises:
            RegistryError: ``data`` is not a mapping with a ``providers`` list.
            pydantic.ValidationError: titled with the source, locations naming provider ids.
        """
        if not isinstance(data, dict) or not isinstance(data.get("providers"), list):
            raise RegistryError(f"{source or 'registry'}: expected a mapping with a 'providers' list")
        doc = {**data, "version": version, "source": source}
        try:
            return cls.model_validate(doc, context=context)
        except ValidationError as exc:
            title = f"provider registry {source or ''}".strip()
            raise _name_providers(exc, data["providers"], title) from None

    def get(self, provider_id: str) -> ProviderSpec:
        """The spec of ``provider_id``.

        Raises:
            KeyError: unknown id (the message lists the known ones).
        """
        for p in self.providers:
            if p.provider_id == provider_id:
                return p
        raise KeyError(
            f"unknown provider {provider_id!r} in registry {self.version} "
            f"(known: {', '.join(p.provider_id for p in self.providers)})"
        )

    def for_effect(self, effect_type: str, include_shadow: bool = False) -> list[ProviderSpec]:
        """Providers that may run ``effect_type``, in file order: the active ones, plus shadow
        ones when ``include_shadow``; disabled providers never."""
        modes = {"active", "shadow"} if include_shadow else {"active"}
        return [p for p in self.providers if p.mode in modes and effect_type in p.effect_types]


def _name_providers(exc: ValidationError, raw: list[Any], title: str) -> ValidationError:
    """Same errors with ``providers.<index>`` replaced by ``providers.<provider_id>``."""
    details: list[InitErrorDetails] = []
    for err in exc.errors():
        loc = list(err["loc"])
        if len(loc) >= 2 and loc[0] == "providers" and isinstance(loc[1], int):
            entry = raw[loc[1]] if loc[1] < len(raw) else None
            pid = entry.get("provider_id") if isinstance(entry, dict) else None
            loc[1] = str(pid) if pid else f"#{loc[1]} (no provider_id)"
        detail: InitErrorDetails = {"type": err["type"], "loc": tuple(loc), "input": err["input"]}
        if "ctx" in err:
            detail["ctx"] = err["ctx"]
        details.append(detail)
    return ValidationError.from_exception_data(title, details)


def content_version(raw: bytes) -> str:
    """Registry version of a file's bytes: sha256 hex, first 12 digits."""
    return hashlib.sha256(raw).hexdigest()[:12]


def load_registry(
    path: str | os.PathLike[str] = DEFAULT_REGISTRY_PATH,
    *,
    effects_path: Any = _SIBLING,
    rate_card_path: Any = _SIBLING,
) -> Registry:
    """Read and validate a registry file.

    Args:
        path: the YAML (default ``data/providers.yaml``).
        effects_path: effect catalog whose effect types providers may declare; default
            ``effects.yaml`` beside ``path`` when it exists; None skips the check.
        rate_card_path: rate card whose instance types providers may use; default
            ``rate_card.yaml`` beside ``path`` when it exists; None skips the check.

    Returns:
        The Registry, ``version`` = sha256 of the file's bytes (first 12 hex).

    Raises:
        FileNotFoundError: no such file.
        RegistryError: not YAML, or not a mapping with a ``providers`` list.
        pydantic.ValidationError: a provider is invalid (locations name its provider_id).
    """
    p = Path(path)
    raw = p.read_bytes()
    try:
        data = safe_load(raw)
    except yaml.YAMLError as exc:
        raise RegistryError(f"{p}: not valid YAML: {exc}") from None
    context = {}
    effects = _sibling(p, "effects.yaml", effects_path)
    if effects is not None:
        context["effect_types"] = set((load_yaml(effects) or {}).get("effects", {}))
    rate_card = _sibling(p, "rate_card.yaml", rate_card_path)
    if rate_card is not None:
        context["instance_types"] = set((load_yaml(rate_card) or {}).get("instance_types", {}))
    return Registry.from_mapping(data, version=content_version(raw), source=str(p), context=context or None)


def _sibling(registry_path: Path, name: str, given: Any) -> Path | None:
    if given is None:
        return None
    if given is _SIBLING:
        candidate = registry_path.parent / name
        return candidate if candidate.is_file() else None
    return Path(given)


def build_adapter(spec: ProviderSpec) -> ProviderAdapter:
    """The adapter for ``spec``: ``ffmpeg`` → ``FFmpegAdapter``, ``opencv`` →
    ``OpenCVAdapter``, ``comfyui`` → ``resources.providers.comfyui.ComfyUIAdapter`` (imported
    only here, so local providers work without its dependencies).

    Raises:
        ProviderUnavailable: ComfyUI module missing or unusable, or ``base_url`` not set.
    """
    if spec.adapter == "ffmpeg":
        from resources.providers.local_ffmpeg import FFmpegAdapter

        return FFmpegAdapter(spec)
    if spec.adapter == "opencv":
        from resources.providers.local_opencv import OpenCVAdapter

        return OpenCVAdapter(spec)
    if spec.adapter == "comfyui":
        return _build_comfyui(spec)
    raise ProviderUnavailable(f"provider {spec.provider_id!r}: no adapter for kind {spec.adapter!r}")


def _build_comfyui(spec: ProviderSpec) -> ProviderAdapter:
    if spec.base_urls:
        servers = [
            _build_comfyui(spec.model_copy(update={"base_url": url, "base_urls": None, "servers": 1, "concurrency": 1}))
            for url in spec.base_urls
        ]
        from resources.providers.comfyui import ComfyUIFleet

        return ComfyUIFleet(servers)  # type: ignore[arg-type]
    if not spec.base_url:
        raise ProviderUnavailable(
            f"provider {spec.provider_id!r}: the comfyui adapter needs a base_url "
            "(set it in providers.yaml; it is null)"
        )
    try:
        module = importlib.import_module("resources.providers.comfyui")
    except ImportError as exc:
        raise ProviderUnavailable(
            f"provider {spec.provider_id!r}: resources.providers.comfyui cannot be imported ({exc})"
        ) from exc
    adapter_cls = getattr(module, "ComfyUIAdapter", None)
    if adapter_cls is None or not hasattr(adapter_cls, "from_spec"):
        raise ProviderUnavailable(
            f"provider {spec.provider_id!r}: resources.providers.comfyui has no ComfyUIAdapter.from_spec"
        )
    entry = {
        "provider_id": spec.provider_id,
        "base_url": spec.base_url,
        "effect_types": list(spec.effect_types),
        "workflow": spec.workflow,
        "instance_type": spec.instance_type,
        "partner_cost_usd_per_call": spec.cost.partner_cost_usd_per_call,
        "timeout_s": spec.timeout_seconds,
    }
    try:
        return adapter_cls.from_spec(entry, project_root=PROJECT_ROOT, provider=spec.model_dump(mode="json"))
    except (OSError, ValueError) as exc:  # workflow file missing or not a valid template
        raise ProviderUnavailable(f"provider {spec.provider_id!r}: {type(exc).__name__}: {exc}") from exc
