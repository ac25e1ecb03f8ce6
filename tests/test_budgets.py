"""Per-user budgets end to end: a paused account is refused at the API with
UserQuotaExceeded until an admin tops it up; M5 refuses a job the balance cannot cover;
concurrent runs of many users reserve in parallel, each job once."""

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from itertools import pairwise

import dagster as dg
import httpx
import polars as pl
import pytest

from api.app import create_app
from economics.ledger import job_id
from pipelines.definitions import build_definitions
from resources.lake import Lake
from resources.schemas import EXECUTION_EVENTS, NOTIFICATIONS, PIPELINE_EVENTS, TEST_BATCH
from resources.store.client import Store
from tests.api_users import ADMIN, new_user, upload
from tests.harness import Driver
from tests.server import serve

pytestmark = [pytest.mark.slow, pytest.mark.video]


def test_no_tokens_is_402_until_topped_up(settings, warm_bikes):
    settings = settings.model_copy(update={"welcome_credit_tokens": 0})
    with serve(create_app(settings)) as base, httpx.Client(base_url=base) as c:
        broke = new_user(c)
        r = upload(c, broke, warm_bikes)
        assert r.status_code == 402 and r.json()["code"] == "UserQuotaExceeded"
        assert "topped up" in r.json()["detail"]
        credits = f"/v1/admin/users/{broke['user_id']}/credits"
        top = c.post(credits, headers=ADMIN, json={"tokens": 50, "topup_id": "pay-1"})
        assert top.status_code == 201 and top.json()["available"] == 50
        c.post(credits, headers=ADMIN, json={"tokens": 50, "topup_id": "pay-1"})
        balance = c.get(f"/v1/users/{broke['user_id']}/balance", headers=broke["headers"]).json()
        assert balance["available"] == 50  # same payment, credited once
        assert upload(c, broke, warm_bikes).status_code == 202


def test_batch_over_the_balance_is_refused_and_the_user_told(settings, instance, warm_bikes):
    settings = settings.model_copy(update={"welcome_credit_tokens": 1})  # below any effect's price
    driver = Driver(build_definitions(settings), instance)
    with serve(create_app(settings)) as base, httpx.Client(base_url=base) as c:
        small = new_user(c)
        vid = upload(c, small, warm_bikes).json()["video_id"]
        assert all(r.success for r in driver.step("upload_sensor"))
        assert c.get(f"/v1/videos/{vid}", headers=small["headers"]).json()["stage"] == "quota_exceeded"
        balance = c.get(f"/v1/users/{small['user_id']}/balance", headers=small["headers"]).json()
        assert balance["available"] == 1  # nothing reserved
    driver.land()
    lake = Lake(uri=settings.lake_uri)
    types = lake.read(PIPELINE_EVENTS, pl.col("correlation_id") == vid)["event_type"].to_list()
    assert "UserQuotaExceeded" in types and "TestBatchDispatched" not in types
    assert lake.read(EXECUTION_EVENTS, pl.col("correlation_id") == vid).is_empty()
    notes = lake.read(NOTIFICATIONS, pl.col("user_id") == small["user_id"])
    assert notes["kind"].to_list() == ["quota_exceeded"]
    assert "has 1 available" in notes["body"][0]


def _run_intake(settings, instance_ref, video_id: str) -> tuple[bool, str]:
    """In a child process: the video's intake run on the test's instance; (success, run id)."""
    with dg.DagsterInstance.from_ref(instance_ref) as instance:
        job = build_definitions(settings).resolve_job_def("intake_job")
        result = job.execute_in_process(partition_key=video_id, instance=instance, raise_on_error=False)
        return result.success, result.run_id


def test_concurrent_runs_of_many_users_reserve_each_job_once_without_a_pool(
    settings, instance, warm_bikes, warm_carphone
):
    """Four intake runs at once (three users, one of them with two videos): no concurrency
    pool serialises them; each job is reserved exactly once, at its price, whatever the
    number of its provider tasks, and the balances add up."""
    driver = Driver(build_definitions(settings), instance)
    store = Store(settings.database_url)
    with serve(create_app(settings)) as base, httpx.Client(base_url=base, timeout=60) as c:
        users = [new_user(c, name=f"user {i}") for i in range(3)]
        videos = {}  # video id → user id
        for user, clip in [(users[0], warm_bikes), (users[0], warm_carphone), (users[1], warm_bikes)]:
            videos[upload(c, user, clip).json()["video_id"]] = user["user_id"]
        videos[upload(c, users[2], warm_carphone).json()["video_id"]] = users[2]["user_id"]
        requests = driver.tick("upload_sensor")
        assert sorted(r.partition_key for r in requests) == sorted(videos)
    # One process per run, as the daemon's run launcher does (Dagster's in-process execution
    # is not meant for several runs in one process's threads).
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=len(requests), mp_context=ctx) as pool:
        args = [(settings, instance.get_ref(), r.partition_key) for r in requests]
        results = list(pool.map(_run_intake, *zip(*args, strict=True)))
    assert all(ok for ok, _ in results)
    assert instance.event_log_storage.get_concurrency_keys() == set()  # no pool was claimed
    records = [instance.get_run_record_by_id(run_id) for _, run_id in results]
    spans = sorted((r.start_time, r.end_time) for r in records)
    assert any(later[0] < earlier[1] for earlier, later in pairwise(spans)), "the runs did not overlap"

    lake = Lake(uri=settings.lake_uri)
    for vid, user_id in videos.items():
        reserves = [e for e in store.entries(user_id) if e["kind"] == "reserve" and e["correlation_id"] == vid]
        assert [e["task_id"] for e in reserves] == [job_id(vid)]
        batch = lake.read(TEST_BATCH, pl.col("video_id") == vid)
        assert batch.filter(pl.col("selection") != "shadow").height > 1  # several charged tasks, one reservation
        assert set(batch["tokens_reserved"]) == {reserves[0]["tokens"]}
    for user in users:
        held = sum(e["tokens"] for e in store.entries(user["user_id"]) if e["kind"] == "reserve")
        balance = store.balance(user["user_id"])
        # The intake run goes on to the evaluation (M7, M5, M9), which may charge or release a
        # reservation: every reserved token is still held, charged or released, once.
        released = balance["refunded"] - balance["refunded_consumed"]
        assert balance["reserved"] == held
        assert balance["reserved_outstanding"] + balance["consumed"] + released == held
        assert (
            balance["available"] == settings.welcome_credit_tokens - balance["spent"] - balance["reserved_outstanding"]
        )
    store.close()
