"""Revenue recognised from the token ledger, and the margin of a job (docs/architecture.md,
"Economics": the one definition).

A job is one video's effect creation. It reserves the effect's price once (ledger
``task_id`` = the job id, ``correlation_id`` = the video id), is charged when its best result
is delivered and refunded when nothing was usable or an admin rejected the result. Every
task the job ran — ranked, exploration, shadow — is a cost of that job:

    job cost      = Σ cost of the job's tasks
    job margin    = (tokens charged − job cost in tokens) / tokens charged   (economics.margin)

Per provider (the marginality windows, ``execution_costs``), the job's net charge is revenue
of the delivered task (the best result's) and of no other; every other task of the job —
the ranked runners-up, exploration and shadow copies — is a cost line of its own provider
with nothing charged. So a window's Σ tokens charged is what users paid, and its Σ cost is
everything spent, whichever provider did it.

Simulated executions (``source = 'simulated'``) have no ledger: each is one job of one task,
charged its list price by ``cost_model.cost_frame``.

A user's run of a published effect (``job_kind = run``) is a job too, by the same rule: its
correlation id is the run id, the API reserved its price, its delivered task (the first
provider whose output passed the gate) carries its charge, and every other task it ran — a
failed ranked one, the shadow copies — is a cost. A run served from the result cache ran no
task: its job has no cost, and ``saved_cost_usd`` is what the reused output cost when it
was made (``cache_savings``).
"""

from __future__ import annotations

import polars as pl

from economics.ledger import RESERVE, task_settlements
from economics.margin import margin_expr
from economics.telemetry import CREATION, REAL, RUN

# Job-level columns (``job_margins`` and ``resources.schemas.JOB_MARGINS``), by selection: the
# delivered task is one of the ranked ones.
SELECTIONS = ("ranked", "exploration", "shadow")
# The ``run_outputs`` selection of an effect run served from the result cache (no task ran).
CACHE_SELECTION = "cache"


def job_charges(entries: pl.DataFrame, deliveries: pl.DataFrame) -> pl.DataFrame:
    """What each job was charged, net of refunds, and the task it delivered.

    Args:
        entries: ``ledger_entries`` rows of jobs (``task_id`` = job id, ``correlation_id`` =
            video id, plus the columns ``ledger.task_settlements`` needs).
        deliveries: ``best_result`` rows (``video_id``, ``outcome``, ``task_id``); the
            selected one names the delivered task.

    Returns:
        ``job_id, video_id, user_id, tokens_charged`` (Int64, the job's ``spent``) and
        ``delivered_task_id`` (null when nothing was delivered), one row per reserved job.
    """
    if entries.is_empty():
        return pl.DataFrame(
            schema={
                "job_id": pl.String,
                "video_id": pl.String,
                "user_id": pl.String,
                "tokens_charged": pl.Int64,
                "delivered_task_id": pl.String,
            }
        )
    videos = (
        entries.filter(pl.col("kind") == RESERVE)
        .select(job_id=pl.col("task_id"), video_id=pl.col("correlation_id"))
        .unique("job_id")
    )
    delivered = deliveries.filter(pl.col("outcome") == "selected").select(
        "video_id", delivered_task_id=pl.col("task_id")
    )
    return (
        task_settlements(entries)
        .select(job_id=pl.col("task_id"), user_id="user_id", tokens_charged="spent")
        .join(videos, on="job_id", how="inner")
        .join(delivered.unique("video_id"), on="video_id", how="left")
        .select("job_id", "video_id", "user_id", "tokens_charged", "delivered_task_id")
    )


def run_deliveries(outputs: pl.DataFrame) -> pl.DataFrame:
    """The deliveries of effect runs in ``job_charges``' shape: per run (its id as
    ``video_id``, the correlation id of its ledger entries) the task it delivered, outcome
    ``selected``.

    Args:
        outputs: ``run_outputs`` rows (``run_id``, ``task_id``, ``delivered``).
    """
    return outputs.filter(pl.col("delivered").fill_null(False)).select(
        video_id=pl.col("run_id"), outcome=pl.lit("selected"), task_id=pl.col("task_id")
    )


def cache_savings(outputs: pl.DataFrame, costs: pl.DataFrame) -> pl.DataFrame:
    """Runs served from the result cache and what each saved.

    Args:
        outputs: ``run_outputs`` rows; those with ``selection = 'cache'`` are the hits
            (``cached_from_task_id``: the task whose output was reused).
        costs: ``execution_costs`` rows (``task_id``, ``cost_usd``) including the reused tasks.

    Returns:
        ``video_id`` (the run id), ``delivered_task_id`` (the hit's row), ``provider_id``,
        ``effect_type``, ``saved_cost_usd`` (the reused task's full cost; null when it is not
        costed yet), ``finished_at``.
    """
    hits = outputs.filter(pl.col("selection") == CACHE_SELECTION)
    made = costs.select(cached_from_task_id=pl.col("task_id"), saved_cost_usd=pl.col("cost_usd")).unique(
        "cached_from_task_id"
    )
    return hits.join(made, on="cached_from_task_id", how="left").select(
        video_id=pl.col("run_id"),
        delivered_task_id=pl.col("task_id"),
        provider_id="provider_id",
        effect_type="effect_type",
        saved_cost_usd=pl.col("saved_cost_usd").cast(pl.Float64),
        finished_at="finished_at",
    )


