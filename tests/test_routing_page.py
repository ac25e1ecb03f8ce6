"""The dashboard's Routing page shows the off-policy estimate published with the current
manifest — the replaced manifest's margin per routed job (before) next to the new one's
(after), with intervals — and the estimates' history, through Streamlit's AppTest on a lake
holding only a manifest and its estimates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from dashboards import auth
from economics.bandit import adaptive_manifest, decayed_stats
from economics.off_policy import LOGGED_SCHEMA, change_estimates, estimate_rows
from resources.manifest_store import ManifestStore
from resources.schemas import ROUTING_ESTIMATES
from tests.dashboards_lake import PASSWORD, World

pytestmark = pytest.mark.slow

APP = Path(__file__).resolve().parents[1] / "dashboards" / "app.py"
NOW = datetime.now(UTC).replace(microsecond=0)
ACTIVE = {"cartoon": ["opencv-cartoon", "ffmpeg-posterize"], "slow_motion": ["ffmpeg-slowmo-dup", "ffmpeg-slowmo-mci"]}


def _log(rng: np.random.Generator, n: int = 400) -> pl.DataFrame:
    rows = []
    for i in range(n):
        effect = "cartoon" if i % 2 else "slow_motion"
        first, second = ACTIVE[effect]
        provider = first if rng.random() < 0.8 else second
        rows.append(
            {
                "decision_id": f"v{i}/{effect}",
                "effect_type": effect,
                "provider_id": provider,
                "propensity": 0.8 if provider == first else 0.2,
                "reward": (3.5 if provider == first else 2.5) + rng.standard_normal() * 0.3,
            }
        )
    return pl.DataFrame(rows, schema=LOGGED_SCHEMA)


def _publish_history(world: World) -> dict:
    """Three manifest changes, each estimated against the one it replaced."""
    store = ManifestStore(uri=world.manifest_uri)
    rng = np.random.default_rng(1)
    current = None
    for k in range(3):
        at = NOW - timedelta(minutes=15 * (2 - k))
        manifest = adaptive_manifest(decayed_stats(pl.DataFrame()), ACTIVE, at)
        manifest["off_policy"] = change_estimates(_log(rng), manifest, current, at)
        store.publish(manifest)
        world.lake.upsert(ROUTING_ESTIMATES, estimate_rows(manifest))
        current = manifest
    assert current is not None
    return current


def test_routing_page_shows_before_and_after_estimates(monkeypatch, tmp_path):
    world = World(tmp_path / "world")
    manifest = _publish_history(world)
    for key in ("EFFECTLAKE_ADMIN_EMAILS", "REDIS_URL"):
        monkeypatch.delenv(key, raising=False)
    for key, value in world.env(auth.hash_password(PASSWORD)).items():
        monkeypatch.setenv(key, value)
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.run()
    at.text_input(key="signin_name").input("alice")
    at.text_input(key="signin_password").input(PASSWORD)
    at.button(key="signin_submit").click().run()
    at.switch_page("app_pages/routing.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]

    dr = {e["policy"]: e for e in manifest["off_policy"]["estimates"] if e["estimator"] == "dr"}
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Before (replaced manifest)"] == f"{dr['current']['value']:.3f} tokens"
    assert metrics["After (published manifest)"] == f"{dr['candidate']['value']:.3f} tokens"
    captions = [c.value for c in at.caption]
    assert f"95 % interval {dr['candidate']['ci_low']:.3f} … {dr['candidate']['ci_high']:.3f} tokens" in captions
    shown = next(d.value for d in at.dataframe if "estimator" in d.value.columns)
    assert len(shown) == 6 and set(shown["estimator"]) == {"ips", "snips", "dr"}
    # The history chart has a point per published version and manifest.
    charts = at.get("vega_lite_chart")
    assert any("tokens per routed job" in c.proto.spec for c in charts), [c.proto.spec[:200] for c in charts]
