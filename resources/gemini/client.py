"""``GeminiClient``: M2's content analysis, M4's prompt refinement and M7's judge through
Google's ``google-genai`` SDK (the Gemini Developer API), without Dagster.

Every operation returns ``(result, Usage)``: a validated pydantic result (``schemas.py``) and
the tokens and USD it cost (``pricing.py``). What can go wrong is raised as a ``GeminiError``
with a readable ``reason`` (and the ``usage`` already spent, if any); ``fallback.py`` turns
that into "run the local analysis instead".

Requests: the SDK's own retries are left off and each HTTP request goes through
``resources.retry.server_paced``: 408 / 429 / 5xx and dropped connections are retried up to
``attempts`` times, waiting what the server asks (``Retry-After``, or the ``RetryInfo`` of a
429 body) or an exponential backoff, never longer than ``max_wait_s`` per pause. The API
version is pinned to ``v1beta``, where the Files API and structured output are documented.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import mimetypes
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import cv2
import numpy as np
import structlog
from pydantic import BaseModel, ValidationError
from tenacity import RetryCallState

from resources.gemini.cache import CacheKey, ResultCache, inputs_digest
from resources.gemini.pricing import PriceTable, Usage
from resources.gemini.prompts import ANALYSIS, JUDGE, REFINE, Prompt
from resources.gemini.schemas import ContentAnalysisResult, JudgeVerdict, RefinedPrompt, analysis_schema
from resources.hashing import file_sha256
from resources.retry import PollTimeout, server_paced, until_ready

log = structlog.get_logger("effectlake.gemini")

API_VERSION = "v1beta"
#: HTTP statuses worth another attempt: request timeout, quota / rate limit, server errors.
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
#: JPEG quality of judged frames: visually lossless for a judge, ~4x smaller than PNG.
JPEG_QUALITY = 85

M = TypeVar("M", bound=BaseModel)


class _OnFirstUse:
    """A module imported when one of its attributes is first read. google-genai takes about a
    second to import (its ``types``), every run process imports this module, and only a
    client with an API key ever calls the SDK."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)


if TYPE_CHECKING:
    from google import genai
    from google.genai import errors as genai_errors
    from google.genai import types
else:
    genai = _OnFirstUse("google.genai")
    genai_errors = _OnFirstUse("google.genai.errors")
    types = _OnFirstUse("google.genai.types")

# The SDK's HTTP stack (httpx2 in google-genai 3.x, httpx before): its transport errors
# (connection refused / reset, timeouts) are as passing as a 503.
_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = tuple(
    module.TransportError
    for module in (importlib.import_module(name) for name in ("httpx", "httpx2") if importlib.util.find_spec(name))
)


def _api_or_transport() -> tuple[type[BaseException], ...]:
    """The SDK's API error and the transport errors of its HTTP stack."""
    return (genai_errors.APIError, *_TRANSPORT_ERRORS)


class GeminiError(Exception):
    """A Gemini operation gave no usable result.

    Attributes:
        reason: what happened, readable (recorded by the caller with ``source = local``).
        usage: tokens already paid for (an answer that failed validation), or None.
    """

    def __init__(self, reason: str, usage: Usage | None = None):
        super().__init__(reason)
        self.reason = reason
        self.usage = usage


class MissingApiKey(GeminiError):
    """No ``GOOGLE_API_KEY``: no request is made."""


class GeminiUnavailable(GeminiError):
    """The API kept failing (429 / 5xx / connection) after the retries, or refused the request
    (4xx), or an uploaded file did not become ACTIVE."""


class GeminiInvalidResponse(GeminiError):
    """The API answered, but not with JSON valid against the requested schema (or with no
    answer at all, e.g. blocked by safety)."""


def is_retryable(exc: BaseException) -> bool:
    """True for a 408 / 429 / 5xx ``APIError`` and for a transport error of the SDK's client."""
    if isinstance(exc, genai_errors.APIError):
        return exc.code in RETRYABLE_STATUS
    return isinstance(exc, _TRANSPORT_ERRORS)


