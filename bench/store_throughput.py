"""Transactions per second of the transactional store on PostgreSQL (and SQLite, for
comparison): the two a job writes on its hot path.

- ``reserve``: a job's reservation (``Store.reserve``: the user's account row locked
  ``FOR UPDATE``, the entry inserted, the balance updated; one transaction) — every creation
  job and every effect run makes one, and settles it once more (consume or refund) the same way;
- ``upload``: an upload's row (``Store.create_upload``: the workspace's de-duplication by
  content hash, the insert; one transaction) — every ``POST /v1/uploads``.

Each is run by 1 thread, by ``--threads`` threads each with its own user (row locks apart:
the case that scales), by ``--threads`` threads on one user (one row lock: serial), and by
``--procs`` processes each with its own user (no shared GIL: what several API workers or run
workers do). The client is this machine's Python; the server shares the same 2 cores, so the
rates are a floor for a dedicated database server, and they move with the machine's load. The
steadier number is the CPU one transaction costs: the client's (this process's threads, or the
worker processes' own) and, on PostgreSQL, the server's (the bench database's backends, read
from ``/proc/<pid>/stat`` before and after each case), in milliseconds per transaction.

PostgreSQL: a fresh database on ``--pg`` (default the 127.0.0.1:5432 server, user postgres),
dropped at the end. Rewrites docs/scale-plan.md's ``store-throughput`` block unless
``--no-docs``.

Usage: ``python bench/store_throughput.py [--ops 200] [--threads 8] [--procs 4]
[--pg postgresql+psycopg2://postgres@127.0.0.1:5432/test] [--no-docs]``.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing as mp
import os
import platform
import resource
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from floors import write_doc_block
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from resources.store import Store


def _op(store: Store, kind: str, user_id: str, tag: str, i: int) -> None:
    if kind == "reserve":
        store.reserve(user_id, f"{tag}-{i}", 1)
    else:
        sha = hashlib.sha256(f"{tag}-{i}".encode()).hexdigest()
        store.create_upload(
            user_id,
            filename=f"{i}.mp4",
            content_type="video/mp4",
            sha256=sha,
            bytes_=1,
            media_key=f"raw/{sha}.mp4",
        )


def _users(store: Store, n: int, tokens: int) -> list[str]:
    ws = store.create_workspace(f"bench-{uuid.uuid4().hex[:6]}", max_concurrent_gpu_jobs=10_000)["workspace_id"]
    return [store.create_user(ws, welcome_tokens=tokens)[0]["user_id"] for _ in range(n)]


TICK = os.sysconf("SC_CLK_TCK")


def _own_cpu_s() -> float:
    """CPU seconds of this process so far (every thread)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class ServerCpu:
    """CPU seconds of a PostgreSQL database's backends (``pg_stat_activity``), from
    ``/proc/<pid>/stat`` (utime + stime); the server runs on this machine. Zero for SQLite."""

    def __init__(self, url: str):
        self.engine = create_engine(url) if url.startswith("postgresql") else None
        self.database = make_url(url).database

    def __call__(self) -> float:
        if self.engine is None:
            return 0.0
        with self.engine.connect() as conn:
            pids = conn.execute(
                text("SELECT pid FROM pg_stat_activity WHERE datname = :d AND pid <> pg_backend_pid()"),
                {"d": self.database},
            ).scalars()
            total = 0
            for pid in pids:
                try:
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:  # the backend ended meanwhile
                    continue
                total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
        return total / TICK


def _threads(store: Store, kind: str, users: list[str], threads: int, ops: int) -> tuple[float, float]:
    """(operations per second, client CPU s) of ``threads`` threads, thread i on
    users[i % len(users)]."""
    tag = uuid.uuid4().hex[:8]
    errors: list[Exception] = []

    def work(w: int) -> None:
        try:
            for i in range(ops):
                _op(store, kind, users[w % len(users)], f"{tag}-{w}", i)
        except Exception as exc:  # noqa: BLE001 - re-raised in the caller after the join
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
    started, cpu = time.perf_counter(), _own_cpu_s()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise errors[0]
    return threads * ops / (time.perf_counter() - started), _own_cpu_s() - cpu


