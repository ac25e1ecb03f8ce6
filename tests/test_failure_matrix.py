"""The failure-injection matrix (docs/failure-matrix.md): each stage M1–M10 and the economics
job × {process crash, timeout, provider error, storage error, bad output}, the fault injected
for real and the expected state transition and user-visible outcome checked.

One video's chain is run once (a cartoon job: a local provider and the ComfyUI-protocol fake
as a remote one, Gemini through its REST fake) and its state is copied before each stage.
Each cell copies the state before its stage, injects its fault and runs the stage as the
platform would run it again:

- process crash: the stage runs as a process of its own (``tests.failure_stage``), SIGKILLed
  with its children right after its step starts; the run is left "started" with no worker,
  the recovery sensor's reaper reports it failed, and the stage run again completes it once;
- timeout: the outside call hangs (Gemini answers late, a ComfyUI prompt outlives its
  deadline, a health probe is never answered);
- provider error: Gemini answers 500, the ComfyUI server is stopped;
- storage error: the stage's Delta commit fails (its table's next log entry is taken, so the
  commit cannot be written while readers see the table as it was), then storage comes back
  and the stage is run again;
- bad output: a corrupt file or answer where the stage expects a video or a schema.

After every cell no bronze or silver table holds two rows of one key. The cells the docs
table marks "n/a" are exactly ``NOT_APPLICABLE`` (a test checks the two agree).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from resources.settings import PROJECT_ROOT
from tests.failure_stage import (
    COMFY,
    HELD_MARKER,
    HOLD_ENV,
    cell_settings,
    merge_settings,
    run_stage,
    step_keys,
    write_registry,
)

FAULTS = ("crash", "timeout", "provider", "storage", "bad_output")
ROWS = ("M1", "M2", "M3", "M4", "M5", "M6", "M7", "M5b", "M9", "M10", "M8")
DOC = PROJECT_ROOT / "docs" / "failure-matrix.md"
KEY = "matrix-test-key"
DESCRIPTION = "make it look like a cartoon"

# Why a cell cannot happen; the docs table says the same (checked below).
NO_OUTSIDE_CALL = "no call leaves the process: nothing to time out or to answer with an error"
NOT_APPLICABLE = {
    ("M1", "timeout"): NO_OUTSIDE_CALL,
    ("M1", "provider"): NO_OUTSIDE_CALL,
    ("M5", "timeout"): NO_OUTSIDE_CALL,
    ("M5", "provider"): NO_OUTSIDE_CALL,
    ("M5b", "timeout"): NO_OUTSIDE_CALL,
    ("M5b", "provider"): NO_OUTSIDE_CALL,
    ("M9", "timeout"): NO_OUTSIDE_CALL,
    ("M9", "provider"): NO_OUTSIDE_CALL,
    ("M9", "bad_output"): "its one input is M5's selected row; no usable result is M5b's bad output",
    ("M10", "timeout"): NO_OUTSIDE_CALL,
    ("M10", "provider"): NO_OUTSIDE_CALL,
    ("M10", "bad_output"): "it publishes references to an output M7 already gated",
    ("M8", "timeout"): "its only outside calls are M3's health probes (row M3)",
    ("M8", "provider"): "its only outside calls are M3's health probes (row M3)",
    ("M8", "bad_output"): "its inputs are typed bronze rows; an unreadable manifest it published is M5's bad output",
}
CELLS = [(row, fault) for row in ROWS for fault in FAULTS if (row, fault) not in NOT_APPLICABLE]
# What a stage leaves when it ran: its table (rows for the video) and its milestone event.
DONE = {
    "M1": ("ingested_video", "VideoIngested"),
    "M2": ("content_analysis", "ContentAnalyzed"),
    "M3": ("provider_registry", None),
    "M4": ("prompt_variants", "PromptsGenerated"),
    "M5": ("test_batch", "TestBatchDispatched"),
    "M6": ("provider_outputs", None),
    "M7": ("quality_scores", "QualityEvaluated"),
    "M5b": ("best_result", "BestResultSelected"),
    "M9": ("approval_requests", "ApprovalRequested"),
    "M10": ("gallery_revisions", "EffectPublished"),
    "M8": ("routing_manifests", None),
}
# The snapshot each stage starts from (the economics job runs on the finished chain).
BEFORE = {"M3": "M8"}
HEAVY = {"M6", "M7", "M8", "M3"}  # ffmpeg/VMAF work or the whole economics job


# --- the docs table agrees with the suite -----------------------------------------------------


def _doc_table() -> dict[tuple[str, str], str]:
    """(row, fault) → cell text of the matrix table in docs/failure-matrix.md."""
    header = ["stage", *FAULTS]
    cells = {}
    for line in DOC.read_text().splitlines():
        parts = [p.strip() for p in line.strip().strip("|").split("|")]
        if len(parts) != len(header) or not line.startswith("|"):
            continue
        row = parts[0].strip("*` ").split(" ")[0]
        if row in ROWS:
            cells.update({(row, f): text for f, text in zip(FAULTS, parts[1:], strict=True)})
    return cells


def test_the_docs_matrix_has_every_cell_and_marks_exactly_the_inapplicable_ones():
    table = _doc_table()
    assert set(table) == {(r, f) for r in ROWS for f in FAULTS}
    marked = {cell for cell, text in table.items() if text.lower().startswith("n/a")}
    assert marked == set(NOT_APPLICABLE)
    for cell in NOT_APPLICABLE:
        assert len(table[cell]) > len("n/a: ") + 10, f"{cell}: say why"


# --- the chain's state, before each stage -----------------------------------------------------


@dataclass
class Chain:
    snapshots: dict[str, Path]
    video_id: str
    user_id: str


@pytest.fixture(scope="module")
def fakes(tmp_path_factory):
    from tests.fakes.comfyui_server import FakeComfyUI
    from tests.fakes.gemini_server import FakeGemini

    with FakeComfyUI(tmp_path_factory.mktemp("comfy")) as comfy, FakeGemini(api_key=KEY) as gemini:
        yield comfy, gemini


def _drive_remote(settings, deadline_s: float = 90) -> None:
    """Completion-sensor passes until the video's remote tasks are all finished."""
    from assets.execution import remote as remote_tasks
    from resources.clients import Clients
    from resources.store.client import Store

    clients = Clients.from_settings(settings)
    store = Store(settings.database_url)
    try:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            remote_tasks.advance(
                store, clients.providers.registry(), clients.providers.adapter, clients.media, datetime.now(UTC)
            )
            if all(r["state"] == "finished" for r in store.remote_tasks()):
                return
            time.sleep(0.2)
        raise AssertionError(f"remote tasks not finished: {store.remote_tasks()}")
    finally:
        store.close()


