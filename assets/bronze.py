"""The bronze tables as external assets: append-only tables that Dagster does not
materialize itself, so the lineage graph still shows who writes them and who reads them.

Each spec's ``deps`` are the assets whose runs append to the table (e.g. ``test_batch`` and
``provider_outputs`` → ``execution_events``), and, for tables the API writes outside any
run, the tables the API reads to write them (an admin decides on an ``approval_requests``
row → ``approval_decisions``). Appends made inside a run are reported as materializations of
these assets by ``pipelines.reporting_lake``; the sensors that watch the API's tables report
an observation with the Delta version they saw.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from assets.lineage import table_key
from resources.schemas import (
    AB_REQUESTS,
    APPROVAL_DECISIONS,
    APPROVAL_REQUESTS,
    BEST_RESULT,
    EXECUTION_EVENTS,
    GALLERY_REVISIONS,
    INGESTED_VIDEO,
    LEDGER_ENTRIES,
    NOTIFICATIONS,
    PIPELINE_EVENTS,
    PROVIDER_OUTPUTS,
    RECOMMENDATION_DECISIONS,
    RECOMMENDATIONS,
    TEST_BATCH,
    UPLOAD_REJECTIONS,
    UPLOADS,
    VIDEO_TABLES,
    TableSpec,
)

GROUP = "bronze"


def _bronze(spec: TableSpec, description: str, upstream: Sequence[TableSpec] = ()) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=table_key(spec),
        deps=[table_key(u) for u in upstream],
        group_name=GROUP,
        kinds={"deltalake"},
        description=description,
        metadata={"key": ", ".join(spec.key)},
    )


uploads = _bronze(UPLOADS, "Accepted upload requests, one per distinct video (written by the intake API).")
upload_rejections = _bronze(
    UPLOAD_REJECTIONS, "Uploads the intake API refused (size, type, quota) with the HTTP status and reason."
)
pipeline_events = _bronze(
    PIPELINE_EVENTS,
    "Stage events of every video (VideoIngested … EffectPublished), appended by each stage.",
    upstream=VIDEO_TABLES,
)
execution_events = _bronze(
    EXECUTION_EVENTS,
    "Provider task events: TaskDispatched (M5), TaskSucceeded / TaskFailed with measured "
    "telemetry (M6); `effectlake simulate` appends simulated ones outside runs.",
    upstream=[TEST_BATCH, PROVIDER_OUTPUTS],
)
ledger_entries = _bronze(
    LEDGER_ENTRIES,
    "Token ledger: reservations (M5), consumption or refund per task (M6, M5 best result, "
    "M10 rejection); credits and top-ups come from the API outside runs.",
    upstream=[TEST_BATCH, PROVIDER_OUTPUTS, BEST_RESULT, GALLERY_REVISIONS],
)
notifications = _bronze(
    NOTIFICATIONS,
    "In-app notifications to users, appended by the stages that tell them something.",
    upstream=[INGESTED_VIDEO, TEST_BATCH, BEST_RESULT, APPROVAL_REQUESTS, GALLERY_REVISIONS],
)
approval_decisions = _bronze(
    APPROVAL_DECISIONS,
    "Admin decisions on approval requests (written by the API or the dashboard).",
    upstream=[APPROVAL_REQUESTS],
)
recommendation_decisions = _bronze(
    RECOMMENDATION_DECISIONS,
    "Admin decisions on recommendations (written by the API or the dashboard).",
    upstream=[RECOMMENDATIONS],
)
ab_requests = _bronze(
    AB_REQUESTS, "Admin A/B test requests on an ingested video (written by the API).", upstream=[INGESTED_VIDEO]
)

BRONZE: list[dg.AssetSpec] = [
    uploads,
    upload_rejections,
    pipeline_events,
    execution_events,
    ledger_entries,
    notifications,
    approval_decisions,
    recommendation_decisions,
    ab_requests,
]
