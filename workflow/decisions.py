"""Apply one approver's decision: exactly once, atomically with what follows from it."""

from dataclasses import dataclass, field, replace

from sqlalchemy import select, update
from sqlmodel import Session, col

from db.audit import NewEvent, append_events
from db.outbox import enqueue
from domain.approval_state import RequestState, StepState, Verdict, decide
from models import ApprovalStep, ApprovalToken, Person
from workflow.approval_mail import outcome_mail
from workflow.context import WorkflowContext
from workflow.steps import (
    apply_step_changes,
    current_steps,
    lock_request,
    mail_activated,
    revoke_tokens,
    snapshot,
)
from workflow.views import load_request_view

REFUSALS = ("outdated", "decided", "expired", "not-found")


@dataclass(frozen=True)
class DecisionResult:
    """`applied` or why not (`reason` ∈ outdated, decided, expired, not-found)."""

    applied: bool
    request_key: str
    request_state: str
    reason: str = ""
    detail: str = ""
    finished: bool = False
    next_approvers: tuple[str, ...] = field(default_factory=tuple)


def apply_decision(
    session: Session,
    *,
    step_id: int,
    verdict: Verdict,
    comment: str,
    channel: str,
    actor_email: str,
    token_id: int | None,
    ctx: WorkflowContext,
) -> DecisionResult:
    """Decide a pending step in the caller's transaction; a stale attempt changes nothing."""
    found = session.execute(
        select(col(ApprovalStep.request_id)).where(col(ApprovalStep.id) == step_id)
    ).scalar_one_or_none()
    if found is None:
        return DecisionResult(False, "", "", "not-found", f"step {step_id}")
    request = lock_request(session, request_id=found)
    step = session.execute(
        select(ApprovalStep)
        .where(col(ApprovalStep.id) == step_id)
        .execution_options(populate_existing=True)
    ).scalar_one()
    refusal = _refusal(session, step, request_version=request.version, token_id=token_id, ctx=ctx)
    if refusal is None and request.state != RequestState.PENDING.value:
        refusal = ("decided", f"request is {request.state}")
    if refusal is not None:
        return DecisionResult(False, request.key, request.state, *refusal)
    new_state = StepState.APPROVED if verdict is Verdict.APPROVE else StepState.REJECTED
    claimed = session.execute(
        update(ApprovalStep)
        .where(col(ApprovalStep.id) == step_id, col(ApprovalStep.state) == StepState.PENDING.value)
        .values(
            state=new_state.value,
            decision=verdict.value,
            comment=comment[:4000],
            channel=channel,
            decided_at=ctx.now,
        )
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]  # CursorResult of an UPDATE
        return DecisionResult(False, request.key, request.state, "decided", "already answered")
    if token_id is not None:
        used = session.execute(
            update(ApprovalToken)
            .where(col(ApprovalToken.id) == token_id, col(ApprovalToken.used_at).is_(None))
            .values(used_at=ctx.now)
        )
        if used.rowcount != 1:  # type: ignore[attr-defined]
            # Impossible while we hold the request lock; never decide on a doubtful token.
            raise RuntimeError(f"token {token_id} was used concurrently for step {step_id}")
    steps = current_steps(session, request)
    by_id = {s.id or 0: s for s in steps}
    emails = {pid: email for pid, email in session.execute(  # noqa: C416  (Rows, not pairs)
        select(col(Person.id), col(Person.email))).all()}
    before = [
        replace(snap, state=StepState.PENDING) if snap.step_id == step_id else snap
        for snap in snapshot(steps, emails)
    ]
    outcome = decide(
        before,
        step_id=step_id,
        verdict=verdict,
        request_key=request.key,
        request_state=RequestState(request.state),
    )
    by_id[step_id].state = new_state.value
    followers = [(sid, state) for sid, state in outcome.step_changes if sid != step_id]
    activated = apply_step_changes(session, followers, steps=by_id, ctx=ctx)
    events = [
        NewEvent(
            "step.decided",
            f"request:{request.key}",
            actor=actor_email,
            details={
                "step": step_id,
                "stage": step.stage_key,
                "decision": verdict.value,
                "channel": channel,
                "comment": comment[:500],
                "approver": emails.get(step.approver_id),
                "on_behalf_of": emails.get(step.on_behalf_of_id) if step.on_behalf_of_id else None,
                "version": request.version,
            },
        )
    ]
    skipped = [sid for sid, state in followers if state is StepState.SKIPPED]
    revoke_tokens(session, skipped, now=ctx.now)
    mails = mail_activated(session, request, activated, ctx=ctx, events=events)
    if outcome.finished:
        request.state = outcome.request_state.value
        request.decided_at = ctx.now
        session.flush()
        approved = outcome.request_state is RequestState.APPROVED
        enqueue(
            session,
            [outcome_mail(load_request_view(session, request), approved=approved, ctx=ctx)],
            now=ctx.now,
            domain=ctx.settings.mail_domain,
        )
        events.append(
            NewEvent(
                f"request.{outcome.request_state.value}",
                f"request:{request.key}",
                actor=actor_email,
                details={"version": request.version},
            )
        )
    append_events(session, events, now=ctx.now)
    return DecisionResult(
        True,
        request.key,
        request.state,
        finished=outcome.finished,
        next_approvers=tuple(m.recipient for m in mails),
    )


def _refusal(
    session: Session,
    step: ApprovalStep,
    *,
    request_version: str,
    token_id: int | None,
    ctx: WorkflowContext,
) -> tuple[str, str] | None:
    if step.version != request_version or step.state == StepState.VOID.value:
        return ("outdated", f"version {step.version} was replaced by {request_version}")
    if step.state != StepState.PENDING.value:
        return ("decided", step.state)
    if token_id is not None:
        token = session.get(ApprovalToken, token_id)
        if token is None or token.step_id != step.id:
            return ("not-found", "token does not belong to the step")
        if token.used_at is not None:
            return ("decided", "token already used")
        if token.expires_at <= ctx.now:
            return ("expired", token.expires_at.isoformat())
    return None