@pytest.fixture(scope="module")
def chain(tmp_path_factory, fakes, short_bikes) -> Chain:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from pipelines.definitions import build_definitions
    from resources.lake import Lake
    from resources.schemas import APPROVAL_REQUESTS
    from resources.store.client import Store
    from tests.api_users import new_user
    from tests.harness import Driver

    comfy, gemini = fakes
    root = tmp_path_factory.mktemp("chain")
    keep = tmp_path_factory.mktemp("snapshots")
    write_registry(root, comfy.base_url)
    merge_settings(root, GOOGLE_API_KEY=KEY, EFFECTLAKE_GEMINI_BASE_URL=gemini.base_url)
    settings = cell_settings(root)
    defs = build_definitions(settings)
    snapshots: dict[str, Path] = {}

    def snapshot(name: str) -> None:
        snapshots[name] = keep / name
        shutil.copytree(root, keep / name, ignore=shutil.ignore_patterns("gemini_cache", "dagster_home"))

    with dg.instance_for_test() as instance, TestClient(create_app(settings)) as client:
        user = new_user(client)
        r = client.post(
            "/v1/uploads",
            headers=user["headers"],
            files={"file": ("bikes.mp4", short_bikes.read_bytes(), "video/mp4")},
            data={"description": DESCRIPTION},
        )
        video_id = r.json()["video_id"]
        Driver(defs, instance).land()
        Lake(uri=settings.lake_uri).ensure_all()  # as the upload sensor does before any run
        for stage in ("M1", "M2", "M4", "M5"):
            snapshot(stage)
            assert run_stage(defs, instance, stage, video_id).success, stage
        snapshot("M6")
        assert run_stage(defs, instance, "M6", video_id).success
        _drive_remote(settings)
        assert run_stage(defs, instance, "M6", video_id).success  # collect
        for stage in ("M7", "M5b", "M9"):
            snapshot(stage)
            assert run_stage(defs, instance, stage, video_id).success, stage
        store = Store(settings.database_url)
        approval_id = Lake(uri=settings.lake_uri).read(APPROVAL_REQUESTS)["approval_id"][0]
        store.record_decision("approval", approval_id, "approve", "matrix-admin", correlation_id=video_id)
        store.close()
        snapshot("M10")
        assert run_stage(defs, instance, "M10", video_id).success
        Driver(defs, instance).land()
        snapshot("M8")
    return Chain(snapshots, video_id, user["user_id"])


