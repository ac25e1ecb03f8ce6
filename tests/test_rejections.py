"""Bad input that only decoding can reveal: M1 rejects it with a readable reason, a
VideoRejected event and a user notification; the sensor and the other videos carry on."""

from pathlib import Path

import httpx
import polars as pl
import pytest

from api.app import create_app
from pipelines.definitions import build_definitions
from resources.lake import Lake
from resources.schemas import INGESTED_VIDEO, NOTIFICATIONS, PIPELINE_EVENTS
from tests.api_users import ADMIN, new_user, upload
from tests.clips import declared_width_mkv, lavfi_clip
from tests.harness import Driver
from tests.server import serve

pytestmark = [pytest.mark.slow, pytest.mark.video]

H264 = ("-c:v", "libx264", "-pix_fmt", "yuv420p")


@pytest.fixture
def one_frame_mp4(tmp_path):
    return Path(lavfi_clip(tmp_path / "still.mp4", "testsrc2=size=320x240:rate=25", "-frames:v", "1", *H264))


@pytest.fixture
def long_mp4(tmp_path):
    return Path(lavfi_clip(tmp_path / "long.mp4", "testsrc2=size=160x120:rate=10:duration=4", *H264))


def test_undecodable_inputs_are_rejected_and_the_rest_carries_on(
    settings, instance, warm_bikes, one_frame_mp4, long_mp4, tmp_path
):
    settings = settings.model_copy(update={"max_duration_ms": 3_000})
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes(warm_bikes.read_bytes()[:-4000])  # bikes keeps its index first
    huge = declared_width_mkv(tmp_path / "huge.mkv", 16000)  # refused from its header, undecoded
    driver = Driver(build_definitions(settings), instance)
    lake = Lake(uri=settings.lake_uri)
    with serve(create_app(settings)) as base, httpx.Client(base_url=base, timeout=60) as client:
        ids, users = {}, {}
        for name, path in [
            ("good", warm_bikes),
            ("still", one_frame_mp4),
            ("long", long_mp4),
            ("truncated", truncated),
            ("huge", huge),
        ]:
            users[name] = new_user(client, name=name)
            r = upload(client, users[name], path)
            assert r.status_code == 202, r.text
            ids[name] = r.json()["video_id"]
        runs = driver.step("upload_sensor")
        assert len(runs) == 5 and all(r.success for r in runs)
        driver.land()  # the notifications the runs queued in the store reach the lake

        videos = {r["video_id"]: r for r in lake.read(INGESTED_VIDEO).iter_rows(named=True)}
        assert videos[ids["good"]]["status"] == "accepted"
        expected = {
            "still": ("still_image", "frame"),
            "long": ("too_long", "limit"),
            "truncated": ("truncated", ""),
            "huge": ("bad_resolution", "declares 16000x16 pixels"),
        }
        for name, (code, phrase) in expected.items():
            v = videos[ids[name]]
            assert (v["status"], v["reject_code"]) == ("rejected", code), v
            assert phrase in v["reject_reason"]
            notes = lake.read(NOTIFICATIONS, pl.col("user_id") == users[name]["user_id"])
            assert notes["kind"].to_list() == ["video_rejected"]
            assert notes["body"].to_list() == [v["reject_reason"]]
            events = lake.read(PIPELINE_EVENTS, pl.col("correlation_id") == ids[name])
            assert sorted(events["event_type"].to_list()) == ["UserNotified", "VideoRejected"]
            assert client.get(f"/v1/videos/{ids[name]}", headers=ADMIN).json()["stage"] == "rejected"

        # The good video was evaluated in its intake run; nothing is requested for any of them.
        assert driver.step("completion_sensor") == []
        assert client.get(f"/v1/videos/{ids['good']}", headers=ADMIN).json()["stage"] == "awaiting_approval"
