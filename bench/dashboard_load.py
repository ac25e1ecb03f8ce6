"""Dashboard page load times on a lake holding ~N simulated executions.

Usage: ``python bench/dashboard_load.py [--rows 1000000] [--days 28] [--dir D] [--runs 3]``

1. prepare (skipped when ``D/lake`` already has execution costs; not timed): ``effectlake
   simulate`` (``pipelines.cli.simulate.run_simulation``) sized to ~``rows`` executions over
   ``days`` days, then the economics job, as production would build the lake;
2. measure: each page of the dashboard rendered by ``streamlit.testing.v1.AppTest`` (the
   real script, HUD and page, in process), each page in a fresh process: its first render
   (``cold``: empty caches, every table read and aggregated) and the median of ``runs``
   renders after it (``warm``: what an admin sees on every rerun or return to the page
   until a table changes), for the ``simulated`` data filter (where the million rows are)
   and the ``real`` one. Python start-up and imports are not counted.

Prints one JSON line per page and source, then a table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The simulator adds a shadow copy to ~a quarter of user jobs (reference_market's shadow
# providers): rows ≈ 1.25 × jobs.
ROWS_PER_JOB = 1.25
PAGES = ("margins", "providers", "routing", "recommendations", "approvals", "bottlenecks")
PASSWORD = "bench-password"


def env_for(root: Path) -> dict[str, str]:
    return {
        "LAKE_URI": str(root / "lake"),
        "MEDIA_URI": str(root / "media"),
        "MANIFEST_URI": str(root / "manifest" / "routing_manifest.json"),
        "EFFECTLAKE_DEPLOYMENT": "local",
    }


def prepare(root: Path, rows: int, days: float) -> None:
    """Simulate ~``rows`` executions into ``root``'s lake and run the economics job."""
    import dagster as dg

    from pipelines.cli.simulate import run_simulation
    from pipelines.definitions import build_definitions
    from resources.lake import Lake
    from resources.schemas import EXECUTION_COSTS
    from resources.settings import Settings

    env = env_for(root)
    lake = Lake(uri=env["LAKE_URI"])
    if lake.exists(EXECUTION_COSTS) and lake.scan(EXECUTION_COSTS).select("task_id").collect().height:
        return
    os.environ.update(env)
    t = time.perf_counter()
    run_simulation(days=days, seed=1, per_hour=rows / (days * 24) / ROWS_PER_JOB)
    simulated = time.perf_counter() - t
    settings = Settings(LAKE_URI=env["LAKE_URI"], MEDIA_URI=env["MEDIA_URI"], MANIFEST_URI=env["MANIFEST_URI"])
    t = time.perf_counter()
    with dg.DagsterInstance.ephemeral() as instance:
        ok = build_definitions(settings).resolve_job_def("economics_job").execute_in_process(instance=instance).success
    print(
        json.dumps(
            {
                "prepared": lake.scan(EXECUTION_COSTS).select("task_id").collect().height,
                "simulate_s": round(simulated, 1),
                "economics_job_s": round(time.perf_counter() - t, 1),
                "economics_ok": ok,
            }
        ),
        flush=True,
    )


def measure(root: Path, page: str, source: str, runs: int) -> dict:
    """Render ``page`` for ``source`` in this (fresh) process: the first render (cold
    caches: every table read and aggregated, HUD included) and the median of ``runs``
    renders after it."""
    import altair  # noqa: F401  imports are paid once per process, not per page: not counted
    from streamlit.testing.v1 import AppTest

    import dashboards.charts
    import dashboards.widgets  # noqa: F401
    from dashboards.auth import hash_password
    from dashboards.gate import ADMIN_KEY

    os.environ.update(env_for(root))
    os.environ["EFFECTLAKE_DASHBOARD_PASSWORD_HASH"] = hash_password(PASSWORD)
    at = AppTest.from_file(str(ROOT / "dashboards" / "app.py"), default_timeout=600)
    # Signed in and filtered before the first run, so that run renders this page and no
    # other page warms the caches first (the password form itself is tested elsewhere).
    at.session_state[ADMIN_KEY] = "bench"
    at.session_state["source"] = source
    at.switch_page(f"app_pages/{page}.py")
    times = []
    for _ in range(1 + runs):
        t = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - t)
        if at.exception:
            raise RuntimeError(f"{page}: {at.exception[0].value}")
    assert at.header[0].value, "the page did not render"
    return {
        "page": page,
        "source": source,
        "cold_s": round(times[0], 3),
        "warm_s": round(statistics.median(times[1:]), 3),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--days", type=float, default=28)
    p.add_argument("--dir", help="lake folder to build or reuse (default: a new temp dir)")
    p.add_argument("--runs", type=int, default=3, help="warm renders per page")
    p.add_argument("--measure-only", nargs=2, metavar=("PAGE", "SOURCE"), help=argparse.SUPPRESS)  # child
    args = p.parse_args()
    root = Path(args.dir or tempfile.mkdtemp(prefix="dashboard-bench-"))
    if args.measure_only:
        print(json.dumps(measure(root, *args.measure_only, args.runs)), flush=True)
        return
    root.mkdir(parents=True, exist_ok=True)
    prepare(root, args.rows, args.days)
    results = []
    for source in ("simulated", "real"):
        for page in PAGES:
            # A fresh process per page: "cold" means empty Streamlit caches.
            proc = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--dir",
                    str(root),
                    "--runs",
                    str(args.runs),
                    "--measure-only",
                    page,
                    source,
                ],
                capture_output=True,
                text=True,
                cwd=ROOT,
            )
            if proc.returncode:
                sys.exit(proc.stderr[-4000:])
            row = json.loads([line for line in proc.stdout.splitlines() if line.startswith("{")][-1])
            print(json.dumps(row), flush=True)
            results.append(row)
    print(f"\nlake: {root}")
    print(f"{'page':<16}{'source':<11}{'cold s':>8}{'warm s':>8}")
    for r in results:
        print(f"{r['page']:<16}{r['source']:<11}{r['cold_s']:>8.2f}{r['warm_s']:>8.2f}")


if __name__ == "__main__":
    main()
