"""Admins approve or reject recommendations through the API; the decision is recorded once."""

import json
from datetime import UTC, datetime

import httpx
import polars as pl
import pytest

from api.app import create_app
from economics.recommendations import recommend
from resources.lake import Lake
from resources.schemas import RECOMMENDATIONS
from resources.store import Store
from tests.api_users import ADMIN
from tests.server import serve


def _costs_where_margin_is_thin() -> pl.DataFrame:
    # 20 cartoon runs costing 3.5 of the 4 tokens charged: margin 12.5%, under any sane floor.
    n = 20
    return pl.DataFrame(
        {
            "provider_id": ["opencv-cartoon"] * n,
            "effect_type": ["cartoon"] * n,
            "instance_type": ["cpu-2c"] * n,
            "status": ["succeeded"] * n,
            "selection": ["ranked"] * n,
            "source": ["real"] * n,
            "cost_usd": [0.035] * n,
            "cost_tokens": [3.5] * n,
            "tokens_charged": [4] * n,
            "duration_ms": [5000] * n,
            "finished_at": [datetime(2026, 11, 21, 12, i, tzinfo=UTC) for i in range(n)],
        }
    )


@pytest.fixture
def seeded(settings):
    lake = Lake(uri=settings.lake_uri)
    recs = recommend(
        _costs_where_margin_is_thin(),
        pl.DataFrame(
            {"provider_id": ["opencv-cartoon"], "effect_type": ["cartoon"], "mean_quality": [0.9], "scored": [20]}
        ),
        {"effects": {}},
        {"cartoon": 4},
        0.01,
        now=datetime(2026, 11, 21, 13, tzinfo=UTC),
    )
    assert "PRICE_ADJUSTMENT" in recs["type"].to_list()
    lake.overwrite(RECOMMENDATIONS, recs)
    return lake, recs


def test_recommendation_decisions(settings, seeded):
    _lake, recs = seeded
    rec_id = recs.filter(pl.col("type") == "PRICE_ADJUSTMENT")["recommendation_id"][0]
    with serve(create_app(settings)) as base, httpx.Client(base_url=base) as c:
        assert c.get("/v1/admin/recommendations").status_code == 401
        pending = c.get("/v1/admin/recommendations", headers=ADMIN, params={"status": "pending"}).json()["items"]
        assert rec_id in [r["recommendation_id"] for r in pending]
        assert isinstance(pending[0]["action"], dict)
        url = f"/v1/admin/recommendations/{rec_id}"
        first = c.post(url, headers=ADMIN, json={"decision": "approve", "admin": "bob"})
        assert first.status_code == 202
        # Approving applies it: the effect's price in force is the recommended one.
        applied = first.json()["applied"]
        action = recs.filter(pl.col("recommendation_id") == rec_id)["action"][0]
        new_price = json.loads(action)["price_tokens"]
        assert (applied["scope"], applied["subject"], applied["name"]) == ("effect", "cartoon", "price_tokens")
        assert (applied["before"], applied["after"], applied["actor"]) == (None, new_price, "bob")
        again = c.post(url, headers=ADMIN, json={"decision": "approve", "admin": "bob"})
        assert again.status_code == 202 and again.json()["applied"]["change_id"] == applied["change_id"]  # once
        conflict = c.post(url, headers=ADMIN, json={"decision": "reject"})
        assert conflict.status_code == 409 and conflict.json()["code"] == "decision_conflict"
        missing = c.post("/v1/admin/recommendations/nope", headers=ADMIN, json={"decision": "reject"})
        assert missing.status_code == 404 and missing.json()["code"] == "decision_not_found"
        approved = c.get("/v1/admin/recommendations", headers=ADMIN, params={"status": "approve"}).json()["items"]
        assert [r["recommendation_id"] for r in approved] == [rec_id]
    decisions = Store(settings.database_url).decisions("recommendation")
    assert [(d["subject_id"], d["decision"], d["admin"]) for d in decisions] == [(rec_id, "approve", "bob")]
