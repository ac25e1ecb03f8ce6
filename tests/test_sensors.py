"""Sensors carry on past rows that outlived their Dagster instance: a decision or a finished
task for a video this instance never partitioned is skipped (and logged), the others still
get their runs."""

from __future__ import annotations

import dagster as dg

from assets.partitions import videos
from pipelines.sensors import for_known_videos


def test_requests_for_unknown_videos_are_skipped_and_the_rest_kept(instance):
    instance.add_dynamic_partitions(videos.name, ["v_known"])
    context = dg.build_sensor_context(instance=instance)
    requests = [
        dg.RunRequest(partition_key="v_known", run_key="publish:a1"),
        dg.RunRequest(partition_key="v_from_an_older_instance", run_key="publish:a2"),
    ]
    assert [r.run_key for r in for_known_videos(context, requests)] == ["publish:a1"]
