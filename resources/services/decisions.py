"""Admin decisions, recorded once: the first decision on a subject stands, repeating it is
a no-op and contradicting it is a conflict. Shared by effect approvals and recommendations,
and by the API and the admin dashboard alike."""

from __future__ import annotations

import polars as pl

from resources.lake import Lake
from resources.schemas import TableSpec

DECISIONS = ("approve", "reject")


class DecisionNotFound(LookupError):
    """Nothing to decide has this id."""


class DecisionConflict(ValueError):
    """Already decided the other way; ``existing`` holds that decision row."""

    def __init__(self, existing: dict, key: str):
        super().__init__(f"{existing[key]} was already decided: {existing['decision']}")
        self.existing = existing


def record_decision(lake: Lake, spec: TableSpec, row: dict) -> dict:
    """Append ``row`` (keyed by ``spec.key[0]``) unless a decision exists; return the
    decision that stands.

    Raises:
        ValueError: ``row['decision']`` is not approve/reject.
        DecisionConflict: the subject was decided differently (also when two admins race:
            the key-idempotent append keeps the first writer's row).
    """
    if row["decision"] not in DECISIONS:
        raise ValueError(f"decision must be one of {DECISIONS}, not {row['decision']!r}")
    key = spec.key[0]
    where = pl.col(key) == row[key]
    existing = lake.read(spec, where)
    if existing.is_empty():
        lake.append(spec, pl.DataFrame([row]))
        existing = lake.read(spec, where)
    stored = existing.row(0, named=True)
    if stored["decision"] != row["decision"]:
        raise DecisionConflict(stored, key)
    return stored
