"""The Dagster resources hand the runs the same plain clients the API builds from Settings."""

from __future__ import annotations

import dagster as dg

from pipelines.definitions import build_definitions
from resources.clients import Clients
from tests.local_settings import local_settings


def test_every_resource_key_gives_the_plain_client_of_the_settings(settings):
    defs = build_definitions(settings)
    expected = Clients.from_settings(settings)
    keys = {"lake", "media", "manifest_store", "catalog", "providers", "platform"}
    with dg.build_resources({k: v for k, v in defs.resources.items() if k in keys}) as res:
        for key in keys - {"platform"}:
            client = getattr(res, key)
            # The lake may be a subclass (runs report their bronze appends through it).
            want = getattr(expected, key)
            assert isinstance(client, type(want)) and client.model_dump() == want.model_dump(), key
            assert "dagster" not in type(client).__module__
        assert res.platform is settings
    with dg.build_resources({"store": defs.resources["store"]}) as res:
        # The store resource migrates its database and hands out the plain client.
        assert isinstance(res.store, type(expected.store)) and res.store.url == expected.store.url
        assert res.store.create_workspace("migrated")["name"] == "migrated"
    with dg.build_resources({"gemini": defs.resources["gemini"]}) as res:
        # The Gemini client of the settings: no key here, so every stage runs locally.
        assert isinstance(res.gemini, type(expected.gemini)) and not res.gemini.enabled
        assert (res.gemini.model, res.gemini.base_url) == (expected.gemini.model, expected.gemini.base_url)
    assert set(defs.resources) == keys | {"store", "gemini", "io_manager"}


def test_schedules_start_running_unless_the_settings_stop_them(tmp_path):
    crons = {
        "economics_job_schedule": "*/15 * * * *",
        "signals_job_schedule": "*/5 * * * *",
        "benchmark_job_schedule": "0 3 * * 1",
    }
    for value, status in (("true", dg.DefaultScheduleStatus.RUNNING), ("false", dg.DefaultScheduleStatus.STOPPED)):
        defs = build_definitions(local_settings(tmp_path / value, EFFECTLAKE_SCHEDULES_RUNNING=value))
        schedules = {s.name: s for s in defs.schedules or []}
        assert {name: s.cron_schedule for name, s in schedules.items()} == crons
        assert {s.default_status for s in schedules.values()} == {status}
        # Sensors are not schedules: the chain still starts its runs.
        assert all(s.default_status == dg.DefaultSensorStatus.RUNNING for s in defs.sensors or [])
