"""The demo's last step (pipelines/cli/demo.py ``economics_cycle``): one economics cycle, as
``effectlake economics`` in a process of its own on the chain's instance and lake, so the
executions of the videos just processed have their costs, margins and manifest at once."""

import os

import httpx
import polars as pl
import pytest

from pipelines.cli.demo import economics_cycle
from resources.lake import Lake
from resources.manifest_store import ManifestStore
from resources.schemas import EXECUTION_COSTS, EXECUTION_EVENTS, JOB_MARGINS

pytestmark = [pytest.mark.video, pytest.mark.slow]


def test_the_demos_economics_cycle_costs_the_videos_it_processed(settings, instance, warm_bikes, tmp_path):
    from api.app import create_app
    from pipelines.definitions import build_definitions
    from tests.api_users import new_user
    from tests.harness import Driver
    from tests.server import serve

    driver = Driver(build_definitions(settings), instance)
    lake = Lake(uri=settings.lake_uri)
    with serve(create_app(settings)) as base, httpx.Client(base_url=base, timeout=60) as client:
        client.headers.update(new_user(client)["headers"])
        upload = client.post("/v1/uploads", files={"file": (warm_bikes.name, warm_bikes.read_bytes(), "video/mp4")})
        vid = upload.json()["video_id"]
        # The intake run carries the video to its approval request (no evaluation run).
        assert [r.success for r in driver.step("upload_sensor")] == [True]
        assert client.get(f"/v1/videos/{vid}").json()["stage"] == "awaiting_approval"
    driver.land()
    assert lake.read(JOB_MARGINS).is_empty()  # nothing costed yet: the schedule has not run

    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "LAKE_URI": settings.lake_uri,
        "MEDIA_URI": settings.media_uri,
        "MANIFEST_URI": settings.manifest_uri,
        "DATABASE_URL": settings.database_url,
    }
    (tmp_path / "dagster_home").mkdir()
    assert economics_cycle(env, tmp_path), (tmp_path / "economics.log").read_text()[-3000:]

    margins = lake.read(JOB_MARGINS, pl.col("video_id") == vid)
    assert margins.height == 1 and margins["tokens_charged"][0] > 0 and margins["margin"][0] is not None
    finished = lake.read(
        EXECUTION_EVENTS,
        (pl.col("correlation_id") == vid) & pl.col("event_type").is_in(["TaskSucceeded", "TaskFailed"]),
    )
    assert set(lake.read(EXECUTION_COSTS, pl.col("video_id") == vid)["task_id"]) == set(finished["task_id"]) != set()
    assert ManifestStore(uri=settings.manifest_uri).read() is not None
