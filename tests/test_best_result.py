"""M5 best-result selection: the uploader's priority weights and the full cost of each task —
the same number the economics job's ``execution_costs`` states for it."""

from __future__ import annotations

import re
from datetime import timedelta

import dagster as dg
import polars as pl
import pytest
from sqlalchemy import text

from assets.batch.best import best_result, selection_costs
from assets.gold.economics import execution_costs
from economics.best import rank_candidates
from economics.ledger import job_id
from economics.simulator import execution_events
from pipelines.definitions import build_definitions
from resources.clients import Clients
from resources.events import utcnow
from resources.lake import Lake
from resources.priorities import Priorities, parse_priorities
from resources.schemas import EXECUTION_COSTS, EXECUTION_EVENTS, UPLOADS
from resources.store.client import Store

# --- the weights ---------------------------------------------------------------------------


def test_priorities_are_validated_and_normalised():
    p = parse_priorities('{"quality": 2, "cost": 1, "speed": 1}')
    assert p.weights() == {"quality": 0.5, "cost": 0.25, "speed": 0.25}
    assert parse_priorities(p.to_json()) == p
    assert parse_priorities(None) == parse_priorities("  ") == Priorities.named("balanced")
    assert Priorities.named("balanced").weights() == pytest.approx({"quality": 0.5, "cost": 0.3, "speed": 0.2})
    assert parse_priorities('{"cost": 3}').weights() == {"quality": 0.0, "cost": 1.0, "speed": 0.0}
    for raw, reason in [
        ("not json", "must be a JSON object"),
        ("[0.5, 0.3, 0.2]", "must be a JSON object"),
        ('{"quality": -1, "cost": 1}', "quality: Input should be greater than or equal to 0"),
        ('{"quality": NaN}', "quality: Input should be a finite number"),
        ('{"speed": Infinity}', "speed: Input should be a finite number"),
        ('{"quality": 0, "cost": 0, "speed": 0}', "at least one of quality, cost, speed must be above 0"),
        ('{"quality": "1"}', "quality: Input should be a valid number"),
        ('{"quality": true}', "quality: Input should be a valid number"),
        ('{"price": 1}', "price: unknown weight"),
    ]:
        with pytest.raises(ValueError, match=re.escape(reason)) as e:
            parse_priorities(raw)
        assert "pydantic" not in str(e.value) and "\n" not in str(e.value)


def test_different_weights_pick_different_providers_on_the_same_candidates():
    candidates = pl.DataFrame(
        {
            "task_id": ["good", "cheap", "fast"],
            "provider_id": ["opencv-stylize", "ffmpeg-posterize", "opencv-cartoon"],
            "status": ["scored"] * 3,
            "gate_passed": [True] * 3,
            "composite": [0.95, 0.55, 0.6],
            "selection": ["ranked", "ranked", "exploration"],
            "effect_type": ["cartoon"] * 3,
            "cost_usd": [0.004, 0.0005, 0.002],
            "duration_ms": [28_000, 9_000, 2_500],
        }
    )

    def winner(raw):
        return rank_candidates(candidates, parse_priorities(raw).weights())["provider_id"][0]

    assert winner('{"quality": 1}') == "opencv-stylize"
    assert winner('{"cost": 1}') == "ffmpeg-posterize"
    assert winner('{"speed": 1}') == "opencv-cartoon"
    # The preset names still work and agree with the model's presets.
    assert rank_candidates(candidates, "cost")["score"].to_list() == pytest.approx(
        rank_candidates(candidates, Priorities.named("cost").weights())["score"].to_list()
    )


# --- selection on the lake: the upload's weights, execution_costs' cost ---------------------

VIDEO = "v-select"


