"""Delta commits per second into the lake's bronze tables, on local disk and on the local S3
server (moto, as ``effectlake demo-prod`` runs it): one writer, several writers on one table,
several writers on a table each, and one writer on a table with history.

Every commit is what a stage does when it records something: ``Lake.append`` of a small batch
(``--rows`` event rows, a video's worth) into ``bronze/pipeline_events`` — a delta-rs merge
(insert-if-absent by ``event_id``) with the lake's retry on a lost commit race
(``resources/lake.py``). The floor is a blind append of the same rows (``write_deltalake``
``mode="append"``: a Parquet file and a commit, no read of the table), timed the same way.

Cases, each ``--commits`` commits per writer, writers in processes of their own (spawned;
they start together):

- ``1 writer``: commits/s and p50 / p95 latency of ``Lake.append``, and of the blind append;
- ``W writers, one table``: the writers race for each version (delta-rs' optimistic commit:
  on local disk a rename that fails if the version exists, on S3 a put with
  ``If-None-Match: *``); aggregate commits/s and the lost races retried;
- ``W writers, W tables``: the same processes without the race: what the machine's cores
  give (the difference to the previous case is the cost of the race);
- ``with history``: one writer on a table already holding ``--history`` rows in 100 files:
  the merge reads the table's keys, so its cost grows with the table; the blind append's not.

Usage: ``python bench/delta_commits.py [--commits 40] [--writers 4] [--rows 10]
[--history 1000000] [--backends local,s3] [--no-docs]``. Rewrites docs/scale-plan.md's
``delta-commits`` block unless ``--no-docs``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from floors import write_doc_block

from tests.event_rows import event_batch


def _writer(uri: str, env: dict, name: str, commits: int, rows: int, blind: bool, barrier, out) -> None:
    """Append ``commits`` batches as writer ``name``; put (latencies s of the commits made,
    lost races, appends given up) on ``out``. An append whose every retry lost its race
    (``CommitFailedError`` after the lake's 10 tries) is counted as given up, not fatal."""
    os.environ.update(env)
    from deltalake import write_deltalake
    from deltalake.exceptions import CommitFailedError

    import resources.lake as lake_module
    from resources.lake import Lake
    from resources.schemas import PIPELINE_EVENTS, conform

    lost = 0
    original = lake_module.commit_conflicts

    def counting(attempts: int):
        def note(_state) -> None:
            nonlocal lost
            lost += 1

        return original(attempts).copy(before_sleep=note)

    lake_module.commit_conflicts = counting
    lake = Lake(uri=uri)
    lake.ensure(PIPELINE_EVENTS)
    table = lake.table_uri(PIPELINE_EVENTS)
    storage = lake._options()
    batches = [event_batch(f"{name}-{c}", rows) for c in range(commits)]
    barrier.wait(timeout=120)
    latencies, given_up = [], 0
    for df in batches:
        t = time.perf_counter()
        try:
            if blind:
                write_deltalake(table, conform(df, PIPELINE_EVENTS).to_arrow(), mode="append", storage_options=storage)
            else:
                lake.append(PIPELINE_EVENTS, df)
        except CommitFailedError:
            given_up += 1
            continue
        latencies.append(time.perf_counter() - t)
    out.put((name, latencies, lost, given_up))


def run_case(uris: list[str], env: dict, commits: int, rows: int, blind: bool = False) -> dict:
    """One process per entry of ``uris`` (the same URI repeated = one table shared)."""
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(len(uris) + 1), ctx.Queue()
    procs = [
        ctx.Process(target=_writer, args=(u, env, f"w{i}-{time.time_ns()}", commits, rows, blind, barrier, out))
        for i, u in enumerate(uris)
    ]
    for p in procs:
        p.start()
    barrier.wait(timeout=300)
    started = time.perf_counter()
    results = [out.get(timeout=1800) for _ in procs]
    wall = time.perf_counter() - started
    for p in procs:
        p.join(timeout=60)
        if p.exitcode != 0:
            raise RuntimeError(f"a writer failed (exit {p.exitcode})")
    latencies = sorted(x for _, lat, _, _ in results for x in lat)
    return {
        "commits_per_s": len(latencies) / wall,
        "p50_ms": 1000 * statistics.median(latencies),
        "p95_ms": 1000 * latencies[int(0.95 * (len(latencies) - 1))],
        "lost_races": sum(lost for _, _, lost, _ in results),
        "given_up": sum(g for _, _, _, g in results),
        "commits": len(latencies),
    }


def grow(uri: str, env: dict, history: int) -> None:
    """Write ``history`` rows into ``uri``'s pipeline_events as 100 blind appends (files)."""
    os.environ.update(env)
    import polars as pl
    from deltalake import write_deltalake

    from resources.lake import Lake
    from resources.schemas import PIPELINE_EVENTS, conform

    lake = Lake(uri=uri)
    lake.ensure(PIPELINE_EVENTS)
    per = history // 100
    now = datetime.now(UTC)
    for f in range(100):
        df = pl.DataFrame(
            {
                "event_id": [f"h{f}-{i}" for i in range(per)],
                "event_type": ["TaskSucceeded"] * per,
                "correlation_id": [f"h{f}-{i // 10}" for i in range(per)],
                "occurred_at": [now] * per,
            }
        )
        write_deltalake(
            lake.table_uri(PIPELINE_EVENTS),
            conform(df, PIPELINE_EVENTS).to_arrow(),
            mode="append",
            storage_options=lake._options(),
        )


def backend_cases(name: str, root: str, env: dict, args) -> list[tuple[str, str, dict]]:
    """Every case on one backend: (backend, case, result)."""
    w, c, r = args.writers, args.commits, args.rows
    rows = [
        (name, "1 writer, `Lake.append`", run_case([f"{root}/one"], env, c, r)),
        (name, "1 writer, blind append (floor)", run_case([f"{root}/blind"], env, c, r, blind=True)),
        (name, f"{w} writers, one table", run_case([f"{root}/shared"] * w, env, c, r)),
        (name, f"{w} writers, {w} tables", run_case([f"{root}/own{i}" for i in range(w)], env, c, r)),
    ]
    if args.history:
        ctx = mp.get_context("spawn")
        p = ctx.Process(target=grow, args=(f"{root}/history", env, args.history))
        p.start()
        p.join()
        label = f"{args.history:,} rows of history"
        rows.append((name, f"1 writer, `Lake.append`, {label}", run_case([f"{root}/history"], env, c, r)))
        rows.append((name, f"1 writer, blind append, {label}", run_case([f"{root}/history"], env, c, r, blind=True)))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commits", type=int, default=40)
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--rows", type=int, default=10)
    ap.add_argument("--history", type=int, default=1_000_000)
    ap.add_argument("--backends", default="local,s3")
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()
    load = [os.getloadavg()[0]]
    results = []
    with ExitStack() as stack:
        for backend in args.backends.split(","):
            if backend == "local":
                # On disk (not tmpfs): a commit's rename and the Parquet file's write are real I/O.
                root = stack.enter_context(tempfile.TemporaryDirectory(prefix="delta_commits_", dir="/var/tmp"))
                results += backend_cases("local disk", root, {}, args)
            elif backend == "s3":
                from resources.s3 import ensure_buckets
                from tests.s3_server import local_s3_process

                log = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "s3.log"
                env = stack.enter_context(local_s3_process(log))
                ensure_buckets(["s3://lake/x"], env)
                results += backend_cases("S3 (local moto server)", "s3://lake/bench", env, args)
            else:
                raise SystemExit(f"unknown backend {backend}")
            for b, case, r in results:
                print(
                    f"{b:>24} | {case:<46} | {r['commits_per_s']:6.1f} commits/s | p50 {r['p50_ms']:7.1f} ms | "
                    f"p95 {r['p95_ms']:7.1f} ms | lost races {r['lost_races']} | given up {r['given_up']}"
                )
            print("--")
    load.append(os.getloadavg()[0])
    by = {(b, c): r for b, c, r in results}
    for b in dict.fromkeys(b for b, _, _ in results):
        merge, blind = by[(b, "1 writer, `Lake.append`")], by[(b, "1 writer, blind append (floor)")]
        print(f"{b}: Lake.append ÷ blind append, p50 latency {merge['p50_ms'] / blind['p50_ms']:.2f}")
    if not args.no_docs:
        lines = [
            (
                f"`bench/delta_commits.py --commits {args.commits} --writers {args.writers} --rows {args.rows} "
                f"--history {args.history}`, {datetime.now(UTC):%Y-%m-%d}, {platform.machine()} with "
                f"{os.cpu_count()} cores shared with other work (load average {load[0]:.1f} → {load[1]:.1f}); "
                f"each commit appends {args.rows} event rows to `bronze/pipeline_events`; writers are processes."
            ),
            "",
            "| backend | case | commits/s | p50 ms | p95 ms | lost races (retried) | appends given up after 10 tries |",
            "|:--|:--|--:|--:|--:|--:|--:|",
            *(
                f"| {b} | {c} | {r['commits_per_s']:.1f} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} | {r['lost_races']} "
                f"| {r['given_up']} |"
                for b, c, r in results
            ),
        ]
        write_doc_block("scale-plan.md", "delta-commits", lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
