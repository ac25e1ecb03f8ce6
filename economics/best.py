"""Choosing the best output for a video (M5 best_result): weighted quality × cost × speed.

    score = w_q·composite + w_c·(cheapest cost / cost) + w_s·(fastest duration / duration)

where "cheapest" and "fastest" are taken among the outputs of the same effect type — the
providers that did the same task — so a cheap effect type never wins on price against a
dearer one, only on how well its provider did against its peers (and M5 ranks the candidates
of one target effect type at a time: assets/batch/best.py). Scored over the candidates that
can be shown to a user: succeeded, technical gate passed, quality scored, and not a shadow
copy — and, ranked after every one of those, outputs whose quality scoring itself failed
(``quality_error``: status unknown, confidence 0, composite counted as 0): still usable, since
the provider made them, but never preferred to a measured one. The weights are the uploader's
(``resources.priorities``) or a named preset of the routing manifest
(economics.routing.PRIORITY_WEIGHTS), on the same ratio scales, so a winner and a routing rank mean
the same thing. ``cost_usd`` is the task's full cost, as the
economics job states it (``assets.costing.task_costs``).
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from economics.routing import PRIORITY_WEIGHTS


def eligible(candidates: pl.DataFrame) -> pl.DataFrame:
    """The rows that may win: not shadow, and either succeeded, gate passed and scored, or an
    output (``output_key``) whose scoring failed (``quality_error``; columns optional)."""
    scored = (pl.col("status") == "scored") & pl.col("gate_passed") & pl.col("composite").is_not_null()
    if "quality_error" in candidates.columns and "output_key" in candidates.columns:
        failed_scoring = (
            (pl.col("status") == "unknown") & pl.col("quality_error").is_not_null() & pl.col("output_key").is_not_null()
        )
        scored = scored | failed_scoring
    return candidates.filter(scored.fill_null(False) & (pl.col("selection") != "shadow"))


def rank_candidates(candidates: pl.DataFrame, priority: str | Mapping[str, float] = "balanced") -> pl.DataFrame:
    """Score and sort the eligible candidates, best first.

    Args:
        candidates: quality rows joined with execution rows: ``status`` (quality status),
            ``gate_passed``, ``composite``, ``selection``, ``effect_type``, ``cost_usd``,
            ``duration_ms``.
        priority: the weights ``{"quality", "cost", "speed"}`` (``Priorities.weights()``),
            or the name of a preset of PRIORITY_WEIGHTS.

    Returns:
        The eligible rows with a ``score`` column, measured ones first, each part sorted by
        score descending (empty if none).
    """
    w = PRIORITY_WEIGHTS[priority] if isinstance(priority, str) else priority
    ok = eligible(candidates)
    if ok.is_empty():
        return ok.with_columns(score=pl.lit(None, pl.Float64))
    # A zero cost (partner-free, sub-microsecond) would divide by zero; clip at a
    # micro-dollar, below any real execution's cost.
    cost = pl.col("cost_usd").clip(lower_bound=1e-6)
    dur = pl.col("duration_ms").clip(lower_bound=1)
    return (
        ok.with_columns(
            measured=pl.col("status") == "scored",
            score=w["quality"] * pl.col("composite").fill_null(0.0)
            + w["cost"] * (cost.min().over("effect_type") / cost)
            + w["speed"] * (dur.min().over("effect_type") / dur),
        )
        .sort("measured", "score", "composite", descending=True, nulls_last=True)
        .drop("measured")
    )
