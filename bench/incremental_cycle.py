"""The incremental economics cycle: its time should follow the new events, not the history.

Usage: ``python bench/incremental_cycle.py [--days 20,60,180] [--per-day 50000] [--new 10000]``.
For each history length D: simulate D days at a fixed ``--per-day`` volume (so history grows,
the traffic does not: 1M, 3M, 9M executions by default) ending 15 minutes ago, cost them
once (full, not timed), then add ``--new`` executions in the last 15 minutes and time what one
15-minute cycle does: incremental ``execution_costs`` (upsert) →
marginality windows (reads 7 days) → routing stats (reads 24 h). All sizes run in one
invocation, one after the other.
"""

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta

import polars as pl
from deltalake import write_deltalake

from assets.gold.economics import LEDGER_LOOKBACK, _execution_costs_since
from economics.marginality import marginality_windows
from economics.simulator import execution_events, reference_market, simulate
from economics.stats import provider_stats
from resources.catalog import Catalog
from resources.lake import Lake
from resources.schemas import EXECUTION_COSTS, EXECUTION_EVENTS, QUALITY_SCORES, conform
from resources.settings import get_settings


def _write_events(lake: Lake, rows: pl.DataFrame) -> None:
    """Append in time order, one commit per simulated day: production appends events as they
    happen, so each file covers a short time range and file statistics can prune by time."""
    lake.ensure(EXECUTION_EVENTS)
    rows = rows.sort("finished_at")
    for _, day in rows.group_by(pl.col("finished_at").dt.date(), maintain_order=True):
        events = conform(execution_events(day), EXECUTION_EVENTS)
        write_deltalake(lake.table_uri(EXECUTION_EVENTS), events.to_arrow(), mode="append")


def one_size(days: int, per_day: int, new: int, seed: int) -> dict:
    settings = get_settings()
    catalog, now = Catalog(data_dir=settings.data_dir), datetime.now(UTC)
    with tempfile.TemporaryDirectory() as root:
        lake = Lake(uri=root)
        start = now - timedelta(days=days)
        hours = days * 24 - 0.25
        history = days * per_day
        _write_events(lake, simulate(reference_market(start), start, hours, per_day / 24 / 1.25, seed=seed))
        initial = _execution_costs_since(lake, catalog, 0.01, None).sort("finished_at")
        lake.ensure(EXECUTION_COSTS)
        for _, day in initial.group_by(pl.col("finished_at").dt.date(), maintain_order=True):
            write_deltalake(lake.table_uri(EXECUTION_COSTS), conform(day, EXECUTION_COSTS).to_arrow(), mode="append")
        recent_start = now - timedelta(minutes=15)
        _write_events(
            lake, simulate(reference_market(start), recent_start, 0.25, new / 0.25 / 1.25, seed=seed + 1, run_id="new")
        )
        t = time.perf_counter()
        watermark = lake.column_max(EXECUTION_COSTS, "finished_at")
        costs = _execution_costs_since(lake, catalog, 0.01, watermark)
        metrics = lake.upsert(EXECUTION_COSTS, costs, recent=("finished_at", watermark - LEDGER_LOOKBACK))
        t_costs = time.perf_counter() - t
        windows = marginality_windows(lake.read(EXECUTION_COSTS, pl.col("finished_at") > now - timedelta(days=7)), now)
        stats = provider_stats(
            lake.read(EXECUTION_COSTS, pl.col("finished_at") >= now - timedelta(hours=24)),
            pl.DataFrame(schema=QUALITY_SCORES.schema),
        )
        total = time.perf_counter() - t
        return {
            "history": history,
            "costed": costs.height,
            "costs_s": t_costs,
            "cycle_s": total,
            "windows": windows.height,
            "stats": stats.height,
            "files_scanned": metrics.get("num_target_files_scanned"),
            "files_skipped": metrics.get("num_target_files_skipped_during_scan"),
        }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", default="20,60,180")
    ap.add_argument("--per-day", type=int, default=50_000)
    ap.add_argument("--new", type=int, default=10_000)
    args = ap.parse_args()
    print(f"{'history':>10} {'costed':>8} {'costs s':>8} {'cycle s':>8} {'files scanned/skipped':>22}")
    for i, d in enumerate(int(x) for x in args.days.split(",")):
        r = one_size(d, args.per_day, args.new, seed=10 + i)
        print(
            f"{r['history']:>10,} {r['costed']:>8,} {r['costs_s']:>8.2f} {r['cycle_s']:>8.2f} "
            f"{r['files_scanned']!s:>10}/{r['files_skipped']!s:<10}"
        )


if __name__ == "__main__":
    main()
