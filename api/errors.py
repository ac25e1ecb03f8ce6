"""How service errors become HTTP answers (registered on the app by ``create_app``)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from resources.services.decisions import DecisionConflict, DecisionNotFound
from resources.services.uploads import UploadRejected


async def upload_rejected(request: Request, exc: UploadRejected) -> JSONResponse:
    """A refused upload: its status, ``{"error": code, "detail": reason}``."""
    return JSONResponse(status_code=exc.status, content={"error": exc.code, "detail": exc.reason})


async def decision_not_found(request: Request, exc: DecisionNotFound) -> JSONResponse:
    """404: nothing to decide has this id."""
    return JSONResponse(status_code=404, content={"detail": f"nothing to decide with id {exc}"})


async def decision_conflict(request: Request, exc: DecisionConflict) -> JSONResponse:
    """409: already decided the other way."""
    return JSONResponse(status_code=409, content={"detail": str(exc)})


def install(app: FastAPI) -> None:
    """Register the handlers. Admin decisions (approvals, recommendations) fail the same two
    ways everywhere, so one handler each serves every route."""
    app.add_exception_handler(UploadRejected, upload_rejected)
    app.add_exception_handler(DecisionNotFound, decision_not_found)
    app.add_exception_handler(DecisionConflict, decision_conflict)
