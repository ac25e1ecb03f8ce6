"""Throughput of the market simulator: time and memory to generate N executions.

Usage: ``python bench/simulator_throughput.py [N]`` (default 10,000,000). Uses a market
like data/providers.yaml (9 active providers over 4 effect types, one shadow provider, a
price shock, an outage, daily seasonality with load-dependent latency, a beta-quality
provider). Prints wall seconds of ``simulate``, rows, the frame's in-memory size and the
process's peak RSS, then the same for ``execution_events`` on the first million rows.
"""

from __future__ import annotations

import resource
import sys
import time
from datetime import UTC, datetime

from economics.simulator import execution_events, reference_market, simulate

T0 = datetime(2026, 3, 2, tzinfo=UTC)


def main(n: int) -> None:
    hours = 48.0
    t = time.perf_counter()
    rows = simulate(
        reference_market(T0), T0, hours, n / hours / 1.25, seed=1
    )  # cartoon jobs get a shadow copy: ×1.25 rows
    dt = time.perf_counter() - t
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(
        f"simulate: {rows.height:,} rows in {dt:.2f} s ({rows.height / dt / 1e6:.2f} M rows/s); "
        f"frame {rows.estimated_size() / 1e9:.2f} GB; peak RSS {peak_gb:.2f} GB"
    )
    head = rows.head(1_000_000)
    t = time.perf_counter()
    events = execution_events(head)
    print(f"execution_events: {events.height:,} rows in {time.perf_counter() - t:.2f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000)
