"""The end-to-end chain in the production profile: `effectlake demo-prod --exit` on one short
clip, with the Dagster instance and the store on PostgreSQL, the lake and the media on the
local S3 server, and the routing manifest in Redis (each test-owned: fresh databases, a key
prefix of its own, its own server process)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import polars as pl
import pytest
import redis
from sqlalchemy import create_engine, text

from pipelines.cli.prod import DAGSTER_PG_ENV
from resources.lake import Lake
from resources.manifest_store import ManifestStore
from resources.s3 import ensure_buckets
from resources.schemas import GALLERY_REVISIONS, PIPELINE_EVENTS, TEST_BATCH
from tests.s3_server import local_s3_process
from tests.server import free_port

pytest_plugins = ["tests.store_fixtures"]
pytestmark = [pytest.mark.video, pytest.mark.slow]

REDIS_URL = os.environ.get("EFFECTLAKE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_prefix():
    """A key prefix of this test's own in the Redis at ``REDIS_URL``; its keys are deleted after."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis at {REDIS_URL} unreachable: {exc}")
    prefix = f"effectlake-test-{uuid.uuid4().hex[:12]}:"
    yield prefix
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)


@pytest.mark.timeout(1200)
def test_demo_prod_publishes_through_postgres_s3_and_redis(tmp_path, warm_bikes, pg_databases, redis_prefix):
    dagster_db, store_db = pg_databases(), pg_databases()
    with local_s3_process(tmp_path / "s3.log") as s3_env:
        lake_uri, media_uri = "s3://prod-test/lake", "s3://prod-test/media"
        ensure_buckets([lake_uri], s3_env)
        env = {
            **os.environ,
            **s3_env,
            "LAKE_URI": lake_uri,
            "MEDIA_URI": media_uri,
            DAGSTER_PG_ENV: dagster_db,
            "DATABASE_URL": store_db,
            "REDIS_URL": REDIS_URL,
            "EFFECTLAKE_MANIFEST_PREFIX": redis_prefix + "routing_manifest",
            "EFFECTLAKE_RATE_LIMIT_PREFIX": redis_prefix + "ratelimit",
            # Schedules stopped: a scheduled economics cycle would publish another manifest
            # whenever the run crosses a quarter hour (the demo still ends with its own cycle).
            "EFFECTLAKE_SCHEDULES_RUNNING": "false",
        }
        # A manifest published in Redis before the run: M5 routes with a manifest read from
        # Redis (its version lands in test_batch), which shows the stage reads Redis, not a file.
        version = f"redis-{uuid.uuid4().hex[:8]}"
        manifests = ManifestStore(uri=REDIS_URL, key_prefix=env["EFFECTLAKE_MANIFEST_PREFIX"])
        manifests.publish({"version": version, "effects": {}})
        ports = {f"--{name}-port": str(free_port()) for name in ("api", "dagster", "dashboard")}
        proc = subprocess.run(
            [sys.executable, "-m", "pipelines.cli", "demo-prod", "--exit", "--video", str(warm_bikes)]
            + [arg for pair in ports.items() for arg in pair]
            # The chain takes ~2 min alone. Under CI's parallel heavy suites on 2 cores (load
            # ~20) runs took 4 and over 8 min, every step starting a process: time, not a hang.
            + ["--timeout", "720", "--dagster-home", str(tmp_path / "dagster_home")],
            env=env,
            capture_output=True,
            text=True,
            timeout=1000,
        )
        logs = tmp_path / "dagster_home" / "demo_logs"
        detail = proc.stdout[-3000:] + proc.stderr[-3000:]
        if proc.returncode and (logs / "dagster.log").exists():
            detail += (logs / "dagster.log").read_text()[-4000:]
        assert proc.returncode == 0, detail
        assert proc.stdout.count("stage=published") == 1
        assert "multiprocess executor" in proc.stdout and "http://127.0.0.1:" in proc.stdout

        # The lake is on S3: published revision, events and M5's routing read from Redis.
        os.environ.update(s3_env)  # delta-rs and boto3 of this process reach the same server
        try:
            lake = Lake(uri=lake_uri)
            assert lake.read(GALLERY_REVISIONS).filter(pl.col("published")).height == 1
            assert lake.read(PIPELINE_EVENTS, pl.col("event_type") == "EffectPublished").height == 1
            batch = lake.read(TEST_BATCH)
            # The demo's closing economics cycle publishes the next one, after M5 routed.
            published = [m["version"] for m in manifests.history(limit=50)]
            assert published[-1] == version
            assert batch.height > 0 and set(batch["manifest_version"]) == {version}, published
        finally:
            for k in s3_env:
                os.environ.pop(k, None)
        assert not (tmp_path / "lake").exists()  # nothing fell back to a local directory

    # Dagster kept its runs, events and schedules in PostgreSQL, and ran steps in subprocesses.
    engine = create_engine(dagster_db)
    with engine.connect() as conn:
        runs = dict(conn.execute(text("SELECT pipeline_name, status FROM runs")).all())
        workers = conn.execute(
            text("SELECT count(*) FROM event_logs WHERE dagster_event_type = 'STEP_WORKER_STARTED'")
        ).scalar()
        instigators = conn.execute(text("SELECT count(*) FROM instigators")).scalar()
        # Why a run failed, for the assertion's message.
        failures = conn.execute(
            text(
                "SELECT e.run_id, e.dagster_event_type, left(e.event, 3000) FROM event_logs e JOIN runs r"
                " ON r.run_id = e.run_id WHERE r.status = 'FAILURE'"
                " AND e.dagster_event_type IN ('STEP_FAILURE', 'RUN_FAILURE')"
            )
        ).all()
    engine.dispose()
    # The intake run evaluates the video too (no evaluation_job when every task ran inline).
    assert {runs.get(j) for j in ("intake_job", "publish_job")} == {"SUCCESS"}, (runs, failures)
    assert "FAILURE" not in runs.values() and not failures, (runs, failures)
    assert workers >= 5  # one per step of the intake job at least: the multiprocess executor
    assert instigators > 0  # the states of the sensors the daemon ran
    # The store is the PostgreSQL database: the demo's user and upload are there.
    # ... and the gallery's revision and its pin are there (the preview a presigned S3 URL).
    engine = create_engine(store_db)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM uploads")).scalar() == 1
        preview = conn.execute(text("SELECT preview_key FROM effect_revisions")).scalar_one()
        assert conn.execute(text("SELECT count(*) FROM effect_pins")).scalar() == 1
    engine.dispose()
    assert preview.startswith("published/")
    assert f"preview {s3_env['AWS_ENDPOINT_URL']}/prod-test/media/{preview}?" in proc.stdout
