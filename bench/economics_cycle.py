"""The economics cycle over N simulated executions vs the floor: a bare DuckDB group-by scan
of the same Delta table.

Usage: ``python bench/economics_cycle.py [--sizes 1000000,10000000] [--repeat 3] [--dir D]
[--re-executed 0.005] [--no-docs]``. For each size N:

1. prepare: simulate N executions (``economics.simulator.reference_market``, 7 days ending
   now) plus second outcomes for a share of them (``re_executions``: re-executed tasks,
   whose later outcome must win), written as ``execution_events`` to a Delta table in 1 M-row
   appends (setup, in its own process, not timed; kept under ``--dir`` for later runs);
2. cycle: what the economics job computes on a full recompute, without writing it —
   terminal events → the latest outcome per task → execution costs → marginality windows and
   provider statistics → routing manifest — streamed from the table
   (``economics.telemetry.terminal_outcomes``, ``cost_model.cost_frame`` on the plan,
   ``economics.cycle.windows_and_stats``);
3. floor: DuckDB ``GROUP BY provider_id, effect_type`` with count and a sum of
   ``compute_seconds`` over the table's pyarrow dataset (the least any cycle must do: read
   every row once).

Floor and cycle each run in a fresh child process (wall, CPU and peak RSS — the process's own
VmHWM — are their own), alternating ``--repeat`` times in one invocation; the medians and
their ratios are printed, and the table of docs/performance.md ("Economics cycle vs DuckDB
scan") is rewritten unless ``--no-docs``. A third child times polars' own streaming group-by
of the floor's three columns, for reference: the floor is DuckDB reading through pyarrow, not
the fastest reader of the table.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from floors import peak_rss_gb

APPEND_ROWS = 1_000_000


def prepare(n: int, root: str, re_executed: float) -> None:
    import polars as pl
    from deltalake import write_deltalake

    from economics.simulator import execution_events, re_executions, reference_market, simulate
    from resources.lake import Lake
    from resources.schemas import EXECUTION_EVENTS, conform

    lake = Lake(uri=root)
    start = datetime.now(UTC) - timedelta(days=7)
    first = n / (1 + re_executed)
    rows = simulate(reference_market(start), start, 7 * 24, first / (7 * 24) / 1.25, seed=1)
    rows = pl.concat([rows, re_executions(rows, re_executed, seed=2)])
    uri = lake.table_uri(EXECUTION_EVENTS)
    for i in range(0, rows.height, APPEND_ROWS):
        events = conform(execution_events(rows.slice(i, APPEND_ROWS)), EXECUTION_EVENTS)
        write_deltalake(uri, events.to_arrow(), mode="append")  # fresh table: plain appends
    _emit({"step": "prepare", "rows": rows.height, "tasks": rows["task_id"].n_unique()})


def cycle(root: str) -> None:
    import polars as pl

    from economics.cost_model import cost_frame
    from economics.cycle import windows_and_stats
    from economics.routing import build_manifest
    from economics.telemetry import terminal_outcomes
    from resources.catalog import Catalog
    from resources.lake import Lake
    from resources.providers.client import ProviderRegistry
    from resources.schemas import EXECUTION_EVENTS, QUALITY_SCORES
    from resources.settings import get_settings

    t, cpu = time.perf_counter(), _cpu_s()
    settings = get_settings()
    lake, catalog = Lake(uri=root), Catalog(data_dir=settings.data_dir)
    executions = terminal_outcomes(lake.scan(EXECUTION_EVENTS))
    costs = cost_frame(executions, catalog.rate_card(), catalog.prices(), settings.token_usd_rate)
    now = datetime.now(UTC)
    windows, stats = windows_and_stats(costs, now, pl.DataFrame(schema=QUALITY_SCORES.schema))
    build_manifest(stats, ProviderRegistry(path=settings.providers_path).registry().active_by_effect(), now)
    _report("cycle", t, cpu, tasks=int(stats["executions"].sum()), windows=windows.height)


def floor(root: str) -> None:
    import duckdb

    from resources.lake import Lake
    from resources.schemas import EXECUTION_EVENTS

    t, cpu = time.perf_counter(), _cpu_s()
    events = Lake(uri=root).dataset(EXECUTION_EVENTS)  # noqa: F841 (read by duckdb)
    out = duckdb.sql(
        "SELECT provider_id, effect_type, count(*) AS n, sum(compute_seconds) AS s FROM events GROUP BY ALL"
    ).fetchall()
    _report("floor", t, cpu, groups=len(out), rows=sum(r[2] for r in out))


def polars_scan(root: str) -> None:
    import polars as pl

    from resources.lake import Lake
    from resources.schemas import EXECUTION_EVENTS

    t, cpu = time.perf_counter(), _cpu_s()
    out = (
        Lake(uri=root)
        .scan(EXECUTION_EVENTS)
        .group_by("provider_id", "effect_type")
        .agg(n=pl.len(), s=pl.col("compute_seconds").sum())
        .collect(engine="streaming")
    )
    _report("polars_scan", t, cpu, groups=out.height, rows=int(out["n"].sum()))


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _report(step: str, started: float, cpu_started: float, **extra) -> None:
    wall, cpu = time.perf_counter() - started, _cpu_s() - cpu_started
    _emit({"step": step, "wall_s": wall, "cpu_s": cpu, "peak_rss_gb": peak_rss_gb(), **extra})


def _emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def _child(step: str, root: str, *extra: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, f"--step={step}", f"--dir={root}", *extra], capture_output=True, text=True
    )
    if out.returncode:
        raise RuntimeError(f"{step} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def measure(n: int, root: Path, repeat: int, re_executed: float) -> dict:
    """Prepare the lake of ``n`` executions under ``root`` if absent, then alternate floor,
    cycle and polars scan ``repeat`` times; medians and ratios."""
    root.mkdir(parents=True, exist_ok=True)
    if not (root / "bronze" / "execution_events").exists():
        t = time.perf_counter()
        prepared = _child("prepare", str(root), f"--n={n}", f"--re-executed={re_executed}")
        print(f"prepare {prepared['rows']:,} events ({prepared['tasks']:,} tasks): {time.perf_counter() - t:.0f} s")
    runs: dict[str, list[dict]] = {"floor": [], "cycle": [], "polars_scan": []}
    for _ in range(repeat):
        for step, got in runs.items():
            got.append(_child(step, str(root)))
    floor_r, cycle_r = runs["floor"], runs["cycle"]
    assert {r["rows"] for r in floor_r} == {floor_r[0]["rows"]}
    m = {f"{step}_{k}": _median(got, k) for step, got in runs.items() for k in ("wall_s", "cpu_s", "peak_rss_gb")}
    m.update(events=floor_r[0]["rows"], tasks=cycle_r[0]["tasks"], repeat=repeat)
    m.update(
        wall_ratio=m["cycle_wall_s"] / m["floor_wall_s"],
        cpu_ratio=m["cycle_cpu_s"] / m["floor_cpu_s"],
        memory_ratio=m["cycle_peak_rss_gb"] / m["floor_peak_rss_gb"],
    )
    return m


def _line(m: dict) -> str:
    return (
        f"{m['events']:>12,} | floor {m['floor_wall_s']:6.2f} s {m['floor_cpu_s']:6.2f} cpu "
        f"{m['floor_peak_rss_gb']:5.2f} GB | cycle {m['cycle_wall_s']:6.2f} s {m['cycle_cpu_s']:6.2f} cpu "
        f"{m['cycle_peak_rss_gb']:5.2f} GB | ratio {m['wall_ratio']:.2f}x wall {m['cpu_ratio']:.2f}x cpu "
        f"{m['memory_ratio']:.2f}x memory | polars scan {m['polars_scan_wall_s']:.2f} s"
    )


def _table(results: list[dict], re_executed: float) -> str:
    head = (
        "| executions (events) | floor wall / CPU / peak | cycle wall / CPU / peak | cycle ÷ floor: wall, CPU,"
        " memory | polars scan wall |\n|---|---|---|---|---|\n"
    )
    rows = "".join(
        f"| {m['tasks']:,} ({m['events']:,}) | {m['floor_wall_s']:.2f} s / {m['floor_cpu_s']:.2f} s / "
        f"{m['floor_peak_rss_gb']:.2f} GB | {m['cycle_wall_s']:.2f} s / {m['cycle_cpu_s']:.2f} s / "
        f"{m['cycle_peak_rss_gb']:.2f} GB | **{m['wall_ratio']:.2f}×**, {m['cpu_ratio']:.2f}×, "
        f"**{m['memory_ratio']:.2f}×** | {m['polars_scan_wall_s']:.2f} s |\n"
        for m in results
    )
    repeat = results[0]["repeat"]
    return (
        f"`bench/economics_cycle.py`, {datetime.now(UTC):%Y-%m-%d}, {platform.machine()} with "
        f"{_cpus()} cores shared with other work: medians of {repeat} runs, floor and cycle alternating, "
        f"each in a fresh process (peak = its own VmHWM). {re_executed:.1%} of the tasks were re-executed "
        "(a second, later outcome).\n\n" + head + rows
    )


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000000,10000000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", help="keep the prepared lakes here (one folder per size) for later runs")
    ap.add_argument("--re-executed", type=float, default=0.005, help="share of tasks with a second outcome")
    ap.add_argument("--no-docs", action="store_true", help="do not rewrite docs/performance.md")
    ap.add_argument("--step", choices=["prepare", "cycle", "floor", "polars_scan"])
    ap.add_argument("--n", type=int)
    args = ap.parse_args()
    if args.step:
        steps = {
            "prepare": lambda: prepare(args.n, args.dir, args.re_executed),
            "cycle": lambda: cycle(args.dir),
            "floor": lambda: floor(args.dir),
            "polars_scan": lambda: polars_scan(args.dir),
        }
        steps[args.step]()
        return
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.dir or tmp)
        results = []
        for n in (int(s) for s in args.sizes.split(",")):
            results.append(measure(n, base / str(n), args.repeat, args.re_executed))
            print(_line(results[-1]), flush=True)
    if not args.no_docs:
        from floors import write_doc_block

        write_doc_block(
            "performance.md",
            "economics-cycle",
            ["## Economics cycle vs DuckDB scan", "", *_table(results, args.re_executed).strip().splitlines()],
        )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
