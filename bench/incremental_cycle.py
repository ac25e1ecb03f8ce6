"""The incremental economics cycle: its time should follow the new events, not the history.

Usage: ``python bench/incremental_cycle.py [--sizes 1000000,10000000,30000000,100000000]
[--per-day 500000] [--new 10000] [--cycles 3] [--dir D] [--no-docs]``.

One lake grows to each size in turn, at a fixed traffic of ``--per-day`` executions a day
(so a longer history is more days, not a busier day): its history is simulated one day at a
time backwards from 15 minutes ago (``economics.simulator``; one Delta commit per day for the
events and one for their costs, as production appends them as they happen, so each file
covers about a day and file statistics can prune by time), costed once (setup, not timed).
At each size, ``--cycles`` times, ``--new`` executions finish in the last 15 minutes and one
15-minute cycle of the economics job is timed, step by step as its assets run them
(assets/gold/economics.py; medians reported):

- ``costs``: the incremental ``execution_costs`` — the watermark from the Delta log's file
  statistics, the terminal events since it (minus the late margin) with the registry's cost
  profiles (the utilisation of the last 24 h), the upsert by task id;
- ``windows``: ``marginality_windows`` over the last 7 days of costs, streamed;
- ``routing``: ``provider_stats`` over the last 24 h of real executions and the manifest.

The 100 M-row lake is real, not extrapolated: about 11 GB of Parquet under ``--dir``, 5 to 15
minutes to build on this machine depending on its load, at most one simulated day in memory. The table of
docs/performance.md ("Incremental cycle vs history size") is rewritten unless ``--no-docs``.
"""

from __future__ import annotations

import argparse
import math
import platform
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
from deltalake import write_deltalake

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assets.costing import task_costs
from assets.gold.economics import _execution_costs_since, upsert_costs
from economics.marginality import WINDOWS, marginality_windows
from economics.routing import build_manifest
from economics.simulator import execution_events, reference_market, simulate
from economics.stats import provider_stats
from economics.telemetry import REAL, finished_executions
from resources.catalog import Catalog
from resources.lake import Lake
from resources.providers.client import ProviderRegistry
from resources.schemas import EXECUTION_COSTS, EXECUTION_EVENTS, QUALITY_SCORES, TableSpec, conform
from resources.settings import get_settings

TOKEN_USD = 0.01
# The simulator's rate is user jobs per hour; each job also gets its shadow copies (the
# reference market's share of executions per job, measured: 1.25).
EXECUTIONS_PER_JOB = 1.25


class History:
    """The growing lake: ``days`` simulated days ending 15 minutes before ``end``, costed."""

    def __init__(self, lake: Lake, per_day: int, end: datetime, max_days: int):
        self.lake, self.per_day, self.end, self.days = lake, per_day, end, 0
        self.market = reference_market(end - timedelta(days=max_days + 1))
        settings = get_settings()
        self.catalog = Catalog(data_dir=settings.data_dir)
        self.events = 0

    def grow_to(self, days: int) -> None:
        """Add the days before the oldest one until ``days`` are simulated and costed."""
        for d in range(self.days, days):
            start = self.end - timedelta(days=d + 1)
            rows = simulate(self.market, start, 24, self.per_day / 24 / EXECUTIONS_PER_JOB, seed=d, run_id=f"h{d}")
            self._commit(rows)
        self.days = max(self.days, days)

    def add_recent(self, n: int, at: datetime, seed: int) -> int:
        """``n`` executions finishing in the 15 minutes before ``at``, events only (the
        cycle costs them); how many."""
        start = at - timedelta(minutes=15)
        rows = simulate(self.market, start, 0.25, n / 0.25 / EXECUTIONS_PER_JOB, seed=seed, run_id=f"new{seed}")
        self._write(EXECUTION_EVENTS, execution_events(rows))
        self.events += rows.height
        return rows.height

    def _commit(self, rows: pl.DataFrame) -> None:
        events = execution_events(rows)
        self._write(EXECUTION_EVENTS, events)
        self._write(
            EXECUTION_COSTS,
            task_costs(finished_executions(events.lazy()), self.lake, self.catalog, TOKEN_USD, None, self.end),
        )
        self.events += events.height

    def _write(self, spec: TableSpec, rows: pl.DataFrame) -> None:
        # A plain append: the rows are new by construction (distinct run ids). Lake.append's
        # insert-if-absent merge would read the whole table on every commit, which is setup
        # cost here, not part of the cycle measured.
        self.lake.ensure(spec)
        write_deltalake(self.lake.table_uri(spec), conform(rows, spec).to_arrow(), mode="append")


# The per-cycle numbers reported as the median of the cycles run at a size.
TIMED = ("costed", "costs_s", "merge_scan_s", "windows_s", "routing_s", "cycle_s")


