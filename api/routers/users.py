"""The calling user's account: ``GET /v1/me``, and ``/v1/users/{user_id}/…`` (balance,
notifications) for the caller's own id — another user's id is a 404, so ids leak nothing
(admins may read any user's)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from api.deps import Caller, CallerDep, StoreDep
from api.models import Balance, ErrorDetail, Me, Notification
from api.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, seq_page
from api.problems import problem_responses

router = APIRouter(tags=["users"], responses={401: {"model": ErrorDetail}})
NOT_FOUND = {404: {"model": ErrorDetail}}


def _own(caller: Caller, user_id: str) -> str:
    """``user_id`` when the caller may read it (their own, or any for an admin).

    Raises:
        HTTPException: 404 otherwise, as for an id that does not exist.
    """
    if user_id != caller.user_id and not caller.is_admin:
        raise HTTPException(404, f"no user {user_id}")
    return user_id


@router.get("/v1/me")
def me(caller: CallerDep, store: StoreDep) -> Me:
    """Who the API key belongs to: user id, workspace, role, name, and token balance."""
    user = store.user(caller.user_id)
    return Me.model_validate({**user, "balance": store.balance(caller.user_id)})


@router.get("/v1/users/{user_id}/notifications", responses=NOT_FOUND | problem_responses(400))
def notifications(
    user_id: str, caller: CallerDep, store: StoreDep, limit: LimitQuery = DEFAULT_LIMIT, cursor: CursorQuery = None
) -> Page[Notification]:
    """In-app notifications of the user, oldest first (a page; ``next_cursor`` continues)."""
    owner = _own(caller, user_id)
    rows, next_cursor = seq_page(lambda after, n: store.notifications(owner, after, n), cursor, limit)
    return Page[Notification](items=[Notification.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get("/v1/users/{user_id}/balance", responses=NOT_FOUND)
def get_balance(user_id: str, caller: CallerDep, store: StoreDep) -> Balance:
    """The user's token balance: credited, reserved, consumed, refunded, available."""
    return Balance.model_validate(store.balance(_own(caller, user_id)))
