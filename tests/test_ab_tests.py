"""Admin A/B test: one uploaded video on several chosen providers, requested over the API,
run by the A/B sensor's job, costed but never charged."""

import httpx
import pytest

from api.app import create_app
from pipelines.definitions import build_definitions
from resources.lake import Lake
from resources.schemas import LEDGER_ENTRIES
from tests.api_users import ADMIN, new_user, upload
from tests.harness import Driver
from tests.server import serve

pytestmark = [pytest.mark.slow, pytest.mark.video]


def test_ab_test_runs_each_provider_once_and_charges_nobody(settings, instance, short_carphone):
    driver = Driver(build_definitions(settings), instance)
    lake = Lake(uri=settings.lake_uri)
    with serve(create_app(settings)) as base, httpx.Client(base_url=base, timeout=60) as c:
        vid = upload(c, new_user(c), short_carphone, "c.mp4").json()["video_id"]
        driver.step("upload_sensor")
        driver.land()  # the ledger as it stands, the video's reservation included
        ledger_before = lake.read(LEDGER_ENTRIES).height
        bad = c.post(
            "/v1/admin/ab-tests",
            headers=ADMIN,
            json={"video_id": vid, "effect_type": "slow_motion", "providers": ["ffmpeg-slowmo-dup", "opencv-curves"]},
        )
        assert bad.status_code == 422 and "does not run slow_motion" in bad.json()["detail"]
        assert bad.json()["code"] == "invalid_request"
        body = {
            "video_id": vid,
            "effect_type": "slow_motion",
            "providers": ["ffmpeg-slowmo-dup", "ffmpeg-slowmo-blend", "opencv-slowmo-flow"],
        }
        r = c.post("/v1/admin/ab-tests", headers=ADMIN, json=body)
        assert r.status_code == 202
        exp = r.json()["experiment_id"]
        assert c.post("/v1/admin/ab-tests", headers=ADMIN, json=body).json()["experiment_id"] == exp
        assert c.get(f"/v1/admin/ab-tests/{exp}", headers=ADMIN).json()["status"] == "pending"
        runs = driver.step("ab_test_sensor")
        assert [r.success for r in runs] == [True]
        assert driver.step("ab_test_sensor") == []
        result = c.get(f"/v1/admin/ab-tests/{exp}", headers=ADMIN).json()
    assert result["status"] == "done"
    by = {r["provider_id"]: r for r in result["results"]}
    assert set(by) == set(body["providers"])
    assert all(r["status"] == "succeeded" and r["cost_usd"] > 0 and r["composite"] is not None for r in by.values())
    assert by["ffmpeg-slowmo-blend"]["style_adherence"] > by["ffmpeg-slowmo-dup"]["style_adherence"]
    driver.land()
    assert lake.read(LEDGER_ENTRIES).height == ledger_before  # the business's experiment: nobody is charged
