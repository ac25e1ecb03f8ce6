"""Warnings from inside a Dagster step: one structlog line with the action fields
(``resources.logconfig``: it lands in the lake) and the same message in the run's log."""

from __future__ import annotations

from typing import Any

import structlog

log = structlog.get_logger("effectlake.pipeline")


def warn(
    context: Any,
    message: str,
    *,
    event_type: str,
    economic_impact_usd: float,
    urgency: str,
    operator_action: str,
    runbook: str,
    **fields: Any,
) -> None:
    """Log ``message`` as a warning both ways.

    Args:
        context: the asset's execution context (its ``log`` is the run's log in the UI).
        message: the readable line.
        event_type, economic_impact_usd, urgency, operator_action, runbook: the action fields
            (``resources.logconfig.REQUIRED``).
        fields: more context for the lake row (``provider_id``, ``video_id``…).

    Raises:
        resources.logconfig.UnactionableLog: in strict mode, a field is invalid.
    """
    log.warning(
        message,
        event_type=event_type,
        economic_impact_usd=economic_impact_usd,
        urgency=urgency,
        operator_action=operator_action,
        runbook=runbook,
        **fields,
    )
    context.log.warning(f"{message} [{event_type}; action: {operator_action}; runbook: {runbook}]")
