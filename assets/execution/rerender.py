"""Re-render a provider output from its render spec and say whether the new render is the
same: bit-identical (sha256), or else how close (VMAF against the original). What
``effectlake rerender <output_id>`` runs (docs/gallery.md, "Render specs").

The adapter is rebuilt from the provider entry the spec recorded (not from today's
``data/providers.yaml``), on the same input, checked against the sha256 the spec recorded.
"""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import polars as pl

from assets.quality.compare import vmaf_against
from resources.hashing import file_sha256
from resources.lake import Lake
from resources.media import MediaStore
from resources.providers.base import ProviderTask
from resources.providers.registry import ProviderSpec, ProviderUnavailable, build_adapter
from resources.providers.render_spec import render_spec, toolchain
from resources.schemas import PROVIDER_OUTPUTS


class RerenderFailed(Exception):
    """The output could not be re-rendered, or the re-render could not be compared: why."""


@dataclass(frozen=True)
class RerenderReport:
    """What a re-render found.

    Attributes:
        output_id: the provider output (``provider_outputs.task_id``).
        provider_id / effect_type: what rendered it.
        identical: the re-render's bytes equal the stored original's (sha256).
        original_sha256 / rerender_sha256: the two hashes.
        original_matches_spec: the stored original still has the sha256 the spec recorded.
        workflow_hash_matches: the re-run's recipe hashes as the recorded one (the same
            filter graph / transform / ComfyUI graph was run).
        toolchain_changes: component → [recorded, now] for each version that differs.
        vmaf: when not identical, ``assets.quality.compare.vmaf_against`` of the re-render
            against the original (``vmaf_hmean``…); None when identical.
        rerender_ms: wall milliseconds of the provider run.
    """

    output_id: str
    provider_id: str
    effect_type: str
    identical: bool
    original_sha256: str
    rerender_sha256: str
    original_matches_spec: bool
    workflow_hash_matches: bool
    toolchain_changes: dict[str, list[Any]]
    vmaf: dict[str, float] | None
    rerender_ms: int

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-able data."""
        return asdict(self)


def recorded_spec(lake: Lake, output_id: str) -> tuple[dict, dict]:
    """(the ``provider_outputs`` row, its parsed render spec) of ``output_id``.

    Raises:
        RerenderFailed: no such output, it did not succeed, or it has no render spec.
    """
    rows = lake.read(PROVIDER_OUTPUTS, pl.col("task_id") == output_id)
    if rows.is_empty():
        raise RerenderFailed(f"no provider output {output_id!r} in {PROVIDER_OUTPUTS.path}")
    row = rows.row(0, named=True)
    if row["status"] != "succeeded" or not row["output_key"]:
        raise RerenderFailed(f"output {output_id} {row['status']}: there is nothing to re-render")
    if not row["render_spec"]:
        raise RerenderFailed(f"output {output_id} has no render spec (rendered before specs were recorded)")
    return row, json.loads(row["render_spec"])


def rerender(lake: Lake, media: MediaStore, output_id: str) -> RerenderReport:
    """Re-run ``output_id``'s render spec on its input and compare with the stored output.

    Raises:
        RerenderFailed: see ``recorded_spec``; the provider cannot be built, the input is gone
            or no longer has the recorded sha256, the provider run failed, or the comparison
            could not be measured.
    """
    row, spec = recorded_spec(lake, output_id)
    try:
        adapter = build_adapter(ProviderSpec.model_validate(spec["provider"]))
    except (ProviderUnavailable, ValueError) as exc:
        raise RerenderFailed(f"provider {spec['provider_id']} cannot be built: {exc}") from exc
    key = spec["input"]["key"]
    if not key:
        raise RerenderFailed(f"output {output_id}'s spec names no input key")
    with tempfile.TemporaryDirectory(prefix="effectlake-rerender-") as tmp:
        try:
            with media.local_file(key) as input_path, media.local_file(row["output_key"]) as original:
                if file_sha256(input_path) != spec["input"]["sha256"]:
                    raise RerenderFailed(f"input {key} changed since the render (sha256 differs from the spec)")
                task = ProviderTask(
                    # A fresh id: a remote provider names its job by task id and would hand
                    # back the earlier job's result.
                    task_id=f"{output_id}.rerender-{uuid.uuid4().hex[:8]}",
                    video_id=row["video_id"],
                    effect_type=spec["effect_type"],
                    provider_id=spec["provider_id"],
                    input_path=input_path,
                    output_path=str(Path(tmp) / "rerender.mp4"),
                    params=spec["params"],
                    prompt=spec["prompt"],
                    input_key=key,
                )
                started = time.perf_counter()
                result = adapter.execute(task)
                elapsed_ms = int((time.perf_counter() - started) * 1000)
                if result.status != "succeeded" or not result.output_path:
                    raise RerenderFailed(f"the provider failed: {result.error_class}: {result.error_message}")
                now = render_spec(task, adapter, result.output_path)
                original_sha = file_sha256(original)
                identical = now["output_sha256"] == original_sha
                try:
                    vmaf = None if identical else vmaf_against(original, result.output_path)
                except Exception as exc:
                    raise RerenderFailed(f"VMAF could not be measured: {type(exc).__name__}: {exc}") from exc
        except FileNotFoundError as exc:
            raise RerenderFailed(f"media missing: {exc}") from exc
    recorded_tools = spec.get("toolchain") or {}
    current_tools = toolchain()
    return RerenderReport(
        output_id=output_id,
        provider_id=spec["provider_id"],
        effect_type=spec["effect_type"],
        identical=identical,
        original_sha256=original_sha,
        rerender_sha256=now["output_sha256"],
        original_matches_spec=original_sha == spec.get("output_sha256"),
        workflow_hash_matches=now["workflow_hash"] == spec["workflow_hash"],
        toolchain_changes={
            k: [recorded_tools.get(k), current_tools.get(k)]
            for k in sorted(set(recorded_tools) | set(current_tools))
            if recorded_tools.get(k) != current_tools.get(k)
        },
        vmaf=vmaf,
        rerender_ms=elapsed_ms,
    )
