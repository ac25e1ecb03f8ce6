"""How service errors become HTTP answers (registered on the app by ``create_app``)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from resources.services.decisions import DecisionNotFound
from resources.services.uploads import UploadRejected
from resources.store.errors import StoreError


async def upload_rejected(request: Request, exc: UploadRejected) -> JSONResponse:
    """A refused upload: its status, ``{"error": code, "detail": reason}``."""
    return JSONResponse(status_code=exc.status, content={"error": exc.code, "detail": exc.reason})


async def decision_not_found(request: Request, exc: DecisionNotFound) -> JSONResponse:
    """404: nothing to decide has this id."""
    return JSONResponse(status_code=404, content={"detail": f"nothing to decide with id {exc}"})


async def store_error(request: Request, exc: StoreError) -> JSONResponse:
    """The store's refusals: the status its error maps to (404, 409, 422, 401, 503) and the
    error's stable ``code``; a busy store says when to retry."""
    headers = {"Retry-After": "1"} if exc.http_status == 503 else None
    return JSONResponse(status_code=exc.http_status, content={"detail": str(exc), "code": exc.code}, headers=headers)


def install(app: FastAPI) -> None:
    """Register the handlers. Admin decisions (approvals, recommendations) fail the same two
    ways everywhere (not found here; a conflict is the store's ``DecisionConflict``), so one
    handler each serves every route."""
    app.add_exception_handler(UploadRejected, upload_rejected)
    app.add_exception_handler(DecisionNotFound, decision_not_found)
    app.add_exception_handler(StoreError, store_error)
