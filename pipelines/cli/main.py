"""The ``effectlake`` command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``effectlake`` console script."""
    from resources import logconfig
    from resources.allocator import keep_freed_pages

    logconfig.configure()
    keep_freed_pages()  # the CLI runs stages in-process too (resources/allocator.py)
    parser = argparse.ArgumentParser(prog="effectlake", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the main job end to end on real sample videos")
    demo_prod = sub.add_parser(
        "demo-prod", help="the demo on the production components (PostgreSQL, S3, Redis; docs/deployment.md)"
    )
    for parser_ in (demo, demo_prod):
        parser_.add_argument("--exit", action="store_true", help="stop after printing the summary")
        parser_.add_argument("--api-port", type=int, default=8000)
        parser_.add_argument("--dagster-port", type=int, default=3000)
        parser_.add_argument("--dashboard-port", type=int, default=8501, help="(the next free one when taken)")
        parser_.add_argument("--timeout", type=float, default=1200, help="seconds per stage wait")
        parser_.add_argument(
            "--video", type=Path, action="append", help="upload this video (repeatable; default: every sample)"
        )
    demo_prod.add_argument("--dagster-home", type=Path, help="the instance folder (default data/prod/dagster_home)")
    api = sub.add_parser("api", help="serve the intake API")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8000)
    dashboard = sub.add_parser("dashboard", help="serve the admin dashboard (Streamlit)")
    dashboard.add_argument("--host", default="127.0.0.1")
    dashboard.add_argument("--port", type=int, default=8501)
    sub.add_parser(
        "init",
        help="create every lake table (empty, with its schema); upgrade task events written before typed telemetry",
    )
    sub.add_parser("economics", help="run one economics cycle on the current instance")
    sub.add_parser("benchmark", help="run the benchmark job (reference suite) on the current instance")
    sub.add_parser("signals", help="run detection and classification now (signals_job, then the actions it calls for)")
    alerts = sub.add_parser("alerts", help="print the open bottleneck classifications and economic alerts")
    alerts.add_argument("--json", action="store_true", help="JSON output")
    simulate = sub.add_parser("simulate", help="write simulated execution history into the lake")
    simulate.add_argument("--days", type=float, default=7)
    simulate.add_argument("--seed", type=int, default=0)
    simulate.add_argument("--per-hour", type=float, default=200, help="jobs per hour")
    simulate.add_argument(
        "--inject",
        action="append",
        default=[],
        metavar="KIND[:TARGET]",
        help="plant a fault (repeatable): latency-drift, throttling, cost-spike, cold-starts, saturation, "
        "depletion, inefficiency; TARGET a provider (a user id for depletion); docs/signals.md",
    )
    simulate.add_argument(
        "--fault-hours", type=float, default=2.0, help="the faults start this many hours before now (default 2)"
    )
    manifest = sub.add_parser("manifest", help="print the current routing manifest")
    manifest.add_argument("--effect-type", help="only this effect type")
    manifest.add_argument("--json", action="store_true", help="JSON output")
    golden = sub.add_parser("golden", help="accuracy of the content analysis on the hand-labelled golden set")
    golden.add_argument("--json", action="store_true", help="JSON output")
    sub.add_parser("admin-key", help="print a new random admin API key (for EFFECTLAKE_ADMIN_KEY)")
    rerender = sub.add_parser(
        "rerender", help="re-run a provider output's render spec; report bit-identity or its VMAF against the original"
    )
    rerender.add_argument("output_id", help="the output's task id (silver/provider_outputs.task_id)")
    rerender.add_argument("--json", action="store_true", help="JSON output")
    args = parser.parse_args(argv)

    if args.command == "demo":
        from pipelines.cli.demo import run_demo

        return run_demo(args.exit, args.api_port, args.dagster_port, args.timeout, args.dashboard_port, args.video)
    if args.command == "demo-prod":
        from pipelines.cli.prod import run_prod_demo

        return run_prod_demo(
            args.exit,
            args.api_port,
            args.dagster_port,
            args.timeout,
            args.dashboard_port,
            args.video,
            args.dagster_home,
        )
    if args.command == "api":
        import uvicorn

        uvicorn.run("api.main:app", host=args.host, port=args.port)
        return 0
    if args.command == "dashboard":
        from dashboards.launch import run

        return run(args.port, args.host)
    if args.command in ("economics", "benchmark"):
        from pipelines.cli.run_jobs import run_job

        return 0 if run_job(f"{args.command}_job") else 1
    if args.command == "signals":
        from pipelines.cli.alerts import run_signals

        return run_signals()
    if args.command == "alerts":
        from pipelines.cli.alerts import print_alerts

        return print_alerts(args.json)
    if args.command == "simulate":
        from pipelines.cli.simulate import run_simulation

        try:
            run_simulation(args.days, args.seed, args.per_hour, args.inject, args.fault_hours)
        except ValueError as exc:
            parser.error(str(exc))
        return 0
    if args.command == "manifest":
        from pipelines.cli.manifest import print_manifest

        return print_manifest(args.effect_type, args.json)
    if args.command == "golden":
        from pipelines.cli.golden import run_golden

        return run_golden(args.json)
    if args.command == "rerender":
        from pipelines.cli.rerender import run_rerender

        return run_rerender(args.output_id, args.json)
    if args.command == "admin-key":
        from resources.store.keys import new_key

        sys.stdout.write(new_key()[1] + "\n")
        return 0
    if args.command == "init":
        from resources.events import upgrade_execution_events
        from resources.lake import Lake
        from resources.settings import get_settings

        lake = Lake(uri=get_settings().lake_uri)
        lake.ensure_all()
        upgraded = upgrade_execution_events(lake)
        if upgraded:
            print(f"{upgraded:,} task events brought up to the current columns (typed telemetry, task keys)")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
