"""Requests, steps and tokens read and written with hand-written SQL (`db.raw`) for the hot path.

Deciding a step, activating the next stage and ingesting a reply run these per message; the
ORM versions of the same statements cost several times more than the database work itself.
Rows come back as plain dataclasses with the ORM models' attribute names, so the views and the
state machine read either.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from db.raw import RawConnection, RawSQL, placeholders
from models import ApprovalStep, ApprovalToken, BudgetRequest, Delegation, Person, RequestLine

_R = BudgetRequest.__table__  # type: ignore[attr-defined]  # SQLModel sets it on table models
_S = ApprovalStep.__table__  # type: ignore[attr-defined]
_T = ApprovalToken.__table__  # type: ignore[attr-defined]
_L = RequestLine.__table__  # type: ignore[attr-defined]
_P = Person.__table__  # type: ignore[attr-defined]
_D = Delegation.__table__  # type: ignore[attr-defined]


@dataclass
class RequestRow:
    """The columns of `budget_request` that deciding and mailing need."""

    id: int
    key: str
    title: str
    category: str
    justification: str
    amounts_note: str
    version: str
    state: str
    requester_id: int
    grant_id: int | None
    content_snapshot: dict[str, Any]
    previous_snapshot: dict[str, Any] | None
    grant_key: str | None  # the key of grant_id's grant, read in the same statement


@dataclass
class StepRow:
    """One `approval_step` row; the decision updates it as it writes."""

    id: int
    request_id: int
    version: str
    stage_key: str
    stage_title_da: str
    stage_title_en: str
    stage_order: int
    stage_mode: str
    stage_quorum: int | None
    stage_kind: str
    answer_days: int
    approver_id: int
    on_behalf_of_id: int | None
    state: str
    decision: str | None
    comment: str
    channel: str | None
    note: str
    due_date: date | None
    activated_at: datetime | None
    decided_at: datetime | None
    reminders_sent: int
    clarifications_sent: int


@dataclass(frozen=True)
class TokenRow:
    """One `approval_token` row (its hash is what was looked up)."""

    id: int
    step_id: int
    version: str
    expires_at: datetime
    used_at: datetime | None


_REQUEST_COLUMNS = (
    "id", "key", "title", "category", "justification", "amounts_note", "version", "state",
    "requester_id", "grant_id", "content_snapshot", "previous_snapshot",
)
_STEP_COLUMNS = tuple(field for field in StepRow.__dataclass_fields__)
_TOKEN_COLUMNS = ("id", "step_id", "version", "expires_at", "used_at")

# The request's columns and its grant's key (a scalar subquery: FOR UPDATE locks only the request).
_SELECT_REQUEST = (
    f"SELECT {', '.join(f'r.{name}' for name in _REQUEST_COLUMNS)},"  # noqa: S608 (fixed)
    " (SELECT g.key FROM grants g WHERE g.id = r.grant_id) FROM budget_request r"
)
_LOCK_REQUEST_OF_STEP = RawSQL(
    _SELECT_REQUEST  # noqa: S608  (fixed column and table names)
    + " WHERE r.id = (SELECT request_id FROM approval_step WHERE id = ?)",
    [_S.c.id], [*(_R.c[name] for name in _REQUEST_COLUMNS), None], lock=True,
)
_REQUEST_BY_ID = RawSQL(
    _SELECT_REQUEST + " WHERE r.id = ?",
    [_R.c.id], [*(_R.c[name] for name in _REQUEST_COLUMNS), None],
)
_STEPS_OF_REQUEST = RawSQL(
    f"SELECT {', '.join(_STEP_COLUMNS)} FROM approval_step"  # noqa: S608  (fixed names)
    " WHERE request_id = ? ORDER BY id",
    [_S.c.request_id], [_S.c[name] for name in _STEP_COLUMNS],
)
_STEP_BY_ID = RawSQL(
    f"SELECT {', '.join(_STEP_COLUMNS)} FROM approval_step WHERE id = ?",  # noqa: S608
    [_S.c.id], [_S.c[name] for name in _STEP_COLUMNS],
)
_TOKEN_BY_ID = RawSQL(
    f"SELECT {', '.join(_TOKEN_COLUMNS)} FROM approval_token WHERE id = ?",  # noqa: S608
    [_T.c.id], [_T.c[name] for name in _TOKEN_COLUMNS],
)
_TOKEN_BY_HASH = RawSQL(
    f"SELECT {', '.join(_TOKEN_COLUMNS)} FROM approval_token WHERE token_hash = ?",  # noqa: S608
    [_T.c.token_hash], [_T.c[name] for name in _TOKEN_COLUMNS],
)
_CLAIM_STEP = RawSQL(
    "UPDATE approval_step SET state = ?, decision = ?, comment = ?, channel = ?, decided_at = ?"
    " WHERE id = ? AND state = 'pending'",
    [_S.c.state, _S.c.decision, _S.c.comment, _S.c.channel, _S.c.decided_at, _S.c.id],
)
_SET_APPROVER = RawSQL(
    "UPDATE approval_step SET approver_id = ?, on_behalf_of_id = ? WHERE id = ?",
    [_S.c.approver_id, _S.c.on_behalf_of_id, _S.c.id],
)
_SET_STEP_STATE = RawSQL(
    "UPDATE approval_step SET state = ? WHERE id = ?", [_S.c.state, _S.c.id]
)
_ACTIVATE_STEP = RawSQL(
    "UPDATE approval_step SET state = ?, activated_at = ?, due_date = ? WHERE id = ?",
    [_S.c.state, _S.c.activated_at, _S.c.due_date, _S.c.id],
)
_USE_TOKEN = RawSQL(
    "UPDATE approval_token SET used_at = ? WHERE id = ? AND used_at IS NULL",
    [_T.c.used_at, _T.c.id],
)
_INSERT_TOKEN = RawSQL(
    "INSERT INTO approval_token (step_id, token_hash, version, expires_at, created_at)"
    " VALUES (?, ?, ?, ?, ?) RETURNING id",
    [_T.c.step_id, _T.c.token_hash, _T.c.version, _T.c.expires_at, _T.c.created_at],
)
_FINISH_REQUEST = RawSQL(
    "UPDATE budget_request SET state = ?, decided_at = ? WHERE id = ?",
    [_R.c.state, _R.c.decided_at, _R.c.id],
)
_LINES = RawSQL(
    "SELECT year, label, amount, amount_max, recurring FROM request_line"
    " WHERE request_id = ? ORDER BY position",
    [_L.c.request_id], [None, None, _L.c.amount, _L.c.amount_max, _L.c.recurring],
)
_GRANT_KEY = RawSQL("SELECT key FROM grants WHERE id = ?", [None])
_DELEGATES_TODAY = RawSQL(
    "SELECT substitute_id FROM delegation WHERE person_id = ? AND starts <= ? AND ends >= ?"
    " ORDER BY id",
    [_D.c.person_id, _D.c.starts, _D.c.ends],
)


@cache
def _people_statement(count: int) -> RawSQL:
    return RawSQL(
        "SELECT id, email, name, language, manager_id FROM person"  # noqa: S608  (placeholders)
        f" WHERE id IN ({placeholders(count)}) ORDER BY id",
        [_P.c.id] * count,
    )


@cache
def _revoke_statement(count: int) -> RawSQL:
    return RawSQL(
        "UPDATE approval_token SET used_at = ?"  # noqa: S608  (placeholders only)
        f" WHERE step_id IN ({placeholders(count)}) AND used_at IS NULL",
        [_T.c.used_at] + [_T.c.step_id] * count,
    )


def lock_request_of_step(connection: RawConnection, step_id: int) -> RequestRow | None:
    """The request a step belongs to, locked (FOR UPDATE on PostgreSQL)."""
    row = connection.one_or_none(_LOCK_REQUEST_OF_STEP, step_id)
    return RequestRow(*row) if row is not None else None


def request_by_id(connection: RawConnection, request_id: int) -> RequestRow | None:
    """A request, unlocked."""
    row = connection.one_or_none(_REQUEST_BY_ID, request_id)
    return RequestRow(*row) if row is not None else None


def steps_of_request(connection: RawConnection, request_id: int) -> list[StepRow]:
    """Every step of every version of a request, in id order."""
    return [StepRow(*row) for row in connection.rows(_STEPS_OF_REQUEST, request_id)]


def step_by_id(connection: RawConnection, step_id: int) -> StepRow | None:
    """One step."""
    row = connection.one_or_none(_STEP_BY_ID, step_id)
    return StepRow(*row) if row is not None else None


def token_by_id(connection: RawConnection, token_id: int) -> TokenRow | None:
    """One token by row id."""
    row = connection.one_or_none(_TOKEN_BY_ID, token_id)
    return TokenRow(*row) if row is not None else None


def token_by_hash(connection: RawConnection, digest: str) -> TokenRow | None:
    """The token whose SHA-256 is `digest`."""
    row = connection.one_or_none(_TOKEN_BY_HASH, digest)
    return TokenRow(*row) if row is not None else None


def claim_step(
    connection: RawConnection, step_id: int, *, state: str, decision: str, comment: str,
    channel: str, decided_at: datetime,
) -> bool:
    """Decide the step if it is still pending; False if someone else did first."""
    changed = connection.run(_CLAIM_STEP, state, decision, comment, channel, decided_at, step_id)
    return changed == 1


def set_approver(
    connection: RawConnection, step_id: int, *, approver_id: int, on_behalf_of_id: int | None
) -> None:
    """Record who actually answered, and for whom."""
    connection.run(_SET_APPROVER, approver_id, on_behalf_of_id, step_id)


def set_step_state(connection: RawConnection, step_id: int, state: str) -> None:
    """Move a step to `state` (skip, void, …)."""
    connection.run(_SET_STEP_STATE, state, step_id)


def activate_step(
    connection: RawConnection, step_id: int, *, state: str, at: datetime, due: date
) -> None:
    """A waiting step becomes pending with its answer deadline."""
    connection.run(_ACTIVATE_STEP, state, at, due, step_id)


def use_token(connection: RawConnection, token_id: int, *, at: datetime) -> bool:
    """Mark a token used; False if it already was."""
    return connection.run(_USE_TOKEN, at, token_id) == 1


def revoke_tokens(connection: RawConnection, step_ids: Sequence[int], *, at: datetime) -> None:
    """Every unused token of these steps becomes unusable."""
    if step_ids:
        connection.run(_revoke_statement(len(step_ids)), at, *step_ids)


def insert_token(
    connection: RawConnection, *, step_id: int, digest: str, version: str, expires_at: datetime,
    created_at: datetime,
) -> int:
    """A token row (hash only); returns its id."""
    row = connection.one_or_none(_INSERT_TOKEN, step_id, digest, version, expires_at, created_at)
    if row is None:
        raise LookupError("INSERT … RETURNING returned no row")
    return int(row[0])


def finish_request(
    connection: RawConnection, request_id: int, *, state: str, at: datetime
) -> None:
    """The request's final state."""
    connection.run(_FINISH_REQUEST, state, at, request_id)


def people_rows(
    connection: RawConnection, ids: set[int]
) -> list[tuple[int, str, str, str, int | None]]:
    """(id, email, name, language, manager_id) of these people."""
    if not ids:
        return []
    ordered = sorted(ids)
    return [
        (int(r[0]), str(r[1]), str(r[2]), str(r[3]), r[4])
        for r in connection.rows(_people_statement(len(ordered)), *ordered)
    ]


def line_rows(
    connection: RawConnection, request_id: int
) -> list[tuple[int, str, Decimal, Decimal | None, bool]]:
    """(year, label, amount, amount_max, recurring) of a request's lines, in file order."""
    return [
        (int(r[0]), str(r[1]), r[2], r[3], bool(r[4]))
        for r in connection.rows(_LINES, request_id)
    ]


def grant_key(connection: RawConnection, grant_id: int) -> str | None:
    """The key of a grant."""
    row = connection.one_or_none(_GRANT_KEY, grant_id)
    return str(row[0]) if row is not None else None


def substitutes_today(connection: RawConnection, person_id: int, today: date) -> list[int]:
    """Who stands in for `person_id` on `today` (delegations covering the day)."""
    return [int(r[0]) for r in connection.rows(_DELEGATES_TODAY, person_id, today, today)]
