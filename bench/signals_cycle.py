"""One signals cycle over N simulated executions vs the floor: a bare DuckDB scan of the same
Delta table grouped per 5-minute bucket.

Usage: ``python bench/signals_cycle.py [N] [--dir D]`` (default 1,000,000 into a temp dir; run
10,000,000 once at most — it needs several GB).
1. prepare: simulate N executions over the detectors' 3-day history ending on the hour
   (``economics.simulator.reference_market``, as bench/economics_cycle.py builds its data) and
   write them as ``execution_events`` and their ``execution_costs`` (setup, not timed);
2. cycle:   what signals_job computes from those tables — terminal events (read and one row
   per task) → metric streams → stage 1 (every detector, Holt-Winters included: 3 days of
   history) → stage 2 (evidence, classification) — with each part's time;
3. floor:   DuckDB ``GROUP BY provider_id, effect_type, 5-minute bucket`` with count and
   quantile of ``duration_ms`` over the same events' pyarrow dataset (the least a streams
   computation must do: read every row once and group it by stream and bucket).
Steps 2 and 3 each run in a fresh child process (floors.child), one after the other in the
same invocation: side by side, same machine state.
"""

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

HISTORY_HOURS = 72
CHUNK = 1_000_000


def prepare(n: int, root: str) -> None:
    import json

    from deltalake import write_deltalake

    from economics.cost_model import cost_frame
    from economics.simulator import execution_events, reference_market, simulate
    from resources.clients import Clients
    from resources.lake import Lake
    from resources.schemas import EXECUTION_COSTS, EXECUTION_EVENTS, conform
    from resources.settings import get_settings

    settings = get_settings()
    catalog = Clients.from_settings(settings).catalog
    lake = Lake(uri=root)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(hours=HISTORY_HOURS)
    # The reference market adds a shadow copy to a quarter of the jobs: 1.25 rows per job.
    rows = simulate(reference_market(start), start, HISTORY_HOURS, n / HISTORY_HOURS / 1.25, seed=1)
    for i in range(0, rows.height, CHUNK):
        part = rows.slice(i, CHUNK)
        write_deltalake(
            lake.table_uri(EXECUTION_EVENTS),
            conform(execution_events(part), EXECUTION_EVENTS).to_arrow(),
            mode="append",
        )
        costs = cost_frame(part, catalog.rate_card(), catalog.prices(), settings.token_usd_rate, breakdown=True)
        costs = costs.drop("composite")
        write_deltalake(lake.table_uri(EXECUTION_COSTS), conform(costs, EXECUTION_COSTS).to_arrow(), mode="append")
    Path(root, "now.txt").write_text(end.isoformat())
    print(json.dumps({"prepared_rows": rows.height}))


def cycle(root: str) -> None:
    import polars as pl
    from floors import report

    from economics.bottlenecks import CLASSIFICATION_SCHEMA, EVIDENCE_WINDOW, classify, evidence_for
    from economics.metric_streams import EXECUTION_COLUMNS, metric_streams
    from economics.signal_detection import Policy, detect, history_start
    from economics.telemetry import finished_executions
    from resources.lake import Lake
    from resources.schemas import EXECUTION_COSTS, EXECUTION_EVENTS, LEDGER_ENTRIES
    from resources.settings import get_settings

    now = datetime.fromisoformat(Path(root, "now.txt").read_text())
    policy = Policy()
    t = time.perf_counter()
    lake = Lake(uri=root)
    since = history_start(now, policy)
    identity = ("task_id", "provider_id", "effect_type", "finished_at")
    events = lake.scan(EXECUTION_EVENTS).filter(pl.col("occurred_at") >= since)
    executions = finished_executions(events, columns=tuple(c for c in EXECUTION_COLUMNS if c not in identity))
    costs = lake.read(EXECUTION_COSTS, pl.col("finished_at") >= since)
    ledger = lake.read(LEDGER_ENTRIES)
    t_read = time.perf_counter()
    streams = metric_streams(executions, costs, ledger)
    t_streams = time.perf_counter()
    found = detect(streams, now, policy)
    t_detect = time.perf_counter()
    previous = pl.DataFrame(schema=CLASSIFICATION_SCHEMA)
    recent = streams.filter(pl.col("bucket_start") > now - EVIDENCE_WINDOW)
    rows = classify(evidence_for(found, recent, now, previous), {}, previous, now, get_settings().token_usd_rate)
    t_classify = time.perf_counter()
    report(
        "cycle",
        t,
        rows=executions.height,
        series=int(streams.select(pl.col("stream").n_unique()).item()),
        signals=found.height,
        classifications=rows.height,
        read_s=round(t_read - t, 2),
        streams_s=round(t_streams - t_read, 2),
        detect_s=round(t_detect - t_streams, 2),
        classify_s=round(t_classify - t_detect, 2),
    )


def floor(root: str) -> None:
    import duckdb
    from floors import report

    from resources.lake import Lake
    from resources.schemas import EXECUTION_EVENTS

    t = time.perf_counter()
    events = Lake(uri=root).dataset(EXECUTION_EVENTS)  # noqa: F841 (read by duckdb)
    out = duckdb.sql(
        "SELECT provider_id, effect_type, time_bucket(INTERVAL 5 MINUTE, occurred_at) AS b, count(*) AS n, "
        "quantile_cont(duration_ms, 0.95) AS p95 FROM events GROUP BY ALL"
    ).fetchall()
    report("floor", t, groups=len(out), rows=sum(r[3] for r in out))


def main() -> None:
    from floors import child

    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=1_000_000)
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
        floor_r, cycle_r = child(__file__, "floor", f"--dir={root}"), child(__file__, "cycle", f"--dir={root}")
        print(
            f"floor (DuckDB 5-minute group-by scan): {floor_r['wall_s']:.2f} s, "
            f"peak {floor_r['peak_rss_gb']:.2f} GB, rows {floor_r['rows']:,}"
        )
        print(
            f"signals cycle:                         {cycle_r['wall_s']:.2f} s, "
            f"peak {cycle_r['peak_rss_gb']:.2f} GB, rows {cycle_r['rows']:,} "
            f"(read and dedupe {cycle_r['read_s']:.2f} s, streams {cycle_r['streams_s']:.2f} s, "
            f"detectors {cycle_r['detect_s']:.2f} s on "
            f"{cycle_r['series']} streams, classifier {cycle_r['classify_s']:.2f} s)"
        )
        print(
            f"ratio cycle / floor: {cycle_r['wall_s'] / floor_r['wall_s']:.1f}x wall, "
            f"{cycle_r['peak_rss_gb'] / floor_r['peak_rss_gb']:.1f}x memory; "
            f"read + streams {(cycle_r['read_s'] + cycle_r['streams_s']) / floor_r['wall_s']:.1f}x"
        )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
