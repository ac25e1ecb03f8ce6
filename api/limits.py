"""Request bodies are bounded in size and in time, while they arrive.

Without this a multipart upload is parsed whole — received and spooled to a temporary file —
before the route runs and can look at its size, so a 1 GiB body costs 1 GiB of disk and the
time to receive it before the 413; and a client trickling a byte at a time holds a worker
and a connection for as long as it likes.

Two layers:

- **Size**: FastAPI's own body limit (``max_body_size`` on a route or router, Starlette's
  ``RequestBodyLimitMiddleware`` underneath) counts the bytes as the route reads them and
  answers 413 as soon as the count passes the limit, chunked bodies included. The upload
  routes use ``upload_body_limit``; the JSON routes ``JSON_BODY_LIMIT``.
- **Declared size and time**: ``BodyGuard``, a pure ASGI middleware around the whole app,
  refuses a declared ``Content-Length`` above the largest body any route takes before a
  byte is read (413), and turns a stalled or trickling body into a 408: no bytes for
  ``idle_timeout_s``, or — once the body has taken longer than that — an average rate under
  ``min_bytes_per_s``.

Refusals are ``HTTPException`` rendered by the app's own exception handler, so they have the
API's error format.
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
# JSON request bodies (presign, link, admin decisions) are a few hundred bytes.
JSON_BODY_LIMIT = 1024 * 1024


def upload_body_limit(settings: Settings) -> int:
    """Largest request body of an upload route, bytes: the file limit
    (``Settings.max_upload_bytes``) plus ``MULTIPART_OVERHEAD_BYTES``."""
    return settings.max_upload_bytes + MULTIPART_OVERHEAD_BYTES


class BodyGuard:
    """ASGI middleware: 413 for a declared body over ``max_body_bytes``, 408 for a slow body.

    Args:
        app: the wrapped ASGI app.
        max_body_bytes: largest declared ``Content-Length`` accepted, bytes (routes may
            take less: their own ``max_body_size``).
        idle_timeout_s: longest wait for the next body message, seconds.
        min_bytes_per_s: slowest average rate accepted after ``idle_timeout_s``, bytes/s.

    Only the body is timed: once its last message has arrived, later ``receive`` calls (a
    streaming response waiting for the client to disconnect) pass through untimed.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, idle_timeout_s: float, min_bytes_per_s: int):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.idle_timeout_s = idle_timeout_s
        self.min_bytes_per_s = min_bytes_per_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await _answer(scope, receive, send, _too_large(self.max_body_bytes))
            return
        started = time.monotonic()
        received = 0
        body_done = False

        async def timed_receive() -> Message:
            nonlocal received, body_done
            if body_done:
                return await receive()
            with anyio.move_on_after(self.idle_timeout_s) as waited:
                message = await receive()
            if waited.cancelled_caught:
                raise HTTPException(408, f"no request body bytes for {self.idle_timeout_s:g} s")
            if message["type"] != "http.request":
                body_done = True  # a disconnect: nothing more will come
                return message
            received += len(message.get("body", b""))
            body_done = not message.get("more_body", False)
            elapsed = time.monotonic() - started
            if not body_done and elapsed > self.idle_timeout_s and received / elapsed < self.min_bytes_per_s:
                raise HTTPException(
                    408,
                    f"request body too slow: {received / elapsed:.0f} bytes/s, under {self.min_bytes_per_s} bytes/s",
                )
            return message

        await self.app(scope, timed_receive, send)


def _content_length(scope: Scope) -> int | None:
    value = Headers(scope=scope).get("content-length")
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
        idle_timeout_s=settings.upload_idle_timeout_s,
        min_bytes_per_s=settings.upload_min_bytes_per_s,
    )
