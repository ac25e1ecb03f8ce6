"""The asset graph tells the truth: every lake table is an asset, and each asset declares as
its upstream exactly the tables it reads.

The dynamic test runs the real jobs (intake, evaluation, publish, economics, benchmark, A/B)
on one short real clip with a lake client that records every read and write together with
the asset or check running at that moment, then compares the record with the declared
graph in both directions: nothing read undeclared, nothing declared unread.
"""

from __future__ import annotations

import dis
import shutil
from collections import defaultdict
from typing import ClassVar

import dagster as dg
import httpx
import polars as pl
import pytest
import yaml

from api.app import create_app
from assets.bronze import BRONZE, STORE
from assets.gold.actions import bottleneck_actions
from assets.gold.logs import platform_logs
from assets.landing.asset import LANDING_ASSETS
from assets.landing.rows import LANDINGS
from assets.lineage import FEEDBACK_READS, store_table_key, table_key
from pipelines import definitions
from pipelines.checks import CHECKS
from pipelines.definitions import build_definitions
from pipelines.reporting_lake import RunReportingLake
from pipelines.sensors import ab_test_sensor, approval_sensor
from resources.lake import Lake
from resources.manifest_store import ManifestStore
from resources.schemas import (
    AB_REQUESTS,
    ALL_TABLES,
    APPROVAL_DECISIONS,
    BEST_RESULT,
    CONTENT_ANALYSIS,
    LLM_COSTS,
    PROMPT_VARIANTS,
    QUALITY_SCORES,
    ROUTING_MANIFESTS,
    TEST_BATCH,
    TableSpec,
)
from resources.settings import DATA_DIR
from resources.store.client import Store
from tests.api_users import ADMIN, new_user
from tests.clips import one_clip_suite
from tests.harness import Driver
from tests.local_settings import local_settings
from tests.server import serve

# One cheap provider per effect type, plus a second slow-motion one for the A/B test.
PROVIDERS = {"ffmpeg-colortemp", "ffmpeg-slowmo-dup", "ffmpeg-slowmo-blend", "ffmpeg-posterize"}

# Declared writers whose writes happen only on branches this run does not take.
BRANCH_ONLY_WRITES = {
    (store_table_key("notifications"), table_key(TEST_BATCH)),  # no eligible effect, over budget, 80% alert
    (store_table_key("notifications"), table_key(BEST_RESULT)),  # no usable result
    # a critical TOKEN_DEPLETION_RISK (the lineage run has none)
    (store_table_key("notifications"), dg.AssetKey(["bronze", "bottleneck_actions"])),
    # analysis failed 3 times: the (empty) refund and the notification
    (store_table_key("ledger_entries"), table_key(CONTENT_ANALYSIS)),
    (store_table_key("notifications"), table_key(CONTENT_ANALYSIS)),
    # an admin's rejection: the publish stage refunds the job (this run approves)
    (store_table_key("ledger_entries"), dg.AssetKey(["silver", "gallery_revisions"])),
    # Gemini's cost lines, only when GOOGLE_API_KEY is set (tests/test_target_jobs.py)
    (table_key(LLM_COSTS), table_key(CONTENT_ANALYSIS)),
    (table_key(LLM_COSTS), table_key(PROMPT_VARIANTS)),
    (table_key(LLM_COSTS), table_key(QUALITY_SCORES)),
}

# Tables the API writes outside any run, with the table it reads to write them (their deps).
API_WRITES = {
    store_table_key("decisions"): {
        dg.AssetKey(["silver", "approval_requests"]),
        dg.AssetKey(["gold", "recommendations"]),
    },
    dg.AssetKey(["bronze", "ab_requests"]): {dg.AssetKey(["silver", "ingested_video"])},
    store_table_key("effect_pin_events"): {store_table_key("effect_revisions")},
    # A user's effect run, queued against the gallery's pinned revision.
    store_table_key("effect_runs"): {dg.AssetKey(["silver", "gallery_revisions"])},
}


# --- recording ---------------------------------------------------------------------------


