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
task: it is one ``execution_costs`` row of its own (``cache_hit_costs``: ``selection`` and
``status`` ``cache`` / ``cached``, ``cache_hit`` true) that carries the run's charge at zero
cost, with ``saved_cost_usd`` = what the reused output cost when it was made
(``cache_savings``). So the per-provider windows count the hit's revenue against no cost,
and everything that measures providers (routing statistics, recommendations, success rates)
reads ``provider_executions``: the rows where a provider ran.
"""

from __future__ import annotations

from typing import overload

import polars as pl

from economics.cost_model import BREAKDOWN_COLUMNS
from economics.frames import Frame, names
from economics.ledger import RESERVE, task_settlements
from economics.margin import margin_expr
from economics.telemetry import CREATION, REAL, RUN

# Job-level columns (``job_margins`` and ``resources.schemas.JOB_MARGINS``), by selection: the
# delivered task is one of the ranked ones.
SELECTIONS = ("ranked", "exploration", "shadow")
# The ``run_outputs`` / ``execution_costs`` selection and status of an effect run served from
# the result cache (no task ran).
CACHE_SELECTION, CACHE_STATUS = "cache", "cached"
# The cost terms of an ``execution_costs`` row and their total: all zero on a cache hit's row.
_COST_TERMS = (*BREAKDOWN_COLUMNS, "cost_usd")


@overload
def with_cache_columns(frame: pl.DataFrame) -> pl.DataFrame: ...
@overload
def with_cache_columns(frame: pl.LazyFrame) -> pl.LazyFrame: ...
@overload
def with_cache_columns(frame: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame | pl.LazyFrame: ...
def with_cache_columns(frame: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame | pl.LazyFrame:
    """``frame`` (``execution_costs``-shaped) with ``cache_hit`` (false where null or absent:
    rows costed before cache hits were costed, simulated rows) and ``saved_cost_usd`` (null
    where absent)."""
    have = names(frame)
    hit = pl.col("cache_hit").fill_null(False) if "cache_hit" in have else pl.lit(False)
    saved = pl.col("saved_cost_usd") if "saved_cost_usd" in have else pl.lit(None, pl.Float64)
    return frame.with_columns(cache_hit=hit, saved_cost_usd=saved.cast(pl.Float64))


def provider_executions(frame: Frame) -> Frame:
    """The rows of ``frame`` (``execution_costs``-shaped) where a provider ran: cache hits left
    out. What measures providers — success, cost and duration per call, routing, the
    provider × effect matrix, recommendations — reads these; money totals read every row."""
    if "cache_hit" not in names(frame):
        return frame
    return frame.filter(~pl.col("cache_hit").fill_null(False))


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


def cache_hit_costs(savings: pl.DataFrame) -> pl.DataFrame:
    """``execution_costs`` rows of effect runs served from the result cache, before
    ``recognise`` sets their charge.

    Args:
        savings: ``cache_savings`` rows (``video_id`` = run id, ``delivered_task_id`` = the
            hit's ``run_outputs`` task id, ``provider_id``, ``effect_type``,
            ``saved_cost_usd``, ``finished_at``).

    Returns:
        One row per hit: ``task_id`` (the hit's), ``video_id``, ``provider_id``,
        ``effect_type`` (the provider whose stored output was reused), ``selection`` ``cache``,
        ``status`` ``cached``, ``source`` real, ``job_kind`` run, every cost term, compute
        seconds and duration 0 (no provider ran, nothing new was stored), ``cache_hit`` true,
        ``saved_cost_usd``, ``tokens_charged`` 0 and ``margin`` null until ``recognise``.
    """
    return savings.select(
        task_id=pl.col("delivered_task_id"),
        video_id="video_id",
        provider_id="provider_id",
        effect_type="effect_type",
        instance_type=pl.lit(None, pl.String),
        status=pl.lit(CACHE_STATUS),
        selection=pl.lit(CACHE_SELECTION),
        propensity=pl.lit(None, pl.Float64),
        source=pl.lit(REAL),
        job_kind=pl.lit(RUN),
        compute_seconds=pl.lit(0.0),
        **{c: pl.lit(0.0) for c in _COST_TERMS},
        output_bytes=pl.lit(None, pl.Int64),
        tokens_charged=pl.lit(0, pl.Int64),
        revenue_usd=pl.lit(0.0),
        cost_tokens=pl.lit(0.0),
        margin=pl.lit(None, pl.Float64),
        duration_ms=pl.lit(0, pl.Int64),
        cache_hit=pl.lit(True),
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
) -> pl.DataFrame:
    """One row per job with executions: its charge, the cost of every task it ran (split by
    selection), of the LLM calls made for it, and its margin (``resources.schemas.JOB_MARGINS``
    columns).

    Args:
        costs: ``execution_costs`` rows of real executions (``video_id``, ``task_id``,
            ``selection``, ``cost_usd``, ``finished_at``…), cache hits' rows included
            (``cache_hit``, ``saved_cost_usd``: an effect run that ran no task is a job of
            its own with no cost).
        charges: ``job_charges`` rows.
        token_usd_rate: USD per token.
        llm_costs: ``llm_costs`` rows (``correlation_id`` = video id, ``usd``): Gemini's
            analysis, prompt refinement and judge for the job, a cost line of their own.

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

    costs = with_cache_columns(costs)
    hits, costs = costs.filter(pl.col("cache_hit")), costs.filter(~pl.col("cache_hit"))
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
    if not hits.is_empty():
        served = charges.drop("delivered_task_id").join(
            hits.select(
                "video_id", "provider_id", "effect_type", "saved_cost_usd", "finished_at", delivered_task_id="task_id"
            ),
            on="video_id",
            how="inner",
        )
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
