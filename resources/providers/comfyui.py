"""The ComfyUI provider: an HTTP client for ComfyUI's real API and the adapter built on it.

Shapes follow responses recorded from a real ComfyUI 0.3.64 (``tests/fixtures/comfyui-recorded/``):

* ``POST /upload/image`` (multipart ``image``, ``type=input``, ``overwrite="true"``)
  → ``{"name", "subfolder", "type"}``; videos use the same endpoint.
* ``POST /prompt`` ``{"prompt": graph, "client_id", "prompt_id"?, "extra_data"?}``
  → 200 ``{"prompt_id", "number", "node_errors"}`` or 400
  ``{"error": {"type", "message", "details", "extra_info"}, "node_errors": {...}}``.
* ``GET /history/{id}`` → ``{id: entry}``, or ``{}`` while queued/running or when unknown.
  ``entry["status"]["messages"]`` holds ``[event, data]`` pairs (``execution_start``,
  ``execution_cached``, ``execution_success`` | ``execution_error`` |
  ``execution_interrupted``) with millisecond ``timestamp``s; there are no per-node timings.
  ``SaveVideo`` lists its file under ``outputs[node]["images"]`` (with ``"animated": [true]``).
* ``GET /view?filename&subfolder&type`` → bytes, 404 (empty body) when missing.
* ``GET /queue``, ``GET /system_stats``, ``POST /queue {"delete": [...]}``, ``POST /interrupt``.

The module has four parts, each with one job: errors, :class:`ComfyUIClient` (HTTP only),
history parsing (pure functions over recorded shapes), :class:`WorkflowTemplate` (filling a
graph), and :class:`ComfyUIAdapter` (the provider protocol of ``base.py``).
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx

from resources.hashing import json_sha256
from resources.providers.base import Health, Located, ProviderTask, RemoteStatus, TaskResult
from resources.providers.resilience import account
from resources.retry import PollTimeout, transient_failures, until_ready

# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


class ComfyUIError(RuntimeError):
    """Base of every error this module raises about a ComfyUI server."""


class ComfyUIUnreachable(ComfyUIError):
    """The server could not be reached or did not answer in time (connect/read timeouts,
    refused connections, DNS failures): httpx transport errors."""


class ComfyUIHTTPError(ComfyUIError):
    """An unexpected HTTP status. ``status_code``, the first 500 chars of ``body`` and
    ``retry_after_s``, the seconds a ``Retry-After`` header asked for (a fleet's front answers
    429/503 with one; ComfyUI itself never sends it), else None."""

    def __init__(self, method: str, path: str, status_code: int, body: str, retry_after_s: float | None = None):
        super().__init__(f"{method} {path} answered {status_code}: {body[:500]!r}")
        self.status_code = status_code
        self.body = body
        self.retry_after_s = retry_after_s

    @property
    def busy(self) -> bool:
        """429 or 503: the server asks to come back later (a transient refusal)."""
        return self.status_code in (429, 503)


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    """Seconds of a ``Retry-After`` header (RFC 9110 §10.2.3: delay-seconds or an HTTP-date),
    None when absent or unreadable."""
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class AttemptsExhausted(ComfyUIError):
    """A task already has the maximum number of failed prompts; no new one is queued."""


class ComfyUIPromptError(ComfyUIError):
    """``POST /prompt`` answered 400: the server rejected the graph before running it.

    Attributes:
        type: ComfyUI's error type (``invalid_prompt``, ``prompt_no_outputs``, ``no_prompt``,
            ``prompt_outputs_failed_validation``).
        message: ComfyUI's top-level message (``"Prompt outputs failed validation"``).
        details: ComfyUI's top-level details (often empty).
        node_errors: ``{node_id: {"errors": [{type, message, details, extra_info}],
            "dependent_outputs": [...], "class_type": str}}``.
    """

    def __init__(
        self,
        type: str,
        message: str,
        node_errors: Mapping[str, Any] | None = None,
        details: str = "",
    ):
        self.type = type
        self.message = message
        self.details = details
        self.node_errors = dict(node_errors or {})
        super().__init__(self.readable())

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> ComfyUIPromptError:
        """Build from a recorded 400 body ``{"error": {...}, "node_errors": {...}}``."""
        error = body.get("error") or {}
        if isinstance(error, str):  # very old servers answered {"error": "text"}
            error = {"type": "invalid_prompt", "message": error}
        return cls(
            type=str(error.get("type") or "unknown"),
            message=str(error.get("message") or ""),
            node_errors=body.get("node_errors") or {},
            details=str(error.get("details") or ""),
        )

    def readable(self) -> str:
        """One line per problem, e.g. ``prompt_outputs_failed_validation: Prompt outputs
        failed validation; node 3 (ImageQuantize): Value 999 bigger than max of 256 (colors)``."""
        parts = [f"{self.type}: {self.message}".rstrip(": ")]
        if self.details:
            parts.append(self.details)
        for node_id, node in self.node_errors.items():
            for err in node.get("errors", []):
                detail = f" ({err['details']})" if err.get("details") else ""
                parts.append(f"node {node_id} ({node.get('class_type', '?')}): {err.get('message', '')}{detail}")
        return "; ".join(parts)


# ---------------------------------------------------------------------------------------------
# HTTP client
# ---------------------------------------------------------------------------------------------


class ComfyUIClient:
    """A thin, synchronous client for one ComfyUI server (thread-safe: one pooled httpx.Client).

    Args:
        base_url: e.g. ``http://gpu-7:8188`` (routes are also served under ``/api``; either
            form works as base).
        timeout_s: per-request timeout in seconds (connect, read and write).
        transport: optional httpx transport (tests replay recorded bodies through
            ``httpx.MockTransport``).

    Every method raises :class:`ComfyUIUnreachable` on transport errors and
    :class:`ComfyUIHTTPError` on unexpected statuses.
    """

    def __init__(
        self,
        base_url: str,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout_s, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ComfyUIClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ------------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:  # refused, DNS, timeouts, resets
            raise ComfyUIUnreachable(f"{method} {self.base_url}{path}: {type(exc).__name__}: {exc}") from exc

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = self._request(method, path, **kwargs)
        if resp.status_code != 200:
            raise ComfyUIHTTPError(method, path, resp.status_code, resp.text, retry_after_s(resp.headers))
        try:
            return resp.json()
        except ValueError as exc:
            raise ComfyUIHTTPError(method, path, resp.status_code, resp.text) from exc

    # -- API -----------------------------------------------------------------------------------

    def upload_file(
        self,
        path: str | os.PathLike[str],
        name: str | None = None,
        subfolder: str = "",
        overwrite: bool = True,
    ) -> dict[str, str]:
        """Upload a local file into the server's ``input`` folder.

        Args:
            path: local file (image or video).
            name: file name on the server (default: the local name).
            subfolder: subfolder of ``input`` (empty = top level, which ``LoadVideo`` lists).
            overwrite: replace a same-named file (otherwise ComfyUI renames to ``x (1).mp4``).

        Returns:
            ``{"name", "subfolder", "type"}`` as the server stored it.
        """
        path = Path(path)
        name = name or path.name
        data = {"type": "input", "overwrite": "true" if overwrite else "false"}
        if subfolder:
            data["subfolder"] = subfolder
        with path.open("rb") as fh:
            body = self._json(
                "POST",
                "/upload/image",
                data=data,
                files={"image": (name, fh, _content_type(name))},
            )
        return {"name": body["name"], "subfolder": body.get("subfolder", ""), "type": body.get("type", "input")}

    def queue_prompt(
        self,
        graph: Mapping[str, Any],
        client_id: str,
        prompt_id: str | None = None,
        extra_data: Mapping[str, Any] | None = None,
    ) -> str:
        """Queue an API-format graph; return its prompt id.

        Raises:
            ComfyUIPromptError: 400, the graph was rejected (built from the body).
            ComfyUIHTTPError: other statuses (e.g. the plain-text 500 for a non-JSON body).
        """
        payload: dict[str, Any] = {"prompt": dict(graph), "client_id": client_id}
        if prompt_id:
            payload["prompt_id"] = prompt_id
        if extra_data:
            payload["extra_data"] = dict(extra_data)
        resp = self._request("POST", "/prompt", json=payload)
        if resp.status_code == 400:
            try:
                body = resp.json()
            except ValueError:
                raise ComfyUIHTTPError("POST", "/prompt", 400, resp.text) from None
            raise ComfyUIPromptError.from_body(body)
        if resp.status_code != 200:
            raise ComfyUIHTTPError("POST", "/prompt", resp.status_code, resp.text, retry_after_s(resp.headers))
        return str(resp.json()["prompt_id"])

    def history(self, prompt_id: str) -> dict[str, Any] | None:
        """The history entry of one prompt, or None while queued/running or when unknown
        (ComfyUI answers ``{}`` with 200 in all those cases)."""
        body = self._json("GET", f"/history/{prompt_id}")
        entry = body.get(prompt_id) if isinstance(body, dict) else None
        return entry or None

    def view(self, filename: str, subfolder: str = "", type: str = "output") -> bytes:
        """Bytes of a stored file. Raises ComfyUIHTTPError (404) when missing."""
        resp = self._request("GET", "/view", params=_view_params(filename, subfolder, type))
        if resp.status_code != 200:
            raise ComfyUIHTTPError("GET", f"/view?filename={filename}", resp.status_code, resp.text)
        return resp.content

    def download(self, filename: str, subfolder: str, type: str, dest: str | os.PathLike[str]) -> int:
        """Stream a stored file to ``dest`` (atomically: temp file then rename); return bytes.

        Streaming keeps big videos out of memory, which :meth:`view` does not.
        """
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.part")
        params = _view_params(filename, subfolder, type)
        try:
            with self._http.stream("GET", "/view", params=params) as resp:
                if resp.status_code != 200:
                    resp.read()
                    raise ComfyUIHTTPError("GET", f"/view?filename={filename}", resp.status_code, resp.text)
                size = 0
                with tmp.open("wb") as fh:
                    for chunk in resp.iter_bytes(1 << 20):
                        fh.write(chunk)
                        size += len(chunk)
        except httpx.TransportError as exc:
            tmp.unlink(missing_ok=True)
            # (``type`` is the folder-type argument here, hence __class__.)
            raise ComfyUIUnreachable(f"GET /view {filename}: {exc.__class__.__name__}: {exc}") from exc
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, dest)
        return size

    def system_stats(self, timeout_s: float | None = None) -> dict[str, Any]:
        """``{"system": {"comfyui_version", ...}, "devices": [{"name", "type", "vram_free"...}]}``
        (``timeout_s``: this request's own timeout instead of the client's)."""
        return self._json("GET", "/system_stats", **({"timeout": timeout_s} if timeout_s else {}))

    def queue(self) -> dict[str, Any]:
        """``{"queue_running": [[number, prompt_id, prompt, extra_data, outputs]],
        "queue_pending": [...]}``."""
        return self._json("GET", "/queue")

    def delete_from_queue(self, prompt_ids: Iterable[str]) -> None:
        """Remove pending prompts (running ones are not affected)."""
        resp = self._request("POST", "/queue", json={"delete": list(prompt_ids)})
        if resp.status_code != 200:
            raise ComfyUIHTTPError("POST", "/queue", resp.status_code, resp.text)

    def delete_history(self, prompt_ids: Iterable[str]) -> None:
        """Forget finished prompts (``POST /history {"delete": [...]}``): ComfyUI keeps every
        entry in memory until told, or until it restarts."""
        resp = self._request("POST", "/history", json={"delete": list(prompt_ids)})
        if resp.status_code != 200:
            raise ComfyUIHTTPError("POST", "/history", resp.status_code, resp.text)

    def blank_file(self, name: str, subfolder: str = "", type: str = "input") -> None:
        """Free a stored file's bytes: ComfyUI 0.3.64 has no route that deletes a file, so it
        is overwritten with an empty one through ``POST /upload/image`` (which writes into
        ``input``, ``output`` or ``temp``); the name stays, zero bytes long."""
        data = {"type": type, "overwrite": "true"}
        if subfolder:
            data["subfolder"] = subfolder
        body = self._json("POST", "/upload/image", data=data, files={"image": (name, b"", _content_type(name))})
        if body.get("name") != name:
            raise ComfyUIHTTPError("POST", "/upload/image", 200, f"stored as {body.get('name')!r}, not {name!r}")

    def interrupt(self, prompt_id: str | None = None) -> None:
        """Interrupt the running prompt; with ``prompt_id``, only if that one is running."""
        resp = self._request("POST", "/interrupt", json={"prompt_id": prompt_id} if prompt_id else {})
        if resp.status_code != 200:
            raise ComfyUIHTTPError("POST", "/interrupt", resp.status_code, resp.text)


def _view_params(filename: str, subfolder: str, type: str) -> dict[str, str]:
    return {"filename": filename, "subfolder": subfolder or "", "type": type or "output"}


def _content_type(name: str) -> str:
    import mimetypes

    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def queued_prompt_ids(queue_body: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    """``(running_ids, pending_ids)`` from a ``GET /queue`` body."""
    running = {str(item[1]) for item in queue_body.get("queue_running", []) if len(item) > 1}
    pending = {str(item[1]) for item in queue_body.get("queue_pending", []) if len(item) > 1}
    return running, pending


# ---------------------------------------------------------------------------------------------
# History parsing (pure)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExecutionError:
    """The ``execution_error`` event data of a failed prompt (or ``execution_interrupted``,
    which has no exception: ``exception_type`` is then ``"Interrupted"``)."""

    node_id: str | None
    node_type: str | None
    exception_type: str
    exception_message: str
    traceback: tuple[str, ...] = ()


@dataclass(frozen=True)
class HistoryOutcome:
    """What one history entry says about its prompt.

    Attributes:
        status: ``success``, ``error`` or ``interrupted`` (entries exist only once done).
        start_ms / end_ms: server epoch milliseconds of ``execution_start`` and of the final
            event (success, error or interrupt); None when the event is missing.
        cached_nodes: node ids served from ComfyUI's cache (all of them = no work was done).
        outputs: ``{node_id: {"images": [{"filename", "subfolder", "type"}], ...}}``.
        error: set when status is not ``success``.
    """

    status: str
    start_ms: int | None
    end_ms: int | None
    cached_nodes: tuple[str, ...]
    outputs: dict[str, Any]
    error: ExecutionError | None = None

    @property
    def execution_seconds(self) -> float:
        """Server-side seconds from start to the final event (0 when unknown)."""
        if self.start_ms is None or self.end_ms is None:
            return 0.0
        return max(0, self.end_ms - self.start_ms) / 1000.0


def parse_history_entry(entry: Mapping[str, Any]) -> HistoryOutcome:
    """Read one ``GET /history/{id}`` entry (the value under the prompt id)."""
    status = entry.get("status") or {}
    events: dict[str, Mapping[str, Any]] = {}
    for message in status.get("messages") or []:
        if isinstance(message, (list, tuple)) and len(message) == 2:
            events[str(message[0])] = message[1] or {}
    start = events.get("execution_start", {}).get("timestamp")
    cached = tuple(str(n) for n in events.get("execution_cached", {}).get("nodes", []))
    outputs = dict(entry.get("outputs") or {})

    def outcome(status: str, final: Mapping[str, Any] | None, error: ExecutionError | None = None) -> HistoryOutcome:
        # ``final``: the data of the event that ended the prompt (its timestamp), None if absent.
        end_ms = final.get("timestamp") if final is not None else None
        return HistoryOutcome(status, start, end_ms, cached_nodes=cached, outputs=outputs, error=error)

    def node_error(
        data: Mapping[str, Any], exception_type: str, message: str, traceback: Sequence[str] = ()
    ) -> ExecutionError:
        node_id, node_type = _opt_str(data.get("node_id")), _opt_str(data.get("node_type"))
        return ExecutionError(node_id, node_type, exception_type, message, tuple(traceback))

    if "execution_error" in events:
        data = events["execution_error"]
        error = node_error(
            data,
            str(data.get("exception_type") or "ComfyUIExecutionError"),
            str(data.get("exception_message") or "").strip(),
            data.get("traceback") or (),
        )
        return outcome("error", data, error)
    if "execution_interrupted" in events:
        data = events["execution_interrupted"]
        return outcome("interrupted", data, node_error(data, "Interrupted", "execution was interrupted"))
    if status.get("status_str") == "success" or "execution_success" in events:
        return outcome("success", events.get("execution_success", {}))
    # An entry without a final event (should not happen on 0.3.64): report what we know.
    message = f"prompt ended with status {status.get('status_str')!r}"
    return outcome("error", None, ExecutionError(None, None, "ComfyUIExecutionError", message))


# Output lists a node may use for a saved file: core SaveVideo/SaveImage use "images" (even
# for video), some custom nodes "videos" or "gifs" (VideoHelperSuite).
_OUTPUT_KEYS = ("images", "videos", "gifs")


def find_output_file(outputs: Mapping[str, Any], node_id: str | None = None) -> dict[str, str] | None:
    """The first saved file ``{"filename", "subfolder", "type"}`` of ``node_id`` (or of any
    node when None, preferring animated/video outputs), else None."""
    nodes = [node_id] if node_id is not None else list(outputs)
    candidates: list[dict[str, str]] = []
    for nid in nodes:
        node_out = outputs.get(nid) or {}
        for key in _OUTPUT_KEYS:
            for item in node_out.get(key) or []:
                if isinstance(item, Mapping) and item.get("filename"):
                    file = {
                        "filename": str(item["filename"]),
                        "subfolder": str(item.get("subfolder") or ""),
                        "type": str(item.get("type") or "output"),
                    }
                    if node_out.get("animated") or key != "images":
                        return file
                    candidates.append(file)
    return candidates[0] if candidates else None


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


# ---------------------------------------------------------------------------------------------
# Workflow templates
# ---------------------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)?)\s*\}\}")
_VIDEO_OUTPUT_CLASSES = ("SaveVideo", "SaveWEBM", "SaveAnimatedWEBP", "VHS_VideoCombine")


class WorkflowTemplateError(ValueError):
    """The template is malformed or a placeholder has no value."""


@dataclass(frozen=True)
class WorkflowTemplate:
    """An API-format ComfyUI graph with placeholders.

    A string value that is exactly one placeholder is replaced by the value itself, keeping its
    JSON type (``"{{param.levels}}"`` → ``6``); inside a longer string it is formatted in.

    Placeholders:
        ``{{input_video}}``: the uploaded input's name (``LoadVideo.file``).
        ``{{filename_prefix}}``: ``effectlake/<task>`` (``SaveVideo.filename_prefix``).
        ``{{prompt}}``: the task's prompt text (for generative workflows).
        ``{{param.NAME}}``: ``task.params[NAME]``, else ``defaults[NAME]``.

    Attributes:
        graph: ``{node_id: {"class_type", "inputs"}}`` with placeholders.
        defaults: parameter defaults.
        output_node: id of the node whose saved file is the result (the SaveVideo).
    """

    graph: dict[str, Any]
    defaults: dict[str, Any] = field(default_factory=dict)
    output_node: str = ""

    @classmethod
    def load(cls, source: Mapping[str, Any] | str | os.PathLike[str]) -> WorkflowTemplate:
        """From a path to a JSON document or from a mapping: either a bare graph or a document
        ``{"prompt": graph, "defaults"?: {...}, "output_node"?: id}`` (other keys ignored)."""
        if isinstance(source, (str, os.PathLike)):
            path = Path(source)
            try:
                source = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise WorkflowTemplateError(f"cannot read workflow {path}: {exc}") from exc
        if not isinstance(source, Mapping):
            raise WorkflowTemplateError("a workflow must be a JSON object")
        if "prompt" in source and isinstance(source["prompt"], Mapping):
            graph, defaults = dict(source["prompt"]), dict(source.get("defaults") or {})
            output_node = str(source.get("output_node") or "")
        else:
            graph, defaults, output_node = dict(source), {}, ""
        for node_id, node in graph.items():
            if not isinstance(node, Mapping) or "class_type" not in node:
                raise WorkflowTemplateError(f"node {node_id!r} has no class_type")
        if not output_node:
            saves = [nid for nid, n in graph.items() if n["class_type"] in _VIDEO_OUTPUT_CLASSES]
            if len(saves) != 1:
                raise WorkflowTemplateError(f"cannot tell the output node (video save nodes: {saves}); set output_node")
            output_node = saves[0]
        if output_node not in graph:
            raise WorkflowTemplateError(f"output_node {output_node!r} is not in the graph")
        if "input_video" not in cls._names(graph):
            raise WorkflowTemplateError("the workflow never uses {{input_video}}")
        return cls(graph=graph, defaults=defaults, output_node=output_node)

    @staticmethod
    def _names(value: Any) -> set[str]:
        if isinstance(value, str):
            return set(_PLACEHOLDER.findall(value))
        if isinstance(value, Mapping):
            return set().union(*(WorkflowTemplate._names(v) for v in value.values()))
        if isinstance(value, list):
            return set().union(*(WorkflowTemplate._names(v) for v in value))
        return set()

    def render(
        self,
        input_video: str,
        filename_prefix: str,
        params: Mapping[str, Any] | None = None,
        prompt: str = "",
    ) -> dict[str, Any]:
        """A concrete graph (a deep copy; the template is not changed).

        Raises:
            WorkflowTemplateError: a ``{{param.X}}`` has neither a task value nor a default, or
                an unknown placeholder is used.
        """
        values: dict[str, Any] = {
            "input_video": input_video,
            "filename_prefix": filename_prefix,
            "prompt": prompt,
        }
        merged = {**self.defaults, **(params or {})}

        def lookup(name: str) -> Any:
            if name.startswith("param."):
                key = name[len("param.") :]
                if key not in merged:
                    raise WorkflowTemplateError(f"no value for {{{{{name}}}}} (params: {sorted(merged)})")
                return merged[key]
            if name not in values:
                raise WorkflowTemplateError(f"unknown placeholder {{{{{name}}}}}")
            return values[name]

        def fill(value: Any) -> Any:
            if isinstance(value, str):
                whole = _PLACEHOLDER.fullmatch(value.strip())
                if whole:
                    return lookup(whole.group(1))
                return _PLACEHOLDER.sub(lambda m: str(lookup(m.group(1))), value)
            if isinstance(value, Mapping):
                return {k: fill(v) for k, v in value.items()}
            if isinstance(value, list):
                return [fill(v) for v in value]
            return value

        return fill(self.graph)


# ---------------------------------------------------------------------------------------------
# The adapter
# ---------------------------------------------------------------------------------------------

# Inputs that carry a sampler's random seed (KSampler: seed; KSamplerAdvanced: noise_seed).
_SEED_INPUTS = ("seed", "noise_seed")
# Fixed namespace so prompt ids derived from task ids are stable across processes and releases.
_PROMPT_NAMESPACE = uuid.UUID("6b1f3c52-7d0e-4c1b-9a51-2f0de7c3a9e4")
# How many fresh prompts one task may get after earlier ones failed (attempt numbers).
_MAX_ATTEMPTS = 20
# A health probe that takes longer is a failed one: a server that cannot answer GET
# /system_stats within it is not taking work either, and the economics cycle must not wait
# on it for the client's whole request timeout.
HEALTH_TIMEOUT_S = 5.0
# Consecutive unreachable polls ``execute`` rides out before failing the task.
_UNREACHABLE_POLLS = 3


def prompt_id_for(task_id: str, attempt: int = 1) -> str:
    """The prompt id of a task's ``attempt`` (1 = first): a UUIDv5 of the task id, so a
    retried submit finds its earlier prompt instead of queueing a second GPU run."""
    name = task_id if attempt == 1 else f"{task_id}#attempt-{attempt}"
    return str(uuid.uuid5(_PROMPT_NAMESPACE, name))


def _now_ms() -> int:
    # Epoch (not monotonic) milliseconds: handles are polled by other processes (the
    # completion sensor) and compared with the server's epoch timestamps.
    return int(time.time() * 1000)


def _safe_name(task_id: str) -> str:
    """A file-name-safe, collision-resistant stem for a task id."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", task_id).strip("._")[:60] or "task"
    return f"{stem}-{uuid.uuid5(_PROMPT_NAMESPACE, task_id).hex[:8]}"


