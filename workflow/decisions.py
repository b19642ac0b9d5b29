"""Apply one approver's decision: exactly once, atomically with what follows from it."""

from dataclasses import dataclass, field, replace

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col

from db.audit import NewEvent, append_events
from db.requests import LineFacts
from domain.answering import (
    answer_refusal,
    answerer_refusal,
    principal_of,
    refusal_detail,
    reply_word,
)
from domain.approval_state import RequestState, StepState, Verdict, decide
from domain.errors import Refusal
from models import ApprovalStep, ApprovalToken, BudgetRequest
from workflow.approval_mail import outcome_mail
from workflow.context import WorkflowContext
from workflow.delegations import covers_on
from workflow.outbox import enqueue
from workflow.step_holders import covers_on_day, place_steps
from workflow.steps import (
    apply_step_changes,
    mail_activated,
    revoke_tokens,
    snapshot,
)
from workflow.views import (
    RequestView,
    assemble_request_view,
    people_of,
    person_views,
    request_facts,
)

_STEPS = ApprovalStep.__table__  # type: ignore[attr-defined]  # SQLModel sets it on table models
# The conditional claim: only a step still pending is decided (Core, built once).
_CLAIM_STEP = (
    update(_STEPS)
    .where(_STEPS.c.id == bindparam("step_id"), _STEPS.c.state == StepState.PENDING)
    .values({name: bindparam(f"new_{name}")
             for name in ("state", "decision", "comment", "channel", "decided_at")})
)
# The request a step belongs to, locked (FOR UPDATE on PostgreSQL; SQLite holds the write lock).
_LOCK_REQUEST_OF_STEP = (
    select(BudgetRequest)
    .where(
        col(BudgetRequest.id)
        == select(col(ApprovalStep.request_id))
        .where(col(ApprovalStep.id) == bindparam("step_id"))
        .scalar_subquery()
    )
    .with_for_update()
)
# Every step of the request, every version, read fresh after the lock.
_ALL_STEPS = (
    select(ApprovalStep)
    .where(col(ApprovalStep.request_id) == bindparam("request_id"))
    .order_by(col(ApprovalStep.id))
    .execution_options(populate_existing=True)
)

