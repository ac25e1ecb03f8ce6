"""The Gemini client (resources/gemini) — the real google-genai SDK over real HTTP against
tests/fakes/gemini_server.py: uploads, structured output, cache, retries, fallback, prices."""

from __future__ import annotations

import base64
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from resources.catalog import Catalog
from resources.gemini import (
    ContentAnalysisResult,
    GeminiClient,
    GeminiInvalidResponse,
    GeminiUnavailable,
    JudgeVerdict,
    MissingApiKey,
    PriceTable,
    Usage,
    merge_analysis,
    with_fallback,
)
from resources.gemini.pricing import ModelPrice
from resources.gemini.prompts import ANALYSIS, JUDGE, REFINE
from resources.samples import sample_videos
from resources.settings import DATA_DIR, Settings
from tests.fakes.gemini_server import FakeGemini

KEY = "test-key"
CATALOG = Catalog(data_dir=str(DATA_DIR))
PRICES = PriceTable.load(DATA_DIR)


def _video(name: str) -> Path:
    return next(p for p in sample_videos() if p.name == name)


BIKES = _video("bikes.mp4")  # 510 kB, 10 s


@pytest.fixture
def fake():
    before = set(threading.enumerate())
    with FakeGemini(api_key=KEY, processing_polls=2) as server:
        yield server
    assert not server.crashes, f"the fake crashed: {server.crashes!r}"
    leftover = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not leftover, f"the fake left threads running: {leftover}"


def _client(fake: FakeGemini, tmp_path: Path, api_key: str | None = KEY, **overrides) -> GeminiClient:
    options = {
        "base_url": fake.base_url,
        "timeout_s": 10,
        "attempts": 3,
        "max_wait_s": 2.0,
        "backoff_s": 0.05,
        "file_poll_s": 0.05,
        "file_timeout_s": 5,
        "inline_max_bytes": 0,  # the Files API unless a test says otherwise
        "cache_dir": tmp_path / "cache",
        **overrides,
    }
    return GeminiClient(api_key, "gemini-2.5-flash", PRICES, **options)


@pytest.fixture
def client(fake, tmp_path):
    with _client(fake, tmp_path) as gemini:
        yield gemini


def _analyze(gemini: GeminiClient, description: str | None = "make it look like a summer evening"):
    return gemini.analyze_video(BIKES, description, CATALOG.style_taxonomy(), CATALOG.effects())


def test_analysis_uploads_the_proxy_and_returns_structured_output_valid_against_the_catalogs(fake, client):
    result, usage = _analyze(client)

    taxonomy = CATALOG.style_taxonomy()
    assert isinstance(result, ContentAnalysisResult)
    assert result.dominant_style in taxonomy["styles"]
    assert set(result.detected_effects) <= set(taxonomy["detected_effects"])
    assert set(result.eligible_effect_types) <= set(CATALOG.effects())
    assert result.scenes and all(s.description for s in result.scenes)
    assert 0 <= result.confidence <= 1
    # The resumable upload, as google-genai speaks it.
    start = fake.last("upload")
    assert start.path == "/upload/v1beta/files" and start.headers["x-goog-api-key"] == KEY
    assert start.headers["x-goog-upload-protocol"] == "resumable"
    assert start.headers["x-goog-upload-command"] == "start"
    assert start.headers["x-goog-upload-header-content-length"] == str(BIKES.stat().st_size)
    assert start.headers["x-goog-upload-header-content-type"] == "video/mp4"
    chunk = fake.last("upload.chunk")
    assert chunk.headers["x-goog-upload-command"] == "upload, finalize"
    assert chunk.body_bytes == BIKES.stat().st_size
    # PROCESSING twice, then ACTIVE; deleted once answered.
    assert fake.count("files.get") == 3 and fake.count("files.delete") == 1
    # One generateContent with the video by reference, the versioned prompt and the schema.
    assert fake.count("generateContent") == 1
    request = fake.last("generateContent")
    assert request.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    body = request.json
    parts = body["contents"][0]["parts"]
    file_id = fake.last("files.get").path.rsplit("/", 1)[1]
    assert parts[0]["fileData"] == {"file_uri": f"{fake.base_url}/v1beta/files/{file_id}", "mime_type": "video/mp4"}
    assert "make it look like a summer evening" in parts[1]["text"]
    assert body["systemInstruction"]["parts"][0]["text"] == ANALYSIS.system
    config = body["generationConfig"]
    assert config["responseMimeType"] == "application/json" and config["temperature"] == 0
    schema = config["responseSchema"]
    assert schema["properties"]["dominant_style"]["enum"] == list(taxonomy["styles"])
    assert schema["properties"]["eligible_effect_types"]["items"]["enum"] == list(CATALOG.effects())
    assert schema["properties"]["confidence"] == {**schema["properties"]["confidence"], "minimum": 0, "maximum": 1}
    # Usage: the tokens the response reported, priced at gemini-2.5-flash's rates.
    assert (usage.model, usage.operation, usage.prompt_version) == ("gemini-2.5-flash", "analyze_video", ANALYSIS.key)
    assert usage.requests == 1 and usage.prompt_tokens > 300 and usage.output_tokens > 0 and not usage.cache_hit
    assert usage.usd == pytest.approx((usage.prompt_tokens * 0.30 + usage.output_tokens * 2.50) / 1e6)


