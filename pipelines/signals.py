"""The economic engine's runs: ``signals_job`` every 5 minutes and after each successful
economics cycle, and ``bottleneck_action_sensor`` starting ``actions_job`` when classifications
want their automatic action or the restore of one (docs/signals.md)."""

from __future__ import annotations

import dagster as dg

from assets.gold.actions import bottleneck_actions, pending
from assets.gold.alerts import alerts
from assets.gold.logs import platform_logs
from assets.gold.signals import bottleneck_classifications, economic_alerts, metric_streams, signals
from economics.ids import stable_id
from pipelines.jobs import BACKGROUND, economics_job
from resources.lake import Lake
from resources.schemas import BOTTLENECK_CLASSIFICATIONS

signals_job = dg.define_asset_job(
    "signals_job",
    tags=BACKGROUND,
    selection=dg.AssetSelection.assets(
        platform_logs, metric_streams, signals, economic_alerts, bottleneck_classifications, alerts
    ),
    executor_def=dg.in_process_executor,
    description="Land the logs, build the 5-minute metric streams, detect signals and unusual "
    "combinations, classify bottlenecks, raise and email alerts.",
)
actions_job = dg.define_asset_job(
    "actions_job",
    tags=BACKGROUND,
    selection=dg.AssetSelection.assets(bottleneck_actions),
    executor_def=dg.in_process_executor,
    description="The automatic actions of new bottleneck classifications and the restores of cleared ones.",
)
SIGNALS_CRON = "*/5 * * * *"


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[economics_job],
    request_job=signals_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def after_economics_sensor(context: dg.RunStatusSensorContext) -> dg.RunRequest:
    """Classify again as soon as an economics cycle has costed new executions."""
    return dg.RunRequest(run_key=f"after-{context.dagster_run.run_id}")


@dg.sensor(job=actions_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def bottleneck_action_sensor(context: dg.SensorEvaluationContext, lake: dg.ResourceParam[Lake]):
    """When ``bottleneck_classifications`` has a new Delta version (every signals cycle) with
    work for the actions — an open classification whose automatic action is not recorded, or a
    resolved one whose change is still to be restored — request ``actions_job`` (run key = that
    work, so each set is carried out once)."""
    version = lake.version(BOTTLENECK_CLASSIFICATIONS)
    if version < 0 or str(version) == context.cursor:
        return dg.SkipReason("no new classifications")
    todo = pending(lake)
    requests = [dg.RunRequest(run_key=stable_id("actions", *todo), tags={"classifications": ",".join(todo)[:200]})]
    return dg.SensorResult(run_requests=requests if todo else [], cursor=str(version))
