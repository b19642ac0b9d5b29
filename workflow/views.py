"""Read models for mails and pages: a request with its lines and steps, loaded in few queries."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select
from sqlmodel import Session, col

from db.requests import LineFacts, request_lines, totals
from domain.approval_state import RequestState
from models import ApprovalStep, BudgetRequest, Grant, Person
from models.approvals import ApprovalStepBase, BudgetRequestBase


@dataclass(frozen=True)
class PersonView:
    """Someone named in a mail."""

    id: int
    email: str
    name: str
    language: str
    manager_id: int | None


class StepView(ApprovalStepBase):
    """One approval step with the people it names (the columns come from `ApprovalStepBase`)."""

    id: int
    approver: PersonView
    on_behalf_of: PersonView | None


class RequestView(BudgetRequestBase):
    """A request as an approver sees it (the columns come from `BudgetRequestBase`)."""

    id: int
    version: str
    state: RequestState
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


_STEP_VIEW_COLUMNS = tuple(ApprovalStepBase.model_fields)
_REQUEST_VIEW_COLUMNS = (*BudgetRequestBase.model_fields, "version", "state")
# Built once: these run in every decision (building an ORM select costs more than running it).
_PEOPLE = select(
    col(Person.id), col(Person.email), col(Person.name), col(Person.language),
    col(Person.manager_id),
).where(col(Person.id).in_(bindparam("ids", expanding=True)))
_GRANT_KEY = select(col(Grant.key)).where(col(Grant.id) == bindparam("grant_id"))


def person_views(session: Session, ids: set[int]) -> dict[int, PersonView]:
    """People by id."""
    if not ids:
        return {}
    rows = session.execute(_PEOPLE, {"ids": sorted(ids)}).all()
    return {
        pid or 0: PersonView(pid or 0, email, name, language, manager_id)
        for pid, email, name, language, manager_id in rows
    }


def load_request_view(session: Session, request: BudgetRequest) -> RequestView:
    """Everything about one request, including every step of every version."""
    steps = list(
        session.execute(
            select(ApprovalStep)
            .where(col(ApprovalStep.request_id) == request.id)
            .order_by(col(ApprovalStep.id))
        ).scalars()
    )
    people = person_views(session, people_of(request, steps))
    grant_key, lines = request_facts(session, request)
    return assemble_request_view(request, steps, people, grant_key=grant_key, lines=lines)


def people_of(request: BudgetRequest, steps: Sequence[ApprovalStep]) -> set[int]:
    """Ids of everyone a view of the request names: requester, approvers, principals."""
    return (
        {request.requester_id}
        | {s.approver_id for s in steps}
        | {s.on_behalf_of_id for s in steps if s.on_behalf_of_id}
    )


def request_facts(
    session: Session, request: BudgetRequest
) -> tuple[str | None, tuple[LineFacts, ...]]:
    """The request's grant key and its lines."""
    grant_key = None
    if request.grant_id:
        grant_key = session.execute(_GRANT_KEY, {"grant_id": request.grant_id}).scalar_one_or_none()
    return grant_key, tuple(request_lines(session, request.id or 0))


def assemble_request_view(
    request: BudgetRequest,
    steps: Sequence[ApprovalStep],
    people: dict[int, PersonView],
    *,
    grant_key: str | None,
    lines: tuple[LineFacts, ...],
) -> RequestView:
    """The view from rows already loaded (all steps of every version, in id order)."""
    return RequestView.model_construct(
        **{name: getattr(request, name) for name in _REQUEST_VIEW_COLUMNS},
        id=request.id or 0, requester=people[request.requester_id], grant_key=grant_key,
        lines=lines, content=request.content_snapshot, previous=request.previous_snapshot,
        steps=tuple(
            StepView.model_construct(
                **{name: getattr(s, name) for name in _STEP_VIEW_COLUMNS},
                id=s.id or 0,
                approver=people[s.approver_id],
                on_behalf_of=people.get(s.on_behalf_of_id) if s.on_behalf_of_id else None,
            )
            for s in steps
        ),
    )