# --- one cell ---------------------------------------------------------------------------------


@dataclass
class Cell:
    stage: str
    root: Path
    chain: Chain

    @property
    def video_id(self) -> str:
        return self.chain.video_id

    def settings(self):
        return cell_settings(self.root)

    def defs(self):
        from pipelines.definitions import build_definitions

        return build_definitions(self.settings())

    def lake(self):
        from resources.lake import Lake

        return Lake(uri=str(self.root / "lake"))

    def store(self):
        from resources.store.client import Store

        return Store(f"sqlite:///{self.root / 'store.db'}")

    def run(self, instance, stage: str | None = None):
        return run_stage(self.defs(), instance, stage or self.stage, self.video_id)

    def rows(self, table: str) -> pl.DataFrame:
        from resources.schemas import ALL_TABLES

        spec = next(s for s in ALL_TABLES if s.name == table)
        lake = self.lake()
        if spec.partition_by == "video_id":
            return lake.read(spec, pl.col("video_id") == self.video_id)
        return lake.read(spec)

    def events(self, event_type: str | None = None) -> pl.DataFrame:
        from resources.schemas import PIPELINE_EVENTS

        ev = self.lake().read(PIPELINE_EVENTS, pl.col("correlation_id") == self.video_id)
        return ev if event_type is None else ev.filter(pl.col("event_type") == event_type)

    def ledger_kinds(self) -> list[str]:
        from economics.ledger import job_id
        from resources.store.models import LedgerEntry

        store = self.store()
        try:
            with store.read() as s:
                return sorted(e.kind for e in s.query(LedgerEntry).filter(LedgerEntry.task_id == job_id(self.video_id)))
        finally:
            store.close()

    def block_commit(self, table: str) -> Path:
        """Take the table's next Delta log entry (a directory where the commit file must go):
        readers see the table as it is, every commit fails (``CommitFailedError``)."""
        from resources.schemas import ALL_TABLES

        spec = next(s for s in ALL_TABLES if s.name == table)
        version = self.lake().version(spec)
        blocker = self.root / "lake" / spec.path / "_delta_log" / f"{version + 1:020d}.json"
        blocker.mkdir()
        return blocker

    def assert_done(self, stage: str | None = None) -> None:
        """The stage's table has the video's rows and its milestone event is recorded once."""
        stage = stage or self.stage
        table, milestone = DONE[stage]
        assert self.rows(table).height > 0, f"{table}: no row"
        if milestone:
            assert self.events(milestone).height == 1, f"{milestone} not recorded exactly once"


def assert_no_duplicates(root: Path) -> None:
    from resources.lake import Lake
    from resources.schemas import ALL_TABLES

    lake = Lake(uri=str(root / "lake"))
    for spec in ALL_TABLES:
        if spec.layer in ("bronze", "silver") and lake.exists(spec):
            table = lake.read(spec)
            if table.height:
                dupes = table.filter(table.select(spec.key).is_duplicated())
                assert dupes.is_empty(), f"{spec.path}: duplicate {spec.key}"


@pytest.fixture
def make_cell(chain, tmp_path, fakes):
    _, gemini = fakes
    made: list[Cell] = []

    def make(stage: str, comfy_url: str | None = None, **settings) -> Cell:
        root = tmp_path / "state"
        shutil.copytree(chain.snapshots[BEFORE.get(stage, stage)], root)
        if comfy_url:
            write_registry(root, comfy_url)
        merge_settings(root, EFFECTLAKE_GEMINI_CACHE_DIR=str(tmp_path / "gemini_cache"), **settings)
        cell = Cell(stage, root, chain)
        made.append(cell)
        return cell

    yield make
    gemini.heal()
    gemini.delay_s = 0.0
    with gemini._lock:  # answers queued for a call that never came
        gemini._answers.clear()
    for cell in made:
        assert_no_duplicates(cell.root)


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


