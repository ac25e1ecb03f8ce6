"""``effectlake simulate``: simulated execution history into the current lake.

Rows are written as ``execution_events`` with ``source = 'simulated'`` (a telemetry column), so
the economics job costs them like real ones but keeps them apart (marginality windows are
split by source; the routing manifest reads real executions only).
"""

from datetime import timedelta

from economics.simulator import execution_events, reference_market, simulate
from resources.events import utcnow
from resources.lake import Lake
from resources.schemas import EXECUTION_EVENTS
from resources.settings import get_settings

BATCH_ROWS = 500_000  # bounded memory per Delta commit


def run_simulation(days: float, seed: int, per_hour: float) -> int:
    """Simulate ``days`` of history ending now at ``per_hour`` jobs/hour; returns rows written."""
    lake = Lake(uri=get_settings().lake_uri)
    start = utcnow() - timedelta(days=days)
    rows = simulate(reference_market(start), start, days * 24, per_hour, seed=seed)
    written = 0
    for offset in range(0, rows.height, BATCH_ROWS):
        written += lake.append(EXECUTION_EVENTS, execution_events(rows.slice(offset, BATCH_ROWS)))
    print(
        f"simulated {rows.height:,} executions over {days:g} days (seed {seed}); "
        f"{written:,} new events in {lake.table_uri(EXECUTION_EVENTS)}"
    )
    return written
