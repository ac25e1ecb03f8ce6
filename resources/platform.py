"""Tunable platform policy, as a Dagster resource built from Settings."""

from __future__ import annotations

import dagster as dg


class PlatformConfig(dg.ConfigurableResource):
    """Limits and policy knobs the stages read.

    Attributes:
        max_upload_bytes / max_duration_ms / min_duration_ms: M1 validation limits.
        token_usd_rate: USD per token (DESIGN.md §6).
        exploration_rate: epsilon of epsilon-greedy routing (default 5%, DESIGN.md §6).
        top_k: providers taken per effect type from the manifest (issue: top 2–3).
        max_parallel_tasks: provider tasks run at once in M6 (2 cores here).
        api_base_url: public base URL for preview links in notifications.
        priority: default user priority for routing/best-result weights.
        proxy_max_side: longest side of the normalized proxy, pixels.
        routing_window_hours: trailing window of real executions the routing manifest is
            ranked from (see ``assets.gold.economics.routing_manifest``).
    """

    max_upload_bytes: int = 200 * 1024 * 1024
    max_duration_ms: int = 120_000
    min_duration_ms: int = 500
    token_usd_rate: float = 0.01
    exploration_rate: float = 0.05
    top_k: int = 2
    max_parallel_tasks: int = 2
    api_base_url: str = "http://127.0.0.1:8000"
    priority: str = "balanced"
    proxy_max_side: int = 480
    routing_window_hours: int = 24
