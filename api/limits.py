"""Request bodies are bounded in size and in time, while they arrive.

Without this a multipart upload is parsed whole — received and spooled to a temporary file —
before the route runs and can look at its size, so a 1 GiB body costs 1 GiB of disk and the
time to receive it before the 413; and a client trickling a byte at a time holds a worker
and a connection for as long as it likes.

``BodyGuard``, a pure ASGI middleware around the whole app, wraps the body's ``receive``:

- **size**: a declared ``Content-Length`` over the limit is refused before a byte is read;
  any body (chunked ones too) is refused as soon as the bytes received pass it — 413. The
  limit depends on the body's type: JSON bodies (presign, link, admin calls: a few hundred
  bytes, and FastAPI holds them in memory) ``JSON_BODY_LIMIT``, every other body the
  largest upload (``upload_body_limit``).
- **time**: no bytes for ``idle_timeout_s``, or — once the body has taken longer than that
  — an average rate under ``min_bytes_per_s``: 408.

A refused request's response says ``Connection: close``: the server then drops the
connection instead of reading (and discarding) the rest of the body. Refusals are
``HTTPException`` rendered by the app's own exception handler, so they have the API's error
format.

Why not FastAPI's own ``max_body_size``: it counts the same way, but answers a declared
oversize body with Starlette's plain-text 413, past the app's exception handlers.
"""

from __future__ import annotations

import inspect
import time

import anyio
from fastapi import FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from resources.settings import Settings

# A multipart body carries, besides the file, its part headers, boundaries and small form
# fields: 64 KiB is far above what a real client sends (a few hundred bytes) and small next
# to any file limit.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
# JSON request bodies (presign, link, admin decisions) are a few hundred bytes; FastAPI reads
# them whole into memory.
JSON_BODY_LIMIT = 1024 * 1024


def upload_body_limit(settings: Settings) -> int:
    """Largest request body of an upload route, bytes: the file limit
    (``Settings.max_upload_bytes``) plus ``MULTIPART_OVERHEAD_BYTES``."""
    return settings.max_upload_bytes + MULTIPART_OVERHEAD_BYTES


class BodyGuard:
    """ASGI middleware: 413 for a body over its limit, 408 for a slow body.

    Args:
        app: the wrapped ASGI app.
        max_body_bytes: largest body accepted, bytes (declared or received).
        max_json_bytes: largest ``application/json`` body accepted, bytes.
        idle_timeout_s: longest wait for the next body message, seconds.
        min_bytes_per_s: slowest average rate accepted after ``idle_timeout_s``, bytes/s.

    Only the body is guarded: once its last message has arrived, later ``receive`` calls (a
    streaming response waiting for the client to disconnect) pass through untimed.
    """

    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, max_json_bytes: int, idle_timeout_s: float, min_bytes_per_s: int
    ):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_json_bytes = max_json_bytes
        self.idle_timeout_s = idle_timeout_s
        self.min_bytes_per_s = min_bytes_per_s

    def limit_for(self, headers: Headers) -> int:
        """The body limit of a request with these headers, bytes."""
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        return self.max_json_bytes if content_type == "application/json" else self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        limit = self.limit_for(headers)
        declared = _content_length(headers)
        if declared is not None and declared > limit:
            await _answer(scope, receive, send, _too_large(limit))
            return
        started = time.monotonic()
        received = 0
        body_done = refused = False

        def refuse(exc: HTTPException) -> HTTPException:
            nonlocal refused
            refused = True
            return exc

        async def guarded_receive() -> Message:
            nonlocal received, body_done
            if body_done:
                return await receive()
            with anyio.move_on_after(self.idle_timeout_s) as waited:
                message = await receive()
            if waited.cancelled_caught:
                raise refuse(HTTPException(408, f"no request body bytes for {self.idle_timeout_s:g} s"))
            if message["type"] != "http.request":
                body_done = True  # a disconnect: nothing more will come
                return message
            received += len(message.get("body", b""))
            body_done = not message.get("more_body", False)
            if received > limit:
                raise refuse(_too_large(limit))
            elapsed = time.monotonic() - started
            if not body_done and elapsed > self.idle_timeout_s and received / elapsed < self.min_bytes_per_s:
                rate = received / elapsed
                raise refuse(
                    HTTPException(408, f"request body too slow: {rate:.0f} bytes/s, under {self.min_bytes_per_s}")
                )
            return message

        async def closing_send(message: Message) -> None:
            if refused and message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        await self.app(scope, guarded_receive, closing_send)


def _content_length(headers: Headers) -> int | None:
    value = headers.get("content-length")
    try:
        return None if value is None else int(value)
    except ValueError:
        return None  # malformed: the server's HTTP parser refuses it before the app


def _too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"the request body is over the {limit} byte limit")


async def _answer(scope: Scope, receive: Receive, send: Send, exc: StarletteHTTPException) -> None:
    """Send ``exc`` as the app's exception handler for it renders it (FastAPI's default
    otherwise): the middleware runs outside the app's exception handling."""
    request = Request(scope, receive)
    handlers = getattr(scope.get("app"), "exception_handlers", {})
    handler = next((handlers[c] for c in type(exc).__mro__ if c in handlers), http_exception_handler)
    response = handler(request, exc)
    if inspect.isawaitable(response):
        response = await response
    # The body was not read: the connection cannot carry another request.
    response.headers["Connection"] = "close"
    await response(scope, receive, send)


def install(app: FastAPI, settings: Settings) -> None:
    """Wrap ``app`` in a ``BodyGuard`` sized for the largest upload ``settings`` accept."""
    app.add_middleware(
        BodyGuard,
        max_body_bytes=upload_body_limit(settings),
        max_json_bytes=JSON_BODY_LIMIT,
        idle_timeout_s=settings.upload_idle_timeout_s,
        min_bytes_per_s=settings.upload_min_bytes_per_s,
    )
