"""`effectlake demo --exit` as a user runs it: the API and `dagster dev` (webserver + daemon)
as real processes, the daemon's sensors driving every run, on a fresh lake and instance."""

import os
import subprocess
import sys

import polars as pl
import pytest

from resources.lake import Lake
from resources.manifest_store import ManifestStore
from resources.samples import sample_videos
from resources.schemas import (
    EXECUTION_COSTS,
    EXECUTION_EVENTS,
    GALLERY_REVISIONS,
    JOB_MARGINS,
    PIPELINE_EVENTS,
    ROUTING_MANIFESTS,
)
from tests.server import free_port

pytestmark = pytest.mark.video


@pytest.mark.slow
def test_demo_publishes_every_sample_through_the_daemon(tmp_path):
    env = {
        **os.environ,
        "LAKE_URI": str(tmp_path / "lake"),
        "MEDIA_URI": str(tmp_path / "media"),
        "MANIFEST_URI": str(tmp_path / "manifest.json"),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.cli",
            "demo",
            "--exit",
            "--api-port",
            str(free_port()),
            "--dagster-port",
            str(free_port()),
            "--timeout",
            "600",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    samples = sample_videos()
    assert proc.stdout.count("stage=published") == len(samples) >= 3
    lake = Lake(uri=env["LAKE_URI"])
    assert lake.read(GALLERY_REVISIONS).filter(pl.col("published")).height == len(samples)
    published = lake.read(PIPELINE_EVENTS, pl.col("event_type") == "EffectPublished")
    assert published["correlation_id"].n_unique() == len(samples)
    # The instance the daemon used is the one DAGSTER_HOME named: its runs are on disk there.
    assert (tmp_path / "dagster_home" / "history").exists()
    # The demo ends with one economics cycle: every video's job has its margin, every task
    # of theirs its cost, and a manifest is published from their executions.
    assert "economics cycle: done" in proc.stdout
    margins = lake.read(JOB_MARGINS)
    assert set(published["correlation_id"]) <= set(margins["video_id"])
    assert margins.filter(pl.col("tokens_charged") > 0)["margin"].is_not_null().all()
    finished = lake.read(EXECUTION_EVENTS, pl.col("event_type").is_in(["TaskSucceeded", "TaskFailed"]))
    assert set(lake.read(EXECUTION_COSTS)["task_id"]) == set(finished["task_id"]) != set()
    assert lake.read(ROUTING_MANIFESTS).height > 0
    assert ManifestStore(uri=env["MANIFEST_URI"]).read() is not None