def one_cycle(lake: Lake, catalog: Catalog, registry: ProviderRegistry) -> dict:
    """One 15-minute cycle of the economics job's assets; seconds per step and merge metrics."""
    settings = get_settings()
    t0 = time.perf_counter()
    watermark = lake.column_max(EXECUTION_COSTS, "finished_at")
    costs = _execution_costs_since(lake, catalog, TOKEN_USD, watermark, registry.registry().providers)
    metrics = upsert_costs(lake, costs, watermark)
    t1 = time.perf_counter()
    now = datetime.now(UTC)
    week = lake.scan(EXECUTION_COSTS).filter(pl.col("finished_at") > now - max(WINDOWS.values()))
    windows = marginality_windows(week, now)
    t2 = time.perf_counter()
    since = now - timedelta(hours=settings.routing_window_hours)
    real = lake.read(EXECUTION_COSTS, (pl.col("source") == REAL) & (pl.col("finished_at") >= since))
    stats = provider_stats(real, lake.read(QUALITY_SCORES), since=since)
    build_manifest(stats, registry.registry().active_by_effect(), now)
    t3 = time.perf_counter()
    return {
        "costed": costs.height,
        "costs_s": t1 - t0,
        "windows_s": t2 - t1,
        "routing_s": t3 - t2,
        "cycle_s": t3 - t0,
        "windows": windows.height,
        # delta-rs's own account of the merge: time finding the rows it replaces, and the
        # rows of untouched data it rewrote (copy-on-write of the files holding them).
        "merge_scan_s": metrics.get("scan_time_ms", 0) / 1000,
        "rows_rewritten": metrics.get("num_target_rows_copied", 0),
    }


def _table(results: list[dict], per_day: int, new: int, cycles: int) -> str:
    rows = "".join(
        f"| {r['history']:,} | {r['days']} | {r['costed']:,.0f} | {r['costs_s']:.2f} ({r['merge_scan_s']:.2f}) | "
        f"{r['windows_s']:.2f} | {r['routing_s']:.2f} | **{r['cycle_s']:.2f}** | {r['peak_rss_gb']:.2f} |\n"
        for r in results
    )
    return (
        f"`bench/incremental_cycle.py`, {datetime.now(UTC):%Y-%m-%d}, {platform.machine()} shared with other "
        f"work: one lake grown to each size at {per_day:,} executions a day, {new:,} new executions in the "
        f"last 15 minutes before each cycle; seconds per step, the median of {cycles} cycles at each size. "
        "`costs` reads the events since the watermark and upserts their costs (in brackets: the merge's scan "
        "for the rows it replaces); `windows` streams the last 7 days of costs; `routing` reads the last 24 h "
        "of real ones. `costed` counts the events since the watermark minus the hour of late margin: the new "
        "ones, the history's last hour and, as the cycles here run seconds rather than 15 minutes apart, the "
        "earlier cycles' new ones. Peak RSS is the bench process's, growing the lake included.\n\n"
        "| history (events) | days | costed | costs s (merge scan) | windows s | routing s | cycle s | "
        "peak RSS GB |\n|---|---|---|---|---|---|---|---|\n" + rows
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000000,10000000,30000000,100000000")
    ap.add_argument("--per-day", type=int, default=500_000)
    ap.add_argument("--new", type=int, default=10_000)
    ap.add_argument("--dir", help="lake root, absent or empty (default: a temporary directory, removed at the end)")
    ap.add_argument("--cycles", type=int, default=3, help="cycles timed at each size (medians reported)")
    ap.add_argument("--no-docs", action="store_true", help="do not rewrite docs/performance.md")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.dir and Path(args.dir).exists() and any(Path(args.dir).iterdir()):
        ap.error(f"--dir {args.dir} is not empty: the history is grown from nothing")
    settings = get_settings()
    catalog, registry = Catalog(data_dir=settings.data_dir), ProviderRegistry(path=settings.providers_path)
    results = []
    print(f"{'history':>12} {'days':>5} {'costed':>7} {'costs s':>8} {'windows s':>9} {'routing s':>9} {'cycle s':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        lake = Lake(uri=args.dir or tmp)
        days = [math.ceil(s / args.per_day) for s in sizes]
        history = History(lake, args.per_day, datetime.now(UTC) - timedelta(minutes=15), max(days))
        for i, d in enumerate(days):
            t = time.perf_counter()
            history.grow_to(d)
            grown = time.perf_counter() - t
            size = history.events
            runs = []
            for c in range(args.cycles):
                history.add_recent(args.new, datetime.now(UTC), seed=10_000 + 100 * i + c)
                runs.append(one_cycle(lake, catalog, registry))
            r = {"history": size, "days": d, **runs[-1]}
            r.update({k: statistics.median(run[k] for run in runs) for k in TIMED})
            r["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
            results.append(r)
            print(
                f"{r['history']:>12,} {d:>5} {r['costed']:>7,.0f} {r['costs_s']:>8.2f} {r['windows_s']:>9.2f} "
                f"{r['routing_s']:>9.2f} {r['cycle_s']:>8.2f}   (grown in {grown:.0f} s; merge scan "
                f"{r['merge_scan_s']:.2f} s, {r['rows_rewritten']:,} rows rewritten)",
                flush=True,
            )
    if not args.no_docs:
        from floors import write_doc_block

        table = _table(results, args.per_day, args.new, args.cycles)
        write_doc_block(
            "performance.md",
            "incremental-cycle",
            ["## Incremental cycle vs history size", "", *table.strip().splitlines()],
        )


if __name__ == "__main__":
    main()
