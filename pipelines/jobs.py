"""The jobs: the main chain is split where it waits for something outside the run
(remote provider tasks finishing, an admin deciding), and sensors start each part.

A video whose provider tasks all run inline is carried from ingest to its approval request in
one run (``intake_job``): every run boundary costs a sensor tick, the queue and a run process
importing the code location, which is most of a first preview's latency
(docs/performance.md, "Time to first preview")."""

import dagster as dg

from assets.analysis.asset import content_analysis
from assets.approval.asset import approval_requests
from assets.batch.asset import test_batch
from assets.batch.best import best_result
from assets.execution.asset import provider_outputs
from assets.gallery.asset import gallery_revisions
from assets.ingest.asset import ingested_video
from assets.landing.asset import LANDING_ASSETS
from assets.partitions import effect_runs, videos
from assets.prompts.asset import prompt_variants
from assets.quality.asset import quality_scores
from assets.runs.asset import run_outputs

# Landing runs every few seconds on small batches: in-process whatever the deployment, since a
# process per table would cost more than the batch.
# Landing is every request's first hop: its runs are launched before any other queued run
# (``dagster/priority``), so a burst of uploads' intake runs never holds the next landing.
landing_job = dg.define_asset_job(
    "landing_job",
    tags={"dagster/priority": "1"},
    selection=dg.AssetSelection.assets(*LANDING_ASSETS),
    executor_def=dg.in_process_executor,
    description="Store → bronze: one batch and one Delta commit per mirrored table with new rows.",
)

# The other jobs name no executor: they take the deployment's (EFFECTLAKE_EXECUTOR, set on the
# Definitions by pipelines/definitions.py; pipelines/executors.py says which and why).
# The evaluation (M7, M5's best result, M9) runs in the same run as the tasks it scores
# whenever they all finished there; ``quality_scores`` yields nothing while a remote output is
# pending, which skips the rest, and the collect run evaluates the video instead.
EVALUATION = (quality_scores, best_result, approval_requests)
# Runs off the hot path (the cycles, benchmarks, A/B tests): queued after a video's runs
# (``dagster/priority``; the run queue launches higher first) and, on the demo's and the
# production instance, one at a time (tag ``effectlake/lane``: dagster.yaml's
# tag_concurrency_limits), so they never hold every run slot while videos wait.
BACKGROUND = {"dagster/priority": "-1", "effectlake/lane": "background"}

intake_job = dg.define_asset_job(
    "intake_job",
    selection=dg.AssetSelection.assets(
        ingested_video, content_analysis, prompt_variants, test_batch, provider_outputs, *EVALUATION
    ),
    partitions_def=videos,
    description="M1→M6 for one uploaded video (ingest, analyze, prompt, dispatch, execute), then M7, M5, M9 "
    "when every task finished inline.",
)
# The same M6 asset again, for videos whose remote (GPU) tasks have all finished: it stores
# their outputs and records their outcomes without re-running what is already final, and
# evaluates the video in the same run.
collect_job = dg.define_asset_job(
    "collect_job",
    selection=dg.AssetSelection.assets(provider_outputs, *EVALUATION),
    partitions_def=videos,
    executor_def=dg.in_process_executor,
    description="M6 again once a video's remote tasks have finished: store, record, clean the provider up; "
    "then M7, M5, M9.",
)
evaluation_job = dg.define_asset_job(
    "evaluation_job",
    selection=dg.AssetSelection.assets(quality_scores, best_result, approval_requests),
    partitions_def=videos,
    description="M7, M5, M9 for a video whose tasks all finished but whose run did not evaluate it "
    "(the completion sensor's and the recovery's way).",
)
publish_job = dg.define_asset_job(
    "publish_job",
    selection=dg.AssetSelection.assets(gallery_revisions),
    partitions_def=videos,
    description="M10 after an admin decision: publish (or reject and refund).",
)
# One run per effect run (its own partition, run key = run id): a user waits for it, so it
# starts as soon as it is landed, fails or retries alone, and its lineage is its own
# (docs/architecture.md, "Effect runs": why not batched).
effect_run_job = dg.define_asset_job(
    "effect_run_job",
    selection=dg.AssetSelection.assets(run_outputs),
    partitions_def=effect_runs,
    description="A user's run of a published effect: cache, route, execute, gate, deliver or refund.",
)
economics_job = dg.define_asset_job(
    "economics_job",
    tags=BACKGROUND,
    selection=dg.AssetSelection.groups("economics", "M3_registry"),
    description="M8: registry health, execution costs, marginality windows, routing manifest.",
)

ECONOMICS_CRON = "*/15 * * * *"

benchmark_job = dg.define_asset_job(
    "benchmark_job",
    tags=BACKGROUND,
    selection=dg.AssetSelection.groups("benchmark"),
    description="Reference suite × effect types × every provider → benchmark_reports, provider_effect_matrix.",
)
BENCHMARK_CRON = "0 3 * * 1"  # Mondays 03:00 UTC, off-peak

ab_job = dg.define_asset_job(
    "ab_job",
    tags=BACKGROUND,
    selection=dg.AssetSelection.groups("ab_testing"),
    description="An admin A/B test: one video on several chosen providers, side by side.",
)
