"""Escalation: hand a pending step to the stage's escalation person or the approver's manager."""

from dataclasses import dataclass

from sqlalchemy import select
from sqlmodel import Session, col

from db.audit import NewEvent
from domain.answering import holder_on
from domain.approval_policy import ApproverRef
from domain.approval_state import StepEvent, StepState, next_step_state
from domain.escalation_chain import next_in_chain
from models import ApprovalStep, BudgetRequest, Person
from models.approvals import ApprovalStepBase
from workflow.context import WorkflowContext
from workflow.escalation_end import had_step, tell_admins_exhausted
from workflow.step_holders import covers_on_day
from workflow.steps import lock_request, mail_activated, revoke_tokens


@dataclass(frozen=True)
class EscalationResult:
    """The new step, or why there is none."""

    escalated: bool
    new_step_id: int | None
    target_email: str | None
    reason: str


def _resolve(session: Session, ref: ApproverRef | None) -> list[Person]:
    if ref is None:
        return []
    statement = select(Person).where(col(Person.active))
    if ref.person:
        statement = statement.where(col(Person.email) == ref.person.lower())
    else:
        statement = statement.where(col(Person.role) == ref.role).order_by(col(Person.id))
    return list(session.execute(statement).scalars())


def escalation_target(
    session: Session, step: ApprovalStep, request: BudgetRequest, *, ctx: WorkflowContext
) -> Person | None:
    """The policy's escalate_to, else the approver's manager; never the requester, never anyone
    who already had the step (so escalation cannot go round in a circle and always ends)."""
    stage = next(
        (s for s in ctx.policy(request.policy_name).stages if s.key == step.stage_key), None
    )
    candidates = _resolve(session, stage.escalate_to if stage else None)
    approver = session.get(Person, step.approver_id)
    original = session.get(Person, step.on_behalf_of_id) if step.on_behalf_of_id else approver
    for person in (original, approver):
        if person is not None and person.manager_id:
            manager = session.get(Person, person.manager_id)
            if manager is not None and manager.active:
                candidates.append(manager)
    by_id = {p.id or 0: p for p in candidates}
    chosen = next_in_chain([p.id or 0 for p in candidates], had=had_step(session, step),
                           requester=request.requester_id)
    return by_id[chosen] if chosen is not None else None


def escalate_step(
    session: Session, step_id: int, *, reason: str, ctx: WorkflowContext, events: list[NewEvent]
) -> EscalationResult:
    """Void a pending step and give its place to the escalation target, mailing them."""
    step = session.get(ApprovalStep, step_id)
    if step is None:
        return EscalationResult(False, None, None, "no such step")
    request = lock_request(session, request_id=step.request_id)
    session.refresh(step)
    if step.state is not StepState.PENDING or step.version != request.version:
        return EscalationResult(False, None, None, f"step is {step.state}")
    target = escalation_target(session, step, request, ctx=ctx)
    if target is None:
        tell_admins_exhausted(session, step, request, reason=reason, ctx=ctx, events=events)
        return EscalationResult(False, None, None, "no escalation target")
    # On a day the target is away, their substitute holds the step on their behalf.
    holder = holder_on(target.id or 0, requester=request.requester_id,
                       delegations=covers_on_day(session, ctx.today), day=ctx.today)
    approver_id, behalf_id = target.id or 0, step.on_behalf_of_id or step.approver_id
    if holder is not None and holder[1] is not None and holder[0] not in had_step(session, step):
        approver_id, behalf_id = holder[0], holder[1]
        substitute = session.get(Person, approver_id)
        target = substitute if substitute is not None else target
    step.state = next_step_state(
        step.state, event=StepEvent.VOID, request_key=request.key, step=step_id
    )
    step.note = f"escalated to {target.email}: {reason}"[:500]
    revoke_tokens(session, [step_id], now=ctx.now)
    due = ctx.calendar.add_working_days(ctx.today, step.answer_days)
    # The same stage for the new approver: every shared column copied, the answer reset.
    stage = step.model_dump(include=set(ApprovalStepBase.model_fields),
                            exclude={"decision", "channel", "decided_at"})
    escalated = ApprovalStep(**{
        **stage, "state": StepState.PENDING, "comment": "", "reminders_sent": 0,
        "clarifications_sent": 0, "note": f"escalation of step {step_id}: {reason}"[:500],
        "due_date": due, "activated_at": ctx.now}, request_id=step.request_id,
        approver_id=approver_id, on_behalf_of_id=behalf_id,
        escalated_from_id=step_id, created_at=ctx.now)
    session.add(escalated)
    session.flush()
    new_id = escalated.id or 0
    events.append(
        NewEvent(
            "step.escalated",
            f"request:{request.key}",
            details={"from_step": step_id, "to_step": new_id, "to": target.email, "reason": reason},
        )
    )
    mail_activated(session, request, [new_id], ctx=ctx, events=events)
    return EscalationResult(True, new_id, target.email, reason)
