"""``GET /v1/usage``: the calling user's jobs, compute, storage and tokens (their own only:
the user comes from the API key, never from the request)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import CallerDep, LakeDep, StoreDep
from api.models import Balance
from resources.services.usage import usage

router = APIRouter(tags=["usage"])


class StorageBytes(BaseModel):
    """Bytes stored for the user: their uploaded originals, their tasks' outputs, the sum."""

    uploads: int
    outputs: int
    total: int


class Usage(BaseModel):
    """``GET /v1/usage``: ``jobs`` (uploads received), ``compute_seconds`` (seconds of the
    provider tasks run for them), ``storage_bytes`` and ``tokens`` (their balance)."""

    user_id: str
    jobs: int
    compute_seconds: float
    storage_bytes: StorageBytes
    tokens: Balance


@router.get("/v1/usage")
def get_usage(caller: CallerDep, store: StoreDep, lake: LakeDep) -> Usage:
    """The caller's usage (``resources.services.usage``)."""
    return Usage.model_validate(usage(store, lake, caller.user_id))
