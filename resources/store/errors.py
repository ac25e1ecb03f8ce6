"""Errors of the transactional store.

Every error carries a stable ``code`` (a short snake_case string an API can put in a problem
document) and the ``http_status`` it maps to, so the API layer translates them without a
table of its own. The one exception reused from elsewhere is
``economics.budget.UserQuotaExceeded`` (a reservation beyond the available balance), which
the budget check already raises with the same meaning.
"""

from __future__ import annotations


class StoreError(Exception):
    """Base class: ``code`` (stable identifier) and ``http_status`` (suggested status)."""

    code = "store_error"
    http_status = 500


# --- 404: the thing does not exist (or is not the caller's: ids leak nothing) -------------


class NotFound(StoreError, LookupError):
    code, http_status = "not_found", 404


class UnknownWorkspace(NotFound):
    code = "unknown_workspace"


class UnknownUser(NotFound):
    code = "unknown_user"


class UploadNotFound(NotFound):
    code = "upload_not_found"


class JobNotReserved(NotFound):
    """consume/refund of a job that has no reservation."""

    code = "job_not_reserved"


class UnknownApiKey(NotFound):
    code = "unknown_api_key"


class EffectNotFound(NotFound):
    """No revision of this slug was ever published."""

    code = "effect_not_found"


class RevisionNotFound(NotFound):
    """No revision has this id."""

    code = "revision_not_found"


# --- 422: the request is malformed or out of bounds ----------------------------------------


class InvalidInput(StoreError, ValueError):
    code, http_status = "invalid_input", 422


class InvalidTokens(InvalidInput):
    """A token amount that is not a positive ``int`` within the per-operation maximum."""

    code = "invalid_tokens"


class BalanceOverflow(InvalidInput):
    """A credit would take the balance above ``MAX_BALANCE``."""

    code = "balance_overflow"


class IdempotencyMismatch(InvalidInput):
    """The Idempotency-Key was already used with a different request body."""

    code = "idempotency_key_reused"


class RevisionOfAnotherEffect(InvalidInput):
    """A pin names a revision that belongs to another slug."""

    code = "revision_of_another_effect"


# --- 409: the state of the store forbids it -------------------------------------------------


class Conflict(StoreError):
    code, http_status = "conflict", 409


class LedgerConflict(Conflict):
    """An entry id already exists with different content (another user or amount), or a
    settlement contradicts the job's state (consume after refund)."""

    code = "ledger_conflict"


class DecisionConflict(Conflict):
    """The subject was already decided the other way; ``existing`` holds that decision."""

    code = "decision_conflict"

    def __init__(self, existing: dict):
        super().__init__(
            f"{existing['subject_kind']} {existing['subject_id']} was already decided: {existing['decision']}"
        )
        self.existing = existing


class PinConflict(Conflict):
    """The slug's pin is no longer the revision the caller expected (someone moved it)."""

    code = "pin_conflict"


class ImmutableRow(Conflict):
    """An update or delete of an append-only row (an effect revision, a pin event)."""

    code = "immutable_row"


class IdempotencyInProgress(Conflict):
    """The first request with this Idempotency-Key has not finished yet."""

    code = "idempotency_in_progress"


# --- 401 / 503 ----------------------------------------------------------------------------


class InvalidApiKey(StoreError):
    """Unknown, malformed, wrong or revoked API key (one error for all: no oracle)."""

    code, http_status = "invalid_api_key", 401


class StoreBusy(StoreError):
    """The database stayed locked beyond the lock timeout; the caller may retry."""

    code, http_status = "store_busy", 503
