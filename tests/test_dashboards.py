"""The admin dashboard through Streamlit's AppTest (the real script, in process) on a lake
filled by the main job, a benchmark, simulated history and the economics job
(tests/dashboards_lake.py): sign-in on every page, every page for real and simulated data,
the numbers shown against the lake, decisions landing in the lake, and an empty lake."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from dashboards import auth, state
from dashboards.data import fmt_pct, fmt_usd
from resources.lake import Lake
from resources.manifest_store import ManifestStore
from resources.schemas import EXECUTION_COSTS
from resources.services.recommendations import recommendations_with_status
from tests import dashboards_lake
from tests.api_users import ADMIN_KEY
from tests.dashboards_lake import PASSWORD, World

pytestmark = [pytest.mark.slow, pytest.mark.video]

APP = Path(__file__).resolve().parents[1] / "dashboards" / "app.py"
PAGES = {
    "margins": "Margins",
    "providers": "Providers",
    "routing": "Routing",
    "recommendations": "Recommendations",
    "approvals": "Approval queue",
    "bottlenecks": "Bottlenecks & alerts",
}
OIDC = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "s3cret-cookie",
    "client_id": "dashboard",
    "client_secret": "client-secret",
    "server_metadata_url": "https://id.example.com/.well-known/openid-configuration",
}


@pytest.fixture(scope="session")
def world(tmp_path_factory, warm_bikes, warm_carphone) -> World:
    return dashboards_lake.filled_lake(tmp_path_factory, [warm_bikes], warm_carphone)


@pytest.fixture(scope="session")
def password_hash() -> str:
    return auth.hash_password(PASSWORD)


@pytest.fixture
def private_world(world, tmp_path) -> World:
    """A copy of the filled lake for a test that decides something."""
    return dashboards_lake.copy_world(world, tmp_path / "world")


def _use(monkeypatch, world: World, password_hash: str, **extra) -> None:
    for key in ("EFFECTLAKE_ADMIN_EMAILS", "REDIS_URL"):
        monkeypatch.delenv(key, raising=False)
    for key, value in {**world.env(password_hash), **extra}.items():
        monkeypatch.setenv(key, value)


def _app() -> AppTest:
    return AppTest.from_file(str(APP), default_timeout=180)


def _sign_in(at: AppTest, name: str = "alice", password: str = PASSWORD) -> AppTest:
    at.run()
    at.text_input(key="signin_name").input(name)
    at.text_input(key="signin_password").input(password)
    return at.button(key="signin_submit").click().run()


def _signed_in(monkeypatch, world: World, password_hash: str, source: str = "real") -> AppTest:
    _use(monkeypatch, world, password_hash)
    at = _sign_in(_app())
    assert not at.exception, at.exception
    if source != "real":
        at.sidebar.radio(key="source").set_value(source).run()
    return at


def _open(at: AppTest, page: str) -> AppTest:
    at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert [h.value for h in at.header][:1] == [PAGES[page]]
    return at


def _texts(at: AppTest) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info])


# -- sign-in ---------------------------------------------------------------------------------
def test_nothing_shows_before_sign_in_and_a_wrong_password_is_refused(monkeypatch, world, password_hash):
    _use(monkeypatch, world, password_hash)
    at = _app().run()
    assert not at.exception
    assert not at.metric and not at.header  # no HUD, no page
    assert [t.label for t in at.text_input] == ["Your name (recorded with your decisions)", "Admin password"]

    at = _sign_in(_app(), password="not the password")
    assert [w.value for w in at.warning] == ["Wrong password."]
    assert not at.metric
    assert at.session_state["signin_password"] == ""  # the typed password is not kept

    at = _sign_in(at)
    assert [h.value for h in at.header] == ["Margins"]
    assert "signed in as **alice**" in at.sidebar.caption[0].value


def test_api_admin_key_is_not_accepted_as_the_browser_password(monkeypatch, world):
    _use(monkeypatch, world, auth.hash_password(ADMIN_KEY))
    at = _app().run()
    assert "refuses to start" in at.error[0].value and "API admin key" in at.error[0].value
    assert not at.text_input


def test_prod_refuses_to_start_without_oidc(monkeypatch, world, password_hash):
    _use(monkeypatch, world, password_hash, EFFECTLAKE_DEPLOYMENT="prod", EFFECTLAKE_ADMIN_EMAILS="alice@example.com")
    at = _app().run()
    assert not at.exception
    assert "refuses to start" in at.error[0].value and "OpenID Connect" in at.error[0].value
    assert not at.text_input and not at.metric


def test_prod_signs_in_with_oidc_and_the_email_allow_list(monkeypatch, world, password_hash):
    _use(
        monkeypatch,
        world,
        "",
        EFFECTLAKE_DEPLOYMENT="prod",
        EFFECTLAKE_ADMIN_EMAILS="Alice@Example.com, bob@example.com",
    )
    at = _app()
    at.secrets["auth"] = OIDC
    at.user = {"is_logged_in": False}
    at.run()
    assert [b.label for b in at.button] == ["Sign in"] and not at.metric and not at.text_input

    at.user = {"is_logged_in": True, "email": "mallory@example.com", "email_verified": True}
    at.run()
    assert "not an effectlake admin" in at.warning[0].value and not at.metric

    at.user = {"is_logged_in": True, "email": "alice@example.com", "email_verified": True}
    at.run()
    assert not at.exception and [h.value for h in at.header] == ["Margins"]
    assert "signed in as **alice@example.com**" in at.sidebar.caption[0].value


# -- every page, numbers against the lake ------------------------------------------------------
@pytest.mark.parametrize("source", ["real", "simulated"])
def test_every_page_renders_on_the_filled_lake(monkeypatch, world, password_hash, source):
    at = _signed_in(monkeypatch, world, password_hash, source)
    for page in PAGES:
        _open(at, page)
        assert len(at.metric) >= 4  # the HUD is on every page
    # the charts people look at rather than read
    at = _open(at, "margins")
    assert len(at.get("vega_lite_chart")) >= 3


@pytest.mark.parametrize("source", ["real", "simulated"])
def test_hud_shows_the_lake_numbers(monkeypatch, world, password_hash, source):
    at = _signed_in(monkeypatch, world, password_hash, source)
    now = at.session_state[state.CTX_KEY].now
    costs = world.lake.read(EXECUTION_COSTS, pl.col("source") == source)
    hud = [m.value for m in at.markdown if m.value.startswith("Revenue **")]
    metrics = {m.label: m.value for m in at.metric}
    for i, (window, length) in enumerate(
        {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}.items()
    ):
        inside = costs.filter((pl.col("finished_at") > now - length) & (pl.col("finished_at") <= now))
        revenue, cost = inside["revenue_usd"].sum(), inside["cost_usd"].sum()
        hours = length.total_seconds() / 3600
        assert hud[i] == (
            f"Revenue **{fmt_usd(revenue)}** · Cost **{fmt_usd(cost)}**  \n"
            f"Burn **{fmt_usd(cost / hours)}/h** · {inside.height:,} runs"
        )
        assert metrics[f"Margin · last {window}"] == (fmt_pct((revenue - cost) / revenue) if revenue else "—")
    # The forecast fits complete hours only: none before the current hour, no forecast.
    history = costs.filter(pl.col("finished_at") < now.replace(minute=0)).height
    assert (metrics["Forecast · next 24h"] != "—") == (history > 0)


def test_margin_decomposition_and_drill_down_match_the_lake(monkeypatch, world, password_hash):
    at = _open(_signed_in(monkeypatch, world, password_hash, "simulated"), "margins")
    now = at.session_state[state.CTX_KEY].now
    costs = world.lake.read(EXECUTION_COSTS, pl.col("source") == "simulated")

    def margin(lo, hi):
        inside = costs.filter((pl.col("finished_at") > lo) & (pl.col("finished_at") <= hi))
        return inside["revenue_usd"].sum() - inside["cost_usd"].sum()

    metrics = {m.label: m for m in at.metric}
    a, b = margin(now - timedelta(hours=48), now - timedelta(hours=24)), margin(now - timedelta(hours=24), now)
    assert metrics["Margin A"].value == fmt_usd(a) and metrics["Margin B"].value == fmt_usd(b)
    assert metrics["Margin B"].delta == fmt_usd(b - a)
    # drill down into the first cell: the executions of that provider × effect type in period B
    cell = at.selectbox(key="why_cell")
    provider, effect = cell.options[cell.index].split(" · ")
    rows = at.dataframe[-1].value
    expected = costs.filter(
        (pl.col("finished_at") > now - timedelta(hours=24))
        & (pl.col("finished_at") <= now)
        & (pl.col("provider_id") == provider)
        & (pl.col("effect_type") == effect)
    )
    assert len(rows) == min(expected.height, 500) and set(rows["provider_id"]) == {provider}
    at.radio(key="why_period").set_value("A").run()
    assert not at.exception


def test_providers_and_routing_show_the_lake(monkeypatch, world, password_hash):
    at = _open(_signed_in(monkeypatch, world, password_hash, "real"), "providers")
    real = world.lake.read(EXECUTION_COSTS, pl.col("source") == "real")
    assert f"{real.height:,} real executions" in _texts(at)
    matrix = at.dataframe[1].value  # health table, then the executions matrix
    assert int(matrix["runs"].sum()) == real.height
    assert {"comfyui-gpu", "opencv-cartoon"} <= set(at.dataframe[0].value["provider_id"])

    at = _open(at, "routing")
    manifest = ManifestStore(uri=world.manifest_uri).read()
    assert f"Version `{manifest['version']}`" in _texts(at)
    shown = at.dataframe[0].value
    assert len(shown) == sum(len(v) for v in manifest["effects"].values())


# -- decisions reach the store (the landing takes them to the lake) ----------------------------------
def test_approve_an_effect_from_the_queue(monkeypatch, private_world, password_hash):
    at = _open(_signed_in(monkeypatch, private_world, password_hash), "approvals")
    pending = [s for s in at.subheader if "proposed" in s.value]
    assert len(pending) == 1
    videos = at.get("video")
    assert len(videos) >= 3  # the input beside every output
    key = next(b.key for b in at.button if b.key and b.key.endswith("_approve"))
    aid = key.removeprefix("approval_").removesuffix("_approve")
    at.text_input(key=f"approval_{aid}_reason").input("crisp and cheap")
    at.button(key=key).click().run()
    assert not at.exception
    assert at.success and "approved" in at.success[0].value
    decisions = private_world.store.decisions("approval")
    assert [(d["subject_id"], d["decision"], d["admin"], d["reason"]) for d in decisions] == [
        (aid, "approve", "alice", "crisp and cheap")
    ]
    assert "Nothing waits for approval." in _texts(at)


def test_reject_an_effect_from_the_queue(monkeypatch, private_world, password_hash):
    at = _open(_signed_in(monkeypatch, private_world, password_hash), "approvals")
    key = next(b.key for b in at.button if b.key and b.key.endswith("_reject"))
    at.button(key=key).click().run()
    assert not at.exception
    assert [d["decision"] for d in private_world.store.decisions("approval")] == ["reject"]


def test_approve_and_reject_recommendations(monkeypatch, private_world, password_hash):
    at = _open(_signed_in(monkeypatch, private_world, password_hash), "recommendations")
    recs = recommendations_with_status(private_world.lake, private_world.store)
    n = recs.height
    assert n >= 2
    assert [t.label for t in at.tabs] == [f"Pending ({n})", "Approved (0)", "Rejected (0)", "Applied changes (0)"]
    # One that changes a platform parameter (a routing pin or a price), and another.
    applied = recs.filter(pl.col("type").is_in(["PROVIDER_SWITCH", "PRICE_ADJUSTMENT"]))["recommendation_id"][0]
    other = recs.filter(pl.col("recommendation_id") != applied)["recommendation_id"][0]
    at.button(key=f"rec_{applied}_approve").click().run()
    at.text_input(key=f"rec_{other}_reason").input("not now")
    at.button(key=f"rec_{other}_reject").click().run()
    assert not at.exception
    assert [t.label for t in at.tabs] == [f"Pending ({n - 2})", "Approved (1)", "Rejected (1)", "Applied changes (1)"]
    decisions = sorted(private_world.store.decisions("recommendation"), key=lambda d: d["decision"])
    assert [(d["subject_id"], d["decision"], d["admin"], d["reason"]) for d in decisions] == [
        (applied, "approve", "alice", ""),
        (other, "reject", "alice", "not now"),
    ]
    # Approving applied it; rolling it back from the card restores the value before (not set).
    [change] = private_world.store.parameter_changes()
    assert (change["source_id"], change["before"], change["actor"]) == (applied, None, "alice")
    key = ".".join(change[k] for k in ("scope", "subject", "name"))
    assert "Applied:" in _texts(at) and f"{key}: default → {change['after']}" in _texts(at)
    if change["scope"] == "routing":  # a pin shows on the Routing page while it stands
        _open(at, "routing")
        assert f"{change['subject']}: {change['after']} pinned first" in _texts(at)
        _open(at, "recommendations")
    at.button(key=f"rec_{applied}_rollback").click().run()
    assert not at.exception
    undo = private_world.store.parameter_change(change["change_id"])["rolled_back_by"]
    assert undo and private_world.store.parameter_change(undo)["after"] is None
    assert at.tabs[-1].label == "Applied changes (2)"
    assert f"rec_{applied}_rollback" not in [b.key for b in at.button]  # nothing left to roll back


# -- empty lake and later tables ---------------------------------------------------------------
@pytest.mark.parametrize("source", ["real", "simulated"])
def test_an_empty_lake_renders_every_page_without_writing(monkeypatch, tmp_path, password_hash, source):
    empty = World(tmp_path / "empty")
    at = _signed_in(monkeypatch, empty, password_hash, source)
    infos = []
    for page in PAGES:
        _open(at, page)
        infos += [i.value for i in at.info]
    assert {m.value for m in at.metric} == {"—"}
    assert any("No marginality windows yet." in i for i in infos)
    assert any("Nothing waits for approval." in i for i in infos)
    assert any("No bottleneck or alert data yet." in i for i in infos)
    assert not (tmp_path / "empty" / "lake").exists()  # reading never creates a table


def test_bottlenecks_page_shows_open_classifications_and_acknowledges_their_alert(
    monkeypatch, private_world, password_hash
):
    from datetime import UTC, datetime

    from economics.bottlenecks import CLASSIFICATION_SCHEMA
    from resources.schemas import BOTTLENECK_CLASSIFICATIONS
    from resources.store.client import Store

    lake = Lake(uri=private_world.lake_uri)
    at_ = datetime(2026, 1, 2, tzinfo=UTC)
    base = {
        "severity": "critical",
        "scope": "provider_effect",
        "provider_id": "p1",
        "effect_type": "warm",
        "instance_type": None,
        "user_id": None,
        "source": "real",
        "evidence": json.dumps({"signals": {}, "numbers": {"p95_latency_ms": 200000}}),
        "recommended_action": "Shift routing weight away.",
        "runbook": "docs/runbooks/provider-latency-degradation.md",
        "cost_impact_usd_per_hour": 6.0,
        "affected_jobs": ["v1"],
        "automatic_action": "routing_demote",
        "action_taken": "routing_demote: done — warm: p2 put first",
        "first_seen_at": at_,
        "last_seen_at": at_,
        "resolved_at": None,
    }
    rows = [
        {**base, "classification_id": "c-open", "category": "PROVIDER_LATENCY_DEGRADATION", "status": "open"},
        {
            **base,
            "classification_id": "c-user",
            "category": "TOKEN_DEPLETION_RISK",
            "status": "open",
            "scope": "user",
            "provider_id": None,
            "effect_type": None,
            "user_id": "u-1",
            "evidence": json.dumps(
                {
                    "signals": {},
                    "numbers": {"hours_to_exhaustion": 4.2, "tokens_available": 84, "token_burn_per_hour": 20},
                }
            ),
            "automatic_action": "notify_user",
            "action_taken": None,
        },
        {
            **base,
            "classification_id": "c-old",
            "category": "COLD_START_PENALTY",
            "status": "resolved",
            "resolved_at": at_,
        },
        {**base, "classification_id": "c-sim", "category": "GPU_SATURATION", "status": "open", "source": "simulated"},
    ]
    lake.upsert(BOTTLENECK_CLASSIFICATIONS, pl.DataFrame(rows, schema=CLASSIFICATION_SCHEMA))
    store = Store(private_world.database_url)
    synced = store.sync_alerts([r for r in rows if r["status"] == "open"], at_)
    [real] = [a for a in store.alerts() if a["source"] == "real" and a["category"] == "PROVIDER_LATENCY_DEGRADATION"]
    # One alert per group: the latency, the user's depletion and the simulated saturation.
    assert len(synced["opened"]) == 3 and real["classification_ids"] == ["c-open"]
    at = _open(_signed_in(monkeypatch, private_world, password_hash), "bottlenecks")
    text = " ".join(m.value for m in at.markdown)
    assert "PROVIDER_LATENCY_DEGRADATION" in text and "GPU_SATURATION" not in text  # real only
    assert "routing_demote: done" in text and "Shift routing weight away." in text
    flagged = at.dataframe[0].value
    assert flagged["who"].tolist() == ["u-1"]
    assert flagged["what"].tolist() == ["balance 84 tokens runs out in 4.2 h at 20 tokens/h"]
    assert [s.value for s in at.subheader] == [
        "Alerts (2)",
        "Flagged for admins (1)",
        "Open bottlenecks (2)",
        "Economic alerts (unusual combinations)",
        "History",
    ]
    assert any(f"Alert: open ({real['alert_id']})" in c.value for c in at.caption)
    at.button(key=f"ack_{real['alert_id']}").click().run()
    assert store.alert(real["alert_id"])["state"] == "acknowledged"
    assert any("Acknowledged by alice" in c.value for c in at.caption)
    at.button(key=f"resolve_{real['alert_id']}").click().run()
    assert store.alert(real["alert_id"])["resolution"] == "admin"
    assert at.subheader[0].value == "Alerts (1)"
