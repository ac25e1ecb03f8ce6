"""Run a job of the Definitions on the current Dagster instance (``Settings.dagster_home``,
``DAGSTER_HOME``), so on-demand runs from the CLI show in the Dagster UI like any other."""

import os

import dagster as dg


def current_instance() -> dg.DagsterInstance:
    """The instance at ``Settings.dagster_home`` (exported as ``DAGSTER_HOME``, where Dagster
    looks for it)."""
    from pipelines.cli.demo import dagster_home

    os.environ["DAGSTER_HOME"] = str(dagster_home())
    return dg.DagsterInstance.get()


def run_job(name: str) -> bool:
    """Execute job ``name`` in process on the current instance; True when it succeeded."""
    from pipelines.definitions import build_definitions

    # Built now, from the environment as it is now (the module-level ``defs`` was built when
    # first imported, possibly before LAKE_URI or DATABASE_URL were set).
    with current_instance() as instance:
        job = build_definitions().resolve_job_def(name)
        result = job.execute_in_process(instance=instance, raise_on_error=False)
        print(f"{name}: run {result.run_id} {'succeeded' if result.success else 'FAILED'}")
        return result.success
