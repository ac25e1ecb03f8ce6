"""Pure rules that the Dagster wiring calls: when a video's tasks are all finished (completion
sensor) and which ranking M5 routes by (manifest or bootstrap)."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from economics.routing import current_rankings
from economics.telemetry import videos_awaiting_evaluation, videos_with_all_tasks_finished

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _events(rows: list[tuple[str, str, str]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=["correlation_id", "task_id", "event_type"], orient="row")


def test_a_video_is_finished_only_when_every_dispatched_task_has_an_outcome():
    events = _events(
        [
            ("v1", "t1", "TaskDispatched"),
            ("v1", "t2", "TaskDispatched"),
            ("v1", "t1", "TaskSucceeded"),
            ("v2", "t3", "TaskDispatched"),
            ("v2", "t3", "TaskFailed"),
            ("v3", "t4", "TaskSucceeded"),  # an outcome without a dispatch starts nothing
        ]
    )
    assert videos_with_all_tasks_finished(events).to_dicts() == [{"video_id": "v2", "tasks": 1}]
    done = pl.concat([events, _events([("v1", "t2", "TaskFailed"), ("v1", "t2", "TaskSucceeded")])])
    assert videos_with_all_tasks_finished(done).to_dicts() == [
        {"video_id": "v1", "tasks": 2},
        {"video_id": "v2", "tasks": 1},
    ]


def test_rankings_follow_the_manifest_for_active_providers_and_bootstrap_the_rest():
    active = {"warm_grade": ["a", "b"], "cartoon": ["c"]}
    effects, version, source = current_rankings(None, active, NOW)
    assert source == "bootstrap" and [e["provider_id"] for e in effects["warm_grade"]] == ["a", "b"]
    manifest = {"version": "m7", "effects": {"warm_grade": [{"provider_id": "gone"}, {"provider_id": "b"}]}}
    effects, version, source = current_rankings(manifest, active, NOW)
    assert (version, source) == ("m7", "manifest")
    assert [e["provider_id"] for e in effects["warm_grade"]] == ["b"]  # inactive "gone" dropped
    assert [e["provider_id"] for e in effects["cartoon"]] == ["c"]  # not in the manifest: bootstrap


def test_a_finished_video_awaits_evaluation_until_one_scores_it_after_its_last_task():
    at = [datetime(2026, 1, 1, 0, 0, s, tzinfo=UTC) for s in range(6)]
    events = pl.DataFrame(
        [
            ("v1", "t1", "TaskDispatched", at[0]),
            ("v1", "t1", "TaskSucceeded", at[1]),
            ("v2", "t2", "TaskDispatched", at[0]),
            ("v2", "t2", "TaskFailed", at[1]),
            ("v2", "t3", "TaskDispatched", at[2]),  # a fallback dispatched after the failure
            ("v2", "t3", "TaskSucceeded", at[4]),
            ("v3", "t4", "TaskDispatched", at[0]),  # still running: not finished
        ],
        schema=["correlation_id", "task_id", "event_type", "occurred_at"],
        orient="row",
    )
    none = pl.DataFrame(schema={"correlation_id": pl.String, "occurred_at": events["occurred_at"].dtype})
    assert videos_awaiting_evaluation(events, none).to_dicts() == [
        {"video_id": "v1", "tasks": 1},
        {"video_id": "v2", "tasks": 2},
    ]
    # v1 was scored in its run; v2 was scored before its fallback finished, so it awaits again.
    evaluated = pl.DataFrame({"correlation_id": ["v1", "v2"], "occurred_at": [at[2], at[3]]})
    assert videos_awaiting_evaluation(events, evaluated).to_dicts() == [{"video_id": "v2", "tasks": 2}]
    evaluated = pl.DataFrame({"correlation_id": ["v1", "v2"], "occurred_at": [at[2], at[5]]})
    assert videos_awaiting_evaluation(events, evaluated).is_empty()
