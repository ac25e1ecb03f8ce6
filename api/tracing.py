"""Every request gets a trace id: taken from the caller or made here, echoed back, and on
every log line of the request.

- An incoming W3C ``traceparent`` (``00-<32 hex trace id>-<16 hex span id>-<2 hex flags>``)
  gives its trace id, so the API's logs join the caller's trace; else a well-formed
  ``X-Request-ID`` is used as it is; else a new random 32-hex id (the W3C trace-id shape).
  Malformed values are ignored rather than trusted: they end up in logs and headers.
- The response carries it in ``X-Request-ID``; problem documents in ``trace_id``.
- It is bound into structlog's context variables (with the method and path) for the
  request's duration, so every ``structlog`` line the request logs names it.
- An exception no handler took is logged here with the trace id and answered 500 as a
  problem that says nothing about the internals.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Mapping

import structlog
from fastapi import FastAPI, Request, Response

from api.problems import problem_response

REQUEST_ID_HEADER = "X-Request-ID"
TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
# Letters, digits and . _ : - only, at most 128: safe in a header and a log line.
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

log = structlog.get_logger("effectlake.api")


def trace_id_from(headers: Mapping[str, str]) -> str:
    """The trace id of a request with these (case-insensitive) headers: ``traceparent``'s
    trace id, else ``X-Request-ID``, else a new random 32-hex id. Invalid values (bad
    shape, W3C version ``ff``, an all-zero trace id) are skipped."""
    if match := TRACEPARENT.match(headers.get("traceparent", "").strip().lower()):
        version, trace_id = match.group(1), match.group(2)
        if version != "ff" and trace_id != "0" * 32:
            return trace_id
    request_id = headers.get(REQUEST_ID_HEADER, "").strip()
    if REQUEST_ID.match(request_id):
        return request_id
    return uuid.uuid4().hex


def install_tracing(app: FastAPI) -> None:
    """Add the trace-id middleware to ``app`` (add it outside the metrics and rate-limit
    middlewares, so their answers carry the id too)."""

    @app.middleware("http")
    async def trace(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        trace_id = trace_id_from(request.headers)
        request.state.trace_id = trace_id
        tokens = structlog.contextvars.bind_contextvars(trace_id=trace_id, method=request.method, path=request.url.path)
        try:
            response = await call_next(request)
        except Exception:  # the last resort: nothing else answered it
            log.exception("unhandled error")
            response = problem_response(
                request, 500, "internal_error", f"An internal error occurred; quote trace id {trace_id}."
            )
        finally:
            structlog.contextvars.reset_contextvars(**tokens)
        response.headers[REQUEST_ID_HEADER] = trace_id
        return response
