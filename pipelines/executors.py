"""The executor every job runs its steps with, chosen per deployment (``EFFECTLAKE_EXECUTOR``).

- ``in_process`` (embedded default): a run's steps in the run's own process. A video's stages
  form a chain, so a process per step buys no parallelism on one small machine and costs an
  interpreter start (Dagster + Polars + OpenCV imports) per step; parallelism comes from
  concurrent runs and from M6's provider threads.
- ``multiprocess`` (the production profile on one host): a child process per step (forked
  from a forkserver that has the code location imported), so a
  crashing step (a decoder segfault, an out-of-memory kill) fails that step, not the run
  worker, and independent steps (the economics job's) run side by side.
- ``k8s`` (``dagster-k8s``'s ``k8s_job_executor``): a Kubernetes Job per step, so one run's
  steps spread over the cluster; the pod settings come from the Helm values and the run's
  ``dagster-k8s/config`` tag (``deploy/helm/values.yaml``, ``docs/deployment.md``).

Steps exchange data only through the lake (the Delta IO manager and the lake client), never
through the local disk, so every executor sees the same tables.
"""

from __future__ import annotations

import dagster as dg


def executor_for(name: str) -> dg.ExecutorDefinition:
    """The executor named ``name`` (``resources.settings.EXECUTORS``).

    Raises:
        ValueError: an unknown name; ImportError: ``k8s`` without ``dagster-k8s`` installed.
    """
    if name == "in_process":
        return dg.in_process_executor
    if name == "multiprocess":
        # forkserver: step processes fork from a server that imported the code location once,
        # instead of each starting an interpreter and importing Dagster, Polars and OpenCV.
        return dg.multiprocess_executor.configured({"start_method": {"forkserver": {}}})
    if name == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    raise ValueError(f"unknown executor {name!r}")
