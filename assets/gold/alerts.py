"""Alerts (docs/signals.md, "Alerts"), last step of ``signals_job``: the open bottleneck
classifications are folded into the store's de-duplicated, grouped alerts, the new critical
ones are emailed (retries, dead letters: ``resources.services.alerts``), and every alert's
state is written to ``gold/alerts``."""

from __future__ import annotations

import dagster as dg
import polars as pl

from assets.gold.signals import bottleneck_classifications
from resources.events import utcnow
from resources.lake import Lake
from resources.mailer import SmtpMailer
from resources.schemas import ALERTS, BOTTLENECK_CLASSIFICATIONS
from resources.services import alerts as service
from resources.settings import Settings
from resources.store.client import Store


def snapshot(alerts: list[dict], at) -> pl.DataFrame:
    """``gold/alerts`` rows of the store's alerts (``Store.alerts()``)."""
    rows = [
        {
            **{c: a.get(c) for c in ALERTS.schema if c in a},
            "emails_sent": sum(d["state"] == "sent" for d in a["deliveries"]),
            "emails_dead_lettered": sum(d["state"] == "dead_letter" for d in a["deliveries"]),
            "snapshot_at": at,
        }
        for a in alerts
    ]
    return pl.DataFrame(rows, schema=ALERTS.schema)


@dg.asset(
    key=["gold", "alerts"],
    deps=[bottleneck_classifications],
    group_name="signals",
    kinds={"polars", "deltalake", "sql"},
)
def alerts(
    lake: dg.ResourceParam[Lake], store: dg.ResourceParam[Store], platform: dg.ResourceParam[Settings]
) -> dg.MaterializeResult:
    """One alert per episode of a bottleneck group (category × provider × effect type, or
    × user), open → acknowledged → resolved; new critical ones emailed to the admins once."""
    now = utcnow()
    open_rows = lake.read(BOTTLENECK_CLASSIFICATIONS, pl.col("status") == "open").to_dicts()
    changed = service.sync(store, open_rows, now, platform)
    sent = service.deliver(store, SmtpMailer.from_settings(platform), platform, utcnow)
    current = store.alerts()
    if current:
        lake.upsert(ALERTS, snapshot(current, now))
    return dg.MaterializeResult(
        metadata={
            "opened": len(changed["opened"]),
            "resolved": len(changed["resolved"]),
            "active": sum(a["state"] != "resolved" for a in current),
            "emails_sent": sent["sent"],
            "emails_dead_lettered": sent["dead_letter"],
        }
    )