def recognise(costs: pl.DataFrame, charges: pl.DataFrame, token_usd_rate: float) -> pl.DataFrame:
    """Set ``tokens_charged`` of real executions from the ledger (the module's rule: the
    job's net charge on its delivered task, 0 on every other task) and recompute
    ``revenue_usd`` and ``margin``; simulated executions keep their list price.

    Args:
        costs: ``cost_frame`` output (``task_id``, ``source``, ``tokens_charged``,
            ``cost_tokens``…); rows without ``source`` count as real.
        charges: ``job_charges`` rows (``delivered_task_id``, ``tokens_charged``).
        token_usd_rate: USD per token.
    """
    charged = charges.filter(pl.col("delivered_task_id").is_not_null()).select(
        task_id=pl.col("delivered_task_id"), _charge=pl.col("tokens_charged")
    )
    source = pl.col("source") if "source" in costs.columns else pl.lit(REAL)
    return (
        costs.join(charged.unique("task_id"), on="task_id", how="left")
        .with_columns(
            tokens_charged=pl.when(source.fill_null(REAL) == REAL)
            .then(pl.col("_charge").fill_null(0))
            .otherwise(pl.col("tokens_charged"))
            .cast(pl.Int64)
        )
        .with_columns(revenue_usd=pl.col("tokens_charged") * token_usd_rate)
        .with_columns(margin=margin_expr("tokens_charged", "cost_tokens"))
        .drop("_charge")
    )


def job_margins(
    costs: pl.DataFrame,
    charges: pl.DataFrame,
    token_usd_rate: float,
    llm_costs: pl.DataFrame | None = None,
    cache_hits: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """One row per job with executions: its charge, the cost of every task it ran (split by
    selection), of the LLM calls made for it, and its margin (``resources.schemas.JOB_MARGINS``
    columns).

    Args:
        costs: ``execution_costs`` rows of real executions (``video_id``, ``task_id``,
            ``selection``, ``cost_usd``, ``finished_at``…).
        charges: ``job_charges`` rows.
        token_usd_rate: USD per token.
        llm_costs: ``llm_costs`` rows (``correlation_id`` = video id, ``usd``): Gemini's
            analysis, prompt refinement and judge for the job, a cost line of their own.
        cache_hits: ``cache_savings`` rows: effect runs that ran no task; each is a job of
            its own with no cost (``cache_hit`` true, ``saved_cost_usd``).

    Returns:
        ``job_id, video_id, job_kind`` (``creation`` | ``run``, from its tasks),
        ``user_id, delivered_task_id, provider_id, effect_type`` (of the delivered task),
        ``tasks``, ``tokens_charged``, ``revenue_usd``, ``cost_usd`` (tasks and LLM calls)
        and its ``ranked_cost_usd`` / ``exploration_cost_usd`` / ``shadow_cost_usd`` /
        ``llm_cost_usd`` parts, ``cost_tokens``, ``margin`` (null when nothing was charged),
        ``cache_hit``, ``saved_cost_usd`` (null but for cache hits), ``finished_at`` (the
        job's last task). Jobs with no finished task and no cache hit are left out.
    """

    def part(selection: str) -> pl.Expr:
        return pl.col("cost_usd").filter(pl.col("selection") == selection).sum().alias(f"{selection}_cost_usd")

    kind = pl.col("job_kind").fill_null(CREATION).first() if "job_kind" in costs.columns else pl.lit(CREATION)
    per_video = costs.group_by("video_id").agg(
        job_kind=kind,
        tasks=pl.len().cast(pl.Int64),
        cost_usd=pl.col("cost_usd").sum(),
        **{f"{s}_cost_usd": part(s) for s in SELECTIONS},
        finished_at=pl.col("finished_at").max(),
    )
    delivered = costs.select(
        delivered_task_id=pl.col("task_id"), provider_id=pl.col("provider_id"), effect_type=pl.col("effect_type")
    )
    llm = (
        llm_costs.group_by(video_id=pl.col("correlation_id")).agg(llm_cost_usd=pl.col("usd").sum())
        if llm_costs is not None and not llm_costs.is_empty()
        else pl.DataFrame(schema={"video_id": pl.String, "llm_cost_usd": pl.Float64})
    )
    ran = (
        charges.join(per_video, on="video_id", how="inner")
        .join(delivered, on="delivered_task_id", how="left")
        .join(llm, on="video_id", how="left")
        .with_columns(
            llm_cost_usd=pl.col("llm_cost_usd").fill_null(0.0),
            cost_usd=pl.col("cost_usd") + pl.col("llm_cost_usd").fill_null(0.0),
            cache_hit=pl.lit(False),
            saved_cost_usd=pl.lit(None, pl.Float64),
        )
    )
    if cache_hits is not None and not cache_hits.is_empty():
        served = charges.drop("delivered_task_id").join(cache_hits, on="video_id", how="inner")
        zero = {c: pl.lit(0.0) for c in ("cost_usd", "llm_cost_usd", *(f"{s}_cost_usd" for s in SELECTIONS))}
        served = served.with_columns(job_kind=pl.lit(RUN), tasks=pl.lit(0, pl.Int64), cache_hit=pl.lit(True), **zero)
        ran = pl.concat([ran, served.select(ran.columns)], how="vertical_relaxed")
    return (
        ran.with_columns(
            revenue_usd=pl.col("tokens_charged") * token_usd_rate,
            cost_tokens=pl.col("cost_usd") / token_usd_rate,
        )
        .with_columns(margin=margin_expr("tokens_charged", "cost_tokens"))
        .sort("job_id")
    )
