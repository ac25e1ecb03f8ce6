"""Effect runs, the pure part: the ids a run's work is named by, the result-cache key and the
order its providers are tried in (no Dagster, no I/O).

The result cache: a delivered output is reused for a later run of the same workspace whose
input bytes, pinned revision, parameters and provider (with the version of what makes its
output: adapter and workflow) are all the same. ``cache_key`` hashes exactly those; any
change in one of them (a re-published revision, another strength, an edited filter graph)
is a miss, so a reused output is always one the current provider would make again.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from economics.ids import stable_id
from economics.routing import RunRoute

STAGE = "RUN"  # the stage of a run's events in pipeline_events and execution_events


def run_task_id(run_id: str, provider_id: str) -> str:
    """The task of ``provider_id`` in run ``run_id`` (20 hex; the same run and provider always
    name one task, so a re-executed run writes the same events)."""
    return stable_id("run-task", run_id, provider_id, length=20)


def cache_task_id(run_id: str) -> str:
    """The id of a cache hit's row (no provider ran; it names the reuse)."""
    return stable_id("run-cache-hit", run_id, length=20)


def run_rng(run_id: str) -> random.Random:
    """The run's routing draw, seeded by its id: a re-executed run routes the same way."""
    return random.Random(int(stable_id("routing", run_id), 16))


def provider_version(spec: Mapping[str, Any]) -> str:
    """12 hex of the sha256 of what makes a provider's output: its ``adapter`` and
    ``workflow`` (filter graph, transform, derived parameters, LUT), from a registry entry
    (``ProviderSpec.model_dump()``). Its price, concurrency or retry policy do not change an
    output and do not change the version."""
    what = {"adapter": spec["adapter"], "workflow": spec["workflow"]}
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:12]


def cache_key(
    workspace_id: str, input_sha256: str, revision_id: str, params: Mapping[str, Any], provider_id: str, version: str
) -> str:
    """The result-cache key (32 hex): workspace × input bytes × revision × parameters (as
    canonical JSON) × provider × provider version."""
    canonical = json.dumps(params, sort_keys=True)
    return stable_id("run-cache", workspace_id, input_sha256, revision_id, canonical, provider_id, version, length=32)


def input_proxy_key(workspace_id: str, input_sha256: str, max_side: int) -> str:
    """Media key of a run input's normalized proxy (M1's encoding, ``assets.ingest.proxy``):
    content-addressed inside the workspace and by the proxy size, so every run of the same
    bytes reuses one proxy; private (not under a public media prefix)."""
    return f"run-inputs/{workspace_id}/{input_sha256}-{max_side}.mp4"


def attempt_order(route: RunRoute) -> tuple[str, ...]:
    """The providers a run tries, in order: the routed one, then its fallbacks best rank
    first. Shadow providers are never in it (they get copies, never the delivery)."""
    return route.candidates


def deadline_of(started_at: datetime, seconds: float) -> datetime:
    """When a run stops falling back (``Settings.run_deadline_s`` after it started)."""
    return started_at + timedelta(seconds=seconds)
