"""The deployment files (deploy/) checked as far as this machine can: no Docker daemon and no
Kubernetes here, so the compose file is parsed and cross-checked, the Helm values are checked
against the keys of the Dagster chart's schema, the instance configs load into a real Dagster
instance on PostgreSQL, and the code location loads with each deployment's settings."""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import pytest
import yaml

from pipelines.cli.prod import DAGSTER_PG_ENV
from pipelines.cli.prod import DAGSTER_YAML as PROD_YAML
from pipelines.definitions import build_definitions
from resources.clients import Clients
from resources.settings import PROJECT_ROOT, Settings

pytest_plugins = ["tests.store_fixtures"]

DEPLOY = PROJECT_ROOT / "deploy"
SERVICES = {"postgres", "redis", "minio", "buckets", "code", "webserver", "daemon", "api", "dashboard"}
PLATFORM = {"code", "webserver", "daemon", "api", "dashboard"}

# Keys of the Dagster chart's values that deploy/helm/values.yaml may set, from the chart's
# schema models (helm/dagster/schema/schema/charts/dagster/values.py, subschema/run_launcher.py,
# postgresql.py, daemon.py; dagster_user_deployments/subschema/user_deployments.py).
CHART_TOP = {
    "dagsterWebserver", "dagster-user-deployments", "postgresql", "generatePostgresqlPasswordSecret",
    "generateCeleryConfigSecret", "rabbitmq", "redis", "flower", "ingress", "imagePullSecrets",
    "computeLogManager", "scheduler", "runLauncher", "pythonLogs", "dagsterDaemon", "busybox", "migrate",
    "telemetry", "serviceAccount", "global", "retention", "concurrency", "additionalInstanceConfig",
}  # fmt: skip
K8S_RUN_LAUNCHER = {
    "image", "imagePullPolicy", "jobNamespace", "loadInclusterConfig", "kubeconfigFile", "envConfigMaps",
    "envSecrets", "envVars", "volumeMounts", "volumes", "labels", "failPodOnRunFailure", "resources",
    "schedulerName", "securityContext", "runK8sConfig",
}  # fmt: skip
USER_DEPLOYMENT = {
    "name", "image", "dagsterApiGrpcArgs", "codeServerArgs", "includeConfigInLaunchedRuns", "port", "env",
    "envConfigMaps", "envSecrets", "annotations", "nodeSelector", "affinity", "tolerations",
    "podSecurityContext", "securityContext", "resources", "livenessProbe", "readinessProbe", "startupProbe",
    "labels", "volumeMounts", "volumes", "schedulerName",
}  # fmt: skip
POSTGRESQL = {
    "postgresqlScheme", "image", "enabled", "postgresqlHost", "postgresqlUsername", "postgresqlPassword",
    "postgresqlDatabase", "postgresqlParams", "service",
}  # fmt: skip


