"""``effectlake demo-prod``: the demo of ``effectlake demo`` on the production components, all
on 127.0.0.1.

- the Dagster instance on PostgreSQL (``dagster-postgres``: run, event-log and schedule
  storage), the ``QueuedRunCoordinator`` with per-tag run limits, every job
  on the multiprocess executor (``EFFECTLAKE_EXECUTOR=multiprocess``);
- the lake and the media store on an S3 API: ``AWS_ENDPOINT_URL`` when it is set (MinIO, AWS),
  else a local S3-compatible server started here (``pipelines.cli.local_s3``, moto);
- the routing manifest (and the API's rate-limit counters) in Redis (``REDIS_URL``, default
  ``redis://127.0.0.1:6379/0``);
- the transactional store on PostgreSQL.

A service that is not running is started (PostgreSQL in a temporary cluster, Redis without
persistence, the S3 server) and stopped at the end; one that is running is used. The demo is
ephemeral: the local S3 server keeps objects in memory, so each run gets fresh databases, a
fresh key prefix in Redis and fresh buckets, and removes the databases and keys it created when
it ends (pass ``DATABASE_URL`` / ``EFFECTLAKE_DAGSTER_PG_URL`` / ``EFFECTLAKE_MANIFEST_PREFIX``
/ ``LAKE_URI`` + ``MEDIA_URI`` to use existing ones instead; those are left alone).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from dashboards.launch import pick_port
from pipelines.cli.demo import DAEMON_YAML, SHARED_RUN_LIMITS_YAML
from resources.processes import ChildGroup
from resources.retry import PollTimeout, until_ready
from resources.s3 import ensure_buckets, s3_environment, unsafe_commit_settings
from resources.settings import PROJECT_ROOT

# The PostgreSQL server's maintenance URL: databases are created and dropped through it.
PG_ADMIN_ENV = "EFFECTLAKE_PG_ADMIN_URL"
PG_ADMIN_DEFAULT = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
DAGSTER_PG_ENV = "EFFECTLAKE_DAGSTER_PG_URL"
REDIS_DEFAULT = "redis://127.0.0.1:6379/0"
S3_PORT_DEFAULT = 9000  # MinIO's port, so the demo's URLs read like a real deployment's

DAGSTER_YAML = f"""\
# Written by `effectlake demo-prod`: the production profile's Dagster instance.
telemetry:
  enabled: false
# Run, event-log and schedule storage on PostgreSQL (dagster-postgres). psycopg2 is named in
# the URL: SQLAlchemy 2.1 would otherwise pick psycopg 3 for postgresql://.
storage:
  postgres:
    postgres_url:
      env: {DAGSTER_PG_ENV}
{DAEMON_YAML}concurrency:
  runs:
    max_concurrent_runs: 4
    tag_concurrency_limits:
      # At most two runs started by one sensor at a time (uploads arriving in a burst queue
      # instead of all decoding at once), one run per schedule (an economics cycle never
      # overlaps the previous one); then the limits the demo's instance has too.
      - key: dagster/sensor_name
        value:
          applyLimitPerUniqueValue: true
        limit: 2
      - key: dagster/schedule_name
        value:
          applyLimitPerUniqueValue: true
        limit: 1
{SHARED_RUN_LIMITS_YAML}"""


def _pg_reachable(url: str) -> bool:
    engine = create_engine(url, connect_args={"connect_timeout": 2})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001 - any failure to connect means "not running here"
        return False
    finally:
        engine.dispose()


def _redis_reachable(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


def _wait(what: str, ready, timeout_s: float = 60) -> None:
    try:
        until_ready(timeout_s, interval_s=0.3)(lambda: True if ready() else None)
    except PollTimeout:
        raise TimeoutError(f"{what} did not come up within {timeout_s:.0f} s") from None


def _start_postgres(children: ChildGroup, admin_url: str, workdir: Path) -> None:
    """A throw-away PostgreSQL cluster on the admin URL's port (trust auth on 127.0.0.1),
    run as the ``postgres`` user when this process is root (the server refuses root)."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    bindir = Path(bins[-1]) if bins else Path(shutil.which("initdb") or "initdb").parent
    url = make_url(admin_url)
    data = workdir / "pgdata"
    data.mkdir(parents=True)
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres")
        shutil.chown(data, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*as_user, str(bindir / "initdb"), "-D", str(data), "-U", url.username or "postgres", "--auth=trust"],
        check=True,
        capture_output=True,
    )
    host, port = url.host or "127.0.0.1", str(url.port or 5432)
    children.spawn(
        [*as_user, str(bindir / "postgres"), "-D", str(data), "-h", host, "-p", port, "-k", str(workdir)],
        log=workdir / "postgres.log",
    )
    _wait("PostgreSQL", lambda: _pg_reachable(admin_url))


