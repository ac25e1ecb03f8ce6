"""Drive the real sensors the way the Dagster daemon does, and execute the runs they request
in process on a test instance: tick → partitions added → run requests deduped by run key →
job executed for the partition."""

from __future__ import annotations

from dataclasses import dataclass, field

import dagster as dg

from assets.partitions import videos

LANDING_SENSOR = "landing_sensor"
# Sensors that read the transactional store themselves: their tick does not wait for landing.
STORE_FED = frozenset({LANDING_SENSOR, "upload_sensor", "run_sensor"})


@dataclass
class Driver:
    """Sensor ticks and requested runs against one instance and one Definitions."""

    defs: dg.Definitions
    instance: dg.DagsterInstance
    cursors: dict[str, str | None] = field(default_factory=dict)
    run_keys: set[tuple[str, str]] = field(default_factory=set)
    runs: list[tuple[str, str, bool]] = field(default_factory=list)  # (job, partition, success)

    def tick(self, sensor_name: str) -> list[dg.RunRequest]:
        """Evaluate a sensor once; return its new run requests (run keys already used by
        this sensor are dropped, as the daemon does).

        A tick of a sensor that watches a bronze table first lands the store's new rows
        (``land``), as the daemon's landing sensor does every few seconds: the API writes to
        the store, and those sensors watch the bronze tables its rows are landed in. The
        sensors that read the store themselves (``STORE_FED``: new uploads, new effect runs)
        tick without it, as the daemon may tick them before any landing run."""
        if sensor_name not in STORE_FED:
            self.land()
        sensor = self.defs.resolve_sensor_def(sensor_name)
        resources = self.defs.resources
        ctx = dg.build_sensor_context(instance=self.instance, resources=resources, cursor=self.cursors.get(sensor_name))
        result = sensor(ctx)
        if isinstance(result, dg.SkipReason) or result is None:
            return []
        for req in result.dynamic_partitions_requests or []:
            self.instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
        if result.cursor is not None:
            self.cursors[sensor_name] = result.cursor
        fresh = []
        for r in result.run_requests or []:
            if r.run_key is None:  # the daemon never dedupes a request without a run key
                fresh.append(r)
            elif (sensor_name, r.run_key) not in self.run_keys:
                self.run_keys.add((sensor_name, r.run_key))
                fresh.append(r)
        return fresh

    def run(self, sensor_name: str, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
        """Execute the job a sensor targets (the request's own for a sensor of several jobs)
        for the request's partition, run config and asset selection."""
        job_name = request.job_name or self.defs.resolve_sensor_def(sensor_name).job_name
        job = self.defs.resolve_job_def(job_name)
        result = job.execute_in_process(
            partition_key=request.partition_key,
            instance=self.instance,
            run_config=request.run_config or None,
            asset_selection=request.asset_selection,
            raise_on_error=False,
        )
        self.runs.append((job_name, request.partition_key, result.success))
        return result

    def step(self, sensor_name: str) -> list[dg.ExecuteInProcessResult]:
        """Tick a sensor and execute every run it requests."""
        return [self.run(sensor_name, r) for r in self.tick(sensor_name)]

    def land(self) -> int:
        """Land the store's new rows into the lake as the landing sensor would (every run it
        requests, until it requests none); returns how many runs it took."""
        runs = 0
        while requests := self.tick(LANDING_SENSOR):
            for r in requests:
                assert self.run(LANDING_SENSOR, r).success, "landing run failed"
                runs += 1
        return runs

    def partitions(self) -> list[str]:
        return list(self.instance.get_dynamic_partitions(videos.name))
