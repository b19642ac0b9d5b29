"""Steps follow the calendar: on a day its person is away, a pending step is held by the day's
substitute (on behalf of them), and it goes back when the delegation ends.

The choice is `domain.answering.holder_on`; this module applies it to stored steps, revokes the
old holder's link and reply address, mails the new holder and tells the old one.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col

from db.audit import NewEvent
from domain.answering import holder_on, principal_of
from domain.approval_state import RequestState, StepState
from models import ApprovalStep, BudgetRequest, Delegation
from workflow.context import WorkflowContext
from workflow.outbox import enqueue
from workflow.step_notices import step_notice_mail
from workflow.steps import mail_activated, revoke_tokens
from workflow.views import person_views


@dataclass(frozen=True)
class Move:
    """A step that changed hands."""

    step_id: int
    request_key: str
    previous: int
    holder: int
    on_behalf_of: int | None


def covers_on_day(session: Session, day: date) -> list[Delegation]:
    """Every delegation covering `day`."""
    return list(session.execute(select(Delegation).where(
        col(Delegation.starts) <= day, col(Delegation.ends) >= day)).scalars())


def place_steps(
    session: Session, steps: Sequence[ApprovalStep], *, requester_id: int,
    covers: Sequence[Delegation], day: date,
) -> list[tuple[ApprovalStep, int]]:
    """Give each step to its holder on `day`; the moved steps with their previous approver.

    Escalated steps keep the holder chosen when they were escalated (their `on_behalf_of` names
    the first approver, not the person the escalation picked). A person who already has a step
    in the same stage does not get a second one: the step stays where it is.
    """
    moved = []
    for step in steps:
        if step.escalated_from_id is not None:
            continue
        holder = holder_on(principal_of(step), requester=requester_id, delegations=covers, day=day)
        if holder is None or holder == (step.approver_id, step.on_behalf_of_id):
            continue
        approver, behalf = holder
        taken = session.execute(select(col(ApprovalStep.id)).where(
            col(ApprovalStep.request_id) == step.request_id,
            col(ApprovalStep.version) == step.version,
            col(ApprovalStep.stage_key) == step.stage_key,
            col(ApprovalStep.approver_id) == approver,
            col(ApprovalStep.id) != step.id)).first()
        if taken is not None:
            continue
        previous = step.approver_id
        session.execute(update(ApprovalStep).where(col(ApprovalStep.id) == step.id)
                        .values(approver_id=approver, on_behalf_of_id=behalf))
        set_committed_value(step, "approver_id", approver)
        set_committed_value(step, "on_behalf_of_id", behalf)
        moved.append((step, previous))
    return moved


def retarget_pending(
    session: Session, *, ctx: WorkflowContext, events: list[NewEvent], why: str,
    people: set[int] | None = None,
) -> list[Move]:
    """Move every pending step (of `people`, if given) to its holder today; mail both people."""
    statement = (
        select(ApprovalStep, BudgetRequest)
        .join(BudgetRequest, col(BudgetRequest.id) == col(ApprovalStep.request_id))
        .where(col(ApprovalStep.state) == StepState.PENDING,
               col(BudgetRequest.state) == RequestState.PENDING,
               col(ApprovalStep.version) == col(BudgetRequest.version),
               col(ApprovalStep.escalated_from_id).is_(None))
        .order_by(col(ApprovalStep.id))
    )
    if people is not None:
        statement = statement.where(col(ApprovalStep.approver_id).in_(people)
                                    | col(ApprovalStep.on_behalf_of_id).in_(people))
    rows = session.execute(statement).all()
    if not rows:
        return []
    covers = covers_on_day(session, ctx.today)
    moves: list[Move] = []
    for step, request in rows:
        for moved, previous in place_steps(session, [step], requester_id=request.requester_id,
                                           covers=covers, day=ctx.today):
            sid = moved.id or 0
            revoke_tokens(session, [sid], now=ctx.now)
            mail_activated(session, request, [sid], ctx=ctx, events=events)
            names = person_views(session, {previous, moved.approver_id}
                                 | ({moved.on_behalf_of_id} if moved.on_behalf_of_id else set()))
            holder = names[moved.approver_id]
            behalf = names[moved.on_behalf_of_id] if moved.on_behalf_of_id else None
            mail = step_notice_mail(
                recipient=names[previous], reason="moved",
                request={"key": request.key, "title": request.title, "version": request.version},
                stage={"da": moved.stage_title_da, "en": moved.stage_title_en},
                facts={"holder": holder.name, "behalf": behalf.name if behalf else "",
                       "why": why},
                key=f"moved:{sid}:{moved.approver_id}:{ctx.now.isoformat()}", ctx=ctx)
            enqueue(session, [mail], now=ctx.now, domain=ctx.settings.mail_domain)
            events.append(NewEvent("step.moved", f"request:{request.key}", details={
                "step": sid, "from": names[previous].email, "to": holder.email,
                "on_behalf_of": behalf.email if behalf else None, "why": why}))
            moves.append(Move(sid, request.key, previous, moved.approver_id,
                              moved.on_behalf_of_id))
    return moves
