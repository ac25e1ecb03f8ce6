"""The dashboard's pure modules without Streamlit: password hashes and the start-up checks
(dashboards/auth.py), the launcher's one-off password, and the data shaping behind the pages
(dashboards/data.py) against hand-computed numbers."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from dashboards import auth, data
from dashboards.launch import with_password
from pipelines.cli.main import main
from resources.schemas import PROVIDER_REGISTRY

NOW = datetime(2026, 11, 21, 12, 30, tzinfo=UTC)


# -- auth --------------------------------------------------------------------------------------
def test_scrypt_hash_round_trip_and_format():
    h = auth.hash_password("s3cret", salt="saltsaltsaltsalt", n=1024)
    method, salt, key = h.split("$")
    assert (method, salt, len(key)) == ("scrypt:1024:8:1", "saltsaltsaltsalt", 128)
    assert key == hashlib.scrypt(b"s3cret", salt=b"saltsaltsaltsalt", n=1024, r=8, p=1, dklen=64).hex()
    assert auth.verify_password("s3cret", h) and not auth.verify_password("S3cret", h)
    assert auth.hash_password("s3cret") != auth.hash_password("s3cret")  # fresh salt each time


def test_pbkdf2_hashes_verify():
    key = hashlib.pbkdf2_hmac("sha256", b"pw", b"NaCl", 1000).hex()
    assert auth.verify_password("pw", f"pbkdf2:sha256:1000$NaCl${key}")
    assert not auth.verify_password("pw2", f"pbkdf2:sha256:1000$NaCl${key}")


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "plain-password",
        "scrypt:1000:8:1$s$00",
        "md5$s$00",
        "scrypt:1024:8:1$s$zz",
        "pbkdf2:nope:10$s$00",
        "scrypt:1024:8:1$s$",
    ],
)
def test_malformed_hashes_are_refused(bad):
    with pytest.raises(auth.InvalidHash):
        auth.verify_password("x", bad)
    if bad:
        problems = auth.startup_problems(auth.AuthConfig(password_hash=bad))
        assert problems and "malformed" in problems[0]


def test_startup_checks():
    good = auth.hash_password("a long admin passphrase", n=1024)
    oidc = {
        "redirect_uri": "http://x/oauth2callback",
        "cookie_secret": "c",
        "google": {"client_id": "i", "client_secret": "s", "server_metadata_url": "https://x/.well-known"},
    }
    assert auth.startup_problems(auth.AuthConfig(password_hash=good)) == []
    assert auth.startup_problems(auth.AuthConfig()) == []  # embedded, no hash: nobody can sign in, nothing leaks
    # the API key is not the browser password, anywhere
    key_hash = auth.hash_password("the-api-key", n=1024)
    assert (
        "API admin key"
        in auth.startup_problems(auth.AuthConfig(password_hash=key_hash, api_admin_key="the-api-key"))[0]
    )
    # prod: OIDC and an allow-list are required, a default password is refused
    prod = auth.AuthConfig(deployment="prod", oidc=True, admin_emails=frozenset({"a@x.io"}))
    assert auth.startup_problems(prod) == []
    assert any("OpenID Connect" in p for p in auth.startup_problems(auth.AuthConfig(deployment="prod")))
    assert any(
        "EFFECTLAKE_ADMIN_EMAILS" in p for p in auth.startup_problems(auth.AuthConfig(deployment="prod", oidc=True))
    )
    weak = auth.hash_password("admin", n=1024)
    assert any(
        "default password 'admin'" in p
        for p in auth.startup_problems(
            auth.AuthConfig(deployment="prod", oidc=True, admin_emails=frozenset({"a@x.io"}), password_hash=weak)
        )
    )
    assert auth.startup_problems(auth.AuthConfig(password_hash=weak)) == []  # the embedded default may
    assert auth.oidc_configured(oidc) and auth.oidc_configured({**oidc["google"], **oidc})
    assert not auth.oidc_configured({"redirect_uri": "x", "cookie_secret": "c"})


def test_config_from_env_and_allow_list():
    cfg = auth.AuthConfig.from_env(
        {
            "EFFECTLAKE_DEPLOYMENT": " PROD ",
            "EFFECTLAKE_ADMIN_EMAILS": "A@x.io, b@y.io c@z.io",
            "EFFECTLAKE_DASHBOARD_PASSWORD_HASH": "  ",
        }
    )
    assert cfg.is_prod and cfg.password_hash is None and cfg.admin_emails == {"a@x.io", "b@y.io", "c@z.io"}
    assert auth.is_admin_email(" a@X.io", cfg.admin_emails)
    assert not auth.is_admin_email("a@x.io", cfg.admin_emails, verified=False)
    assert not auth.is_admin_email(None, cfg.admin_emails) and not auth.is_admin_email("d@x.io", cfg.admin_emails)


def test_launcher_makes_a_one_off_password_only_when_none_is_configured():
    env, password = with_password({"LAKE_URI": "/l"})
    assert password and auth.verify_password(password, env[auth.PASSWORD_HASH_ENV])
    configured = {auth.PASSWORD_HASH_ENV: "scrypt:1024:8:1$s$00"}
    assert with_password(configured) == (configured, None)
    assert with_password({"EFFECTLAKE_DEPLOYMENT": "prod"})[1] is None


def test_dashboard_command_refuses_prod_without_oidc(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)  # no .streamlit/secrets.toml here
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("EFFECTLAKE_DEPLOYMENT", "prod")
    assert main(["dashboard", "--port", "1"]) == 2
    assert "refuses to start" in capsys.readouterr().err


# -- data --------------------------------------------------------------------------------------
def _costs(rows: list[tuple]) -> pl.DataFrame:
    """(minutes before NOW, provider, effect, status, selection, tokens, cost_usd)."""
    return pl.DataFrame(
        [
            {
                "finished_at": NOW - timedelta(minutes=m),
                "provider_id": p,
                "effect_type": e,
                "status": s,
                "selection": sel,
                "tokens_charged": t,
                "cost_tokens": c / 0.01,
                "revenue_usd": t * 0.01,
                "cost_usd": c,
            }
            for m, p, e, s, sel, t, c in rows
        ],
        schema={
            "finished_at": pl.Datetime("us", "UTC"),
            "provider_id": pl.String,
            "effect_type": pl.String,
            "status": pl.String,
            "selection": pl.String,
            "tokens_charged": pl.Int64,
            "cost_tokens": pl.Float64,
            "revenue_usd": pl.Float64,
            "cost_usd": pl.Float64,
        },
    )


COSTS = _costs(
    [
        (10, "p1", "cartoon", "succeeded", "ranked", 4, 0.01),  # 1h, 24h, 7d
        (90, "p2", "cartoon", "succeeded", "exploration", 4, 0.03),  # 24h, 7d
        (60 * 30, "p1", "slow_motion", "failed", "ranked", 0, 0.02),  # 7d
        (60 * 24 * 8, "p1", "cartoon", "succeeded", "ranked", 4, 0.01),  # none
    ]
)


def test_hud_windows_are_ratio_of_sums_per_window():
    hud = {r["window"]: r for r in data.hud_windows(COSTS, NOW).iter_rows(named=True)}
    assert list(hud) == ["1h", "24h", "7d"]
    assert hud["1h"]["executions"] == 1 and hud["1h"]["revenue_usd"] == pytest.approx(0.04)
    assert hud["24h"]["cost_usd"] == pytest.approx(0.04) and hud["24h"]["margin"] == pytest.approx(0.5)
    assert hud["7d"]["margin"] == pytest.approx((0.08 - 0.06) / 0.08)
    assert hud["24h"]["cost_usd_per_hour"] == pytest.approx(0.04 / 24)
    empty = data.hud_windows(COSTS.clear(), NOW)
    assert empty["executions"].to_list() == [0, 0, 0] and empty["margin"].null_count() == 3


def _cube(costs: pl.DataFrame) -> pl.DataFrame:
    return costs.group_by(
        hour=pl.col("finished_at").dt.truncate("1h"),
        provider_id="provider_id",
        effect_type="effect_type",
        selection="selection",
        status="status",
    ).agg(
        executions=pl.len().cast(pl.Int64),
        tokens_charged=pl.col("tokens_charged").sum(),
        cost_tokens=pl.col("cost_tokens").sum(),
        revenue_usd=pl.col("revenue_usd").sum(),
        cost_usd=pl.col("cost_usd").sum(),
        duration_ms=pl.lit(1000.0),
    )


def test_margin_history_rolls_over_clock_hours():
    hist = data.margin_history(_cube(COSTS), "effect_type", "24h", NOW - timedelta(hours=3), NOW + timedelta(hours=1))
    cartoon = hist.filter(pl.col("effect_type") == "cartoon").sort("hour")
    # the last point (hour ending 13:00) holds both cartoon runs of the last day
    assert cartoon["revenue_usd"][-1] == pytest.approx(0.08) and cartoon["margin"][-1] == pytest.approx(0.5)
    assert cartoon["hour"].to_list() == [NOW.replace(minute=0) - timedelta(hours=h) for h in (2, 1, 0, -1)]


def test_exploration_burn_and_shadow_results():
    costs = pl.concat([COSTS, _costs([(5, "shadow-1", "cartoon", "succeeded", "shadow", 0, 0.05)])])
    burn = data.exploration_burn(_cube(costs), NOW - timedelta(days=1), 0.05).row(0, named=True)
    assert (burn["effect_type"], burn["user_jobs"], burn["exploration_jobs"]) == ("cartoon", 2, 1)
    assert burn["budget_used"] == pytest.approx(0.5 / 0.05)
    assert burn["exploration_margin"] == pytest.approx(0.25) and burn["exploited_margin"] == pytest.approx(0.75)
    shadow = data.shadow_results(_cube(costs), NOW - timedelta(days=1)).row(0, named=True)
    assert (shadow["provider_id"], shadow["runs"], shadow["mean_cost_usd"]) == ("shadow-1", 1, pytest.approx(0.05))
    assert shadow["ranked_mean_cost_usd"] == pytest.approx(0.01)


def test_forecast_needs_a_complete_hour():
    assert data.forecast(_cube(COSTS.filter(pl.col("finished_at") > NOW.replace(minute=0))), NOW) is None
    fc = data.forecast(_cube(COSTS), NOW)
    assert fc is not None and fc.hourly["hour"].min() == NOW.replace(minute=0, second=0)


def test_latest_health_keeps_each_providers_newest_snapshot():
    snapshot = {"mode": "active", "health_detail": "", "latency_ms": 3, "effect_types": ["warm_grade", "cartoon"]}
    registry = pl.DataFrame(
        [
            {
                **snapshot,
                "provider_id": "b",
                "healthy": False,
                "checked_at": NOW - timedelta(minutes=15),
                "breaker_state": "closed",
            },
            {**snapshot, "provider_id": "b", "healthy": True, "checked_at": NOW, "breaker_state": "open"},
            {**snapshot, "provider_id": "a", "healthy": True, "checked_at": NOW, "breaker_state": "closed"},
        ],
        schema_overrides=dict(PROVIDER_REGISTRY.schema),
    )
    shown = data.latest_health(registry)
    assert shown["provider_id"].to_list() == ["a", "b"] and shown["healthy"].to_list() == [True, True]
    assert shown["breaker_state"].to_list() == ["closed", "open"]  # the breaker column of the Providers page
    assert shown["effect_types"].to_list() == ["warm_grade, cartoon"] * 2
    empty = data.latest_health(pl.DataFrame(schema=PROVIDER_REGISTRY.schema))
    assert empty.is_empty() and empty.columns == shown.columns


def test_approval_item_resolves_media_keys_and_puts_the_winner_first():
    import json

    comparison = {
        "winner_task_id": "t2",
        "outputs": [
            {
                "task_id": "t1",
                "effect_type": "cartoon",
                "provider_id": "a",
                "rank": 1,
                "composite": 0.9,
                "gate_failures": [],
                "cost_usd": 0.001,
                "margin": 0.9,
                "selection": "ranked",
                "status": "scored",
            },
            {
                "task_id": "t2",
                "effect_type": "warm_grade",
                "provider_id": "b",
                "rank": 1,
                "composite": 0.8,
                "gate_failures": ["fps"],
                "gate_passed": False,
                "selection": "ranked",
                "status": "scored",
            },
        ],
    }
    request = {
        "approval_id": "ap",
        "video_id": "v",
        "task_id": "t2",
        "effect_type": "warm_grade",
        "provider_id": "b",
        "user_id": "u",
        "requested_at": NOW,
        "comparison": json.dumps(comparison),
    }
    outputs = pl.DataFrame({"task_id": ["t1", "t2"], "output_key": ["outputs/v/t1.mp4", None]})
    item = data.approval_item(request, outputs, "proxy/v.mp4")
    assert item.outputs["task_id"].to_list() == ["t2", "t1"]
    assert item.outputs["winner"].to_list() == [True, False]
    assert item.outputs["output_key"].to_list() == [None, "outputs/v/t1.mp4"]
    assert item.outputs["gate_failures"][0] == "fps" and item.input_key == "proxy/v.mp4"


@pytest.mark.parametrize(
    "x, shown",
    [
        (None, "—"),
        (0, "$0.00"),
        (12345.6, "$12,346"),
        (12.345, "$12.35"),
        (0.1234, "$0.123"),
        (0.0000024, "$0.0000024"),
        (-0.5, "-$0.500"),
    ],
)
def test_money_format(x, shown):
    assert data.fmt_usd(x) == shown


def test_creation_and_runs_are_shown_apart_with_the_cache_saving():
    totals = pl.DataFrame(
        {
            "job_kind": ["run"],
            "executions": [3],
            "tokens_charged": [4],
            "cost_tokens": [1.0],
            "revenue_usd": [0.04],
            "cost_usd": [0.01],
        }
    )
    kinds = data.job_kind_totals(totals)
    assert kinds["job_kind"].to_list() == ["creation", "run"]
    assert kinds.row(0, named=True)["executions"] == 0 and kinds.row(0, named=True)["margin"] is None
    assert kinds.row(1, named=True)["margin"] == pytest.approx(0.75) and kinds["margin_usd"][1] == pytest.approx(0.03)
    jobs = pl.DataFrame(
        {
            "job_kind": ["creation", "run", "run", None],
            "finished_at": [NOW, NOW, NOW, NOW - timedelta(days=9)],
            "tokens_charged": [5, 2, 2, 5],
            "revenue_usd": [0.05, 0.02, 0.02, 0.05],
            "cost_usd": [0.01, 0.005, 0.0, 0.01],
            "cost_tokens": [1.0, 0.5, 0.0, 1.0],
            "cache_hit": [False, False, True, None],
            "saved_cost_usd": [None, None, 0.005, None],
        }
    )
    by_kind = data.jobs_by_kind(jobs, NOW - timedelta(days=7)).to_dicts()
    assert [r["jobs"] for r in by_kind] == [1, 2]  # the 9-day-old job is out of the window
    run = by_kind[1]
    assert (run["tokens_charged"], run["cache_hits"], run["saved_cost_usd"]) == (4, 1, 0.005)
    assert run["margin"] == pytest.approx((4 - 0.5) / 4)