@dataclass(frozen=True)
class DecisionResult:
    """`applied`, or why not: `refusal` (the rule's reason) and its short word `reason`."""

    applied: bool
    request_key: str
    request_state: str
    refusal: Refusal | None = None
    detail: str = ""
    finished: bool = False
    next_approvers: tuple[str, ...] = field(default_factory=tuple)

    @property
    def reason(self) -> str:
        """The word used in inbound outcomes and notices (`refused-<reason>`); "" if applied."""
        return reply_word(self.refusal) if self.refusal is not None else ""


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
    audit: list[NewEvent] | None = None,
    acting_person_id: int | None = None,
) -> DecisionResult:
    """Decide a pending step in the caller's transaction; a stale attempt changes nothing.

    The decision's audit events are appended to the chain here, or to `audit` if given: the
    caller then appends them (with its own) in the same transaction, one chain write instead of two.
    `acting_person_id` is who actually answered (the approver's substitute, or the person the
    approver stood in for); the step records it once the claim has succeeded.
    """
    # One statement finds and locks the step's request (FOR UPDATE on PostgreSQL; SQLite
    # already holds the write lock), then one loads every step of it, fresh after the lock.
    request = session.execute(_LOCK_REQUEST_OF_STEP, {"step_id": step_id}).scalar_one_or_none()
    if request is None:
        return DecisionResult(False, "", "", Refusal.INVALID, f"step {step_id}")
    all_steps = list(session.execute(_ALL_STEPS, {"request_id": request.id}).scalars())
    step = next(s for s in all_steps if s.id == step_id)
    token = session.get(ApprovalToken, token_id) if token_id is not None else None
    if token_id is not None and token is None:
        return DecisionResult(False, request.key, request.state, Refusal.INVALID, "no such token")
    refusal = answer_refusal(step, request, token, now=ctx.now) or answerer_refusal(
        step, person=acting_person_id if acting_person_id is not None else step.approver_id,
        requester=request.requester_id, day=ctx.today,
        delegations=covers_on(session, principal_of(step), ctx.today))
    if refusal is not None:
        detail = refusal_detail(refusal, step=step, request=request, token=token)
        return DecisionResult(False, request.key, request.state, refusal, detail)
    new_state = StepState.APPROVED if verdict is Verdict.APPROVE else StepState.REJECTED
    values = {
        "state": new_state,
        "decision": verdict,
        "comment": comment[:4000],
        "channel": channel,
        "decided_at": ctx.now,
    }
    params = {"step_id": step_id, **{f"new_{name}": value for name, value in values.items()}}
    claimed = session.execute(_CLAIM_STEP, params)
    if claimed.rowcount != 1:  # type: ignore[attr-defined]  # CursorResult of an UPDATE
        return DecisionResult(False, request.key, request.state, Refusal.DECIDED,
                              "already answered")
    for name, value in values.items():  # a Core UPDATE: tell the loaded row what it now holds
        set_committed_value(step, name, value)
    if acting_person_id is not None and acting_person_id != step.approver_id:
        _record_acting_person(session, step, acting_person_id)
    if token_id is not None:
        used = session.execute(
            update(ApprovalToken)
            .where(col(ApprovalToken.id) == token_id, col(ApprovalToken.used_at).is_(None))
            .values(used_at=ctx.now)
        )
        if used.rowcount != 1:  # type: ignore[attr-defined]
            # Impossible while we hold the request lock; never decide on a doubtful token.
            raise RuntimeError(f"token {token_id} was used concurrently for step {step_id}")
    steps = [s for s in all_steps if s.version == request.version]
    by_id = {s.id or 0: s for s in steps}
    people = person_views(session, people_of(request, all_steps))
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
    by_id[step_id].state = new_state
    followers = [(sid, state) for sid, state in outcome.step_changes if sid != step_id]
    activated = apply_step_changes(session, followers, steps=by_id, ctx=ctx)
    if activated:  # a later stage starts today: its steps go to whoever holds them today
        place_steps(session, [by_id[sid] for sid in activated], requester_id=request.requester_id,
                    covers=covers_on_day(session, ctx.today), day=ctx.today)
        people |= person_views(session, people_of(request, all_steps) - people.keys())
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
    facts: list[tuple[str | None, tuple[LineFacts, ...]]] = []

    def view() -> RequestView:
        # The rows loaded above, as this transaction has changed them (the ORM UPDATEs
        # synchronise the session): what load_request_view would read back, without the reads.
        if not facts:
            facts.append(request_facts(session, request))
        grant_key, lines = facts[0]
        return assemble_request_view(request, all_steps, people, grant_key=grant_key, lines=lines)

    mails = mail_activated(
        session, request, activated, ctx=ctx, events=events, view=view() if activated else None
    )
    if outcome.finished:
        request.state = outcome.request_state
        request.decided_at = ctx.now
        session.flush()
        approved = outcome.request_state is RequestState.APPROVED
        enqueue(
            session,
            [outcome_mail(view(), approved=approved, ctx=ctx)],
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
        append_events(session, events, now=ctx.now)
    else:
        audit.extend(events)
    return DecisionResult(
        True,
        request.key,
        request.state,
        finished=outcome.finished,
        next_approvers=tuple(m.recipient for m in mails),
    )


def _record_acting_person(session: Session, step: ApprovalStep, acting_person_id: int) -> None:
    """The original approver answering herself is no longer "on behalf of"; a substitute is."""
    behalf = None if acting_person_id == step.on_behalf_of_id else (
        step.on_behalf_of_id or step.approver_id)
    session.execute(update(ApprovalStep).where(col(ApprovalStep.id) == step.id)
                    .values(approver_id=acting_person_id, on_behalf_of_id=behalf))
    set_committed_value(step, "approver_id", acting_person_id)
    set_committed_value(step, "on_behalf_of_id", behalf)
