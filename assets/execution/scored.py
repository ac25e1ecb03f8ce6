"""Run provider tasks and score every output against its input — what the benchmark job and
admin A/B tests both do outside the per-video chain."""

from collections.abc import Callable

from assets.execution.runner import run_tasks
from assets.quality.score import score_output
from resources.providers.base import ProviderAdapter, ProviderTask


def run_and_score(
    tasks: list[ProviderTask],
    adapter_for: Callable[[str], ProviderAdapter],
    max_workers: int,
    instance_type_for: Callable[[str], str],
) -> list[dict]:
    """Execute ``tasks`` (see ``runner.run_tasks``) and score each output against the task's
    input.

    Returns:
        One dict per task, in order: task fields (task_id, video_id, provider_id,
        effect_type), telemetry (status, error_class, duration_ms, compute_seconds,
        instance_type, partner_cost_usd, output_path) and the quality vector (composite,
        fidelity, style_adherence, artifacts, gate_passed).
    """
    results = run_tasks(tasks, adapter_for, max_workers, instance_type_for)
    rows = []
    for task, result in zip(tasks, results, strict=True):
        q = score_output(task.input_path, result.output_path, task.effect_type, task.params).to_dict()
        rows.append(
            {
                "task_id": task.task_id,
                "video_id": task.video_id,
                "provider_id": task.provider_id,
                "effect_type": task.effect_type,
                "status": result.status,
                "error_class": result.error_class,
                "duration_ms": result.duration_ms,
                "compute_seconds": result.compute_seconds,
                "instance_type": result.instance_type,
                "partner_cost_usd": result.partner_cost_usd,
                "output_path": result.output_path,
                **{k: q[k] for k in ("composite", "fidelity", "style_adherence", "artifacts", "gate_passed")},
            }
        )
    return rows