class Record:
    """What the recording clients saw: (kind, entity, table key, rows) per call, where entity
    is the running asset's key or check's key (None outside any step)."""

    calls: ClassVar[list[tuple[str, object, dg.AssetKey, int]]] = []
    in_sensor_tick: ClassVar[bool] = False
    unattributed: ClassVar[list[tuple[str, dg.AssetKey]]] = []

    @classmethod
    def add(cls, kind: str, key: dg.AssetKey, rows: int = 0) -> None:
        entity = _running_entity()
        if entity is None and not cls.in_sensor_tick:
            cls.unattributed.append((kind, key))
        cls.calls.append((kind, entity, key, rows))

    @classmethod
    def reset(cls) -> None:
        cls.calls, cls.unattributed, cls.in_sensor_tick = [], [], False


def _running_entity() -> dg.AssetKey | dg.AssetCheckKey | None:
    try:
        return dg.AssetExecutionContext.get().assets_def.key
    except dg.DagsterInvariantViolationError:
        pass
    try:
        [check_key] = dg.AssetCheckExecutionContext.get().selected_asset_check_keys
        return check_key
    except dg.DagsterInvariantViolationError:
        return None


class RecordingLake(RunReportingLake):
    """The definitions' own lake class, recording every read (scan, read, dataset, version,
    column_max) and write."""

    def scan(self, spec: TableSpec):
        Record.add("read", table_key(spec))
        return super().scan(spec)

    def read(self, spec: TableSpec, where=None):
        Record.add("read", table_key(spec))
        return super().read(spec, where)

    def dataset(self, spec: TableSpec):
        Record.add("read", table_key(spec))
        return super().dataset(spec)

    def version(self, spec: TableSpec) -> int:
        Record.add("read", table_key(spec))
        return super().version(spec)

    def column_max(self, spec: TableSpec, column: str):
        Record.add("read", table_key(spec))
        return super().column_max(spec, column)

    def append(self, spec: TableSpec, df: pl.DataFrame) -> int:
        rows = super().append(spec, df)
        Record.add("write", table_key(spec), rows)
        return rows

    def upsert(self, spec: TableSpec, df: pl.DataFrame, recent=None) -> dict:
        metrics = super().upsert(spec, df, recent)
        Record.add(
            "write",
            table_key(spec),
            int(metrics.get("num_target_rows_inserted", 0)) + int(metrics.get("num_target_rows_updated", 0)),
        )
        return metrics

    def overwrite(self, spec: TableSpec, df: pl.DataFrame) -> None:
        super().overwrite(spec, df)
        Record.add("write", table_key(spec), df.height)


class RecordingStore(Store):
    """The transactional store, recording the asset steps' reads and writes of its tables."""

    def reserve(self, *args, **kwargs):
        Record.add("write", store_table_key("ledger_entries"), 1)
        return super().reserve(*args, **kwargs)

    def consume(self, *args, **kwargs):
        Record.add("write", store_table_key("ledger_entries"), 1)
        return super().consume(*args, **kwargs)

    def refund(self, *args, **kwargs):
        Record.add("write", store_table_key("ledger_entries"), 1)
        return super().refund(*args, **kwargs)

    def settle_run(self, *args, **kwargs):
        # An effect run's end consumes or refunds its reservation in the same transaction.
        settled = super().settle_run(*args, **kwargs)
        if settled is not None:  # a run already final settles nothing
            Record.add("write", store_table_key("ledger_entries"), 1)
        return settled

    def balance(self, user_id):
        Record.add("read", store_table_key("ledger_entries"))
        return super().balance(user_id)

    def notify(self, *args, **kwargs):
        Record.add("write", store_table_key("notifications"), 1)
        return super().notify(*args, **kwargs)

    def upload(self, video_id, user_id=None):
        Record.add("read", store_table_key("uploads"))
        return super().upload(video_id, user_id)

    def decision(self, subject_kind, subject_id):
        Record.add("read", store_table_key("decisions"))
        return super().decision(subject_kind, subject_id)

    def publish_revision(self, *args, **kwargs):
        published = super().publish_revision(*args, **kwargs)
        Record.add("write", store_table_key("effect_revisions"), int(published.created))
        Record.add("write", store_table_key("effect_pin_events"), int(published.pin_moved))
        return published

    def changes_since(self, table, *args, **kwargs):
        Record.add("read", store_table_key(table))
        return super().changes_since(table, *args, **kwargs)

    # An effect run's row and the result cache; its state moves (start, update, finish) are
    # operational, like an upload's status, and not drawn.
    def effect_run(self, run_id, user_id=None):
        Record.add("read", store_table_key("effect_runs"))
        return super().effect_run(run_id, user_id)

    def cached_run(self, workspace_id, cache_key):
        Record.add("read", store_table_key("effect_runs"))
        return super().cached_run(workspace_id, cache_key)


