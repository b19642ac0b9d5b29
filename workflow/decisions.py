"""Apply one approver's decision: exactly once, atomically with what follows from it."""

from dataclasses import dataclass, field, replace

from sqlmodel import Session

from db.approval_rows import (
    StepRow,
    claim_step,
    finish_request,
    lock_request_of_step,
    set_approver,
    steps_of_request,
    token_by_id,
    use_token,
)
from db.audit import NewEvent, append_events
from db.outbox import enqueue
from db.raw import RawConnection, raw_of
from domain.approval_state import RequestState, StepState, Verdict, decide
from workflow.approval_mail import outcome_mail
from workflow.context import WorkflowContext
from workflow.steps import (
    apply_step_changes,
    mail_activated,
    revoke_tokens,
    snapshot,
)
from workflow.views import (
    assemble_request_view,
    people_of,
    person_views,
    request_facts,
)

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
    db: Session | RawConnection,
    *,
    step_id: int,
    verdict: Verdict,
    comment: str,
    channel: str,
    actor_email: str,
    token_id: int | None,
    ctx: WorkflowContext,
    audit: list[NewEvent] | None = None,
    acting_person_id: int | None = None,
) -> DecisionResult:
    """Decide a pending step in the caller's transaction; a stale attempt changes nothing.

    The decision's audit events are appended to the chain here, or to `audit` if given: the
    caller then appends them (with its own) in the same transaction, one chain write instead of two.
    `acting_person_id` is who actually answered (the approver's substitute, or the person the
    approver stood in for); the step records it once the claim has succeeded. `db` is the
    caller's transaction: a session, or its raw connection (`db.raw`), which is all this uses.
    """
    connection = raw_of(db)
    # One statement finds and locks the step's request (FOR UPDATE on PostgreSQL; SQLite
    # already holds the write lock), then one loads every step of it, fresh after the lock.
    request = lock_request_of_step(connection, step_id)
    if request is None:
        return DecisionResult(False, "", "", "not-found", f"step {step_id}")
    all_steps = steps_of_request(connection, request.id)
    step = next(s for s in all_steps if s.id == step_id)
    refusal = _refusal(connection, step, request_version=request.version, token_id=token_id,
                       ctx=ctx)
    if refusal is None and request.state != RequestState.PENDING.value:
        refusal = ("decided", f"request is {request.state}")
    if refusal is not None:
        return DecisionResult(False, request.key, request.state, *refusal)
    new_state = StepState.APPROVED if verdict is Verdict.APPROVE else StepState.REJECTED
    if not claim_step(connection, step_id, state=new_state.value, decision=verdict.value,
                      comment=comment[:4000], channel=channel, decided_at=ctx.now):
        return DecisionResult(False, request.key, request.state, "decided", "already answered")
    step.state, step.decision, step.comment = new_state.value, verdict.value, comment[:4000]
    step.channel, step.decided_at = channel, ctx.now
    if acting_person_id is not None and acting_person_id != step.approver_id:
        _record_acting_person(connection, step, acting_person_id)
    # Impossible while we hold the request lock; never decide on a doubtful token.
    if token_id is not None and not use_token(connection, token_id, at=ctx.now):
        raise RuntimeError(f"token {token_id} was used concurrently for step {step_id}")
    steps = [s for s in all_steps if s.version == request.version]
    by_id = {s.id: s for s in steps}
    people = person_views(connection, people_of(request, all_steps))
    emails = {pid: person.email for pid, person in people.items()}
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
    followers = [(sid, state) for sid, state in outcome.step_changes if sid != step_id]
    activated = apply_step_changes(connection, followers, steps=by_id, ctx=ctx)
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
    revoke_tokens(connection, skipped, now=ctx.now)
    if outcome.finished:
        request.state = outcome.request_state.value
        finish_request(connection, request.id, state=request.state, at=ctx.now)
    view = None
    if activated or outcome.finished:
        # The rows loaded above as this transaction changed them: what load_request_view
        # would read back, without reading the steps and people again.
        grant, lines = request_facts(connection, request)
        view = assemble_request_view(request, all_steps, people, grant_key=grant, lines=lines)
    mails = mail_activated(connection, request, activated, ctx=ctx, events=events, view=view)
    if outcome.finished and view is not None:
        approved = outcome.request_state is RequestState.APPROVED
        enqueue(
            connection,
            [outcome_mail(view, approved=approved, ctx=ctx)],
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
    if audit is None:
        append_events(connection, events, now=ctx.now)
    else:
        audit.extend(events)
    return DecisionResult(
        True,
        request.key,
        request.state,
        finished=outcome.finished,
        next_approvers=tuple(m.recipient for m in mails),
    )


def _refusal(
    connection: RawConnection,
    step: StepRow,
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
        token = token_by_id(connection, token_id)
        if token is None or token.step_id != step.id:
            return ("not-found", "token does not belong to the step")
        if token.used_at is not None:
            return ("decided", "token already used")
        if token.expires_at <= ctx.now:
            return ("expired", token.expires_at.isoformat())
    return None


def _record_acting_person(connection: RawConnection, step: StepRow, acting_person_id: int) -> None:
    """The original approver answering herself is no longer "on behalf of"; a substitute is."""
    behalf = None if acting_person_id == step.on_behalf_of_id else (
        step.on_behalf_of_id or step.approver_id)
    set_approver(connection, step.id, approver_id=acting_person_id, on_behalf_of_id=behalf)
    step.approver_id, step.on_behalf_of_id = acting_person_id, behalf
