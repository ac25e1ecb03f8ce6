"""Admin A/B tests: one uploaded video run on several chosen providers side by side.
Requests are bronze rows; the A/B sensor runs each once."""

from __future__ import annotations

import polars as pl

from resources.events import stable_id, utcnow
from resources.lake import Lake
from resources.providers.client import ProviderRegistry
from resources.schemas import AB_REQUESTS, AB_RESULTS, INGESTED_VIDEO


class ABTestInvalid(ValueError):
    """The request cannot run: unknown or rejected video, unknown provider, a provider that
    does not do the effect, or fewer than two providers."""


def request_ab_test(
    lake: Lake, registry: ProviderRegistry, video_id: str, effect_type: str, providers: list[str], admin: str
) -> dict:
    """Record an A/B test request; the same video, effect and providers name one experiment.

    Raises:
        ABTestInvalid: with a readable reason.
    """
    providers = sorted(set(providers))
    if len(providers) < 2:
        raise ABTestInvalid("an A/B test compares at least two providers")
    video = lake.read(INGESTED_VIDEO, pl.col("video_id") == video_id)
    if video.is_empty() or video["status"][0] != "accepted":
        raise ABTestInvalid(f"video {video_id} was not ingested (or was rejected)")
    view = registry.registry()
    for pid in providers:
        try:
            spec = view.spec(pid)
        except KeyError as exc:
            raise ABTestInvalid(str(exc).strip("'\"")) from None
        if effect_type not in spec.effect_types or spec.mode == "disabled":
            raise ABTestInvalid(f"provider {pid} does not run {effect_type} (or is disabled)")
    row = {
        "experiment_id": stable_id("ab", video_id, effect_type, providers, length=16),
        "video_id": video_id,
        "effect_type": effect_type,
        "providers": providers,
        "admin": admin,
        "requested_at": utcnow(),
    }
    lake.append(AB_REQUESTS, pl.DataFrame([row], schema=AB_REQUESTS.schema))
    return row


def ab_test(lake: Lake, experiment_id: str) -> dict | None:
    """The request and its results so far (``status``: pending or done); None if unknown."""
    req = lake.read(AB_REQUESTS, pl.col("experiment_id") == experiment_id)
    if req.is_empty():
        return None
    results = lake.read(AB_RESULTS, pl.col("experiment_id") == experiment_id).sort("provider_id")
    return {**req.row(0, named=True), "status": "done" if results.height else "pending", "results": results.to_dicts()}