class RecordingManifestStore(ManifestStore):
    """The current routing manifest is the published form of ``gold/routing_manifests``."""

    def read(self) -> dict | None:
        Record.add("read", table_key(ROUTING_MANIFESTS))
        return super().read()


class RecordingDriver(Driver):
    def tick(self, sensor_name: str) -> list[dg.RunRequest]:
        # Ticks nest (another sensor's tick first lands the store's rows): restore, not reset.
        outer, Record.in_sensor_tick = Record.in_sensor_tick, True
        try:
            return super().tick(sensor_name)
        finally:
            Record.in_sensor_tick = outer


# --- helpers -----------------------------------------------------------------------------


def _used_inputs(assets_def: dg.AssetsDefinition) -> set[dg.AssetKey]:
    """Upstream keys of the inputs the compute function's body really uses (a parameter
    that is only loaded and never touched would be a dep on paper only)."""
    code = assets_def.op.compute_fn.decorated_fn.__code__
    params = set(code.co_varnames[: code.co_argcount + code.co_kwonlyargcount])
    loaded = {i.argval for i in dis.get_instructions(code) if i.opname.startswith("LOAD_FAST")}
    return {key for name, key in assets_def.keys_by_input_name.items() if name in params and name in loaded}


def _ancestors(graph, key: dg.AssetKey) -> set[dg.AssetKey]:
    seen, todo = set(), [key]
    while todo:
        for parent in graph.get(todo.pop()).parent_keys:
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    return seen


def _small_registry(tmp_path) -> str:
    for name in ("effects.yaml", "rate_card.yaml"):
        shutil.copyfile(DATA_DIR / name, tmp_path / name)
    doc = yaml.safe_load((DATA_DIR / "providers.yaml").read_text())
    doc["providers"] = [p for p in doc["providers"] if p["provider_id"] in PROVIDERS]
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


# --- static ------------------------------------------------------------------------------


def test_every_lake_and_store_table_is_an_asset_and_every_asset_a_table(settings):
    keys = set(build_definitions(settings).resolve_asset_graph().get_all_asset_keys())
    store = {store_table_key(x.source) for x in LANDINGS}
    assert keys == {table_key(t) for t in ALL_TABLES} | store
    assert {s.key for s in STORE} == store


def test_bronze_tables_are_landed_from_the_store_or_external_in_their_group(settings):
    graph = build_definitions(settings).resolve_asset_graph()
    bronze = {table_key(t) for t in ALL_TABLES if t.layer == "bronze"}
    # Landed from the store, or from outside the lake: the process log files (platform_logs)
    # and the actions taken on critical bottlenecks (bottleneck_actions).
    landed = {a.key for a in LANDING_ASSETS} | {platform_logs.key, bottleneck_actions.key}
    assert {s.key for s in BRONZE} == bronze - landed
    for key in bronze:
        node = graph.get(key)
        assert node.group_name == "bronze" and node.is_materializable == (key in landed)
    for landing in LANDINGS:  # store → bronze in the graph
        assert store_table_key(landing.source) in graph.get(table_key(landing.target)).parent_keys
    for spec in STORE:
        node = graph.get(spec.key)
        assert not node.is_materializable and node.group_name == "store"


def test_feedback_reads_are_only_the_reads_that_would_close_a_cycle(settings):
    graph = build_definitions(settings).resolve_asset_graph()
    for reader, tables in FEEDBACK_READS.items():
        for table in tables:
            assert reader in _ancestors(graph, table), f"{table} is not downstream of {reader}: declare it"


# --- sensors report what they saw --------------------------------------------------------


