"""`effectlake demo --exit` as a user runs it: the API and `dagster dev` (webserver + daemon)
as real processes, the daemon's sensors driving every run, on a fresh lake and instance."""

import os
import subprocess
import sys

import polars as pl
import pytest

from resources.lake import Lake
from resources.samples import sample_videos
from resources.schemas import GALLERY_REVISIONS, PIPELINE_EVENTS
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
