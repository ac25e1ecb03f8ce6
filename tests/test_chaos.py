"""Chaos: ``kill -9`` of the API, of a run worker and of the Dagster daemon (with its code
server and the runs it launched, as a crashed host loses them) at seeded random points of the
chain, each followed by a restart, on the real daemon and the real API (processes on
127.0.0.1, an embedded instance, lake and store of the test's own).

It ends with every video published or rejected with a reason the user can read, no duplicate
row in any bronze or silver table (each table's declared key), no double charge (per job at
most one reserve, consume and refund; the store's balances equal the ledger's recomputation
with nothing for the audit to flag) and no lost upload (every file sent has exactly one video,
in the store and in the lake). The orphan-recovery sensor is what makes the stuck ones move on
(``pipelines/recovery``); its deadline is cut to seconds here.

Bounded: 3 short clips, 3 kills, a hard time limit. ``EFFECTLAKE_CHAOS_SEED`` picks another
plan; ``-s`` prints the plan and what happened.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import httpx
import polars as pl
import pytest

from economics import ledger
from pipelines.cli.demo import DAGSTER_YAML, ENDED, WAITING
from pipelines.recovery.runs import process_alive, worker_pid
from resources.lake import Lake
from resources.processes import ChildGroup
from resources.schemas import ALL_TABLES, LEDGER_ENTRIES, UPLOADS
from resources.settings import PROJECT_ROOT
from resources.store.client import Store
from tests.api_users import ADMIN, ADMIN_KEY, bearer
from tests.server import free_port

pytestmark = [pytest.mark.slow, pytest.mark.video]

SEED = int(os.environ.get("EFFECTLAKE_CHAOS_SEED", "20261203"))
# The whole chain, kills and restarts included. Measured: on a shared 2-core machine at a load
# average near 19, a run took up to 2 minutes to start and the chain 18 minutes.
HARD_LIMIT_S = 1500
STUCK_AFTER_S = 40  # the recovery sensor's deadline (900 s in production)
# Runs left STARTING by a killed daemon fail after this (180 s in the demo's instance).
START_TIMEOUT_S = 90
# A kill waits at most this long for a run of its chosen job, then takes any running run.
TRIGGER_PATIENCE_S = 90
JOBS = ("intake_job", "evaluation_job", "publish_job")
BIN = Path(sys.executable).parent


@dataclass
class Kill:
    """One planned kill: of ``target`` (``run_worker`` or ``daemon``) once a run of ``job``
    has been running for ``delay_s``."""

    target: str
    job: str
    delay_s: float
    armed_at: float = 0.0
    seen: dict[str, float] = field(default_factory=dict)  # run id → first seen running
    done: str = ""


class Platform:
    """The API and the daemon as processes of a ``ChildGroup``, killed and restarted at will."""

    def __init__(self, children: ChildGroup, env: dict[str, str], logs: Path):
        self.children, self.env, self.logs = children, env, logs
        self.api_port = free_port()
        self.base = f"http://127.0.0.1:{self.api_port}"
        self.api: object = None
        self.daemon: object = None

    def start_api(self) -> None:
        cmd = [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(self.api_port)]
        self.api = self.children.spawn(cmd, env=self.env, cwd=PROJECT_ROOT, log=self.logs / "api.log")
        _until(60, lambda: _answers(f"{self.base}/healthz"), "the API")

    def start_daemon(self) -> None:
        cmd = [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"]
        self.daemon = self.children.spawn(cmd, env=self.env, cwd=PROJECT_ROOT, log=self.logs / "daemon.log")

    @staticmethod
    def kill_group(proc) -> None:
        """SIGKILL the process group (the leader and what it started), as a crash would."""
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code < 500
    except httpx.HTTPError:
        return False


def _until(timeout_s: float, ready: Callable[[], object], what: str) -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = ready()
        if got:
            return got
        time.sleep(0.3)
    raise TimeoutError(f"{what} not ready within {timeout_s:.0f} s")


def _post_retrying(platform: Platform, path: str, **kwargs) -> httpx.Response:
    """A POST the way a client retries it through an API restart: connection errors are
    retried with the same Idempotency-Key; a key left claimed by a killed API (409 while in
    progress, for 5 minutes) is dropped for a fresh one: the store's content de-duplication
    still gives the same video."""
    headers = {**kwargs.pop("headers", {}), "Idempotency-Key": uuid.uuid4().hex}
    deadline = time.monotonic() + 120
    while True:
        try:
            r = httpx.post(f"{platform.base}{path}", headers=headers, timeout=60, **kwargs)
            if r.status_code == 409 and r.json().get("code") == "idempotency_in_progress":
                headers["Idempotency-Key"] = uuid.uuid4().hex
                continue
            return r
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _status(platform: Platform, user: dict, video_id: str) -> dict | None:
    try:
        r = httpx.get(f"{platform.base}/v1/videos/{video_id}", headers=user, timeout=10)
        return r.json() if r.status_code == 200 else None
    except httpx.HTTPError:
        return None  # the API is being restarted


def _running(instance: dg.DagsterInstance) -> list[dg.RunRecord]:
    return list(instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])))


def _plan(rng: random.Random) -> tuple[int, float, list[Kill]]:
    """(the upload during which the API is killed, after how many seconds, the two later kills)."""
    kills = [
        Kill("run_worker", rng.choice(JOBS), rng.uniform(0.5, 4)),
        Kill("daemon", rng.choice(JOBS), rng.uniform(0.5, 4)),
    ]
    rng.shuffle(kills)
    return rng.randrange(3), rng.uniform(0.0, 0.4), kills


@pytest.mark.timeout(HARD_LIMIT_S + 600)
def test_kill_minus_9_anywhere_then_restart_ends_every_video_once(tmp_path, short_bikes, warm_bikes, short_carphone):
    rng = random.Random(SEED)
    api_kill_upload, api_kill_after_s, kills = _plan(rng)

    def say(line: str) -> None:
        sys.stdout.write(line)
        sys.stdout.flush()

    say(f"\nchaos seed {SEED}: API killed {api_kill_after_s:.2f} s into upload {api_kill_upload}; ")
    say(", ".join(f"{k.target} killed {k.delay_s:.1f} s into a {k.job} run" for k in kills) + "\n")

    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        DAGSTER_YAML.replace("start_timeout_seconds: 180", f"start_timeout_seconds: {START_TIMEOUT_S}")
    )
    logs = tmp_path / "logs"
    logs.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "DAGSTER_HOME": str(home),
        "LAKE_URI": str(tmp_path / "lake"),
        "MEDIA_URI": str(tmp_path / "media"),
        "MANIFEST_URI": str(tmp_path / "manifest.json"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}",
        "EFFECTLAKE_ADMIN_KEY": ADMIN_KEY,
        "EFFECTLAKE_RECOVERY_STUCK_AFTER_S": str(STUCK_AFTER_S),
        "EFFECTLAKE_RECOVERY_REQUEUES": "2",
        "EFFECTLAKE_RECOVERY_INTERVAL_S": "5",
        "EFFECTLAKE_RECOVERY_SUBMIT_GRACE_S": "20",
        # No scheduled economics or signals run joins the chain when it crosses a quarter hour:
        # the kills are aimed at the chain's runs, and the cycles' load only slows them.
        "EFFECTLAKE_SCHEDULES_RUNNING": "false",
    }
    clips = {
        short_bikes: "slow motion please",
        warm_bikes: "",  # the example shows a warm grade
        short_carphone: "make it look like a cartoon",
    }
    started = time.monotonic()
    with ChildGroup(grace_s=10) as children, dg.DagsterInstance.from_config(str(home)) as instance:
        platform = Platform(children, env, logs)
        platform.start_api()
        platform.start_daemon()
        made = httpx.post(f"{platform.base}/v1/admin/workspaces", headers=ADMIN, json={"name": "chaos"}).json()
        user_body = httpx.post(
            f"{platform.base}/v1/admin/users", headers=ADMIN, json={"workspace_id": made["workspace_id"]}
        ).json()
        user = bearer(user_body["api_key"])

        # Uploads; the API dies during one of them and comes back.
        videos: dict[Path, str] = {}
        for i, (clip, description) in enumerate(clips.items()):
            send = lambda clip=clip, description=description: _post_retrying(  # noqa: E731
                platform,
                "/v1/uploads",
                headers=user,
                files={"file": (clip.name, clip.read_bytes(), "video/mp4")},
                data={"description": description} if description else {},
            )
            if i != api_kill_upload:
                videos[clip] = send().raise_for_status().json()["video_id"]
                continue
            answer: list[httpx.Response] = []
            sender = threading.Thread(target=lambda send=send, answer=answer: answer.append(send()))
            sender.start()
            time.sleep(api_kill_after_s)
            platform.kill_group(platform.api)
            say(f"  {time.monotonic() - started:6.1f} s  killed the API during upload {i}\n")
            time.sleep(1)
            platform.start_api()
            sender.join(timeout=150)
            videos[clip] = answer[0].raise_for_status().json()["video_id"]

        # The chain runs; runs and the daemon die at their planned points; an admin approves.
        ended: dict[str, dict] = {}
        approved: set[str] = set()
        stages: dict[str, str] = {}
        deadline = started + HARD_LIMIT_S
        for k in kills:
            k.armed_at = 0.0
        kills[0].armed_at = time.monotonic()
        while len(ended) < len(videos) and time.monotonic() < deadline:
            for vid in videos.values():
                status = _status(platform, user, vid)
                if status is None or vid in ended:
                    continue
                if stages.get(vid) != status["stage"]:
                    stages[vid] = status["stage"]
                    say(f"  {time.monotonic() - started:6.1f} s  {vid} {status['stage']}\n")
                if status["stage"] in ENDED:
                    ended[vid] = status
                elif status["stage"] in WAITING and vid not in approved and status.get("approval"):
                    r = _post_retrying(
                        platform,
                        f"/v1/admin/approvals/{status['approval']['approval_id']}",
                        headers=ADMIN,
                        json={"decision": "approve", "admin": "chaos-admin"},
                    )
                    if r.status_code < 300:
                        approved.add(vid)
            pending = [k for k in kills if not k.done]
            if pending:
                _maybe_kill(pending[0], platform, instance, started, say)
                if pending[0].done and len(pending) > 1:
                    pending[1].armed_at = time.monotonic()
            time.sleep(1)
        elapsed = time.monotonic() - started
        for vid, status in sorted(ended.items()):
            say(f"  {vid}: {status['stage']}\n")
        say(f"chain ended in {elapsed:.0f} s; kills: {[k.done for k in kills]}\n")
        if len(ended) < len(videos):
            _explain(instance, env, set(videos.values()) - set(ended), say)
        assert len(ended) == len(videos), f"not ended within {HARD_LIMIT_S} s: {set(videos.values()) - set(ended)}"
        assert all(k.done for k in kills), [k for k in kills if not k.done]
        # Quiesce: let the landing sensor land the last store rows before the lake is read.
        # 600 s: under CI load the landing run can queue behind scheduled economics and
        # signals runs for several minutes (one CI run waited more than 300 s).
        _until(600, lambda: _landed(env), "the last landing")
        platform.kill_group(platform.daemon)
        platform.kill_group(platform.api)

    _check_outcomes(ended, user_body["user_id"], env)
    _check_no_duplicates(env)
    _check_ledger(env, videos, ended)
    _check_uploads(env, videos)


def _maybe_kill(k: Kill, platform: Platform, instance: dg.DagsterInstance, started: float, say) -> None:
    """Kill ``k``'s target once a run of its job (or, after ``TRIGGER_PATIENCE_S``, any run)
    has run ``k.delay_s`` seconds."""
    now = time.monotonic()
    patient = now - k.armed_at < TRIGGER_PATIENCE_S
    for record in _running(instance):
        run = record.dagster_run
        pid = worker_pid(instance, run.run_id)
        if (patient and run.job_name != k.job) or pid is None or not process_alive(pid, record.start_time):
            continue  # another job's, not started yet, or already dead (not reported yet)
        first = k.seen.setdefault(run.run_id, now)
        if now - first < k.delay_s:
            continue
        if k.target == "run_worker":
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue  # it just ended: wait for another
        else:
            platform.kill_group(platform.daemon)
            time.sleep(1)
            platform.start_daemon()
        k.done = f"{k.target} in {run.job_name} {run.tags.get('dagster/partition', '')}"
        say(f"  {now - started:6.1f} s  killed the {k.done}\n")
        return


def _explain(instance: dg.DagsterInstance, env: dict[str, str], stuck: set[str], say) -> None:
    """What the stuck videos' runs and events were (for the failure's report)."""
    from resources.schemas import PIPELINE_EVENTS

    events = Lake(uri=env["LAKE_URI"]).read(PIPELINE_EVENTS).sort("occurred_at")
    for vid in sorted(stuck):
        for r in instance.get_run_records(dg.RunsFilter(tags={"dagster/partition": vid})):
            say(f"    run {r.dagster_run.job_name} {r.dagster_run.status.value} {r.dagster_run.tags}\n")
        for e in events.filter(pl.col("correlation_id") == vid).iter_rows(named=True):
            say(f"    {e['occurred_at']:%H:%M:%S} {e['stage']} {e['event_type']} {e['payload'][:160]}\n")


def _landed(env: dict[str, str]) -> bool:
    store = Store(env["DATABASE_URL"])
    try:
        lake = Lake(uri=env["LAKE_URI"])
        with store.read() as s:
            from resources.store.models import LedgerEntry, Notification

            ledger_rows = s.query(LedgerEntry).count()
            notes = s.query(Notification).count()
        from resources.schemas import NOTIFICATIONS

        return lake.read(LEDGER_ENTRIES).height == ledger_rows and lake.read(NOTIFICATIONS).height == notes
    finally:
        store.close()


def _check_outcomes(ended: dict[str, dict], user_id: str, env: dict[str, str]) -> None:
    """Published, or rejected with a reason the user was told."""
    for vid, status in ended.items():
        if status["stage"] == "published":
            assert status["gallery"]["slug"]
            continue
        reasons = [n["body"] for n in status["notifications"] if n.get("body")]
        assert reasons, f"{vid} ended {status['stage']} without telling the user why"


def _check_no_duplicates(env: dict[str, str]) -> None:
    lake = Lake(uri=env["LAKE_URI"])
    checked = 0
    for spec in ALL_TABLES:
        if spec.layer not in ("bronze", "silver") or not lake.exists(spec):
            continue
        table = lake.read(spec)
        if table.height:
            dupes = table.filter(table.select(spec.key).is_duplicated())
            assert dupes.is_empty(), f"{spec.path}: duplicate {spec.key}: {dupes.head(3)}"
            checked += 1
    assert checked >= 15  # the chain's tables were there to check


def _check_ledger(env: dict[str, str], videos: dict[Path, str], ended: dict[str, dict]) -> None:
    store = Store(env["DATABASE_URL"])
    lake = Lake(uri=env["LAKE_URI"])
    try:
        entries = lake.read(LEDGER_ENTRIES)
        with store.read() as s:
            from resources.store.models import LedgerEntry

            in_store = s.query(LedgerEntry).count()
        assert entries.height == in_store  # every entry landed once
        assert ledger.audit(entries).is_empty()
        for vid in videos.values():
            kinds = sorted(entries.filter(pl.col("task_id") == ledger.job_id(vid))["kind"].to_list())
            assert len(kinds) == len(set(kinds)), f"{vid}: {kinds}"  # once each
            if ended[vid]["stage"] == "published":
                assert kinds == ["consume", "reserve"], f"{vid}: {kinds}"
            else:
                assert "consume" not in kinds or "refund" in kinds, f"{vid}: charged for nothing: {kinds}"
        for user_id in entries["user_id"].unique().to_list():
            recomputed = ledger.balance_of(entries, user_id)
            stored = store.balance(user_id)
            assert {k: stored[k] for k in ("available", "spent", "reserved_outstanding")} == {
                k: recomputed[k] for k in ("available", "spent", "reserved_outstanding")
            }
            assert stored["reserved_outstanding"] == 0  # nothing left held
    finally:
        store.close()


def _check_uploads(env: dict[str, str], videos: dict[Path, str]) -> None:
    store = Store(env["DATABASE_URL"])
    try:
        with store.read() as s:
            from resources.store.models import Upload

            rows = {u.video_id: u.status for u in s.query(Upload)}
    finally:
        store.close()
    assert set(rows) == set(videos.values()) and len(rows) == len(videos)  # one video per file sent
    assert set(rows.values()) <= {"done", "rejected"}
    landed = Lake(uri=env["LAKE_URI"]).read(UPLOADS)
    assert sorted(landed["video_id"].to_list()) == sorted(videos.values())
