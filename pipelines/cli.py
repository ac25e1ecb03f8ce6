"""The ``effectlake`` command."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``effectlake`` console script."""
    parser = argparse.ArgumentParser(prog="effectlake", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the main job end to end on real sample videos")
    demo.add_argument("--exit", action="store_true", help="stop after printing the summary")
    demo.add_argument("--api-port", type=int, default=8000)
    demo.add_argument("--dagster-port", type=int, default=3000)
    demo.add_argument("--timeout", type=float, default=1200, help="seconds per stage wait")
    api = sub.add_parser("api", help="serve the intake API")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8000)
    sub.add_parser("init", help="create every lake table (empty, with its schema)")
    args = parser.parse_args(argv)

    if args.command == "demo":
        from pipelines.demo import run_demo

        return run_demo(args.exit, args.api_port, args.dagster_port, args.timeout)
    if args.command == "api":
        import uvicorn

        uvicorn.run("api.main:app", host=args.host, port=args.port)
        return 0
    if args.command == "init":
        from resources.lake import LakeResource
        from resources.settings import get_settings

        LakeResource(uri=get_settings().lake_uri).ensure_all()
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
