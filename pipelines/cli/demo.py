"""``effectlake demo``: the whole chain on real sample videos, driven by the real sensors.

Starts the intake API (uvicorn), ``dagster dev`` (webserver + daemon, which runs the
sensors) and the admin dashboard (Streamlit) on one Dagster instance (``DAGSTER_HOME``) and
one lake (``LAKE_URI``), uploads the samples over HTTP, waits for the sensors to carry each
video to the approval queue, approves each best result over HTTP, waits for publication and
prints a summary per video.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from pipelines.cli.summary import format_video
from resources.lake import Lake
from resources.processes import ChildGroup
from resources.retry import PollTimeout, until_ready
from resources.samples import sample_videos
from resources.settings import PROJECT_ROOT, get_settings
from resources.store.keys import new_key

# Stages after which a video waits for nobody but an admin, or has ended.
WAITING = {"awaiting_approval"}
ENDED = {
    "published",
    "rejected",
    "no_usable_result",
    "no_target_effect",
    "analysis_failed",
    "rejected_by_admin",
    "quota_exceeded",
    "failed",
}

# How the daemon drives runs, the same on the demo's and the production profile's instance
# (pipelines/cli/prod.py).
DAEMON_YAML = """\
# Every sensor on its own thread: evaluated one after the other, a loop of eleven sensors on a
# busy code server took tens of seconds, and each hop of a video waited for the whole loop.
# Runs a tick requests are submitted side by side too (a batch of uploads is one tick).
sensors:
  use_threads: true
  num_workers: 12
  num_submit_workers: 4
schedules:
  use_threads: true
  num_workers: 4
# The queue is checked every second (Dagster's default is 5 s), and runs are launched side
# by side (a launch is a code-server call that starts a process). The limits are in
# `concurrency` (Dagster refuses them in both places).
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
    dequeue_use_threads: true
    dequeue_num_workers: 4
# Runs stuck starting or cancelling are failed (the recovery sensor handles runs whose worker
# died: pipelines/recovery/runs.py).
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  cancel_timeout_seconds: 180
"""
# The run limits both instances end their `tag_concurrency_limits` list with (items at its
# indentation).
SHARED_RUN_LIMITS_YAML = """\
      # One run per video at a time: a run the recovery sensor starts again never races
      # another of the same video.
      - key: dagster/partition
        value:
          applyLimitPerUniqueValue: true
        limit: 1
      # The cycles, benchmarks and A/B tests (pipelines/jobs.py BACKGROUND) one at a time:
      # they never hold the slots videos wait for.
      - key: effectlake/lane
        value: background
        limit: 1
"""

DAGSTER_YAML = (
    """\
# Written by `effectlake demo` for the embedded instance (SQLite storage under this folder).
telemetry:
  enabled: false
"""
    + DAEMON_YAML
    + """\
concurrency:
  runs:
    # 2 cores: a few videos in flight at once; provider tasks add their own parallelism.
    # No pools: reservations lock the user's row in the transactional store.
    max_concurrent_runs: 4
    tag_concurrency_limits:
"""
    + SHARED_RUN_LIMITS_YAML
)


def dagster_home() -> Path:
    """``Settings.dagster_home`` (``$DAGSTER_HOME``, default ``data/dagster_home``), created
    with a dagster.yaml if it has none."""
    home = Path(get_settings().dagster_home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        (home / "dagster.yaml").write_text(DAGSTER_YAML)
    return home


def _wait_http(url: str, timeout_s: float, what: str, proc: subprocess.Popen) -> None:
    def answered() -> bool | None:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}; see its log")
        try:
            return True if httpx.get(url, timeout=2).status_code < 500 else None
        except httpx.HTTPError:
            return None  # not listening yet

    try:
        until_ready(timeout_s, interval_s=0.5)(answered)
    except PollTimeout:
        raise TimeoutError(f"{what} did not answer at {url} within {timeout_s:.0f} s") from None


def _wait_stage(client: httpx.Client, video_id: str, stages: set[str], timeout_s: float) -> dict:
    seen: list[str] = []

    def reached() -> dict | None:
        status = client.get(f"/v1/videos/{video_id}").raise_for_status().json()
        seen.append(status["stage"])
        return status if status["stage"] in stages else None

    try:
        return until_ready(timeout_s, interval_s=1.0)(reached)
    except PollTimeout:
        raise TimeoutError(f"video {video_id} stuck at stage {seen[-1]} after {timeout_s:.0f} s") from None


def chain_env(home: Path, api_port: int, admin_key: str) -> dict[str, str]:
    """The environment of the chain's processes: this one's, with the instance (``home``), the
    lake, media, manifest and store the settings name, the API's URL and its bootstrap admin
    key, so the API, the daemon's runs and the CLI all see the same data."""
    settings = get_settings()
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "LAKE_URI": settings.lake_uri,
        "MEDIA_URI": settings.media_uri,
        "MANIFEST_URI": settings.manifest_uri,
        "DATABASE_URL": settings.database_url,
        "EFFECTLAKE_API_URL": f"http://127.0.0.1:{api_port}",
        "EFFECTLAKE_ADMIN_KEY": admin_key,
    }


