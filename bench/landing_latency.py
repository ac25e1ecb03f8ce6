"""Landing latency: a store write (an upload, as the API makes it) → the landing sensor's tick
→ the landing run (in process) → the row in ``bronze/uploads``. p50 / p95 over N writes, and
the parts: the sensor tick and the run. The daemon adds its tick interval (≤ 2 s) and a run
process start to what is measured here.

Usage: ``python bench/landing_latency.py [--writes N] [--backlog M]`` (``--backlog``: rows of
each kind written before, so the Delta tables and the store are not empty).
"""

import argparse
import hashlib
import tempfile
import time
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl

from pipelines.definitions import build_definitions
from resources.lake import Lake
from resources.schemas import UPLOADS
from resources.store.client import Store
from tests.local_settings import local_settings


def _upload(store: Store, user_id: str, i: int) -> str:
    sha = hashlib.sha256(f"video {i}".encode()).hexdigest()
    fields = {"filename": f"v{i}.mp4", "content_type": "video/mp4", "sha256": sha, "bytes_": 1}
    return store.create_upload(user_id, media_key=f"raw/{sha}.mp4", **fields).upload["video_id"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--writes", type=int, default=30)
    ap.add_argument("--backlog", type=int, default=1000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, dg.instance_for_test() as instance:
        root = Path(tmp)
        settings = local_settings(root)
        defs = build_definitions(settings)
        sensor, job = defs.resolve_sensor_def("landing_sensor"), defs.resolve_job_def("landing_job")
        store, lake = Store(settings.database_url), Lake(uri=settings.lake_uri)
        user, _ = store.create_user(store.create_workspace("bench")["workspace_id"], welcome_tokens=10)

        def land() -> tuple[float, float]:
            t0 = time.perf_counter()
            result = sensor(dg.build_sensor_context(instance=instance, resources=defs.resources))
            t1 = time.perf_counter()
            for request in getattr(result, "run_requests", None) or []:
                job.execute_in_process(instance=instance, asset_selection=request.asset_selection)
            return t1 - t0, time.perf_counter() - t1

        for i in range(args.backlog):
            _upload(store, user["user_id"], -1 - i)
        land()
        ticks, runs, totals = [], [], []
        for i in range(args.writes):
            start = time.perf_counter()
            video = _upload(store, user["user_id"], i)
            tick, run = land()
            totals.append(time.perf_counter() - start)
            assert lake.read(UPLOADS, pl.col("video_id") == video).height == 1
            ticks.append(tick)
            runs.append(run)
        idle = []
        for _ in range(args.writes):
            t0 = time.perf_counter()
            assert isinstance(
                sensor(dg.build_sensor_context(instance=instance, resources=defs.resources)), dg.SkipReason
            )
            idle.append(time.perf_counter() - t0)
        for name, xs in (("write→bronze", totals), ("sensor tick", ticks), ("landing run", runs), ("idle tick", idle)):
            ms = np.array(xs) * 1000
            print(f"{name:>14}: p50 {np.percentile(ms, 50):7.1f} ms   p95 {np.percentile(ms, 95):7.1f} ms")
        store.close()


if __name__ == "__main__":
    main()