def test_small_videos_go_inline_without_the_files_api(fake, tmp_path):
    with _client(fake, tmp_path, inline_max_bytes=1 << 20) as gemini:
        result, usage = _analyze(gemini)
    assert usage.requests == 1 and result.scenes
    assert fake.count("upload") == fake.count("files.get") == 0
    inline = fake.last("generateContent").json["contents"][0]["parts"][0]["inlineData"]
    assert inline["mime_type"] == "video/mp4"
    assert base64.urlsafe_b64decode(inline["data"]) == BIKES.read_bytes()


def test_the_same_video_prompt_version_and_model_is_answered_from_the_cache(fake, client, tmp_path):
    first, paid = _analyze(client)
    requests = len(fake.requests)

    again, usage = _analyze(client)
    assert again == first
    assert usage.cache_hit and (usage.requests, usage.prompt_tokens, usage.output_tokens, usage.usd) == (0, 0, 0, 0.0)
    assert len(fake.requests) == requests, "a cache hit must not reach the API"
    # On disk: another client (another process) with the same directory hits too.
    with _client(fake, tmp_path) as other:
        assert _analyze(other)[0] == first
    assert len(fake.requests) == requests
    # Another description is another question.
    _analyze(client, "black and white please")
    assert fake.count("generateContent") == 2
    # Another model is another cache entry.
    fake.models.add("gemini-2.5-pro")
    with GeminiClient(
        KEY, "gemini-2.5-pro", PRICES, base_url=fake.base_url, inline_max_bytes=1 << 20, cache_dir=tmp_path / "cache"
    ) as pro:
        _, pro_usage = _analyze(pro)
    assert not pro_usage.cache_hit and fake.count("generateContent") == 3
    assert paid.usd > 0


def test_a_429_is_retried_after_the_delay_the_server_asks(fake, client):
    fake.fail("generateContent", 429, times=2, retry_delay="0.3s")
    started = time.monotonic()
    result, usage = _analyze(client)
    elapsed = time.monotonic() - started
    assert result.scenes and usage.requests == 1
    assert fake.count("generateContent") == 3
    assert elapsed >= 0.6, "two RetryInfo delays of 0.3 s were asked for"


def test_a_503_is_retried_after_its_retry_after_header(fake, client):
    fake.fail("generateContent", 503, times=1, retry_after="1")
    started = time.monotonic()
    _analyze(client)
    assert time.monotonic() - started >= 1.0 and fake.count("generateContent") == 2


def test_retries_are_bounded_in_attempts_and_in_waiting(fake, client):
    fake.fail("generateContent", 429, times=None, retry_delay="0.05s")
    with pytest.raises(GeminiUnavailable, match=r"429 RESOURCE_EXHAUSTED.*attempt 3 of 3"):
        _analyze(client)
    assert fake.count("generateContent") == 3
    # A quota reset further away than max_wait_s: no waiting it out inside a stage.
    fake.heal()
    fake.fail("generateContent", 429, times=None, retry_delay="120s")
    started = time.monotonic()
    with pytest.raises(GeminiUnavailable, match="attempt 1 of 3"):
        _analyze(client, "x")
    assert time.monotonic() - started < 2 and fake.count("generateContent") == 4


