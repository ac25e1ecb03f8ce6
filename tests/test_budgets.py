"""Per-user budgets end to end: a paused account is refused at the API with
UserQuotaExceeded until an admin tops it up; M5 refuses a batch the balance cannot cover."""

import httpx
import polars as pl
import pytest

from api.app import create_app
from pipelines.definitions import build_definitions
from resources.lake import Lake
from resources.schemas import EXECUTION_EVENTS, NOTIFICATIONS, PIPELINE_EVENTS
from tests.api_users import ADMIN, new_user, upload
from tests.harness import Driver
from tests.server import serve

pytestmark = [pytest.mark.slow, pytest.mark.video]


def test_no_tokens_is_402_until_topped_up(settings, short_bikes):
    settings = settings.model_copy(update={"welcome_credit_tokens": 0})
    with serve(create_app(settings)) as base, httpx.Client(base_url=base) as c:
        broke = new_user(c)
        r = upload(c, broke, short_bikes)
        assert r.status_code == 402 and r.json()["error"] == "UserQuotaExceeded"
        assert "topped up" in r.json()["detail"]
        credits = f"/v1/admin/users/{broke['user_id']}/credits"
        top = c.post(credits, headers=ADMIN, json={"tokens": 50, "topup_id": "pay-1"})
        assert top.status_code == 201 and top.json()["available"] == 50
        c.post(credits, headers=ADMIN, json={"tokens": 50, "topup_id": "pay-1"})
        balance = c.get(f"/v1/users/{broke['user_id']}/balance", headers=broke["headers"]).json()
        assert balance["available"] == 50  # same payment, credited once
        assert upload(c, broke, short_bikes).status_code == 202


def test_batch_over_the_balance_is_refused_and_the_user_told(settings, instance, short_bikes):
    settings = settings.model_copy(update={"welcome_credit_tokens": 3})
    driver = Driver(build_definitions(settings), instance)
    with serve(create_app(settings)) as base, httpx.Client(base_url=base) as c:
        small = new_user(c)
        vid = upload(c, small, short_bikes).json()["video_id"]
        assert all(r.success for r in driver.step("upload_sensor"))
        assert c.get(f"/v1/videos/{vid}", headers=small["headers"]).json()["stage"] == "quota_exceeded"
        balance = c.get(f"/v1/users/{small['user_id']}/balance", headers=small["headers"]).json()
        assert balance["available"] == 3  # nothing reserved
    lake = Lake(uri=settings.lake_uri)
    types = lake.read(PIPELINE_EVENTS, pl.col("correlation_id") == vid)["event_type"].to_list()
    assert "UserQuotaExceeded" in types and "TestBatchDispatched" not in types
    assert lake.read(EXECUTION_EVENTS, pl.col("correlation_id") == vid).is_empty()
    notes = lake.read(NOTIFICATIONS, pl.col("user_id") == small["user_id"])
    assert notes["kind"].to_list() == ["quota_exceeded"]
    assert "has 3 available" in notes["body"][0]


def test_reservations_go_through_the_one_slot_ledger_pool(settings, instance, short_bikes):
    driver = Driver(build_definitions(settings), instance)
    with serve(create_app(settings)) as base, httpx.Client(base_url=base) as c:
        upload(c, new_user(c), short_bikes)
        assert all(r.success for r in driver.step("upload_sensor"))
    assert "ledger" in instance.event_log_storage.get_concurrency_keys()
    info = instance.event_log_storage.get_concurrency_info("ledger")
    assert info.slot_count == 1 and info.active_slot_count == 0  # claimed, then released
