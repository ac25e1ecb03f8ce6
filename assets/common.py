"""What every per-video silver asset shares: its partitioning, IO metadata and row helpers."""

from __future__ import annotations

from typing import Any

import dagster as dg
import polars as pl

from assets.partitions import videos
from resources.schemas import TableSpec, conform

SILVER_KW: dict[str, Any] = {
    "key_prefix": ["silver"],
    "partitions_def": videos,
    # The Delta IO manager overwrites exactly this video's partition (predicate on video_id).
    "metadata": {"partition_expr": "video_id"},
    "kinds": {"polars", "deltalake"},
    "io_manager_key": "io_manager",
}


def silver_ins(*names: str) -> dict[str, dg.AssetIn]:
    """``ins`` for upstream silver assets named like the parameters that receive them
    (parameter names alone would resolve to un-prefixed keys)."""
    return {n: dg.AssetIn(key_prefix=["silver"]) for n in names}


def frame(rows: list[dict], spec: TableSpec) -> pl.DataFrame:
    """Rows → a frame conformed to ``spec`` (empty rows give an empty typed frame)."""
    if not rows:
        return pl.DataFrame(schema=spec.schema)
    return conform(pl.DataFrame(rows, infer_schema_length=None), spec)


def only_row(df: pl.DataFrame, what: str) -> dict:
    """The single row of a one-row-per-video frame.

    Raises:
        ValueError: zero or several rows (the partition was not written, or twice).
    """
    if df.height != 1:
        raise ValueError(f"expected one {what} row for this video, found {df.height}")
    return df.row(0, named=True)