def test_a_bad_request_is_not_retried(fake, client):
    fake.fail("generateContent", 400)
    with pytest.raises(GeminiUnavailable, match="400 INVALID_ARGUMENT"):
        _analyze(client)
    assert fake.count("generateContent") == 1


def test_a_persistent_500_falls_back_to_local_with_the_reason(fake, client):
    fake.fail("generateContent", 500, times=None)
    outcome = with_fallback(client, lambda g: _analyze(g))
    assert outcome.value is None and outcome.source == "local" and outcome.usage is None
    assert "500 INTERNAL" in outcome.reason and "attempt 3 of 3" in outcome.reason
    assert fake.count("generateContent") == 3
    # The uploaded file is not left behind when the analysis fails.
    assert fake.count("files.delete") == 1
    row, sources = merge_analysis(LOCAL_ROW, outcome.value)
    assert {k: row[k] for k in LOCAL_ROW} == LOCAL_ROW
    assert set(sources.values()) == {"local"} and set(sources) == set(row)


def test_without_a_key_nothing_is_sent_and_the_stage_runs_locally(fake, tmp_path):
    keyless = _client(fake, tmp_path, api_key=None)
    assert not keyless.enabled
    outcome = with_fallback(keyless, lambda g: _analyze(g))
    assert (outcome.value, outcome.usage, outcome.source) == (None, None, "local")
    assert outcome.reason == "GOOGLE_API_KEY is not set"
    with pytest.raises(MissingApiKey):
        keyless.judge([FRAME], [FRAME], "cartoon", CATALOG.effects()["cartoon"])
    assert with_fallback(None, lambda g: _analyze(g)).source == "local"
    # A blank key in the environment is no key.
    settings = Settings.from_environ({"GOOGLE_API_KEY": "  ", "EFFECTLAKE_GEMINI_BASE_URL": fake.base_url})
    assert not GeminiClient.from_settings(settings).enabled
    assert fake.requests == []


def test_settings_configure_the_client(fake, tmp_path):
    settings = Settings.from_environ(
        {
            "GOOGLE_API_KEY": KEY,
            "EFFECTLAKE_GEMINI_MODEL": "gemini-2.5-pro",
            "EFFECTLAKE_GEMINI_BASE_URL": fake.base_url,
            "EFFECTLAKE_GEMINI_TIMEOUT_S": "7.5",
            "EFFECTLAKE_GEMINI_ATTEMPTS": "2",
            "EFFECTLAKE_GEMINI_INLINE_MAX_BYTES": str(1 << 20),
            "EFFECTLAKE_GEMINI_CACHE_DIR": str(tmp_path / "c"),
        }
    )
    with GeminiClient.from_settings(settings) as gemini:
        assert (gemini.model, gemini.attempts, gemini.timeout_s) == ("gemini-2.5-pro", 2, 7.5)
        _, usage = _analyze(gemini)
    assert usage.model == "gemini-2.5-pro" and usage.usd == pytest.approx(
        (usage.prompt_tokens * 1.25 + usage.output_tokens * 10.0) / 1e6
    )
    request = fake.last("generateContent")
    assert request.path.endswith("/models/gemini-2.5-pro:generateContent")
    assert request.headers["x-server-timeout"] == "8"  # the SDK's per-request deadline, whole seconds
    assert list((tmp_path / "c").rglob("*.json")), "the analysis was cached where the settings say"
    with pytest.raises(KeyError, match="no price for Gemini model 'gemini-9'"):
        GeminiClient.from_settings(Settings.from_environ({"EFFECTLAKE_GEMINI_MODEL": "gemini-9"}))


def test_an_upload_that_fails_processing_is_reported(fake, client):
    fake.fail_processing = True
    with pytest.raises(GeminiUnavailable, match="failed processing"):
        _analyze(client)
    assert fake.count("generateContent") == 0 and fake.count("files.delete") == 1