def spawn_chain(
    children: ChildGroup, env: dict[str, str], logs: Path, api_port: int, dagster_port: int
) -> tuple[subprocess.Popen, subprocess.Popen]:
    """Create every lake table, then start the intake API (uvicorn) and ``dagster dev``
    (webserver + daemon, which evaluates the sensors and launches the runs) in ``children``,
    logging to ``logs``; (api, dagster) processes, not yet waited for (``wait_chain``)."""
    Lake(uri=env["LAKE_URI"]).ensure_all()
    logs.mkdir(parents=True, exist_ok=True)
    bin_dir = Path(sys.executable).parent
    api = children.spawn(
        [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(api_port)],
        env=env,
        cwd=PROJECT_ROOT,
        log=logs / "api.log",
    )
    dagster = children.spawn(
        [str(bin_dir / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(dagster_port)],
        env=env,
        cwd=PROJECT_ROOT,
        log=logs / "dagster.log",
    )
    return api, dagster


def wait_chain(api: subprocess.Popen, dagster: subprocess.Popen, api_port: int, dagster_port: int) -> None:
    """Wait for the API (60 s) and the Dagster webserver (180 s) to answer.

    Raises:
        TimeoutError: one did not answer in time; RuntimeError: one exited.
    """
    _wait_http(f"http://127.0.0.1:{api_port}/healthz", 60, "the API", api)
    _wait_http(f"http://127.0.0.1:{dagster_port}/server_info", 180, "the Dagster webserver", dagster)


def run_demo(
    exit_after: bool,
    api_port: int,
    dagster_port: int,
    timeout_s: float,
    dashboard_port: int = 8501,
    videos: list[Path] | None = None,
) -> int:
    """Run the demo on ``videos`` (default: every sample video); returns a process exit code
    (0 when every video reached an end)."""
    from dashboards.launch import pick_port, streamlit_command, with_password

    settings = get_settings()
    home = dagster_home()
    # The API's bootstrap admin: the configured key, else a one-off key (printed below) that the
    # demo drives the approvals with.
    admin_key = settings.admin_api_key or new_key()[1]
    env = chain_env(home, api_port, admin_key)
    # The admin dashboard gets a one-off password (printed below) unless one is configured.
    dashboard_env, dashboard_password = with_password(env)
    # Not "logs": that folder belongs to the Dagster instance (compute logs) and is cleaned by it.
    logs = home / "demo_logs"
    # Every child (and what it starts: dagster dev's webserver, daemon and code servers) is
    # stopped with the demo, however it ends: normally, Ctrl-C, SIGTERM or kill -9.
    with ChildGroup() as children:
        api, dagster = spawn_chain(children, env, logs, api_port, dagster_port)
        dashboard_port = pick_port(dashboard_port)  # another dashboard may hold the default port
        dashboard = children.spawn(
            streamlit_command(dashboard_port), env=dashboard_env, cwd=PROJECT_ROOT, log=logs / "dashboard.log"
        )
        procs = [api, dagster]
        try:
            base = f"http://127.0.0.1:{api_port}"
            dashboard_url = f"http://127.0.0.1:{dashboard_port}"
            wait_chain(api, dagster, api_port, dagster_port)
            print(f"API: {base}   Dagster UI: http://127.0.0.1:{dagster_port}   lake: {settings.lake_uri}")
            try:  # the dashboard is for people watching; the demo itself does not need it
                _wait_http(f"{dashboard_url}/_stcore/health", 60, "the dashboard", dashboard)
                print(
                    f"Admin dashboard: {dashboard_url}"
                    + (f"   password: {dashboard_password}" if dashboard_password else "")
                )
            except (RuntimeError, TimeoutError) as exc:
                print(f"warning: {exc} ({logs / 'dashboard.log'})")
            print(f"DAGSTER_HOME: {home}   logs: {logs}", flush=True)
            if not settings.admin_api_key:
                print(f"API admin key (one-off, Authorization: Bearer): {admin_key}", flush=True)
            code = _drive(base, admin_key, timeout_s, videos or sample_videos(), lambda: economics_cycle(env, logs))
            if exit_after:
                # A video counts as published once its EffectPublished event is in; its run
                # still writes its silver row and its RUN_SUCCESS after that. Stopping Dagster
                # then would fail that run and lose the row.
                _drain_runs(f"http://127.0.0.1:{dagster_port}/graphql", DRAIN_TIMEOUT_S)
                return code
            print("\nServing the API, the Dagster UI and the admin dashboard; Ctrl-C to stop.", flush=True)
            while all(p.poll() is None for p in procs):
                time.sleep(1)
            return 1
        except KeyboardInterrupt:
            return 0


# Runs still in flight when the demo has seen every video end: their last writes. Bounded, so a
# run that hangs does not keep the demo from exiting (it is reported instead).
DRAIN_TIMEOUT_S = 120.0
IN_FLIGHT = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED")
IN_FLIGHT_QUERY = (
    "query InFlight($statuses: [RunStatus!]) { runsOrError(filter: {statuses: $statuses}) {"
    " __typename ... on Runs { results { runId jobName status } } } }"
)


def in_flight_runs(graphql_url: str) -> list[dict]:
    """The runs of the Dagster instance behind ``graphql_url`` (the webserver's ``/graphql``)
    that are queued, starting or running: ``[{"runId", "jobName", "status"}]``.

    Raises:
        httpx.HTTPError: the webserver did not answer.
        RuntimeError: it answered with an error instead of runs.
    """
    body = (
        httpx.post(graphql_url, json={"query": IN_FLIGHT_QUERY, "variables": {"statuses": list(IN_FLIGHT)}}, timeout=30)
        .raise_for_status()
        .json()
    )
    runs = (body.get("data") or {}).get("runsOrError") or {}
    if runs.get("__typename") != "Runs":
        raise RuntimeError(f"Dagster did not list runs: {body}")
    return runs["results"]


def _drain_runs(graphql_url: str, timeout_s: float) -> None:
    """Wait until no run is in flight (at most ``timeout_s``); print the ones left over."""
    left: list[dict] = []

    def drained() -> bool | None:
        left[:] = in_flight_runs(graphql_url)
        return True if not left else None

    try:
        until_ready(timeout_s, interval_s=1.0)(drained)
    except PollTimeout:
        names = ", ".join(f"{r['jobName']} {r['runId'][:8]} ({r['status']})" for r in left)
        print(f"warning: runs still in flight after {timeout_s:.0f} s, stopped with the demo: {names}", flush=True)


def _demo_user(client: httpx.Client, admin: dict[str, str]) -> dict[str, str]:
    """A workspace and a user made by the admin, as an operator would; the user's Bearer header."""
    workspace = client.post("/v1/admin/workspaces", headers=admin, json={"name": "demo"}).raise_for_status().json()
    user = client.post(
        "/v1/admin/users", headers=admin, json={"workspace_id": workspace["workspace_id"], "name": "demo user"}
    ).raise_for_status()
    print(f"demo user {user.json()['user_id']} in workspace {workspace['workspace_id']}", flush=True)
    return {"Authorization": f"Bearer {user.json()['api_key']}"}


# What the demo's user says they want of each neutral sample (the example shows no look the
# catalog makes, so the description names the effect; Megamind's candle-lit warm cast is shown).
DEMO_DESCRIPTIONS = {
    "bigbuckbunny.mp4": "make it look like a cartoon",
    "bikes.mp4": "slow motion please",
    "carphone_pristine.mp4": "a warm golden hour look",
}


def economics_cycle(env: dict[str, str], logs: Path) -> bool:
    """One economics cycle now (``effectlake economics``: the job in a process of its own, on
    the chain's instance and lake), so the costs, margins and routing manifest of the demo's
    executions are there at once rather than at the next 15-minute schedule; True when it
    succeeded (its output is in ``logs/economics.log``)."""
    with open(logs / "economics.log", "w") as log:
        done = subprocess.run(
            [sys.executable, "-m", "pipelines.cli", "economics"], env=env, cwd=PROJECT_ROOT, stdout=log, stderr=log
        )
    return done.returncode == 0


def _drive(
    base: str, admin_key: str, timeout_s: float, videos: list[Path], economics: Callable[[], bool] | None = None
) -> int:
    started: dict[str, float] = {}
    admin = {"Authorization": f"Bearer {admin_key}"}
    with httpx.Client(base_url=base, timeout=60) as client:
        client.headers.update(_demo_user(client, admin))
        ids = []
        for path in videos:
            with open(path, "rb") as fh:
                form = {"description": DEMO_DESCRIPTIONS[path.name]} if path.name in DEMO_DESCRIPTIONS else {}
                files = {"file": (path.name, fh, "application/octet-stream")}
                resp = client.post("/v1/uploads", files=files, data=form)
            body = resp.raise_for_status().json()
            started[body["video_id"]] = time.monotonic()
            ids.append(body["video_id"])
            print(f"uploaded {path.name} ({body['bytes'] / 1e6:.2f} MB) → {body['video_id']}", flush=True)
        for vid in ids:
            status = _wait_stage(client, vid, WAITING | ENDED, timeout_s)
            if status["stage"] in WAITING:
                approval = status["approval"]["approval_id"]
                client.post(
                    f"/v1/admin/approvals/{approval}",
                    headers=admin,
                    json={"decision": "approve", "admin": "demo-admin"},
                ).raise_for_status()
                print(f"approved {approval} for {vid}", flush=True)
        print()
        ended = {vid: (_wait_stage(client, vid, ENDED, timeout_s), time.monotonic() - started[vid]) for vid in ids}
        code = 0
        if economics is not None:
            # Every video has ended: cost them now, so the summary, the dashboard and the
            # manifest show this demo's executions.
            ok = economics()
            print(f"economics cycle: {'done' if ok else 'FAILED'}\n", flush=True)
            code |= 0 if ok else 1
        for vid in ids:
            # Read again: the cycle has costed the video's executions since it ended.
            status = client.get(f"/v1/videos/{vid}").raise_for_status().json()
            print(format_video(status, ended[vid][1]), "\n", flush=True)
            code |= 0 if status["stage"] == "published" else 1
        return code