@pytest.fixture
def own_comfy(tmp_path):
    from tests.fakes.comfyui_server import FakeComfyUI

    with FakeComfyUI(tmp_path / "own_comfy") as server:
        yield server
        server.reset_knobs()
        server.node_delay_s = 0
        server.wait_idle(60)


def _params(fault: str) -> list:
    out = []
    for row, f in CELLS:
        if f != fault:
            continue
        marks = [pytest.mark.video]
        if fault == "crash" or row in HEAVY:
            marks.append(pytest.mark.slow)
        out.append(pytest.param(row, marks=marks, id=row))
    return out


# --- process crash ----------------------------------------------------------------------------


def _wait_step_start(
    instance: dg.DagsterInstance, keys: list[str], proc: subprocess.Popen, timeout_s: float = 300
) -> str:
    """The run id once one of ``keys`` (any step when empty) has started in the child."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for record in instance.get_run_records():
            for entry in instance.all_logs(record.dagster_run.run_id, of_type=dg.DagsterEventType.STEP_START):
                if not keys or entry.step_key in keys:
                    return record.dagster_run.run_id
        if proc.poll() is not None:
            raise AssertionError(f"the stage process ended ({proc.returncode}) before its step started")
        time.sleep(0.05)
    raise AssertionError("the step never started")


def _wait_held(marker: Path, proc: subprocess.Popen, timeout_s: float = 300) -> None:
    """Until the stage process is held at its step's first lake commit (``failure_stage``)."""
    deadline = time.monotonic() + timeout_s
    while not marker.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the stage process ended ({proc.returncode}) before it was held")
        if time.monotonic() > deadline:
            raise AssertionError("the stage process was never held at a commit of its step")
        time.sleep(0.05)


@pytest.mark.parametrize("stage", _params("crash"))
def test_process_crash(stage, make_cell, own_comfy):
    """SIGKILL of the stage's process (and its children) mid-step: the run is left started
    with no worker; the recovery sensor's reaper reports it failed; the stage run again
    (the recovery sensor's re-queue) completes it, each row and event once."""
    from pipelines.recovery.runs import reap_dead_runs

    cell = make_cell(stage, comfy_url=own_comfy.base_url)
    home = cell.root / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    keys = step_keys(cell.defs(), stage) if stage != "M8" else ["gold__execution_costs"]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.failure_stage", str(cell.root), stage, cell.video_id],
            cwd=PROJECT_ROOT,
            env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), HOLD_ENV: ",".join(keys)},
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            run_id = _wait_step_start(instance, keys, proc)
            _wait_held(cell.root / HELD_MARKER, proc)
        finally:
            with_group = proc.pid
            os.killpg(with_group, signal.SIGKILL)
            proc.wait()
        assert proc.returncode == -signal.SIGKILL
        run = instance.get_run_by_id(run_id)
        assert run.status == dg.DagsterRunStatus.STARTED  # left running with no worker
        assert reap_dead_runs(instance) == [run_id]
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
        if stage == "M6":
            _finish_m6(cell, instance)
        else:
            assert cell.run(instance).success
    cell.assert_done()
    if stage in ("M5", "M6", "M7"):
        assert cell.ledger_kinds() == ["reserve"]  # one reservation, however often re-run
    if stage == "M5b":
        assert cell.ledger_kinds() == ["consume", "reserve"]  # charged once


def _finish_m6(cell: Cell, instance) -> None:
    """M6 as the platform completes it: the intake run's M6, the completion sensor's passes,
    the collect run's M6."""
    assert cell.run(instance).success
    _drive_remote(cell.settings())
    assert cell.run(instance).success


# --- storage error ----------------------------------------------------------------------------


@pytest.mark.parametrize("stage", _params("storage"))
def test_storage_error(stage, make_cell, instance, own_comfy):
    """The stage's Delta commit fails: its step fails and its table has nothing new; once
    storage is back the stage run again completes it, every row and event once (what the
    step recorded before the failed commit is not recorded twice)."""
    cell = make_cell(stage, comfy_url=own_comfy.base_url)
    table = DONE[stage][0] if stage != "M8" else "execution_costs"
    before = cell.rows(table).height
    blocker = cell.block_commit(table)
    result = cell.run(instance)
    assert not result.success
    errors = " ".join(str(e.event_specific_data.error) for e in result.all_events if e.is_step_failure)
    assert "CommitFailed" in errors or "commit" in errors.lower(), errors[:500]
    assert cell.rows(table).height == before  # nothing of the stage's table was committed
    blocker.rmdir()  # storage is back
    if stage == "M6":
        _finish_m6(cell, instance)
    else:
        assert cell.run(instance).success
    cell.assert_done()
    if stage == "M5b":
        assert cell.ledger_kinds() == ["consume", "reserve"]  # the consume before the failure counts once


