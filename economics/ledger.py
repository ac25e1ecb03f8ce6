"""Token ledger (docs/architecture.md, "Economics"): credit on top-up, reserve on dispatch, consume on
delivery, refund when nothing was delivered or the result was rejected — each exactly once —
and the balances they add up to.

The unit that is reserved and settled is called a task here (column ``task_id``). The
pipeline charges per job — one video's effect creation, ``job_id(video_id)`` — so its
entries carry the job id in ``task_id`` and the video id in ``correlation_id``; the rules
below hold for any id. The transactional store (``resources/store/ledger.py``) applies them
to SQL rows; the functions here compute on entries (frames), e.g. landed in the lake.

Entry kinds
    credit   a top-up (keyed by the payment's id, so a re-delivered payment counts once)
    reserve  tokens held for a dispatched job
    consume  the job delivered: the reservation becomes a charge
    refund   nothing was delivered: the reservation is released — or, when the job was
             already consumed (an admin rejected the result), the charge is given back.
             There is no separate ``release`` kind: a reservation is settled by exactly one
             of consume / refund, and a refund after a consume reverses the consume; both
             refunds share one entry id so a task is refunded at most once.

Exactly-once comes from deterministic entry ids: an entry is identified by (kind, task), so a
retried or re-executed run produces the same ids and the lake's insert-if-absent append
(bronze) drops the repeat. ``balances`` applies the same rule to any frame of entries
(duplicate rows with one ``entry_id`` count once), so it is also safe on unions of bronze and
not-yet-written entries.

Balance model, per task with reservation R (tokens of its reserve entry):

    state                      outstanding  consumed       refunded_consumed  spent
    reserve                    R            0              0                  0
    reserve + consume C        0            min(C, R)      0                  min(C, R)
    reserve + refund           0            0              0                  0
    reserve + consume + refund 0            c = min(C, R)  min(F, c)          c − min(F, c)

and per user

    spent     = consumed − refunded_consumed               (tokens actually charged)
    available = credited − spent − reserved_outstanding

The table is a function of the *set* of entries of a task, not of their order, so replaying
or reordering entries cannot change a balance. Consequences worth knowing:

* a consume is capped at its reservation and a refund of a consumed task at what was
  consumed, so settling can never take a user below what their reservations allowed;
* a settlement without its reserve (an "orphan": lost write, bug, forged row) is ignored —
  the ledger cannot know how much was held — and reported by ``audit`` (``flagged`` counts
  the issues per user);
* a task that was refunded on failure and then consumed by a re-execution nets to zero
  (the refund id is taken, so a later admin-rejection refund could not be told apart);
  ``audit`` reports it as ``consume_after_refund`` — re-executions should use a new task id.

``available`` is reported as computed, never clipped: it stays ≥ 0 as long as every reserve
went through ``economics.budget.reserve_or_raise``; a negative value means reserves were
written without that check, and the budget check then refuses new work.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from economics.ids import stable_id

CREDIT, RESERVE, CONSUME, REFUND = "credit", "reserve", "consume", "refund"
KINDS = (CREDIT, RESERVE, CONSUME, REFUND)
TASK_KINDS = (RESERVE, CONSUME, REFUND)

# Where a task's tokens stand (the table above), in tokens; a user's balance sums them over
# the user's tasks.
SETTLED_COLUMNS = ("reserved", "reserved_outstanding", "consumed", "refunded", "refunded_consumed", "spent")
BALANCE_SCHEMA = pl.Schema(
    {
        "user_id": pl.String,
        "credited": pl.Int64,
        **dict.fromkeys(SETTLED_COLUMNS, pl.Int64),
        "available": pl.Int64,
        "flagged": pl.Int64,
    }
)
SETTLEMENT_SCHEMA = pl.Schema({"task_id": pl.String, "user_id": pl.String, **dict.fromkeys(SETTLED_COLUMNS, pl.Int64)})
AUDIT_SCHEMA = pl.Schema(
    {
        "user_id": pl.String,
        "task_id": pl.String,
        "entry_id": pl.String,
        "issue": pl.String,
    }
)
_REQUIRED = ("entry_id", "user_id", "task_id", "kind", "tokens", "occurred_at")
_AUDIT_KEYS = ("user_id", "task_id", "entry_id")


def job_id(video_id: str) -> str:
    """The ledger id of a video's job (its effect creation, charged once): 20 hex chars of
    sha256, the ``task_id`` of its ledger entries."""
    return stable_id("job", video_id, length=20)


def entry_id(kind: str, task_id: str) -> str:
    """Deterministic ledger entry id for (kind, task): 32 hex chars of sha256.

    For a credit, ``task_id`` is the top-up's id (the payment reference)."""
    return stable_id("ledger", kind, task_id, length=32)