def server_delay_s(exc: BaseException) -> float | None:
    """Seconds the server asked to wait before retrying ``exc``: the larger of the
    ``Retry-After`` header (seconds or an HTTP date) and a ``google.rpc.RetryInfo`` detail's
    ``retryDelay`` (e.g. ``"17s"``, ``"0.5s"``); None when it said neither."""
    if not isinstance(exc, genai_errors.APIError):
        return None
    asked: list[float] = []
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    header = headers.get("retry-after") if hasattr(headers, "get") else None
    if header:
        header = header.strip()
        if re.fullmatch(r"\d+(\.\d+)?", header):
            asked.append(float(header))
        else:
            with contextlib.suppress(TypeError, ValueError):  # neither seconds nor a date: ignored
                asked.append((parsedate_to_datetime(header) - datetime.now(UTC)).total_seconds())
    details = exc.details.get("error", exc.details) if isinstance(exc.details, dict) else {}
    for detail in details.get("details", []) if isinstance(details, dict) else []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            match = re.fullmatch(r"(\d+(?:\.\d+)?)s", str(detail.get("retryDelay", "")))
            if match:
                asked.append(float(match.group(1)))
    return max(asked) if asked else None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, genai_errors.APIError):
        return f"{exc.code} {exc.status or ''}: {exc.message or ''}".strip()
    return f"{type(exc).__name__}: {exc}"


def encode_frame(frame: np.ndarray | bytes) -> bytes:
    """JPEG bytes of an RGB uint8 frame of shape (h, w, 3); bytes are taken as JPEG already.

    Raises:
        ValueError: not an (h, w, 3) uint8 array, or OpenCV cannot encode it.
    """
    if isinstance(frame, bytes | bytearray):
        return bytes(frame)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 frame (h, w, 3), got {frame.dtype} {frame.shape}")
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError("OpenCV could not encode the frame as JPEG")
    return buf.tobytes()


def _evenly(items: Sequence, count: int) -> list:
    """``count`` items spread evenly over ``items`` (all of them when there are fewer)."""
    if len(items) <= count:
        return list(items)
    return [items[round(i * (len(items) - 1) / (count - 1))] for i in range(count)] if count > 1 else [items[0]]