class ComfyUIAdapter:
    """Runs an effect as a ComfyUI workflow on a remote server (``ProviderAdapter``).

    Args:
        provider_id: registry id, e.g. ``comfyui-cartoon-l4``.
        base_url: the server (or fleet load balancer), e.g. ``http://gpu-fleet:8188``.
        effect_types: catalog effect types this workflow produces, e.g. ``["cartoon"]``.
        workflow: a :class:`WorkflowTemplate`, a path to its JSON (e.g.
            ``data/workflows/comfyui_cartoon.json``) or the mapping itself.
        instance_type: rate-card instance type of the fleet (``gpu-l4``, ``gpu-a10g``…).
        gpu_usd_per_second: optional contracted GPU rate overriding the rate card; kept for
            the cost model (``TaskResult`` carries seconds, not dollars).
        partner_cost_usd_per_call: billed per executed prompt (hosted ComfyUI services);
            reported as ``partner_cost_usd`` on results whose prompt actually ran.
        timeout_s: ``execute`` gives up (and cancels the prompt) after this many seconds.
        cancel_grace_s: after cancelling, ``execute`` waits up to this long for the prompt's
            final record, so a timed-out task reports the compute the server really spent.
        poll_interval_s: seconds between history polls in ``execute``.
        request_timeout_s: per-HTTP-request timeout.
        client: an existing :class:`ComfyUIClient` (tests); otherwise one is made.

    Handles (``submit`` → ``poll``) are JSON strings ``{"prompt_id", "task_id", "attempt",
    "output_path", "output_node", "submitted_at_ms", "queued_at_ms", "provider_id",
    "reused"}`` (epoch ms; ``reused`` = an earlier submit's prompt was found), or with
    ``"error": {"class", "message"}`` when the submit itself failed; ``poll`` then returns
    that failure.

    Telemetry: ``duration_ms`` = submit start → result downloaded (this machine's clock);
    ``queue_wait_ms`` = prompt accepted → server's ``execution_start`` (clamped at 0: the two
    clocks may differ); ``compute_seconds`` = ``execution_start`` → final event, both server
    timestamps (GPU seconds; ~0 when ComfyUI served everything from cache); ``node_timings``
    stays empty because ComfyUI reports none. Neither ``submit``,
    ``poll`` nor ``execute`` raises for task or server failures.
    """

    adapter_kind = "comfyui"

    def __init__(
        self,
        provider_id: str,
        base_url: str,
        effect_types: Iterable[str],
        workflow: WorkflowTemplate | Mapping[str, Any] | str | os.PathLike[str],
        instance_type: str = "gpu-l4",
        gpu_usd_per_second: float | None = None,
        partner_cost_usd_per_call: float = 0.0,
        *,
        timeout_s: float = 900.0,
        poll_interval_s: float = 2.0,
        request_timeout_s: float = 30.0,
        cancel_grace_s: float = 60.0,
        client: ComfyUIClient | None = None,
        provider: Mapping[str, Any] | None = None,
    ):
        self.provider_id = provider_id
        self.base_url = base_url.rstrip("/")
        self.effect_types = frozenset(effect_types)
        self.template = workflow if isinstance(workflow, WorkflowTemplate) else WorkflowTemplate.load(workflow)
        self.instance_type = instance_type
        self.gpu_usd_per_second = gpu_usd_per_second
        self.partner_cost_usd_per_call = float(partner_cost_usd_per_call)
        self.timeout_s = timeout_s
        self.poll_interval_s = poll_interval_s
        self.cancel_grace_s = cancel_grace_s
        self.client = client or ComfyUIClient(self.base_url, timeout_s=request_timeout_s)
        # One stable client id per provider: ComfyUI routes websocket events by it and shows it
        # in history, which makes our prompts easy to find on a shared fleet.
        self.client_id = f"effectlake-{provider_id}"
        # The registry entry as data (render specs record it); built from the arguments when
        # the adapter was made without a registry (tests).
        self.provider = (
            dict(provider)
            if provider is not None
            else {
                "provider_id": provider_id,
                "adapter": self.adapter_kind,
                "base_url": self.base_url,
                "effect_types": sorted(self.effect_types),
                "instance_type": instance_type,
                "timeout_seconds": timeout_s,
            }
        )

    @classmethod
    def from_spec(
        cls,
        spec: Mapping[str, Any],
        project_root: str | os.PathLike[str] | None = None,
        **overrides: Any,
    ) -> ComfyUIAdapter:
        """Build from a registry entry: keys ``provider_id``, ``base_url``, ``effect_types``,
        ``workflow`` (path, relative to ``project_root``), and optionally ``instance_type``,
        ``gpu_usd_per_second``, ``partner_cost_usd_per_call``, ``timeout_s``,
        ``poll_interval_s``, ``request_timeout_s``. Unknown keys are ignored."""
        workflow = spec["workflow"]
        if isinstance(workflow, (str, os.PathLike)) and project_root is not None:
            workflow = Path(project_root) / workflow
        optional = (
            "instance_type",
            "gpu_usd_per_second",
            "partner_cost_usd_per_call",
            "timeout_s",
            "poll_interval_s",
            "request_timeout_s",
        )
        kwargs = {k: spec[k] for k in optional if spec.get(k) is not None}
        kwargs.update(overrides)
        return cls(
            provider_id=spec["provider_id"],
            base_url=spec["base_url"],
            effect_types=spec["effect_types"],
            workflow=workflow,
            **kwargs,
        )

    # -- protocol ------------------------------------------------------------------------------

    def supports(self, effect_type: str) -> bool:
        return effect_type in self.effect_types

    def submit(self, task: ProviderTask) -> str:
        """Upload the input, fill the workflow and queue it; return the handle.

        Idempotent per task: the prompt id is derived from the task id, and a submit whose
        prompt is already queued, running or done successfully returns the same handle without
        uploading or queueing again. If that prompt failed, the next attempt's id is used.
        Failures (unreachable server, rejected graph, missing input) are put in the handle.
        """
        submitted_at = _now_ms()
        handle: dict[str, Any] = {
            "v": 1,
            "provider_id": self.provider_id,
            "task_id": task.task_id,
            "output_path": task.output_path,
            "output_node": self.template.output_node,
            "submitted_at_ms": submitted_at,
        }
        try:
            attempt, prompt_id, already, finished = self._claim_prompt(task.task_id, task.attempt)
            handle.update(attempt=attempt, prompt_id=prompt_id, reused=already, finished_before_submit=finished)
            if not already:
                graph, handle["input"] = self._render(task)
                self.client.queue_prompt(
                    graph,
                    client_id=self.client_id,
                    prompt_id=prompt_id,
                    extra_data={"effectlake": {"task_id": task.task_id, "provider_id": self.provider_id}},
                )
            # Queue wait is measured from here: the upload before it is transfer, not waiting.
            handle["queued_at_ms"] = _now_ms()
        except ComfyUIUnreachable as exc:
            handle["error"] = {"class": "ProviderUnreachable", "message": str(exc)}
        except ComfyUIPromptError as exc:
            handle["error"] = {"class": "ComfyUIPromptError", "message": exc.readable()}
        except ComfyUIHTTPError as exc:
            handle["error"] = {
                "class": "ProviderBusy" if exc.busy else "ComfyUIHTTPError",
                "message": str(exc),
                "retry_after_s": exc.retry_after_s,
            }
        except WorkflowTemplateError as exc:
            handle["error"] = {"class": "WorkflowTemplateError", "message": str(exc)}
        except AttemptsExhausted as exc:
            handle["error"] = {"class": "AttemptsExhausted", "message": str(exc)}
        except FileNotFoundError as exc:
            handle["error"] = {"class": "InputMissing", "message": str(exc)}
        if "error" in handle:
            handle["failed_at_ms"] = _now_ms()
        return json.dumps(handle, sort_keys=True)

    def recipe(self, task: ProviderTask) -> dict[str, Any]:
        """``{"kind": "comfyui", "graph", "graph_sha256", "template_sha256", "seeds"}``: the
        API-format graph this task queues (its uploaded input and output prefix as
        ``{{input_video}}`` / ``{{filename_prefix}}``, which differ per run), its hash, the
        template's hash, and every ``seed`` / ``noise_seed`` input of the graph by
        ``<node id>.<input>`` (ComfyUI's samplers are reproducible given their seed).

        Raises:
            WorkflowTemplateError: a parameter has no value.
        """
        graph = self.template.render(
            input_video="{{input_video}}", filename_prefix="{{filename_prefix}}", params=task.params, prompt=task.prompt
        )
        seeds = {
            f"{node_id}.{name}": value
            for node_id, node in graph.items()
            for name, value in (node.get("inputs") or {}).items()
            if name in _SEED_INPUTS and not isinstance(value, list)  # a list is a link to another node
        }
        template = {"graph": self.template.graph, "defaults": self.template.defaults}
        return {
            "kind": "comfyui",
            "graph": graph,
            "graph_sha256": json_sha256(graph),
            "template_sha256": json_sha256(template),
            "seeds": seeds,
        }

    def poll(self, handle: str) -> TaskResult | None:
        """None while the prompt is queued or running; else the TaskResult (output downloaded
        to ``output_path`` on success). Connection errors give a failed result with
        ``error_class="ProviderUnreachable"``."""
        try:
            h = json.loads(handle)
            h["task_id"], h["submitted_at_ms"]
        except (ValueError, TypeError, KeyError) as exc:
            return self._failed({}, "BadHandle", f"not a ComfyUI handle: {exc}")
        try:
            return self._poll_once(h)
        except ComfyUIUnreachable as exc:
            return self._failed(h, "ProviderUnreachable", str(exc))
        except ComfyUIHTTPError as exc:
            return self._failed(h, "ComfyUIHTTPError", str(exc))

    def execute(self, task: ProviderTask) -> TaskResult:
        """Submit, then poll every ``poll_interval_s`` until done or ``timeout_s``.

        Up to 3 consecutive unreachable polls are tolerated (a blip should not fail a GPU job
        that is still running), each ``poll_interval_s`` after the last; on timeout the prompt
        is removed from the queue or interrupted.
        """
        handle = self.submit(task)
        h = json.loads(handle)
        if "error" in h:
            return self._failed(h, h["error"]["class"], h["error"]["message"])
        # One poll = up to 1 + _UNREACHABLE_POLLS tries while the server does not answer.
        poll = transient_failures(
            lambda exc: isinstance(exc, ComfyUIUnreachable), 1 + _UNREACHABLE_POLLS, self.poll_interval_s
        )
        try:
            return until_ready(self.timeout_s, self.poll_interval_s)(poll, self._poll_once, h)
        except ComfyUIUnreachable as exc:
            return self._failed(h, "ProviderUnreachable", str(exc))
        except ComfyUIHTTPError as exc:
            return self._failed(h, "ComfyUIHTTPError", str(exc))
        except PollTimeout:
            was_running = self._cancel(h["prompt_id"])
            message = f"prompt {h['prompt_id']} not done after {self.timeout_s:g} s"
            if not was_running:  # dropped from the queue: it never ran, so it cost nothing
                return self._failed(h, "Timeout", message)
            # The interrupt lands between nodes: the server keeps working until then, and
            # that work is paid. Wait (bounded) for its final record to account for it.
            try:
                entry = until_ready(self.cancel_grace_s, self.poll_interval_s)(self.client.history, h["prompt_id"])
                # until_ready answers only a non-None entry (else PollTimeout), which mypy cannot see.
                return self._failed(h, "Timeout", message, parse_history_entry(cast(dict[str, Any], entry)))
            except (PollTimeout, ComfyUIError):
                return self._failed(h, "Timeout", message)

    # -- the asynchronous path (RemoteAdapter) ------------------------------------------------

    def status(self, handle: str) -> RemoteStatus:
        """Where the prompt stands: its history entry when final, else the queue (queued or
        running), else ``lost``. Reads only; never downloads nor raises."""
        try:
            h = json.loads(handle)
        except (ValueError, TypeError) as exc:
            return RemoteStatus("refused", error_class="BadHandle", error_message=str(exc))
        if "error" in h:
            err = h["error"]
            return RemoteStatus(
                "refused",
                error_class=err["class"],
                error_message=err["message"],
                retry_after_s=err.get("retry_after_s"),
            )
        prompt_id = h["prompt_id"]
        try:
            entry = self.client.history(prompt_id)
            if entry is None:
                running, pending = queued_prompt_ids(self.client.queue())
                if prompt_id in running:
                    return RemoteStatus("running")
                if prompt_id in pending:
                    return RemoteStatus("queued")
                entry = self.client.history(prompt_id)  # it may have finished between the reads
                if entry is None:
                    return RemoteStatus(
                        "lost",
                        error_class="PromptLost",
                        error_message=f"ComfyUI at {self.base_url} has no record of prompt {prompt_id} "
                        "(server restarted or history cleared)",
                    )
        except ComfyUIError as exc:
            return RemoteStatus("unreachable", error_class="ProviderUnreachable", error_message=str(exc))
        outcome = parse_history_entry(entry)
        if outcome.status != "success":
            err = outcome.error
            assert err is not None
            where = f" [node {err.node_id} {err.node_type}]" if err.node_id else ""
            return RemoteStatus(
                "done",
                outcome.start_ms,
                outcome.end_ms,
                succeeded=False,
                interrupted=outcome.status == "interrupted",
                error_class=err.exception_type,
                error_message=f"{err.exception_message}{where}",
            )
        file = find_output_file(outcome.outputs, h.get("output_node")) or find_output_file(outcome.outputs)
        if file is None:
            return RemoteStatus(
                "done",
                outcome.start_ms,
                outcome.end_ms,
                error_class="NoOutput",
                error_message=f"prompt {prompt_id} succeeded but saved no video (outputs: {sorted(outcome.outputs)})",
            )
        return RemoteStatus("done", outcome.start_ms, outcome.end_ms, succeeded=True, output=file)

    def cancel(self, handle: str) -> None:
        """Drop the prompt from the queue, or interrupt it if running (best effort: the
        interrupt lands between nodes, so the prompt may still end in success)."""
        h = json.loads(handle)
        if "prompt_id" in h:
            self._cancel(h["prompt_id"])

    def fetch(self, handle: str, output: dict[str, str], dest: str) -> int:
        """Download the output file to ``dest`` (atomically); its bytes.

        Raises:
            ComfyUIHTTPError: 404 when the file is gone; ComfyUIUnreachable.
        """
        return self.client.download(output["filename"], output["subfolder"], output["type"], dest)

    def cleanup(self, handle: str, output: dict[str, str] | None) -> None:
        """Free what the task left on the server: the uploaded input and the output (blanked:
        ComfyUI has no delete route for files, see ``ComfyUIClient.blank_file``) and the
        prompt's history entry. Best effort per item: one that fails does not stop the rest.

        Raises:
            ComfyUIError: the first item that could not be cleaned (after trying them all).
        """
        h = json.loads(handle)
        steps = []
        if h.get("input"):
            steps.append(lambda: self.client.blank_file(h["input"]["filename"], h["input"]["subfolder"], "input"))
        if output:
            steps.append(lambda: self.client.blank_file(output["filename"], output["subfolder"], output["type"]))
        if h.get("prompt_id"):
            steps.append(lambda: self.client.delete_history([h["prompt_id"]]))
        failed: list[ComfyUIError] = []
        for step in steps:
            try:
                step()
            except ComfyUIError as exc:
                failed.append(exc)
        if failed:
            raise failed[0]

    def locate(self, task_id: str, attempt: int) -> Located:
        """Whether the server has the prompt of ``task_id``'s ``attempt`` (its id is
        ``prompt_id_for``, so no handle is needed to find it): in the queue or in history →
        known, with a handle naming the prompt and the input file the submit uploads (for
        clean-up); neither → not known; no answer → ``known=None``."""
        prompt_id = prompt_id_for(task_id, attempt)
        try:
            running, pending = queued_prompt_ids(self.client.queue())
            where = "running" if prompt_id in running else "queued" if prompt_id in pending else None
            if where is None and self.client.history(prompt_id) is not None:
                where = "finished"
        except ComfyUIError as exc:
            return Located(None, detail=f"{type(exc).__name__}: {exc}")
        if where is None:
            return Located(False, detail=f"ComfyUI at {self.base_url} has no prompt {prompt_id}")
        now = _now_ms()
        handle = {
            "v": 1,
            "provider_id": self.provider_id,
            "task_id": task_id,
            "attempt": attempt,
            "prompt_id": prompt_id,
            "output_path": "",
            "output_node": self.template.output_node,
            "submitted_at_ms": now,
            "queued_at_ms": now,
            "reused": True,
            "finished_before_submit": False,
            # The name ``_render`` uploads under (``.mp4``: M6 sends proxies and reference clips).
            "input": {"filename": f"effectlake_{_safe_name(task_id)}.mp4", "subfolder": "", "type": "input"},
            "located": where,
        }
        return Located(True, json.dumps(handle, sort_keys=True), f"prompt {prompt_id} is {where}")

    def health_check(self) -> Health:
        """``GET /system_stats``: ok with the ComfyUI version and device, or not ok with why."""
        started = time.perf_counter()
        try:
            stats = self.client.system_stats(timeout_s=HEALTH_TIMEOUT_S)
            latency = int((time.perf_counter() - started) * 1000)
            devices = stats.get("devices") or []
            if not devices:
                return Health(False, "ComfyUI answered but reports no device", latency)
            dev = devices[0]
            free_gib = (dev.get("vram_free") or 0) / 2**30
            total_gib = (dev.get("vram_total") or 0) / 2**30
            version = (stats.get("system") or {}).get("comfyui_version", "?")
            return Health(
                True,
                f"ComfyUI {version} on {dev.get('name')} ({dev.get('type')}), "
                f"VRAM free {free_gib:.1f}/{total_gib:.1f} GiB",
                latency,
            )
        except (ComfyUIError, ValueError, AttributeError) as exc:
            latency = int((time.perf_counter() - started) * 1000)
            return Health(False, f"{type(exc).__name__}: {exc}", latency)

    def close(self) -> None:
        self.client.close()

    # -- internals -----------------------------------------------------------------------------

    def _claim_prompt(self, task_id: str, first: int = 1) -> tuple[int, str, bool, bool]:
        """``(attempt, prompt_id, already_submitted, already_finished)`` for a task
        (``already_finished``: its prompt had succeeded before this submit — an earlier
        submit's work, charged there).

        The queue is read before history: a prompt that finishes in between moves from the
        queue into history under ComfyUI's queue lock, so it is seen in one or the other.
        """
        running, pending = queued_prompt_ids(self.client.queue())
        for attempt in range(max(1, first), _MAX_ATTEMPTS + 1):
            prompt_id = prompt_id_for(task_id, attempt)
            if prompt_id in running or prompt_id in pending:
                return attempt, prompt_id, True, False
            entry = self.client.history(prompt_id)
            if entry is None:
                return attempt, prompt_id, False, False
            if parse_history_entry(entry).status == "success":
                return attempt, prompt_id, True, True
            # That attempt failed: a retry deserves a fresh prompt (and a fresh history entry).
        raise AttemptsExhausted(f"task {task_id} already failed {_MAX_ATTEMPTS} prompts")

    def _render(self, task: ProviderTask) -> tuple[dict[str, Any], dict[str, str]]:
        """Upload the input and fill the workflow: (graph, the uploaded input's
        ``{"filename", "subfolder", "type"}``)."""
        src = Path(task.input_path)
        if not src.is_file():
            raise FileNotFoundError(f"input video {src} does not exist")
        stem = _safe_name(task.task_id)
        # Top-level input folder: LoadVideo only lists (and validates) files there.
        uploaded = self.client.upload_file(src, name=f"effectlake_{stem}{src.suffix or '.mp4'}")
        name = uploaded["name"]
        if uploaded.get("subfolder"):
            name = f"{uploaded['subfolder']}/{name}"
        graph = self.template.render(
            input_video=name,
            filename_prefix=f"effectlake/{stem}",
            params=task.params,
            prompt=task.prompt,
        )
        return graph, {"filename": uploaded["name"], "subfolder": uploaded.get("subfolder", ""), "type": "input"}

    def _poll_once(self, h: Mapping[str, Any]) -> TaskResult | None:
        """One poll; raises ComfyUIUnreachable / ComfyUIHTTPError."""
        if "error" in h:
            return self._failed(h, h["error"]["class"], h["error"]["message"])
        prompt_id = h["prompt_id"]
        entry = self.client.history(prompt_id)
        if entry is None:
            running, pending = queued_prompt_ids(self.client.queue())
            if prompt_id in running or prompt_id in pending:
                return None
            # Not queued: either it finished between the two reads, or the server lost it
            # (ComfyUI keeps queue and history in memory; a restart forgets both).
            entry = self.client.history(prompt_id)
            if entry is None:
                return self._failed(
                    h,
                    "PromptLost",
                    f"ComfyUI at {self.base_url} has no record of prompt {prompt_id} "
                    "(server restarted or history cleared)",
                )
        outcome = parse_history_entry(entry)
        if outcome.status != "success":
            err = outcome.error
            assert err is not None
            where = f" [node {err.node_id} {err.node_type}]" if err.node_id else ""
            return self._failed(h, err.exception_type, f"{err.exception_message}{where}", outcome)

        file = find_output_file(outcome.outputs, h.get("output_node")) or find_output_file(outcome.outputs)
        if file is None:
            return self._failed(
                h,
                "NoOutput",
                f"prompt {prompt_id} succeeded but saved no video (outputs: {sorted(outcome.outputs)})",
                outcome,
            )
        try:
            self.client.download(file["filename"], file["subfolder"], file["type"], h["output_path"])
        except ComfyUIHTTPError as exc:
            return self._failed(h, "OutputMissing", str(exc), outcome)
        return self._result(h, "succeeded", outcome, output_path=h["output_path"])

    def _result(
        self,
        h: Mapping[str, Any],
        status: str,
        outcome: HistoryOutcome | None,
        output_path: str | None = None,
        error_class: str | None = None,
        error_message: str | None = None,
    ) -> TaskResult:
        submitted = int(h.get("submitted_at_ms") or _now_ms())
        queue_wait = 0
        compute = 0.0
        partner = 0.0
        if outcome is not None:
            # GPU seconds = server-side execution span (ComfyUI reports no per-node timings, so
            # node_timings stays empty). Fully cached prompts did no work and report ~0. A
            # prompt that had finished before this submit was an earlier submit's work, charged
            # there: reporting its span again would charge it twice.
            spent = account(
                int(h.get("queued_at_ms") or submitted),
                outcome.start_ms,
                outcome.end_ms,
                reused=bool(h.get("finished_before_submit")),
            )
            compute, queue_wait = spent.compute_seconds, spent.queue_wait_ms
            partner = 0.0 if h.get("finished_before_submit") else self.partner_cost_usd_per_call
        return TaskResult(
            task_id=str(h.get("task_id", "")),
            status=status,
            output_path=output_path,
            # A submit that failed ended then, however late its handle is polled.
            duration_ms=max(0, int(h.get("failed_at_ms") or _now_ms()) - submitted),
            compute_seconds=compute,
            instance_type=self.instance_type,
            queue_wait_ms=queue_wait,
            partner_cost_usd=partner,
            attempts=int(h.get("attempt") or 1),
            error_class=error_class,
            error_message=error_message,
        )

    def _failed(
        self,
        h: Mapping[str, Any],
        error_class: str,
        message: str,
        outcome: HistoryOutcome | None = None,
    ) -> TaskResult:
        return self._result(h, "failed", outcome, error_class=error_class, error_message=message)

    def _cancel(self, prompt_id: str) -> bool:
        """Best effort: drop a pending prompt or interrupt it if running (frees the GPU).
        Returns whether it was running (so the server spent compute on it, to be accounted
        when its final record comes); False when it was still queued, gone, or the server
        did not answer."""
        try:
            running, pending = queued_prompt_ids(self.client.queue())
            if prompt_id in pending:
                self.client.delete_from_queue([prompt_id])
            elif prompt_id in running:
                self.client.interrupt(prompt_id)
                return True
        except ComfyUIError:
            pass
        return False


