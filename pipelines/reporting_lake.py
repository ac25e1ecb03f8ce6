"""The lake as Dagster runs use it: a write to a table that is not the running asset's own
(a stage appending to a bronze table: events, ledger entries, notifications) is reported as a
materialization of that table's asset, so the bronze asset's history shows which run
appended how many rows.

Reporting happens here, once, rather than beside every append in the stages, so no stage can
forget it. The running asset is found with ``AssetExecutionContext.get()``, Dagster's public
accessor for the context of the step in progress; outside an asset step (sensors, asset
checks, the API, worker threads) nothing is reported.

A reported event reaches the event log when the step yields or returns; a step that fails
after appending reports nothing for that append. The sensors therefore trigger on the
tables' Delta versions, not on these events.
"""

from __future__ import annotations

import dagster as dg
import polars as pl

from assets.lineage import table_key
from resources.dagster_resources import LakeResource
from resources.lake import Lake
from resources.schemas import TableSpec


def _running_asset() -> dg.AssetExecutionContext | None:
    try:
        return dg.AssetExecutionContext.get()
    except dg.DagsterInvariantViolationError:  # no asset step in progress
        return None


def report_write(spec: TableSpec, rows: int) -> None:
    """Log an ``AssetMaterialization`` of ``spec``'s table (metadata ``rows``: rows written)
    when an asset step other than the table's own asset is running and ``rows`` > 0."""
    context = _running_asset()
    if context is None or rows <= 0:
        return
    key = table_key(spec)
    if key in context.assets_def.keys:
        return  # the asset's own table: its output or MaterializeResult reports it
    context.log_event(dg.AssetMaterialization(asset_key=key, metadata={"rows": rows}))


class RunReportingLake(Lake):
    """The lake client whose writes into another asset's table are reported (see module
    docstring); reads and the writes themselves are unchanged."""

    def append(self, spec: TableSpec, df: pl.DataFrame) -> int:
        inserted = super().append(spec, df)
        report_write(spec, inserted)
        return inserted

    def upsert(self, spec: TableSpec, df: pl.DataFrame, recent=None) -> dict:
        metrics = super().upsert(spec, df, recent)
        report_write(
            spec, int(metrics.get("num_target_rows_inserted", 0)) + int(metrics.get("num_target_rows_updated", 0))
        )
        return metrics

    def overwrite(self, spec: TableSpec, df: pl.DataFrame) -> None:
        super().overwrite(spec, df)
        report_write(spec, df.height)


class RunReportingLakeResource(LakeResource):
    """The ``lake`` resource of the Definitions: hands runs a ``RunReportingLake``."""

    def create_resource(self, context: dg.InitResourceContext) -> Lake:
        return RunReportingLake(uri=self.uri, storage_options=self.storage_options)
