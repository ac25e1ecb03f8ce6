"""Live runs and dead ones: whether a run the Dagster instance shows in flight still has a
worker, and the runs of a video's partition.

Dagster's run monitoring asks the run launcher whether a run's worker is healthy, but the
``DefaultRunLauncher`` (runs as processes of the code server: ``dagster dev``, the one-host
compose file) cannot answer; the code server itself reports a run failed when its worker
process exits, but not when the code server dies with it (the daemon's process group killed,
a host restart). Such a run stays ``STARTED`` for ever: the landing sensor would never land
again (it waits for the in-flight landing run) and a video's run would look live. So for that
launcher the worker's pid, which the run logged when it started ("Started process for run
(pid: N)"), is looked up on this host: gone — or reused by a younger process — means dead,
and the run is reported failed, as Dagster's monitoring would. This holds when the sensors are
evaluated on the host (pid namespace) where the code server launches runs, which is how
``dagster dev``, ``effectlake demo`` and ``deploy/compose.yaml`` run them. Launchers that
can check health (``K8sRunLauncher``) are left to Dagster's run monitoring.
"""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import psutil
from dagster._core.events import DagsterEventType
from dagster._core.launcher import DefaultRunLauncher

IN_FLIGHT = (
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
)
# The engine events that name the run's own process (its worker): the gRPC server's, then
# the executor's (in process; the multiprocess executor's parent), each with a ``pid``.
WORKER_MESSAGES = (
    "Started process for run (pid:",
    "Executing steps in process (pid:",
    "Executing steps using multiprocess executor: parent process (pid:",
)
# A worker process is at most this much younger than its run's start (clock granularity).
CREATE_SLACK_S = 2.0


def worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The pid the run's worker logged when it started (the latest, after a resume)."""
    pid = None
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        if entry.message.startswith(WORKER_MESSAGES) and entry.dagster_event is not None:
            meta = entry.dagster_event.engine_event_data.metadata
            if "pid" in meta:
                pid = int(str(meta["pid"].value))
    return pid


def process_alive(pid: int, started_by: float | None) -> bool:
    """True when ``pid`` is a live (not zombie) process created no later than
    ``started_by`` (epoch seconds, + ``CREATE_SLACK_S``): a younger one reuses the pid."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return started_by is None or proc.create_time() <= started_by + CREATE_SLACK_S
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def worker_gone(instance: dg.DagsterInstance, record: dg.RunRecord) -> bool:
    """True when ``record`` is ``STARTED``, its launcher is the ``DefaultRunLauncher`` and
    the worker pid it logged is not alive on this host (module docstring). False whenever
    that cannot be known (another launcher, no pid logged yet)."""
    if record.dagster_run.status != dg.DagsterRunStatus.STARTED:
        return False
    launcher = instance.run_launcher
    if launcher.supports_check_run_worker_health or not isinstance(launcher, DefaultRunLauncher):
        return False
    pid = worker_pid(instance, record.dagster_run.run_id)
    if pid is None:
        return False
    return not process_alive(pid, record.start_time)


def reap_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Report failed every in-flight run whose worker is gone (``worker_gone``); their ids."""
    reaped = []
    for record in instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        if worker_gone(instance, record):
            instance.report_run_failed(
                record.dagster_run,
                "The run's worker process is gone (its code server died with it); "
                "reported failed by the orphan-recovery sensor.",
            )
            reaped.append(record.dagster_run.run_id)
    return reaped


def partition_runs(instance: dg.DagsterInstance, video_id: str) -> tuple[bool, datetime | None]:
    """(a run of the video's partition is in flight, the latest start of any of its runs)."""
    records = instance.get_run_records(dg.RunsFilter(tags={"dagster/partition": video_id}), limit=50)
    live = any(r.dagster_run.status in IN_FLIGHT for r in records)
    starts = [r.start_time or r.create_timestamp.timestamp() for r in records]
    return live, datetime.fromtimestamp(max(starts), UTC) if starts else None
