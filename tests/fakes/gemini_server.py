"""A Gemini Developer API test double that speaks the REST protocol google-genai 3.x uses.

``FakeGemini(api_key)`` is a real HTTP/1.1 server (stdlib ``ThreadingHTTPServer`` on
``127.0.0.1``, a free port, one thread per connection) started and stopped by the test (a
context manager; ``stop`` closes open keep-alive connections and joins every thread). Routes,
as the SDK calls them (``v1`` and ``v1beta`` both accepted, the SDK's ``api_version``):

=============================================  ================================================
``POST /upload/{v}/files``                     resumable start: ``X-Goog-Upload-Protocol:
                                               resumable``, ``X-Goog-Upload-Command: start``,
                                               ``X-Goog-Upload-Header-Content-Length`` /
                                               ``-Content-Type``, body ``{"file": {...}}`` →
                                               ``X-Goog-Upload-URL`` (+ ``-Status: active``)
``POST /upload/{v}/files?upload_id=…``         ``X-Goog-Upload-Command: upload[, finalize]``
                                               at ``X-Goog-Upload-Offset``; finalize →
                                               ``X-Goog-Upload-Status: final`` and
                                               ``{"file": File}`` (state PROCESSING)
``GET /{v}/files/{id}``                        the File; PROCESSING for ``processing_polls``
                                               reads, then ACTIVE (or FAILED on request)
``DELETE /{v}/files/{id}``                     ``{}``
``POST /{v}/models/{model}:generateContent``   a candidate whose text is JSON valid against
                                               ``generationConfig.responseSchema`` (made
                                               deterministically from the schema and a hash of
                                               the request), plus ``usageMetadata``
=============================================  ================================================

The SDK sends the API key as ``x-goog-api-key`` (``?key=`` is accepted too); the upload's
second leg carries none (the upload id authorizes it), as with Google. Keys of request bodies
are accepted in both the proto JSON form (``fileData``, ``responseSchema``) and the field-name
form the SDK writes inside parts and schemas (``file_uri``, ``property_ordering``). Errors
have Google's shape ``{"error": {"code", "message", "status", "details"}}``: 400
INVALID_ARGUMENT (malformed request, bad key, unsupported schema), 400 FAILED_PRECONDITION
(a file that is not ACTIVE), 403 PERMISSION_DENIED (no key), 404 NOT_FOUND.

Token counts are the fake's own deterministic estimates (text: a token per 4 characters;
image: 258; video: 300 per started 250 kB), not Google's tokenizer.

Knobs for tests: :meth:`fail` (the next n requests of an operation get 400 / 429 with
``Retry-After`` and ``RetryInfo`` / 500 / 503), :meth:`answer_next` (the next answer's text,
e.g. JSON out of the schema's ranges), ``processing_polls``, ``fail_processing``,
``thoughts_tokens``, ``delay_s`` (every generateContent answers that much later);
:attr:`requests` records every request (method, path, headers, JSON body) and
:meth:`count` counts them by operation; :attr:`crashes` keeps the fake's own exceptions
(answered as an empty 500) for the test to fail on.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
import random
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
OPERATIONS = ("upload", "files.get", "files.delete", "generateContent")
_VERSION = r"(v1|v1beta)"


class ApiError(Exception):
    """An error answer: HTTP status, Google status name, message, details, extra headers."""

    def __init__(self, code: int, message: str, status: str | None = None, details=None, headers=None):
        super().__init__(message)
        self.code = code
        self.status = status or STATUS_NAMES.get(code, "UNKNOWN")
        self.message = message
        self.details = details or []
        self.headers = headers or {}

    def body(self) -> dict:
        error = {"code": self.code, "message": self.message, "status": self.status}
        if self.details:
            error["details"] = self.details
        return {"error": error}


@dataclass
class Recorded:
    """One request as the fake received it (``headers`` with lower-case names)."""

    operation: str
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body_bytes: int
    json: Any = None


@dataclass
class _Upload:
    declared_size: int
    mime_type: str
    display_name: str | None
    data: bytearray = field(default_factory=bytearray)


@dataclass
class _File:
    id: str
    mime_type: str
    display_name: str | None
    size: int
    sha256: str
    created: datetime
    polls_left: int
    fails: bool
    deleted: bool = False

    def resource(self, base_url: str, version: str) -> dict:
        state = "PROCESSING" if self.polls_left > 0 else ("FAILED" if self.fails else "ACTIVE")
        res = {
            "name": f"files/{self.id}",
            "mimeType": self.mime_type,
            "sizeBytes": str(self.size),  # int64 is a string in proto JSON
            "createTime": self.created.isoformat().replace("+00:00", "Z"),
            "updateTime": self.created.isoformat().replace("+00:00", "Z"),
            "expirationTime": (self.created + timedelta(hours=48)).isoformat().replace("+00:00", "Z"),
            "sha256Hash": base64.b64encode(self.sha256.encode()).decode(),
            "uri": f"{base_url}/{version}/files/{self.id}",
            "state": state,
            "source": "UPLOADED",
        }
        if self.display_name:
            res["displayName"] = self.display_name
        if state == "FAILED":
            res["error"] = {"code": 400, "message": "Video could not be processed: unsupported codec."}
        return res


def _get(obj: dict, name: str, default=None):
    """``obj[name]`` under its snake_case or lowerCamelCase spelling (proto JSON takes both)."""
    if name in obj:
        return obj[name]
    camel = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), name)
    return obj.get(camel, default)


def decode_bytes(text: str) -> bytes:
    """A proto JSON ``bytes`` value: standard or URL-safe base64, padded or not (google-genai
    sends URL-safe).

    Raises:
        ApiError: 400 when it is not base64.
    """
    try:
        return base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True)
    except (ValueError, TypeError):
        raise ApiError(400, "Invalid value at 'contents[0].parts[0].inline_data.data' (TYPE_BYTES)") from None


# --- answers made from the response schema -----------------------------------------------


def answer_from_schema(schema: dict, rng: random.Random, excerpt: str, name: str = "value") -> Any:
    """A value valid against a Gemini ``Schema`` (OBJECT / ARRAY / STRING / NUMBER / INTEGER /
    BOOLEAN with ``enum``, ``minimum`` / ``maximum``, ``min_items`` / ``max_items``,
    ``min_length`` / ``max_length``, ``nullable``, ``any_of``), drawn from ``rng``.

    Strings without an enum name the property and quote ``excerpt`` (the request's text), so an
    answer visibly depends on what was asked.

    Raises:
        ApiError: 400 for a type the API does not know.
    """
    any_of = _get(schema, "any_of")
    if any_of:
        options = [s for s in any_of if str(_get(s, "type", "")).upper() != "NULL"] or any_of
        return answer_from_schema(options[0], rng, excerpt, name)
    kind = str(_get(schema, "type", "")).upper()
    enum = _get(schema, "enum")
    if kind == "OBJECT":
        props = _get(schema, "properties", {}) or {}
        order = _get(schema, "property_ordering") or list(props)
        return {key: answer_from_schema(props[key], rng, excerpt, key) for key in order if key in props}
    if kind == "ARRAY":
        items = _get(schema, "items") or {}
        low = int(_get(schema, "min_items", 0) or 0)
        high = _get(schema, "max_items")
        count = max(low, 2 if high is None else min(2, int(high)))
        item_enum = _get(items, "enum")
        if item_enum:
            return rng.sample(list(item_enum), min(count, len(item_enum)))
        return [answer_from_schema(items, rng, excerpt, name) for _ in range(count)]
    if kind == "STRING":
        if enum:
            return rng.choice(list(enum))
        text = f"{name}: {excerpt}" if excerpt else f"{name} {rng.randrange(10**6)}"
        low, high = int(_get(schema, "min_length", 0) or 0), _get(schema, "max_length")
        text = text.ljust(low, ".")
        return text if high is None else text[: int(high)]
    if kind in ("NUMBER", "INTEGER"):
        low = _get(schema, "minimum")
        high = _get(schema, "maximum")
        low = float(low) if low is not None else 0.0
        high = float(high) if high is not None else low + 10.0
        if kind == "INTEGER":
            return rng.randint(math.ceil(low), math.floor(high))
        return round(low + (high - low) * rng.random(), 4)
    if kind == "BOOLEAN":
        return rng.random() < 0.5
    raise ApiError(400, f"Invalid JSON payload: unknown schema type {kind!r} at {name}")


# --- the server ----------------------------------------------------------------------------


class FakeGemini:
    """The fake API (see the module docstring).

    Args:
        api_key: the key requests must carry.
        models: model ids that exist (others get 404).
        processing_polls: reads of a new file that answer PROCESSING before it is ACTIVE.
    """

    def __init__(self, api_key: str = "test-key", models=("gemini-2.5-flash", "gemini-2.5-pro"), processing_polls=1):
        self.api_key = api_key
        self.models = set(models)
        self.processing_polls = processing_polls
        self.fail_processing = False
        self.thoughts_tokens = 0
        # Seconds every generateContent waits before answering (a slow or hung model).
        self.delay_s = 0.0
        self.requests: list[Recorded] = []
        self.crashes: list[BaseException] = []
        self._lock = threading.Lock()
        self._failures: dict[str, list[ApiError]] = {op: [] for op in OPERATIONS}
        self._always: dict[str, ApiError] = {}
        self._answers: list[str] = []
        self._uploads: dict[str, _Upload] = {}
        self._files: dict[str, _File] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> FakeGemini:
        """Bind a free port on 127.0.0.1 and serve in a background thread."""
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fake-gemini", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and join every thread of the server."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()  # joins the connection threads (block_on_close)
        self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> FakeGemini:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``, the SDK's ``base_url``."""
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- knobs ------------------------------------------------------------------------------

    def fail(
        self,
        operation: str,
        status: int,
        times: int | None = 1,
        retry_after: str | None = None,
        retry_delay: str | None = None,
        message: str | None = None,
    ) -> None:
        """Make the next ``times`` requests of ``operation`` (``upload`` = the resumable start,
        ``files.get``, ``files.delete``, ``generateContent``) fail with ``status``; ``times=None``:
        every request until :meth:`heal`. ``retry_after`` sets the ``Retry-After`` header,
        ``retry_delay`` (e.g. ``"0.3s"``) a ``google.rpc.RetryInfo`` detail."""
        details = []
        if retry_delay is not None:
            details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay})
        if status == 429:
            details.insert(
                0,
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_requests"}],
                },
            )
        error = ApiError(
            status,
            message
            or {
                429: "Resource has been exhausted (e.g. check quota).",
                400: "Request contains an invalid argument.",
            }.get(status, "An internal error has occurred."),
            details=details,
            headers={"Retry-After": retry_after} if retry_after is not None else {},
        )
        with self._lock:
            if times is None:
                self._always[operation] = error
            else:
                self._failures[operation].extend([error] * times)

    def heal(self) -> None:
        """Forget every pending and permanent failure."""
        with self._lock:
            self._always.clear()
            for queue in self._failures.values():
                queue.clear()

    def answer_next(self, text: str) -> None:
        """The next generateContent answers with candidate text ``text`` as is."""
        with self._lock:
            self._answers.append(text)

    def count(self, operation: str) -> int:
        """Requests received for ``operation`` (``upload``, ``upload.chunk``, ``files.get``,
        ``files.delete``, ``generateContent``), failed ones included."""
        with self._lock:
            return sum(1 for r in self.requests if r.operation == operation)

    def last(self, operation: str) -> Recorded:
        """The latest request of ``operation``."""
        with self._lock:
            return next(r for r in reversed(self.requests) if r.operation == operation)

    # -- request handling (called by the handler thread) ------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, dict, bytes]:
        url = urlsplit(target)
        query = parse_qs(url.query)
        operation, match = self._route(method, url.path, query)
        parsed = None
        if body and headers.get("content-type", "").startswith("application/json") and operation != "upload.chunk":
            try:
                parsed = json.loads(body)
            except json.JSONDecodeError:
                parsed = None
        with self._lock:
            self.requests.append(Recorded(operation, method, url.path, query, headers, len(body), parsed))
        try:
            if operation == "unknown":
                raise ApiError(404, f"Method not found: {method} {url.path}")
            if operation != "upload.chunk":
                self._authorize(headers, query)
            self._inject(operation)
            if operation == "upload":
                return self._upload_start(match.group(1), headers, parsed)
            if operation == "upload.chunk":
                return self._upload_chunk(match.group(1), query, headers, body)
            if operation == "files.get":
                return self._json(200, self._poll(match.group(2), match.group(1)))
            if operation == "files.delete":
                self._file(match.group(2)).deleted = True
                return self._json(200, {})
            if self.delay_s:
                time.sleep(self.delay_s)
            return self._generate(match.group(2), parsed)
        except ApiError as err:
            return self._json(err.code, err.body(), err.headers)

    def _route(self, method: str, path: str, query: dict) -> tuple[str, re.Match | None]:
        routes = (
            ("POST", rf"^/upload/{_VERSION}/files$", "upload.chunk" if "upload_id" in query else "upload"),
            ("GET", rf"^/{_VERSION}/files/([a-z0-9-]+)$", "files.get"),
            ("DELETE", rf"^/{_VERSION}/files/([a-z0-9-]+)$", "files.delete"),
            ("POST", rf"^/{_VERSION}/models/([^/:]+):generateContent$", "generateContent"),
        )
        for verb, pattern, operation in routes:
            match = re.match(pattern, path)
            if verb == method and match:
                return operation, match
        return "unknown", None

    def _authorize(self, headers: dict[str, str], query: dict) -> None:
        key = headers.get("x-goog-api-key") or (query.get("key") or [None])[0]
        if not key:
            raise ApiError(
                403,
                "Method doesn't allow unregistered callers (callers without established identity).",
            )
        if key != self.api_key:
            raise ApiError(
                400,
                "API key not valid. Please pass a valid API key.",
                details=[
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                    }
                ],
            )

    def _inject(self, operation: str) -> None:
        with self._lock:
            queue = self._failures.get(operation)
            error = queue.pop(0) if queue else self._always.get(operation)
        if error is not None:
            raise error

    def _upload_start(self, version: str, headers: dict[str, str], body: Any) -> tuple[int, dict, bytes]:
        if headers.get("x-goog-upload-protocol") != "resumable" or headers.get("x-goog-upload-command") != "start":
            raise ApiError(400, "Expected X-Goog-Upload-Protocol: resumable and X-Goog-Upload-Command: start")
        size = headers.get("x-goog-upload-header-content-length", "")
        mime = headers.get("x-goog-upload-header-content-type", "")
        if not size.isdigit() or not mime:
            raise ApiError(400, "X-Goog-Upload-Header-Content-Length and -Content-Type are required")
        file = (body or {}).get("file", {}) if isinstance(body, dict) else {}
        upload_id = uuid.uuid4().hex
        with self._lock:
            self._uploads[upload_id] = _Upload(int(size), mime, _get(file, "display_name"))
        upload_url = f"{self.base_url}/upload/{version}/files?upload_id={upload_id}&upload_protocol=resumable"
        return (
            200,
            {
                "X-Goog-Upload-Status": "active",
                "X-Goog-Upload-URL": upload_url,
                "X-Goog-Upload-Chunk-Granularity": "8388608",
            },
            b"",
        )

    def _upload_chunk(self, version: str, query: dict, headers: dict[str, str], body: bytes) -> tuple[int, dict, bytes]:
        with self._lock:
            upload = self._uploads.get(query["upload_id"][0])
        if upload is None:
            raise ApiError(404, "No such upload session")
        command = [c.strip() for c in headers.get("x-goog-upload-command", "").split(",")]
        offset = headers.get("x-goog-upload-offset", "")
        if "upload" not in command or not offset.isdigit() or int(offset) != len(upload.data):
            raise ApiError(400, f"Bad upload command {command} at offset {offset!r} (have {len(upload.data)} bytes)")
        upload.data += body
        if "finalize" not in command:
            return 200, {"X-Goog-Upload-Status": "active"}, b""
        if len(upload.data) != upload.declared_size:
            raise ApiError(400, f"Uploaded {len(upload.data)} bytes, declared {upload.declared_size}")
        file = _File(
            id=uuid.uuid4().hex[:12],
            mime_type=upload.mime_type,
            display_name=upload.display_name,
            size=len(upload.data),
            sha256=hashlib.sha256(upload.data).hexdigest(),
            created=datetime.now(UTC),
            polls_left=self.processing_polls,
            fails=self.fail_processing,
        )
        with self._lock:
            self._files[file.id] = file
        status, headers_out, payload = self._json(200, {"file": file.resource(self.base_url, version)})
        headers_out["X-Goog-Upload-Status"] = "final"
        return status, headers_out, payload

    def _file(self, file_id: str) -> _File:
        with self._lock:
            file = self._files.get(file_id)
        if file is None or file.deleted:
            raise ApiError(403, f"You do not have permission to access the File {file_id} or it may not exist.")
        return file

    def _poll(self, file_id: str, version: str) -> dict:
        """The File as this read sees it; each read while PROCESSING brings ACTIVE closer."""
        file = self._file(file_id)
        with self._lock:
            resource = file.resource(self.base_url, version)
            file.polls_left = max(0, file.polls_left - 1)
        return resource

    def _generate(self, model: str, body: Any) -> tuple[int, dict, bytes]:
        if model not in self.models:
            raise ApiError(
                404, f"models/{model} is not found for API version v1beta, or is not supported for generateContent."
            )
        if not isinstance(body, dict) or not body.get("contents"):
            raise ApiError(400, "* GenerateContentRequest.contents: contents is not specified")
        texts, prompt_tokens, fingerprint = [], 0, []
        for content in body["contents"]:
            for part in content.get("parts") or []:
                if "text" in part:
                    texts.append(part["text"])
                    prompt_tokens += math.ceil(len(part["text"]) / 4)
                    fingerprint.append(part["text"])
                elif (inline := _get(part, "inline_data")) is not None:
                    data = decode_bytes(inline.get("data", ""))
                    mime = _get(inline, "mime_type", "")
                    prompt_tokens += 258 if mime.startswith("image/") else 300 * (len(data) // 250_000 + 1)
                    fingerprint.append(hashlib.sha256(data).hexdigest())
                elif (ref := _get(part, "file_data")) is not None:
                    file = self._file_by_uri(_get(ref, "file_uri", ""))
                    prompt_tokens += 300 * (file.size // 250_000 + 1)
                    fingerprint.append(file.sha256)
                else:
                    raise ApiError(400, f"Invalid JSON payload: unsupported part {sorted(part)}")
        system = _get(body, "system_instruction") or {}
        for part in system.get("parts") or []:
            prompt_tokens += math.ceil(len(part.get("text", "")) / 4)
        config = _get(body, "generation_config") or {}
        schema = _get(config, "response_schema")
        mime_type = _get(config, "response_mime_type", "text/plain")
        if schema is not None and mime_type != "application/json":
            raise ApiError(400, "response_mime_type must be application/json when response_schema is set")
        digest = hashlib.sha256(json.dumps([model, fingerprint, schema], sort_keys=True).encode()).hexdigest()
        with self._lock:
            forced = self._answers.pop(0) if self._answers else None
        if forced is not None:
            text = forced
        else:
            excerpt = " ".join(" ".join(texts).split())[:60]
            rng = random.Random(int(digest[:16], 16))
            text = json.dumps(answer_from_schema(schema, rng, excerpt, "answer")) if schema else f"Answer to: {excerpt}"
        output_tokens = math.ceil(len(text) / 4)
        usage = {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": output_tokens,
            "totalTokenCount": prompt_tokens + output_tokens + self.thoughts_tokens,
        }
        if self.thoughts_tokens:
            usage["thoughtsTokenCount"] = self.thoughts_tokens
        return self._json(
            200,
            {
                "candidates": [
                    {"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP", "index": 0}
                ],
                "usageMetadata": usage,
                "modelVersion": model,
                "responseId": digest[:22],
            },
        )

    def _file_by_uri(self, uri: str) -> _File:
        match = re.search(r"/files/([a-z0-9-]+)$", uri)
        with self._lock:
            file = self._files.get(match.group(1)) if match else None
        if file is None or file.deleted:
            raise ApiError(403, f"You do not have permission to access the File {uri} or it may not exist.")
        if file.polls_left > 0 or file.fails:
            raise ApiError(
                400, f"The File {file.id} is not in an ACTIVE state and usage is not allowed.", "FAILED_PRECONDITION"
            )
        return file

    @staticmethod
    def _json(status: int, payload: Any, headers: dict | None = None) -> tuple[int, dict, bytes]:
        return (
            status,
            {"Content-Type": "application/json; charset=UTF-8", **(headers or {})},
            json.dumps(payload).encode(),
        )


class _Server(ThreadingHTTPServer):
    """Tracks its connections so ``stop`` can close idle keep-alive ones and join their threads."""

    daemon_threads = False
    block_on_close = True
    fake: FakeGemini

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.connections: set = set()
        self.connections_lock = threading.Lock()

    def close_connections(self) -> None:
        with self.connections_lock:
            for conn in list(self.connections):
                with contextlib.suppress(OSError):  # already closed by the client
                    conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's client expects
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        super().finish()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            status, out_headers, payload = self.server.fake.handle(self.command, self.path, headers, body)
        except Exception as exc:  # a bug of the fake: answer 500 and keep it for the test to fail on
            self.server.fake.crashes.append(exc)
            status, out_headers, payload = 500, {}, b""
        self.send_response(status)
        for name, value in out_headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_DELETE = _serve  # noqa: N815 - the stdlib names its handlers so

    def log_message(self, format: str, *args: Any) -> None:
        pass
