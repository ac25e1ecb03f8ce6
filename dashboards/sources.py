"""The dashboard's reads of the lake, through the lake client ``resources.lake.Lake`` only.

The big table, gold ``execution_costs`` (a million rows and more), is queried with DuckDB
over its pyarrow dataset, so the source and time filters and the column list are pushed
down to the Parquet files and only what a page needs is materialised. Every other table is
small and read with Polars. Nothing here writes: a table that does not exist yet reads as an
empty frame of its schema (``Lake.dataset`` would create it, so it is only called on
tables that exist).
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import polars as pl

from resources.lake import Lake
from resources.schemas import EXECUTION_COSTS, TableSpec

# Columns of execution_costs the money views need (HUD, margins, decomposition).
MONEY_COLUMNS = (
    "finished_at",
    "provider_id",
    "effect_type",
    "status",
    "selection",
    "tokens_charged",
    "cost_tokens",
    "revenue_usd",
    "cost_usd",
    "cache_hit",
    "saved_cost_usd",
)
# The hourly cube: every chart over time is drawn from it (a few thousand rows per year of
# history per provider × effect type, whatever the execution volume).
CUBE_KEYS = ("hour", "provider_id", "effect_type", "selection", "status")


def optional_spec(layer: str, name: str) -> TableSpec:
    """A spec for a table ``resources.schemas`` does not declare yet (signals, alerts…): no
    schema, so it can only be checked for existence and scanned as it is."""
    return TableSpec(layer, name, pl.Schema(), ())


class LakeReader:
    """Read-only views of one lake for the dashboard pages.

    Args:
        lake: the lake client (``Lake(uri=Settings().lake_uri)``).
    """

    def __init__(self, lake: Lake):
        self.lake = lake

    # -- metadata -------------------------------------------------------------------------
    def version(self, spec: TableSpec) -> int:
        """Delta version of ``spec``'s table (-1 when absent): the cache key of every view
        built from it, so a page shows new data as soon as a job commits it."""
        return self.lake.version(spec)

    def exists(self, spec: TableSpec) -> bool:
        """True when the table exists."""
        return self.lake.exists(spec)

    # -- small tables ---------------------------------------------------------------------
    def table(self, spec: TableSpec, where: pl.Expr | None = None) -> pl.DataFrame:
        """The whole table (optionally filtered); empty with the schema when absent."""
        return self.lake.read(spec, where)

    def optional_table(self, layer: str, name: str) -> pl.DataFrame | None:
        """An undeclared table as it is, or None when it does not exist."""
        spec = optional_spec(layer, name)
        if not self.lake.exists(spec):
            return None
        return self.lake.scan(spec).collect()

    # -- execution_costs through DuckDB ---------------------------------------------------
    def _query(self, sql: str, params: list) -> pl.DataFrame | None:
        """Run ``sql`` over ``costs`` (the execution_costs dataset); None when the table
        does not exist."""
        if not self.lake.exists(EXECUTION_COSTS):
            return None
        con = duckdb.connect()
        try:
            con.execute("SET TimeZone = 'UTC'")  # timestamps stay UTC on the way out
            con.register("costs", self.lake.dataset(EXECUTION_COSTS))
            return con.sql(sql, params=params).pl()
        finally:
            con.close()

    def _columns(self) -> set[str]:
        """Columns of the stored execution_costs (a table costed before a column was declared
        lacks it until the next cycle writes)."""
        return set(self.lake.dataset(EXECUTION_COSTS).schema.names) if self.lake.exists(EXECUTION_COSTS) else set()

    def _cache_sql(self) -> tuple[str, str]:
        """SQL of (is this row a cache hit, its saved cost) over ``costs``: constants on a
        table costed before cache hits were."""
        have = self._columns()
        hit = "coalesce(cache_hit, false)" if "cache_hit" in have else "false"
        saved = "saved_cost_usd" if "saved_cost_usd" in have else "CAST(NULL AS DOUBLE)"
        return hit, saved

    def costs(
        self,
        source: str,
        start: datetime | None = None,
        end: datetime | None = None,
        columns: tuple[str, ...] = MONEY_COLUMNS,
        where: dict[str, str] | None = None,
        limit: int | None = None,
    ) -> pl.DataFrame:
        """Rows of execution_costs of one ``source`` ('real' / 'simulated').

        Args:
            start, end: keep ``start < finished_at ≤ end`` (the marginality windows'
                half-open convention); None = unbounded.
            columns: columns to return (names of the execution_costs schema).
            where: extra equality filters, column → value (e.g. provider_id).
            limit: at most this many rows, newest first (None = all, unordered).
        """
        cols = [c for c in columns if c in EXECUTION_COSTS.schema]
        stored = self._columns()
        # A declared column the stored table does not have yet reads as typed nulls.
        select = [c if c in stored else f"NULL AS {c}" for c in cols]
        clauses, params = ["source = ?"], [source]
        if start is not None:
            clauses.append("finished_at > ?")
            params.append(start)
        if end is not None:
            clauses.append("finished_at <= ?")
            params.append(end)
        for col, value in (where or {}).items():
            if col not in EXECUTION_COSTS.schema:
                raise ValueError(f"execution_costs has no column {col!r}")
            clauses.append(f'"{col}" = ?')
            params.append(value)
        sql = f"SELECT {', '.join(select)} FROM costs WHERE {' AND '.join(clauses)}"
        if limit is not None:
            sql += f" ORDER BY finished_at DESC LIMIT {int(limit)}"
        out = self._query(sql, params)
        empty = pl.DataFrame(schema={c: EXECUTION_COSTS.schema[c] for c in cols})
        return empty if out is None or out.is_empty() else out.cast({c: empty.schema[c] for c in cols})

    def hourly_cube(self, source: str) -> pl.DataFrame:
        """execution_costs of ``source`` summed per hour × provider × effect type ×
        selection × status.

        Returns:
            hour (UTC, start of the hour), provider_id, effect_type, selection, status,
            executions (provider executions), cache_hits (effect runs served from the result
            cache: charged, no cost), saved_cost_usd (what those hits' outputs cost to make),
            tokens_charged, cost_tokens, revenue_usd, cost_usd, duration_ms (sum, for means),
            sorted by hour.
        """
        if not self.lake.exists(EXECUTION_COSTS):
            out = None
        else:
            hit, saved = self._cache_sql()
            out = self._query(
                f"""SELECT date_trunc('hour', finished_at) AS hour, provider_id, effect_type, selection, status,
                          count(*) FILTER (WHERE NOT {hit}) AS executions, count(*) FILTER (WHERE {hit}) AS cache_hits,
                          coalesce(sum({saved}), 0) AS saved_cost_usd, sum(tokens_charged) AS tokens_charged,
                          sum(cost_tokens) AS cost_tokens, sum(revenue_usd) AS revenue_usd,
                          sum(cost_usd) AS cost_usd, sum(duration_ms) AS duration_ms
                   FROM costs WHERE source = ? GROUP BY ALL ORDER BY hour""",
                [source],
            )
        schema = {
            "hour": EXECUTION_COSTS.schema["finished_at"],
            "provider_id": pl.String,
            "effect_type": pl.String,
            "selection": pl.String,
            "status": pl.String,
            "executions": pl.Int64,
            "cache_hits": pl.Int64,
            "saved_cost_usd": pl.Float64,
            "tokens_charged": pl.Int64,
            "cost_tokens": pl.Float64,
            "revenue_usd": pl.Float64,
            "cost_usd": pl.Float64,
            "duration_ms": pl.Float64,
        }
        if out is None or out.is_empty():
            return pl.DataFrame(schema=schema)
        return out.cast(schema)

    def job_kind_totals(self, source: str, start: datetime, end: datetime) -> pl.DataFrame:
        """execution_costs of ``source`` with ``start < finished_at ≤ end`` summed per job
        kind (``creation`` | ``run``; a table costed before the column existed is all
        creation).

        Returns:
            job_kind, executions (provider executions), cache_hits, saved_cost_usd,
            tokens_charged, cost_tokens, revenue_usd, cost_usd.
        """
        schema = {
            "job_kind": pl.String,
            "executions": pl.Int64,
            "cache_hits": pl.Int64,
            "saved_cost_usd": pl.Float64,
            "tokens_charged": pl.Int64,
            "cost_tokens": pl.Float64,
            "revenue_usd": pl.Float64,
            "cost_usd": pl.Float64,
        }
        if not self.lake.exists(EXECUTION_COSTS):
            return pl.DataFrame(schema=schema)
        kind = "coalesce(job_kind, 'creation')" if "job_kind" in self._columns() else "'creation'"
        hit, saved = self._cache_sql()
        out = self._query(
            f"""SELECT {kind} AS job_kind, count(*) FILTER (WHERE NOT {hit}) AS executions,
                       count(*) FILTER (WHERE {hit}) AS cache_hits, coalesce(sum({saved}), 0) AS saved_cost_usd,
                       sum(tokens_charged) AS tokens_charged, sum(cost_tokens) AS cost_tokens,
                       sum(revenue_usd) AS revenue_usd, sum(cost_usd) AS cost_usd
                FROM costs WHERE source = ? AND finished_at > ? AND finished_at <= ? GROUP BY ALL""",
            [source, start, end],
        )
        if out is None or out.is_empty():
            return pl.DataFrame(schema=schema)
        return out.cast(schema)

    def span(self, source: str) -> tuple[datetime | None, datetime | None]:
        """First and last ``finished_at`` of ``source`` (None, None when it has none)."""
        out = self._query("SELECT min(finished_at) AS lo, max(finished_at) AS hi FROM costs WHERE source = ?", [source])
        if out is None or out.is_empty():
            return None, None
        return out["lo"][0], out["hi"][0]