# --- timeout ----------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", _params("timeout"))
def test_timeout(stage, make_cell, instance, fakes, own_comfy):
    """The outside call hangs past its bound; the stage goes on without it."""
    _, gemini = fakes
    if stage in ("M2", "M4", "M7"):
        # Gemini answers after 3 s; one attempt, 1 s to answer.
        gemini.delay_s = 3.0
        cell = make_cell(stage, EFFECTLAKE_GEMINI_TIMEOUT_S=1, EFFECTLAKE_GEMINI_ATTEMPTS=1)
        assert cell.run(instance).success
        _assert_gemini_fallback(cell)
    elif stage == "M3":
        # A server that takes the connection and never answers: the probe's 5 s bound.
        with socket.socket() as hung:
            hung.bind(("127.0.0.1", 0))
            hung.listen(8)
            cell = make_cell(stage, comfy_url=f"http://127.0.0.1:{hung.getsockname()[1]}")
            started = time.monotonic()
            assert cell.run(instance).success
            assert time.monotonic() - started < 60
        _assert_unhealthy(cell, "Timeout")
    elif stage == "M6":
        # The prompt runs 7 nodes × 0.5 s; its deadline is 1 s from its start on the server.
        own_comfy.node_delay_s = 0.5
        cell = make_cell(stage)
        write_registry(cell.root, own_comfy.base_url, timeout_seconds=1)
        _finish_m6(cell, instance)
        remote = cell.rows("provider_outputs").filter(pl.col("provider_id") == COMFY).row(0, named=True)
        assert (remote["status"], remote["error_class"]) == ("failed", "Timeout")
        assert remote["compute_seconds"] >= 1.0  # the work the server did until the interrupt landed
        _assert_local_output_stands(cell)
    cell.assert_done()


def _assert_gemini_fallback(cell: Cell) -> None:
    if cell.stage == "M2":
        row = cell.rows("content_analysis").row(0, named=True)
        assert row["analysis_source"] == "local" and row["fallback_reason"]
    elif cell.stage == "M4":
        assert set(cell.rows("prompt_variants")["prompt_source"]) == {"local"}
    else:  # M7: scored without the judge's verdict
        measured = [json.loads(m) for m in cell.rows("quality_scores")["measurements"]]
        assert measured and not any("judge_score" in m for m in measured)


def _assert_unhealthy(cell: Cell, detail: str) -> None:
    row = cell.rows("provider_registry").filter(pl.col("provider_id") == COMFY).sort("checked_at").row(-1, named=True)
    assert not row["healthy"] and detail.lower() in row["health_detail"].lower(), row["health_detail"]


def _assert_local_output_stands(cell: Cell) -> None:
    """The cartoon job's local output succeeded and the remote task failed, each once."""
    local = cell.rows("provider_outputs").filter(pl.col("provider_id") == "opencv-cartoon")
    assert local["status"].to_list() == ["succeeded"]
    outcomes = [json.loads(p)["provider_id"] for p in cell.events("TaskFailed")["payload"]]
    assert outcomes == [COMFY]


# --- provider error ---------------------------------------------------------------------------


@pytest.mark.parametrize("stage", _params("provider"))
def test_provider_error(stage, make_cell, instance, fakes, own_comfy):
    """The provider answers with errors, or is gone; the stage goes on without it."""
    _, gemini = fakes
    if stage in ("M2", "M4", "M7"):
        gemini.fail("generateContent", 500, times=None)
        cell = make_cell(stage, EFFECTLAKE_GEMINI_ATTEMPTS=2, EFFECTLAKE_GEMINI_MAX_WAIT_S=0.2)
        assert cell.run(instance).success
        _assert_gemini_fallback(cell)
    elif stage == "M3":
        cell = make_cell(stage, comfy_url=own_comfy.base_url)
        own_comfy.stop()
        assert cell.run(instance).success
        _assert_unhealthy(cell, "unreachable")
    elif stage == "M6":
        cell = make_cell(stage, comfy_url=own_comfy.base_url)
        own_comfy.stop()  # the ComfyUI server is gone: every send is refused
        _finish_m6(cell, instance)
        remote = cell.rows("provider_outputs").filter(pl.col("provider_id") == COMFY).row(0, named=True)
        assert (remote["status"], remote["error_class"]) == ("failed", "ProviderUnreachable")
        assert remote["compute_seconds"] == 0 and remote["attempts"] == 2  # retried, charged nothing
        _assert_local_output_stands(cell)
    cell.assert_done()


