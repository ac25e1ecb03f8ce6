"""One stage of the chain, run for one video on a copy of the chain's state (the failure-matrix
suite, ``tests/test_failure_matrix.py``): in the test's process, or as a process of its own
that the suite SIGKILLs mid-step (``python -m tests.failure_stage ROOT STAGE VIDEO``).

A state folder ``ROOT`` holds ``lake/``, ``media/``, ``store.db``, ``manifest/``,
``providers.yaml`` (with ``effects.yaml`` and ``rate_card.yaml`` beside it) and
``settings.json`` (further Settings fields, e.g. the Gemini fake's URL).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import dagster as dg
import yaml

from resources.settings import DATA_DIR
from tests.api_users import ADMIN_KEY

# Stage → (job, the assets of that job the stage is).
STAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "M1": ("intake_job", ("ingested_video",)),
    "M2": ("intake_job", ("content_analysis",)),
    "M3": ("economics_job", ("provider_registry",)),
    "M4": ("intake_job", ("prompt_variants",)),
    "M5": ("intake_job", ("test_batch",)),
    "M6": ("intake_job", ("provider_outputs",)),
    "M7": ("evaluation_job", ("quality_scores",)),
    "M5b": ("evaluation_job", ("best_result",)),
    "M9": ("evaluation_job", ("approval_requests",)),
    "M10": ("publish_job", ("gallery_revisions",)),
    "M8": ("economics_job", ()),  # the whole economics job
}
DAGSTER_YAML = "telemetry:\n  enabled: false\n"
# The suite's crash cells set it to the step keys to kill in: see hold_at_first_commit_in.
HOLD_ENV = "EFFECTLAKE_FAILURE_STAGE_HOLD"
HELD_MARKER = "held"  # created in the state folder once the process is held
COMFY = "comfyui-gpu"


def write_registry(root: Path, comfy_url: str, **comfy) -> None:
    """The platform's registry with the cartoon providers cut to one local and the remote
    ComfyUI one (at ``comfy_url``), so the job's batch is those two, both ranked."""
    for name in ("effects.yaml", "rate_card.yaml"):
        shutil.copyfile(DATA_DIR / name, root / name)
    doc = yaml.safe_load((DATA_DIR / "providers.yaml").read_text())
    keep = [
        p
        for p in doc["providers"]
        if "cartoon" not in p["effect_types"] or p["provider_id"] in ("opencv-cartoon", COMFY)
    ]
    for p in keep:
        if p["provider_id"] == COMFY:
            p.update(
                mode="active",
                base_url=comfy_url,
                retry={"attempts": 2, "base_seconds": 0.1, "max_seconds": 0.5},
                timeout_seconds=60,
                queue_timeout_seconds=60,
            )
            p.update(comfy)
    doc["providers"] = keep
    (root / "providers.yaml").write_text(yaml.safe_dump(doc))


def merge_settings(root: Path, **fields) -> None:
    path = root / "settings.json"
    current = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**current, **fields}))


def cell_settings(root: Path):
    """Settings rooted in the state folder ``root``."""
    from resources.settings import Settings

    extra = json.loads((root / "settings.json").read_text()) if (root / "settings.json").exists() else {}
    return Settings(
        LAKE_URI=str(root / "lake"),
        MEDIA_URI=str(root / "media"),
        MANIFEST_URI=str(root / "manifest" / "routing_manifest.json"),
        DATABASE_URL=f"sqlite:///{root / 'store.db'}",
        EFFECTLAKE_PROVIDERS=str(root / "providers.yaml"),
        EFFECTLAKE_ADMIN_KEY=ADMIN_KEY,
        EFFECTLAKE_API_URL="http://testserver",
        EFFECTLAKE_MAX_UPLOAD_BYTES=20_000_000,
        EFFECTLAKE_MAX_DURATION_MS=30_000,
        **extra,
    )


def stage_keys(defs: dg.Definitions, stage: str) -> list[dg.AssetKey]:
    """The asset keys of ``stage`` (empty for M8: the whole economics job)."""
    assets = STAGES[stage][1]
    return [a.key for a in defs.assets if isinstance(a, dg.AssetsDefinition) and a.key.path[-1] in assets]


def step_keys(defs: dg.Definitions, stage: str) -> list[str]:
    """The Dagster step keys of ``stage`` (``silver__ingested_video``…)."""
    return ["__".join(k.path) for k in stage_keys(defs, stage)]


def run_stage(defs: dg.Definitions, instance: dg.DagsterInstance, stage: str, video_id: str | None):
    """Execute ``stage`` (its assets of its job; the whole economics job for M8) for
    ``video_id``; the run's result (never raises for a failed step)."""
    job_name = STAGES[stage][0]
    job = defs.resolve_job_def(job_name)
    selection = stage_keys(defs, stage) or None
    partitioned = job_name != "economics_job"
    if partitioned:
        instance.add_dynamic_partitions("videos", [video_id])
    return job.execute_in_process(
        partition_key=video_id if partitioned else None,
        instance=instance,
        asset_selection=selection,
        raise_on_error=False,
    )


def hold_at_first_commit_in(step_keys: set[str], marker: Path) -> None:
    """Block this process for good at the first lake commit one of ``step_keys`` makes
    (``Lake._retry`` wraps every append, upsert and overwrite): the suite's SIGKILL then always
    lands mid-step. Without it a step quicker than the suite's poll for its start (M9's,
    ~0.1 s) could finish, run and all, before the kill. Commits of other steps (the economics
    job's upstream ones) and outside any step go through. ``marker`` is created when the
    process is held, for the suite to check that the kill came there."""
    from resources.lake import Lake

    commit = Lake._retry

    def held(fn):
        try:
            step = dg.OpExecutionContext.get().op_handle.name
        except dg.DagsterInvariantViolationError:  # not inside a step
            step = None
        if step not in step_keys:
            return commit(fn)
        marker.touch()
        time.sleep(3600)  # until the suite's SIGKILL
        raise AssertionError("the suite did not kill this process")

    Lake._retry = staticmethod(held)  # type: ignore[method-assign]


def main(argv: list[str]) -> int:
    root, stage, video_id = Path(argv[0]), argv[1], argv[2]
    from pipelines.definitions import build_definitions

    if os.environ.get(HOLD_ENV):
        hold_at_first_commit_in(set(os.environ[HOLD_ENV].split(",")), root / HELD_MARKER)

    defs = build_definitions(cell_settings(root))
    home = root / "dagster_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text(DAGSTER_YAML)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return 0 if run_stage(defs, instance, stage, video_id).success else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