# ---------------------------------------------------------------------------------------------
# Several servers
# ---------------------------------------------------------------------------------------------


class ComfyUIFleet:
    """One provider served by several ComfyUI servers, each running one prompt at a time
    (``RemoteAdapter``). The store admits a task to one server with no prompt of ours
    (``resources.providers.resilience.assign_servers``; ``ProviderTask.server``); the fleet
    submits it there and names the server in the handle (``"server"``), so status, cancel,
    fetch and clean-up reach the server that has the prompt.

    Args:
        servers: one ``ComfyUIAdapter`` per server, in the registry's ``base_urls`` order.
    """

    adapter_kind = "comfyui"

    def __init__(self, servers: list[ComfyUIAdapter]):
        if not servers:
            raise ValueError("a ComfyUI fleet needs at least one server")
        self.servers = servers
        self.provider_id = servers[0].provider_id
        # The registry entry as the render spec records it (the servers share one entry).
        self.provider = servers[0].provider
        self.effect_types = servers[0].effect_types

    def _of(self, handle: str) -> tuple[ComfyUIAdapter, str]:
        try:
            index = int(json.loads(handle).get("server", 0))
        except (ValueError, TypeError, AttributeError):
            index = 0
        return self.servers[index % len(self.servers)], handle

    @staticmethod
    def _named(handle: str, index: int) -> str:
        h = json.loads(handle)
        h["server"] = index
        return json.dumps(h, sort_keys=True)

    def supports(self, effect_type: str) -> bool:
        return effect_type in self.effect_types

    def submit(self, task: ProviderTask) -> str:
        """Submit to the server the task was admitted to (``task.server``)."""
        index = task.server % len(self.servers)
        return self._named(self.servers[index].submit(task), index)

    def poll(self, handle: str) -> TaskResult | None:
        adapter, h = self._of(handle)
        return adapter.poll(h)

    def execute(self, task: ProviderTask) -> TaskResult:
        return self.servers[task.server % len(self.servers)].execute(task)

    def recipe(self, task: ProviderTask) -> dict[str, Any]:
        """The render recipe of the server the task was admitted to (the servers share one
        workflow, so any would give the same graph)."""
        return self.servers[task.server % len(self.servers)].recipe(task)

    def status(self, handle: str) -> RemoteStatus:
        adapter, h = self._of(handle)
        return adapter.status(h)

    def cancel(self, handle: str) -> None:
        adapter, h = self._of(handle)
        adapter.cancel(h)

    def fetch(self, handle: str, output: dict[str, str], dest: str) -> int:
        adapter, h = self._of(handle)
        return adapter.fetch(h, output, dest)

    def cleanup(self, handle: str, output: dict[str, str] | None) -> None:
        adapter, h = self._of(handle)
        adapter.cleanup(h, output)

    def locate(self, task_id: str, attempt: int) -> Located:
        """The first server that has the attempt; not known only when every server answered
        that it has not (one that does not answer leaves it open: ``known=None``)."""
        silent = False
        for index, adapter in enumerate(self.servers):
            found = adapter.locate(task_id, attempt)
            if found.known:
                assert found.handle is not None
                return Located(True, self._named(found.handle, index), f"server {index}: {found.detail}")
            silent = silent or found.known is None
        if silent:
            return Located(None, detail="a server did not answer")
        return Located(False, detail=f"none of the {len(self.servers)} servers has it")

    def health_check(self) -> Health:
        """Healthy while at least one server answers (it takes the work; admission still
        counts one prompt per server); the detail names each server's state."""
        checks = [a.health_check() for a in self.servers]
        up = sum(h.ok for h in checks)
        detail = f"{up}/{len(checks)} servers answer; " + "; ".join(
            f"{a.base_url}: {h.detail}" for a, h in zip(self.servers, checks, strict=True)
        )
        return Health(up > 0, detail, max(h.latency_ms for h in checks))

    def close(self) -> None:
        for adapter in self.servers:
            adapter.close()
