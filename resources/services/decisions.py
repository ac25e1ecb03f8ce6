"""Admin decisions, recorded once in the transactional store: the first decision on a subject
stands, repeating it is a no-op and contradicting it is a conflict
(``resources.store.decisions``). Shared by effect approvals and recommendations, and by the
API and the admin dashboard alike; the lake gets the decisions when the store's rows are
landed in its bronze tables."""

from __future__ import annotations

from resources.store.errors import DecisionConflict

__all__ = ["DecisionConflict", "DecisionNotFound"]


class DecisionNotFound(LookupError):
    """Nothing to decide has this id."""
