"""The lake client: every Delta table under one root URI (local dir or ``s3://``).

A plain pydantic model, so the API and the dashboard read tables without Dagster; the Dagster
resource that hands it to assets is ``resources.dagster_resources.LakeResource``. No other
module builds a table path. Bronze tables are appended here with deltalake's own
merge (insert-if-key-absent), because the Delta IO manager can neither merge nor evolve a
schema (docs/architecture.md, "Known pitfalls", dagster-io/dagster#32644); silver tables are written by the
dagster-deltalake-polars IO manager rooted at the same URI, and gold tables are overwritten
here each economics cycle.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pyarrow.dataset as pads
from deltalake import DeltaTable, write_deltalake
from pydantic import BaseModel, ConfigDict, Field

from resources.retry import commit_conflicts
from resources.schemas import ALL_TABLES, TableSpec, conform

# Concurrent runs append to the same bronze tables; delta-rs resolves conflicts optimistically,
# so a losing writer retries. Ten tries with jittered backoff covers the handful of parallel
# runs a 2-core machine (or a small run queue) produces.
_COMMIT_RETRIES = 10


def _is_url(uri: str) -> bool:
    return "://" in uri


class Lake(BaseModel):
    """Delta tables rooted at ``uri``.

    Attributes:
        uri: lake root: a local directory (relative paths resolve against the current working
            directory) or ``s3://bucket/prefix``.
        storage_options: passed to delta-rs for object stores (e.g. ``AWS_ENDPOINT_URL``,
            ``conditional_put``; docs/architecture.md ("Known pitfalls") notes S3-compatible servers need them).
    """

    # Frozen like the Dagster resource it replaces: a client shared by threads never changes.
    model_config = ConfigDict(frozen=True)

    uri: str
    storage_options: dict[str, str] = Field(default_factory=dict)

    # -- paths ----------------------------------------------------------------------------
    @property
    def root(self) -> str:
        """The lake root, absolute for local paths (the IO manager is rooted here too)."""
        if _is_url(self.uri):
            return self.uri.rstrip("/")
        return str(Path(self.uri).resolve())

    def table_uri(self, spec: TableSpec) -> str:
        """URI of ``spec``'s table: ``<root>/<layer>/<name>`` (the IO manager's layout)."""
        return f"{self.root}/{spec.path}"

    def _options(self) -> dict[str, str] | None:
        return dict(self.storage_options) or None

    # -- lifecycle ------------------------------------------------------------------------
    def exists(self, spec: TableSpec) -> bool:
        """True when the Delta table has been created."""
        return DeltaTable.is_deltatable(self.table_uri(spec), storage_options=self._options())

    def ensure(self, spec: TableSpec) -> None:
        """Create ``spec``'s table empty, with its schema and partitioning, if absent.

        Partition-scoped overwrites only work once a table exists, so tables are created
        before runs can go parallel (docs/architecture.md, "Known pitfalls").
        """
        if self.exists(spec):
            return
        schema = pl.DataFrame(schema=spec.schema).to_arrow().schema
        self._retry(
            lambda: DeltaTable.create(
                self.table_uri(spec),
                schema=schema,
                partition_by=[spec.partition_by] if spec.partition_by else None,
                mode="ignore",
                storage_options=self._options(),
            )
        )

    def ensure_all(self) -> None:
        """Create every declared table that does not exist yet."""
        for spec in ALL_TABLES:
            self.ensure(spec)

    def version(self, spec: TableSpec) -> int:
        """Current Delta version of the table, -1 when it does not exist (sensor cursors)."""
        if not self.exists(spec):
            return -1
        return DeltaTable(self.table_uri(spec), storage_options=self._options()).version()

    def column_max(self, spec: TableSpec, column: str):
        """Largest value of ``column`` from the Delta log's per-file statistics: O(files),
        no data read (None for an empty or missing table). Delta truncates timestamp stats
        to milliseconds, so a timestamp max may read up to 1 ms low; files without stats
        fall back to a column scan."""
        if not self.exists(spec):
            return None
        dt = DeltaTable(self.table_uri(spec), storage_options=self._options())
        actions = pl.DataFrame(dt.get_add_actions(flatten=True))
        stat = f"max.{column}"
        if actions.is_empty():
            return None
        if stat not in actions.columns or actions[stat].null_count():
            return self.scan(spec).select(pl.col(column).max()).collect().item()
        return actions[stat].max()

    # -- reads ----------------------------------------------------------------------------
    def scan(self, spec: TableSpec) -> pl.LazyFrame:
        """Lazy scan of the whole table as of now (its current version: a plan collected
        twice, as ``economics.telemetry.latest_outcomes`` does, reads the same rows both
        times while other runs append); an empty frame of the schema if it does not exist."""
        if not self.exists(spec):
            return pl.LazyFrame(schema=spec.schema)
        return pl.scan_delta(DeltaTable(self.table_uri(spec), storage_options=self._options()))

    def read(self, spec: TableSpec, where: pl.Expr | None = None) -> pl.DataFrame:
        """Collect the table (optionally filtered) as a DataFrame."""
        lf = self.scan(spec)
        if where is not None:
            lf = lf.filter(where)
        return lf.collect()

    def dataset(self, spec: TableSpec) -> pads.Dataset:
        """A pyarrow dataset of the table, for DuckDB (its delta extension is unavailable
        offline, docs/architecture.md, "Known pitfalls"). The table is created first if missing."""
        self.ensure(spec)
        dt = DeltaTable(self.table_uri(spec), storage_options=self._options())
        return dt.to_pyarrow_dataset()

    # -- writes ---------------------------------------------------------------------------
    def append(self, spec: TableSpec, df: pl.DataFrame) -> int:
        """Insert the rows of ``df`` whose key is not in the table yet; return how many.

        Idempotent: appending the same rows twice inserts them once. Rows are conformed to
        the schema (see ``resources.schemas.conform``); duplicate keys within ``df`` keep the
        first row.
        """
        if df.is_empty():
            return 0
        self.ensure(spec)
        rows = conform(df, spec).unique(subset=list(spec.key), keep="first", maintain_order=True)
        predicate = " AND ".join(f"t.{k} = s.{k}" for k in spec.key)

        def merge() -> int:
            dt = DeltaTable(self.table_uri(spec), storage_options=self._options())
            # merge_schema: a column added to a bronze table's declared schema joins the
            # table; without it delta-rs silently drops the new column's values.
            metrics = (
                dt.merge(
                    source=rows.to_arrow(), predicate=predicate, source_alias="s", target_alias="t", merge_schema=True
                )
                .when_not_matched_insert_all()
                .execute()
            )
            return int(metrics["num_target_rows_inserted"])

        return self._retry(merge)

    def upsert(self, spec: TableSpec, df: pl.DataFrame, recent: tuple[str, datetime] | None = None) -> dict:
        """Insert ``df``'s rows, replacing rows with the same key (gold tables maintained
        incrementally).

        Args:
            recent: ``(column, since)``: every row ``df`` can replace has ``column > since``;
                the merge predicate says so, letting delta-rs skip older files by their
                statistics, so an upsert costs what is recent, not the whole history.

        Returns:
            delta-rs merge metrics (rows updated / inserted, files scanned / skipped).
        """
        if df.is_empty():
            return {}
        self.ensure(spec)
        rows = conform(df, spec).unique(subset=list(spec.key), keep="last", maintain_order=True)
        predicate = " AND ".join(f"t.{k} = s.{k}" for k in spec.key)
        if recent is not None:
            column, since = recent
            predicate += f" AND t.{column} > '{since.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}'"

        def merge() -> dict:
            dt = DeltaTable(self.table_uri(spec), storage_options=self._options())
            # merge_schema: a column added to a gold table's declared schema joins the table.
            return (
                dt.merge(
                    source=rows.to_arrow(), predicate=predicate, source_alias="s", target_alias="t", merge_schema=True
                )
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute()
            )

        return self._retry(merge)

    def overwrite(self, spec: TableSpec, df: pl.DataFrame) -> None:
        """Replace the whole table with ``df`` (gold tables, rebuilt each cycle). The schema
        is replaced too, so a gold table follows its declared schema as it evolves."""
        self.ensure(spec)
        data = conform(df, spec).to_arrow()
        self._retry(
            lambda: write_deltalake(
                self.table_uri(spec),
                data,
                mode="overwrite",
                schema_mode="overwrite",
                storage_options=self._options(),
            )
        )

    @staticmethod
    def _retry(fn):
        return commit_conflicts(_COMMIT_RETRIES)(fn)
