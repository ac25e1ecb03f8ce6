"""Problem details (RFC 9457): the one shape of every error the API answers.

A problem is ``application/problem+json``::

    {"type": "urn:effectlake:problem:<code>", "title": "Not Found", "status": 404,
     "detail": "no upload 'v_…'", "instance": "/v1/videos/v_…",
     "code": "upload_not_found", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"}

- ``code``: a stable snake_case identifier a client can branch on (the store's error codes,
  the intake's refusal codes, or the generic code of the HTTP status); ``type`` is the same
  code as a URI (RFC 9457 §3.1.1 asks for a URI; a URN is one that is never dereferenced).
- ``title``: the HTTP status phrase — the same for every occurrence of a status, as §3.1.3
  wants; ``detail`` says what went wrong this time.
- ``trace_id``: the request's trace id (``api.tracing``), also in the ``X-Request-ID``
  response header and on every log line of the request.
- Extension members (§3.2) carry more: ``errors`` (the list of validation problems of a 422).

Routes raise ``ProblemError`` for an error of their own; ``api.errors`` turns every other
exception into a problem, and ``problem_responses`` documents them in the OpenAPI.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:effectlake:problem:"

# The code of an error that brings none of its own: one per HTTP status.
STATUS_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    402: "payment_required",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "content_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}

# What each documented status means, for the OpenAPI document.
DESCRIPTIONS = {
    400: "Bad request (e.g. an invalid cursor)",
    401: "Missing or invalid credentials",
    402: "Not enough tokens",
    403: "Authenticated but not allowed",
    404: "Not found (or not the caller's)",
    405: "Method not allowed",
    408: "The request body arrived too slowly",
    409: "Conflicts with the current state",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Invalid request: `errors` lists each problem",
    429: "Too many requests: see `Retry-After` (seconds)",
    500: "Internal error: quote the `trace_id`",
    503: "Temporarily unavailable: see `Retry-After` (seconds)",
}


class Problem(BaseModel):
    """An RFC 9457 problem document (media type ``application/problem+json``).

    Attributes:
        type: URI of the problem type, ``urn:effectlake:problem:<code>``.
        title: the HTTP status phrase.
        status: the HTTP status code.
        detail: what went wrong, for a person.
        instance: the request path the problem occurred on.
        code: stable machine identifier (snake_case).
        trace_id: the request's trace id (header ``X-Request-ID``).
    """

    # Extension members (``errors`` of a 422, …) pass through.
    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=[f"{TYPE_PREFIX}not_found"])
    title: str = Field(examples=["Not Found"])
    status: int = Field(examples=[404])
    detail: str
    instance: str = Field(examples=["/v1/videos/v_0123456789abcdef"])
    code: str = Field(examples=["not_found"])
    trace_id: str = Field(examples=["4bf92f3577b34da6a3ce929d0e0e4736"])


class ValidationProblem(Problem):
    """A 422 problem: ``errors`` lists each problem with the request (``loc``: where, e.g.
    ``["body", "tokens"]``; ``msg``; ``type``: pydantic's error type); empty when the request
    was well-formed but refused as a whole (e.g. an Idempotency-Key reused with another body)."""

    errors: list[dict[str, Any]]


class ProblemError(HTTPException):
    """An error a route answers as a problem: ``status``, stable ``code``, ``detail``;
    ``headers`` (e.g. ``Retry-After``) and ``extensions`` (extra members) are added."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ):
        super().__init__(status, detail, headers)
        self.code = code
        self.extensions = extensions


def code_of_status(status: int) -> str:
    """The generic code of an HTTP status (``STATUS_CODES``; ``http_<status>`` otherwise)."""
    return STATUS_CODES.get(status, f"http_{status}")


def trace_id_of(request: Request) -> str:
    """The request's trace id (set by ``api.tracing``; empty before it ran)."""
    return getattr(request.state, "trace_id", "")


def problem_response(
    request: Request,
    status: int,
    code: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """The ``application/problem+json`` response of a problem on ``request``.

    The code is also left on ``request.state.problem_code`` for the metrics.
    """
    request.state.problem_code = code
    body = {
        "type": f"{TYPE_PREFIX}{code}",
        "title": HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error",
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "code": code,
        "trace_id": trace_id_of(request),
        **({"errors": []} if status == 422 else {}),
        **extensions,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses: each a ``Problem`` in
    ``application/problem+json`` (422: ``ValidationProblem``). ``api.openapi`` moves the
    schema under the problem media type."""
    return {
        status: {"model": ValidationProblem if status == 422 else Problem, "description": DESCRIPTIONS[status]}
        for status in statuses
    }