def _start_redis(children: ChildGroup, url: str, workdir: Path) -> None:
    parsed = urlsplit(url)
    host, port = parsed.hostname or "127.0.0.1", str(parsed.port or 6379)
    children.spawn(
        ["redis-server", "--bind", host, "--port", port, "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        log=workdir / "redis.log",
    )
    _wait("Redis", lambda: _redis_reachable(url))


@contextlib.contextmanager
def _database(admin_url: str, name: str) -> Iterator[str]:
    """A new database ``name`` on the admin URL's server; its URL; dropped on exit."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _delete_keys(redis_url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)


@contextlib.contextmanager
def production_services(s3_port: int = S3_PORT_DEFAULT) -> Iterator[dict[str, str]]:
    """Start what is missing of PostgreSQL, Redis and an S3 endpoint; yield the environment
    that points every process of the platform at them (on top of ``os.environ``); stop and
    remove what was started or created here on exit.

    Raises:
        RuntimeError: the environment asks for unsafe Delta commits on S3
            (``resources.s3.unsafe_commit_settings``).
    """
    environ = dict(os.environ)
    problems = unsafe_commit_settings(environ)
    if problems:
        raise RuntimeError("; ".join(problems))
    run = uuid.uuid4().hex[:8]
    workdir = Path(tempfile.mkdtemp(prefix="effectlake-prod-"))
    env: dict[str, str] = {"EFFECTLAKE_EXECUTOR": "multiprocess"}
    try:
        with ChildGroup() as services, contextlib.ExitStack() as created:
            # PostgreSQL: the Dagster instance and the transactional store.
            admin_url = environ.get(PG_ADMIN_ENV, PG_ADMIN_DEFAULT)
            if not _pg_reachable(admin_url):
                print(f"starting PostgreSQL for {make_url(admin_url).render_as_string()}", flush=True)
                _start_postgres(services, admin_url, workdir / "postgres")
            env[DAGSTER_PG_ENV] = environ.get(DAGSTER_PG_ENV) or created.enter_context(
                _database(admin_url, f"effectlake_dagster_{run}")
            )
            store_url = environ.get("DATABASE_URL", "")
            if not store_url.startswith(("postgresql", "postgres:")):
                store_url = created.enter_context(_database(admin_url, f"effectlake_store_{run}"))
            env["DATABASE_URL"] = store_url
            # Redis: the routing manifest (read by M5 on every run) and the API's rate limits.
            redis_url = environ.get("REDIS_URL") or REDIS_DEFAULT
            if not _redis_reachable(redis_url):
                print(f"starting Redis on {redis_url}", flush=True)
                (workdir / "redis").mkdir()
                _start_redis(services, redis_url, workdir / "redis")
            env["REDIS_URL"] = redis_url
            env["MANIFEST_URI"] = redis_url
            if not environ.get("EFFECTLAKE_MANIFEST_PREFIX"):
                prefix = f"effectlake:demo-{run}:"
                env["EFFECTLAKE_MANIFEST_PREFIX"] = prefix + "routing_manifest"
                env["EFFECTLAKE_RATE_LIMIT_PREFIX"] = prefix + "ratelimit"
                created.callback(_delete_keys, redis_url, prefix)
            # S3: the lake and the media store.
            if environ.get("AWS_ENDPOINT_URL"):
                s3_env = {k: v for k, v in environ.items() if k.startswith("AWS_")}
            else:
                from pipelines.cli import local_s3

                port = pick_port(s3_port)  # the next free one when taken
                services.spawn(
                    [sys.executable, "-m", "pipelines.cli.local_s3", "--port", str(port)],
                    cwd=PROJECT_ROOT,
                    log=workdir / "s3.log",
                )
                s3_env = s3_environment(
                    f"http://127.0.0.1:{port}", local_s3.ACCESS_KEY_ID, local_s3.SECRET_ACCESS_KEY, local_s3.REGION
                )
                _wait("the local S3 server", lambda: _s3_reachable(s3_env))
            env.update(s3_env)
            lake, media = environ.get("LAKE_URI", ""), environ.get("MEDIA_URI", "")
            if not (lake.startswith("s3://") and media.startswith("s3://")):
                lake, media = f"s3://effectlake-{run}/lake", f"s3://effectlake-{run}/media"
            env["LAKE_URI"], env["MEDIA_URI"] = lake, media
            ensure_buckets([lake, media], {**environ, **env})
            yield env
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _s3_reachable(s3_env: dict[str, str]) -> bool:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        boto3.client(
            "s3",
            endpoint_url=s3_env["AWS_ENDPOINT_URL"],
            region_name=s3_env["AWS_REGION"],
            aws_access_key_id=s3_env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=s3_env["AWS_SECRET_ACCESS_KEY"],
        ).list_buckets()
        return True
    except (BotoCoreError, ClientError):
        return False


def write_instance(home: Path) -> Path:
    """Write the production profile's ``dagster.yaml`` into ``home`` (created); returns it."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(DAGSTER_YAML)
    return home


def run_prod_demo(
    exit_after: bool,
    api_port: int,
    dagster_port: int,
    timeout_s: float,
    dashboard_port: int = 8501,
    videos: list[Path] | None = None,
    dagster_home: Path | None = None,
) -> int:
    """Start the production services that are missing, then run ``effectlake demo`` on them
    (``pipelines.cli.demo.run_demo``); returns its exit code."""
    from pipelines.cli.demo import run_demo

    home = write_instance(dagster_home or PROJECT_ROOT / "data" / "prod" / "dagster_home")
    with production_services() as env:
        # The demo's processes inherit this process's environment, and so does the demo's own
        # Settings: set it here, for the length of the demo.
        saved = dict(os.environ)
        os.environ.update(env, DAGSTER_HOME=str(home))
        try:
            print(
                "production profile: Dagster on PostgreSQL, QueuedRunCoordinator, multiprocess executor; "
                f"lake {env['LAKE_URI']} and media {env['MEDIA_URI']} on {env.get('AWS_ENDPOINT_URL', 'AWS S3')}; "
                f"manifest in {env['REDIS_URL']}; store on PostgreSQL",
                flush=True,
            )
            return run_demo(exit_after, api_port, dagster_port, timeout_s, dashboard_port, videos=videos)
        finally:
            os.environ.clear()
            os.environ.update(saved)
