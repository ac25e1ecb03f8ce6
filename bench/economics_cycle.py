"""The economics cycle over N simulated executions vs the floor: a bare DuckDB group-by scan
of the same Delta table.

Usage: ``python bench/economics_cycle.py [N] [--dir D]`` (default 10,000,000 into a temp dir).
1. prepare: simulate N executions (economics.simulator.reference_market) and write them as
   ``execution_events`` to a Delta table (setup, not timed);
2. cycle:   what the economics job computes — terminal events → execution costs →
   marginality windows → provider stats → routing manifest — from that table;
3. floor:   DuckDB ``GROUP BY provider_id, effect_type`` with count and a sum of
   ``compute_seconds`` over the same table's pyarrow dataset (the least any cycle must do:
   read every row once).
Steps 2 and 3 each run in a fresh child process, so wall time and peak RSS are their own;
they run one after the other in the same invocation (side by side, same machine state).
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path


def prepare(n: int, root: str) -> None:
    from deltalake import write_deltalake

    from economics.simulator import execution_events, reference_market, simulate
    from resources.lake import Lake
    from resources.schemas import EXECUTION_EVENTS, conform

    lake = Lake(uri=root)
    start = datetime.now(UTC) - timedelta(days=7)
    rows = simulate(reference_market(start), start, 7 * 24, n / (7 * 24) / 1.25, seed=1)
    uri = lake.table_uri(EXECUTION_EVENTS)
    for i in range(0, rows.height, 1_000_000):
        events = conform(execution_events(rows.slice(i, 1_000_000)), EXECUTION_EVENTS)
        write_deltalake(uri, events.to_arrow(), mode="append")  # fresh table: plain appends
    print(json.dumps({"prepared_rows": rows.height}))


def cycle(root: str) -> None:
    import polars as pl

    from economics.cost_model import cost_frame
    from economics.cycle import windows_and_stats
    from economics.routing import build_manifest
    from economics.telemetry import latest_outcomes
    from resources.clients import Clients
    from resources.lake import Lake
    from resources.schemas import EXECUTION_EVENTS
    from resources.settings import get_settings

    t = time.perf_counter()
    settings = get_settings()
    clients = Clients.from_settings(settings)
    lake, catalog = Lake(uri=root), clients.catalog
    executions = latest_outcomes(lake.scan(EXECUTION_EVENTS))
    costs = cost_frame(executions, catalog.rate_card(), catalog.prices(), settings.token_usd_rate)
    now = datetime.now(UTC)
    windows, stats = windows_and_stats(
        costs,
        now,
        pl.DataFrame(
            schema={"provider_id": pl.String, "effect_type": pl.String, "status": pl.String, "composite": pl.Float64}
        ),
    )
    build_manifest(stats, clients.providers.registry().active_by_effect(), now)
    _report("cycle", t, rows=int(stats["executions"].sum()), windows=windows.height)


def floor(root: str) -> None:
    import duckdb

    from resources.lake import Lake
    from resources.schemas import EXECUTION_EVENTS

    t = time.perf_counter()
    events = Lake(uri=root).dataset(EXECUTION_EVENTS)  # noqa: F841 (read by duckdb)
    out = duckdb.sql(
        "SELECT provider_id, effect_type, count(*) AS n, sum(compute_seconds) AS s FROM events GROUP BY ALL"
    ).fetchall()
    _report("floor", t, groups=len(out), rows=sum(r[2] for r in out))


def _peak_rss_kb() -> int:
    # VmHWM: this process's own high-water mark. Not getrusage's ru_maxrss, which a child
    # inherits from its parent at exec (Linux keeps the larger of the two), so a child
    # started by a parent holding the prepared rows would report the parent's size.
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


def _report(step: str, started: float, **extra) -> None:
    print(
        json.dumps(
            {
                "step": step,
                "wall_s": round(time.perf_counter() - started, 2),
                "peak_rss_gb": round(_peak_rss_kb() / 1e6, 2),
                **extra,
            }
        )
    )


def _child(step: str, root: str) -> dict:
    out = (
        subprocess.run(
            [sys.executable, __file__, f"--step={step}", f"--dir={root}"], capture_output=True, text=True, check=True
        )
        .stdout.strip()
        .splitlines()
    )
    return json.loads(out[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=10_000_000)
    ap.add_argument("--dir")
    ap.add_argument("--step", choices=["prepare", "cycle", "floor"])
    args = ap.parse_args()
    if args.step:
        {
            "cycle": lambda: cycle(args.dir),
            "floor": lambda: floor(args.dir),
            "prepare": lambda: prepare(args.n, args.dir),
        }[args.step]()
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = args.dir or tmp
        if not Path(root, "bronze", "execution_events").exists():
            t = time.perf_counter()
            prepare(args.n, root)
            print(f"prepare: {time.perf_counter() - t:.1f} s (not part of the comparison)")
        floor_r, cycle_r = _child("floor", root), _child("cycle", root)
        print(
            f"floor (DuckDB group-by scan): {floor_r['wall_s']:.2f} s, "
            f"peak {floor_r['peak_rss_gb']:.2f} GB, rows {floor_r['rows']:,}"
        )
        print(
            f"economics cycle:              {cycle_r['wall_s']:.2f} s, "
            f"peak {cycle_r['peak_rss_gb']:.2f} GB, rows {cycle_r['rows']:,}"
        )
        print(
            f"ratio cycle / floor: {cycle_r['wall_s'] / floor_r['wall_s']:.1f}x wall, "
            f"{cycle_r['peak_rss_gb'] / floor_r['peak_rss_gb']:.1f}x memory"
        )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