def test_sensors_observe_the_bronze_table_they_watch(settings, instance):
    defs = build_definitions(settings)
    lake = Lake(uri=settings.lake_uri)
    lake.append(APPROVAL_DECISIONS, pl.DataFrame([{"approval_id": "a1", "video_id": "v1", "decision": "approve"}]))
    lake.append(AB_REQUESTS, pl.DataFrame([{"experiment_id": "e1", "video_id": "v1"}]))
    for sensor, spec in ((approval_sensor, APPROVAL_DECISIONS), (ab_test_sensor, AB_REQUESTS)):
        result = sensor(dg.build_sensor_context(instance=instance, resources=defs.resources))
        [seen] = result.asset_events
        assert isinstance(seen, dg.AssetObservation) and seen.asset_key == table_key(spec)
        assert seen.metadata["delta_version"].value == lake.version(spec)
        assert seen.metadata["rows"].value == 1
        assert isinstance(
            sensor(dg.build_sensor_context(instance=instance, resources=defs.resources, cursor=result.cursor)),
            dg.SkipReason,
        )


# --- dynamic -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def recorded(warm_carphone, tmp_path_factory):
    """Run every job once on one short clip (plus a truncated upload M1 rejects) with
    recording clients; yield (definitions, instance)."""
    tmp_path = tmp_path_factory.mktemp("lineage")
    suite = one_clip_suite(tmp_path / "suite.yaml", "carphone", warm_carphone)
    settings = local_settings(
        tmp_path,
        EFFECTLAKE_PROVIDERS=_small_registry(tmp_path),
        EFFECTLAKE_REFERENCE_SUITE=str(suite),
    )
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(warm_carphone.read_bytes()[: warm_carphone.stat().st_size // 3])
    build_resources = definitions.build_resources
    with (
        pytest.MonkeyPatch.context() as mp,
        dg.instance_for_test() as instance,
    ):
        mp.setattr(
            definitions,
            "build_resources",
            lambda s: {
                **build_resources(s),
                "lake": RecordingLake(uri=s.lake_uri),
                "manifest_store": RecordingManifestStore(uri=s.manifest_uri),
                "store": RecordingStore(s.database_url),
            },
        )
        defs = build_definitions(settings)
        Record.reset()
        _run_everything(defs, instance, settings, warm_carphone, truncated)
        yield defs, instance
    Record.reset()


def _run_everything(defs, instance, settings, clip, truncated) -> None:
    driver = RecordingDriver(defs, instance)
    with serve(create_app(settings)) as base, httpx.Client(base_url=base, timeout=60) as client:
        client.headers.update(new_user(client)["headers"])  # the client calls as one user
        # A refused upload (not a video): the API records the rejection in the store.
        refused = client.post("/v1/uploads", files={"file": ("notes.txt", b"not a video at all", "text/plain")})
        assert refused.status_code == 415, refused.text
        ids = []
        for path in (clip, truncated):
            with open(path, "rb") as fh:
                r = client.post("/v1/uploads", files={"file": (path.name, fh, "video/mp4")})
            assert r.status_code == 202, r.text
            ids.append(r.json()["video_id"])
        assert [r.success for r in driver.step("upload_sensor")] == [True, True]
        assert client.get(f"/v1/videos/{ids[1]}").json()["stage"] == "rejected"
        assert driver.step("completion_sensor") == []  # the intake run evaluated it
        approval_id = client.get(f"/v1/videos/{ids[0]}").json()["approval"]["approval_id"]
        # An approval: the publish stage writes a revision and moves its slug's pin.
        assert (
            client.post(
                f"/v1/admin/approvals/{approval_id}", headers=ADMIN, json={"decision": "approve", "admin": "alice"}
            ).status_code
            == 202
        )
        assert [r.success for r in driver.step("approval_sensor")] == [True]
        driver.land()  # the revision and its pin move into bronze
        # A user's run of the published effect: the first renders, the same again is served
        # from the result cache.
        slug = client.get("/v1/effects").json()["items"][0]["slug"]
        for _ in range(2):
            r = client.post(f"/v1/effects/{slug}/runs", data={"video_id": ids[0]})
            assert r.status_code == 202, r.text
            assert [r.success for r in driver.step("run_sensor")] == [True]
        for job in ("economics_job", "benchmark_job", "signals_job", "actions_job"):
            assert defs.resolve_job_def(job).execute_in_process(instance=instance).success
        assert (
            client.post(
                "/v1/admin/ab-tests",
                headers=ADMIN,
                json={
                    "video_id": ids[0],
                    "effect_type": "slow_motion",
                    "providers": ["ffmpeg-slowmo-dup", "ffmpeg-slowmo-blend"],
                },
            ).status_code
            == 202
        )
        assert [r.success for r in driver.step("ab_test_sensor")] == [True]


@pytest.mark.slow
def test_declared_upstream_is_exactly_what_each_asset_and_check_reads(recorded):
    defs, instance = recorded
    graph = defs.resolve_asset_graph()
    assert Record.unattributed == []  # every read inside a run happened in an asset or check step
    read = defaultdict(set)
    for kind, entity, key, _ in Record.calls:
        if kind == "read" and entity is not None:
            read[entity].add(key)

    materializable = [k for k in graph.get_all_asset_keys() if graph.get(k).is_materializable]
    for key in materializable:
        assert instance.get_latest_materialization_event(key) is not None, f"{key.to_user_string()} never ran"
        assets_def = defs.resolve_assets_def(key)
        really_read = (read[key] | _used_inputs(assets_def)) - {key}  # its own table is no dep
        feedback = FEEDBACK_READS.get(key, frozenset())
        assert feedback <= really_read, f"{key.to_user_string()}: feedback reads {feedback - really_read} not read"
        declared = set(graph.get(key).parent_keys)
        name = key.to_user_string()
        assert really_read - feedback - declared == set(), f"{name} reads undeclared tables"
        assert declared - really_read == set(), f"{name} declares tables it never reads"

    checks = [c for c in read if isinstance(c, dg.AssetCheckKey)]
    for checks_def in CHECKS:
        for spec in checks_def.check_specs:
            assert spec.key in checks, f"{spec.key} never ran"
            declared = {spec.asset_key} | {d.asset_key for d in spec.additional_deps}
            assert read[spec.key] == declared, spec.key


@pytest.mark.slow
def test_bronze_appends_come_from_declared_writers_and_are_materializations(recorded):
    defs, instance = recorded
    graph = defs.resolve_asset_graph()
    written = defaultdict(int)
    for kind, entity, key, rows in Record.calls:
        if kind == "write" and isinstance(entity, dg.AssetKey) and key != entity:
            written[(key, entity)] += rows

    # Another asset's table a step writes is an appended bronze table or a store table.
    bronze = {s.key for s in BRONZE}
    external = bronze | {s.key for s in STORE}
    for table, writer in written:
        assert table in external, f"{writer.to_user_string()} writes {table.to_user_string()}, not bronze or store"
        assert writer in graph.get(table).parent_keys, (
            f"{writer.to_user_string()} writes {table.to_user_string()} but is not declared upstream of it"
        )
    declared = {(t, w) for t in external for w in graph.get(t).parent_keys if w not in API_WRITES.get(t, set())}
    assert declared - set(written) <= BRANCH_ONLY_WRITES

    # Each append of new rows to a bronze table is in its asset's history, from the writer's step.
    reported = defaultdict(int)
    for table in bronze:
        for record in instance.fetch_materializations(table, limit=10_000).records:
            step = record.event_log_entry.step_key
            reported[(table, step)] += record.asset_materialization.metadata["rows"].value
    for (table, writer), rows in written.items():
        if table in bronze:
            step = defs.resolve_assets_def(writer).op.name
            assert reported[(table, step)] == rows, (table, writer)


@pytest.mark.slow
def test_check_results_belong_to_the_checked_video(recorded):
    _, instance = recorded
    records = instance.get_event_records(dg.EventRecordsFilter(event_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION))
    partitions = {
        (
            r.event_log_entry.dagster_event.event_specific_data.check_name,
            r.event_log_entry.dagster_event.event_specific_data.partition,
        )
        for r in records
    }
    accepted = instance.get_dynamic_partitions("videos")
    assert {name for name, _ in partitions} == {s.name for c in CHECKS for s in c.check_specs}
    assert {p for _, p in partitions} <= set(accepted) and None not in {p for _, p in partitions}
