"""Read-only reports for admins: pending approvals with age and deadline."""

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlmodel import Session, col

from domain.approval_state import RequestState, StepState
from models import ApprovalStep, BudgetRequest, Person


@dataclass(frozen=True)
class PendingApproval:
    """One pending step as the admin table shows it."""

    request_key: str
    title: str
    stage: str
    approver: str
    due_date: date | None
    age_days: int
    overdue: bool

    def as_row(self) -> dict[str, object]:
        """A row for a Prefect table artifact."""
        return {
            "": "⚠" if self.overdue else "",
            "request": self.request_key,
            "title": self.title,
            "stage": self.stage,
            "approver": self.approver,
            "answer by": self.due_date.isoformat() if self.due_date else "",
            "age (days)": self.age_days,
        }


def pending_approvals(session: Session, *, today: date, now: datetime) -> list[PendingApproval]:
    """Every pending step of a pending request, overdue first, then oldest first."""
    rows = session.execute(
        select(ApprovalStep, col(BudgetRequest.key), col(BudgetRequest.title), col(Person.email))
        .join(BudgetRequest, col(BudgetRequest.id) == col(ApprovalStep.request_id))
        .join(Person, col(Person.id) == col(ApprovalStep.approver_id))
        .where(col(ApprovalStep.state) == StepState.PENDING,
               col(BudgetRequest.state) == RequestState.PENDING)
    ).all()
    result = [
        PendingApproval(
            key,
            title,
            step.stage_key,
            email,
            step.due_date,
            (now - step.activated_at).days if step.activated_at else 0,
            bool(step.due_date and step.due_date < today),
        )
        for step, key, title, email in rows
    ]
    return sorted(result, key=lambda r: (not r.overdue, -r.age_days, r.request_key))
