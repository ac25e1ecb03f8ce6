"""One signals cycle over N simulated executions vs the floor: a bare DuckDB scan of the same
Delta table grouped per 5-minute bucket.

Usage: ``python bench/signals_cycle.py [N] [--dir D]`` (default 1,000,000 into a temp dir; run
10,000,000 once at most — it needs several GB).
1. prepare: simulate N executions over the detectors' 3-day history ending on the hour
   (``economics.simulator.reference_market``, as bench/economics_cycle.py builds its data) and
   write them as ``execution_events`` and their ``execution_costs`` (setup, not timed);
2. cycle:   what signals_job computes from those tables (``assets.gold.signals.streams_to_write``,
   the asset's own code) — terminal events (read and one row per task) → metric streams,
   written → stage 1 (every detector, Holt-Winters included: 3 days of streams) → stage 2
   (evidence, classification) — with each part's time; twice: the first cycle (no streams
   written yet: the whole 3-day window) and the next one (incremental: the last hour);
3. floor:   DuckDB ``GROUP BY provider_id, effect_type, 5-minute bucket`` with count and
   quantile of ``duration_ms`` over the same events' pyarrow dataset (the least a streams
   computation must do: read every row once and group it by stream and bucket).
Each cycle and the floor run in a fresh child process (floors.child), one after the other in the
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


def cycle(root: str, incremental: bool = False) -> None:
    import shutil

    import polars as pl
    from floors import report

    from assets.gold.signals import streams_to_write
    from economics.bottlenecks import CLASSIFICATION_SCHEMA, EVIDENCE_WINDOW, classify, evidence_for
    from economics.metric_streams import GRAIN
    from economics.signal_detection import Policy, detect, history_start
    from resources.clients import Clients
    from resources.lake import Lake
    from resources.schemas import METRIC_STREAMS
    from resources.settings import get_settings

    now = datetime.fromisoformat(Path(root, "now.txt").read_text())
    policy = Policy()
    lake = Lake(uri=root)
    keep_warm = Clients.from_settings(get_settings()).catalog.rate_card().keep_warm_seconds
    if not incremental:  # the first cycle: no streams written yet, the whole window
        shutil.rmtree(lake.table_uri(METRIC_STREAMS), ignore_errors=True)
    since = history_start(now, policy)
    t = time.perf_counter()
    streams, start = streams_to_write(lake, now, keep_warm)
    t_streams = time.perf_counter()
    lake.upsert(METRIC_STREAMS, streams, recent=("bucket_start", since - GRAIN))
    history = lake.read(METRIC_STREAMS, pl.col("bucket_start") >= since)
    t_write = time.perf_counter()
    found = detect(history, now, policy)
    t_detect = time.perf_counter()
    previous = pl.DataFrame(schema=CLASSIFICATION_SCHEMA)
    recent = history.filter(pl.col("bucket_start") > now - EVIDENCE_WINDOW)
    rows = classify(evidence_for(found, recent, now, previous), {}, previous, now, get_settings().token_usd_rate)
    t_classify = time.perf_counter()
    report(
        "cycle",
        t,
        hours=round((now - start).total_seconds() / 3600, 2),
        rows=streams.height,
        series=int(history.select(pl.col("stream").n_unique()).item()),
        signals=found.height,
        classifications=rows.height,
        streams_s=round(t_streams - t, 2),
        write_s=round(t_write - t_streams, 2),
        detect_s=round(t_detect - t_write, 2),
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
    ap.add_argument("--step", choices=["prepare", "cycle", "incremental", "floor"])
    args = ap.parse_args()
    if args.step:
        {
            "cycle": lambda: cycle(args.dir),
            "incremental": lambda: cycle(args.dir, incremental=True),
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
        floor_r = child(__file__, "floor", f"--dir={root}")
        cycles = {
            "full": child(__file__, "cycle", f"--dir={root}"),
            "incremental": child(__file__, "incremental", f"--dir={root}"),
        }
        print(
            f"floor (DuckDB 5-minute group-by scan): {floor_r['wall_s']:.2f} s, "
            f"peak {floor_r['peak_rss_gb']:.2f} GB, rows {floor_r['rows']:,}"
        )
        for name, r in cycles.items():
            print(
                f"signals cycle, {name:11s}: {r['wall_s']:.2f} s, peak {r['peak_rss_gb']:.2f} GB "
                f"({r['hours']} h recomputed: read + streams {r['streams_s']:.2f} s, {r['rows']:,} rows, "
                f"write + read back {r['write_s']:.2f} s, detectors {r['detect_s']:.2f} s on "
                f"{r['series']} streams, classifier {r['classify_s']:.2f} s); "
                f"ratio to the floor {r['wall_s'] / floor_r['wall_s']:.1f}x wall, "
                f"{r['peak_rss_gb'] / floor_r['peak_rss_gb']:.1f}x memory, "
                f"read + streams {r['streams_s'] / floor_r['wall_s']:.2f}x"
            )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
