"""The per-video dynamic partition: one partition per uploaded video, key = video_id."""

import dagster as dg

videos = dg.DynamicPartitionsDefinition(name="videos")
