"""The bronze tables and the transactional store's tables in the asset graph.

Three kinds of node, so the lineage shows who writes each table and who reads it:

* **store tables** (``STORE``, group ``store``): the SQL store's mirrored tables
  (``resources/store/models.py``), external ``AssetSpec``s keyed ``store/<table>``. Their
  ``deps`` are the assets whose runs write them (M5 reserves a job → ``store/ledger_entries``)
  and, for rows the API writes outside any run, the table the API reads to write them (an
  admin decides on an ``approval_requests`` row → ``store/decisions``).
* **landed bronze tables** (``assets.landing.asset.LANDING_ASSETS``): materialized by the
  landing job from their store table, so ``store/uploads`` → ``bronze/uploads``.
* **appended bronze tables** (``BRONZE``): external ``AssetSpec``s that stages append to
  inside their runs (events) or the API outside them (A/B requests). Appends made inside a
  run are reported as materializations by ``pipelines.reporting_lake``; the sensors that
  watch a table report an observation with the Delta version they saw.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from assets.lineage import store_table_key, table_key
from resources.schemas import (
    AB_REQUESTS,
    APPROVAL_REQUESTS,
    BEST_RESULT,
    BOTTLENECK_ACTIONS,
    CONTENT_ANALYSIS,
    EXECUTION_EVENTS,
    GALLERY_REVISIONS,
    INGESTED_VIDEO,
    LLM_COSTS,
    PIPELINE_EVENTS,
    PROMPT_VARIANTS,
    PROVIDER_OUTPUTS,
    QUALITY_SCORES,
    RECOMMENDATIONS,
    RUN_OUTPUTS,
    TEST_BATCH,
    VIDEO_TABLES,
    TableSpec,
)

GROUP = "bronze"
STORE_GROUP = "store"


def _bronze(spec: TableSpec, description: str, upstream: Sequence[TableSpec] = ()) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=table_key(spec),
        deps=[table_key(u) for u in upstream],
        group_name=GROUP,
        kinds={"deltalake"},
        description=description,
        metadata={"key": ", ".join(spec.key)},
    )


def _store(
    table: str, description: str, upstream: Sequence[TableSpec] = (), store_upstream: Sequence[str] = ()
) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=store_table_key(table),
        deps=[table_key(u) for u in upstream] + [store_table_key(t) for t in store_upstream],
        group_name=STORE_GROUP,
        kinds={"sql"},
        description=description,
        metadata={"table": table},
    )


pipeline_events = _bronze(
    PIPELINE_EVENTS,
    "Stage events of every video (VideoIngested … EffectPublished) and of every effect run "
    "(RunStarted … RunDelivered | RunRefunded, under the run id), appended by each stage.",
    upstream=[*VIDEO_TABLES, RUN_OUTPUTS],
)
execution_events = _bronze(
    EXECUTION_EVENTS,
    "Provider task events: TaskDispatched (M5, effect runs), TaskSucceeded / TaskFailed with measured "
    "telemetry (M6, effect runs; job_kind creation | run); `effectlake simulate` appends simulated ones "
    "outside runs.",
    upstream=[TEST_BATCH, PROVIDER_OUTPUTS, RUN_OUTPUTS],
)
llm_costs = _bronze(
    LLM_COSTS,
    "A job's Gemini calls (analysis M2, prompt refinement M4, judge M7), one cost line each; "
    "job_margins adds them to the job's cost.",
    upstream=[CONTENT_ANALYSIS, PROMPT_VARIANTS, QUALITY_SCORES],
)
ab_requests = _bronze(
    AB_REQUESTS, "Admin A/B test requests on an ingested video (written by the API).", upstream=[INGESTED_VIDEO]
)

BRONZE: list[dg.AssetSpec] = [pipeline_events, execution_events, llm_costs, ab_requests]

STORE: list[dg.AssetSpec] = [
    _store("uploads", "Uploads, written by the intake API (random video ids, per-workspace de-duplication)."),
    _store("upload_rejections", "Uploads the intake API refused, written by it."),
    _store(
        "ledger_entries",
        "The token ledger with row-locked balances: credits (API), one reservation per job (M5 test_batch; "
        "an effect run's by the API with the run), consume on delivery (M5 best_result, run_outputs), refund "
        "(no usable result, M10 rejection, a run nothing delivered).",
        upstream=[CONTENT_ANALYSIS, TEST_BATCH, BEST_RESULT, GALLERY_REVISIONS, RUN_OUTPUTS],
    ),
    _store(
        "notifications",
        "The notification outbox, written by the stages that tell a user something (and the "
        "bottleneck actions' token-depletion notice).",
        upstream=[
            INGESTED_VIDEO,
            CONTENT_ANALYSIS,
            TEST_BATCH,
            BEST_RESULT,
            APPROVAL_REQUESTS,
            GALLERY_REVISIONS,
            RUN_OUTPUTS,
            BOTTLENECK_ACTIONS,
        ],
    ),
    _store(
        "decisions",
        "Admin decisions on approval requests and recommendations (written by the API or the dashboard).",
        upstream=[APPROVAL_REQUESTS, RECOMMENDATIONS],
    ),
    _store(
        "effect_revisions",
        "The gallery's revisions, each written once by M10 when an admin's approval publishes new content.",
        upstream=[GALLERY_REVISIONS],
    ),
    _store(
        "effect_pin_events",
        "Every move of a gallery slug's pin: M10's on publishing new content, and an admin's pin or rollback "
        "(the API reads the slug's revisions to move it).",
        upstream=[GALLERY_REVISIONS],
        store_upstream=["effect_revisions"],
    ),
    _store(
        "effect_runs",
        "Users' runs of published effects, queued by the API against the gallery's pinned revision (with their "
        "reservation); their state (running, delivered, refunded; routing, output) is operational, moved by "
        "run_outputs like an upload's status.",
        upstream=[GALLERY_REVISIONS],
    ),
]
