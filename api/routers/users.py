"""``GET /v1/users/{user_id}/…``: a user's notifications and token balance."""

from __future__ import annotations

import polars as pl
from fastapi import APIRouter

from api.deps import LakeDep
from api.models import Balance, Notification
from resources.schemas import NOTIFICATIONS
from resources.services.accounts import balance

router = APIRouter(tags=["users"])


@router.get("/v1/users/{user_id}/notifications")
def notifications(user_id: str, lake: LakeDep) -> list[Notification]:
    """In-app notifications of a user, newest first."""
    rows = lake.read(NOTIFICATIONS, pl.col("user_id") == user_id).sort("created_at", descending=True)
    return [Notification.model_validate(r) for r in rows.iter_rows(named=True)]


@router.get("/v1/users/{user_id}/balance")
def get_balance(user_id: str, lake: LakeDep) -> Balance:
    """The user's token balance: credited, reserved, consumed, refunded, available."""
    return Balance.model_validate(balance(lake, user_id))
