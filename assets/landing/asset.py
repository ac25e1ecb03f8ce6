"""Landing: the transactional store's mirrored tables → the lake's bronze tables, in batches.

One asset per bronze table (``rows.LANDINGS``), keyed like the table and depending on its
store table (``store/<table>``), so the graph reads ``store/uploads`` → ``bronze/uploads`` →
``silver/ingested_video``. The ``landing_sensor`` (``pipelines/sensors.py``) starts
``landing_job`` for the tables with rows past their cursor; each asset then reads one batch
(``Store.changes_since``) and lands it in **one Delta commit** with the table's
insert-if-absent merge (``Lake.append``).

The cursor: exactly once without a two-phase commit
    A batch is landed *before* its cursor moves, and landing is idempotent (the bronze key),
    so a crash between the Delta commit and the cursor update re-reads the batch next time
    and inserts nothing twice; a cursor never moves past a row that is not landed, so
    nothing is skipped. The cursor of a table is the larger of two lower bounds:

    * ``store_seq`` in the metadata of the asset's latest materialization: the last store
      seq the batch *examined* (``changes_since``'s cursor). It is logged when the step
      returns, after the commit. It matters for ``decisions``, which two bronze tables
      share: each skips the other's rows, and without it a table whose kind is rare would
      re-read the other kind's rows forever.
    * the largest ``seq`` already in the bronze table (from the Delta log's file statistics,
      no data read): every landing commits a whole prefix of the store's seq order (the
      store returns one, ``resources/store/changes.py``), so every row of this table up to
      that seq is landed. It survives a new Dagster instance (the lake is the record).

    The Dagster run or sensor cursor alone would not do: a sensor cursor moves when the run
    is *requested*, and a failed run would skip its batch.
"""

from datetime import datetime

import dagster as dg
import polars as pl

from assets.landing.rows import BY_TARGET, LANDINGS, Landing, to_bronze
from assets.lineage import reads, store_table_key, table_key
from resources.events import utcnow
from resources.lake import Lake
from resources.schemas import RECOMMENDATIONS, UPLOADS
from resources.store.client import Store
from resources.store.errors import UploadNotFound
from resources.store.feed import PENDING_WATCH

GROUP = "bronze"
# Rows landed per table per run: one Delta commit each. Bigger backlogs take several ticks.
BATCH = 5_000
CURSOR = "store_seq"


def stored_cursor(instance: dg.DagsterInstance, landing: Landing) -> int:
    """``store_seq`` of the landing asset's latest materialization (0 when none)."""
    record = instance.get_latest_materialization_event(table_key(landing.target))
    if record is None or record.asset_materialization is None:
        return 0
    value = record.asset_materialization.metadata.get(CURSOR)
    return int(value.value) if value is not None else 0


def landing_cursor(instance: dg.DagsterInstance, lake: Lake, landing: Landing) -> int:
    """The store seq after which ``landing`` reads: max of ``stored_cursor`` and the largest
    ``seq`` in its bronze table (module docstring)."""
    return max(stored_cursor(instance, landing), int(lake.column_max(landing.target, "seq") or 0))


# A presigned upload lands while ``pending`` and is completed later in place (same seq), so the
# seq cursor never brings it back: the uploads landing re-reads the pending rows it landed, for
# PENDING_WATCH (as long as a presigned URL can still be used, with a margin; the upload
# sensor watches its pending uploads as long), and lands their new state.


def completed_uploads(lake: Lake, store: Store, now: datetime) -> pl.DataFrame:
    """Uploads landed ``pending`` (in the last PENDING_WATCH) that the store now holds in
    another state, as bronze rows (their current store row); empty when none."""
    landing = BY_TARGET[UPLOADS.name]
    pending = lake.read(UPLOADS, (pl.col("status") == "pending") & (pl.col("uploaded_at") > now - PENDING_WATCH))
    rows = []
    for video_id in pending["video_id"].to_list():
        try:
            row = store.upload(video_id)
        except UploadNotFound:  # folded into the user's earlier upload of the same bytes
            continue
        if row["status"] != "pending":
            rows.append(row)
    return to_bronze(landing, rows)


def _with_recommendation_titles(lake: Lake, df: pl.DataFrame) -> pl.DataFrame:
    # The store records the decision only; the bronze row also names what was decided (read
    # on every run of this asset, so its declared read is a real one: the table is small).
    titles = lake.read(RECOMMENDATIONS).select("recommendation_id", "type", "title").unique("recommendation_id")
    return df.drop("type", "title").join(titles, on="recommendation_id", how="left").select(df.columns)


def _landing_asset(landing: Landing, description: str) -> dg.AssetsDefinition:
    extra = reads(RECOMMENDATIONS) if landing.subject_kind == "recommendation" else []

    @dg.asset(
        key=table_key(landing.target),
        deps=[store_table_key(landing.source), *extra],
        group_name=GROUP,
        kinds={"deltalake"},
        description=description,
        metadata={"key": ", ".join(landing.target.key), "store_table": landing.source},
    )
    def land(context: dg.AssetExecutionContext, lake: dg.ResourceParam[Lake], store: dg.ResourceParam[Store]):
        after = landing_cursor(context.instance, lake, landing)
        rows, through = store.changes_since(landing.source, after, BATCH)
        df = to_bronze(landing, rows)
        if landing.subject_kind == "recommendation":
            df = _with_recommendation_titles(lake, df)
        if landing.target == UPLOADS:
            # Upsert, not insert-if-absent: a completed presigned upload replaces its pending row.
            df = pl.concat([df, completed_uploads(lake, store, utcnow())]).unique("video_id", keep="last")
            metrics = lake.upsert(UPLOADS, df)
            inserted = int(metrics.get("num_target_rows_inserted", 0)) + int(metrics.get("num_target_rows_updated", 0))
        else:
            inserted = lake.append(landing.target, df)
        return dg.MaterializeResult(metadata={CURSOR: through, "rows": inserted, "read": len(rows), "after": after})

    return land


_DESCRIPTIONS = {
    "uploads": "Accepted uploads, landed from the store (the intake API writes them there).",
    "upload_rejections": "Uploads the intake API refused (size, type, quota) with the HTTP status and reason, "
    "landed from the store.",
    "ledger_entries": "Token ledger, landed from the store: credits and top-ups (API), one reservation per job "
    "(M5 test_batch), its consume on delivery (M5 best_result) or refund (no usable result, M10 rejection).",
    "notifications": "In-app notifications, landed from the store's outbox (the stages that tell users something "
    "write there).",
    "approval_decisions": "Admin decisions on approval requests, landed from the store's decisions.",
    "recommendation_decisions": "Admin decisions on recommendations, landed from the store's decisions.",
    "effect_revisions": "Every gallery revision ever published (immutable: M10 writes each content once), landed "
    "from the store.",
    "effect_pin_events": "Every move of a gallery slug's pin (M10 on an approval of new content; an admin's pin or "
    "rollback through the API), landed from the store.",
    "effect_runs": "Users' runs of published effects as the API queued them (effect, pinned revision, params, "
    "input, price reserved), landed from the store; run_sensor starts one effect_run_job run each.",
}

LANDING_ASSETS: list[dg.AssetsDefinition] = [_landing_asset(x, _DESCRIPTIONS[x.target.name]) for x in LANDINGS]
