"""Shared step operations: snapshots for the state machine, activation with tokens and mails."""

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col

from db.approval_rows import StepRow, activate_step, insert_token, set_step_state
from db.approval_rows import revoke_tokens as revoke_step_tokens
from db.audit import NewEvent
from db.outbox import enqueue
from db.raw import RawConnection, raw_of
from domain.approval_state import StepSnapshot, StepState
from domain.errors import NotFoundError
from models import ApprovalStep, BudgetRequest
from models.outbox import NewMail
from workflow.approval_mail import approval_request_mail
from workflow.context import WorkflowContext
from workflow.tokens import new_token, token_hash
from workflow.views import RequestLike, RequestView, StepLike, load_request_view

_LOCK_BY_ID = (
    select(BudgetRequest).where(col(BudgetRequest.id) == bindparam("request_id")).with_for_update()
)
_LOCK_BY_KEY = (
    select(BudgetRequest).where(col(BudgetRequest.key) == bindparam("key")).with_for_update()
)


class RequestNotFoundError(NotFoundError):
    """No budget request has this key."""

    def __init__(self, request_key: str) -> None:
        super().__init__(f"no budget request with key {request_key!r}")
        self.request_key = request_key


def lock_request(
    session: Session, *, request_id: int | None = None, key: str | None = None
) -> BudgetRequest:
    """Load a request FOR UPDATE (PostgreSQL row lock; SQLite already holds the write lock)."""
    if request_id is not None:
        found = session.execute(_LOCK_BY_ID, {"request_id": request_id})
    else:
        found = session.execute(_LOCK_BY_KEY, {"key": key})
    request: BudgetRequest | None = found.scalar_one_or_none()
    if request is None:
        raise RequestNotFoundError(key or f"#{request_id}")
    return request


def current_steps(session: Session, request: BudgetRequest) -> list[ApprovalStep]:
    """Steps of the request's current version."""
    return list(
        session.execute(
            select(ApprovalStep)
            .where(
                col(ApprovalStep.request_id) == request.id,
                col(ApprovalStep.version) == request.version,
            )
            .order_by(col(ApprovalStep.id))
        ).scalars()
    )


def snapshot(steps: Sequence[StepLike], emails: dict[int, str]) -> list[StepSnapshot]:
    """The state machine's view of stored steps."""
    return [
        StepSnapshot(
            step_id=s.id or 0,
            stage_key=s.stage_key,
            order=s.stage_order,
            mode=s.stage_mode,  # type: ignore[arg-type]  # validated at routing
            quorum=s.stage_quorum,
            state=StepState(s.state),
            approver_email=emails.get(s.approver_id, ""),
            kind=s.stage_kind,  # type: ignore[arg-type]  # validated at routing
        )
        for s in steps
    ]


def _learn(step: ApprovalStep | StepRow, name: str, value: object) -> None:
    """Tell a loaded row what the raw UPDATE wrote (an ORM row must not see it as a change)."""
    if isinstance(step, ApprovalStep):
        set_committed_value(step, name, value)
    else:
        setattr(step, name, value)


def apply_step_changes(
    db: Session | RawConnection,
    changes: Sequence[tuple[int, StepState]],
    *,
    steps: Mapping[int, ApprovalStep | StepRow],
    ctx: WorkflowContext,
) -> list[int]:
    """Write state changes; activated steps get a due date. Returns the activated ids."""
    if not changes:
        return []
    connection = raw_of(db)
    activated = []
    for step_id, state in changes:
        step = steps[step_id]
        values: dict[str, object] = {"state": state.value}
        if step.state == StepState.WAITING.value and state is StepState.PENDING:
            due = ctx.calendar.add_working_days(ctx.today, step.answer_days)
            values |= {"activated_at": ctx.now, "due_date": due}
            activated.append(step_id)
            activate_step(connection, step_id, state=state.value, at=ctx.now, due=due)
        else:
            set_step_state(connection, step_id, state.value)
        for name, value in values.items():
            _learn(step, name, value)
    return activated


def issue_tokens(
    db: Session | RawConnection,
    step_ids: Sequence[int],
    *,
    version: str,
    ctx: WorkflowContext,
) -> dict[int, tuple[str, int]]:
    """A fresh single-use token per step (only the hash is stored): step id → (token, row id)."""
    if not step_ids:
        return {}
    connection = raw_of(db)
    expires = ctx.now + ctx.token_lifetime
    issued = {}
    for step_id in step_ids:
        token = new_token()
        issued[step_id] = (token, insert_token(
            connection, step_id=step_id, digest=token_hash(token), version=version,
            expires_at=expires, created_at=ctx.now))
    return issued


def mail_activated(
    db: Session | RawConnection,
    request: RequestLike,
    step_ids: Sequence[int],
    *,
    ctx: WorkflowContext,
    events: list[NewEvent],
    reminder: bool = False,
    view: RequestView | None = None,
) -> list[NewMail]:
    """Tokens and approval mails for newly pending steps, enqueued in this transaction.

    `view` is the request as it stands now, if the caller has it; otherwise it is loaded.
    """
    if not step_ids:
        return []
    connection = raw_of(db)
    tokens = issue_tokens(connection, step_ids, version=request.version, ctx=ctx)
    if view is None:
        view = load_request_view(connection, request)
    by_id = {s.id: s for s in view.steps}
    mails = [
        approval_request_mail(
            view, by_id[step_id], token=token, token_id=token_id, ctx=ctx, reminder=reminder
        )
        for step_id, (token, token_id) in tokens.items()
    ]
    enqueue(connection, mails, now=ctx.now, domain=ctx.settings.mail_domain)
    for step_id in step_ids:
        step = by_id[step_id]
        events.append(
            NewEvent(
                "step.activated",
                f"request:{request.key}",
                details={
                    "step": step_id,
                    "stage": step.stage_key,
                    "approver": step.approver.email,
                    "on_behalf_of": step.on_behalf_of.email if step.on_behalf_of else None,
                    "due_date": step.due_date,
                },
            )
        )
    return mails


def revoke_tokens(db: Session | RawConnection, step_ids: Sequence[int], *, now: datetime) -> None:
    """Make every unused token of these steps unusable."""
    if step_ids:
        revoke_step_tokens(raw_of(db), list(step_ids), at=now)
