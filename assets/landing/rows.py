"""Which store table lands in which bronze table, and how a store row becomes a bronze row
(pure: no Dagster, no I/O).

The store's mirrored tables (``resources.store.models.MIRRORED``) keep the bronze tables'
column names, so a row maps by name; ``decisions`` is split by subject kind into
``approval_decisions`` (the approval id and its video, the decision's ``correlation_id``) and
``recommendation_decisions``. Columns the bronze table does not declare (a notification's
``delivered_at``, a decision's ``subject_kind``) are left out; every landed row keeps the
store's ``seq`` and ``recorded_at``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import polars as pl

from resources.schemas import (
    APPROVAL_DECISIONS,
    EFFECT_PIN_EVENTS,
    EFFECT_REVISIONS,
    EFFECT_RUNS,
    LEDGER_ENTRIES,
    NOTIFICATIONS,
    RECOMMENDATION_DECISIONS,
    UPLOAD_REJECTIONS,
    UPLOADS,
    TableSpec,
    conform,
)


@dataclass(frozen=True)
class Landing:
    """One store table → one bronze table.

    Attributes:
        source: the store table (``changes_since``'s ``table``).
        target: the bronze table; its key makes a repeated landing a no-op.
        subject_kind: for ``decisions``, the kind this table takes (others are skipped).
        rename: store column → bronze column, where the names differ.
    """

    source: str
    target: TableSpec
    subject_kind: str | None = None
    rename: Mapping[str, str] = field(default_factory=dict)


LANDINGS: tuple[Landing, ...] = (
    Landing("uploads", UPLOADS),
    Landing("upload_rejections", UPLOAD_REJECTIONS),
    Landing("ledger_entries", LEDGER_ENTRIES),
    Landing("notifications", NOTIFICATIONS),
    Landing(
        "decisions",
        APPROVAL_DECISIONS,
        subject_kind="approval",
        rename={"subject_id": "approval_id", "correlation_id": "video_id"},
    ),
    Landing(
        "decisions", RECOMMENDATION_DECISIONS, subject_kind="recommendation", rename={"subject_id": "recommendation_id"}
    ),
    Landing("effect_revisions", EFFECT_REVISIONS),
    Landing("effect_pin_events", EFFECT_PIN_EVENTS),
    # Effect runs as the API queued them (the request columns; state stays in the store).
    Landing("effect_runs", EFFECT_RUNS),
)
BY_TARGET: dict[str, Landing] = {landing.target.name: landing for landing in LANDINGS}


def to_bronze(landing: Landing, rows: list[dict]) -> pl.DataFrame:
    """The store ``rows`` (``changes_since`` dicts) that ``landing`` takes, as a frame of
    its bronze table (``conform``ed; empty and typed when none).

    Raises:
        ValueError: a row lacks the bronze key (the store and the schema disagree).
    """
    names = set(landing.target.schema.names())
    out = []
    for row in rows:
        if landing.subject_kind is not None and row.get("subject_kind") != landing.subject_kind:
            continue
        renamed = {landing.rename.get(k, k): v for k, v in row.items()}
        if any(renamed.get(k) is None for k in landing.target.key):
            raise ValueError(
                f"{landing.source} row {row.get('seq')} has no {landing.target.key} for {landing.target.name}"
            )
        out.append({k: v for k, v in renamed.items() if k in names})
    if not out:
        return pl.DataFrame(schema=landing.target.schema)
    return conform(pl.DataFrame(out, infer_schema_length=None), landing.target)
