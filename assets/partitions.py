"""The dynamic partitions: one per uploaded video (key = video_id) for effect creation, one
per effect run (key = run_id) for users' runs of published effects."""

import dagster as dg

videos = dg.DynamicPartitionsDefinition(name="videos")

# One partition per effect run (assets/runs): a run is its own Dagster run, keyed by run id.
effect_runs = dg.DynamicPartitionsDefinition(name="runs")
