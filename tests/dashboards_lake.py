"""A lake for the dashboard tests, filled the way production fills it: real uploads through
the API, the real sensors and jobs (tests.harness), a one-clip benchmark, simulated history
(``effectlake simulate``) and the economics job.

Building it costs about a minute of CPU, so both dashboard test modules share one build per
session (``filled_lake``) and take cheap copies of it (``copy_world``) wherever a test
decides something, so no test sees another's decisions.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import httpx
import polars as pl
import pytest

from api.app import create_app
from economics.recommendations import recommend
from pipelines.definitions import build_definitions
from resources.lake import Lake
from resources.schemas import RECOMMENDATIONS
from resources.settings import Settings
from resources.store import Store
from tests.api_users import ADMIN_KEY, new_user
from tests.clips import one_clip_suite
from tests.harness import Driver
from tests.server import serve

# Password the tests sign in with, and its hash in the documented format (dashboards/auth.py).
PASSWORD = "correct horse battery staple"
SIM_DAYS, SIM_PER_HOUR, SIM_SEED = 8, 20, 7


@dataclass(frozen=True)
class World:
    """Where one lake lives; ``env()`` is what the dashboard process needs to find it."""

    root: Path

    @property
    def lake_uri(self) -> str:
        return str(self.root / "lake")

    @property
    def media_uri(self) -> str:
        return str(self.root / "media")

    @property
    def manifest_uri(self) -> str:
        return str(self.root / "manifest" / "routing_manifest.json")

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.root / 'store.db'}"

    def settings(self, **extra) -> Settings:
        return Settings(
            LAKE_URI=self.lake_uri,
            MEDIA_URI=self.media_uri,
            MANIFEST_URI=self.manifest_uri,
            DATABASE_URL=self.database_url,
            EFFECTLAKE_ADMIN_KEY=ADMIN_KEY,
            EFFECTLAKE_API_URL="http://testserver",
            EFFECTLAKE_MAX_UPLOAD_BYTES=20_000_000,
            EFFECTLAKE_MAX_DURATION_MS=30_000,
            **extra,
        )

    def env(self, password_hash: str) -> dict[str, str]:
        return {
            "LAKE_URI": self.lake_uri,
            "MEDIA_URI": self.media_uri,
            "MANIFEST_URI": self.manifest_uri,
            "DATABASE_URL": self.database_url,
            "EFFECTLAKE_DEPLOYMENT": "local",
            "EFFECTLAKE_ADMIN_KEY": ADMIN_KEY,
            "EFFECTLAKE_DASHBOARD_PASSWORD_HASH": password_hash,
        }

    @property
    def lake(self) -> Lake:
        return Lake(uri=self.lake_uri)

    @property
    def store(self) -> Store:
        return Store(self.database_url)


def _upload(client: httpx.Client, path: Path) -> str:
    with open(path, "rb") as fh:
        r = client.post(
            "/v1/uploads", headers=new_user(client)["headers"], files={"file": (path.name, fh, "video/mp4")}
        )
    return r.raise_for_status().json()["video_id"]


def _seed_recommendations_if_none(world: World) -> None:
    """One video gives each provider × effect cell a single execution, under every
    recommendation rule's evidence floor (10), so a fresh lake has no recommendation to
    decide on. Then the recommendation engine itself is run on a thin-margin history (as
    tests/test_recommendations_api.py does) and its output stored like the asset stores it."""
    lake = world.lake
    if lake.read(RECOMMENDATIONS).height:
        return
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    n = 20
    costs = pl.DataFrame(
        {
            "provider_id": ["opencv-cartoon"] * n,
            "effect_type": ["cartoon"] * n,
            "instance_type": ["cpu-2c"] * n,
            "status": ["succeeded"] * (n - 4) + ["failed"] * 4,
            "selection": ["ranked"] * n,
            "source": ["real"] * n,
            "cost_usd": [0.035] * n,
            "cost_tokens": [3.5] * n,
            "tokens_charged": [4] * (n - 4) + [0] * 4,
            "duration_ms": [5000] * n,
            "finished_at": [now - timedelta(minutes=i) for i in range(n)],
        }
    )
    quality = pl.DataFrame(
        {"provider_id": ["opencv-cartoon"], "effect_type": ["cartoon"], "mean_quality": [0.9], "scored": [n]}
    )
    recs = recommend(costs, quality, {"effects": {}}, {"cartoon": 4}, 0.01, now=now)
    assert recs.height >= 2, "the seeded history must give at least two recommendations"
    lake.overwrite(RECOMMENDATIONS, recs)


def build(root: Path, clips: list[Path], suite_clip: Path) -> World:
    """Fill a lake under ``root``: upload ``clips`` through the real API and drive the
    sensors until each waits for an admin, benchmark ``suite_clip``, simulate history and
    run the economics job."""
    world = World(root)
    suite = one_clip_suite(root / "suite.yaml", "carphone", suite_clip)
    settings = world.settings(EFFECTLAKE_REFERENCE_SUITE=str(suite))
    defs = build_definitions(settings)
    with dg.instance_for_test() as instance:
        driver = Driver(defs, instance)
        with serve(create_app(settings)) as base, httpx.Client(base_url=base, timeout=60) as client:
            for clip in clips:
                _upload(client, clip)
            assert all(r.success for r in driver.step("upload_sensor"))
            assert all(r.success for r in driver.step("completion_sensor"))
        driver.land()  # the delivered jobs' charges reach the lake's ledger
        assert defs.resolve_job_def("benchmark_job").execute_in_process(instance=instance).success
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("LAKE_URI", world.lake_uri)
            from pipelines.cli.simulate import run_simulation

            run_simulation(days=SIM_DAYS, seed=SIM_SEED, per_hour=SIM_PER_HOUR)
        assert defs.resolve_job_def("economics_job").execute_in_process(instance=instance).success
    _seed_recommendations_if_none(world)
    return world


def copy_world(world: World, dst: Path) -> World:
    """A private copy of ``world`` (lake, media, manifest, store) under ``dst``."""
    for part in ("lake", "media", "manifest"):
        src = world.root / part
        if src.exists():
            shutil.copytree(src, dst / part)
    dst.mkdir(parents=True, exist_ok=True)
    for store_file in world.root.glob("store.db*"):  # the SQLite file and its WAL
        shutil.copy2(store_file, dst / store_file.name)
    return World(dst)


_BUILT: dict[str, World] = {}


def filled_lake(tmp_path_factory, clips: list[Path], suite_clip: Path) -> World:
    """The session's filled lake, built once however many modules ask for it."""
    if "world" not in _BUILT:
        _BUILT["world"] = build(tmp_path_factory.mktemp("dashboard-world"), clips, suite_clip)
    return _BUILT["world"]


def environ_without_settings() -> dict[str, str]:
    """The current environment less the variables the dashboard reads (tests set their own)."""
    drop = {
        "LAKE_URI",
        "MEDIA_URI",
        "MANIFEST_URI",
        "EFFECTLAKE_DEPLOYMENT",
        "EFFECTLAKE_ADMIN_EMAILS",
        "EFFECTLAKE_DASHBOARD_PASSWORD_HASH",
        "REDIS_URL",
    }
    return {k: v for k, v in os.environ.items() if k not in drop}