def _events(now) -> pl.DataFrame:
    """A day of earlier cpu-2c work with idle gaps (utilisation < 1, so the idle share is
    charged), then the video's two warm-grade tasks: ``good`` (better, twice the CPU) and
    ``cheap``."""
    history = [
        {
            "task_id": f"earlier-{i}",
            "video_id": f"v-earlier-{i // 4}",
            "provider_id": "ffmpeg-colortemp",
            "effect_type": "warm_grade",
            "finished_at": now - timedelta(hours=3) + timedelta(minutes=2 * i),
            "duration_ms": 10_000,
            "compute_seconds": 9.0,
            "output_bytes": 400_000,
        }
        for i in range(12)
    ]
    mine = [
        {
            "task_id": "good",
            "video_id": VIDEO,
            "provider_id": "opencv-curves",
            "effect_type": "warm_grade",
            "finished_at": now - timedelta(minutes=1),
            "duration_ms": 3_000,
            "compute_seconds": 2.4,
            "output_bytes": 600_000,
        },
        {
            "task_id": "cheap",
            "video_id": VIDEO,
            "provider_id": "ffmpeg-colortemp",
            "effect_type": "warm_grade",
            "finished_at": now - timedelta(minutes=1),
            "duration_ms": 3_000,
            "compute_seconds": 1.2,
            "output_bytes": 600_000,
        },
    ]
    rows = pl.DataFrame(history + mine).with_columns(
        status=pl.lit("succeeded"),
        instance_type=pl.lit("cpu-2c"),
        partner_cost_usd=pl.lit(0.0),
        selection=pl.lit("ranked"),
        source=pl.lit("real"),
        attempts=pl.lit(1),
    )
    return execution_events(rows)


def _inputs(now):
    """best_result's inputs for VIDEO as M7, M6 and M5 write them; M7's ``cost_usd`` is its
    compute + partner figure."""
    tasks = ["good", "cheap"]
    outputs = pl.DataFrame(
        {
            "video_id": [VIDEO] * 2,
            "task_id": tasks,
            "selection": ["ranked"] * 2,
            "duration_ms": [3_000, 3_000],
            "output_key": [f"outputs/{VIDEO}/{t}.mp4" for t in tasks],
        }
    )
    compute_only = [2.4 * 0.36 / 3600, 1.2 * 0.36 / 3600]
    quality = pl.DataFrame(
        {
            "video_id": [VIDEO] * 2,
            "task_id": tasks,
            "effect_type": ["warm_grade"] * 2,
            "provider_id": ["opencv-curves", "ffmpeg-colortemp"],
            "status": ["scored"] * 2,
            "composite": [0.9, 0.5],
            "gate_passed": [True, True],
            "cost_usd": compute_only,
            "margin": [0.99, 0.99],
        }
    )
    batch = pl.DataFrame({"video_id": [VIDEO] * 2, "task_id": tasks, "user_id": ["u1"] * 2, "tokens_reserved": [4, 4]})
    return quality, outputs, batch


def _upload(settings, user_id: str, priorities: str | None) -> None:
    """VIDEO's upload in the store with the user's ``priorities``, as the API records it (M5
    reads the upload from the store, not from its landed bronze row)."""
    store = Store(settings.database_url)
    made = store.create_upload(
        user_id,
        filename="select.mp4",
        content_type="video/mp4",
        sha256="5" * 64,
        bytes_=1,
        media_key="uploads/select.mp4",
        priorities=priorities,
    ).upload
    # The store draws video ids; the rows of this test are keyed by VIDEO.
    with store.engine.begin() as conn:
        conn.execute(
            text("UPDATE uploads SET video_id = :v WHERE video_id = :made"), {"v": VIDEO, "made": made["video_id"]}
        )
    store.close()


def _select(settings, now) -> dict:
    """Run the real asset body on VIDEO's inputs with the platform's clients."""
    quality, outputs, batch = _inputs(now)
    clients = Clients.from_settings(settings)
    store = Store(settings.database_url)  # migrated (the clients' store does not upgrade)
    try:
        out = best_result(
            dg.build_asset_context(partition_key=VIDEO),
            quality_scores=quality,
            provider_outputs=outputs,
            test_batch=batch,
            # M2's row: the example shows a warm grade, the job's one target.
            content_analysis=pl.DataFrame({"video_id": [VIDEO], "target_effect_types": [["warm_grade"]]}),
            lake=clients.lake,
            catalog=clients.catalog,
            providers=clients.providers,
            platform=settings,
            store=store,
        )
    finally:
        store.close()
    return out.row(0, named=True)


