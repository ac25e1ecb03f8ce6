"""An admin acknowledges a bottleneck classification (the dashboard's Bottlenecks page): the
acknowledgement is appended to ``bronze/alert_acknowledgements``, once per admin and
classification."""

from __future__ import annotations

import polars as pl

from economics.ids import stable_id
from resources.events import utcnow
from resources.lake import Lake
from resources.schemas import ALERT_ACKNOWLEDGEMENTS, BOTTLENECK_CLASSIFICATIONS


class UnknownClassification(LookupError):
    """No bottleneck classification has this id."""


def acknowledge(lake: Lake, classification_id: str, admin: str, note: str = "") -> dict:
    """Record that ``admin`` has seen ``classification_id``; returns the row. Acknowledging
    twice keeps the first.

    Raises:
        UnknownClassification: no such classification.
    """
    if lake.read(BOTTLENECK_CLASSIFICATIONS, pl.col("classification_id") == classification_id).is_empty():
        raise UnknownClassification(classification_id)
    row = {
        "acknowledgement_id": stable_id("ack", classification_id, admin),
        "classification_id": classification_id,
        "admin": admin,
        "note": note,
        "acknowledged_at": utcnow(),
    }
    lake.append(ALERT_ACKNOWLEDGEMENTS, pl.DataFrame([row], schema=ALERT_ACKNOWLEDGEMENTS.schema))
    return row
