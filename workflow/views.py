"""Read models for mails and pages: a request with its lines and steps, loaded in few queries."""

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from sqlmodel import Session

from db.approval_rows import RequestRow, grant_key, line_rows, people_rows, steps_of_request
from db.raw import RawConnection, raw_of
from db.requests import LineFacts, totals


@dataclass(frozen=True)
class PersonView:
    """Someone named in a mail."""

    id: int
    email: str
    name: str
    language: str
    manager_id: int | None


@dataclass(frozen=True)
class StepView:
    """One approval step."""

    id: int
    stage_key: str
    stage_title_da: str
    stage_title_en: str
    stage_kind: str
    state: str
    version: str
    approver: PersonView
    on_behalf_of: PersonView | None
    decision: str | None
    comment: str
    channel: str | None
    due_date: date | None
    decided_at: datetime | None
    reminders_sent: int
    clarifications_sent: int
    note: str


@dataclass(frozen=True)
class RequestView:
    """A request as an approver sees it."""

    id: int
    key: str
    title: str
    category: str
    justification: str
    amounts_note: str
    version: str
    state: str
    requester: PersonView
    grant_key: str | None
    lines: tuple[LineFacts, ...]
    content: dict[str, Any]
    previous: dict[str, Any] | None
    steps: tuple[StepView, ...]

    @property
    def total_low(self) -> Any:
        """Sum of the lower amounts."""
        return sum((line.amount for line in self.lines), start=type(self.total_high)(0))

    @property
    def total_high(self) -> Any:
        """Sum of the upper amounts."""
        return totals(self.lines)[0]


class RequestLike(Protocol):
    """A budget request as stored: the ORM model or `db.approval_rows.RequestRow`."""

    @property
    def id(self) -> int | None: ...
    @property
    def key(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def category(self) -> str: ...
    @property
    def justification(self) -> str: ...
    @property
    def amounts_note(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def requester_id(self) -> int: ...
    @property
    def grant_id(self) -> int | None: ...
    @property
    def content_snapshot(self) -> dict[str, Any]: ...
    @property
    def previous_snapshot(self) -> dict[str, Any] | None: ...


class StepLike(Protocol):
    """An approval step as stored: the ORM model or `db.approval_rows.StepRow`."""

    @property
    def id(self) -> int | None: ...
    @property
    def version(self) -> str: ...
    @property
    def stage_key(self) -> str: ...
    @property
    def stage_title_da(self) -> str: ...
    @property
    def stage_title_en(self) -> str: ...
    @property
    def stage_order(self) -> int: ...
    @property
    def stage_mode(self) -> str: ...
    @property
    def stage_quorum(self) -> int | None: ...
    @property
    def stage_kind(self) -> str: ...
    @property
    def answer_days(self) -> int: ...
    @property
    def approver_id(self) -> int: ...
    @property
    def on_behalf_of_id(self) -> int | None: ...
    @property
    def state(self) -> str: ...
    @property
    def decision(self) -> str | None: ...
    @property
    def comment(self) -> str: ...
    @property
    def channel(self) -> str | None: ...
    @property
    def note(self) -> str: ...
    @property
    def due_date(self) -> date | None: ...
    @property
    def decided_at(self) -> datetime | None: ...
    @property
    def reminders_sent(self) -> int: ...
    @property
    def clarifications_sent(self) -> int: ...


def person_views(db: Session | RawConnection, ids: set[int]) -> dict[int, PersonView]:
    """People by id."""
    if not ids:
        return {}
    rows = people_rows(raw_of(db), ids)
    return {
        pid: PersonView(pid, email, name, language, manager_id)
        for pid, email, name, language, manager_id in rows
    }


def load_request_view(db: Session | RawConnection, request: RequestLike) -> RequestView:
    """Everything about one request, including every step of every version."""
    connection = raw_of(db)
    steps = steps_of_request(connection, request.id or 0)
    people = person_views(connection, people_of(request, steps))
    grant, lines = request_facts(connection, request)
    return assemble_request_view(request, steps, people, grant_key=grant, lines=lines)


def people_of(request: RequestLike, steps: Sequence[StepLike]) -> set[int]:
    """Ids of everyone a view of the request names: requester, approvers, principals."""
    return (
        {request.requester_id}
        | {s.approver_id for s in steps}
        | {s.on_behalf_of_id for s in steps if s.on_behalf_of_id}
    )


def request_facts(
    db: Session | RawConnection, request: RequestLike
) -> tuple[str | None, tuple[LineFacts, ...]]:
    """The request's grant key and its lines."""
    connection = raw_of(db)
    if isinstance(request, RequestRow):  # read with the request already
        grant = request.grant_key
    else:
        grant = grant_key(connection, request.grant_id) if request.grant_id else None
    return grant, _lines_of_version(connection, request.id or 0, request.version)


# A version is the hash of a request's amounts and texts, its lines included: the lines of
# (request, version) never change, and every decision and reminder mail needs them again.
_LINES_CACHE: OrderedDict[tuple[int, str], tuple[LineFacts, ...]] = OrderedDict()
_LINES_CACHE_SIZE = 2048


def _lines_of_version(
    connection: RawConnection, request_id: int, version: str
) -> tuple[LineFacts, ...]:
    key = (request_id, version)
    lines = _LINES_CACHE.get(key)
    if lines is None:
        lines = tuple(LineFacts(*row) for row in line_rows(connection, request_id))
        _LINES_CACHE[key] = lines
        if len(_LINES_CACHE) > _LINES_CACHE_SIZE:
            _LINES_CACHE.popitem(last=False)
    return lines


def assemble_request_view(
    request: RequestLike,
    steps: Sequence[StepLike],
    people: dict[int, PersonView],
    *,
    grant_key: str | None,
    lines: tuple[LineFacts, ...],
) -> RequestView:
    """The view from rows already loaded (all steps of every version, in id order)."""
    return RequestView(
        id=request.id or 0,
        key=request.key,
        title=request.title,
        category=request.category,
        justification=request.justification,
        amounts_note=request.amounts_note,
        version=request.version,
        state=request.state,
        requester=people[request.requester_id],
        grant_key=grant_key,
        lines=lines,
        content=request.content_snapshot,
        previous=request.previous_snapshot,
        steps=tuple(
            StepView(
                id=s.id or 0,
                stage_key=s.stage_key,
                stage_title_da=s.stage_title_da,
                stage_title_en=s.stage_title_en,
                stage_kind=s.stage_kind,
                state=s.state,
                version=s.version,
                approver=people[s.approver_id],
                on_behalf_of=people.get(s.on_behalf_of_id) if s.on_behalf_of_id else None,
                decision=s.decision,
                comment=s.comment,
                channel=s.channel,
                due_date=s.due_date,
                decided_at=s.decided_at,
                reminders_sent=s.reminders_sent,
                clarifications_sent=s.clarifications_sent,
                note=s.note,
            )
            for s in steps
        ),
    )
