"""Concurrent uploads hold: distinct real clips from many users and identical bytes from
one user, all at once, on the real server and the real store (SQLite and PostgreSQL) →
every request answered 2xx/4xx, no server error, exactly one store row and one media object
per accepted upload, no orphan object. Small and bounded here; ``bench/upload_load.py``
runs the full sizes and reports latency."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from tests.api_users import new_user, new_workspace
from tests.load import burst, distinct_clips, summary
from tests.server import serve

pytest_plugins = ["tests.store_fixtures"]
pytestmark = [pytest.mark.slow, pytest.mark.video]

DISTINCT, IDENTICAL, USERS = 60, 20, 6


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_concurrent_uploads_store_each_once_and_fail_none(settings, short_bikes, tmp_path, empty_database, backend):
    settings = settings.model_copy(update={"database_url": empty_database(backend)})
    clips = distinct_clips(short_bikes, tmp_path, DISTINCT + 1)
    app = create_app(settings)
    store = app.state.clients.store
    with serve(app) as base:
        with httpx.Client(base_url=base, timeout=30) as c:
            # Quotas far above the burst: this measures the intake, not the GPU admission.
            workspaces = [new_workspace(c, f"w{i}", max_concurrent_gpu_jobs=1000) for i in range(2)]
            users = [new_user(c, workspaces[i % 2]) for i in range(USERS)]
        requests = [(users[i % USERS]["headers"], f"clip{i}.mp4", clips[i]) for i in range(DISTINCT)]
        # The same bytes, at once, from one user: one upload, whatever the interleaving.
        requests += [(users[0]["headers"], "same.mp4", clips[DISTINCT])] * IDENTICAL
        answers, wall = burst(base, requests)
    stats = summary(answers, wall)
    print(f"\n{backend}: {stats}")  # noqa: T201 - latency is reported (pytest -s), not asserted
    assert all(200 <= a.status < 500 for a in answers), [a for a in answers if not 200 <= a.status < 500][:3]
    assert all(a.status == 202 for a in answers), stats["statuses"]
    distinct_ids = {a.video_id for a in answers[:DISTINCT]}
    same_ids = {a.video_id for a in answers[DISTINCT:]}
    assert len(distinct_ids) == DISTINCT and len(same_ids) == 1 and not distinct_ids & same_ids
    rows = store.changes_since("uploads", 0, limit=1000, grace=timedelta(0))[0]  # the server has stopped
    assert sorted(r["video_id"] for r in rows) == sorted(distinct_ids | same_ids)  # one row per upload
    objects = {str(p.relative_to(settings.media_uri)) for p in Path(settings.media_uri).rglob("*") if p.is_file()}
    assert objects == {r["media_key"] for r in rows}  # one object each, no orphan