def _reserved_job(settings, tokens: int = 4) -> str:
    """A store user whose job for VIDEO holds ``tokens``, as M5 leaves it; the user id."""
    store = Store(settings.database_url)
    user, _ = store.create_user(store.create_workspace("w")["workspace_id"], welcome_tokens=10)
    store.reserve(user["user_id"], job_id(VIDEO), tokens, correlation_id=VIDEO)
    store.close()
    return user["user_id"]


@pytest.mark.parametrize(("priorities", "winner"), [(None, "good"), ('{"cost": 1}', "cheap")])
def test_selection_uses_the_uploads_weights_and_execution_costs_cost(settings, instance, priorities, winner):
    defs = build_definitions(settings)
    lake = Lake(uri=settings.lake_uri)
    now = utcnow()
    lake.append(EXECUTION_EVENTS, _events(now))
    user_id = _reserved_job(settings)
    _upload(settings, user_id, priorities)
    best = _select(settings, now)
    assert best["outcome"] == "selected" and best["task_id"] == winner
    # Delivered: the job's one reservation is charged, and the row's margin is the job's.
    store = Store(settings.database_url)
    assert [(e["kind"], e["tokens"]) for e in store.entries(user_id)] == [
        ("credit", 10),
        ("reserve", 4),
        ("consume", 4),
    ]
    store.close()
    job_cost = sum(selection_costs_of(settings, now).values())
    assert best["margin"] == pytest.approx(1 - job_cost / settings.token_usd_rate / 4)

    assert dg.materialize([execution_costs], resources=defs.resources, instance=instance).success
    gold = lake.read(EXECUTION_COSTS, pl.col("video_id") == VIDEO)
    gold_cost = dict(zip(gold["task_id"], gold["cost_usd"], strict=True))
    # The winner's cost is the economics job's, every term — not M7's compute-only figure.
    assert best["cost_usd"] == pytest.approx(gold_cost[winner], rel=1e-12)
    quality, _, _ = _inputs(now)
    assert best["cost_usd"] > quality.filter(pl.col("task_id") == winner)["cost_usd"][0] * 1.5
    terms = gold.filter(pl.col("task_id") == winner).row(0, named=True)
    assert terms["idle_cost_usd"] > 0 and terms["storage_cost_usd"] > 0 and terms["bandwidth_cost_usd"] > 0
    # Every task's selection cost, not only the winner's.
    clients = Clients.from_settings(settings)
    mine = selection_costs(lake, clients.catalog, clients.providers, settings, VIDEO, utcnow())
    assert dict(zip(mine["task_id"], mine["cost_usd"], strict=True)) == pytest.approx(gold_cost, rel=1e-12)


def selection_costs_of(settings, now) -> dict[str, float]:
    clients = Clients.from_settings(settings)
    costs = selection_costs(Lake(uri=settings.lake_uri), clients.catalog, clients.providers, settings, VIDEO, now)
    return dict(zip(costs["task_id"], costs["cost_usd"], strict=True))


def test_missing_priorities_fall_back_to_the_platform_default(settings):
    lake = Lake(uri=settings.lake_uri)
    now = utcnow()
    lake.append(EXECUTION_EVENTS, _events(now))
    # No uploads row at all, then a row whose table has no priorities column: balanced.
    assert _select(settings, now)["task_id"] == "good"
    lake.append(UPLOADS, pl.DataFrame([{"video_id": VIDEO, "user_id": "u1"}]))
    assert "priorities" not in lake.read(UPLOADS).columns or lake.read(UPLOADS)["priorities"][0] is None
    assert _select(settings, now)["task_id"] == "good"
    # The platform's preset is the default: a cost-first platform picks the cheap task.
    assert _select(settings.model_copy(update={"priority": "cost"}), now)["task_id"] == "cheap"