def _entry(kind, user_id, video_id, task_id, tokens, reason, at) -> dict:
    return {
        "entry_id": entry_id(kind, task_id),
        "user_id": user_id,
        "correlation_id": video_id,
        "task_id": task_id,
        "kind": kind,
        "tokens": int(tokens),
        "reason": reason,
        "occurred_at": at,
    }


def credit(user_id: str, tokens: int, topup_id: str, at: datetime, reason: str = "top-up") -> dict:
    """Credit entry for a top-up of ``tokens`` (> 0) identified by ``topup_id``.

    The entry's ``task_id`` and ``correlation_id`` carry the top-up id, so a re-delivered
    payment notification yields the same entry id and is credited once.

    Raises:
        ValueError: ``tokens`` is not positive.
    """
    if tokens <= 0:
        raise ValueError(f"a top-up must be positive, got {tokens} tokens")
    return _entry(CREDIT, user_id, topup_id, topup_id, tokens, reason, at)


def reserve(tasks: list[dict], at: datetime) -> list[dict]:
    """Reserve entries for dispatched tasks (no balance check: see
    ``economics.budget.reserve_or_raise``, which wraps this one).

    Args:
        tasks: dicts with ``user_id``, ``video_id``, ``task_id``, ``tokens_reserved``
            (shadow copies carry 0 and get no entry: they are never charged).
    """
    return [
        _entry(RESERVE, t["user_id"], t["video_id"], t["task_id"], t["tokens_reserved"], "dispatched", at)
        for t in tasks
        if t["tokens_reserved"] > 0
    ]


def settle(task: dict, status: str, at: datetime, reason: str = "") -> dict | None:
    """The one settling entry for a reserved task: consume when ``status == 'succeeded'``,
    refund otherwise (failed, rejected, timed out). None when nothing was reserved."""
    if task["tokens_reserved"] <= 0:
        return None
    kind = CONSUME if status == "succeeded" else REFUND
    return _entry(
        kind, task["user_id"], task["video_id"], task["task_id"], task["tokens_reserved"], reason or status, at
    )


def refund_consumed(task: dict, at: datetime, reason: str) -> dict | None:
    """Refund of a consumed task after the fact (an admin rejected the result): its own
    kind ``refund`` id is the same as a failure refund, so a task is refunded at most once."""
    if task["tokens_reserved"] <= 0:
        return None
    return _entry(REFUND, task["user_id"], task["video_id"], task["task_id"], task["tokens_reserved"], reason, at)


# --- reading the ledger -----------------------------------------------------------------