# --- bad output -------------------------------------------------------------------------------


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


@pytest.mark.parametrize("stage", _params("bad_output"))
def test_bad_output(stage, make_cell, instance, fakes, own_comfy):
    """A corrupt file or answer where the stage expects a video or a schema."""
    _, gemini = fakes
    if stage == "M1":
        cell = make_cell(stage)
        [raw] = [p for p in (cell.root / "media").rglob("*") if p.is_file() and "raw" in p.parts]
        _truncate(raw)  # the stored upload is not a whole video
        assert cell.run(instance).success
        row = cell.rows("ingested_video").row(0, named=True)
        assert row["status"] == "rejected" and row["reject_reason"]
        assert cell.events("VideoRejected").height == 1 and cell.events("UserNotified").height == 1
        assert cell.ledger_kinds() == []  # nothing reserved, nothing charged
        return
    if stage in ("M2", "M4", "M7"):
        for _ in range(8):  # every call of the stage (M4: one per effect, M7: one per output)
            gemini.answer_next("this is not the JSON the schema asks for")
        cell = make_cell(stage)
        assert cell.run(instance).success
        _assert_gemini_fallback(cell)
    elif stage == "M3":
        own_comfy.system_stats = {"system": {"comfyui_version": "0.3.64"}, "devices": []}
        cell = make_cell(stage, comfy_url=own_comfy.base_url)
        assert cell.run(instance).success
        _assert_unhealthy(cell, "no device")
    elif stage == "M5":
        cell = make_cell(stage)
        manifest = cell.root / "manifest" / "routing_manifest.json"
        manifest.parent.mkdir(parents=True, exist_ok=True)
        manifest.write_text('{"version": "half-writ')  # a torn write of the manifest
        assert cell.run(instance).success
        assert set(cell.rows("test_batch")["manifest_version"]) != {None}
        [dispatched] = cell.events("TestBatchDispatched")["payload"].to_list()
        assert json.loads(dispatched)["manifest_source"] == "bootstrap"
    elif stage == "M6":
        # The ComfyUI server's output file is corrupt when it is collected.
        cell = make_cell(stage, comfy_url=own_comfy.base_url)
        assert cell.run(instance).success
        _drive_remote(cell.settings())
        for out in (own_comfy.dirs["output"]).rglob("*.mp4"):
            _truncate(out)
        assert cell.run(instance).success  # collected: stored as it came
        assert cell.run(instance, "M7").success
        scores = cell.rows("quality_scores")
        remote = scores.filter(pl.col("provider_id") == COMFY).row(0, named=True)
        assert not remote["gate_passed"]
        best = scores.sort("rank").row(0, named=True)
        assert best["provider_id"] == "opencv-cartoon" and best["gate_passed"]
    elif stage == "M5b":
        # Every stored output is corrupt: nothing passes the gate → no usable result, refunded.
        cell = make_cell("M7")
        for out in (cell.root / "media" / "outputs").rglob("*.mp4"):
            _truncate(out)
        assert cell.run(instance, "M7").success
        assert cell.run(instance, "M5b").success
        assert cell.rows("best_result")["outcome"].to_list() == ["no_usable_result"]
        assert cell.events("NoUsableResult").height == 1
        assert cell.ledger_kinds() == ["refund", "reserve"]
        store = cell.store()
        try:
            [note] = [n for n in store.notifications(cell.chain.user_id) if n["kind"] == "no_result"]
        finally:
            store.close()
        assert "refunded" in note["body"]
        return
    cell.assert_done()


# --- the docs page exists and names the suite --------------------------------------------------


def test_the_docs_page_names_this_suite():
    text = DOC.read_text()
    assert "tests/test_failure_matrix.py" in text
    assert re.search(r"\| *stage *\|", text)
