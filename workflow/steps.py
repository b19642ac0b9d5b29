"""Shared step operations: snapshots for the state machine, activation with tokens and mails."""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col

from db.audit import NewEvent
from domain.approval_state import StepSnapshot, StepState
from domain.errors import NotFoundError
from models import ApprovalStep, ApprovalToken, BudgetRequest
from models.outbox import NewMail
from workflow.approval_mail import approval_request_mail
from workflow.context import WorkflowContext
from workflow.outbox import enqueue
from workflow.tokens import new_token, token_hash
from workflow.views import RequestView, load_request_view

# Core statements built once for the per-decision writes (an ORM UPDATE costs ~1 ms of
# planning and session synchronisation per call; these compile once and stay cached).
_STEPS = ApprovalStep.__table__  # type: ignore[attr-defined]  # SQLModel sets it on table models
_TOKENS = ApprovalToken.__table__  # type: ignore[attr-defined]
_SET_STEP_STATE = (
    update(_STEPS).where(_STEPS.c.id == bindparam("step_id")).values(state=bindparam("new_state"))
)
_ACTIVATE_STEP = (
    update(_STEPS)
    .where(_STEPS.c.id == bindparam("step_id"))
    .values(state=bindparam("new_state"), activated_at=bindparam("at"), due_date=bindparam("due"))
)
_INSERT_TOKEN = insert(_TOKENS).returning(
    _TOKENS.c.token_hash, _TOKENS.c.id, sort_by_parameter_order=True
)

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


def snapshot(steps: Sequence[ApprovalStep], emails: dict[int, str]) -> list[StepSnapshot]:
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


def apply_step_changes(
    session: Session,
    changes: Sequence[tuple[int, StepState]],
    *,
    steps: dict[int, ApprovalStep],
    ctx: WorkflowContext,
) -> list[int]:
    """Write state changes; activated steps get a due date. Returns the activated ids."""
    activated = []
    for step_id, state in changes:
        step = steps[step_id]
        values: dict[str, object] = {"state": state}
        if step.state is StepState.WAITING and state is StepState.PENDING:
            due = ctx.calendar.add_working_days(ctx.today, step.answer_days)
            values |= {"activated_at": ctx.now, "due_date": due}
            activated.append(step_id)
            session.execute(
                _ACTIVATE_STEP,
                {"step_id": step_id, "new_state": state, "at": ctx.now, "due": due},
            )
        else:
            session.execute(_SET_STEP_STATE, {"step_id": step_id, "new_state": state})
        # The UPDATE is Core (built once): the loaded row learns the values as committed ones.
        for name, value in values.items():
            set_committed_value(step, name, value)
    return activated


def issue_tokens(
    session: Session, step_ids: Sequence[int], *, version: str, ctx: WorkflowContext
) -> dict[int, tuple[str, int]]:
    """A fresh single-use token per step (only the hash is stored): step id → (token, row id)."""
    tokens = {step_id: new_token() for step_id in step_ids}
    if not tokens:
        return {}
    expires = ctx.now + ctx.token_lifetime
    hashes = {step_id: token_hash(token) for step_id, token in tokens.items()}
    rows = session.execute(
        _INSERT_TOKEN,
        [
            {
                "step_id": step_id,
                "token_hash": digest,
                "version": version,
                "expires_at": expires,
                "created_at": ctx.now,
            }
            for step_id, digest in hashes.items()
        ],
    ).all()
    ids = {digest: row_id for digest, row_id in rows}  # noqa: C416  (Row is not a 2-tuple for dict())
    return {step_id: (token, ids[hashes[step_id]]) for step_id, token in tokens.items()}


def mail_activated(
    session: Session,
    request: BudgetRequest,
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
    tokens = issue_tokens(session, step_ids, version=request.version, ctx=ctx)
    if view is None:
        view = load_request_view(session, request)
    by_id = {s.id: s for s in view.steps}
    mails = [
        approval_request_mail(
            view, by_id[step_id], token=token, token_id=token_id, ctx=ctx, reminder=reminder
        )
        for step_id, (token, token_id) in tokens.items()
    ]
    enqueue(session, mails, now=ctx.now, domain=ctx.settings.mail_domain)
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


def revoke_tokens(session: Session, step_ids: Sequence[int], *, now: datetime) -> None:
    """Make every unused token of these steps unusable."""
    if step_ids:
        session.execute(
            update(ApprovalToken)
            .where(
                col(ApprovalToken.step_id).in_(list(step_ids)), col(ApprovalToken.used_at).is_(None)
            )
            .values(used_at=now)
        )