def _prepared(entries: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(valid entries counted once, issues found on the way).

    Planned lazily and materialised here and in ``_tasks``: both feed several branches,
    and on the small ledgers of one user that halves the time of ``balances`` compared with
    one big lazy plan (≈7 ms vs 16 ms for 10 entries, measured).

    Order of rules: one row per ``entry_id`` (earliest ``occurred_at``, the one an
    insert-if-absent append would have kept); entries with an unknown kind, tokens ≤ 0 or a
    task kind without task id are invalid; one row per (kind, task) among task kinds, in
    case two different ids claim the same slot.

    Raises:
        ValueError: a required column is missing.
    """
    if entries.width == 0:  # no ledger table yet
        entries = pl.DataFrame(
            schema=dict.fromkeys(_REQUIRED, pl.String) | {"tokens": pl.Int64, "occurred_at": pl.Datetime("us", "UTC")}
        )
    missing = [c for c in _REQUIRED if c not in entries.columns]
    if missing:
        raise ValueError(f"ledger entries lack columns {missing}")
    rows = (
        entries.lazy()
        .select(
            pl.col("entry_id").cast(pl.String),
            pl.col("user_id").cast(pl.String),
            pl.col("task_id").cast(pl.String),
            pl.col("kind").cast(pl.String),
            pl.col("tokens").cast(pl.Int64),
            "occurred_at",
        )
        .sort("occurred_at", "entry_id", nulls_last=True)
    )
    content = pl.struct("user_id", "task_id", "kind", "tokens")
    conflicting = (
        rows.group_by("entry_id")
        .agg(pl.col("user_id").first(), pl.col("task_id").first(), n=content.n_unique())
        .filter(pl.col("n") > 1)
        .select(*_AUDIT_KEYS, issue=pl.lit("conflicting_duplicate"))
    )
    rows = rows.unique(subset="entry_id", keep="first", maintain_order=True)
    is_valid = (
        pl.col("entry_id").is_not_null()
        & pl.col("kind").is_in(KINDS)
        & (pl.col("tokens") > 0)
        & ((pl.col("kind") == CREDIT) | pl.col("task_id").is_not_null())
    )
    invalid = rows.filter(~is_valid.fill_null(False)).select(*_AUDIT_KEYS, issue=pl.lit("invalid_entry"))
    valid = rows.filter(is_valid.fill_null(False))
    slot_taken = (pl.col("kind") != CREDIT) & (pl.int_range(pl.len()).over("kind", "task_id") > 0)
    second_slot = valid.filter(slot_taken).select(*_AUDIT_KEYS, issue=pl.lit("conflicting_duplicate"))
    issues = pl.concat([conflicting, invalid, second_slot], how="vertical_relaxed")
    valid_rows, issue_rows = pl.collect_all([valid.filter(~slot_taken), issues])
    return valid_rows, issue_rows


def _tasks(valid: pl.DataFrame) -> pl.DataFrame:
    """One row per task with the raw amounts of its reserve / consume / refund."""

    def amount(kind: str) -> pl.Expr:
        return pl.col("tokens").filter(pl.col("kind") == kind).sum().cast(pl.Int64)

    def present(kind: str) -> pl.Expr:
        return (pl.col("kind") == kind).any()

    return (
        valid.lazy()
        .filter(pl.col("kind").is_in(TASK_KINDS))
        .group_by("task_id")
        .agg(
            # the reservation's owner is the task's user; an orphan keeps its own user so
            # it can be reported
            user_id=pl.col("user_id").sort_by(pl.col("kind") != RESERVE).first(),
            users=pl.col("user_id").n_unique(),
            has_reserve=present(RESERVE),
            has_consume=present(CONSUME),
            has_refund=present(REFUND),
            r=amount(RESERVE),
            c=amount(CONSUME),
            f=amount(REFUND),
            refund_at=pl.col("occurred_at").filter(pl.col("kind") == REFUND).first(),
            consume_at=pl.col("occurred_at").filter(pl.col("kind") == CONSUME).first(),
        )
        .collect()
    )


def _settled(tasks: pl.DataFrame) -> pl.LazyFrame:
    """Apply the balance table of the module docstring to ``_tasks`` rows (orphans → 0)."""
    r, c, f = pl.col("r"), pl.col("c"), pl.col("f")
    reserved = pl.col("has_reserve")
    consumed = pl.when(reserved & pl.col("has_consume")).then(pl.min_horizontal(c, r)).otherwise(0)
    return (
        tasks.lazy()
        .with_columns(
            reserved=pl.when(reserved).then(r).otherwise(0),
            reserved_outstanding=pl.when(reserved & ~pl.col("has_consume") & ~pl.col("has_refund"))
            .then(r)
            .otherwise(0),
            consumed=consumed,
        )
        .with_columns(
            refunded_consumed=pl.when(reserved & pl.col("has_consume") & pl.col("has_refund"))
            .then(pl.min_horizontal(f, pl.col("consumed")))
            .otherwise(0),
        )
        .with_columns(
            # what the refund entry handed back: the charge it reversed, or the whole
            # reservation it released
            refunded=pl.when(~reserved | ~pl.col("has_refund"))
            .then(0)
            .when(pl.col("has_consume"))
            .then(pl.col("refunded_consumed"))
            .otherwise(r),
            spent=pl.col("consumed") - pl.col("refunded_consumed"),
        )
    )


def _task_issues(tasks: pl.DataFrame) -> pl.LazyFrame:
    """Audit rows for tasks whose entries do not make a clean reserve → settle story."""
    rules = {
        "orphan_settlement": ~pl.col("has_reserve"),
        "consume_exceeds_reserve": pl.col("has_reserve") & pl.col("has_consume") & (pl.col("c") > pl.col("r")),
        "refund_exceeds_consumed": pl.col("has_reserve")
        & pl.col("has_consume")
        & pl.col("has_refund")
        & (pl.col("f") > pl.min_horizontal("c", "r")),
        "refund_exceeds_reserve": pl.col("has_reserve") & ~pl.col("has_consume") & (pl.col("f") > pl.col("r")),
        "consume_after_refund": pl.col("has_consume")
        & pl.col("has_refund")
        & (pl.col("consume_at") > pl.col("refund_at")),
        "user_mismatch": pl.col("users") > 1,
    }
    return pl.concat(
        [
            tasks.lazy()
            .filter(rule.fill_null(False))
            .select("user_id", "task_id", entry_id=pl.lit(None, pl.String), issue=pl.lit(name))
            for name, rule in rules.items()
        ],
        how="vertical_relaxed",
    )


def task_settlements(entries: pl.DataFrame) -> pl.DataFrame:
    """Per task: where its tokens stand (``SETTLEMENT_SCHEMA``, sorted by task_id).

    ``spent`` is the net charge of the task — what revenue should count (a consumed task
    later refunded is not revenue). Orphan settlements appear with zeros.

    Raises:
        ValueError: a required column is missing.
    """
    valid, _ = _prepared(entries)
    settled = _settled(_tasks(valid)).select(SETTLEMENT_SCHEMA.names()).cast(SETTLEMENT_SCHEMA)
    return settled.sort("task_id").collect()


def audit(entries: pl.DataFrame) -> pl.DataFrame:
    """Every issue found in ``entries`` (``AUDIT_SCHEMA``): ``conflicting_duplicate``,
    ``invalid_entry``, ``orphan_settlement``, ``consume_exceeds_reserve``,
    ``refund_exceeds_consumed``, ``refund_exceeds_reserve``, ``consume_after_refund``,
    ``user_mismatch``. Each is handled by ``balances`` as the module docstring says; this
    tells operators where the producers misbehave.

    Raises:
        ValueError: a required column is missing.
    """
    valid, issues = _prepared(entries)
    out = pl.concat([issues.lazy(), _task_issues(_tasks(valid))], how="vertical_relaxed")
    return out.cast(AUDIT_SCHEMA).sort("user_id", "task_id", "issue", nulls_last=True).collect()


def balances(entries: pl.DataFrame) -> pl.DataFrame:
    """Token balances per user (``BALANCE_SCHEMA``, sorted by user_id; tokens, Int64).

    Args:
        entries: ``ledger_entries`` rows (``entry_id``, ``user_id``, ``task_id``, ``kind``,
            ``tokens``, ``occurred_at``; other columns ignored), in any order, possibly
            with repeated rows.

    Returns:
        credited, reserved (every reservation), reserved_outstanding, consumed (gross),
        refunded (released reservations + reversed charges), refunded_consumed, spent
        (= consumed − refunded_consumed), available (= credited − spent −
        reserved_outstanding) and flagged (``audit`` issues of the user).

    Raises:
        ValueError: a required column is missing.
    """
    valid, issues = _prepared(entries)
    tasks = _tasks(valid)
    per_task = _settled(tasks).group_by("user_id").agg(pl.col(c).sum() for c in SETTLED_COLUMNS)
    credited = valid.lazy().filter(pl.col("kind") == CREDIT).group_by("user_id").agg(credited=pl.col("tokens").sum())
    flagged = (
        pl.concat([issues.lazy(), _task_issues(tasks)], how="vertical_relaxed")
        .group_by("user_id")
        .agg(flagged=pl.len())
    )
    users = pl.concat([f.select("user_id") for f in (per_task, credited, flagged)]).unique()
    return (
        users.join(credited, on="user_id", how="left", nulls_equal=True)
        .join(per_task, on="user_id", how="left", nulls_equal=True)
        .join(flagged, on="user_id", how="left", nulls_equal=True)
        .with_columns(pl.exclude("user_id").fill_null(0))
        .with_columns(available=pl.col("credited") - pl.col("spent") - pl.col("reserved_outstanding"))
        .select(BALANCE_SCHEMA.names())
        .cast(BALANCE_SCHEMA)
        .sort("user_id", nulls_last=True)
        .collect()
    )


def balance_of(entries: pl.DataFrame, user_id: str) -> dict:
    """``balances`` row of one user as a dict; all zeros for a user with no entries.

    Computed on the entries carrying ``user_id`` only (what keeps it cheap on a big
    ledger), so a settlement written under another user's id — ``audit``'s
    ``user_mismatch`` — is not seen here."""
    mine = entries.filter(pl.col("user_id") == user_id) if "user_id" in entries.columns else entries
    rows = balances(mine).rows(named=True)
    if rows:
        return rows[0]
    return {c: (user_id if c == "user_id" else 0) for c in BALANCE_SCHEMA.names()}