def test_a_video_over_one_chunk_is_uploaded_in_chunks_at_their_offsets(fake, client, tmp_path):
    big = tmp_path / "big.mp4"  # the fake stores bytes, it does not decode them
    big.write_bytes(BIKES.read_bytes() * 17)  # 8.7 MB: the SDK sends 8 MiB chunks
    result, _ = client.analyze_video(big, None, CATALOG.style_taxonomy(), CATALOG.effects())
    chunks = [r for r in fake.requests if r.operation == "upload.chunk"]
    assert [(c.headers["x-goog-upload-command"], c.headers["x-goog-upload-offset"]) for c in chunks] == [
        ("upload", "0"),
        ("upload, finalize", str(8 * 1024 * 1024)),
    ]
    assert sum(c.body_bytes for c in chunks) == big.stat().st_size and result.scenes
    assert "(none given)" in fake.last("generateContent").json["contents"][0]["parts"][1]["text"]


def test_an_upload_that_stays_processing_times_out(fake, tmp_path):
    fake.processing_polls = 10_000
    with _client(fake, tmp_path, file_timeout_s=0.3) as gemini, pytest.raises(GeminiUnavailable, match="not ACTIVE"):
        _analyze(gemini)
    assert fake.count("generateContent") == 0 and fake.count("files.delete") == 1


def test_a_wrong_key_is_refused_once_not_retried(fake, tmp_path):
    with _client(fake, tmp_path, api_key="wrong", inline_max_bytes=1 << 20) as gemini:
        outcome = with_fallback(gemini, _analyze)
    assert outcome.source == "local" and "API key not valid" in outcome.reason
    assert fake.count("generateContent") == 1


# A frame as M7 has them: RGB uint8 at working size.
FRAME = np.dstack([np.tile(np.linspace(0, 255, 160, dtype=np.uint8), (90, 1))] * 3)


def test_the_judge_scores_within_range_and_sees_both_sides(fake, client):
    reference = [np.roll(FRAME, i, axis=1) for i in range(16)]
    output = [255 - f for f in reference]
    verdict, usage = client.judge(reference, output, "cartoon", CATALOG.effects()["cartoon"])
    assert isinstance(verdict, JudgeVerdict)
    assert 0 <= verdict.score <= 1 and 0 <= verdict.confidence <= 1 and verdict.rationale
    assert usage.operation == "judge" and usage.prompt_version == JUDGE.key and usage.usd > 0
    parts = fake.last("generateContent").json["contents"][0]["parts"]
    images = [p for p in parts if "inlineData" in p]
    assert len(images) == 2 * client.judge_max_frames  # 16 frames a side, 8 sent, spread evenly
    assert all(p["inlineData"]["mime_type"] == "image/jpeg" for p in images)
    assert base64.urlsafe_b64decode(images[0]["inlineData"]["data"])[:2] == b"\xff\xd8"  # JPEG
    schema = fake.last("generateContent").json["generationConfig"]["responseSchema"]
    assert schema["properties"]["score"]["minimum"] == 0 and schema["properties"]["score"]["maximum"] == 1


@pytest.mark.parametrize(
    "answer, problem",
    [
        ('{"score": 1.7, "rationale": "vivid", "confidence": 0.9}', "score"),
        ('{"score": 0.5, "rationale": "ok", "confidence": -0.2}', "confidence"),
        ('{"score": 0.5, "rationale": "', "Invalid JSON"),
    ],
)
def test_the_judge_never_returns_out_of_range_values(fake, client, answer, problem):
    fake.answer_next(answer)
    effect = CATALOG.effects()["warm_grade"]
    with pytest.raises(GeminiInvalidResponse, match=problem) as caught:
        client.judge([FRAME], [FRAME], "warm_grade", effect)
    assert caught.value.usage is not None and caught.value.usage.usd > 0  # the answer was paid for
    fake.answer_next(answer)
    outcome = with_fallback(client, lambda g: g.judge([FRAME], [FRAME], "warm_grade", effect))
    assert outcome.value is None and outcome.source == "local" and outcome.usage.requests == 1


def test_refine_prompt_sends_the_template_and_the_analysis(fake, client):
    analysis = {"dominant_style": "neutral", "motion_class": "medium", "scene_count": 3}
    template = "Apply a warm color grade of strength 0.6 to this neutral street scene."
    prompt, usage = client.refine_prompt(template, analysis, "warm_grade", CATALOG.effects()["warm_grade"])
    assert prompt and len(prompt) <= 2000
    assert usage.operation == "refine_prompt" and usage.prompt_version == REFINE.key
    body = fake.last("generateContent").json
    text = body["contents"][0]["parts"][0]["text"]
    assert template in text and '"motion_class": "medium"' in text and '"strength": 0.6' in text
    assert body["generationConfig"]["responseSchema"]["properties"]["prompt"]["max_length"] == 2000


