"""The one Dagster ``Definitions`` of effectlake (loaded by ``workspace.yaml``).

Resources come from ``resources.settings.Settings`` (environment variables: ``LAKE_URI``,
``MEDIA_URI``, ``MANIFEST_URI``…), so ``dagster dev``, the daemon, the API and the CLI all
point at the same lake; tests build their own with ``build_definitions(settings)``.
"""

from __future__ import annotations

import dagster as dg
from dagster_deltalake import LocalConfig, S3Config
from dagster_deltalake_polars import DeltaLakePolarsIOManager

from assets.analysis.asset import content_analysis
from assets.approval.asset import approval_requests
from assets.batch.asset import test_batch
from assets.batch.best import best_result
from assets.benchmark.asset import benchmark_reports, provider_effect_matrix
from assets.bronze import BRONZE, STORE
from assets.execution.asset import provider_outputs
from assets.gallery.asset import gallery_revisions
from assets.gold.ab import ab_results
from assets.gold.actions import bottleneck_actions
from assets.gold.advice import cost_estimate_accuracy, recommendation_applications, recommendations
from assets.gold.alerts import alerts
from assets.gold.economics import (
    execution_costs,
    job_margins,
    marginality_windows,
    routing_estimates,
    routing_manifest,
)
from assets.gold.logs import platform_logs
from assets.gold.signals import bottleneck_classifications, economic_alerts, metric_streams, signals
from assets.ingest.asset import ingested_video
from assets.landing.asset import LANDING_ASSETS
from assets.prompts.asset import prompt_variants
from assets.quality.asset import quality_scores
from assets.registry.asset import provider_registry
from assets.runs.asset import run_outputs
from pipelines.checks import CHECKS
from pipelines.executors import executor_for
from pipelines.jobs import (
    BENCHMARK_CRON,
    ECONOMICS_CRON,
    ab_job,
    benchmark_job,
    collect_job,
    economics_job,
    effect_run_job,
    evaluation_job,
    intake_job,
    landing_job,
    publish_job,
)
from pipelines.recovery.sensor import build_recovery_sensor
from pipelines.reporting_lake import RunReportingLakeResource
from pipelines.sensors import (
    ab_test_sensor,
    approval_sensor,
    completion_sensor,
    landing_sensor,
    provider_change_sensor,
    remote_task_sensor,
    run_sensor,
    upload_sensor,
)
from pipelines.signals import (
    SIGNALS_CRON,
    actions_job,
    after_economics_sensor,
    bottleneck_action_sensor,
    signals_job,
)
from resources import logconfig
from resources.allocator import keep_freed_pages
from resources.clients import Clients
from resources.dagster_resources import client_resources
from resources.settings import Settings, get_settings

ASSETS = [
    ingested_video,
    content_analysis,
    provider_registry,
    prompt_variants,
    test_batch,
    provider_outputs,
    quality_scores,
    best_result,
    approval_requests,
    gallery_revisions,
    run_outputs,
    execution_costs,
    marginality_windows,
    job_margins,
    routing_manifest,
    routing_estimates,
    benchmark_reports,
    provider_effect_matrix,
    cost_estimate_accuracy,
    recommendations,
    recommendation_applications,
    ab_results,
    platform_logs,
    metric_streams,
    signals,
    economic_alerts,
    bottleneck_classifications,
    bottleneck_actions,
    alerts,
    *LANDING_ASSETS,
    *BRONZE,
    *STORE,
]


def build_schedules(running: bool) -> list[dg.ScheduleDefinition]:
    """The cron schedules: economics every 15 minutes, signals every 5, the benchmark weekly
    (names ``<job>_schedule``), each starting RUNNING when the daemon starts if ``running``,
    else STOPPED (``Settings.schedules_running``). A state set in the UI overrides either."""
    status = dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED
    return [
        dg.ScheduleDefinition(job=job, cron_schedule=cron, default_status=status)
        for job, cron in ((economics_job, ECONOMICS_CRON), (benchmark_job, BENCHMARK_CRON), (signals_job, SIGNALS_CRON))
    ]


def build_resources(settings: Settings) -> dict:
    """Resource instances for ``settings``: the client wrappers and ``platform``
    (``resources.dagster_resources.client_resources``) and the Delta IO manager, rooted where
    the lake client is, so both see the same tables. The lake reports stages' appends to
    bronze tables as those tables' materializations (``pipelines.reporting_lake``)."""
    lake = Clients.from_settings(settings).lake
    storage = S3Config() if lake.root.startswith("s3://") else LocalConfig()
    return {
        **client_resources(settings),
        "lake": RunReportingLakeResource(**lake.model_dump()),
        "io_manager": DeltaLakePolarsIOManager(root_uri=lake.root, storage_options=storage),
    }


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    """The Definitions for ``settings`` (default: read from the environment); every job runs
    with the executor ``settings.executor`` names (``pipelines.executors``)."""
    settings = settings or get_settings()
    logconfig.configure()
    keep_freed_pages()  # every run process does per-frame array work (resources/allocator.py)
    return dg.Definitions(
        assets=ASSETS,
        asset_checks=CHECKS,
        jobs=[
            landing_job,
            intake_job,
            collect_job,
            evaluation_job,
            publish_job,
            effect_run_job,
            economics_job,
            benchmark_job,
            ab_job,
            signals_job,
            actions_job,
        ],
        sensors=[
            landing_sensor,
            upload_sensor,
            completion_sensor,
            remote_task_sensor,
            approval_sensor,
            run_sensor,
            provider_change_sensor,
            ab_test_sensor,
            after_economics_sensor,
            bottleneck_action_sensor,
            build_recovery_sensor(settings.recovery_interval_s),
        ],
        schedules=build_schedules(settings.schedules_running),
        resources=build_resources(settings),
        executor=executor_for(settings.executor),
    )


defs = build_definitions()
