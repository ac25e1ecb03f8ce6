"""How exceptions become HTTP answers: every one a problem document (``api.problems``).

Registered on the app by ``create_app``:

- ``HTTPException`` (FastAPI's and Starlette's, so also the router's own 404/405) → its
  status; the code of a ``ProblemError``, else the status's generic code.
- ``RequestValidationError`` → 422 ``validation_failed`` with ``errors``: ``loc``, ``msg``,
  ``type`` of each problem (the offending ``input`` is not echoed back).
- ``StoreError`` (``resources.store.errors``) → its ``http_status`` and ``code``; a 5xx says
  nothing of the internals; ``StoreBusy`` adds ``Retry-After`` and is counted.
- ``UserQuotaExceeded`` (a reservation beyond the balance) → 402 ``insufficient_tokens``.
- The intake's ``UploadRejected`` → its status and code (``too_large``, ``not_a_video``…).
- An effect run's ``RunRefused`` → its status and code (``effect_not_found``,
  ``parameter_out_of_range``…).
- The admin decisions' ``DecisionNotFound`` / ``DecisionConflict`` → 404 / 409.

Anything else is answered 500 by ``api.tracing``, which logs it with the trace id.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import metrics
from api.problems import ProblemError, code_of_status, problem_response
from economics.budget import UserQuotaExceeded
from resources.services.decisions import DecisionNotFound
from resources.services.runs import RunRefused
from resources.services.uploads import UploadRejected
from resources.store.errors import StoreBusy, StoreError

# Seconds a client should wait before retrying after a busy store: a lock is held at most
# the PostgreSQL lock timeout (3 s, resources/store/engine.py), and usually far less.
STORE_BUSY_RETRY_AFTER_S = 1


async def http_exception(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """An HTTPException: its status, headers and detail; ``ProblemError``'s code and
    extensions."""
    if isinstance(exc, ProblemError):
        return problem_response(request, exc.status_code, exc.code, exc.detail, exc.headers, **exc.extensions)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return problem_response(request, exc.status_code, code_of_status(exc.status_code), detail, exc.headers)


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with each problem's location, message and type."""
    errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()]
    detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors) or "invalid request"
    return problem_response(request, 422, "validation_failed", detail, errors=jsonable_encoder(errors))


async def store_error(request: Request, exc: StoreError) -> JSONResponse:
    """A store error: its status and code (5xx without the message: it may name internals)."""
    headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None
    if isinstance(exc, StoreBusy):
        metrics.of(request).store_busy.inc()
        headers = {"Retry-After": str(STORE_BUSY_RETRY_AFTER_S)}
    status = exc.http_status
    detail = str(exc) if status < 500 or isinstance(exc, StoreBusy) else "The store failed; retry later."
    return problem_response(request, status, exc.code, detail, headers)


async def quota_exceeded(request: Request, exc: UserQuotaExceeded) -> JSONResponse:
    """402: the balance cannot cover the reservation."""
    detail = f"{exc.requested} tokens needed, {exc.available} available: the account needs a top-up."
    return problem_response(request, 402, "insufficient_tokens", detail)


async def upload_rejected(request: Request, exc: UploadRejected) -> JSONResponse:
    """A refused upload: its status, code and reason."""
    return problem_response(request, exc.status, exc.code, exc.reason)


async def run_refused(request: Request, exc: RunRefused) -> JSONResponse:
    """A refused effect run: its status, code and reason."""
    return problem_response(request, exc.status, exc.code, exc.reason)


async def decision_not_found(request: Request, exc: DecisionNotFound) -> JSONResponse:
    """404: nothing to decide has this id."""
    return problem_response(request, 404, "decision_not_found", f"nothing to decide with id {exc}")


def install(app: FastAPI) -> None:
    """Register the handlers (one per exception family: every route that raises it shares it)."""
    app.add_exception_handler(StarletteHTTPException, http_exception)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StoreError, store_error)
    app.add_exception_handler(UserQuotaExceeded, quota_exceeded)
    app.add_exception_handler(UploadRejected, upload_rejected)
    app.add_exception_handler(RunRefused, run_refused)
    app.add_exception_handler(DecisionNotFound, decision_not_found)
