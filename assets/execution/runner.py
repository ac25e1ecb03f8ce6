"""Run provider tasks in parallel, each failure contained to its own task, and describe each
output with its render spec (``resources.providers.render_spec``) — the one place every
inline provider run passes through (test batches, benchmarks, A/B tests, effect runs).

Threads, not processes: the work happens in ffmpeg children or in OpenCV/NumPy calls that
release the GIL, and each adapter measures its own CPU time per task.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from resources.providers.base import ProviderAdapter, ProviderTask, TaskResult
from resources.providers.render_spec import try_render_spec


def run_tasks(
    tasks: list[ProviderTask],
    adapter_for: Callable[[str], ProviderAdapter],
    max_workers: int,
    instance_type_for: Callable[[str], str],
    slots: Mapping[str, int] | None = None,
) -> list[TaskResult]:
    """Execute every task on its provider, at most ``max_workers`` at once.

    Args:
        tasks: tasks to run (order is kept in the result).
        adapter_for: provider id → adapter.
        max_workers: parallel slots.
        instance_type_for: provider id → instance type, for results of tasks whose adapter
            could not even be built.
        slots: provider id → tasks of this call it may run at once (the dispatch's
            concurrency in force); a provider not listed is bounded by its adapter alone.

    Returns:
        One TaskResult per task, in order. ``queue_wait_ms`` is the time a task waited for a
        slot; ``render_spec`` how the output was rendered (None when the adapter could not
        be built or the task could not be described). An adapter that raises (it should
        not) yields a failed result with the exception's class name — one provider never
        fails another's task.
    """
    submitted = time.perf_counter()
    gates = {p: threading.BoundedSemaphore(max(1, n)) for p, n in (slots or {}).items()}

    def run(task: ProviderTask) -> TaskResult:
        gate = gates.get(task.provider_id)
        with gate if gate is not None else contextlib.nullcontext():
            return _run(task)

    def _run(task: ProviderTask) -> TaskResult:
        waited_ms = int((time.perf_counter() - submitted) * 1000)
        try:
            adapter = adapter_for(task.provider_id)
            result = adapter.execute(task)
            result = replace(result, render_spec=try_render_spec(task, adapter, result.output_path))
        except Exception as exc:  # noqa: BLE001 - contain any provider bug to its task
            result = TaskResult(
                task_id=task.task_id,
                status="failed",
                output_path=None,
                duration_ms=0,
                compute_seconds=0.0,
                instance_type=instance_type_for(task.provider_id),
                error_class=type(exc).__name__,
                error_message=str(exc)[:500],
            )
        return _with_queue_wait(result, waited_ms)

    with ThreadPoolExecutor(max_workers=max(1, max_workers), thread_name_prefix="provider") as pool:
        return list(pool.map(run, tasks))


def _with_queue_wait(result: TaskResult, waited_ms: int) -> TaskResult:
    return replace(result, queue_wait_ms=result.queue_wait_ms + waited_ms)