def _proc(url: str, kind: str, user_id: str, ops: int, barrier, done, out) -> None:
    store = Store(url, upgrade=False)
    tag = uuid.uuid4().hex[:8]
    _op(store, kind, user_id, f"{tag}-warm", 0)  # the pool's first connection
    barrier.wait(timeout=120)
    cpu = _own_cpu_s()
    for i in range(ops):
        _op(store, kind, user_id, tag, i)
    out.put((ops, _own_cpu_s() - cpu))
    done.wait(timeout=600)  # the connection stays open until the parent has read its backend's CPU
    store.close()


def _procs(url: str, kind: str, users: list[str], ops: int, server: ServerCpu) -> tuple[float, float, float]:
    """(operations per second, client CPU s, server CPU s) of one process per user."""
    ctx = mp.get_context("spawn")
    barrier, done, out = ctx.Barrier(len(users) + 1), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_proc, args=(url, kind, u, ops, barrier, done, out)) for u in users]
    for p in procs:
        p.start()
    barrier.wait(timeout=120)
    server_before = server()
    started = time.perf_counter()
    answers = [out.get(timeout=600) for _ in procs]
    wall = time.perf_counter() - started
    server_cpu = server() - server_before
    done.set()
    for p in procs:
        p.join(timeout=60)
    return sum(n for n, _ in answers) / wall, sum(c for _, c in answers), server_cpu


def measure(url: str, args) -> dict[str, dict[str, tuple[float, float, float]]]:
    """{kind: {case: (operations per second, client CPU ms, server CPU ms per operation)}} on
    the store at ``url``."""
    store = Store(url)
    server = ServerCpu(url)
    budget = 2 * args.ops * max(args.threads, args.procs) + 10
    out: dict[str, dict[str, tuple[float, float, float]]] = {}
    for kind in ("reserve", "upload"):
        out[kind] = {}
        for case, n_users, threads, ops in (
            ("1 thread", 1, 1, args.ops),
            (f"{args.threads} threads, {args.threads} users", args.threads, args.threads, args.ops // 2),
            (f"{args.threads} threads, 1 user", 1, args.threads, args.ops // 2),
        ):
            users = _users(store, n_users, budget)
            server_before = server()
            rate, client_cpu = _threads(store, kind, users, threads, ops)
            n = threads * ops
            out[kind][case] = (rate, 1000 * client_cpu / n, 1000 * (server() - server_before) / n)
        rate, client_cpu, server_cpu = _procs(url, kind, _users(store, args.procs, budget), args.ops, server)
        n = args.procs * args.ops
        out[kind][f"{args.procs} processes, {args.procs} users"] = (rate, 1000 * client_cpu / n, 1000 * server_cpu / n)
    store.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", type=int, default=200, help="operations per thread / process")
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--pg", default="postgresql+psycopg2://postgres@127.0.0.1:5432/test")
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()
    load = [os.getloadavg()[0]]
    admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
    name = f"effectlake_bench_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    results = {}
    try:
        pg_url = make_url(args.pg).set(database=name).render_as_string(hide_password=False)
        results["PostgreSQL"] = measure(pg_url, args)
        with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
            results["SQLite"] = measure(f"sqlite:///{tmp}/store.db", args)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    load.append(os.getloadavg()[0])
    cases = list(next(iter(results.values()))["reserve"])
    for backend, kinds in results.items():
        for kind, by_case in kinds.items():
            print(
                f"{backend:>10} {kind:>8}: "
                + "; ".join(
                    f"{c} {v:.0f}/s (CPU ms client {cl:.1f}, server {sv:.1f})" for c, (v, cl, sv) in by_case.items()
                )
            )
    if not args.no_docs:
        lines = [
            (
                f"`bench/store_throughput.py --ops {args.ops} --threads {args.threads} --procs {args.procs}`, "
                f"{datetime.now(UTC):%Y-%m-%d}, {platform.machine()} with {os.cpu_count()} cores shared by the "
                f"client, the server and other work (load average {load[0]:.1f} → {load[1]:.1f}); transactions per "
                "second, each its own transaction, and in brackets the CPU milliseconds one costs the client "
                "and the PostgreSQL backend (SQLite: the client is the database)."
            ),
            "",
            "| backend | transaction | " + " | ".join(cases) + " |",
            "|:--|:--|" + "--:|" * len(cases),
            *(
                f"| {backend} | {kind} | "
                + " | ".join(f"{by_case[c][0]:.0f} ({by_case[c][1]:.1f} + {by_case[c][2]:.1f} ms)" for c in cases)
                + " |"
                for backend, kinds in results.items()
                for kind, by_case in kinds.items()
            ),
        ]
        write_doc_block("scale-plan.md", "store-throughput", lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
