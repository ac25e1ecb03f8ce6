"""Process-wide settings read from the environment (pydantic-settings): the one place every
knob of the platform and its default are written.

Every location the platform touches is named here once; the I/O clients (``resources/lake.py``,
``media.py``, ``manifest_store.py``, ``catalog.py``, ``providers/client.py``) are built from
these values (``resources.clients.Clients.from_settings``) and are the only code that turns
them into paths. Relative defaults resolve against the project root so the API, the Dagster
processes, the dashboard and the CLI agree whatever their working directory. The stages read
their policy knobs (``top_k``, ``exploration_rate``…) from the same object: the Dagster
``platform`` resource is this Settings instance.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from economics.bandit import FLOOR, HALF_LIFE_EXECUTIONS
from economics.routing import EXPLORATION_RATE

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = PROJECT_ROOT / "data"


# Alert severities, lowest first (economics.bottlenecks' severities).
ALERT_SEVERITIES = ("warning", "critical")
# The run executors a deployment can choose (pipelines/executors.py builds them).
EXECUTORS = ("in_process", "multiprocess", "k8s")


def _under_data(name: str) -> str:
    return str(DATA_DIR / name)


class Settings(BaseSettings):
    """Deployment settings and platform policy (each field's environment variable is its
    alias).

    Locations:
        lake_uri (``LAKE_URI``): root of every Delta table (local dir or ``s3://bucket/prefix``).
        media_uri (``MEDIA_URI``): root of video bytes (local dir or ``s3://bucket/prefix``).
        manifest_uri (``MANIFEST_URI``): routing-manifest store: a local JSON file path or
            ``redis://…`` (default: ``redis_url`` when set, else a file under
            ``data/manifest``).
        redis_url (``REDIS_URL``): production's Redis, the manifest store's default.
        manifest_key_prefix (``EFFECTLAKE_MANIFEST_PREFIX``): prefix of the manifest's Redis
            keys (``<prefix>:current``, ``<prefix>:history``), so several deployments (or
            tests) can share one Redis.
        data_dir (``EFFECTLAKE_DATA_DIR``): the shipped catalogs (``effects.yaml``,
            ``rate_card.yaml``, ``style_taxonomy.yaml``, ``prompt_templates.yaml``).
        providers_path (``EFFECTLAKE_PROVIDERS``): the provider registry YAML
            (``effects.yaml`` and ``rate_card.yaml`` beside it validate it).
        reference_suite_path (``EFFECTLAKE_REFERENCE_SUITE``): the benchmark's suite; empty
            = ``<data_dir>/reference_suite.yaml``. Its first installed video is also the
            neutral reference content a job's providers render the target effect on.
        reference_seconds (``EFFECTLAKE_REFERENCE_SECONDS``): length of a job's reference clip
            (cut from the suite's first video), seconds: one short clip keeps a job cheap on
            a 2-core machine.
        reference_max_side (``EFFECTLAKE_REFERENCE_MAX_SIDE``): longest side of the reference
            clip, pixels.
        dagster_home (``DAGSTER_HOME``): the Dagster instance the CLI and the demo use.
        ffmpeg_binary (``FFMPEG_BINARY``): ffmpeg to run; empty = the imageio-ffmpeg wheel's.
        database_url (``DATABASE_URL``): the transactional store (``resources/store``):
            PostgreSQL in production, an SQLite file under ``data/store`` embedded.
        executor (``EFFECTLAKE_EXECUTOR``): how a run executes its steps
            (``pipelines/executors.py``): ``in_process`` (embedded default: one process per
            run), ``multiprocess`` (a process per step, the production profile on one host) or
            ``k8s`` (a Kubernetes Job per step, ``dagster-k8s``); stored trimmed and
            lower-cased.

    API and sign-in:
        deployment (``EFFECTLAKE_DEPLOYMENT``): ``local`` (embedded default: everything on
            this disk, password sign-in) or ``prod`` (OIDC sign-in); stored trimmed and
            lower-cased.
        admin_api_key (``EFFECTLAKE_ADMIN_KEY``): the bootstrap admin's API key
            (``elk_<12 hex>_<43 characters>``, e.g. from ``effectlake admin-key``), registered
            in the store at API start as an admin user's key; sent as ``Authorization:
            Bearer``. Unset: ``prod`` refuses to start, the embedded default makes a one-off
            key and prints it (``api.hardening``).
        api_base_url (``EFFECTLAKE_API_URL``): public base URL of the API, for media and
            gallery links.
        dashboard_password_hash (``EFFECTLAKE_DASHBOARD_PASSWORD_HASH``): the embedded
            dashboard's admin password hash (``dashboards/auth.py``); None when unset or blank.
        admin_emails (``EFFECTLAKE_ADMIN_EMAILS``): prod's dashboard allow-list,
            comma-separated.
        rate_limit_ip_per_minute (``EFFECTLAKE_RATE_LIMIT_IP_PER_MINUTE``): requests a minute
            one client address may make (600: ten a second, room for an office behind one
            NAT address); 0 = unlimited. ``api.ratelimit``.
        rate_limit_key_per_minute (``EFFECTLAKE_RATE_LIMIT_KEY_PER_MINUTE``): requests a
            minute one API key may make (120: a client polling a video's status every second
            stays at half of it); 0 = unlimited.
        rate_limit_prefix (``EFFECTLAKE_RATE_LIMIT_PREFIX``): prefix of the rate-limit
            counters' Redis keys (production).
        metrics_allow (``EFFECTLAKE_METRICS_ALLOW``): comma-separated CIDRs whose clients may
            read ``/metrics`` (default: the loopback); ``api.metrics`` says why.

    Media distribution (``resources/media_links.py``; docs/gallery.md):
        media_public_base_url (``EFFECTLAKE_MEDIA_PUBLIC_URL``): public base URL serving the
            media store's ``published/`` prefix as it is (a CDN or a public bucket prefix,
            e.g. ``https://cdn.example.com/media``); gallery media links are
            ``<it>/published/<sha256>.mp4``. Empty: presigned URLs on S3, the API's media
            route otherwise.
        media_url_ttl_s (``EFFECTLAKE_MEDIA_URL_TTL_S``): lifetime of a presigned media
            ``GET`` URL, seconds (7 days, the most SigV4 allows); a URL is reused for half of
            it, so a client or CDN sees the same URL, and its cache hits, for days.
        media_max_age_s (``EFFECTLAKE_MEDIA_MAX_AGE_S``): ``Cache-Control`` max-age of the
            media route's keys that are not content-addressed (proxies, outputs), seconds;
            content-addressed keys are immutable for a year.

    GPU admission (``resources.services.admission``; each workspace's
    ``max_concurrent_gpu_jobs`` is in the store):
        gpu_queue_per_slot (``EFFECTLAKE_GPU_QUEUE_PER_SLOT``): uploads a workspace may have
            waiting per GPU slot beyond those running (2: at most two jobs' time of waiting);
            more are refused 429.
        gpu_job_seconds (``EFFECTLAKE_GPU_JOB_SECONDS``): typical wall time of one video's
            GPU work, seconds: the unit of the ``Retry-After`` a refusal answers with.

    Intake (API and M1):
        max_upload_bytes: hard upload size limit, bytes.
        max_duration_ms / min_duration_ms: accepted video duration range, ms.
        max_video_side: longest accepted picture side, pixels (4096: DCI 4K).
        max_video_pixels: largest accepted picture area, width x height in pixels (4096x2304).
        max_frame_rate: frames/s that bounds a video's declared frame count together with
            max_duration_ms (240: 28,800 frames for 120 s). M1 checks these three, and
            max_duration_ms, against the file's header before decoding a frame.
        proxy_max_side: longest side of the normalized proxy M1 writes, pixels.
        welcome_credit_tokens: tokens credited once to a user's account on their first
            upload (a free trial; 0 disables it, then users need an admin top-up first).
        upload_idle_timeout_s (``EFFECTLAKE_UPLOAD_IDLE_TIMEOUT_S``): longest wait for the next
            bytes of a request body, seconds; then 408 (``api.limits``).
        upload_min_bytes_per_s (``EFFECTLAKE_UPLOAD_MIN_RATE``): slowest average body rate
            accepted once a body has taken longer than the idle timeout, bytes/s; slower is
            a 408 (50 kB/s: 200 MB in about 67 min, slower than any mobile link still used).
        upload_url_ttl_s (``EFFECTLAKE_UPLOAD_URL_TTL_S``): lifetime of a presigned upload
            URL, seconds.
        upload_signing_secret (``EFFECTLAKE_UPLOAD_SIGNING_SECRET``): HMAC key of the API's own
            presigned upload URLs (local media store). Unset: generated once and kept in
            ``<data_dir>/secrets/upload_signing.key`` so every worker on the host agrees;
            ``prod`` with a local media store refuses to start without it (``api.hardening``).
        link_timeout_s (``EFFECTLAKE_LINK_TIMEOUT_S``): time cap of a link download
            (``POST /v1/uploads/link``), seconds.
        link_test_hosts (``EFFECTLAKE_LINK_TEST_HOSTS``): test-only ``host:port`` entries
            (comma-separated) the link guard admits over http whatever their address; empty
            by default, refused in ``prod``.

    Economics and routing:
        token_usd_rate: USD value of one token.
        exploration_rate: ε of M5's test batch: one provider beyond the top ``top_k`` with
            probability ε (5% by default); the manifest's own weights are Thompson probabilities
            (docs/routing.md).
        top_k: providers M5 takes per effect type from the routing manifest.
        priority: user priority naming the routing / best-result weights
            (``economics.routing.PRIORITY_WEIGHTS``).
        routing_half_life_executions (``EFFECTLAKE_ROUTING_HALF_LIFE``): half-life of an
            execution in the routing estimates, in executions of its effect type
            (``economics.bandit``, docs/routing.md).
        routing_floor (``EFFECTLAKE_ROUTING_FLOOR``): uniform share of the Thompson routing
            weights, so every provider keeps a non-zero propensity.
        max_parallel_tasks: provider tasks run at once by M6, the benchmark and A/B tests.
        run_deadline_s (``EFFECTLAKE_RUN_DEADLINE_S``): how long an effect run may keep falling
            back to the next provider, seconds from its start; past it, no further provider is
            tried and the run is refunded (600: ten minutes, well past the slowest local
            provider on a 10 s clip, 29 s, and short enough that a user still waits for it).

    Automatic actions and applied recommendations (``economics.actions``, docs/signals.md):
        autoscale_budget_usd_per_hour (``EFFECTLAKE_AUTOSCALE_BUDGET_USD_PER_HOUR``): the extra
            capacity (dispatch slots above the registry's, at their instance type's hourly
            rate) a GPU_SATURATION scale-up may keep in force unattended, USD/h; beyond it a
            scale-up is only recommended. 1.0 fits one L4-class server ($0.80/h); 0 = never.
        auto_apply_per_cycle (``EFFECTLAKE_AUTO_APPLY_PER_CYCLE``): ``auto_applicable``
            recommendations applied unattended per economics cycle (the rest wait for the next
            cycle); 0 = none.
        auto_apply_max_step (``EFFECTLAKE_AUTO_APPLY_MAX_STEP``): the largest relative change
            of a numeric parameter (a price, a concurrency) applied unattended (0.25 = ±25 %);
            larger ones wait for an admin.
        act_on_simulated (``EFFECTLAKE_ACT_ON_SIMULATED``): carry out the actions of
            classifications of simulated streams (scenario tests, demos); off, they are
            recorded as ``simulated`` and nothing changes.

    Alerts (``resources/services/alerts.py``, docs/signals.md "Alerts"):
        smtp_host (``EFFECTLAKE_SMTP_HOST``): the SMTP server alerts are emailed through;
            empty = no email (alerts are in-app only).
        smtp_port (``EFFECTLAKE_SMTP_PORT``): its port (25; 587 with STARTTLS).
        smtp_from (``EFFECTLAKE_SMTP_FROM``): the sender address.
        smtp_username / smtp_password (``EFFECTLAKE_SMTP_USERNAME`` / ``…_PASSWORD``): login,
            when the server wants one; None when unset or blank.
        smtp_starttls (``EFFECTLAKE_SMTP_STARTTLS``): upgrade the connection with STARTTLS.
        smtp_timeout_s (``EFFECTLAKE_SMTP_TIMEOUT_S``): per connection and command, seconds.
        alert_email_to (``EFFECTLAKE_ALERT_EMAIL_TO``): recipients, comma-separated; empty =
            ``admin_emails``.
        alert_email_severity (``EFFECTLAKE_ALERT_EMAIL_SEVERITY``): the lowest severity
            emailed, ``critical`` (default: warnings stay in-app) or ``warning``.
        alert_email_attempts (``EFFECTLAKE_ALERT_EMAIL_ATTEMPTS``): attempts per email, first
            included, before it becomes a dead letter.
        alert_email_retry_s (``EFFECTLAKE_ALERT_EMAIL_RETRY_S``): pause between attempts,
            seconds (a server restarting or a greylisting answer passes in seconds).

    Gemini (``resources/gemini``, docs/gemini.md):
        google_api_key (``GOOGLE_API_KEY``): Gemini Developer API key; unset or blank = no
            Gemini calls, the stages run their local analysis (``source = local``).
        gemini_model (``EFFECTLAKE_GEMINI_MODEL``): model id; must have a row in
            ``<data_dir>/gemini_prices.yaml`` so every call can be priced.
        gemini_base_url (``EFFECTLAKE_GEMINI_BASE_URL``): API root; empty = the SDK's
            (``https://generativelanguage.googleapis.com``); tests point it at a local fake.
        gemini_timeout_s (``EFFECTLAKE_GEMINI_TIMEOUT_S``): per HTTP request, seconds.
        gemini_attempts (``EFFECTLAKE_GEMINI_ATTEMPTS``): attempts per request on 429 / 5xx /
            a dropped connection, first try included.
        gemini_max_wait_s (``EFFECTLAKE_GEMINI_MAX_WAIT_S``): longest pause between attempts,
            seconds; a longer Retry-After ends the retries (the stage falls back).
        gemini_file_timeout_s (``EFFECTLAKE_GEMINI_FILE_TIMEOUT_S``): longest wait for an
            uploaded video to become ACTIVE, seconds.
        gemini_inline_max_bytes (``EFFECTLAKE_GEMINI_INLINE_MAX_BYTES``): videos up to this size
            are sent inline in the request instead of through the Files API (the API takes
            requests up to 20 MB; base64 adds a third).
        gemini_cache_dir (``EFFECTLAKE_GEMINI_CACHE_DIR``): on-disk cache of analyses, keyed by
            (video sha256, prompt version, model, inputs); empty = ``<data_dir>/gemini_cache``.

    Recovery (``pipelines/recovery/``, docs/architecture.md "Recovery"):
        recovery_stuck_after_s (``EFFECTLAKE_RECOVERY_STUCK_AFTER_S``): a video with no live
            run and nothing recorded for this long is stuck, seconds (900: a long intake run
            on a 2-minute video takes a few minutes, and a live run is never stuck; remote
            tasks keep their own deadlines).
        recovery_requeues (``EFFECTLAKE_RECOVERY_REQUEUES``): runs started again for one
            stuck phase of a video before it is failed and refunded.
        recovery_submit_grace_s (``EFFECTLAKE_RECOVERY_SUBMIT_GRACE_S``): a remote task still
            being sent after this long lost its sender, seconds (a send is an upload and one
            POST: well under a minute).
        recovery_interval_s (``EFFECTLAKE_RECOVERY_INTERVAL_S``): the recovery sensor's
            interval, seconds.
        recovery_horizon_hours (``EFFECTLAKE_RECOVERY_HORIZON_HOURS``): on its first tick, how
            far back the sensor looks for delivered and decided videos, hours.

    Schedules (``pipelines/definitions.py``):
        schedules_running (``EFFECTLAKE_SCHEDULES_RUNNING``): whether the cron schedules
            (economics every 15 minutes, signals every 5, the weekly benchmark) run from the
            daemon's start (default true). False starts them stopped; the sensors, the demo's
            closing economics cycle and a start from the Dagster UI still work. For test stacks
            whose runs must not be joined by a scheduled cycle when the clock crosses a
            quarter hour.
    """

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    # -- locations --------------------------------------------------------------------------
    lake_uri: str = Field(default_factory=lambda: _under_data("lake"), alias="LAKE_URI")
    media_uri: str = Field(default_factory=lambda: _under_data("media"), alias="MEDIA_URI")
    # Empty means "not set": the validator below picks Redis or the file default.
    manifest_uri: str = Field(default="", alias="MANIFEST_URI")
    redis_url: str | None = Field(default=None, alias="REDIS_URL")
    manifest_key_prefix: str = Field(default="effectlake:routing_manifest", alias="EFFECTLAKE_MANIFEST_PREFIX")
    data_dir: str = Field(default_factory=lambda: str(DATA_DIR), alias="EFFECTLAKE_DATA_DIR")
    providers_path: str = Field(default_factory=lambda: _under_data("providers.yaml"), alias="EFFECTLAKE_PROVIDERS")
    reference_suite_path: str = Field(default="", alias="EFFECTLAKE_REFERENCE_SUITE")
    reference_seconds: float = Field(default=2.0, gt=0, alias="EFFECTLAKE_REFERENCE_SECONDS")
    reference_max_side: int = Field(default=320, ge=16, alias="EFFECTLAKE_REFERENCE_MAX_SIDE")
    dagster_home: str = Field(default_factory=lambda: _under_data("dagster_home"), alias="DAGSTER_HOME")
    ffmpeg_binary: str = Field(default="", alias="FFMPEG_BINARY")
    database_url: str = Field(
        default_factory=lambda: f"sqlite:///{DATA_DIR / 'store' / 'effectlake.db'}", alias="DATABASE_URL"
    )
    executor: str = Field(default="in_process", alias="EFFECTLAKE_EXECUTOR")

    # -- API and sign-in --------------------------------------------------------------------
    deployment: str = Field(default="local", alias="EFFECTLAKE_DEPLOYMENT")
    admin_api_key: str | None = Field(default=None, alias="EFFECTLAKE_ADMIN_KEY")
    api_base_url: str = Field(default="http://127.0.0.1:8000", alias="EFFECTLAKE_API_URL")
    dashboard_password_hash: str | None = Field(default=None, alias="EFFECTLAKE_DASHBOARD_PASSWORD_HASH")
    admin_emails: str = Field(default="", alias="EFFECTLAKE_ADMIN_EMAILS")
    rate_limit_ip_per_minute: int = Field(default=600, ge=0, alias="EFFECTLAKE_RATE_LIMIT_IP_PER_MINUTE")
    rate_limit_key_per_minute: int = Field(default=120, ge=0, alias="EFFECTLAKE_RATE_LIMIT_KEY_PER_MINUTE")
    rate_limit_prefix: str = Field(default="effectlake:ratelimit", alias="EFFECTLAKE_RATE_LIMIT_PREFIX")
    metrics_allow: str = Field(default="127.0.0.1/32,::1/128", alias="EFFECTLAKE_METRICS_ALLOW")

    # -- media distribution -----------------------------------------------------------------
    media_public_base_url: str = Field(default="", alias="EFFECTLAKE_MEDIA_PUBLIC_URL")
    media_url_ttl_s: int = Field(default=7 * 24 * 3600, ge=60, le=7 * 24 * 3600, alias="EFFECTLAKE_MEDIA_URL_TTL_S")
    media_max_age_s: int = Field(default=3600, ge=0, alias="EFFECTLAKE_MEDIA_MAX_AGE_S")

    # -- GPU admission ----------------------------------------------------------------------
    gpu_queue_per_slot: int = Field(default=2, ge=0, alias="EFFECTLAKE_GPU_QUEUE_PER_SLOT")
    gpu_job_seconds: int = Field(default=60, ge=1, alias="EFFECTLAKE_GPU_JOB_SECONDS")

    # -- intake -----------------------------------------------------------------------------
    max_upload_bytes: int = Field(default=200 * 1024 * 1024, alias="EFFECTLAKE_MAX_UPLOAD_BYTES")
    max_duration_ms: int = Field(default=120_000, alias="EFFECTLAKE_MAX_DURATION_MS")
    min_duration_ms: int = Field(default=500, alias="EFFECTLAKE_MIN_DURATION_MS")
    max_video_side: int = Field(default=4096, alias="EFFECTLAKE_MAX_VIDEO_SIDE")
    max_video_pixels: int = Field(default=4096 * 2304, alias="EFFECTLAKE_MAX_VIDEO_PIXELS")
    max_frame_rate: float = Field(default=240.0, alias="EFFECTLAKE_MAX_FRAME_RATE")
    proxy_max_side: int = Field(default=480, alias="EFFECTLAKE_PROXY_MAX_SIDE")
    welcome_credit_tokens: int = Field(default=200, alias="EFFECTLAKE_WELCOME_CREDIT")
    upload_idle_timeout_s: float = Field(default=30.0, alias="EFFECTLAKE_UPLOAD_IDLE_TIMEOUT_S")
    upload_min_bytes_per_s: int = Field(default=50_000, alias="EFFECTLAKE_UPLOAD_MIN_RATE")
    upload_url_ttl_s: int = Field(default=900, alias="EFFECTLAKE_UPLOAD_URL_TTL_S")
    upload_signing_secret: str | None = Field(default=None, alias="EFFECTLAKE_UPLOAD_SIGNING_SECRET")
    link_timeout_s: float = Field(default=120.0, alias="EFFECTLAKE_LINK_TIMEOUT_S")
    link_test_hosts: str = Field(default="", alias="EFFECTLAKE_LINK_TEST_HOSTS")

    # -- economics and routing --------------------------------------------------------------
    token_usd_rate: float = Field(default=0.01, alias="EFFECTLAKE_TOKEN_USD_RATE")
    exploration_rate: float = Field(default=EXPLORATION_RATE, alias="EFFECTLAKE_EXPLORATION_RATE")
    top_k: int = Field(default=2, alias="EFFECTLAKE_TOP_K")
    priority: str = Field(default="balanced", alias="EFFECTLAKE_PRIORITY")
    routing_half_life_executions: float = Field(
        default=HALF_LIFE_EXECUTIONS, gt=0, alias="EFFECTLAKE_ROUTING_HALF_LIFE"
    )
    routing_floor: float = Field(default=FLOOR, ge=0, le=1, alias="EFFECTLAKE_ROUTING_FLOOR")
    max_parallel_tasks: int = Field(default=2, alias="EFFECTLAKE_MAX_PARALLEL_TASKS")
    run_deadline_s: float = Field(default=600.0, gt=0, alias="EFFECTLAKE_RUN_DEADLINE_S")

    # -- automatic actions and applied recommendations ---------------------------------------
    autoscale_budget_usd_per_hour: float = Field(default=1.0, ge=0, alias="EFFECTLAKE_AUTOSCALE_BUDGET_USD_PER_HOUR")
    auto_apply_per_cycle: int = Field(default=2, ge=0, alias="EFFECTLAKE_AUTO_APPLY_PER_CYCLE")
    auto_apply_max_step: float = Field(default=0.25, ge=0, alias="EFFECTLAKE_AUTO_APPLY_MAX_STEP")
    act_on_simulated: bool = Field(default=False, alias="EFFECTLAKE_ACT_ON_SIMULATED")

    # -- alerts -----------------------------------------------------------------------------
    smtp_host: str = Field(default="", alias="EFFECTLAKE_SMTP_HOST")
    smtp_port: int = Field(default=25, ge=1, le=65535, alias="EFFECTLAKE_SMTP_PORT")
    smtp_from: str = Field(default="effectlake@localhost", alias="EFFECTLAKE_SMTP_FROM")
    smtp_username: str | None = Field(default=None, alias="EFFECTLAKE_SMTP_USERNAME")
    smtp_password: str | None = Field(default=None, alias="EFFECTLAKE_SMTP_PASSWORD")
    smtp_starttls: bool = Field(default=False, alias="EFFECTLAKE_SMTP_STARTTLS")
    smtp_timeout_s: float = Field(default=10.0, gt=0, alias="EFFECTLAKE_SMTP_TIMEOUT_S")
    alert_email_to: str = Field(default="", alias="EFFECTLAKE_ALERT_EMAIL_TO")
    alert_email_severity: str = Field(default="critical", alias="EFFECTLAKE_ALERT_EMAIL_SEVERITY")
    alert_email_attempts: int = Field(default=4, ge=1, alias="EFFECTLAKE_ALERT_EMAIL_ATTEMPTS")
    alert_email_retry_s: float = Field(default=2.0, ge=0, alias="EFFECTLAKE_ALERT_EMAIL_RETRY_S")

    # -- Gemini -----------------------------------------------------------------------------
    google_api_key: str | None = Field(default=None, alias="GOOGLE_API_KEY")
    gemini_model: str = Field(default="gemini-2.5-flash", alias="EFFECTLAKE_GEMINI_MODEL")
    gemini_base_url: str = Field(default="", alias="EFFECTLAKE_GEMINI_BASE_URL")
    gemini_timeout_s: float = Field(default=120.0, gt=0, alias="EFFECTLAKE_GEMINI_TIMEOUT_S")
    gemini_attempts: int = Field(default=4, ge=1, alias="EFFECTLAKE_GEMINI_ATTEMPTS")
    gemini_max_wait_s: float = Field(default=30.0, ge=0, alias="EFFECTLAKE_GEMINI_MAX_WAIT_S")
    gemini_file_timeout_s: float = Field(default=300.0, gt=0, alias="EFFECTLAKE_GEMINI_FILE_TIMEOUT_S")
    gemini_inline_max_bytes: int = Field(default=4 * 1024 * 1024, ge=0, alias="EFFECTLAKE_GEMINI_INLINE_MAX_BYTES")
    gemini_cache_dir: str = Field(default="", alias="EFFECTLAKE_GEMINI_CACHE_DIR")

    # -- recovery ---------------------------------------------------------------------------
    recovery_stuck_after_s: float = Field(default=900.0, gt=0, alias="EFFECTLAKE_RECOVERY_STUCK_AFTER_S")
    recovery_requeues: int = Field(default=2, ge=0, alias="EFFECTLAKE_RECOVERY_REQUEUES")
    recovery_submit_grace_s: float = Field(default=300.0, gt=0, alias="EFFECTLAKE_RECOVERY_SUBMIT_GRACE_S")
    recovery_interval_s: int = Field(default=30, ge=1, alias="EFFECTLAKE_RECOVERY_INTERVAL_S")
    recovery_horizon_hours: float = Field(default=48.0, gt=0, alias="EFFECTLAKE_RECOVERY_HORIZON_HOURS")

    # -- schedules --------------------------------------------------------------------------
    schedules_running: bool = Field(default=True, alias="EFFECTLAKE_SCHEDULES_RUNNING")

    @field_validator("deployment")
    @classmethod
    def _deployment(cls, value: str) -> str:
        return value.strip().lower() or "local"

    @field_validator("executor")
    @classmethod
    def _executor(cls, value: str) -> str:
        value = value.strip().lower() or "in_process"
        if value not in EXECUTORS:
            raise ValueError(f"EFFECTLAKE_EXECUTOR must be one of {', '.join(EXECUTORS)}, not {value!r}")
        return value

    @field_validator("alert_email_severity")
    @classmethod
    def _email_severity(cls, value: str) -> str:
        value = value.strip().lower() or "critical"
        if value not in ALERT_SEVERITIES:
            raise ValueError(f"EFFECTLAKE_ALERT_EMAIL_SEVERITY must be one of {', '.join(ALERT_SEVERITIES)}")
        return value

    @property
    def alert_recipients(self) -> list[str]:
        """Who alert emails go to: ``alert_email_to``, else ``admin_emails``."""
        listed = self.alert_email_to or self.admin_emails
        return [a.strip() for a in listed.split(",") if a.strip()]

    @property
    def alert_emailed_severities(self) -> tuple[str, ...]:
        """The severities that are emailed (``alert_email_severity`` and above)."""
        return ALERT_SEVERITIES[ALERT_SEVERITIES.index(self.alert_email_severity) :]

    @field_validator(
        "dashboard_password_hash",
        "admin_api_key",
        "upload_signing_secret",
        "google_api_key",
        "smtp_username",
        "smtp_password",
    )
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return (value or "").strip() or None

    @model_validator(mode="after")
    def _manifest_default(self) -> Settings:
        # Production sets REDIS_URL; the embedded default is a file under data/.
        if not self.manifest_uri:
            self.manifest_uri = self.redis_url or _under_data("manifest/routing_manifest.json")
        return self

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        """Settings from ``environ`` alone, not the process environment (for an environment
        prepared for a child process, or a test's).

        Raises:
            pydantic.ValidationError: a value of the wrong type (e.g. a non-numeric limit).
        """
        # Strings, as in an environment: pydantic parses each into its field's type.
        values: dict[str, Any] = dict(environ)
        return _FromMapping(**values)


class _FromMapping(Settings):
    """Settings whose only source is the keyword arguments (no process environment, no
    dotenv file): what ``Settings.from_environ`` builds."""

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ):
        return (init_settings,)


def alias_of(field: str) -> str:
    """The environment variable of Settings field ``field`` (e.g. ``lake_uri`` → ``LAKE_URI``).

    Raises:
        KeyError: no such field.
    """
    return Settings.model_fields[field].alias or field.upper()


def default_of(field: str):
    """The default of Settings field ``field`` (for code that must name it, e.g. the
    dashboard's list of passwords nobody may keep).

    Raises:
        KeyError: no such field; ValueError: the field's default is computed.
    """
    info = Settings.model_fields[field]
    if info.default_factory is not None:
        raise ValueError(f"{field} has a computed default")
    return info.default


def get_settings() -> Settings:
    """Read settings from the current environment (no caching: tests change the env)."""
    return Settings()
