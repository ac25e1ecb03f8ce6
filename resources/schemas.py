"""Every lake table's schema, declared once (docs/architecture.md, "The lake").

Writers conform frames to these schemas before writing (``conform``) and readers get an empty
frame of the right shape when a table does not exist yet, so no code guesses a column type.
Nested values that vary by row (payloads, quality measurements, comparisons) are JSON strings:
they are read back by the code that wrote them, never filtered on in SQL. What is computed on
(execution telemetry) is typed columns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import polars as pl

from economics.bottlenecks import CLASSIFICATION_SCHEMA
from economics.ids import TASK_KEY, with_task_keys
from economics.metric_streams import STREAM_SCHEMA
from economics.off_policy import ESTIMATES_SCHEMA
from economics.outliers import ALERT_SCHEMA
from economics.recommendations import RECOMMENDATION_SCHEMA
from economics.signal_detection import SIGNAL_SCHEMA
from economics.telemetry import TELEMETRY

UTC_TS = pl.Datetime("us", "UTC")
STR_LIST = pl.List(pl.String)


@dataclass(frozen=True)
class TableSpec:
    """A lake table: its layer folder, name, schema, key columns and partition column.

    Attributes:
        layer: ``bronze`` (append-only, idempotent by key), ``silver`` (per-video partition,
            written by the Delta IO manager), or ``gold`` (economics, rebuilt each cycle).
        name: table folder name, equal to the Dagster asset name for silver/gold tables.
        schema: Polars schema; the Delta schema is derived from it.
        key: columns that identify a row; appends skip rows whose key already exists.
        partition_by: Delta partition column (``video_id`` for silver), or None.
        derive: columns computed from the others on every write (``conform``), so that no
            writer can store them inconsistent with what they derive from; None for most.
    """

    layer: str
    name: str
    schema: pl.Schema
    key: tuple[str, ...]
    partition_by: str | None = None
    derive: Callable[[pl.DataFrame], pl.DataFrame] | None = None

    @property
    def path(self) -> str:
        """Path of the table relative to the lake root: ``<layer>/<name>``."""
        return f"{self.layer}/{self.name}"


def _spec(layer: str, name: str, key: tuple[str, ...], partition_by: str | None = None, /, **cols):
    # Positional-only, so a column may be called ``name`` or ``key``.
    return TableSpec(layer, name, pl.Schema(cols), key, partition_by)


def _event_table(name: str, **extra) -> TableSpec:
    # Every event row carries the same envelope (docs/architecture.md, "The lake").
    return _spec(
        "bronze",
        name,
        ("event_id",),
        event_id=pl.String,
        event_type=pl.String,
        correlation_id=pl.String,
        stage=pl.String,
        occurred_at=UTC_TS,
        payload=pl.String,
        **extra,
    )


def _video_table(name: str, *key: str, **cols) -> TableSpec:
    # A per-video stage table: keyed and partitioned by its video, video_id first.
    return _spec("silver", name, ("video_id", *key), "video_id", video_id=pl.String, **cols)


# --- bronze: append-only, idempotent by key -------------------------------------------------
# The tables landed from the transactional store (resources/store, assets/landing) carry the
# store's ``seq`` (its landing order) and ``recorded_at`` (the store's insert time).
LANDED = {"seq": pl.Int64, "recorded_at": UTC_TS}
UPLOADS = _spec(
    "bronze",
    "uploads",
    ("video_id",),
    video_id=pl.String,
    sha256=pl.String,
    user_id=pl.String,
    filename=pl.String,
    content_type=pl.String,
    bytes=pl.Int64,
    media_key=pl.String,
    source=pl.String,
    uploaded_at=UTC_TS,
    workspace_id=pl.String,
    # the workspace's first upload of the same bytes, when this is a colleague's copy
    duplicate_of=pl.String,
    status=pl.String,
    # the uploader's priority weights as JSON {"quality", "cost", "speed"}; null = balanced
    priorities=pl.String,
    # the uploader's words for the effect they want (M2 and M4 read it); null = none given
    description=pl.String,
    **LANDED,
)
PIPELINE_EVENTS = _event_table("pipeline_events")
# Task events carry their telemetry as typed columns (null where an event type has none,
# e.g. TaskDispatched): the economics job reads them without decoding the payload.
# ``task_key_hi``/``task_key_lo`` (``economics.ids.TASK_KEY``) are the task id's numeric key,
# derived from it on every write so that the economics groups a task's events by reading two
# Int64 columns.
EXECUTION_EVENTS = replace(
    _event_table(
        "execution_events",
        task_id=pl.String,
        **dict.fromkeys(TASK_KEY, pl.Int64),
        provider_id=pl.String,
        effect_type=pl.String,
        **TELEMETRY,
    ),
    derive=with_task_keys,
)
# A job's paid calls outside the providers (Gemini: resources/gemini/pricing.py
# Usage.cost_line()), one row per call; job_margins adds them to the job's cost.
LLM_COSTS = _spec(
    "bronze",
    "llm_costs",
    ("line_id",),
    line_id=pl.String,
    correlation_id=pl.String,
    stage=pl.String,
    kind=pl.String,
    provider=pl.String,
    model=pl.String,
    operation=pl.String,
    prompt_version=pl.String,
    requests=pl.Int64,
    prompt_tokens=pl.Int64,
    output_tokens=pl.Int64,
    usd=pl.Float64,
    cache_hit=pl.Boolean,
    recorded_at=UTC_TS,
)
LEDGER_ENTRIES = _spec(
    "bronze",
    "ledger_entries",
    ("entry_id",),
    entry_id=pl.String,
    user_id=pl.String,
    correlation_id=pl.String,
    task_id=pl.String,
    kind=pl.String,
    tokens=pl.Int64,
    reason=pl.String,
    occurred_at=UTC_TS,
    **LANDED,
)
APPROVAL_DECISIONS = _spec(
    "bronze",
    "approval_decisions",
    ("approval_id",),
    approval_id=pl.String,
    video_id=pl.String,
    decision=pl.String,
    admin=pl.String,
    reason=pl.String,
    decided_at=UTC_TS,
    **LANDED,
)
UPLOAD_REJECTIONS = _spec(
    "bronze",
    "upload_rejections",
    ("rejection_id",),
    rejection_id=pl.String,
    user_id=pl.String,
    filename=pl.String,
    content_type=pl.String,
    bytes=pl.Int64,
    http_status=pl.Int64,
    code=pl.String,
    reason=pl.String,
    rejected_at=UTC_TS,
    workspace_id=pl.String,
    **LANDED,
)
# The gallery's revisions and pin moves, landed from the store (resources/store/revisions.py):
# every revision ever published (immutable) and every move of a slug's pin.
EFFECT_REVISIONS = _spec(
    "bronze",
    "effect_revisions",
    ("revision_id",),
    revision_id=pl.String,
    slug=pl.String,
    effect_type=pl.String,
    provider_id=pl.String,
    content_hash=pl.String,
    params=pl.String,
    template_id=pl.String,
    template_version=pl.Int64,
    prompt=pl.String,
    price_tokens=pl.Int64,
    snapshot=pl.String,
    render_spec=pl.String,
    output_key=pl.String,
    preview_key=pl.String,
    approval_id=pl.String,
    source_video_id=pl.String,
    created_by=pl.String,
    created_at=UTC_TS,
    **LANDED,
)
EFFECT_PIN_EVENTS = _spec(
    "bronze",
    "effect_pin_events",
    ("event_id",),
    event_id=pl.String,
    slug=pl.String,
    revision_id=pl.String,
    previous_revision_id=pl.String,
    # published (M10, on an approval of new content) | pin | rollback (an admin, API)
    kind=pl.String,
    pinned_by=pl.String,
    reason=pl.String,
    pinned_at=UTC_TS,
    **LANDED,
)
NOTIFICATIONS = _spec(
    "bronze",
    "notifications",
    ("notification_id",),
    notification_id=pl.String,
    user_id=pl.String,
    correlation_id=pl.String,
    kind=pl.String,
    title=pl.String,
    body=pl.String,
    url=pl.String,
    created_at=UTC_TS,
    **LANDED,
)

# A user's run of a published effect as the API queued it (the store's ``effect_runs`` request
# columns: its state moves in the store, its story is in pipeline_events under ``run_id``).
EFFECT_RUNS = _spec(
    "bronze",
    "effect_runs",
    ("run_id",),
    run_id=pl.String,
    user_id=pl.String,
    workspace_id=pl.String,
    slug=pl.String,
    revision_id=pl.String,
    content_hash=pl.String,
    effect_type=pl.String,
    # the run's parameters as JSON (the revision's, with the user's validated overrides)
    params=pl.String,
    video_id=pl.String,
    input_sha256=pl.String,
    # the price reserved with the run (its ledger job: job_id(run_id)): the effective price when
    # it was accepted (economics.pricing.run_price), from the pinned revision's price and the
    # runtime price parameter's change in force then (null: the revision's price stood)
    tokens=pl.Int64,
    revision_price_tokens=pl.Int64,
    price_change_id=pl.String,
    created_at=UTC_TS,
    **LANDED,
)

# --- silver: one partition per video, written by the Delta IO manager -----------------------
INGESTED_VIDEO = _video_table(
    "ingested_video",
    status=pl.String,
    reject_code=pl.String,
    reject_reason=pl.String,
    user_id=pl.String,
    container=pl.String,
    codec=pl.String,
    width=pl.Int64,
    height=pl.Int64,
    fps=pl.Float64,
    frame_count=pl.Int64,
    duration_ms=pl.Int64,
    bitrate=pl.Int64,
    bytes=pl.Int64,
    pix_fmt=pl.String,
    has_audio=pl.Boolean,
    header_fps=pl.Float64,
    header_frame_count=pl.Int64,
    proxy_key=pl.String,
    proxy_width=pl.Int64,
    proxy_height=pl.Int64,
    proxy_fps=pl.Float64,
    ingest_ms=pl.Int64,
    ingested_at=UTC_TS,
)
CONTENT_ANALYSIS = _video_table(
    "content_analysis",
    scene_count=pl.Int64,
    scene_cuts_ms=pl.List(pl.Int64),
    motion_level=pl.Float64,
    motion_class=pl.String,
    temperature_class=pl.String,
    mean_luma=pl.Float64,
    mean_saturation=pl.Float64,
    color_temperature=pl.Float64,
    contrast=pl.Float64,
    palette_colours=pl.Float64,
    luma_levels=pl.Float64,
    edge_density=pl.Float64,
    repeat_share=pl.Float64,
    dominant_style=pl.String,
    style_scores=pl.String,
    detected_effects=STR_LIST,
    # The effect types the job builds, primary first (assets/analysis/targets.py), their
    # parameters estimated from the example and why each is a target, as JSON by effect type.
    target_effect_types=STR_LIST,
    target_params=pl.String,
    target_reasons=pl.String,
    borderline=STR_LIST,
    analysis_ms=pl.Int64,
    description=pl.String,
    # Gemini's words when it answered (resources/gemini/fallback.py merge_analysis); scenes JSON.
    summary=pl.String,
    scenes=pl.String,
    motion_pattern=pl.String,
    description_use=pl.String,
    # Where the row came from: analysis_source gemini | local, field_sources JSON field → source,
    # fallback_reason (why not Gemini), the Gemini model and prompt version asked.
    analysis_source=pl.String,
    field_sources=pl.String,
    fallback_reason=pl.String,
    gemini_model=pl.String,
    prompt_version=pl.String,
    analysis_attempts=pl.Int64,
)
PROMPT_VARIANTS = _video_table(
    "prompt_variants",
    "variant_id",
    variant_id=pl.String,
    effect_type=pl.String,
    template_id=pl.String,
    template_version=pl.Int64,
    prompt=pl.String,
    params=pl.String,
    # gemini (refined by resources/gemini refine_prompt) | local (the template as rendered)
    prompt_source=pl.String,
    # why the effect's own template was not used (then template_id is the generic one)
    template_error=pl.String,
)
TEST_BATCH = _video_table(
    "test_batch",
    "task_id",
    task_id=pl.String,
    effect_type=pl.String,
    provider_id=pl.String,
    rank=pl.Int64,
    selection=pl.String,
    # probability the routing draw included this provider (economics.routing
    # inclusion_probabilities); null for a fallback task
    propensity=pl.Float64,
    manifest_version=pl.String,
    user_id=pl.String,
    # The video's job reservation (one per job, ``economics.ledger.job_id``), repeated on
    # each of its task rows like ``user_id``: never sum it over tasks.
    tokens_reserved=pl.Int64,
    prompt=pl.String,
    params=pl.String,
    # media key of the neutral reference clip the provider renders the effect on
    input_key=pl.String,
    dispatched_at=UTC_TS,
    # The effect type's other manifest providers, best first: where a ranked task falls back
    # when its provider fails for good or its breaker is open (M6).
    fallbacks=STR_LIST,
)
PROVIDER_OUTPUTS = _video_table(
    "provider_outputs",
    "task_id",
    task_id=pl.String,
    effect_type=pl.String,
    provider_id=pl.String,
    selection=pl.String,
    status=pl.String,
    output_key=pl.String,
    duration_ms=pl.Int64,
    queue_wait_ms=pl.Int64,
    compute_seconds=pl.Float64,
    instance_type=pl.String,
    partner_cost_usd=pl.Float64,
    attempts=pl.Int64,
    error_class=pl.String,
    error_message=pl.String,
    node_timings=pl.String,
    finished_at=UTC_TS,
    # How the output was rendered, as JSON (resources/providers/render_spec.py): provider and
    # its version, adapter, workflow and its hash, parameters, seeds, toolchain versions, the
    # input's key and sha256, the output's sha256. `effectlake rerender` re-runs it.
    render_spec=pl.String,
)
# The quality vector's measures, each in [0, 1], the headline composite first: the columns of
# quality_scores that the approval comparison, the gallery snapshot and the admin dashboard show.
QUALITY_METRICS = (
    "composite",
    "fidelity",
    "artifacts",
    "style_adherence",
    "temporal_consistency",
    "perceptual_hash_distance",
)
QUALITY_SCORES = _video_table(
    "quality_scores",
    "task_id",
    task_id=pl.String,
    effect_type=pl.String,
    provider_id=pl.String,
    status=pl.String,
    fidelity=pl.Float64,
    artifacts=pl.Float64,
    style_adherence=pl.Float64,
    temporal_consistency=pl.Float64,
    perceptual_hash_distance=pl.Float64,
    composite=pl.Float64,
    confidence=pl.Float64,
    gate_passed=pl.Boolean,
    gate_failures=STR_LIST,
    measurements=pl.String,
    rank=pl.Int64,
    scoring_ms=pl.Int64,
    # why scoring itself failed (status unknown, confidence 0, output still usable: ranked
    # after every scored output); null when it did not
    quality_error=pl.String,
    cost_usd=pl.Float64,
    tokens_charged=pl.Int64,
    margin=pl.Float64,
    # Per-frame series (assets/quality/score.py QualityVector): full-reference metrics per
    # input frame on the common timeline, artifact level per output frame, damaged output
    # frames. Compact list columns: one row per output keeps the table's key and readers.
    frame_vmaf=pl.List(pl.Float64),
    frame_psnr_y=pl.List(pl.Float64),
    frame_ssim=pl.List(pl.Float64),
    frame_artifacts=pl.List(pl.Float64),
    damaged_frames=pl.List(pl.Int64),
)
BEST_RESULT = _video_table(
    "best_result",
    outcome=pl.String,
    task_id=pl.String,
    effect_type=pl.String,
    provider_id=pl.String,
    score=pl.Float64,
    composite=pl.Float64,
    cost_usd=pl.Float64,
    duration_ms=pl.Int64,
    margin=pl.Float64,
    candidates=pl.Int64,
    output_key=pl.String,
    selected_at=UTC_TS,
)
APPROVAL_REQUESTS = _video_table(
    "approval_requests",
    "approval_id",
    approval_id=pl.String,
    task_id=pl.String,
    effect_type=pl.String,
    provider_id=pl.String,
    user_id=pl.String,
    status=pl.String,
    comparison=pl.String,
    preview_url=pl.String,
    requested_at=UTC_TS,
)
# The video's publication outcome (M10): the revision its approval stands for — written once
# in the store's effect_revisions (landed below) — whether this publication wrote it and
# whether it moved the slug's pin. A re-run overwrites this row, never a revision.
GALLERY_REVISIONS = _video_table(
    "gallery_revisions",
    "revision_id",
    revision_id=pl.String,
    slug=pl.String,
    approval_id=pl.String,
    decision=pl.String,
    effect_type=pl.String,
    provider_id=pl.String,
    task_id=pl.String,
    snapshot=pl.String,
    content_hash=pl.String,
    published=pl.Boolean,
    output_key=pl.String,
    # the content-addressed published copy of the output (published/<sha256>.mp4)
    preview_key=pl.String,
    new_revision=pl.Boolean,
    pin_moved=pl.Boolean,
    published_at=UTC_TS,
)
# One row per provider task a user's effect run made (assets/runs): the provider the manifest
# routed it to, its fallbacks and shadow copies, each with its outcome and the technical gate;
# or one ``cache`` row when a stored output was reused. Partitioned by run (the ``runs``
# partitions), like the per-video tables by video.
RUN_OUTPUTS = _spec(
    "silver",
    "run_outputs",
    ("run_id", "task_id"),
    "run_id",
    run_id=pl.String,
    task_id=pl.String,
    user_id=pl.String,
    slug=pl.String,
    revision_id=pl.String,
    effect_type=pl.String,
    provider_id=pl.String,
    # what makes the provider's output (adapter and workflow), part of the result-cache key
    provider_version=pl.String,
    # ranked (routed by exploitation, or a fallback) | exploration | shadow | cache
    selection=pl.String,
    # the run's routing decision (exploit | explore | forced | cache) and its probability
    routing_decision=pl.String,
    propensity=pl.Float64,
    # succeeded | failed (the provider's outcome) | cached (a reused output)
    status=pl.String,
    gate_passed=pl.Boolean,
    gate_failures=STR_LIST,
    # the one task whose output the user got (and was charged for)
    delivered=pl.Boolean,
    output_key=pl.String,
    cache_key=pl.String,
    # a cache hit: the delivered task whose output is reused, and its run
    cached_from_task_id=pl.String,
    cached_from_run_id=pl.String,
    duration_ms=pl.Int64,
    compute_seconds=pl.Float64,
    error_class=pl.String,
    error_message=pl.String,
    finished_at=UTC_TS,
)

PROVIDER_REGISTRY = _spec(
    "silver",
    "provider_registry",
    ("snapshot_id",),
    snapshot_id=pl.String,
    registry_version=pl.String,
    provider_id=pl.String,
    adapter=pl.String,
    mode=pl.String,
    effect_types=STR_LIST,
    instance_type=pl.String,
    healthy=pl.Boolean,
    health_detail=pl.String,
    latency_ms=pl.Int64,
    checked_at=UTC_TS,
    # the provider's circuit breaker at the check: closed | open | half_open (the store's)
    breaker_state=pl.String,
)

# --- gold: economics, rebuilt each cycle -----------------------------------------------------
EXECUTION_COSTS = _spec(
    "gold",
    "execution_costs",
    ("task_id",),
    task_id=pl.String,
    video_id=pl.String,
    provider_id=pl.String,
    effect_type=pl.String,
    instance_type=pl.String,
    status=pl.String,
    selection=pl.String,
    # the routing decision's propensity (economics.telemetry); off-policy evaluation reads it
    propensity=pl.Float64,
    source=pl.String,
    # creation (a video's test batch) | run (a user's run of a published effect)
    job_kind=pl.String,
    compute_seconds=pl.Float64,
    compute_cost_usd=pl.Float64,
    startup_cost_usd=pl.Float64,
    idle_cost_usd=pl.Float64,
    partner_cost_usd=pl.Float64,
    storage_cost_usd=pl.Float64,
    bandwidth_cost_usd=pl.Float64,
    cost_usd=pl.Float64,
    output_bytes=pl.Int64,
    tokens_charged=pl.Int64,
    revenue_usd=pl.Float64,
    cost_tokens=pl.Float64,
    margin=pl.Float64,
    duration_ms=pl.Int64,
    # an effect run served from the result cache (selection cache, status cached): no provider
    # ran, every cost term is 0, it carries the run's charge; saved_cost_usd is what the reused
    # output cost to make (economics.revenue.cache_hit_costs). Null before cache hits were costed.
    cache_hit=pl.Boolean,
    saved_cost_usd=pl.Float64,
    finished_at=UTC_TS,
)
MARGINALITY_WINDOWS = _spec(
    "gold",
    "marginality_windows",
    ("window", "provider_id", "effect_type", "source"),
    window=pl.String,
    window_start=UTC_TS,
    window_end=UTC_TS,
    provider_id=pl.String,
    effect_type=pl.String,
    source=pl.String,
    # provider executions (cache hits apart: no provider ran)
    executions=pl.Int64,
    succeeded=pl.Int64,
    # effect runs served from the result cache: their charge is in tokens_charged / revenue_usd
    # at no cost; saved_cost_usd is what their reused outputs cost to make
    cache_hits=pl.Int64,
    saved_cost_usd=pl.Float64,
    tokens_charged=pl.Int64,
    cost_tokens=pl.Float64,
    revenue_usd=pl.Float64,
    cost_usd=pl.Float64,
    margin=pl.Float64,
)
# One row per job (a video's effect creation, or a user's effect run): what it was charged and
# what every task it ran cost (economics.revenue.job_margins). ``video_id`` is the job's
# correlation id: the video of a creation, the run id of a run.
JOB_MARGINS = _spec(
    "gold",
    "job_margins",
    ("job_id",),
    job_id=pl.String,
    video_id=pl.String,
    job_kind=pl.String,
    user_id=pl.String,
    delivered_task_id=pl.String,
    provider_id=pl.String,
    effect_type=pl.String,
    tasks=pl.Int64,
    tokens_charged=pl.Int64,
    revenue_usd=pl.Float64,
    cost_usd=pl.Float64,
    ranked_cost_usd=pl.Float64,
    exploration_cost_usd=pl.Float64,
    shadow_cost_usd=pl.Float64,
    llm_cost_usd=pl.Float64,
    cost_tokens=pl.Float64,
    margin=pl.Float64,
    # a run served from the result cache: no provider ran; saved_cost_usd is what its
    # output cost when it was made (the reused task's cost_usd)
    cache_hit=pl.Boolean,
    saved_cost_usd=pl.Float64,
    finished_at=UTC_TS,
)
ROUTING_MANIFESTS = _spec(
    "gold",
    "routing_manifests",
    ("version", "effect_type", "provider_id"),
    version=pl.String,
    effect_type=pl.String,
    rank=pl.Int64,
    provider_id=pl.String,
    score=pl.Float64,
    expected_cost_usd=pl.Float64,
    expected_quality=pl.Float64,
    expected_duration_ms=pl.Float64,
    confidence=pl.Float64,
    executions=pl.Int64,
    reason=pl.String,
    published_at=UTC_TS,
    # the provider's circuit breaker when published (closed | open | half_open); an open one
    # is not available: ranked last with weight 0 (economics.routing.build_manifest)
    breaker=pl.String,
    available=pl.Boolean,
)
# Off-policy estimates of every published manifest (economics.off_policy.change_estimates):
# per estimator, the new manifest's and the replaced one's margin per routed job on the same
# logged decisions, with their 95 % intervals.
ROUTING_ESTIMATES = TableSpec("gold", "routing_estimates", ESTIMATES_SCHEMA, ("version", "policy", "estimator"))

# A provider run scored outside the per-video chain (``run_and_score``, then costed): what
# a benchmark report and an A/B result record of it.
_SCORED_RUN = {
    "status": pl.String,
    "error_class": pl.String,
    "composite": pl.Float64,
    "fidelity": pl.Float64,
    "style_adherence": pl.Float64,
    "artifacts": pl.Float64,
    "gate_passed": pl.Boolean,
    "duration_ms": pl.Int64,
    "compute_seconds": pl.Float64,
    "instance_type": pl.String,
    "cost_usd": pl.Float64,
}
BENCHMARK_REPORTS = _spec(
    "gold",
    "benchmark_reports",
    ("benchmark_id", "video", "provider_id", "effect_type"),
    benchmark_id=pl.String,
    registry_version=pl.String,
    video=pl.String,
    provider_id=pl.String,
    effect_type=pl.String,
    mode=pl.String,
    **_SCORED_RUN,
    tokens_charged=pl.Int64,
    margin=pl.Float64,
    ran_at=UTC_TS,
)
PROVIDER_EFFECT_MATRIX = _spec(
    "gold",
    "provider_effect_matrix",
    ("source", "provider_id", "effect_type"),
    source=pl.String,
    provider_id=pl.String,
    effect_type=pl.String,
    runs=pl.Int64,
    success_rate=pl.Float64,
    mean_quality=pl.Float64,
    p50_duration_ms=pl.Float64,
    p95_duration_ms=pl.Float64,
    mean_cost_usd=pl.Float64,
    margin=pl.Float64,
    benchmark_id=pl.String,
    computed_at=UTC_TS,
)

AB_REQUESTS = _spec(
    "bronze",
    "ab_requests",
    ("experiment_id",),
    experiment_id=pl.String,
    video_id=pl.String,
    effect_type=pl.String,
    providers=STR_LIST,
    admin=pl.String,
    requested_at=UTC_TS,
)
AB_RESULTS = _spec(
    "gold",
    "ab_results",
    ("experiment_id", "provider_id"),
    experiment_id=pl.String,
    task_id=pl.String,
    video_id=pl.String,
    effect_type=pl.String,
    provider_id=pl.String,
    **_SCORED_RUN,
    output_key=pl.String,
    ran_at=UTC_TS,
)
COST_ESTIMATE_ACCURACY = _spec(
    "gold",
    "cost_estimate_accuracy",
    ("provider_id", "effect_type"),
    provider_id=pl.String,
    effect_type=pl.String,
    n=pl.Int64,
    mape=pl.Float64,
    p90_ape=pl.Float64,
    coverage=pl.Float64,
    computed_at=UTC_TS,
)
RECOMMENDATIONS = TableSpec("gold", "recommendations", RECOMMENDATION_SCHEMA, ("recommendation_id",))
RECOMMENDATION_DECISIONS = _spec(
    "bronze",
    "recommendation_decisions",
    ("recommendation_id",),
    recommendation_id=pl.String,
    type=pl.String,
    title=pl.String,
    decision=pl.String,
    admin=pl.String,
    reason=pl.String,
    decided_at=UTC_TS,
    **LANDED,
)

# --- the economic engine (docs/signals.md) ---------------------------------------------------
METRIC_STREAMS = TableSpec(
    "gold",
    "metric_streams",
    STREAM_SCHEMA,
    ("bucket_start", "stream"),
)
SIGNALS = TableSpec("gold", "signals", SIGNAL_SCHEMA, ("signal_id",))
# What the economics job's unattended applier decided about each auto-applicable
# recommendation (resources/services/recommendations.auto_apply), once per outcome: applied
# (change_id: the store's audit row) | deferred (the cycle's limit) | refused (a guardrail) |
# not_applicable | stale | failed.
RECOMMENDATION_APPLICATIONS = _spec(
    "gold",
    "recommendation_applications",
    ("application_id",),
    application_id=pl.String,
    recommendation_id=pl.String,
    type=pl.String,
    outcome=pl.String,
    detail=pl.String,
    change_id=pl.String,
    decided_at=UTC_TS,
)
ECONOMIC_ALERTS = TableSpec("gold", "economic_alerts", ALERT_SCHEMA, ("alert_id",))
BOTTLENECK_CLASSIFICATIONS = TableSpec(
    "gold", "bottleneck_classifications", CLASSIFICATION_SCHEMA, ("classification_id",)
)
# What the automatic actions did about a classification (economics/actions.py): one row per
# classification × action × phase (apply; restore when it clears). outcome: done | recommended |
# flagged | skipped | failed | simulated; change_id: the store's parameter change (audit) it made;
# proposal: JSON of the change or recommendation proposed, with its numbers.
BOTTLENECK_ACTIONS = _spec(
    "bronze",
    "bottleneck_actions",
    ("action_id",),
    action_id=pl.String,
    classification_id=pl.String,
    category=pl.String,
    action=pl.String,
    phase=pl.String,
    outcome=pl.String,
    detail=pl.String,
    change_id=pl.String,
    proposal=pl.String,
    taken_at=UTC_TS,
)
# The alerts (resources/store/alerts.py) as the signals job left them: a snapshot of each
# alert's state, upserted every cycle, for the lake's readers (the store holds the lifecycle).
ALERTS = _spec(
    "gold",
    "alerts",
    ("alert_id",),
    alert_id=pl.String,
    category=pl.String,
    severity=pl.String,
    state=pl.String,
    scope=pl.String,
    provider_id=pl.String,
    effect_type=pl.String,
    user_id=pl.String,
    source=pl.String,
    title=pl.String,
    runbook=pl.String,
    cost_impact_usd_per_hour=pl.Float64,
    classifications=pl.Int64,
    opened_at=UTC_TS,
    last_seen_at=UTC_TS,
    acknowledged_by=pl.String,
    acknowledged_at=UTC_TS,
    resolved_by=pl.String,
    resolved_at=UTC_TS,
    resolution=pl.String,
    emails_sent=pl.Int64,
    emails_dead_lettered=pl.Int64,
    snapshot_at=UTC_TS,
)
# Warning and error log lines of every process (resources/logconfig.py), landed in batches.
PLATFORM_LOGS = _spec(
    "bronze",
    "platform_logs",
    ("log_id",),
    log_id=pl.String,
    logged_at=UTC_TS,
    level=pl.String,
    logger=pl.String,
    event=pl.String,
    event_type=pl.String,
    economic_impact_usd=pl.Float64,
    urgency=pl.String,
    operator_action=pl.String,
    runbook=pl.String,
    provider_id=pl.String,
    process=pl.String,
    context=pl.String,
)

ALL_TABLES: tuple[TableSpec, ...] = (
    UPLOADS,
    UPLOAD_REJECTIONS,
    PIPELINE_EVENTS,
    EXECUTION_EVENTS,
    LLM_COSTS,
    LEDGER_ENTRIES,
    APPROVAL_DECISIONS,
    NOTIFICATIONS,
    EFFECT_REVISIONS,
    EFFECT_PIN_EVENTS,
    EFFECT_RUNS,
    INGESTED_VIDEO,
    CONTENT_ANALYSIS,
    PROMPT_VARIANTS,
    TEST_BATCH,
    PROVIDER_OUTPUTS,
    QUALITY_SCORES,
    BEST_RESULT,
    APPROVAL_REQUESTS,
    GALLERY_REVISIONS,
    RUN_OUTPUTS,
    PROVIDER_REGISTRY,
    EXECUTION_COSTS,
    MARGINALITY_WINDOWS,
    JOB_MARGINS,
    ROUTING_MANIFESTS,
    ROUTING_ESTIMATES,
    BENCHMARK_REPORTS,
    PROVIDER_EFFECT_MATRIX,
    RECOMMENDATIONS,
    RECOMMENDATION_DECISIONS,
    RECOMMENDATION_APPLICATIONS,
    COST_ESTIMATE_ACCURACY,
    AB_REQUESTS,
    AB_RESULTS,
    METRIC_STREAMS,
    SIGNALS,
    ECONOMIC_ALERTS,
    BOTTLENECK_CLASSIFICATIONS,
    BOTTLENECK_ACTIONS,
    ALERTS,
    PLATFORM_LOGS,
)
BY_NAME = {t.name: t for t in ALL_TABLES}
# The per-video stage tables (M1 … M10): one partition per video; each stage appends its events.
VIDEO_TABLES: tuple[TableSpec, ...] = tuple(t for t in ALL_TABLES if t.partition_by == "video_id")


def conform(df: pl.DataFrame, spec: TableSpec) -> pl.DataFrame:
    """Return ``df`` with exactly ``spec``'s columns, in order, cast to its types, and its
    derived columns (``TableSpec.derive``) computed.

    Missing columns become typed nulls (so an all-null column is never written as Null type).

    Raises:
        ValueError: ``df`` has a column the schema does not declare (a typo would otherwise
            be dropped silently).
    """
    extra = set(df.columns) - set(spec.schema.names())
    if extra:
        raise ValueError(f"{spec.name}: columns not in schema: {sorted(extra)}")
    rows = df.select(
        [(pl.col(c) if c in df.columns else pl.lit(None)).cast(t).alias(c) for c, t in spec.schema.items()]
    )
    return rows if spec.derive is None else spec.derive(rows)