def test_usage_is_priced_from_the_price_table(fake, client):
    flash = PRICES.price("gemini-2.5-flash")
    metadata = type(
        "Meta", (), {"prompt_token_count": 1000, "candidates_token_count": 200, "thoughts_token_count": 300}
    )
    usage = Usage.from_metadata("gemini-2.5-flash", "judge", JUDGE.key, metadata, flash)
    # 1,000 input tokens at $0.30/M + (200 + 300 thinking) output tokens at $2.50/M
    assert (usage.prompt_tokens, usage.output_tokens) == (1000, 500)
    assert usage.usd == pytest.approx(0.0003 + 0.00125)
    assert usage.cost_line() == {
        "kind": "llm",
        "provider": "gemini",
        "model": "gemini-2.5-flash",
        "operation": "judge",
        "prompt_version": JUDGE.key,
        "requests": 1,
        "prompt_tokens": 1000,
        "output_tokens": 500,
        "usd": usage.usd,
        "cache_hit": False,
    }
    # gemini-2.5-pro bills the whole request at the long-context rates past 200k prompt tokens.
    pro = PRICES.price("gemini-2.5-pro")
    assert pro.usd(200_000, 0) == pytest.approx(0.25)
    assert pro.usd(300_000, 1000) == pytest.approx(0.75 + 0.015)
    with pytest.raises(ValueError, match="go together"):
        ModelPrice(input=1, output=1, long_context_tokens=10)
    # Thinking tokens reported by the API are billed as output.
    fake.thoughts_tokens = 400
    _, refined = client.refine_prompt("p", {}, "cartoon", CATALOG.effects()["cartoon"])
    assert refined.output_tokens > 400
    assert refined.usd == pytest.approx(flash.usd(refined.prompt_tokens, refined.output_tokens))


LOCAL_ROW = {
    "scene_count": 2,
    "scene_cuts_ms": [4000],
    "motion_level": 0.02,
    "motion_class": "medium",
    "mean_luma": 100.0,
    "mean_saturation": 0.12,
    "color_temperature": 0.03,
    "contrast": 0.18,
    "dominant_style": "neutral",
    "style_scores": {"neutral": 1.0},
    "detected_effects": [],
    "target_effect_types": ["warm_grade"],
    "analysis_ms": 900,
}


def test_merge_takes_names_from_gemini_and_measurements_from_the_local_analysis(fake, client):
    result, _ = _analyze(client)
    row, sources = merge_analysis(LOCAL_ROW, result)
    assert row["dominant_style"] == result.dominant_style and sources["dominant_style"] == "gemini"
    assert row["detected_effects"] == list(result.detected_effects) and sources["detected_effects"] == "gemini"
    # The effect types Gemini names are evidence for the targets M2 derives after the merge.
    assert "eligible_effect_types" not in row and row["target_effect_types"] == ["warm_grade"]
    assert row["scenes"] == [s.model_dump() for s in result.scenes] and sources["scenes"] == "gemini"
    for measured in ("scene_count", "scene_cuts_ms", "motion_level", "mean_luma", "style_scores", "analysis_ms"):
        assert row[measured] == LOCAL_ROW[measured] and sources[measured] == "local"
    assert set(sources) == set(row)


def test_threads_share_one_sdk_client():
    """M7 scores outputs on threads that share one client: however many ask at once, one SDK
    client is made (two made at once, the dropped one closed its connections under the
    other's request: "Cannot send a request, as the client has been closed")."""
    from concurrent.futures import ThreadPoolExecutor

    gemini = GeminiClient("test-key", "gemini-2.5-flash", PRICES)
    start = threading.Barrier(8)

    def make(_: int) -> int:
        start.wait()
        return id(gemini._client())

    with ThreadPoolExecutor(8) as pool:
        assert len(set(pool.map(make, range(8)))) == 1
    gemini.close()
