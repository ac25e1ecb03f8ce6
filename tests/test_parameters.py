"""Runtime parameters in the store (``resources.store.parameters``), on SQLite and PostgreSQL:
a change writes the value and its audit row together, compares-and-sets, a guard sees the
values in force under the write lock, and a rollback restores the value before exactly —
also "not set" — and only for the change in force."""

from __future__ import annotations

import multiprocessing
import uuid

import pytest

from resources.store import Store
from resources.store import parameters as p
from resources.store.errors import InvalidInput, NotFound
from resources.store.parameters import GuardrailRefused, ParameterConflict

pytest_plugins = ["tests.store_fixtures"]


def _provider() -> str:
    return f"prov-{uuid.uuid4().hex[:8]}"  # the store is shared by the session's tests


def _set(store: Store, subject: str, after, **kw):
    with store.write() as s:
        return p.apply(
            s, "provider", subject, "concurrency", after, source="bottleneck", actor="auto", reason="t", **kw
        )


def test_apply_writes_value_and_audit_then_rollback_restores_exactly(store):
    pid = _provider()
    first = _set(store, pid, 2, expect=None, source_id="c1")
    assert (first["before"], first["after"], first["source_id"]) == (None, 2, "c1")
    assert store.parameter_values("provider", "concurrency")[pid] == 2
    second = _set(store, pid, 1, expect=2)
    assert store.parameters("provider")[("provider", pid, "concurrency")]["change_id"] == second["change_id"]

    # Only the change in force rolls back: the first one is under the second.
    with pytest.raises(ParameterConflict), store.write() as s:
        p.rollback(s, first["change_id"], actor="alice", reason="r")
    with store.write() as s:
        undo = p.rollback(s, second["change_id"], actor="alice", reason="r")
    assert (undo["before"], undo["after"], undo["source"], undo["source_id"]) == (1, 2, "rollback", second["change_id"])
    with store.write() as s:
        undo_first = p.rollback(s, first["change_id"], actor="alice", reason="r")
    # "Not set" comes back as not set: no row, the registry's value applies again.
    assert undo_first["after"] is None and pid not in store.parameter_values("provider", "concurrency")
    assert store.parameter_change(first["change_id"])["rolled_back_by"] == undo_first["change_id"]
    for again in (first, undo_first):  # twice, or undoing a rollback, is refused
        with pytest.raises(ParameterConflict), store.write() as s:
            p.rollback(s, again["change_id"], actor="alice", reason="r")
    redo = _set(store, pid, 2, expect=None)  # a value is applied anew instead
    assert store.parameter_values("provider", "concurrency")[pid] == 2

    trail = store.parameter_changes(source_ids=[pid, "c1"], limit=50)
    assert [c["change_id"] for c in trail] == [first["change_id"]]
    mine = [c for c in store.parameter_changes(limit=10_000) if c["subject"] == pid]
    assert [(c["before"], c["after"]) for c in mine] == [(None, 2), (2, 1), (1, 2), (2, None), (None, 2)]
    assert mine[-1]["change_id"] == redo["change_id"]
    assert [c["seq"] for c in mine] == sorted(c["seq"] for c in mine)


def test_compare_and_set_and_refusals(store):
    pid = _provider()
    _set(store, pid, 4, expect=None)
    with pytest.raises(ParameterConflict):
        _set(store, pid, 2, expect=None)  # the planner saw "not set"; an admin set 4 since
    with pytest.raises(InvalidInput):
        _set(store, pid, 4)  # already 4: no empty change in the trail
    with pytest.raises(InvalidInput), store.write() as s:
        p.apply(s, "nowhere", pid, "x", 1, source="bottleneck", actor="auto", reason="t")
    with pytest.raises(NotFound), store.write() as s:
        p.rollback(s, "chg_missing", actor="a", reason="r")

    def refuse(in_force):
        assert in_force[("provider", pid, "concurrency")]["value"] == 4  # sees the value in force
        raise GuardrailRefused("over budget")

    with pytest.raises(GuardrailRefused):
        _set(store, pid, 5, guard=refuse)
    assert store.parameter_values("provider", "concurrency")[pid] == 4  # nothing written


def _spend(url: str, subject: str, budget: float, tries: int) -> int:
    """In another process: add one $1/h slot at a time while the total stays within budget."""
    store = Store(url, upgrade=False)
    won = 0
    for _ in range(tries):

        def within(in_force):
            total = sum(r["value"] for (sc, s, n), r in in_force.items() if sc == "provider" and s.startswith(subject))
            if total + 1 > budget:
                raise GuardrailRefused("budget spent")

        slot = f"{subject}-{uuid.uuid4().hex[:6]}"
        try:
            with store.write() as s:
                p.apply(
                    s, "provider", slot, "concurrency", 1, source="bottleneck", actor="auto", reason="t", guard=within
                )
            won += 1
        except GuardrailRefused:
            pass
    store.close()
    return won


def test_a_guarded_budget_is_never_overspent_by_concurrent_writers(store):
    subject = _provider()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:
        won = pool.starmap(_spend, [(store.url, subject, 5.0, 4)] * 3)
    assert sum(won) == 5  # 12 attempts, a budget of 5: exactly 5 got through
    held = {k: v for k, v in store.parameter_values("provider", "concurrency").items() if k.startswith(subject)}
    assert sum(held.values()) == 5