def _compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def _substitute(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?message} interpolation."""

    def one(m: re.Match) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if env.get(name):
            return env[name]
        if op == ":?":
            raise KeyError(f"{name}: {arg}")
        return arg or ""

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, value)


def _example_env() -> dict[str, str]:
    lines = (DEPLOY / "env.example").read_text().splitlines()
    env = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    env["EFFECTLAKE_ADMIN_KEY"] = "elk_" + "0" * 12 + "_" + "A" * 43
    return env


def test_compose_names_every_service_and_wires_them():
    compose = _compose()
    services = compose["services"]
    assert set(services) == SERVICES
    for name, svc in services.items():
        assert "image" in svc or "build" in svc, name
        for dep in svc.get("depends_on", {}):
            assert dep in services, (name, dep)
    # One image for the platform, built once by the code location's service.
    assert {services[s]["image"] for s in PLATFORM} == {"effectlake:latest"}
    assert services["code"]["build"]["dockerfile"] == "deploy/Dockerfile"
    assert (DEPLOY / "Dockerfile").is_file() and (DEPLOY / "initdb" / "dagster-db.sql").is_file()
    # The webserver and the daemon load the code location from the code service's gRPC port.
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())["load_from"][0]["grpc_server"]
    code_cmd = services["code"]["command"]
    assert workspace["host"] == "code" and str(workspace["port"]) == code_cmd[code_cmd.index("-p") + 1]
    # Only the API and the dashboard listen beyond the host's loopback.
    published = {s: svc.get("ports", []) for s, svc in services.items()}
    assert all(p.startswith("127.0.0.1:") for s in ("webserver", "minio") for p in published[s])
    # Nothing published on the database, Redis or the S3 API.
    assert not published["postgres"] and not published["redis"]
    assert not any(p.endswith(":9000") for p in published["minio"])


@pytest.mark.slow
@pytest.mark.parametrize("service", sorted(PLATFORM))
def test_code_location_loads_with_the_compose_settings(service):
    env = {k: _substitute(str(v), _example_env()) for k, v in _compose()["services"][service]["environment"].items()}
    settings = Settings.from_environ(env)
    assert settings.lake_uri.startswith("s3://") and settings.media_uri.startswith("s3://")
    assert settings.database_url.startswith("postgresql") and settings.manifest_uri.startswith("redis://")
    clients = Clients.from_settings(settings)
    assert clients.manifest_store.is_redis and clients.media.is_s3
    defs = build_definitions(settings)
    assert defs.resolve_job_def("intake_job").executor_def.name == "multiprocess"


def test_compose_refuses_to_start_without_secrets():
    env = _compose()["services"]["api"]["environment"]
    with pytest.raises(KeyError, match="POSTGRES_PASSWORD"):
        _substitute(env["DATABASE_URL"], {})


def _load_instance(home: Path) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_config(str(home))


@pytest.mark.slow
@pytest.mark.parametrize("which", ["compose", "demo-prod"])
def test_instance_configs_load_on_postgresql(which, tmp_path, pg_databases, monkeypatch):
    from sqlalchemy.engine import make_url

    url = pg_databases()
    if which == "compose":
        parts = make_url(url)
        monkeypatch.setenv("DAGSTER_PG_USERNAME", parts.username or "postgres")
        monkeypatch.setenv("DAGSTER_PG_PASSWORD", parts.password or "")
        monkeypatch.setenv("DAGSTER_PG_HOST", parts.host or "127.0.0.1")
        monkeypatch.setenv("DAGSTER_PG_DB", parts.database or "")
        text = (DEPLOY / "dagster.yaml").read_text().replace("/opt/dagster/dagster_home", str(tmp_path))
    else:
        monkeypatch.setenv(DAGSTER_PG_ENV, url)
        text = PROD_YAML
    (tmp_path / "dagster.yaml").write_text(text)
    with _load_instance(tmp_path) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
        assert {lim["key"] for lim in limits} == {
            "dagster/sensor_name",
            "dagster/schedule_name",
            "dagster/partition",
            "effectlake/lane",
        }
        assert instance.run_coordinator.dequeue_interval_seconds == 1
        instance.get_runs()  # the schema was created: the storage really is that database


@pytest.mark.slow
def test_helm_values_use_the_charts_keys_and_the_k8s_launcher_and_executor():
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    assert set(values) <= CHART_TOP, set(values) - CHART_TOP
    launcher = values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher" and set(launcher["config"]) == {"k8sRunLauncher"}
    assert set(launcher["config"]["k8sRunLauncher"]) <= K8S_RUN_LAUNCHER
    assert values["postgresql"]["enabled"] is False and set(values["postgresql"]) <= POSTGRESQL
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert coordinator["type"] == "QueuedRunCoordinator"
    assert set(coordinator["config"]["queuedRunCoordinator"]) <= {
        "maxConcurrentRuns",
        "tagConcurrencyLimits",
        "dequeueIntervalSeconds",
        "dequeueUseThreads",
        "dequeueNumWorkers",
        "blockOpConcurrencyLimitedRuns",
    }
    assert values["computeLogManager"]["type"] == "S3ComputeLogManager"
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert set(deployment) <= USER_DEPLOYMENT and {"name", "image", "port"} <= set(deployment)
    assert deployment["codeServerArgs"] == ["-m", "pipelines.definitions"]
    # The code location loads with the deployment's settings, every job on k8s_job_executor.
    env = {
        **deployment["env"],
        "LAKE_URI": "s3://effectlake/lake",
        "MEDIA_URI": "s3://effectlake/media",
        "REDIS_URL": "redis://redis:6379/0",
        "DATABASE_URL": "postgresql://effectlake@postgres.internal/effectlake",
        "EFFECTLAKE_ADMIN_KEY": "elk_" + "0" * 12 + "_" + "A" * 43,
    }
    defs = build_definitions(Settings.from_environ(env))
    assert {defs.resolve_job_def(j).executor_def.name for j in ("intake_job", "evaluation_job", "economics_job")} == {
        "k8s"
    }
    # The compute-log manager the values name is importable from the image's packages.
    from dagster_aws.s3.compute_log_manager import S3ComputeLogManager  # noqa: F401


def test_helm_run_monitoring_renders_a_valid_instance_setting():
    """The chart's configmap-instance.yaml writes ``dagsterDaemon.runMonitoring`` into the
    instance's ``run_monitoring`` (camelCase → snake_case, key for key): the rendered block
    is valid for this Dagster's instance schema, and crashed run workers are failed, not
    resumed (the recovery sensor re-queues their videos exactly once)."""
    from dagster._config import validate_config
    from dagster._core.instance.config import dagster_instance_config_schema

    monitoring = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())["dagsterDaemon"]["runMonitoring"]
    rendered = {re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower(): value for key, value in monitoring.items()}
    result = validate_config(dagster_instance_config_schema()["run_monitoring"].config_type, rendered)
    assert result.success, [e.message for e in result.errors or []]
    assert rendered["enabled"] is True and rendered["max_resume_run_attempts"] == 0
    assert rendered["start_timeout_seconds"] >= 180  # a pod may wait for a node to scale up