class GeminiClient:
    """The Gemini operations the stages call.

    Args:
        api_key: Gemini Developer API key; None or blank = every operation raises
            ``MissingApiKey`` before any I/O (``fallback.with_fallback`` reports it).
        model: model id, e.g. ``gemini-2.5-flash``; must be in ``prices``.
        prices: the price table (``PriceTable.load(data_dir)``).
        base_url: API root; empty = the SDK's default (Google's endpoint).
        timeout_s: per HTTP request, seconds.
        attempts: attempts per request on retryable failures, first try included.
        max_wait_s: longest pause between attempts, seconds (a longer Retry-After ends the
            retries).
        backoff_s: first backoff pause when the server names no delay, seconds (doubling).
        file_timeout_s / file_poll_s: wait for an uploaded video to become ACTIVE: deadline and
            poll interval, seconds.
        inline_max_bytes: videos up to this size go inline in the request; larger ones through
            the Files API (resumable upload).
        cache_dir: directory of the analysis cache; None = no cache.
        judge_max_frames: frames per side sent to the judge (spread evenly).

    Raises:
        KeyError: ``model`` has no price.
    """

    def __init__(
        self,
        api_key: str | None,
        model: str,
        prices: PriceTable,
        *,
        base_url: str = "",
        timeout_s: float = 120.0,
        attempts: int = 4,
        max_wait_s: float = 30.0,
        backoff_s: float = 1.0,
        file_timeout_s: float = 300.0,
        file_poll_s: float = 2.0,
        inline_max_bytes: int = 4 * 1024 * 1024,
        cache_dir: str | Path | None = None,
        judge_max_frames: int = 8,
    ):
        self.api_key = (api_key or "").strip() or None
        self.model = model
        self.price = prices.price(model)
        self.base_url = base_url
        self.timeout_s = timeout_s
        self.attempts = attempts
        self.max_wait_s = max_wait_s
        self.backoff_s = backoff_s
        self.file_timeout_s = file_timeout_s
        self.file_poll_s = file_poll_s
        self.inline_max_bytes = inline_max_bytes
        self.cache = ResultCache(cache_dir) if cache_dir else None
        self.judge_max_frames = judge_max_frames
        self._sdk: genai.Client | None = None
        # M7 scores a video's outputs on threads that share this client: two threads that
        # both found no SDK client made one each, and the one dropped closed its HTTP
        # connections under the other's request when collected (genai.Client.__del__).
        self._sdk_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings) -> GeminiClient:
        """The client ``Settings`` describe (``GOOGLE_API_KEY``, ``EFFECTLAKE_GEMINI_*``; prices
        from ``<data_dir>/gemini_prices.yaml``; cache under ``<data_dir>/gemini_cache`` unless
        ``EFFECTLAKE_GEMINI_CACHE_DIR`` says otherwise)."""
        return cls(
            settings.google_api_key,
            settings.gemini_model,
            PriceTable.load(settings.data_dir),
            base_url=settings.gemini_base_url,
            timeout_s=settings.gemini_timeout_s,
            attempts=settings.gemini_attempts,
            max_wait_s=settings.gemini_max_wait_s,
            file_timeout_s=settings.gemini_file_timeout_s,
            inline_max_bytes=settings.gemini_inline_max_bytes,
            cache_dir=settings.gemini_cache_dir or str(Path(settings.data_dir) / "gemini_cache"),
        )

    @property
    def enabled(self) -> bool:
        """An API key is set (operations may make requests)."""
        return self.api_key is not None

    # -- the SDK --------------------------------------------------------------------------

    def _client(self) -> genai.Client:
        if self.api_key is None:
            raise MissingApiKey("GOOGLE_API_KEY is not set")
        with self._sdk_lock:
            if self._sdk is None:
                options = types.HttpOptions(
                    api_version=API_VERSION,
                    timeout=round(self.timeout_s * 1000),  # the SDK takes milliseconds
                    base_url=self.base_url or None,
                )
                self._sdk = genai.Client(api_key=self.api_key, http_options=options)
            return self._sdk

    def close(self) -> None:
        """Close the SDK's HTTP connections (the client can be used again afterwards)."""
        with self._sdk_lock:
            if self._sdk is not None:
                self._sdk.close()
                self._sdk = None

    def __enter__(self) -> GeminiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _call(self, what: str, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` under the retry policy; API and transport failures become
        ``GeminiUnavailable`` naming ``what``."""

        def log_retry(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning(
                "gemini_call_retry",
                call=what,
                attempt=state.attempt_number,
                error=_describe(exc) if exc else "?",
                retry_in_s=state.upcoming_sleep,
                event_type="gemini_call_retry",
                economic_impact_usd=0.0,  # a failed call is not billed by the API
                urgency="low",
                operator_action="None if the retry succeeds; if retries persist, check the Gemini quota and key.",
                runbook="docs/runbooks/platform-logs.md#gemini_call_retry",
            )

        policy = server_paced(is_retryable, server_delay_s, self.attempts, self.max_wait_s, self.backoff_s, log_retry)
        try:
            return policy(fn, *args, **kwargs)
        except genai_errors.APIError as exc:
            tries = policy.statistics.get("attempt_number", 1)
            raise GeminiUnavailable(f"{what}: {_describe(exc)} (attempt {tries} of {self.attempts})") from exc
        except _TRANSPORT_ERRORS as exc:
            tries = policy.statistics.get("attempt_number", 1)
            raise GeminiUnavailable(f"{what}: {_describe(exc)} (attempt {tries} of {self.attempts})") from exc

    def _generate(self, operation: str, prompt: Prompt, schema: type[M], contents: list) -> tuple[M, Usage]:
        """One generateContent with structured output; the answer validated against ``schema``."""
        config = types.GenerateContentConfig(
            system_instruction=prompt.system,
            response_mime_type="application/json",
            response_schema=schema,
            temperature=0.0,  # the same input should give the same analysis (and cache entry)
        )
        generate = self._client().models.generate_content
        what = f"{operation} generateContent"
        response = self._call(what, generate, model=self.model, contents=contents, config=config)
        usage = Usage.from_metadata(self.model, operation, prompt.key, response.usage_metadata, self.price)
        text = response.text
        if not text:
            finish = response.candidates[0].finish_reason if response.candidates else None
            blocked = response.prompt_feedback.block_reason if response.prompt_feedback else None
            raise GeminiInvalidResponse(f"{operation}: no answer (finish {finish}, blocked {blocked})", usage)
        try:
            return schema.model_validate_json(text), usage
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
            raise GeminiInvalidResponse(f"{operation}: answer does not match the schema: {problems}", usage) from None

    # -- M2 ---------------------------------------------------------------------------------

    def analyze_video(
        self,
        path: str | Path,
        description: str | None,
        taxonomy: Mapping[str, Any],
        effects: Mapping[str, Mapping[str, Any]],
    ) -> tuple[ContentAnalysisResult, Usage]:
        """Gemini's analysis of a video (normally M1's proxy), cached.

        Args:
            path: local video file.
            description: what the uploader wrote about it, or None.
            taxonomy: parsed ``data/style_taxonomy.yaml`` (``styles`` with ``description``,
                ``detected_effects``).
            effects: effect type → catalog entry (``Catalog.effects()``).

        Returns:
            (result, usage): the result's name fields hold only the catalogs' names; usage is a
            zero-cost cache hit when the same (video, prompt version, model, inputs) was
            analysed before.

        Raises:
            MissingApiKey: no key (nothing read, nothing sent).
            GeminiUnavailable: the API kept failing, refused, or the upload did not become ACTIVE.
            GeminiInvalidResponse: the answer did not validate (``usage`` says what it cost).
            OSError: ``path`` cannot be read.
        """
        self._client()
        styles = tuple(taxonomy["styles"])
        detected = tuple(taxonomy.get("detected_effects") or ())
        effect_types = tuple(effects)
        schema = analysis_schema(styles, detected, effect_types)
        names = {t: str(e.get("display_name", t)) for t, e in effects.items()}
        style_lines = {s: str((spec or {}).get("description", "")).strip() for s, spec in taxonomy["styles"].items()}
        key = CacheKey(
            file_sha256(path),
            ANALYSIS.key,
            self.model,
            inputs_digest(
                {"description": description or "", "styles": style_lines, "detected": detected, "effects": names}
            ),
        )
        if self.cache is not None and (entry := self.cache.get(key)) is not None:
            try:
                return schema.model_validate(entry["result"]), Usage(**entry["usage"]).as_cache_hit()
            except (ValidationError, TypeError):
                log.warning(
                    "gemini_cache_entry_invalid",
                    key=key,
                    event_type="gemini_cache_entry_invalid",
                    economic_impact_usd=0.0,  # one more paid call; its price is in the call's usage
                    urgency="low",
                    operator_action="None; the entry is replaced. Many mean the schema changed: clear the cache.",
                    runbook="docs/runbooks/platform-logs.md#gemini_cache_entry_invalid",
                )
        text = ANALYSIS.render(
            styles="\n".join(f"- {s}: {d}" for s, d in style_lines.items()),
            detected_effects=", ".join(detected) or "none",
            effects="\n".join(f"- {t}: {n}" for t, n in names.items()),
            description=(description or "").strip() or "(none given)",
        )
        mime = mimetypes.guess_type(str(path))[0] or "video/mp4"
        size = Path(path).stat().st_size
        if size <= self.inline_max_bytes:
            inline = types.Part.from_bytes(data=Path(path).read_bytes(), mime_type=mime)
            result, usage = self._generate("analyze_video", ANALYSIS, schema, [inline, text])
        else:
            uploaded = self._upload_active(path, mime, display_name=key.video_sha256[:16])
            try:
                if not uploaded.uri:
                    raise GeminiUnavailable(f"upload {uploaded.name} is ACTIVE but has no uri")
                part = types.Part.from_uri(file_uri=uploaded.uri, mime_type=uploaded.mime_type or mime)
                result, usage = self._generate("analyze_video", ANALYSIS, schema, [part, text])
            finally:
                self._delete_quietly(uploaded.name)
        if self.cache is not None:
            self.cache.put(key, result.model_dump(mode="json"), usage.__dict__)
        return result, usage

    def _upload_active(self, path: str | Path, mime: str, display_name: str) -> types.File:
        """Upload through the Files API (resumable protocol) and wait until it is ACTIVE."""
        client = self._client()
        config = types.UploadFileConfig(mime_type=mime, display_name=display_name)
        uploaded = self._call("upload", client.files.upload, file=str(path), config=config)

        def state() -> types.File | None:
            current = self._call("file state", client.files.get, name=uploaded.name)
            if current.state == types.FileState.FAILED:
                detail = current.error.message if current.error else "no detail"
                raise GeminiUnavailable(f"upload {uploaded.name} failed processing: {detail}")
            return current if current.state == types.FileState.ACTIVE else None

        try:
            active = until_ready(self.file_timeout_s, self.file_poll_s)(state)
            assert active is not None  # until_ready returns the first non-None answer
            return active
        except PollTimeout as exc:
            self._delete_quietly(uploaded.name)
            raise GeminiUnavailable(f"upload {uploaded.name} not ACTIVE after {self.file_timeout_s:g} s") from exc
        except GeminiError:
            self._delete_quietly(uploaded.name)
            raise

    def _delete_quietly(self, name: str | None) -> None:
        """Delete an uploaded file now rather than when the API expires it (48 h); a failure
        only costs that wait, so it is logged, not raised."""
        if not name or self._sdk is None:
            return
        try:
            self._sdk.files.delete(name=name)
        except _api_or_transport() as exc:
            log.info("gemini: could not delete %s (%s); it expires on its own", name, _describe(exc))

    # -- M4 ---------------------------------------------------------------------------------

    def refine_prompt(
        self, template_prompt: str, analysis: Mapping[str, Any] | BaseModel, effect_type: str, effect: Mapping[str, Any]
    ) -> tuple[str, Usage]:
        """The template's prompt rewritten for this video (text only, not cached: one cheap
        request per variant).

        Args:
            template_prompt: the prompt M4 rendered from ``data/prompt_templates.yaml``.
            analysis: the video's analysis (a ``content_analysis`` row or a
                ``ContentAnalysisResult``).
            effect_type / effect: the effect and its catalog entry (``display_name``, ``params``).

        Returns:
            (prompt, usage).

        Raises:
            MissingApiKey, GeminiUnavailable, GeminiInvalidResponse: as ``analyze_video``.
        """
        self._client()
        facts = analysis.model_dump(mode="json") if isinstance(analysis, BaseModel) else dict(analysis)
        text = REFINE.render(
            effect_name=effect.get("display_name", effect_type),
            effect_type=effect_type,
            params=_json(effect.get("params", {})),
            template_prompt=template_prompt,
            analysis=_json(facts),
        )
        refined, usage = self._generate("refine_prompt", REFINE, RefinedPrompt, [text])
        return refined.prompt.strip(), usage

    # -- M7 ---------------------------------------------------------------------------------

    def judge(
        self,
        reference_frames: Sequence[np.ndarray | bytes],
        output_frames: Sequence[np.ndarray | bytes],
        effect_type: str,
        effect: Mapping[str, Any],
    ) -> tuple[JudgeVerdict, Usage]:
        """A vision judgement of an output against its reference.

        Args:
            reference_frames / output_frames: frames at the same relative instants (RGB uint8
                arrays (h, w, 3), or JPEG bytes); at most ``judge_max_frames`` of each are sent,
                spread evenly.
            effect_type / effect: the effect and its catalog entry.

        Returns:
            (verdict, usage): score and confidence are within 0..1 (validated, never clamped:
            an out-of-range answer is ``GeminiInvalidResponse``).

        Raises:
            ValueError: no frames on either side, or a frame that is not RGB uint8.
            MissingApiKey, GeminiUnavailable, GeminiInvalidResponse: as ``analyze_video``.
        """
        if not reference_frames or not output_frames:
            raise ValueError("the judge needs reference and output frames")
        self._client()

        def images(frames: Sequence[np.ndarray | bytes]) -> list[types.Part]:
            picked = _evenly(frames, self.judge_max_frames)
            return [types.Part.from_bytes(data=encode_frame(f), mime_type="image/jpeg") for f in picked]

        name = effect.get("display_name", effect_type)
        parts: list = [
            "Reference frames (the input video), in time order:",
            *images(reference_frames),
            "Output frames at the same instants:",
            *images(output_frames),
            JUDGE.render(effect_name=name, effect_type=effect_type, params=_json(effect.get("params", {}))),
        ]
        return self._generate("judge", JUDGE, JudgeVerdict, parts)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
