"""A ComfyUI provider of several servers (``base_urls``): each task is admitted to a server
with no prompt of ours and sent there; its status, output and clean-up come from that server;
a server that frees up takes the next task. Against two servers speaking ComfyUI's recorded
protocol, running the workflow on a real clip."""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from assets.execution import remote as remote_tasks
from resources.media import MediaStore
from resources.providers.client import ProviderRegistry
from resources.providers.resilience import assign_servers
from resources.settings import DATA_DIR
from resources.store import remote
from resources.store.client import Store
from tests.fakes.comfyui_server import FakeComfyUI

PROVIDER = "comfyui-gpu"


def test_tasks_take_the_free_servers_lowest_first():
    chosen = [("a", "p"), ("b", "p"), ("c", "q")]
    assert assign_servers(chosen, {"p": [1]}, {"p": 3, "q": 1}) == {"a": 0, "b": 2, "c": 0}
    # A row of unknown server (recorded before servers were) holds one: the rest still fit.
    assert assign_servers([("a", "p")], {"p": [None]}, {"p": 2}) == {"a": 0}


def _registry(tmp_path, urls: list[str]) -> ProviderRegistry:
    for name in ("effects.yaml", "rate_card.yaml"):
        shutil.copyfile(DATA_DIR / name, tmp_path / name)
    doc = yaml.safe_load((DATA_DIR / "providers.yaml").read_text())
    doc["providers"] = [p for p in doc["providers"] if p["provider_id"] == PROVIDER]
    doc["providers"][0].update(mode="active", base_url=None, base_urls=urls, servers=len(urls), concurrency=len(urls))
    (tmp_path / "providers.yaml").write_text(yaml.safe_dump(doc))
    return ProviderRegistry(path=str(tmp_path / "providers.yaml"))


def test_servers_must_match_the_urls(tmp_path):
    with pytest.raises(ValueError, match="servers"):
        _registry(tmp_path, ["http://a:8188", "http://a:8188"]).registry()


def _until(store, providers, media, done, timeout_s=90.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        remote_tasks.advance(store, providers.registry(), providers.adapter, media, datetime.now(UTC))
        rows = {r["task_id"]: r for r in store.remote_tasks()}
        if done(rows):
            return rows
        time.sleep(0.1)
    raise AssertionError(f"not reached: {rows}")


@pytest.mark.video
@pytest.mark.slow
def test_one_prompt_per_server_and_each_task_followed_on_its_server(tmp_path, short_bikes):
    with FakeComfyUI(tmp_path / "s0") as s0, FakeComfyUI(tmp_path / "s1") as s1:
        store = Store(f"sqlite:///{tmp_path / 'store.db'}")
        media = MediaStore(uri=str(tmp_path / "media"))
        media.put_file("proxies/v1.mp4", str(short_bikes))
        providers = _registry(tmp_path, [s0.base_url, s1.base_url])
        spec = json.dumps({"input_key": "proxies/v1.mp4", "params": {"levels": 6}, "prompt": ""})
        t0 = datetime.now(UTC)
        with store.write() as s:
            for i, tid in enumerate(("t1", "t2", "t3")):
                row = {"task_id": tid, "video_id": "v1", "provider_id": PROVIDER, "effect_type": "cartoon"}
                remote.enqueue(s, [{**row, "selection": "ranked", "spec": spec}], t0 + timedelta(microseconds=i))
        s0.pause()
        s1.pause()
        remote_tasks.advance(store, providers.registry(), providers.adapter, media, datetime.now(UTC))
        rows = {r["task_id"]: r for r in store.remote_tasks()}
        assert {t: (r["state"], r["server"]) for t, r in rows.items()} == {
            "t1": ("submitted", 0),
            "t2": ("submitted", 1),
            "t3": ("waiting", None),
        }
        assert len(s0.accepted) == len(s1.accepted) == 1  # one prompt per server
        s1.resume()  # server 1 frees up first: the waiting task goes there
        rows = _until(store, providers, media, lambda rows: rows["t3"]["state"] == "finished")
        assert rows["t3"]["server"] == 1 and len(s1.accepted) == 2 and len(s0.accepted) == 1
        s0.resume()
        rows = _until(store, providers, media, lambda rows: all(r["state"] == "finished" for r in rows.values()))
        results = {t: json.loads(r["result"]) for t, r in rows.items()}
        assert all(r["status"] == "succeeded" for r in results.values())
        # Output and clean-up reach the server that ran the prompt.
        adapter = providers.adapter(PROVIDER)
        r1 = results["t1"]
        assert adapter.fetch(r1["handle"], r1["output"], str(tmp_path / "o1.mp4")) > 1000
        adapter.cleanup(r1["handle"], r1["output"])
        handle = json.loads(r1["handle"])
        assert handle["server"] == 0
        assert (s0.dirs["input"] / handle["input"]["filename"]).stat().st_size == 0
        # The orphan recovery asks every server: t2's prompt is found on server 1.
        found = adapter.locate("t2", 1)
        assert found.known and json.loads(found.handle)["server"] == 1
        assert adapter.locate("nobody", 1).known is False
        assert adapter.health_check().ok
        store.close()
